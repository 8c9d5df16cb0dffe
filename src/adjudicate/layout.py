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

from . import _core


def _group(name: str, prefix: str) -> type[IntEnum]:
    """An IntEnum of the ``_core`` constants named ``prefix…``, in value order, without the prefix."""
    found = sorted((getattr(_core, n), n.removeprefix(prefix)) for n in dir(_core) if n.startswith(prefix))
    values = [v for v, _ in found]
    if values != list(range(len(values))):
        raise ImportError(f"_core.pxd: the {prefix}* constants must number 0, 1, 2 … without gaps")
    return IntEnum(name, [(n, v) for v, n in found])  # type: ignore[return-value]


BlockField = _group("BlockField", "F_")
AccountMode = _group("AccountMode", "ACCOUNT_")
ClaimSum = _group("ClaimSum", "SUM_")
Settled = _group("Settled", "OUT_")
#: Bits of band_flags / acct_items (not columns).
FLAG_DEDUCTIBLE, FLAG_SUBSIDISED, FSP_BIT = _core.FLAG_DEDUCTIBLE, _core.FLAG_SUBSIDISED, _core.FSP_BIT
