"""Compare a peer's settlements with the engine's, to the fen, claim by claim.

    python benchmarks/agree.py ENGINE_SETTLEMENTS.parquet PEER_SETTLEMENTS.parquet [--subset]

``--subset``: the peer ran on a sample of members; only the engine's claims
of those members are compared (and every one of them must be there).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from adjudicate.schema import AMOUNTS  # the contract's amount columns, in its order

OTHER = ("member_id", "provider_id", "setting", "settle_date", "benefit_year", "admission_ordinal")


#: Output columns the engine may name otherwise than the peers (which keep the names below): logical name →
#: the engine's. When an output column is renamed, this is the one line to change; a file with either
#: name is read (see ``read_settlements``).
ENGINE_NAMES: dict[str, str] = {}


def read_settlements(path, columns: list[str]) -> pa.Table:
    """``columns`` of a settlements file by their logical names, whichever name (the engine's or the peers')
    the file uses."""
    have = set(pq.read_schema(path).names)
    physical = [c if c in have or ENGINE_NAMES.get(c) not in have else ENGINE_NAMES[c] for c in columns]
    return pq.read_table(path, columns=physical).rename_columns(columns)


def fen(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Exact int64 fen of a decimal column (any scale ≤ 2)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.decimal128(38, 2))
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)[2 * arr.offset : 2 * (arr.offset + len(arr))]
    words = words.reshape(-1, 2)
    if not (words[:, 1] == (words[:, 0] >> 63)).all():
        raise OverflowError("amount does not fit int64 fen")
    out = words[:, 0].copy()
    if arr.null_count:
        out[np.asarray(arr.is_null())] = np.iinfo(np.int64).min  # a null never equals a value
    return out


def _sorted(t: pa.Table) -> pa.Table:
    return t.take(pc.sort_indices(t, [("claim_id", "ascending")]))


def compare(engine_path, peer_path, subset: bool = False, examples: int = 3) -> dict:
    """Mismatch counts per column; 'missing'/'extra' count claims found on one side only."""
    cols = ["claim_id", *OTHER, *AMOUNTS]
    eng = read_settlements(engine_path, cols)
    peer = read_settlements(peer_path, cols)
    extra = int(len(peer) - pc.sum(pc.is_in(peer["claim_id"], value_set=eng["claim_id"])).as_py()) if len(peer) else 0
    if subset:
        members = pc.unique(peer["member_id"])
        eng = eng.filter(pc.is_in(eng["member_id"], value_set=members))
    in_peer = pc.is_in(eng["claim_id"], value_set=peer["claim_id"])
    missing = int(len(eng) - pc.sum(in_peer).as_py()) if len(eng) else 0
    eng = _sorted(eng.filter(in_peer))
    peer = _sorted(peer.filter(pc.is_in(peer["claim_id"], value_set=eng["claim_id"])))
    res: dict = {"claims": len(eng), "missing": missing, "extra": extra, "mismatch": {}, "examples": {}}
    if len(eng) != len(peer) or not pc.all(pc.equal(eng["claim_id"], peer["claim_id"])).as_py():
        raise ValueError("duplicate claim_id in one of the tables")
    ids = eng["claim_id"]
    for c in cols[1:]:
        if c in AMOUNTS:
            a, b = fen(eng[c]), fen(peer[c])
        else:
            x, y = eng[c].combine_chunks(), peer[c].combine_chunks()
            if x.type != y.type:
                y = y.cast(x.type)
            a = np.asarray(pc.fill_null(pc.equal(x, y), False))
            both_null = np.asarray(pc.and_(x.is_null(), y.is_null()))
            a, b = a | both_null, np.ones(len(a), bool)
        bad = np.flatnonzero(a != b)
        res["mismatch"][c] = int(len(bad))
        if len(bad):
            res["examples"][c] = [
                (ids[int(i)].as_py(), str(eng[c][int(i)].as_py()), str(peer[c][int(i)].as_py())) for i in bad[:examples]
            ]
    res["total_mismatches"] = sum(res["mismatch"].values()) + missing + extra
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("engine")
    ap.add_argument("peer")
    ap.add_argument("--subset", action="store_true")
    a = ap.parse_args(argv)
    r = compare(a.engine, a.peer, a.subset)
    print(json.dumps(r, indent=1, default=str))
    return 1 if r["total_mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
