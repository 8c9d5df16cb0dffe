"""Labels of terminal tables and reports, in English or Chinese (``--lang en|zh``).

The Chinese terms are those of the domain glossary (shared/spec/domain.md §1)
and of contract §4. A key with no entry is shown as it is (column names,
codes), so a new output column never breaks a table. The language is set
for a whole command by the command line (:func:`use_lang`), and read by
:func:`t` wherever a label is made, in the CLI or in ``adjudicate.report``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

LANGS = ("en", "zh")
LANG: ContextVar[str] = ContextVar("lang", default="en")

#: key -> (English, 中文)
LABELS: dict[str, tuple[str, str]] = {
    # amounts (contract §4)
    "total": ("total", "医疗费用总额"),
    "self_pay": ("self-pay", "自费"),
    "first_self_pay": ("first self-pay", "先行自付"),
    "eligible": ("eligible (policy scope)", "政策范围内费用"),
    "deductible": ("deductible", "起付线"),
    "fund_pool": ("pooled fund", "统筹基金支付"),
    "fund_supplementary": ("supplementary fund", "大额医疗补助"),
    "member_policy_share": ("member's policy share", "政策内个人负担"),
    "subsidy": ("civil-servant subsidy", "公务员医疗补助"),
    "account_paid": ("personal account", "个人账户支付"),
    "cash_paid": ("cash", "现金支付"),
    "out_of_pocket": ("out of pocket (cash + account)", "个人负担 (现金 + 个人账户)"),
    # counts
    "input_lines": ("input lines", "明细行数"),
    "input_claims": ("input claims", "结算单数"),
    "settled_claims": ("settled claims", "已结算单数"),
    "rejected_claims": ("rejected claims", "退回单数"),
    "claims": ("claims", "结算单数"),
    "members": ("members", "参保人数"),
    # rejection reasons (contract §4)
    "null_required_field": ("a required field is empty", "必填项为空"),
    "duplicate_line": ("duplicate line", "明细重复"),
    "inconsistent_claim_header": ("lines of a claim disagree", "结算单信息不一致"),
    "unknown_member": ("unknown member", "参保人不存在"),
    "unknown_provider": ("unknown provider", "机构不存在"),
    "missing_discharge_date": ("no discharge date", "缺出院日期"),
    "discharge_before_admit": ("discharge before admission", "出院早于入院"),
    "negative_claim_total": ("negative claim total", "结算总额为负"),
    # funds and statement (schemes.md §7–9)
    "pool": ("pooled fund", "统筹基金"),
    "account": ("personal accounts", "个人账户"),
    "supplementary": ("supplementary fund", "大额医疗补助"),
    "opening": ("opening", "期初结余"),
    "income": ("income", "收入"),
    "expenditure": ("expenditure", "支出"),
    "year_balance": ("year balance", "本年结余"),
    "closing": ("closing", "累计结余"),
    "months_of_reserve": ("months of reserve", "备付能力 (月)"),
    "fund_statement": ("fund statement (yuan)", "基金收支 (元)"),
    "quota_total": ("quota Q", "定额 Q"),
    "due": ("due", "应付"),
    "advances": ("advances", "预付"),
    "balance": ("balance", "结算差额"),
    "admissions": ("admissions", "住院人次"),
    "band": ("band", "结算区间"),
    # words of the reports and tables
    "amount": ("amount", "项目"),
    "yuan": ("yuan", "元"),
    "value": ("value", "数值"),
    "reason": ("reason", "原因"),
    "month": ("month", "月份"),
    "fund": ("fund", "基金"),
    "provider": ("provider", "机构"),
    "change": ("change", "变化"),
    "policy": ("policy", "政策"),
    "summary": ("summary", "汇总"),
    "counts": ("counts", "数量"),
    "totals": ("totals (yuan)", "合计 (元)"),
    "fund_totals": ("who pays (yuan)", "费用支付构成 (元)"),
    "monthly_expenditure": ("expenditure by month (yuan)", "月度支出 (元)"),
    "oop_distribution": (
        "members by out-of-pocket cost in the year (cash + personal account)",
        "参保人年度个人负担分布 (现金 + 个人账户)",
    ),
    "rejections": ("rejected claims by reason", "退回结算单 (按原因)"),
    "no_rejections": ("no claim was rejected", "无退回结算单"),
    "report_run": ("adjudication report", "结算报告"),
    "report_compare": ("policy comparison", "政策比较"),
    "report_sweep": ("policy sweep", "政策方案测算"),
    "variants": ("variants (Δ against variant 0, the baseline)", "方案 (与基准方案 0 相比的变化)"),
    "report_readjudicate": ("readjudication: adjustments", "重新结算: 调整"),
    "report_reconcile": ("year-end reconciliation", "年终清算"),
    "member_change": ("members by change in out-of-pocket cost (B − A, yuan)", "参保人个人负担变化分布 (B − A, 元)"),
    "fund_change": ("change per fund (B − A, yuan)", "各基金变化 (B − A, 元)"),
    "better_off": ("better off", "负担减轻"),
    "worse_off": ("worse off", "负担加重"),
    "unchanged": ("unchanged", "不变"),
    "adjustments_by_change": ("adjusted claims by change", "调整结算单 (按变化)"),
    "before": ("before", "调整前"),
    "now": ("now", "调整后"),
    "corridor": (
        "providers: fund_pool A against quota Q (corridor 90 / 110 / 120 %)",
        "定额结算: 统筹支付 A 与定额 Q 之比 (90 / 110 / 120 %)",
    ),
    "monthly_closing": ("fund balance at the end of each month (yuan)", "各基金月末累计结余 (元)"),
    "reserve_warning": (
        "income or opening balances were not given: balances and months of reserve are not meaningful",
        "未提供收入或期初结余: 结余与备付能力无意义",
    ),
    "generated_by": ("written by adjudicate", "由 adjudicate 生成"),
    "members_count": ("members", "人数"),
    "range": ("range (yuan)", "区间 (元)"),
    "sum": ("total", "合计"),
    "report_audit": ("audit", "稽核"),
    "flags_by_rule": ("flags by rule", "疑点 (按规则)"),
    "flags_to_check": (
        "flags to check first (high severity first, at most 20 per rule)",
        "优先核查的疑点 (高风险在前, 每条规则至多 20 条)",
    ),
    "provider_outliers": ("providers out of line with their peers", "指标异常的机构"),
    "flags": ("flags", "疑点数"),
    "note": ("note", "说明"),
    "fund_statement_year": ("fund statement {year} (基金收支, yuan)", "基金收支 {year} (元)"),
    "mo": ("mo", "个月"),
    "contributions": ("contributions", "征缴收入"),
    "interest": ("interest", "利息收入"),
    "prepayments": ("prepayments", "一次性预缴收入"),
    "fiscal_subsidy": ("fiscal_subsidy", "财政补贴"),
    "other": ("other", "其他收入"),
    # phrases of the terminal tables, translated as they are
    "provider quota settlement (定额结算)": ("provider quota settlement (定额结算)", "定额结算"),
    "providers with a quota": ("providers with a quota", "有定额的机构数"),
    "admissions N": ("admissions N", "住院人次 N"),
    "quota Q = q × N": ("quota Q = q × N", "定额 Q = q × N"),
    "fund_pool A": ("fund_pool A", "统筹基金支付 A"),
    "balance = due − advances": ("balance = due − advances", "结算差额 = 应付 − 预付"),
    "borne by providers above the ceiling": ("borne by providers above the ceiling", "超上限部分由机构负担"),
    "year balance (本年结余)": ("year balance (本年结余)", "本年结余"),
    "closing (累计结余)": ("closing (累计结余)", "累计结余"),
    "account ledger (个人账户)": ("account ledger (个人账户)", "个人账户"),
    "member-years": ("member-years", "人年数"),
    "spent": ("spent", "支出"),
    "credit for next year": ("credit for next year", "次年划入"),
    "next opening": ("next opening", "次年年初余额"),
    "policy before": ("policy before", "原政策"),
    "policy now": ("policy now", "现政策"),
    "settled before": ("settled before", "原结算单数"),
    "settled now": ("settled now", "现结算单数"),
    "adjusted claims": ("adjusted claims", "调整结算单数"),
    "adjusted lines": ("adjusted lines", "调整明细数"),
    "changed": ("changed", "变更"),
    "new": ("new", "新增"),
    "removed": ("removed", "删除"),
    "now_rejected": ("now_rejected", "改为退回"),
}


@contextmanager
def use_lang(lang: str | None) -> Iterator[None]:
    """Labels in ``lang`` ("en" or "zh") inside the block."""
    token = LANG.set(lang if lang in LANGS else "en")
    try:
        yield
    finally:
        LANG.reset(token)


def t(key: str) -> str:
    """The label of ``key`` in the current language (the key itself when there is none)."""
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if LANG.get() == "zh" else pair[0]


def column(key: str) -> str:
    """An output column's name as a table row label: the name itself, and its Chinese term in zh."""
    pair = LABELS.get(key)
    return f"{pair[1]} {key}" if pair and LANG.get() == "zh" else key


__all__ = ["LABELS", "LANG", "LANGS", "column", "t", "use_lang"]
