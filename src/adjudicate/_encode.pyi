# Type stub of encode's compiled passes (_encode.pyx), so that mypy checks their callers.
# Keep in step with the ``def`` signatures there.

import numpy as np
from numpy.typing import NDArray

_I8 = NDArray[np.int8]
_I16 = NDArray[np.int16]
_I32 = NDArray[np.int32]
_I64 = NDArray[np.int64]
_U8 = NDArray[np.uint8]
_Index = NDArray[np.int32] | NDArray[np.int64]

HEAD: np.dtype
SEEN: int
SUSPECT: int

def check_lines(
    claim: _Index,
    line_no: _Index,
    required_nulls: list[_U8],
    required_rank: _I16,
    member: _I32,
    provider: _I32,
    setting: _I8,
    referral: _I8,
    admit: _I32,
    discharge: _I32,
    diagnosis: _I32,
    header_nulls: list[_U8],
    inpatient: int,
    first_rank: int,
    head: _U8,
    cand_row: _I64,
    code_lo: int = ...,
    code_hi: int = ...,
    row_lo: int = ...,
    row_hi: int = ...,
) -> None: ...
def code_span(claim: _Index, lo: int, hi: int) -> tuple[int, int]: ...
def settlement_order(
    head: _U8, member_rank: _I64, inpatient: int, id_offsets: _I32, id_data: _U8, out: _I64, position: _Index
) -> None: ...
def member_groups(head: _U8, member_rank: _I64, out: _I64) -> _I64: ...
def order_groups(
    head: _U8,
    bounds: _I64,
    g0: int,
    g1: int,
    inpatient: int,
    id_offsets: _I32,
    id_data: _U8,
    out: _I64,
    position: _Index,
) -> None: ...
def string_positions(set_offsets: _I32, set_data: _U8, offsets: _I32, data: _U8, out: _I32) -> None: ...
def big_endian_ints(data: _U8, width: int, out: _I64) -> None: ...
def touch_pages(a: _U8, step: int = ...) -> None: ...
def layout_claims(
    claim: _Index,
    rank: _Index,
    line_no: _Index,
    amount: _I64,
    quantity: _I64,
    item: _I32,
    claim_date: _I32,
    line_start: _I64,
    cat_first: _I64,
    cat_count: _I64,
    cat_start: _I64,
    cat_end: _I64,
    cat_order: _I64,
    cat_cls: _I8,
    cat_ratio: _I64,
    cat_price: _I64,
    unknown: int,
    line_row: _Index,
    line_claim: _Index,
    line_no_out: _I32,
    amount_out: _I64,
    quantity_out: _I64,
    cls_out: _I8,
    ratio_out: _I16,
    price_out: _I64,
    bucket_lines: int = ...,
    order: bool = ...,
    part: int = ...,
    parts: int = ...,
) -> None: ...
def order_buckets(
    line_start: _I64,
    claim_date: _I32,
    cat_first: _I64,
    cat_count: _I64,
    cat_start: _I64,
    cat_end: _I64,
    cat_order: _I64,
    cat_cls: _I8,
    cat_ratio: _I64,
    cat_price: _I64,
    unknown: int,
    line_row: _Index,
    line_claim: _Index,
    line_no_out: _I32,
    amount_out: _I64,
    quantity_out: _I64,
    cls_out: _I8,
    ratio_out: _I16,
    price_out: _I64,
    part: int,
    parts: int,
    bucket_lines: int = ...,
) -> None: ...
def first_repeat_laid(
    line_start: _I64, line_no: _I32, line_row: _Index, skip: _U8, out: _I64, k0: int = ..., k1: int = ...
) -> None: ...
def header_columns(
    head: _U8,
    claims: _I64,
    inpatient: int,
    member: _I64,
    provider: _I64,
    setting: _I8,
    referral: _I8,
    admit: _I32,
    settle: _I32,
    line_start: _I64 | None = ...,
    k0: int = ...,
    k1: int = ...,
    counts: bool = ...,
) -> None: ...

class StringCoder:
    def __init__(self, most: int = ...) -> None: ...
    def __len__(self) -> int: ...
    def reserve(self, n: int) -> None: ...
    def add(self, valid: _U8, offset: int, offsets: _I32, data: _U8, code: _I32) -> None: ...
    def dictionary(self) -> tuple[_I32, _U8]: ...
