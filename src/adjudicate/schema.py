"""The input tables of contract §2, as data: column names, kinds, enums."""

from __future__ import annotations

from dataclasses import dataclass

SETTINGS = ("inpatient", "outpatient", "special_outpatient", "pharmacy")
REFERRALS = ("referred", "emergency")
CATEGORIES = ("in_service", "retired")
PROVIDER_KINDS = ("community", "hospital", "pharmacy", "other")
CLASSES = ("A", "B", "special", "supplementary", "excluded")
#: Chinese (and other everyday) names accepted for each enum's values, in any
#: input format; the value read is the canonical English code. Documented in
#: docs/data-dictionary.md (a test keeps the two in step).
ENUM_ALIASES: dict[tuple[str, ...], dict[str, str]] = {
    SETTINGS: {
        "住院": "inpatient",
        "门诊": "outpatient",
        "普通门诊": "outpatient",
        "门特": "special_outpatient",
        "门诊特殊病种": "special_outpatient",
        "门诊特殊病": "special_outpatient",
        "门诊慢特病": "special_outpatient",
        "药店": "pharmacy",
        "药店购药": "pharmacy",
        "定点药店": "pharmacy",
    },
    REFERRALS: {"转诊": "referred", "转院": "referred", "急诊": "emergency"},
    CATEGORIES: {"在职": "in_service", "在职职工": "in_service", "退休": "retired", "退休人员": "retired"},
    PROVIDER_KINDS: {
        "社区": "community",
        "社区卫生服务机构": "community",
        "社区卫生服务中心": "community",
        "医院": "hospital",
        "药店": "pharmacy",
        "定点药店": "pharmacy",
        "定点零售药店": "pharmacy",
        "其他": "other",
    },
    CLASSES: {
        "甲类": "A",
        "甲": "A",
        "乙类": "B",
        "乙": "B",
        "特殊检查治疗": "special",
        "特检": "special",
        "地方补充目录": "supplementary",
        "补充目录": "supplementary",
        "丙类": "excluded",
        "目录外": "excluded",
        "自费": "excluded",
    },
}
#: Words accepted for true and false in text inputs (lower-cased first).
TRUE_WORDS = ("true", "t", "1", "yes", "y", "是")
FALSE_WORDS = ("false", "f", "0", "no", "n", "否")

#: Optional catalogue column ``item_kind`` (药品 / 诊疗项目 / 服务设施 / 医用耗材, and goods
#: that are none of them: 保健品, 生活日用品); read only by ``adjudicate audit``.
ITEM_KINDS = ("drug", "treatment", "facility", "material", "other")
ENUM_ALIASES[ITEM_KINDS] = {
    "药品": "drug",
    "诊疗项目": "treatment",
    "服务设施": "facility",
    "医用耗材": "material",
    "耗材": "material",
    "其他": "other",
}
#: Line class codes inside the engine: the catalogue classes, then 'unknown'.
LINE_CLASSES = CLASSES + ("unknown",)
UNKNOWN_CLASS = len(CLASSES)

#: Amount columns of a settled claim (settlements.parquet), contract §4 order.
AMOUNTS = (
    "total",
    "self_pay",
    "first_self_pay",
    "eligible",
    "deductible",
    "fund_pool",
    "fund_supplementary",
    "member_policy_share",
    "subsidy",
    "account_paid",
    "cash_paid",
)

#: Rejection reasons in priority order (contract §4).
REJECT_REASONS = (
    "null_required_field",
    "duplicate_line",
    "inconsistent_claim_header",
    "unknown_member",
    "unknown_provider",
    "missing_discharge_date",
    "discharge_before_admit",
    "negative_claim_total",
)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string | int | date | bool | enum | amount | price | ratio | quantity
    nullable: bool = False
    enum: tuple[str, ...] = ()
    int_range: tuple[int, int] | None = None
    #: A negative value is an input error (a ceiling or a balance below zero means nothing).
    nonnegative: bool = False


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    #: Nulls in these tables reject the claim instead of failing the run.
    nulls_reject: bool = False

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


CLAIMS = TableSpec(
    "claims",
    (
        Column("claim_id", "string"),
        Column("line_no", "int", int_range=(-(2**31), 2**31 - 1)),
        Column("member_id", "string"),
        Column("provider_id", "string"),
        Column("setting", "enum", enum=SETTINGS),
        Column("referral", "enum", nullable=True, enum=REFERRALS),
        Column("admit_date", "date"),
        Column("discharge_date", "date", nullable=True),
        Column("item_code", "string"),
        Column("quantity", "quantity"),
        Column("unit_price", "price"),  # may be negative, like amount, on a refund line
        Column("amount", "amount"),
        Column("diagnosis", "string", nullable=True),
    ),
    nulls_reject=True,
)

#: Claim-level columns that repeat on every line and must agree (contract §2).
CLAIM_HEADER = ("member_id", "provider_id", "setting", "referral", "admit_date", "discharge_date", "diagnosis")

MEMBERS = TableSpec(
    "members",
    (
        Column("member_id", "string"),
        Column("birth_date", "date"),
        Column("category", "enum", enum=CATEGORIES),
        Column("civil_servant", "bool"),
        Column("enrolled_since", "date"),
        Column("account_balance", "amount", nonnegative=True),
        Column("prior_year_wage", "amount", nullable=True, nonnegative=True),  # the basis of a credit
    ),
    key=("member_id",),
)

PROVIDERS = TableSpec(
    "providers",
    (
        Column("provider_id", "string"),
        Column("kind", "enum", enum=PROVIDER_KINDS),
        Column("level", "int", int_range=(0, 127)),
        Column("designated", "bool"),
        Column("local", "bool"),
        Column("quota_per_admission", "amount", nullable=True, nonnegative=True),
    ),
    key=("provider_id",),
)

CATALOGUE = TableSpec(
    "catalogue",
    (
        Column("item_code", "string"),
        Column("name", "string", nullable=True),
        Column("class", "enum", enum=CLASSES),
        Column("first_self_pay_ratio", "ratio", nullable=True),
        Column("max_unit_price", "price", nullable=True, nonnegative=True),
        Column("valid_from", "date"),
        Column("valid_to", "date", nullable=True),
        Column("item_kind", "enum", nullable=True, enum=ITEM_KINDS),
    ),
)

TABLES = {t.name: t for t in (CLAIMS, MEMBERS, PROVIDERS, CATALOGUE)}
