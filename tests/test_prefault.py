"""encode's layout outputs are made before the header passes and their pages touched on a helper
thread (_encode.touch_pages): the arrays laid out are those touched, lines without a claim_id
(laid out nowhere) included, and the touch writes nothing but its zeros."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from adjudicate import _encode
from adjudicate import encode as encode_module
from adjudicate.encode import encode
from adjudicate.generate import generate_tables
from adjudicate.inputs import from_arrow
from adjudicate.schema import CATALOGUE, CLAIMS, MEMBERS, PROVIDERS


@pytest.mark.parametrize(("size", "step"), [(0, 1), (1, 4096), (10_000, 4096), (10_001, 7), (5, 1)])
def test_touch_pages_writes_a_zero_every_step(size, step):
    a = np.full(size, 7, np.uint8)
    _encode.touch_pages(a, step)
    expected = np.full(size, 7, np.uint8)
    expected[::step] = 0
    assert np.array_equal(a, expected)
    with pytest.raises(ValueError):
        _encode.touch_pages(a, 0)


@pytest.mark.parametrize("orphans", [0, 3])
def test_the_lines_laid_out_are_in_the_arrays_touched(monkeypatch, orphans):
    t = generate_tables(8, 2024, seed=3)
    claims = t["claims"]
    if orphans:  # lines without a claim_id: rejected alone, never laid out
        ids = claims["claim_id"].to_pylist()
        for k in range(orphans):
            ids[5 * k + 1] = None
        claims = claims.set_column(claims.schema.get_field_index("claim_id"), "claim_id", pa.array(ids, pa.string()))
    tables = {
        k: from_arrow(spec, [f"{k}.parquet"], [(claims if k == "claims" else t[k], False)], 1)
        for k, spec in (("claims", CLAIMS), ("members", MEMBERS), ("providers", PROVIDERS), ("catalogue", CATALOGUE))
    }
    touched: list[int] = []
    touch = _encode.touch_pages

    class Encode:  # _encode, with touch_pages recording the buffers it touched
        def __getattr__(self, name):
            return getattr(_encode, name)

        @staticmethod
        def touch_pages(a, step=4096):
            touched.append(a.__array_interface__["data"][0])
            touch(a, step)

    plain = encode(tables["claims"], tables["members"], tables["providers"], tables["catalogue"])
    monkeypatch.setattr(encode_module, "_encode", Encode())
    enc = encode(tables["claims"], tables["members"], tables["providers"], tables["catalogue"])
    assert len(touched) == 8
    if not plain.rejected or len(plain.rejected) == orphans:  # nothing cut out: the arrays themselves
        for name in ("line_row", "line_claim", "amount", "quantity", "max_price", "line_no", "item_ratio", "cls"):
            assert getattr(enc, name).__array_interface__["data"][0] in touched, name
    assert len(plain.rejected) >= orphans
    for name in (*enc.LINE_FIELDS, "line_claim", "line_start", *enc.CLAIM_FIELDS):
        assert np.array_equal(getattr(enc, name), getattr(plain, name)), name
    assert enc.rejected == plain.rejected
