# Type stub of the compiled partition router (_partition.pyx), so that mypy checks its callers.
# Keep in step with the ``def`` signatures there.

from typing import Any

import numpy as np
from numpy.typing import NDArray

_I32 = NDArray[np.int32]
_I64 = NDArray[np.int64]
_U8 = NDArray[np.uint8]
_U64 = NDArray[np.uint64]
_Offsets = NDArray[np.int32] | NDArray[np.int64]

MAX_PARTS: int

def decimal64(words: _I64, valid: _U8, limit: int, out: _I64) -> bool: ...

class Router:
    parts: int
    noted: int  # read-only properties
    capacity: int
    def __init__(self, offsets: _I64, data: Any, part_of_member: _I32, code_of_member: _I32, parts: int) -> None: ...
    def members(self, offsets: _Offsets, data: Any, valid: _U8) -> _I32: ...
    def route(self, member: _I32) -> tuple[_I32, _I64, _I64, _I32]: ...
    def note_claims(self, offsets: _Offsets, data: Any, valid: _U8, part: _I32) -> None: ...
    def reserve(self, claims: int) -> None: ...
    def flagged(self) -> tuple[_U64, list[int]]: ...
    def keys(self, offsets: _Offsets, data: Any, valid: _U8) -> _U64: ...
    def release(self) -> None: ...
