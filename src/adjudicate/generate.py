"""Synthetic, realistic input data for ``adjudicate`` (contract.md §2).

``generate_tables(members, year, seed)`` builds the four input tables
(claims, members, providers, catalogue) of one benefit year; everything is
vectorised with numpy (no Python loop per claim, line or member), so ten
million claim lines take a few seconds.  ``write_dataset`` writes them as
Parquet, Arrow IPC (Feather, ``.arrow``) or CSV.

What the data looks like
------------------------
* catalogue: ~3 500 items with national-style codes (西药 ``XA01ABD075A002010100483``,
  中成药 ``ZA04BAA0199010103857``, 医疗服务项目 ``001102000010000``, 医用耗材
  ``C0301010012340000``-style), classes ≈ A 25 %, B 45 %, special 5 %,
  supplementary 5 %, excluded 20 %; a few % carry ``first_self_pay_ratio``,
  ~20 % a ``max_unit_price`` (to 0.0001 yuan, one in six on a half fen);
  ~3 % have two non-overlapping validity rows that switch mid-``year``; ~2 % expired before ``year`` (never billed).
* providers: a few hundred; community centres, hospitals of levels 1-3,
  pharmacies, a few ``other``; ~5 % non-designated, ~5 % non-local;
  hospitals have a ``quota_per_admission``.
* members: ID-card shaped ``member_id`` (18 characters with check digit);
  ages 0-95, ~25 % retired, ~5 % civil servants, enrolment from 1995 to
  within ``year``.
* claims: about 50 lines per member and year: outpatient visits, pharmacy
  purchases, special outpatient series (dialysis, chemotherapy) and inpatient
  admissions (10-80 lines each, heavy-tailed cost: a few members pass 200 000
  yuan of eligible inpatient cost a year).  A small share of lines are
  refunds (negative quantity and amount) of part of an earlier line of the
  same item in the same claim, never making any sum negative; ~0.1 % of lines
  bill a code absent from the catalogue.

Bad claims
----------
With ``bad_rows > 0`` that fraction of claims is made invalid, spread evenly
over the rejection reasons of contract §4 (``BAD_KINDS``); nothing else is
wrong in them.  The affected claim ids and their intended reason are stored
in the claims schema metadata (key ``adjudicate.bad_claims``; read it with
``bad_claims(tables)``).  The clean part of the data does not depend on
``bad_rows``: the corruption uses its own random stream.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .schema import REJECT_REASONS, SETTINGS

__all__ = [
    "generate_tables",
    "write_dataset",
    "ORDERS",
    "bad_claims",
    "BAD_KINDS",
    "SCHEMAS",
    "TABLE_NAMES",
]

TABLE_NAMES = ("claims", "members", "providers", "catalogue")

SCHEMAS: dict[str, pa.Schema] = {
    "claims": pa.schema(
        [
            pa.field("claim_id", pa.string()),
            pa.field("line_no", pa.int32()),
            pa.field("member_id", pa.string()),
            pa.field("provider_id", pa.string()),
            pa.field("setting", pa.string()),
            pa.field("referral", pa.string()),
            pa.field("admit_date", pa.date32()),
            pa.field("discharge_date", pa.date32()),
            pa.field("item_code", pa.string()),
            pa.field("quantity", pa.float64()),
            pa.field("unit_price", pa.decimal128(12, 4)),
            pa.field("amount", pa.decimal128(14, 2)),
            pa.field("diagnosis", pa.string()),
        ]
    ),
    "members": pa.schema(
        [
            pa.field("member_id", pa.string()),
            pa.field("birth_date", pa.date32()),
            pa.field("category", pa.string()),
            pa.field("civil_servant", pa.bool_()),
            pa.field("enrolled_since", pa.date32()),
            pa.field("account_balance", pa.decimal128(14, 2)),
            pa.field("prior_year_wage", pa.decimal128(14, 2)),
        ]
    ),
    "providers": pa.schema(
        [
            pa.field("provider_id", pa.string()),
            pa.field("kind", pa.string()),
            pa.field("level", pa.int8()),
            pa.field("designated", pa.bool_()),
            pa.field("local", pa.bool_()),
            pa.field("quota_per_admission", pa.decimal128(14, 2)),
        ]
    ),
    "catalogue": pa.schema(
        [
            pa.field("item_code", pa.string()),
            pa.field("name", pa.string()),
            pa.field("class", pa.string()),
            pa.field("first_self_pay_ratio", pa.decimal128(6, 4)),
            pa.field("max_unit_price", pa.decimal128(12, 4)),
            pa.field("valid_from", pa.date32()),
            pa.field("valid_to", pa.date32()),
        ]
    ),
}

# Rejection reasons of contract §4, in priority order.
BAD_KINDS = REJECT_REASONS

BAD_CLAIMS_KEY = b"adjudicate.bad_claims"
GENERATOR_KEY = b"adjudicate.generator"

IP, OP, SP, PH = 0, 1, 2, 3
REFERRALS = ("referred", "emergency")
CLASSES = ("A", "B", "special", "supplementary", "excluded")
KINDS = ("community", "hospital", "pharmacy", "other")

_EPOCH = _dt.date(1970, 1, 1)

# Pooling region (温州, 3303xx) and a few places elsewhere (异地).
_LOCAL_REGIONS = np.array([330302, 330303, 330304, 330305, 330324, 330326, 330327, 330381, 330382])
_REMOTE_REGIONS = np.array([310104, 330106, 110105, 320102, 350203])
_UNKNOWN_MEMBER_REGION = 110101  # never used for members

# ---------------------------------------------------------------------------
# catalogue templates
# ---------------------------------------------------------------------------
# item groups (how lines pick items)
DRUG, LAB, SPEXAM, DIAL, CHEMO, BED, SURG, CONS, REG = range(9)
_N_GROUPS = 9

# group: (items, median price yuan, log sigma, class probabilities A,B,special,supplementary,excluded)
_GROUP_SPEC = {
    DRUG: (2100, 25.0, 1.1, (0.30, 0.46, 0.00, 0.05, 0.19)),
    LAB: (500, 15.0, 0.9, (0.35, 0.40, 0.02, 0.03, 0.20)),
    SPEXAM: (80, 350.0, 0.4, (0.00, 0.15, 0.70, 0.00, 0.15)),
    DIAL: (20, 420.0, 0.25, (0.10, 0.40, 0.50, 0.00, 0.00)),
    CHEMO: (20, 480.0, 0.4, (0.10, 0.40, 0.50, 0.00, 0.00)),
    BED: (60, 35.0, 0.6, (0.70, 0.20, 0.00, 0.00, 0.10)),
    SURG: (250, 1500.0, 0.9, (0.20, 0.40, 0.30, 0.00, 0.10)),
    CONS: (450, 60.0, 1.6, (0.10, 0.50, 0.05, 0.05, 0.30)),
    REG: (20, 10.0, 0.4, (1.00, 0.00, 0.00, 0.00, 0.00)),
}

_DRUG_STEMS = [
    "阿莫西林",
    "头孢呋辛",
    "头孢克肟",
    "左氧氟沙星",
    "阿奇霉素",
    "二甲双胍",
    "格列美脲",
    "阿卡波糖",
    "氨氯地平",
    "硝苯地平",
    "缬沙坦",
    "厄贝沙坦",
    "美托洛尔",
    "阿托伐他汀",
    "瑞舒伐他汀",
    "阿司匹林",
    "氯吡格雷",
    "奥美拉唑",
    "泮托拉唑",
    "雷贝拉唑",
    "布洛芬",
    "对乙酰氨基酚",
    "甲钴胺",
    "胰岛素",
    "门冬胰岛素",
    "甘精胰岛素",
    "氯化钠",
    "葡萄糖",
    "头孢曲松",
    "哌拉西林他唑巴坦",
    "万古霉素",
    "顺铂",
    "紫杉醇",
    "奥沙利铂",
    "多西他赛",
    "吉西他滨",
    "促红细胞生成素",
    "蔗糖铁",
    "低分子肝素",
    "氨溴索",
    "孟鲁司特",
    "沙丁胺醇",
    "布地奈德",
    "地塞米松",
    "甲泼尼龙",
    "呋塞米",
    "螺内酯",
]
_DRUG_FORMS = ["片", "胶囊", "缓释片", "分散片", "注射液", "注射用粉针", "颗粒", "肠溶片", "吸入剂", "口服溶液"]
_TCM_STEMS = [
    "复方丹参",
    "银黄",
    "板蓝根",
    "连花清瘟",
    "血塞通",
    "六味地黄",
    "藿香正气",
    "双黄连",
    "清开灵",
    "丹红",
    "参麦",
    "生脉",
    "血栓通",
    "脑心通",
    "通心络",
    "蒲地蓝消炎",
    "感冒清热",
    "小柴胡",
    "逍遥",
    "金水宝",
    "百令",
    "复方甘草",
    "川贝枇杷",
    "牛黄解毒",
]
_TCM_FORMS = ["片", "胶囊", "颗粒", "丸", "滴丸", "注射液", "口服液", "糖浆"]
_LAB_NAMES = [
    "血常规",
    "尿常规",
    "粪便常规",
    "肝功能",
    "肾功能",
    "电解质",
    "血糖测定",
    "糖化血红蛋白",
    "血脂",
    "凝血功能",
    "C反应蛋白",
    "降钙素原",
    "心肌酶谱",
    "肌钙蛋白",
    "甲状腺功能",
    "乙肝两对半",
    "心电图",
    "动态心电图",
    "胸部X线摄影",
    "彩色多普勒超声",
    "心脏彩超",
    "肺功能",
    "胃镜检查",
    "肠镜检查",
    "病理检查",
    "血气分析",
    "肿瘤标志物",
    "尿微量白蛋白",
]
_SPEXAM_NAMES = ["CT平扫", "CT增强扫描", "磁共振平扫", "磁共振增强扫描", "PET-CT", "数字减影血管造影", "骨密度测定"]
_DIAL_NAMES = ["血液透析", "血液透析滤过", "腹膜透析", "连续性血液净化"]
_CHEMO_NAMES = ["静脉化疗", "化疗药物配置", "放射治疗", "调强放射治疗", "靶向治疗给药"]
_BED_NAMES = [
    "床位费(三人间)",
    "床位费(双人间)",
    "床位费(单人间)",
    "重症监护病房床位费",
    "一级护理",
    "二级护理",
    "三级护理",
    "特级护理",
    "静脉输液",
    "肌肉注射",
    "吸氧",
    "雾化吸入",
    "换药",
]
_SURG_NAMES = [
    "腹腔镜胆囊切除术",
    "阑尾切除术",
    "人工髋关节置换术",
    "人工膝关节置换术",
    "经皮冠状动脉支架置入术",
    "白内障超声乳化摘除术",
    "剖宫产术",
    "疝修补术",
    "甲状腺部分切除术",
    "胃癌根治术",
    "肺叶切除术",
    "椎间盘切除术",
    "全身麻醉",
    "椎管内麻醉",
    "骨折切开复位内固定术",
    "前列腺电切术",
]
_CONS_NAMES = [
    "一次性输液器",
    "一次性注射器",
    "留置针",
    "导尿管",
    "医用缝合线",
    "吻合器",
    "冠状动脉支架",
    "人工髋关节假体",
    "人工晶体",
    "骨科接骨板",
    "中心静脉导管",
    "心脏起搏器",
    "疝修补片",
    "止血材料",
    "医用敷料",
    "气管插管",
]
_REG_NAMES = ["普通门诊诊查费", "副主任医师诊查费", "主任医师诊查费", "急诊诊查费", "一般诊疗费"]

_SERVICE_NAMES = {
    LAB: _LAB_NAMES,
    SPEXAM: _SPEXAM_NAMES,
    DIAL: _DIAL_NAMES,
    CHEMO: _CHEMO_NAMES,
    BED: _BED_NAMES,
    SURG: _SURG_NAMES,
    REG: _REG_NAMES,
}
# 4-digit section used in the 15-digit service item codes
_SERVICE_SECTION = {LAB: 2503, SPEXAM: 2101, DIAL: 3105, CHEMO: 2403, BED: 1102, SURG: 3305, REG: 1101}

_ATC_LETTERS = list("ABCDGHJLMNPRSV")
_UPPER = [chr(c) for c in range(ord("A"), ord("Z") + 1)]

# diagnoses (ICD-10), with weights
_DX_INPATIENT = [
    ("I63.9", 8),
    ("I25.1", 7),
    ("J18.9", 8),
    ("J44.1", 5),
    ("I50.9", 4),
    ("E11.9", 3),
    ("K80.1", 3),
    ("K35.8", 2),
    ("S72.0", 2),
    ("C34.9", 3),
    ("C16.9", 2),
    ("C18.9", 2),
    ("C50.9", 2),
    ("N18.5", 2),
    ("I10", 3),
    ("M17.9", 2),
    ("O80", 2),
    ("N40", 1),
    ("H25.9", 3),
    ("K29.7", 2),
    ("A09", 1),
    ("R50.9", 1),
]
_DX_OUTPATIENT = [
    ("J06.9", 10),
    ("I10", 10),
    ("E11.9", 7),
    ("K29.7", 5),
    ("M54.5", 4),
    ("J20.9", 5),
    ("J02.9", 4),
    ("L30.9", 3),
    ("H10.9", 2),
    ("N39.0", 2),
    ("R51", 2),
    ("K59.0", 2),
    ("I25.1", 3),
    ("Z00.0", 2),
    ("M79.1", 2),
]
_DX_DIALYSIS = [("N18.5", 10), ("N18.4", 1)]
_DX_CHEMO = [("C34.9", 5), ("C16.9", 3), ("C18.9", 3), ("C50.9", 4), ("C22.0", 3), ("C20", 2), ("C61", 2), ("C56", 1)]
_DX_PHARMACY = [("I10", 5), ("E11.9", 4), ("J06.9", 4), ("K29.7", 2), ("E78.5", 3), ("I25.1", 2)]


# ---------------------------------------------------------------------------
# small vectorised helpers
# ---------------------------------------------------------------------------
def _days(y: int, m: int, d: int) -> int:
    return (_dt.date(y, m, d) - _EPOCH).days


def _validity_bitmap(valid: np.ndarray | None):
    if valid is None or bool(valid.all()):
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), int(valid.size - np.count_nonzero(valid))


def _decimal(units: np.ndarray, typ: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """Decimal array whose unscaled integers are exactly ``units`` (int64)."""
    units = np.ascontiguousarray(units, dtype=np.int64)
    words = np.empty((units.size, 2), dtype=np.int64)
    words[:, 0] = units
    words[:, 1] = units >> 63  # sign extension to 128 bits
    bitmap, nulls = _validity_bitmap(valid)
    return pa.Array.from_buffers(typ, units.size, [bitmap, pa.py_buffer(words)], null_count=nulls)


def _date(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    mask = None if valid is None else ~valid
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.date32(), mask=mask)


def _take(values, idx: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """values[idx] as a plain Arrow array; null where not valid."""
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.string())
    mask = None if valid is None else ~valid
    return values.take(pa.array(np.asarray(idx, dtype=np.int32), mask=mask))


def _digits(ints: np.ndarray, width: int) -> pa.Array:
    """Zero-padded decimal strings of non-negative integers."""
    return pc.utf8_lpad(pa.array(np.asarray(ints, dtype=np.int64)).cast(pa.string()), width=width, padding="0")


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _round_half_away(num: np.ndarray, den: int) -> np.ndarray:
    """round(num / den) half away from zero, exact on integers (den > 0)."""
    a = np.abs(num)
    return np.sign(num) * ((2 * a + den) // (2 * den))


def _pick(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with probability proportional to ``weights``."""
    cum = np.cumsum(weights, dtype=np.float64)
    u = rng.random(size) * cum[-1]
    return np.minimum(np.searchsorted(cum, u, side="right"), weights.size - 1).astype(np.int32)


def _rank_within(keys: np.ndarray) -> np.ndarray:
    """0-based rank of each element among equal keys (stable)."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    n = sk.size
    start = np.ones(n, dtype=bool)
    start[1:] = sk[1:] != sk[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - first
    return rank


def _ymd(days: np.ndarray):
    d = np.asarray(days, dtype="datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dd = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return y, m, dd


def _id_card(region: np.ndarray, birth_days: np.ndarray, seq: np.ndarray) -> pa.Array:
    """18-character resident ID numbers (GB 11643) with a valid check digit."""
    y, m, d = _ymd(birth_days)
    body = ((region.astype(np.int64) * 10000 + y) * 100 + m) * 100 + d
    body = body * 1000 + seq.astype(np.int64)  # 17 digits
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
    total = np.zeros(body.size, dtype=np.int64)
    rest = body.copy()
    for pos in range(16, -1, -1):  # 17 digit positions, not per member
        total += (rest % 10) * weights[pos]
        rest //= 10
    check = pa.array(list("10X98765432")).take(pa.array(total % 11))
    return _join(_digits(body, 17), check)


def _lognormal_fen(rng, n, median_yuan, sigma, lo_fen=1) -> np.ndarray:
    v = np.exp(rng.normal(np.log(median_yuan * 100.0), sigma, n))
    return np.maximum(np.rint(v), lo_fen).astype(np.int64)


# ---------------------------------------------------------------------------
# catalogue
# ---------------------------------------------------------------------------
def _catalogue(rng: np.random.Generator, year: int):
    groups, codes, names, prices, klasses = [], [], [], [], []
    for g in range(_N_GROUPS):
        n, median, sigma, cprob = _GROUP_SPEC[g]
        idx = np.arange(n)
        if g == DRUG:
            n_z = n * 2 // 7  # 中成药
            is_z = np.zeros(n, dtype=bool)
            is_z[rng.choice(n, n_z, replace=False)] = True
            atc = _join(
                _take(_ATC_LETTERS, rng.integers(0, len(_ATC_LETTERS), n)),
                _digits(rng.integers(1, 17, n), 2),
                _take(_UPPER[:8], rng.integers(0, 8, n)),
                _take(_UPPER[:6], rng.integers(0, 6, n)),
            )
            x_code = _join(
                "X",
                atc,
                "D",
                _digits(rng.integers(1, 300, n), 3),
                "A",
                _digits(rng.integers(1, 200, n), 3),
                _digits(rng.integers(1000, 10000, n), 4),
                _digits(idx, 5),
            )  # 23 characters
            z_code = _join(
                "Z",
                atc,
                _take(_UPPER[:6], rng.integers(0, 6, n)),
                _digits(rng.integers(1, 1000, n), 4),
                _digits(rng.integers(1000, 10000, n), 4),
                _digits(idx, 5),
            )  # 20 characters
            code = pc.if_else(pa.array(is_z), z_code, x_code)
            name = pc.if_else(
                pa.array(is_z),
                _join(
                    _take(_TCM_STEMS, rng.integers(0, len(_TCM_STEMS), n)),
                    _take(_TCM_FORMS, rng.integers(0, len(_TCM_FORMS), n)),
                ),
                _join(
                    _take(_DRUG_STEMS, rng.integers(0, len(_DRUG_STEMS), n)),
                    _take(_DRUG_FORMS, rng.integers(0, len(_DRUG_FORMS), n)),
                ),
            )
        elif g == CONS:
            code = _join(
                "C",
                _digits(rng.integers(1, 15, n), 2),
                _digits(rng.integers(1, 20, n), 2),
                _digits(rng.integers(1, 30, n), 2),
                _digits(rng.integers(0, 10000, n), 4),
                _digits(idx, 5),
                "0000",
            )  # 20 characters
            name = _join(
                _take(_CONS_NAMES, rng.integers(0, len(_CONS_NAMES), n)),
                "(",
                _take(_UPPER, rng.integers(0, 26, n)),
                "型)",
            )
        else:
            code = _join("00", _digits(np.full(n, _SERVICE_SECTION[g]), 4), _digits(idx, 5), "0000")
            pool = _SERVICE_NAMES[g]
            name = _take(pool, rng.integers(0, len(pool), n))
        groups.append(np.full(n, g, dtype=np.int8))
        codes.append(code)
        names.append(name)
        prices.append(_lognormal_fen(rng, n, median, sigma, lo_fen=10))
        klasses.append(rng.choice(5, n, p=np.array(cprob) / np.sum(cprob)).astype(np.int8))

    group = np.concatenate(groups)
    code = pa.concat_arrays(codes)
    name = pa.concat_arrays(names)
    price = np.concatenate(prices)
    # service prices are set in whole jiao (0.1 yuan), drugs and materials to the fen
    svc = (group != DRUG) & (group != CONS)
    price[svc] = np.maximum(np.rint(price[svc] / 10.0).astype(np.int64) * 10, 10)
    klass = np.concatenate(klasses)
    n = group.size

    # 先行自付 override on a few % of items (mostly B / special)
    ratio_set = (rng.random(n) < np.where((klass == 1) | (klass == 2), 0.07, 0.01)) & (klass != 4)
    ratio = rng.choice(np.array([500, 1000, 2000, 3000]), n, p=[0.15, 0.40, 0.30, 0.15])  # basis points
    # 最高支付标准 on ~20 %: most above the usual price, some below; set to 0.0001 yuan
    # (contract §1), and about one in six to a half fen (x.xx50), so that an odd
    # quantity puts the ceiling exactly on a half fen: rounded away from zero
    max_set = rng.random(n) < np.select([group == DRUG, group == CONS, group == REG], [0.24, 0.30, 0.0], 0.08)
    max_fen = np.maximum(np.rint(price * 100 * rng.uniform(0.85, 1.3, n)).astype(np.int64), 1)  # 0.0001 yuan
    half = (max_fen // 100) % 6 == 0
    max_fen[half] = (max_fen[half] // 100) * 100 + 50

    # validity
    vf_year = year - rng.integers(1, 13, n)
    valid_from = np.array([_days(y, 1, 1) for y in range(year - 12, year)])[vf_year - (year - 12)]
    valid_from = valid_from + rng.integers(0, 365, n)
    valid_from = np.minimum(valid_from, _days(year - 1, 12, 31))
    u = rng.random(n)
    expired = u < 0.02  # delisted before the year: never billed
    two_rows = (u >= 0.02) & (u < 0.05)
    valid_to = np.full(n, 0, dtype=np.int64)
    valid_to_set = expired.copy()
    valid_from[expired] = np.minimum(valid_from[expired], _days(year - 2, 1, 1))
    lo = valid_from + 30
    hi = _days(year - 1, 12, 31)
    valid_to[expired] = (lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(np.int64))[expired]
    split = rng.integers(_days(year, 2, 1), _days(year, 11, 30) + 1, n)
    valid_to[two_rows] = split[two_rows]
    valid_to_set |= two_rows

    # second rows: a class change, a new price cap, or a new first-pay ratio
    t = np.flatnonzero(two_rows)
    change = rng.integers(0, 3, t.size)
    change = np.where((klass[t] == 4) & (change == 2), 0, change)  # no ratio on excluded items
    k2 = klass[t].copy()
    new_class = np.select([k2 == 4, k2 == 1, k2 == 0], [1, 0, 1], 1)  # excluded→B, B→A, A→B, else→B
    k2 = np.where(change == 0, new_class, k2).astype(np.int8)
    m2_set = max_set[t].copy()
    m2 = max_fen[t].copy()
    lower = np.maximum(np.rint(m2 * rng.uniform(0.75, 0.9, t.size)).astype(np.int64), 1)
    fresh = np.maximum(np.rint(price[t] * 100 * rng.uniform(0.85, 1.0, t.size)).astype(np.int64), 1)
    m2 = np.where(change == 1, np.where(m2_set, lower, fresh), m2)
    m2_set = m2_set | (change == 1)
    r2_set = ratio_set[t].copy()
    r2 = ratio[t].copy()
    r2_set = np.where(change == 2, ~r2_set, r2_set)
    r2 = np.where((change == 2) & r2_set, 1000, r2)
    r2_set &= k2 != 4

    rows_item = np.concatenate([np.arange(n), t])
    cat_klass = np.concatenate([klass, k2])
    cat_ratio_set = np.concatenate([ratio_set, r2_set])
    cat_ratio = np.concatenate([ratio, r2])
    cat_max_set = np.concatenate([max_set, m2_set])
    cat_max = np.concatenate([max_fen, m2])
    cat_from = np.concatenate([valid_from, split[t] + 1])
    cat_to = np.concatenate([valid_to, np.zeros(t.size, dtype=np.int64)])
    cat_to_set = np.concatenate([valid_to_set, np.zeros(t.size, dtype=bool)])

    # sort rows by (item_code, valid_from)
    item_rank = np.empty(n, dtype=np.int64)
    item_rank[pc.sort_indices(code).to_numpy()] = np.arange(n)
    order = np.lexsort((cat_from, item_rank[rows_item]))

    r = rows_item[order]
    table = pa.table(
        {
            "item_code": code.take(pa.array(r)),
            "name": name.take(pa.array(r)),
            "class": _take(list(CLASSES), cat_klass[order]),
            "first_self_pay_ratio": _decimal(cat_ratio[order], pa.decimal128(6, 4), cat_ratio_set[order]),
            "max_unit_price": _decimal(cat_max[order], pa.decimal128(12, 4), cat_max_set[order]),
            "valid_from": _date(cat_from[order]),
            "valid_to": _date(cat_to[order], cat_to_set[order]),
        },
        schema=SCHEMAS["catalogue"],
    )
    info = {
        "code": code,
        "group": group,
        "price": price,
        "billable": ~expired,
        "klass": klass,
        # refunds only on items never capped, so a refund can never exceed the allowed part
        "refundable": ~(max_set | np.isin(np.arange(n), t[m2_set])),
        "n": n,
    }
    return table, info


# ---------------------------------------------------------------------------
# providers
# ---------------------------------------------------------------------------
def _providers(rng: np.random.Generator, members: int):
    total = int(np.clip(150 + members // 1000, 150, 600))
    shares = {  # (kind, level): share
        (0, 1): 0.25,
        (1, 1): 0.10,
        (1, 2): 0.09,
        (1, 3): 0.06,
        (2, 0): 0.45,
        (3, 0): 0.05,
    }
    kind_l, level_l = [], []
    for (k, lv), s in shares.items():
        c = max(3, int(round(total * s)))
        kind_l.append(np.full(c, k, dtype=np.int8))
        level_l.append(np.full(c, lv, dtype=np.int8))
    kind = np.concatenate(kind_l)
    level = np.concatenate(level_l)
    n = kind.size
    hosp = kind == 1
    # non-local: mostly big tertiary hospitals elsewhere
    p_remote = np.where(hosp & (level == 3), 0.30, np.where(hosp & (level == 2), 0.08, 0.03))
    local = rng.random(n) >= p_remote
    designated = rng.random(n) >= np.where(kind == 2, 0.07, np.where(kind == 3, 0.15, 0.03))
    region = np.where(local, rng.choice(_LOCAL_REGIONS, n), rng.choice(_REMOTE_REGIONS, n))
    prefix = pc.if_else(pa.array(kind == 2), pa.scalar("P"), pa.scalar("H"))
    pid = _join(prefix, _digits(region, 6), _digits(np.arange(1, n + 1), 5))
    # 定额标准 near the fund's mean payment per admission on this data (about 10 000–16 000 yuan
    # under the shipped schemes), so year-end settlement spreads providers across the corridor
    base_quota = np.select([level == 1, level == 2, level == 3], [12000, 13500, 15000], 0)
    quota = np.rint(base_quota * rng.uniform(0.85, 1.15, n) / 100.0).astype(np.int64) * 100 * 100  # fen
    # size: how much each provider attracts
    size = np.exp(rng.normal(0.0, 0.8, n)) * np.select(
        [kind == 0, hosp & (level == 1), hosp & (level == 2), hosp & (level == 3), kind == 2],
        [1.0, 1.0, 2.5, 5.0, 1.0],
        0.5,
    )
    table = pa.table(
        {
            "provider_id": pid,
            "kind": _take(list(KINDS), kind),
            "level": pa.array(level, type=pa.int8()),
            "designated": pa.array(designated),
            "local": pa.array(local),
            "quota_per_admission": _decimal(quota, pa.decimal128(14, 2), hosp),
        },
        schema=SCHEMAS["providers"],
    )
    info = {"id": pid, "kind": kind, "level": level, "local": local, "size": size, "n": n, "region": region}
    return table, info


# ---------------------------------------------------------------------------
# members
# ---------------------------------------------------------------------------
def _members(rng: np.random.Generator, n: int, year: int):
    jan1 = _days(year, 1, 1)
    u = rng.random(n)
    age = np.where(
        u < 0.08,
        rng.uniform(0, 18, n),
        np.where(u < 0.75, rng.uniform(18, 60, n), np.minimum(60 + rng.exponential(11.0, n), 95.99)),
    )
    birth = jan1 - np.floor(age * 365.25).astype(np.int64) - 1
    age_years = (jan1 - birth) / 365.25
    retired = rng.random(n) < np.where(age_years >= 60, 0.90, np.where(age_years >= 50, 0.20, 0.0))
    civil = (age_years >= 22) & (rng.random(n) < 0.055)
    # enrolment
    v = rng.random(n)
    long_lo = np.maximum(_days(1995, 1, 1), birth + np.where(age_years >= 18, 6575, 0))
    long_hi = np.maximum(long_lo + 1, _days(year - 3, 1, 1))
    enrolled = np.where(
        v < 0.80,
        long_lo + np.floor(rng.random(n) * (long_hi - long_lo)).astype(np.int64),
        np.where(v < 0.94, rng.integers(_days(year - 3, 1, 1), jan1, n), rng.integers(jan1, _days(year, 10, 1), n)),
    )
    enrolled = np.maximum(enrolled, birth)
    # money (fen)
    bal = np.where(
        retired,
        _lognormal_fen(rng, n, 8000.0, 0.9),
        np.where(age_years >= 16, _lognormal_fen(rng, n, 3000.0, 1.0), _lognormal_fen(rng, n, 300.0, 1.0)),
    )
    bal[rng.random(n) < 0.06] = 0
    wage_set = ~retired & (age_years >= 16)
    wage = np.rint(np.exp(rng.normal(np.log(75000.0), 0.45, n))).astype(np.int64) * 100

    region = rng.choice(_LOCAL_REGIONS, n)
    seq = _rank_within(region * 100000 + (birth - _days(1900, 1, 1)))
    if seq.max(initial=0) >= 1000:  # pragma: no cover - needs tens of millions of members
        raise ValueError("too many members for unique ID-card numbers")
    seq = (seq * 7 + birth * 37 + region) % 1000  # a bijection of the rank within each group
    mid = _id_card(region, birth, seq)
    table = pa.table(
        {
            "member_id": mid,
            "birth_date": _date(birth),
            "category": _take(["in_service", "retired"], retired.astype(np.int8)),
            "civil_servant": pa.array(civil),
            "enrolled_since": _date(enrolled),
            "account_balance": _decimal(bal, pa.decimal128(14, 2)),
            "prior_year_wage": _decimal(wage, pa.decimal128(14, 2), wage_set),
        },
        schema=SCHEMAS["members"],
    )
    info = {"id": mid, "age": age_years, "retired": retired, "enrolled": enrolled, "n": n}
    return table, info


# ---------------------------------------------------------------------------
# claims
# ---------------------------------------------------------------------------
def _dx_table():
    codes: list[str] = []
    lists = {}
    for key, lst in (
        ("ip", _DX_INPATIENT),
        ("op", _DX_OUTPATIENT),
        ("dial", _DX_DIALYSIS),
        ("chemo", _DX_CHEMO),
        ("ph", _DX_PHARMACY),
    ):
        idx, w = [], []
        for c, wt in lst:  # a handful of codes
            if c not in codes:
                codes.append(c)
            idx.append(codes.index(c))
            w.append(wt)
        lists[key] = (np.array(idx), np.array(w, dtype=np.float64))
    return codes, lists


def _claims(rng, year, mem, prov, cat):
    nm = mem["n"]
    jan1, dec31 = _days(year, 1, 1), _days(year, 12, 31)
    age = mem["age"]
    start = np.maximum(jan1, mem["enrolled"])  # no claims before enrolment
    span = dec31 - start + 1
    exposure = span / (dec31 - jan1 + 1)

    age_f = np.where(age < 6, 1.1, 0.7 + 0.02 * np.maximum(age - 30.0, 0.0))
    frail = np.exp(rng.normal(-0.18, 0.6, nm)) * age_f

    n_op = rng.poisson(6.2 * frail * exposure)
    n_ph = rng.poisson(4.0 * frail * exposure)
    has_sp = rng.random(nm) < (0.012 + 0.03 * (age >= 55)) * np.minimum(frail, 3.0)
    dialysis = has_sp & (rng.random(nm) < 0.35)
    n_sp = np.where(has_sp, rng.poisson(np.where(dialysis, 125.0, 16.0) * exposure), 0)
    lam_ip = 0.13 * frail * (1.0 + 0.8 * has_sp) * exposure
    n_ip = rng.poisson(lam_ip)

    # home providers
    kind, level, local, size = prov["kind"], prov["level"], prov["local"], prov["size"]
    comm_w = size * ((kind == 0) & local)
    hosp_w = size * ((kind == 1) & local)
    pharm_w = size * ((kind == 2) & local)
    sp_w = size * np.select([(kind == 1) & (level >= 2), kind == 0], [1.0, 0.1], 0.0) * local
    home_comm = _pick(rng, comm_w, nm)
    home_hosp = _pick(rng, hosp_w, nm)
    home_pharm = _pick(rng, pharm_w, nm)
    sp_prov = _pick(rng, sp_w, nm)

    counts = [n_ip, n_op, n_sp, n_ph]
    c_member = np.concatenate([np.repeat(np.arange(nm, dtype=np.int32), c) for c in counts])
    c_setting = np.concatenate([np.full(int(c.sum()), s, dtype=np.int8) for s, c in enumerate(counts)])
    C = c_member.size
    is_ip = c_setting == IP

    # dates
    c_admit = start[c_member] + np.floor(rng.random(C) * span[c_member]).astype(np.int64)
    z = rng.normal(0.0, 1.0, C)
    c_los = np.where(is_ip, np.clip(np.rint(np.exp(np.log(6.0) + 0.6 * z)), 1, 30), 0).astype(np.int64)
    c_sev = np.where(is_ip, np.exp(0.75 * z + 1.0 * rng.normal(0.0, 1.0, C) - 0.1), 1.0)
    # admissions of one member never overlap: a'_i = S_i + max_{j<=i}(a_j - S_j)
    ip_idx = np.flatnonzero(is_ip)
    if ip_idx.size:
        o = ip_idx[np.lexsort((c_admit[ip_idx], c_member[ip_idx]))]
        mem_o = c_member[o]
        step = c_los[o] + 1
        new_grp = np.ones(o.size, dtype=bool)
        new_grp[1:] = mem_o[1:] != mem_o[:-1]
        cs = np.cumsum(step)
        grp_first = np.maximum.accumulate(np.where(new_grp, np.arange(o.size), 0))
        S = cs - step - (cs[grp_first] - step[grp_first])
        big = 10_000_000
        grp_no = np.cumsum(new_grp)
        val = c_admit[o] - S + grp_no * big
        c_admit[o] = np.maximum.accumulate(val) - grp_no * big + S
    c_discharge = c_admit + c_los
    # the rare admission pushed past the year by earlier stays is dropped
    keep = c_admit <= dec31
    if not keep.all():
        c_member, c_setting, c_admit, c_discharge, c_los, c_sev = (
            c_member[keep],
            c_setting[keep],
            c_admit[keep],
            c_discharge[keep],
            c_los[keep],
            c_sev[keep],
        )
        C = c_member.size
        is_ip = c_setting == IP

    # providers per claim
    u = rng.random(C)
    op_w = size * np.select([kind == 0, kind == 1, kind == 3], [1.0, 1.0, 1.0], 0.0)
    ph_w = size * (kind == 2)
    ip_w = size * np.select([kind == 1, kind == 0], [1.0, 0.12], 0.0)
    rnd = np.empty(C, dtype=np.int32)
    for s, w in ((IP, ip_w), (OP, op_w), (SP, sp_w), (PH, ph_w)):
        m = c_setting == s
        rnd[m] = _pick(rng, w, int(m.sum()))
    cm = c_member
    c_provider = np.select(
        [
            (c_setting == OP) & (u < 0.45),
            (c_setting == OP) & (u < 0.65),
            (c_setting == PH) & (u < 0.70),
            (c_setting == SP) & (u < 0.90),
            (c_setting == IP) & (u < 0.40),
        ],
        [home_comm[cm], home_hosp[cm], home_pharm[cm], sp_prov[cm], home_hosp[cm]],
        rnd,
    ).astype(np.int32)

    # referral: -1 null, 0 referred, 1 emergency
    p_local = local[c_provider]
    r = rng.random(C)
    p_ref = np.select(
        [
            (c_setting == IP) & ~p_local,
            (c_setting == IP),
            (c_setting == OP) & ~p_local,
            c_setting == OP,
            (c_setting == SP) & ~p_local,
            c_setting == SP,
        ],
        [0.75, 0.04, 0.30, 0.01, 0.80, 0.03],
        0.0,
    )
    p_em = np.select(
        [(c_setting == IP) & ~p_local, c_setting == IP, (c_setting == OP) & ~p_local, c_setting == OP],
        [0.15, 0.12, 0.30, 0.04],
        0.0,
    )
    c_referral = np.where(r < p_ref, 0, np.where(r < p_ref + p_em, 1, -1)).astype(np.int8)

    # diagnosis
    dx_codes, dx_lists = _dx_table()
    c_dx = np.full(C, -1, dtype=np.int32)
    c_dial = dialysis[c_member] & (c_setting == SP)
    for key, m in (
        ("ip", is_ip),
        ("op", (c_setting == OP) & (rng.random(C) < 0.96)),
        ("dial", c_dial),
        ("chemo", (c_setting == SP) & ~c_dial),
        ("ph", (c_setting == PH) & (rng.random(C) < 0.4)),
    ):
        idx, w = dx_lists[key]
        c_dx[m] = idx[_pick(rng, w, int(m.sum()))]

    # lines per claim
    c_nlines = np.select(
        [is_ip, c_setting == OP, c_setting == SP],
        [
            np.clip(np.rint(14 + 3.0 * c_los * c_sev**0.25 + rng.normal(0, 6, C)), 10, 80),
            1 + np.minimum(rng.poisson(3.0, C), 7),
            2 + np.minimum(rng.poisson(4.0, C), 10),
        ],
        1 + np.minimum(rng.poisson(1.4, C), 5),
    ).astype(np.int64)

    # plain order: by settle date, then provider, member
    settle = np.where(is_ip, c_discharge, c_admit)
    order = np.lexsort((c_setting, c_member, c_provider, settle))
    c_member, c_setting, c_admit, c_discharge, c_los, c_sev = (
        c_member[order],
        c_setting[order],
        c_admit[order],
        c_discharge[order],
        c_los[order],
        c_sev[order],
    )
    c_provider, c_referral, c_dx, c_nlines, c_dial = (
        c_provider[order],
        c_referral[order],
        c_dx[order],
        c_nlines[order],
        c_dial[order],
    )
    is_ip = c_setting == IP

    # ---- lines
    L = int(c_nlines.sum())
    l_claim = np.repeat(np.arange(C, dtype=np.int32), c_nlines)
    c_first = np.cumsum(c_nlines) - c_nlines
    line_no = (np.arange(L, dtype=np.int64) - c_first[l_claim] + 1).astype(np.int32)
    l_set = c_setting[l_claim]

    #   group of each line         DRUG  LAB  SPEX DIAL CHEMO BED  SURG CONS REG
    gp = np.array(
        [
            [0.52, 0.22, 0.04, 0.00, 0.01, 0.06, 0.04, 0.11, 0.00],  # inpatient
            [0.62, 0.22, 0.04, 0.00, 0.00, 0.04, 0.01, 0.07, 0.00],  # outpatient
            [0.60, 0.30, 0.00, 0.00, 0.00, 0.00, 0.00, 0.10, 0.00],  # special outpatient
            [0.95, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.05, 0.00],
        ]
    )  # pharmacy
    cum = np.cumsum(gp / gp.sum(1, keepdims=True), axis=1)
    cum[:, -1] = 1.0
    ug = rng.random(L)
    l_group = np.zeros(L, dtype=np.int8)
    for g in range(_N_GROUPS - 1):
        l_group += (ug >= cum[l_set, g]).astype(np.int8)
    first2 = line_no <= 2
    l_group[(l_set == IP) & first2] = BED  # bed and nursing
    l_group[(l_set == OP) & (line_no == 1) & (rng.random(L) < 0.75)] = REG
    sp_first = (l_set == SP) & (line_no == 1)
    l_group[sp_first] = np.where(c_dial[l_claim[sp_first]], DIAL, CHEMO)

    # item within group, by popularity
    n_items = cat["n"]
    # popularity; items outside the catalogue (excluded) are billed less often
    pop = np.exp(rng.normal(0.0, 1.3, n_items)) * cat["billable"] * np.where(cat["klass"] == 4, 0.5, 1.0)
    l_item = np.empty(L, dtype=np.int32)
    for g in range(_N_GROUPS):
        items = np.flatnonzero((cat["group"] == g) & cat["billable"])
        m = l_group == g
        l_item[m] = items[_pick(rng, pop[items], int(m.sum()))]

    # quantities in halves (q2 = 2 * quantity)
    los = c_los[l_claim].astype(np.float64)
    sev = c_sev[l_claim]
    ip_l = l_set == IP
    lam = np.select(
        [
            (l_group == DRUG) & ip_l,
            l_group == DRUG,
            (l_group == LAB) & ip_l,
            (l_group == BED) & ~ip_l,
            (l_group == CONS) & ip_l,
            l_group == CONS,
            (l_group == CHEMO) & ip_l,
        ],
        [1.3 * los**0.6 * sev, 1.0, 0.25 * los * np.sqrt(sev), 1.0, 1.5 * sev, 0.5, 0.5 * sev],
        0.0,
    )
    q = 1 + rng.poisson(lam)
    q = np.where((l_group == BED) & ip_l, np.maximum(los, 1), q).astype(np.int64)
    q2 = 2 * q + ((l_group == DRUG) & (rng.random(L) < 0.03))  # some 拆零 half packs

    # unit prices in 0.0001 yuan: the catalogue's usual price, or (one line in five) a
    # price of the provider's own, set to four decimals as per-tablet drug prices are
    base = cat["price"][l_item] * 100
    vary = rng.random(L) < 0.2
    price = np.where(vary, np.maximum(np.rint(base * np.exp(rng.normal(0.02, 0.1, L))), 1), base).astype(np.int64)

    # refunds: line i takes back part of line i-1 (same item, same price)
    prev_ok = np.zeros(L, dtype=bool)
    prev_ok[1:] = (line_no[1:] >= 2) & cat["refundable"][l_item[:-1]]
    cand = prev_ok & (rng.random(L) < 0.006)
    cand[1:] &= ~cand[:-1]
    ridx = np.flatnonzero(cand)
    src = ridx - 1
    l_item[ridx] = l_item[src]
    l_group[ridx] = l_group[src]
    price[ridx] = price[src]
    partial = (q2[src] >= 4) & (rng.random(ridx.size) < 0.5)
    q2[ridx] = -np.where(partial, 2, q2[src])
    is_src = np.zeros(L, dtype=bool)
    is_src[src] = True

    amount = _round_half_away(q2 * price, 200)  # quantity × unit price, rounded once to the fen
    # 抹零: a few lines billed with the odd fen dropped (never refunds or refunded lines)
    plain = ~cand & ~is_src
    moling = plain & (rng.random(L) < 0.005) & (amount >= 100)
    amount[moling] -= amount[moling] % 10

    # codes the catalogue does not know (local HIS codes of drugs not listed)
    unknown_pool = _join(
        "X",
        _take(_ATC_LETTERS, rng.integers(0, len(_ATC_LETTERS), 40)),
        _digits(rng.integers(1, 17, 40), 2),
        "XXD",
        _digits(rng.integers(1, 300, 40), 3),
        "A",
        _digits(rng.integers(1, 200, 40), 3),
        _digits(rng.integers(1000, 10000, 40), 4),
        _digits(np.arange(90000, 90040), 5),
    )
    unk = plain & (rng.random(L) < 0.001)
    l_item[unk] = n_items + rng.integers(0, 40, int(unk.sum()))

    return {
        "C": C,
        "L": L,
        "l_claim": l_claim,
        "line_no": line_no,
        "c_member": c_member,
        "c_provider": c_provider,
        "c_setting": c_setting,
        "c_referral": c_referral,
        "c_admit": c_admit,
        "c_discharge": c_discharge,
        "c_dx": c_dx,
        "c_nlines": c_nlines,
        "l_item": l_item,
        "q2": q2,
        "price": price,
        "amount": amount,
        "dx_codes": dx_codes,
        "item_codes": pa.concat_arrays([cat["code"], unknown_pool]),
        "refund": cand,
    }


# ---------------------------------------------------------------------------
# bad claims
# ---------------------------------------------------------------------------
def _corrupt(seed: int, bad_rows: float, cl, mem, prov, year: int):
    """Make ``bad_rows`` of the claims invalid, one defect each; returns the line arrays."""
    C, L = cl["C"], cl["L"]
    l_claim = cl["l_claim"]
    n_mem, n_prov = mem["n"], prov["n"]
    # line-level working copies
    ln = {
        "claim": l_claim.astype(np.int64),
        "line_no": cl["line_no"].copy(),
        "member": cl["c_member"][l_claim].astype(np.int64),
        "provider": cl["c_provider"][l_claim].astype(np.int64),
        "setting": cl["c_setting"][l_claim],
        "referral": cl["c_referral"][l_claim],
        "admit": cl["c_admit"][l_claim],
        "discharge": cl["c_discharge"][l_claim],
        "discharge_ok": (cl["c_setting"] == IP)[l_claim],
        "dx": cl["c_dx"][l_claim],
        "item": cl["l_item"].astype(np.int64),
        "item_ok": np.ones(L, dtype=bool),
        "q2": cl["q2"],
        "price": cl["price"],
        "amount": cl["amount"],
        "amount_ok": np.ones(L, dtype=bool),
    }
    extra_members = pa.array([], type=pa.string())
    extra_providers = pa.array([], type=pa.string())
    n_bad = int(round(bad_rows * C))
    if n_bad <= 0:
        return ln, extra_members, extra_providers, np.zeros(0, np.int64), np.zeros(0, np.int8)

    rng = np.random.default_rng([seed, 0xBAD])
    first = np.cumsum(cl["c_nlines"]) - cl["c_nlines"]
    nlines = cl["c_nlines"]
    is_ip = cl["c_setting"] == IP
    eligible = {
        "inconsistent_claim_header": nlines >= 2,
        "missing_discharge_date": is_ip,
        "discharge_before_admit": is_ip,
    }
    target = np.full(len(BAD_KINDS), n_bad // len(BAD_KINDS))
    target[rng.permutation(len(BAD_KINDS))[: n_bad % len(BAD_KINDS)]] += 1
    perm = rng.permutation(C)
    used = np.zeros(C, dtype=bool)
    chosen: dict[int, np.ndarray] = {}
    # inpatient-only kinds first; their shortfall is shared by the others
    kinds_order = [5, 6, 2, 0, 1, 3, 4, 7]
    deficit = 0
    for i, k in enumerate(kinds_order):
        name = BAD_KINDS[k]
        want = int(target[k])
        if i >= 2:
            left = len(kinds_order) - i
            share = -(-deficit // left)
            want += share
            deficit -= share
        ok = ~used[perm]
        if name in eligible:
            ok &= eligible[name][perm]
            # never use up a restricted pool: at most twice the requested rate of it
            sharing = sum(1 for e in eligible.values() if e is eligible[name])
            cap = int(np.ceil(int(eligible[name].sum()) * min(0.5, 2.0 * bad_rows) / sharing))
            deficit += max(0, want - cap)
            want = min(want, cap)
        pick = perm[ok][:want]
        deficit += want - pick.size
        used[pick] = True
        chosen[k] = np.sort(pick)

    claim_kind = np.full(C, -1, dtype=np.int8)
    for k, ids in chosen.items():
        claim_kind[ids] = k
    line_kind = claim_kind[l_claim]

    def one_line(ids: np.ndarray, min_no: int = 1) -> np.ndarray:
        """a random line (row index) of each claim, with line_no >= min_no"""
        lo = min_no - 1
        off = lo + np.floor(rng.random(ids.size) * (nlines[ids] - lo)).astype(np.int64)
        return first[ids] + off

    # 0 null_required_field: item_code or amount null on one line
    ids = chosen[0]
    rows = one_line(ids)
    which = rng.random(ids.size) < 0.5
    ln["item_ok"][rows[which]] = False
    ln["amount_ok"][rows[~which]] = False
    # 2 inconsistent_claim_header: one later line differs (provider, member or admit_date)
    ids = chosen[2]
    rows = one_line(ids, 2)
    how = rng.integers(0, 3, ids.size)
    r0, r1, r2 = rows[how == 0], rows[how == 1], rows[how == 2]
    ln["provider"][r0] = (ln["provider"][r0] + 1 + rng.integers(0, n_prov - 1, r0.size)) % n_prov
    ln["member"][r1] = (ln["member"][r1] + 1 + rng.integers(0, max(n_mem - 1, 1), r1.size)) % n_mem
    ln["admit"][r2] += 1  # inpatient stays are >= 1 day, so admit never passes discharge
    # 3 unknown_member: valid-looking ID numbers from outside the pool
    ids = chosen[3]
    if ids.size:
        births = rng.integers(_days(1930, 1, 1), _days(year - 1, 12, 31), ids.size)
        extra_members = _id_card(np.full(ids.size, _UNKNOWN_MEMBER_REGION), births, np.arange(ids.size) % 1000)
        m = line_kind == 3
        ln["member"][m] = n_mem + np.searchsorted(ids, ln["claim"][m])
    # 4 unknown_provider
    ids = chosen[4]
    if ids.size:
        extra_providers = _join(
            "H", _digits(rng.choice(_LOCAL_REGIONS, ids.size), 6), _digits(90000 + np.arange(ids.size), 5)
        )
        m = line_kind == 4
        ln["provider"][m] = n_prov + np.searchsorted(ids, ln["claim"][m])
    # 5 missing_discharge_date
    ln["discharge_ok"][line_kind == 5] = False
    # 6 discharge_before_admit
    m = line_kind == 6
    back = rng.integers(1, 6, C)
    ln["discharge"][m] = ln["admit"][m] - back[ln["claim"][m]]
    # 7 negative_claim_total: a refund claim with nothing to refund
    m = line_kind == 7
    ln["q2"] = np.where(m, -np.abs(ln["q2"]), ln["q2"])
    ln["amount"] = np.where(m, -np.abs(ln["amount"]), ln["amount"])
    # 1 duplicate_line: line 1 appears twice (last, so nothing else changes)
    ids = chosen[1]
    rep = np.ones(L, dtype=np.int64)
    rep[first[ids]] = 2
    take = np.repeat(np.arange(L), rep)
    if ids.size:
        for key in ln:
            ln[key] = ln[key][take]

    bad_ids = np.flatnonzero(claim_kind >= 0)
    return ln, extra_members, extra_providers, bad_ids, claim_kind[bad_ids]


def _claim_ids(year: int, provider: np.ndarray, admit: np.ndarray, providers: int) -> pa.Array:
    """Claim ids as providers' systems number their visits: the year, the provider's
    number (fixed width) and its own visit counter in admission order, unpadded, so
    ids vary in length and their order is neither file order nor settlement order."""
    C = provider.size
    by_admit = np.lexsort((np.arange(C), admit, provider))
    p = provider[by_admit]
    run = np.ones(C, bool)
    run[1:] = p[1:] != p[:-1]
    first = np.maximum.accumulate(np.where(run, np.arange(C), 0))
    counter = np.empty(C, np.int64)
    counter[by_admit] = np.arange(C) - first + 1
    width = max(3, len(str(max(providers - 1, 0))))
    return _join(str(int(year)), _digits(provider, width), pa.array(counter).cast(pa.string()))


#: Row orders of the generated claims file (``generate_tables(order=…)``).
ORDERS = ("date", "member", "shuffled")


def _row_order(order: str, seed: int, ln: dict, cl: dict) -> np.ndarray | None:
    """Permutation of the claim lines for ``order``; None keeps the generated (date) order.

    date: claims in settlement-date order, members interleaved, each claim's lines
    together, as a settlement system exports a night's work (the generated order).
    member: each member's claims together (members-table order, then settle date).
    shuffled: lines in random order.
    """
    if order == "date":
        return None
    L = ln["claim"].size
    if order == "member":
        c = ln["claim"]
        settle = np.where(cl["c_setting"] == IP, cl["c_discharge"], cl["c_admit"])
        return np.lexsort((np.arange(L), c, settle[c], cl["c_member"][c]))
    if order == "shuffled":
        return np.random.default_rng([seed, 0x5A0F]).permutation(L)
    raise ValueError(f"unknown order {order!r}: use one of {', '.join(ORDERS)}")


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------
def generate_tables(
    members: int, year: int, seed: int, bad_rows: float = 0.0, order: str = "date"
) -> dict[str, pa.Table]:
    """Return {"claims": ..., "members": ..., "providers": ..., "catalogue": ...}.

    ``members`` insured persons and their claims of benefit year ``year``
    (about 50 lines per member); deterministic for ``seed``.  ``bad_rows``
    is the fraction of claims made invalid (see the module docstring).
    ``order`` is the row order of the claims table (``ORDERS``): the same rows
    whatever the order.
    """
    members = int(members)
    year = int(year)
    if members < 1:
        raise ValueError("members must be at least 1")
    if not 1900 < year < 9000:
        raise ValueError(f"year out of range: {year}")
    if not 0.0 <= bad_rows <= 1.0:
        raise ValueError("bad_rows must be a fraction between 0 and 1")
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}: use one of {', '.join(ORDERS)}")

    rng = np.random.default_rng(seed)
    cat_table, cat = _catalogue(rng, year)
    prov_table, prov = _providers(rng, members)
    mem_table, mem = _members(rng, members, year)
    cl = _claims(rng, year, mem, prov, cat)

    ln, extra_m, extra_p, bad_idx, bad_kind = _corrupt(seed, float(bad_rows), cl, mem, prov, year)

    claim_ids = _claim_ids(year, cl["c_provider"], cl["c_admit"], prov["n"])
    perm = _row_order(order, seed, ln, cl)
    if perm is not None:
        ln = {k: v[perm] for k, v in ln.items()}
    member_ids = pa.concat_arrays([mem["id"], extra_m])
    provider_ids = pa.concat_arrays([prov["id"], extra_p])
    ref_ok = ln["referral"] >= 0
    dx_ok = ln["dx"] >= 0
    claims = pa.table(
        {
            "claim_id": claim_ids.take(pa.array(ln["claim"])),
            "line_no": pa.array(ln["line_no"], type=pa.int32()),
            "member_id": member_ids.take(pa.array(ln["member"])),
            "provider_id": provider_ids.take(pa.array(ln["provider"])),
            "setting": _take(list(SETTINGS), ln["setting"]),
            "referral": _take(list(REFERRALS), np.where(ref_ok, ln["referral"], 0), ref_ok),
            "admit_date": _date(ln["admit"]),
            "discharge_date": _date(ln["discharge"], ln["discharge_ok"]),
            "item_code": cl["item_codes"].take(pa.array(ln["item"], mask=~ln["item_ok"])),
            "quantity": pa.array(ln["q2"] / 2.0, type=pa.float64()),
            "unit_price": _decimal(ln["price"], pa.decimal128(12, 4)),
            "amount": _decimal(ln["amount"], pa.decimal128(14, 2), ln["amount_ok"]),
            "diagnosis": _take(cl["dx_codes"], np.where(dx_ok, ln["dx"], 0), dx_ok),
        },
        schema=SCHEMAS["claims"],
    )
    bad_map = {}
    if bad_idx.size:
        bad_ids = claim_ids.take(pa.array(bad_idx)).to_pylist()
        bad_map = dict(zip(bad_ids, (BAD_KINDS[k] for k in bad_kind.tolist())))
    meta = {
        GENERATOR_KEY: json.dumps(
            {"members": members, "year": year, "seed": seed, "bad_rows": bad_rows, "order": order}
        ).encode(),
        BAD_CLAIMS_KEY: json.dumps(bad_map, sort_keys=True).encode(),
    }
    claims = claims.replace_schema_metadata(meta)
    return {"claims": claims, "members": mem_table, "providers": prov_table, "catalogue": cat_table}


def bad_claims(tables) -> dict[str, str]:
    """claim_id -> intended rejection reason of the claims ``generate_tables`` corrupted.

    Accepts the dict of tables, the claims table or its schema (Parquet and
    Feather files written by ``write_dataset`` keep it; CSV does not).
    """
    if isinstance(tables, dict):
        tables = tables["claims"]
    schema = tables if isinstance(tables, pa.Schema) else tables.schema
    raw = (schema.metadata or {}).get(BAD_CLAIMS_KEY)
    return json.loads(raw) if raw else {}


_EXT = {"parquet": ".parquet", "feather": ".arrow", "csv": ".csv"}


def write_dataset(tables: dict[str, pa.Table], out_dir: pathlib.Path, fmt: str = "parquet") -> dict[str, pathlib.Path]:
    """Write claims, members, providers and catalogue into ``out_dir``.

    ``fmt`` is ``parquet`` (``.parquet``), ``feather`` (Arrow IPC, ``.arrow``)
    or ``csv`` (with a header).  Each file is written to a temporary name and
    renamed into place.  Returns {table name: path}.
    """
    fmt = fmt.lower()
    if fmt not in _EXT:
        raise ValueError(f"unknown format {fmt!r}: use parquet, feather or csv")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, pathlib.Path] = {}
    for name in TABLE_NAMES:
        if name not in tables:
            continue
        table = tables[name]
        path = out_dir / f"{name}{_EXT[fmt]}"
        tmp = out_dir / f".{name}{_EXT[fmt]}.tmp-{os.getpid()}"
        try:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                pq.write_table(table, tmp, compression="zstd")
            elif fmt == "feather":
                import pyarrow.feather as feather

                feather.write_feather(table, tmp, compression="lz4")
            else:
                import pyarrow.csv as pcsv

                pcsv.write_csv(table, tmp)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        paths[name] = path
    return paths
