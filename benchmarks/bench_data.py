"""Benchmark data sets, generated with the package's own generator and cached.

A data set is identified by (members, year, seed) and a digest of
``adjudicate/generate.py``, so a change to the generator makes a new one.
Cached under ``benchmarks/data/`` (git-ignored).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
LINES_PER_MEMBER = 50
TABLES = ("claims", "members", "providers", "catalogue")


def parse_count(text: str) -> int:
    """'10M' → 10_000_000, '500k' → 500_000, '1e6' → 1_000_000."""
    t = str(text).strip().lower().replace("_", "")
    mult = {"k": 10**3, "m": 10**6, "g": 10**9}.get(t[-1:], 1)
    if t[-1:] in "kmg":
        t = t[:-1]
    return int(float(t) * mult)


def generator_digest() -> str:
    import adjudicate.generate as g

    return hashlib.sha256(Path(g.__file__).read_bytes()).hexdigest()[:10]


def paths(folder: Path) -> dict[str, Path]:
    return {t: folder / f"{t}.parquet" for t in TABLES}


def dataset_folder(members: int, year: int = 2024, seed: int = 1, order: str = "date", bad_rows: float = 0.0) -> Path:
    """Where ``dataset`` caches a data set (whether it exists yet or not)."""
    bad = f"-bad{bad_rows:g}" if bad_rows else ""
    return DATA / f"gen-m{members}-y{year}-s{seed}-{order}{bad}-{generator_digest()}"


def dataset(
    members: int, year: int = 2024, seed: int = 1, say=print, order: str = "date", bad_rows: float = 0.0
) -> tuple[Path, dict]:
    """Folder with the four input files (generated once), and its meta (row counts, time to generate).

    ``order`` is the claims file's row order (``generate --order``): date (the
    default, as a settlement system exports), member or shuffled. ``bad_rows``:
    the fraction of claims made defective (``generate --bad-rows``), each of
    which the engine must reject.
    """
    folder = dataset_folder(members, year, seed, order, bad_rows)
    meta_file = folder / "meta.json"
    if meta_file.exists():
        return folder, json.loads(meta_file.read_text())
    from adjudicate.generate import generate_tables, write_dataset

    say(f"generating {members:,} members (about {members * LINES_PER_MEMBER:,} lines, {order} order) into {folder} ...")
    t0 = time.perf_counter()
    tables = generate_tables(members, year, seed, bad_rows=bad_rows, order=order)
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    write_dataset(tables, tmp, "parquet")
    meta = {
        "members": members,
        "year": year,
        "seed": seed,
        "order": order,
        "bad_rows": bad_rows,
        "generator": generator_digest(),
        "rows": {k: v.num_rows for k, v in tables.items()},
        "claims": len(pc.unique(tables["claims"]["claim_id"])),
        "generate_seconds": round(time.perf_counter() - t0, 2),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.rename(tmp, folder)
    say(f"  done in {meta['generate_seconds']} s: {meta['rows']['claims']:,} lines, {meta['claims']:,} claims")
    return folder, meta


def dataset_for_lines(
    lines: int, year: int = 2024, seed: int = 1, say=print, order: str = "date", bad_rows: float = 0.0
) -> tuple[Path, dict]:
    return dataset(max(1, round(lines / LINES_PER_MEMBER)), year, seed, say, order, bad_rows)


def member_sample(folder: Path, meta: dict, lines: int, say=print) -> tuple[Path, dict]:
    """A sub-data set of every k-th member (all their claims) with about ``lines`` lines."""
    total = meta["rows"]["claims"]
    k = max(1, math.ceil(total / max(lines, 1)))
    out = folder / f"sample-every{k}"
    meta_file = out / "meta.json"
    if meta_file.exists():
        return out, json.loads(meta_file.read_text())
    import pyarrow as pa

    say(f"making a sample of every {k}-th member of {folder.name} ...")
    f = paths(folder)
    members = pq.read_table(f["members"])
    members = members.take(pa.array(range(0, len(members), k)))
    claims = pq.read_table(f["claims"])
    claims = claims.filter(pc.is_in(claims["member_id"], value_set=members["member_id"]))
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pq.write_table(claims, tmp / "claims.parquet", compression="zstd")
    pq.write_table(members, tmp / "members.parquet", compression="zstd")
    for t in ("providers", "catalogue"):
        shutil.copyfile(f[t], tmp / f"{t}.parquet")
    smeta = {
        "every": k,
        "rows": {"claims": len(claims), "members": len(members)},
        "claims": len(pc.unique(claims["claim_id"])),
    }
    (tmp / "meta.json").write_text(json.dumps(smeta, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    return out, smeta
