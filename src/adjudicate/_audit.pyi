# Type stub of the compiled audit pass (_audit.pyx), so that mypy checks its callers.
# Keep in step with the ``def`` signatures there.

import numpy as np
from numpy.typing import NDArray

_I8 = NDArray[np.int8]
_I32 = NDArray[np.int32]
_I64 = NDArray[np.int64]
_U8 = NDArray[np.uint8]
_U64 = NDArray[np.uint64]

def flag_claims(
    member: _I64,
    provider: _I64,
    setting: _I8,
    admit: _I32,
    settle: _I32,
    diag: _I64,
    total: _I64,
    line_start: _I64,
    item: _I64,
    qty: _I64,
    amount: _I64,
    kind: _I8,
    claim_code: _I64,
    id_off: _I64,
    id_data: _U8,
    p: _I64,
    lo: int,
    hi: int,
    lh: _U64,
    out: _I64,
) -> int: ...
def provider_year_sums(
    group: _I64,
    member: _I64,
    setting: _I8,
    total: _I64,
    fund: _I64,
    self_pay: _I64,
    los: _I64,
    drug: _I64,
    readmit: _U8,
    out: _I64,
) -> None: ...
