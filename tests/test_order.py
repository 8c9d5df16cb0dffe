"""Contract §3: the result does not depend on row order, file split or threads."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adjudicate import policy as P
from adjudicate.engine import adjudicate, read_inputs
from adjudicate.generate import generate_tables, write_dataset
from adjudicate.outputs import lines_table, rejected_table, settlements_table


@pytest.fixture(scope="module")
def tables():
    return generate_tables(400, 2024, seed=5, bad_rows=0.03)


def outputs(folder, policy="prefecture-employee", threads=1, claims=None):
    claims = claims or [folder / "claims.parquet"]
    inputs = read_inputs(
        claims, [folder / "members.parquet"], [folder / "providers.parquet"], [folder / "catalogue.parquet"]
    )
    r = adjudicate(inputs, P.load(policy), threads=threads)
    return settlements_table(r), lines_table(r), rejected_table(r)


@pytest.mark.parametrize("policy", sorted(P.shipped()))
def test_shuffled_split_and_threads(tmp_path, tables, policy):
    a = tmp_path / "a"
    write_dataset(tables, a)
    expected = outputs(a, policy)
    rng = np.random.default_rng(1)
    b = tmp_path / "b"
    shuffled = {k: t.take(pa.array(rng.permutation(t.num_rows))) for k, t in tables.items()}
    write_dataset(shuffled, b)
    parts = []
    claims = shuffled["claims"]
    cuts = sorted(rng.choice(claims.num_rows, 3, replace=False))
    for i, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, claims.num_rows])):
        parts.append(b / f"claims-{i}.parquet")
        pq.write_table(claims.slice(lo, hi - lo), parts[-1])
    for threads in (1, 2, 3):
        got = outputs(b, policy, threads=threads, claims=parts)
        for e, g in zip(expected, got):
            assert g.equals(e)


@pytest.mark.parametrize("policy", ["prefecture-employee", "shenzhen-comprehensive"])
def test_generated_layouts_give_identical_outputs(tmp_path, policy):
    """Issue 9: the same data in date, member and shuffled row order settles identically."""
    results = []
    for order in ("date", "member", "shuffled"):
        folder = tmp_path / order
        write_dataset(generate_tables(300, 2024, seed=9, bad_rows=0.03, order=order), folder)
        results.append(outputs(folder, policy, threads=2))
    for got in results[1:]:
        for e, g in zip(results[0], got):
            assert g.equals(e)


def test_mixed_formats_split_give_identical_outputs(tmp_path, tables):
    """Dictionary-read Parquet parts, CSV text and Arrow IPC in one claims input (issue 9:
    the low-cardinality columns of Parquet files are read as dictionaries)."""
    import pyarrow.csv as pcsv
    import pyarrow.feather as feather

    a = tmp_path / "a"
    write_dataset(tables, a)
    expected = outputs(a)
    claims = tables["claims"]
    third = claims.num_rows // 3
    parts = [a / "p0.parquet", a / "p1.csv", a / "p2.arrow", a / "p3.parquet"]
    pq.write_table(claims.slice(0, third), parts[0])
    pcsv.write_csv(claims.slice(third, third), parts[1])
    feather.write_feather(claims.slice(2 * third, third // 2), parts[2])
    pq.write_table(claims.slice(2 * third + third // 2), parts[3], row_group_size=1000)
    got = outputs(a, claims=parts, threads=2)
    for e, g in zip(expected, got):
        assert g.equals(e)
