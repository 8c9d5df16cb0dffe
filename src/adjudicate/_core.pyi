# Type stub of the compiled kernel (_core.pyx), so that mypy checks its callers.
# Keep in step with the ``def`` signatures there and the constants in _core.pxd.
# Arrays are C-contiguous numpy arrays of the dtype named (the kernel takes typed memoryviews), but for
# settle_lines' and settle_claims' sums and out, which may be in either order (the engine's are column-major).

import numpy as np
from numpy.typing import NDArray

_I8 = NDArray[np.int8]
_I16 = NDArray[np.int16]
_Index = NDArray[np.int32] | NDArray[np.int64]
_I32 = NDArray[np.int32]
_I64 = NDArray[np.int64]
_U8 = NDArray[np.uint8]
_F64 = NDArray[np.float64]

# _core.pxd: columns of the block table B
F_NBANDS: int
F_COUNTER: int
F_SCALE_MASK: int
F_NORD: int
F_CAP: int
F_OVERFLOW: int
F_TIER_RATE: int
F_TIER_MASK: int
F_SUPP_LIMIT: int
F_SUB_IN: int
F_SUB_RET: int
F_ACCOUNT: int
F_NACCT: int
F_P_IN: int
F_P_RET: int
F_INPATIENT: int
F_CAP_ROW: int
F_SUPP_ROW: int
ACCOUNT_NONE: int
ACCOUNT_MEMBER_SHARE: int
ACCOUNT_BEFORE_FUND: int
FLAG_DEDUCTIBLE: int
FLAG_SUBSIDISED: int
FSP_BIT: int
SUM_TOTAL: int
SUM_SELF_PAY: int
SUM_FIRST_SELF_PAY: int
SUM_ELIGIBLE_A: int
SUM_ELIGIBLE_B: int
SUM_ELIGIBLE_SPECIAL: int
SUM_ELIGIBLE_SUPPLEMENTARY: int
OUT_DEDUCTIBLE: int
OUT_FUND_POOL: int
OUT_FUND_SUPPLEMENTARY: int
OUT_SUBSIDY: int
OUT_ACCOUNT_PAID: int
OUT_ADMISSION_ORDINAL: int

def split_lines(
    claim_of_line: _Index,
    amount: _I64,
    quantity: _I64,
    cls: _I8,
    item_ratio: _I16,
    max_price: _I64,
    benefit: _U8,
    class_ratio: _I64,
    supplementary_catalogue: bool,
    per_fen: int,
    self_pay: _I64,
    first_self_pay: _I64,
    eligible: _I64,
    claim_sums: _I64,
    start: int,
    stop: int,
) -> None: ...
def settle_claims(
    member_of_claim: _I64,
    year: _I32,
    period: _I64,
    setting: _I8,
    benefit: _U8,
    factor: _I64,
    level_row: _I8,
    months: _I64,
    sums: _I64,
    category: _I8,
    civil_servant: _U8,
    balance: _I64,
    base_year: int,
    credit: _I64,
    block_of_setting: _I64,
    B: _I64,
    band_from: _I64,
    band_pool: _I64,
    band_supp: _I64,
    band_flags: _I64,
    ded: _I64,
    acct_items: _I64,
    direct: _I64,
    lim_months: _I64,
    lim_amount: _I64,
    lim_n: _I64,
    out: _I64,
    start: int,
    stop: int,
) -> None: ...
def settle_lines(
    line_start: _I64,
    line_claim: _Index,
    amount: _I64,
    quantity: _I64,
    cls: _I8,
    item_ratio: _I16,
    max_price: _I64,
    class_ratio: _I64,
    supplementary_catalogue: bool,
    per_fen: int,
    self_pay: _I64,
    first_self_pay: _I64,
    eligible: _I64,
    sums: _I64,
    negative: _U8,
    member_of_claim: _I64,
    year: _I32,
    period: _I64,
    setting: _I8,
    benefit: _U8,
    factor: _I64,
    level_row: _I8,
    months: _I64,
    category: _I8,
    civil_servant: _U8,
    balance: _I64,
    base_year: int,
    credit: _I64,
    block_of_setting: _I64,
    B: _I64,
    band_from: _I64,
    band_pool: _I64,
    band_supp: _I64,
    band_flags: _I64,
    ded: _I64,
    acct_items: _I64,
    direct: _I64,
    lim_months: _I64,
    lim_amount: _I64,
    lim_n: _I64,
    out: _I64,
    settle: bool,
    start: int,
    stop: int,
) -> int: ...
def allocate(
    line_start: _I64,
    amount: _I64,
    weight: _I64,
    share: _I64,
    start: int,
    stop: int,
    amount2: _I64 | None = None,
    share2: _I64 | None = None,
) -> None: ...
def floats_to_scaled(x: _F64, factor: float, limit: float, exact: bool, values: _I64, flags: _U8) -> None: ...
def match_catalogue(
    item: _I32 | _I64,
    take: _I64,
    date: _I32,
    first: _I64,
    count: _I64,
    start: _I64,
    end: _I64,
    order: _I64,
    crow: _I64,
) -> None: ...
def gather_catalogue(
    crow: _I64,
    cls: _I8,
    ratio: _I64,
    price: _I64,
    unknown: int,
    cls_out: _I8,
    ratio_out: _I16,
    price_out: _I64,
) -> None: ...
def enrolment_months(since: _I32, on: _I32, out: _I64) -> None: ...
def negative_claims(sums: _I64, out: _U8) -> int: ...
def keep_runs(src: _U8, dst: _U8, width: int, lo: _I64, hi: _I64) -> int: ...
def keep_runs_shifted(src: _I32 | _I64, dst: _I32 | _I64, lo: _I64, hi: _I64, shift: _I64) -> int: ...
def first_differing(
    order: _I32 | _I64,
    start: _I64,
    values: _I8 | _I32 | _I64,
    nulls: _U8,
    only: _U8,
    out: _I64,
) -> None: ...
def string_codes(valid: _U8, offsets: _I32, data: _U8, offset: int, code: _I32 | _I64) -> _I64: ...
def decimals_to_scaled(
    words: _I64, width: int, nulls: _U8, shift: int, exact: bool, big: int, values: _I64, status: _U8
) -> None: ...
def repeat_strings(offsets: _I32, data: _U8, line_start: _I64, out_offsets: _I32, out_data: _U8) -> None: ...
def group_sum(key: _I32 | _I64, values: _I64, out: _I64) -> None: ...
