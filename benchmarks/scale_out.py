"""A data set larger than memory for the streaming path, built chunk by chunk.

`adjudicate.generate` builds a whole data set in memory, so 50 million lines
cannot be generated at once on a 24 GB machine. This script generates
``--chunks`` independent data sets (seeds 1, 2, …) one at a time and makes
their ids disjoint by prefixing every member, claim, provider and item id with
the chunk number, writing one claims file per chunk and the concatenated
members, providers and catalogue. Each chunk is a realistic population of its
own; together they are ``--chunks`` times as large.

    python benchmarks/scale_out.py --chunks 5 --members 200000 --out benchmarks/data/scale-5x200000-y2024
    /usr/bin/time -f "%e s, peak RSS %M KB" adjudicate run \\
        --claims benchmarks/data/scale-5x200000-y2024/claims --members benchmarks/data/scale-5x200000-y2024/members.parquet \\
        --providers benchmarks/data/scale-5x200000-y2024/providers.parquet \\
        --catalogue benchmarks/data/scale-5x200000-y2024/catalogue.parquet \\
        --policy prefecture-employee --partitions 20 --out /tmp/out-50M -q
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from adjudicate.generate import generate_tables

IDS = {
    "claims": ("claim_id", "member_id", "provider_id", "item_code"),
    "members": ("member_id",),
    "providers": ("provider_id",),
    "catalogue": ("item_code",),
}


def prefixed(table: pa.Table, columns: tuple[str, ...], prefix: str) -> pa.Table:
    for name in columns:
        i = table.schema.get_field_index(name)
        col = pc.binary_join_element_wise(pa.scalar(prefix), table[name], "")
        table = table.set_column(i, table.schema.field(i), col)
    return table


def build(chunks: int, members: int, year: int, out: Path) -> int:
    """Write the data set; returns the number of claim lines."""
    (out / "claims").mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    lines = 0
    try:
        for k in range(chunks):
            t0 = time.perf_counter()
            tables = generate_tables(members, year, seed=k + 1)
            for name, t in tables.items():
                t = prefixed(t, IDS[name], f"{k}-")
                if name == "claims":
                    pq.write_table(t, out / "claims" / f"claims-{k:03d}.parquet")
                    lines += t.num_rows
                else:
                    t = t.replace_schema_metadata(None)
                    if name not in writers:
                        writers[name] = pq.ParquetWriter(out / f"{name}.parquet", t.schema)
                    writers[name].write_table(t)
            del tables
            print(f"chunk {k + 1}/{chunks}: {lines:,} lines so far ({time.perf_counter() - t0:.1f} s)", flush=True)
    finally:
        for w in writers.values():
            w.close()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=5)
    ap.add_argument("--members", type=int, default=200_000, help="members per chunk (about 50 lines each)")
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    build(args.chunks, args.members, args.year, args.out)


if __name__ == "__main__":
    main()
