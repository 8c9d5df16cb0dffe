"""Streaming: adjudicate claims larger than memory, one member range at a time.

Members are independent (contract §3), so the claims can be cut by member:

1. **Partition.** The claim files are read batch by batch; each line goes to
   the partition of its member's range (members sorted by ``member_id`` bytes,
   cut into equal ranges) and is written to a temporary Parquet file, with its
   original row number. Lines whose member is null or unknown go to a last,
   *orphan* partition, and so do all lines of a claim that lands in more than
   one partition (its lines disagree on ``member_id``).
2. **Settle.** Each partition is loaded, checked and adjudicated exactly like
   an in-memory run, and its outputs are appended to the output files. The
   ranges follow the settlement order, so the concatenated outputs are the
   same, row for row, as one in-memory run. Orphan claims can only be
   rejected (their member is null, unknown or inconsistent).

Only one partition is in memory at a time, plus the members, providers and
catalogue tables.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from .engine import Inputs, Prepared, Result, Timer, adjudicate, first_year, prepare
from .inputs import SUFFIXES, InputError, Table, digest_while_reading, expand_paths, load
from .money import yuan
from .outputs import (
    atomic_dir,
    claim_amounts,
    count_rejected_claims,
    lines_table,
    parquet_options,
    rejected_rows_table,
    settlements_table,
    summary,
    write_parquet,
)
from .policy import Policy
from .report import write_report
from .schema import CATALOGUE, CLAIMS, MEMBERS, PROVIDERS

ROW = "__row"  # original row number, kept in the partition files for error messages
PARTITIONS = ".partitions"  # folder of the partition files, inside the output's temporary folder
#: Lines per partition when streaming is chosen automatically (about 2 GB each).
LINES_PER_PARTITION = 2_500_000
#: Peak memory of the in-memory path per input line, measured on generated data
#: (about 0.7 GB RSS for 1M lines, Python and libraries included), with margin.
BYTES_PER_LINE = 800


def count_lines(paths: Sequence[Path]) -> int | None:
    """Lines in the claim files, from Parquet/IPC metadata (None if unknown, e.g. CSV)."""
    total = 0
    for p in paths:
        kind = SUFFIXES.get(p.suffix.lower())
        try:
            if kind == "parquet":
                total += pq.ParquetFile(p).metadata.num_rows
            elif kind == "ipc":
                with pa.memory_map(str(p)) as src:
                    reader = ipc.open_file(src)
                    total += sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            else:
                return None
        except (pa.ArrowInvalid, OSError):
            return None  # let the normal reader report the problem
    return total


def available_memory() -> int | None:
    """Bytes of memory available now (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def auto_partitions(claim_paths: Sequence[Path]) -> int:
    """1 (all in memory) when the claims fit in half the available memory, else
    enough member ranges of about LINES_PER_PARTITION lines each."""
    n = count_lines(claim_paths)
    if n is None:
        return 1
    free = available_memory()
    if free is not None and n * BYTES_PER_LINE <= free // 2:
        return 1
    return max(1, math.ceil(n / LINES_PER_PARTITION))


def iter_batches(path: Path, batch_rows: int = 1_000_000) -> Iterator[pa.RecordBatch]:
    """The record batches of one claims file, in row order."""
    kind = SUFFIXES.get(path.suffix.lower())
    try:
        if kind == "parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
        elif kind == "ipc":
            with pa.memory_map(str(path)) as src:
                reader = ipc.open_file(src)
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i)
        elif kind == "csv":
            # as inputs.load reads CSV: every contract column as text
            reader = pacsv.open_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={c.name: pa.string() for c in CLAIMS.columns},
                    strings_can_be_null=True,
                    null_values=[""],
                    quoted_strings_can_be_null=True,
                ),
            )
            yield from reader
        else:
            raise InputError("unknown file type (expected .parquet, .arrow/.feather or .csv)", path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"cannot be read: {str(e).splitlines()[0]}", path) from None


def _concat(tables: list[Table]) -> Table:
    first = tables[0]
    values = {}
    for k, v in first.values.items():
        parts = [t.values[k] for t in tables]
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            values[k] = pa.concat_arrays([p.combine_chunks() if isinstance(p, pa.ChunkedArray) else p for p in parts])
        else:
            values[k] = np.concatenate(parts)
    nulls = {k: np.concatenate([t.nulls[k] for t in tables]) for k in first.nulls}
    return Table(first.spec, first.files, values, nulls, sum(t.rows for t in tables), first.digests, None)


class Partitioner:
    """Pass 1: write each claim line to the file of its member range."""

    def __init__(self, members: Table, parts: int, folder: Path):
        self.folder, self.parts = folder, parts
        ids = members["member_id"]
        order = np.asarray(pc.sort_indices(ids))
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        self.ids = ids
        # member row -> partition; equal member counts per range, in byte order
        self.part_of_member = (rank * parts // max(len(order), 1)).astype(np.int64)
        self.files: dict[int, list[Path]] = {k: [] for k in range(parts + 1)}
        self.pairs: list[pa.Table] = []  # distinct (claim_id, partition)

    def add_file(self, index: int, path: Path) -> None:
        try:
            self._add_file(index, path)
        except (pa.ArrowException, ValueError):
            # Let the one reader name the file, column and row of what is wrong.
            load(CLAIMS, [path])
            raise

    def _add_file(self, index: int, path: Path) -> None:
        # CSV stays CSV (it is read as text, with text rules); typed input becomes Parquet.
        text = SUFFIXES.get(path.suffix.lower()) == "csv"
        suffix = ".csv" if text else ".parquet"
        writers: dict = {}
        offset = 0
        try:
            for batch in iter_batches(path):
                if "member_id" not in batch.schema.names or "claim_id" not in batch.schema.names:
                    return self._whole_file_to_orphans(index, path)
                member = pc.index_in(batch.column("member_id").cast(pa.string()), value_set=self.ids)
                member = np.asarray(pc.fill_null(member, -1), dtype=np.int64)
                part = np.where(member >= 0, self.part_of_member[np.maximum(member, 0)], self.parts)
                batch = batch.append_column(ROW, pa.array(np.arange(offset, offset + batch.num_rows)))
                offset += batch.num_rows
                self.pairs.append(
                    pa.table({"claim_id": batch.column("claim_id").cast(pa.string()), "part": pa.array(part)})
                    .group_by(["claim_id", "part"])
                    .aggregate([])
                )
                for k in np.unique(part):
                    rows = batch.filter(pa.array(part == k))
                    if k not in writers:
                        f = self.folder / f"{index:05d}-{int(k):05d}{suffix}"
                        writers[int(k)] = pacsv.CSVWriter(f, rows.schema) if text else pq.ParquetWriter(f, rows.schema)
                        self.files[int(k)].append(f)
                    writers[int(k)].write_batch(rows)
        finally:
            for w in writers.values():
                w.close()

    def _whole_file_to_orphans(self, index: int, path: Path) -> None:
        # A file without the key columns: load() will report it; keep it whole.
        f = self.folder / f"{index:05d}-orphan{path.suffix}"
        shutil.copyfile(path, f)
        self.files[self.parts].append(f)

    def split_claims(self) -> pa.Array:
        """Claim ids whose lines landed in more than one partition."""
        if not self.pairs:
            return pa.array([], pa.string())
        pairs = pa.concat_tables(self.pairs).group_by(["claim_id", "part"]).aggregate([])
        counts = pairs.group_by("claim_id").aggregate([("part", "count")])
        return counts.filter(pc.greater(counts["part_count"], 1))["claim_id"]


def run_streaming(
    claim_paths: Sequence[str | Path],
    member_paths,
    provider_paths,
    catalogue_paths,
    policy: Policy,
    out: Path,
    parts: int,
    threads: int | None = None,
    with_lines: bool = True,
    progress: Callable[[str], None] | None = None,
    audit=None,
    each: Callable[[Result | None], None] | None = None,
) -> dict:
    """Adjudicate in ``parts`` member ranges; outputs identical to the in-memory run.

    ``audit`` (an ``audit.StreamingAudit``) also writes flags and indicators, range by range.
    ``each`` is called with every range's result once it is written (readjudicate compares it
    then), and with None when a pass over the ranges starts again (see ``_settle_partitions``)."""
    say = progress or (lambda s: None)
    timer = Timer()
    claim_files = expand_paths(claim_paths, "claims")
    # The partition files (claim data: personal health information) live in the output's temporary
    # folder: removed with it on any error, Ctrl-C or SIGTERM, and by the next run into --out after a kill.
    with atomic_dir(out, source_paths(claim_paths, member_paths, provider_paths, catalogue_paths)) as folder:
        small, digests, part, split = _partition(
            claim_files, member_paths, provider_paths, catalogue_paths, parts, folder, timer, say
        )
        s = _settle_partitions(
            part,
            split,
            claim_files,
            small.members,
            small.providers,
            small.catalogue,
            policy,
            folder,
            threads,
            with_lines,
            timer,
            digests,
            say,
            audit,
            each,
        )
        shutil.rmtree(folder / PARTITIONS)
    return s


def source_paths(claims, members, providers, catalogue, dataset: str | Path | None = None) -> list[Path]:
    """Every file or folder a command reads (an output folder may hold none of them: outdir.check_out)."""
    paths = [Path(p) for group in (claims, members, providers, catalogue) for p in (group or ())]
    return paths + ([Path(dataset)] if dataset is not None else [])


def _partition(
    claim_files: list[Path],
    member_paths,
    provider_paths,
    catalogue_paths,
    parts: int,
    folder: Path,
    timer: Timer,
    say: Callable[[str], None],
) -> tuple[Inputs, dict, Partitioner, pa.Array]:
    """Read the small tables and cut the claims into ``parts`` member ranges under ``folder``/PARTITIONS
    (the output's temporary folder). Returns the small tables (Inputs without claims), the input
    digests (of the bytes partitioned), the Partitioner and the claim ids split across ranges."""
    with timer("read"):
        members, providers = load(MEMBERS, member_paths), load(PROVIDERS, provider_paths)
        catalogue = load(CATALOGUE, catalogue_paths)
    digests: dict[str, str] = {}  # claims first, as an in-memory run lists them
    scratch = folder / PARTITIONS
    scratch.mkdir()
    say(f"partition into {parts}")
    with timer("partition"):
        part = Partitioner(members, parts, scratch)
        for i, f in enumerate(claim_files):
            digests[str(f)], unchanged = digest_while_reading(f)
            part.add_file(i, f)
            unchanged()  # the digest describes the bytes partitioned
        split = part.split_claims()
    for table in (members, providers, catalogue):
        digests.update(table.digests)
    return Inputs(None, members, providers, catalogue), digests, part, split  # type: ignore[arg-type]


def _load_partition(files: list[Path], claim_files: list[Path]) -> Table:
    """Load one partition's files, naming the original file and row in any error."""
    if not files:
        return None  # type: ignore[return-value]
    try:
        return load(CLAIMS, files)
    except InputError as e:
        f = Path(e.file) if e.file is not None else None
        if f is None or f.parent != files[0].parent or "-orphan" in f.name:
            raise
        original = claim_files[int(f.stem.split("-")[0])]
        row = e.row
        if row is not None:
            rows = (
                pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(include_columns=[ROW]))
                if f.suffix == ".csv"
                else pq.read_table(f, columns=[ROW])
            )
            row = int(rows[ROW][row].as_py())
        message = str(e).split(": ", 1)[1] if ": " in str(e) else str(e)
        raise InputError(message, original, e.column, row) from None


def iter_claim_partitions(
    part: Partitioner, split: pa.Array, claim_files: list[Path], timer: Timer
) -> Iterator[tuple[int, Table]]:
    """(k, claims table) of each member range in settlement order, then (parts, the orphans: lines whose
    member is null, unknown or inconsistent, which can only be rejected)."""
    orphans: list[Table] = []
    for k in range(part.parts + 1):
        with timer("read"):
            claims = _load_partition(part.files[k], claim_files)
        if claims is None:
            continue
        if len(split):
            moved = np.asarray(pc.is_in(claims["claim_id"], value_set=split), dtype=bool)
            if moved.any():
                orphans.append(claims.take(np.flatnonzero(moved)))
                claims = claims.take(np.flatnonzero(~moved))
        if k == part.parts:
            orphans.append(claims)
            continue
        yield k, claims
    if orphans:
        yield part.parts, _concat(orphans)


@contextmanager
def partitioned(
    claim_paths: Sequence[str | Path],
    member_paths,
    provider_paths,
    catalogue_paths,
    parts: int,
    folder: Path,
    timer: Timer,
    say: Callable[[str], None],
) -> Iterator[tuple[Inputs, dict, Callable[[], Iterator[Inputs]]]]:
    """Read the small tables and cut the claims into ``parts`` member ranges under ``folder`` (the
    output's temporary folder: claim data never lands in /tmp).

    Yields (the small tables as Inputs without claims, the input digests, a
    function giving an iterator of each range's Inputs in settlement order,
    orphans last, as often as asked; when there are no claims at all, the one
    empty claims table).
    """
    claim_files = expand_paths(claim_paths, "claims")
    small, digests, part, split = _partition(
        claim_files, member_paths, provider_paths, catalogue_paths, parts, folder, timer, say
    )
    members, providers, catalogue = small.members, small.providers, small.catalogue
    try:

        def each() -> Iterator[Inputs]:
            seen = False
            for k, claims in iter_claim_partitions(part, split, claim_files, timer):
                seen = True
                yield Inputs(claims, members, providers, catalogue)
                if k < part.parts:
                    say(f"partition {k + 1}/{part.parts}")
            if not seen:
                yield Inputs(load(CLAIMS, claim_files), members, providers, catalogue)

        yield small, digests, each
    finally:
        shutil.rmtree(folder / PARTITIONS, ignore_errors=True)


@contextmanager
def prepared_parts(
    claims,
    members,
    providers,
    catalogue,
    dataset: Path | None,
    partitions: int,
    timer: Timer,
    say: Callable[[str], None],
    folder: Path,
) -> Iterator[tuple[dict, Callable[[], Iterator[Prepared]], int]]:
    """The prepared inputs of a command, whole (a dataset, or ``partitions`` ≤ 1) or one member range at a
    time (``partitions`` > 1; 0 chooses from the input size; the ranges are cut under ``folder``, the
    output's temporary folder): (input digests, a function giving an
    iterator of Prepared in settlement order, as often as asked, the number of member ranges). Members
    are independent, so results computed part by part add up, given the run's base year (see
    :class:`BaseYears`)."""
    from .dataset import load_prepared

    if dataset is None and partitions == 0:
        partitions = auto_partitions(expand_paths(claims, "claims"))
    if dataset is not None or partitions <= 1:
        prep = load_prepared(claims, members, providers, catalogue, dataset, timer)
        yield prep.digests, lambda: iter([prep]), 1
        return
    with partitioned(claims, members, providers, catalogue, partitions, folder, timer, say) as (_, digests, parts):
        yield digests, lambda: (prepare(inputs, timer) for inputs in parts()), partitions


class BaseYears:
    """The base year B of each of several policies settled range by range (contract §3: the earliest
    year of all the run's settled claims), as ``_settle_partitions`` finds it: each range settles with
    B as known so far (the first range's own at first); if a later range settles an earlier year, the
    pass is done again with the true B (``again``)."""

    def __init__(self, n: int):
        self.given: list[int | None] = [None] * n

    def start(self) -> None:
        self.used: list[int | None] = list(self.given)
        self.earliest: list[int | None] = [None] * len(self.given)

    def __getitem__(self, i: int) -> int | None:
        return self.used[i]

    def saw(self, i: int, r: Result) -> None:
        if self.used[i] is None:
            self.used[i] = r.base_year
        first, earliest = first_year(r.enc), self.earliest[i]
        if first is not None and (earliest is None or first < earliest):
            self.earliest[i] = first

    def again(self) -> bool:
        """Whether the pass must be done again (then with the true base years)."""
        wrong = any(e is not None and e != u for e, u in zip(self.earliest, self.used))
        if wrong:
            self.given = [e if e is not None else u for e, u in zip(self.earliest, self.used)]
        return wrong


def _settle_partitions(
    part: Partitioner,
    split: pa.Array,
    claim_files,
    members,
    providers,
    catalogue,
    policy,
    folder: Path,
    threads,
    with_lines,
    timer: Timer,
    digests,
    say,
    audit=None,
    each: Callable[[Result | None], None] | None = None,
) -> dict:
    # The personal account stands on 1 January of the run's base year B, the earliest year of all
    # its settled claims (contract §3). B is taken from the first partition with settled claims and
    # checked on every later one; in the rare case that a later partition settles an earlier year,
    # the outputs are written again with the true B (which claims settle does not depend on B).
    base = None
    while True:
        state = _settle_pass(
            part,
            split,
            claim_files,
            members,
            providers,
            catalogue,
            policy,
            folder,
            threads,
            with_lines,
            timer,
            say,
            base,
            audit,
            each,
        )
        if state["earliest"] is None or state["earliest"] == state["base"]:
            break
        base = state["earliest"]
        say(f"base year {base}: again")
    rejected, totals, counts, last = state["rejected"], state["totals"], state["counts"], state["last"]
    write_parquet(rejected_rows_table(rejected), folder / "rejected.parquet")
    s = summary(last, digests, counts["input_lines"])
    s["counts"].update({k: counts[k] for k in ("input_claims", "settled_claims", "settled_lines")})
    n_rejected = s["counts"]["rejected_claims"] = count_rejected_claims(rejected)
    reasons = {k: 0 for k in s["counts"]["rejected_by_reason"]}
    for t in rejected:
        reasons[t[2]] += 1
    s["counts"]["rejected_by_reason"] = reasons
    s["counts"]["reconciles"] = counts["settled_claims"] + n_rejected == counts["input_claims"]
    s["totals"] = {k: str(yuan(v)) for k, v in totals.items()}
    s["partitions"] = part.parts
    if audit is not None:
        s["audit"] = audit.finish()
    s["timings_seconds"] = {k: round(v, 4) for k, v in timer.t.items()}
    (folder / "summary.json").write_text(json.dumps(s, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_report(folder, "run")
    return s


def _settle_pass(
    part: Partitioner,
    split: pa.Array,
    claim_files,
    members,
    providers,
    catalogue,
    policy,
    folder: Path,
    threads,
    with_lines,
    timer: Timer,
    say,
    base: int | None,
    audit=None,
    each: Callable[[Result | None], None] | None = None,
) -> dict:
    """Settle every partition with base year ``base`` (None: the first partition's), writing the
    outputs anew; returns the totals, the base used and the earliest year settled."""
    for name in ("settlements", "lines"):
        (folder / f"{name}.parquet").unlink(missing_ok=True)  # an earlier pass's, in our temporary folder
    if audit is not None:
        audit.start(folder)  # anew, like the outputs
    if each is not None:
        each(None)  # anew too
    writers: dict[str, pq.ParquetWriter] = {}
    st: dict[str, Any] = {
        "rejected": [],
        "totals": {},
        "counts": {"input_lines": 0, "input_claims": 0, "settled_claims": 0, "settled_lines": 0},
        "last": None,
        "base": base,
        "earliest": None,
    }
    rejected, totals, counts = st["rejected"], st["totals"], st["counts"]

    def append(name: str, table: pa.Table) -> None:
        if name not in writers:
            writers[name] = pq.ParquetWriter(folder / f"{name}.parquet", table.schema, **parquet_options(table.schema))
        writers[name].write_table(table)

    def one(claims: Table) -> Result:
        r = _one(
            claims,
            members,
            providers,
            catalogue,
            policy,
            threads,
            timer,
            append,
            with_lines,
            rejected,
            totals,
            counts,
            st["base"],
            audit,
        )
        if st["base"] is None:
            st["base"] = r.base_year
        first = first_year(r.enc)
        if first is not None and (st["earliest"] is None or first < st["earliest"]):
            st["earliest"] = first
        if each is not None:
            each(r)
        return r

    try:
        for k, claims in iter_claim_partitions(part, split, claim_files, timer):
            if k == part.parts:  # the orphans
                before = counts["settled_claims"]
                st["last"] = one(claims) or st["last"]
                if counts["settled_claims"] != before:  # pragma: no cover - a broken invariant, not bad input
                    raise RuntimeError("a claim without a known, consistent member was settled")
                continue
            st["last"] = one(claims)
            say(f"partition {k + 1}/{part.parts}")
        if st["last"] is None:  # every claims file was empty: settle that, for outputs of the right shape
            st["last"] = one(load(CLAIMS, claim_files))
    finally:
        for w in writers.values():
            w.close()
    return st


def _one(
    claims: Table,
    members,
    providers,
    catalogue,
    policy,
    threads,
    timer,
    append,
    with_lines,
    rejected,
    totals,
    counts,
    base_year: int | None = None,
    audit=None,
) -> Result:
    inputs = Inputs(claims, members, providers, catalogue)
    r = adjudicate(inputs, policy, threads=threads, timer=timer, line_funds=with_lines, base_year=base_year)
    if audit is not None:
        with timer("audit"):
            audit.add(r, inputs)
    with timer("write"):
        append("settlements", settlements_table(r, for_file=True))
        if with_lines:
            append("lines", lines_table(r, for_file=True))
    rejected.extend(r.enc.rejected)
    for k, v in claim_amounts(r).items():
        totals[k] = totals.get(k, 0) + int(v.sum())
    counts["input_lines"] += claims.rows
    counts["input_claims"] += r.enc.input_claims
    counts["settled_claims"] += len(r.enc.member)
    counts["settled_lines"] += len(r.enc.amount)
    return r


__all__ = [
    "run_streaming",
    "auto_partitions",
    "count_lines",
    "partitioned",
    "prepared_parts",
    "BaseYears",
    "LINES_PER_PARTITION",
]
