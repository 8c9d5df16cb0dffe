"""The kernel's table layout, as Python enums: one definition, in ``_core.pxd``.

The constants are compiled into ``_core`` and grouped here by prefix, so a
column added to the .pxd is seen by the kernel and by Python at once:

- :data:`BlockField`: columns of the block table ``B`` (``F_``);
- :data:`AccountMode`: values of its ``account`` column (``ACCOUNT_``);
- :data:`ClaimSum`: columns of ``claim_sums`` (``SUM_``);
- :data:`Settled`: columns of ``settle_claims``' output (``OUT_``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

from . import _core


def _group(name: str, prefix: str) -> type[IntEnum]:
    """An IntEnum of the ``_core`` constants named ``prefix…``, in value order, without the prefix."""
    found = sorted((getattr(_core, n), n.removeprefix(prefix)) for n in dir(_core) if n.startswith(prefix))
    values = [v for v, _ in found]
    if values != list(range(len(values))):
        raise ImportError(f"_core.pxd: the {prefix}* constants must number 0, 1, 2 … without gaps")
    return IntEnum(name, [(n, v) for v, n in found])  # type: ignore[return-value]  # the functional API's type


if TYPE_CHECKING:
    # What the type checker sees: the same members, named statically (it cannot run _group).
    # tests/test_layout.py checks these names against the compiled module.

    class BlockField(IntEnum):
        NBANDS = _core.F_NBANDS
        COUNTER = _core.F_COUNTER
        SCALE_MASK = _core.F_SCALE_MASK
        NORD = _core.F_NORD
        CAP = _core.F_CAP
        OVERFLOW = _core.F_OVERFLOW
        TIER_RATE = _core.F_TIER_RATE
        TIER_MASK = _core.F_TIER_MASK
        SUPP_LIMIT = _core.F_SUPP_LIMIT
        SUB_IN = _core.F_SUB_IN
        SUB_RET = _core.F_SUB_RET
        ACCOUNT = _core.F_ACCOUNT
        NACCT = _core.F_NACCT
        P_IN = _core.F_P_IN
        P_RET = _core.F_P_RET
        INPATIENT = _core.F_INPATIENT
        CAP_ROW = _core.F_CAP_ROW
        SUPP_ROW = _core.F_SUPP_ROW

    class AccountMode(IntEnum):
        NONE = _core.ACCOUNT_NONE
        MEMBER_SHARE = _core.ACCOUNT_MEMBER_SHARE
        BEFORE_FUND = _core.ACCOUNT_BEFORE_FUND

    class ClaimSum(IntEnum):
        TOTAL = _core.SUM_TOTAL
        SELF_PAY = _core.SUM_SELF_PAY
        FIRST_SELF_PAY = _core.SUM_FIRST_SELF_PAY
        ELIGIBLE_A = _core.SUM_ELIGIBLE_A
        ELIGIBLE_B = _core.SUM_ELIGIBLE_B
        ELIGIBLE_SPECIAL = _core.SUM_ELIGIBLE_SPECIAL
        ELIGIBLE_SUPPLEMENTARY = _core.SUM_ELIGIBLE_SUPPLEMENTARY

    class Settled(IntEnum):
        DEDUCTIBLE = _core.OUT_DEDUCTIBLE
        FUND_POOL = _core.OUT_FUND_POOL
        FUND_SUPPLEMENTARY = _core.OUT_FUND_SUPPLEMENTARY
        SUBSIDY = _core.OUT_SUBSIDY
        ACCOUNT_PAID = _core.OUT_ACCOUNT_PAID
        ADMISSION_ORDINAL = _core.OUT_ADMISSION_ORDINAL
else:
    BlockField = _group("BlockField", "F_")
    AccountMode = _group("AccountMode", "ACCOUNT_")
    ClaimSum = _group("ClaimSum", "SUM_")
    Settled = _group("Settled", "OUT_")
#: Bits of band_flags / acct_items (not columns).
FLAG_DEDUCTIBLE, FLAG_SUBSIDISED, FSP_BIT = _core.FLAG_DEDUCTIBLE, _core.FLAG_SUBSIDISED, _core.FSP_BIT
