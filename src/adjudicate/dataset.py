"""Prepared datasets: the checked, encoded inputs on disk, so a run starts at the kernel.

``adjudicate prepare`` reads and checks the four input tables once, encodes
them (joins, catalogue lookup, rejections, settlement order) and writes a
folder:

- ``manifest.json``: format and engine version, the encoded fields, and each
  source file with its size, modification time and SHA-256 digest (the digest
  of summary.json's ``inputs``);
- ``tables/<name>.arrow``: each checked input table in engine form (values
  and null masks), so corrections re-join without reading the claims again;
- ``encoded/<field>.arrow``: every array of :class:`~adjudicate.encode.Encoded`,
  one Arrow IPC file each, whatever the encoder produces.

Everything is memory-mapped on read: opening a dataset costs no decoding.
Nothing in it depends on the policy (benefit rules, class ratios and policy
periods are applied at run time), so one dataset serves every policy.

A dataset is refused (:class:`DatasetError`, exit 2) when it is not a dataset,
was written by another engine or format version, or when a source file has
changed, gone, or appeared in a source folder since it was prepared.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from . import __version__, fingerprint, keep
from .encode import Encoded, catalogue_rows, encode, gather_catalogue_columns
from .engine import Inputs, Prepared, Timer, prepare
from .errors import InputError
from .inputs import Columns, Table, expand_paths, file_digest, load
from .outputs import LINE_ITEM_CODES, atomic_dir, line_item_codes
from .schema import CATALOGUE, CLAIMS, MEMBERS, PROVIDERS, Column

FORMAT = "adjudicate-dataset"
#: Bump when the layout of the folder changes (the encoded fields are checked by name besides).
FORMAT_VERSION = 4  # 4: no per-line claim_id or item_code strings (gathered from the codes when read)
# (3: text read as dictionaries stored as such, null masks only where a column has nulls)
# (2: the per-line fields narrowed: line_row, line_claim int32; line_no int32; item_ratio int16)
SPECS = {"claims": CLAIMS, "members": MEMBERS, "providers": PROVIDERS, "catalogue": CATALOGUE}
#: Per member with settled claims: member_id and the fingerprint of all its settlement depends on.
MEMBER_FINGERPRINTS = "derived/member_fingerprints.arrow"
_GATHERED = "gathered."  # prefix of the stored cached properties of Encoded
_NULL = ".null"  # suffix of a table's null-mask columns
_FILE_OF_ROW = "__file_of_row"


class DatasetError(InputError):
    """A dataset that cannot be used: not one, foreign, or stale (an input error: exit 2)."""


# ---------------------------------------------------------------------------
# Arrays <-> Arrow, generically
# ---------------------------------------------------------------------------


def _to_arrow(v: Any) -> tuple[pa.Array, dict]:
    """An array as an Arrow array, and what is needed to give it back as it was."""
    if isinstance(v, np.ndarray):
        meta = {"numpy": v.dtype.str, "shape": list(v.shape)}
        flat = np.ascontiguousarray(v).reshape(-1)
        if v.dtype == bool:
            flat = flat.view(np.uint8)  # a byte per value: zero-copy both ways
        return pa.array(flat), meta
    if isinstance(v, pa.ChunkedArray):
        return v.combine_chunks(), {"arrow": True}
    if isinstance(v, pa.Array):
        return v, {"arrow": True}
    raise TypeError(f"cannot store a {type(v).__name__} in a dataset")


def _from_arrow(col: pa.Array | pa.ChunkedArray, meta: dict) -> Any:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if meta.get("arrow"):
        return col
    dtype = np.dtype(meta["numpy"])
    if len(col) == 0:
        return np.empty(meta["shape"], dtype)
    raw = np.uint8 if np.dtype(dtype) == np.bool_ else dtype
    arr = col.to_numpy(zero_copy_only=True) if col.null_count == 0 else None
    if arr is None or arr.dtype != raw:  # pragma: no cover - only for a damaged file
        raise DatasetError("an array of the dataset has an unexpected type; prepare it again")
    return arr.view(dtype).reshape(meta["shape"])


def _write_ipc(path: Path, columns: dict[str, Any]) -> dict[str, dict]:
    """Columns (any lengths allowed only when equal) to one IPC file; returns their metadata."""
    arrays, metas = {}, {}
    for k, v in columns.items():
        arrays[k], metas[k] = _to_arrow(v)
    table = pa.table(arrays) if arrays else pa.table({})
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as w:
        w.write_table(table, max_chunksize=max(table.num_rows, 1))
    return metas


def _read_ipc(path: Path) -> pa.Table:
    try:
        return ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(
            f"cannot be read (damaged dataset? prepare it again): {str(e).splitlines()[0]}", path
        ) from None


# ---------------------------------------------------------------------------
# Tables and the encoded arrays
# ---------------------------------------------------------------------------


def _write_table(t: Table, path: Path) -> dict:
    """A table's columns as read: text read as a dictionary (or coded while read) stays one, its
    strings stored once per distinct value; a null mask only where the column has a null."""
    cols: dict[str, Any] = {}
    lazy = getattr(t.values, "lazy", {})
    for c in t.spec.columns:
        cols[c.name] = lazy[c.name] if c.name in lazy else t.values[c.name]
        if t.nulls[c.name].any():
            cols[c.name + _NULL] = t.nulls[c.name]
    if t.file_of_row is not None:
        cols[_FILE_OF_ROW] = t.file_of_row
    return {"columns": _write_ipc(path, cols), "rows": t.rows, "files": [str(f) for f in t.files]}


def _read_table(name: str, path: Path, info: dict, digests: dict[str, str], kept: Sequence[str] = ()) -> Table:
    """A stored table; the claims with the columns ``kept`` when it was prepared (``prepare --keep``)."""
    data = _read_ipc(path)
    metas = info["columns"]
    spec = SPECS[name]
    if kept and name == "claims":
        spec = replace(spec, columns=spec.columns + tuple(Column(n, "keep", nullable=True) for n in kept))
    values = Columns()
    values.order = [c.name for c in spec.columns]
    nulls = {}
    for c in spec.columns:
        v = _from_arrow(data[c.name], metas[c.name])
        if isinstance(v, pa.Array) and pa.types.is_dictionary(v.type):
            values.lazy[c.name] = pa.chunked_array([v])  # decoded to strings only if asked for, as when read
        else:
            values[c.name] = v
        null = metas.get(c.name + _NULL)  # none stored: the column has no null
        nulls[c.name] = np.zeros(info["rows"], bool) if null is None else _from_arrow(data[c.name + _NULL], null)
    files: list[str | Path] = [Path(f) for f in info["files"]]
    fr = _from_arrow(data[_FILE_OF_ROW], metas[_FILE_OF_ROW]) if _FILE_OF_ROW in metas else None
    return Table(spec, files, values, nulls, info["rows"], {str(f): digests[str(f)] for f in files}, fr)


def encoded_fields() -> list[str]:
    return [f.name for f in fields(Encoded)]


#: Derived columns a dataset does not store, each line's string (the two largest files, 150 and 230 MB at
#: 10 M lines, and a gather of every line's string to prepare): lines.parquet repeats the claims' ids over
#: their lines (outputs.line_claim_ids) and writes the stored codes of the lines' items
#: (outputs.LINE_ITEM_CODES), which a catalogue's re-join looks up too (relink_catalogue).
_NOT_STORED = ("line_claim_id", "item_code")


def gathered_fields() -> list[str]:
    """The encoder's derived columns a dataset stores (cached properties: the output strings gathered in
    settlement order), but those of :data:`_NOT_STORED`."""
    return [n for n, v in vars(Encoded).items() if isinstance(v, cached_property) and n not in _NOT_STORED]


def _write_encoded(enc: Encoded, claims: Table, folder: Path) -> dict:
    """Every field of ``enc``: arrays to files, numbers inline; the source columns by reference."""
    out: dict[str, dict] = {}
    for name in encoded_fields():
        v = getattr(enc, name)
        if isinstance(v, (np.ndarray, pa.Array, pa.ChunkedArray)):
            out[name] = {
                "file": f"encoded/{name}.arrow",
                **_write_ipc(folder / "encoded" / f"{name}.arrow", {name: v})[name],
            }
        elif isinstance(v, dict):  # named arrays; those that are the claims table's columns are not copied
            parts = {}
            for k, a in v.items():
                column = k[len(keep.SOURCE) :] if k.startswith(keep.SOURCE) else k  # --keep: the column itself
                if claims.values.get(column) is a:
                    parts[k] = {"claims_column": column}
                else:
                    parts[k] = {
                        "file": f"encoded/{name}.{k}.arrow",
                        **_write_ipc(folder / "encoded" / f"{name}.{k}.arrow", {k: a})[k],
                    }
            out[name] = {"dict": parts}
        elif isinstance(v, list):  # rows of plain values (the rejections)
            kept = keep.names_of(enc.source)
            width = max((len(r) for r in v), default=0) - (1 if kept and v else 0)
            cols = {f"c{i}": pa.array([r[i] for r in v]) for i in range(width)}
            # a row's last element under --keep: the kept values on the row it names, one typed column each
            for j, n in enumerate(kept):
                values = [r[width][j] if len(r) > width else None for r in v]
                cols[f"keep{j}"] = pa.array(
                    [x.as_py() if isinstance(x, pa.Scalar) else x for x in values], claims.values[n].type
                )
            _write_ipc(folder / "encoded" / f"{name}.arrow", cols)
            out[name] = {"rows": f"encoded/{name}.arrow", "width": width, "kept": len(kept)}
        elif isinstance(v, (int, float, str)) or v is None:
            out[name] = {"value": v}
        else:  # pragma: no cover - a new kind of field: teach the writer, do not drop it
            raise TypeError(f"Encoded.{name}: cannot store a {type(v).__name__} in a dataset")
    for name in gathered_fields():  # stored gathered, so a run from the dataset does not gather them again
        out[f"{_GATHERED}{name}"] = {
            "file": f"encoded/{_GATHERED}{name}.arrow",
            **_write_ipc(folder / "encoded" / f"{_GATHERED}{name}.arrow", {name: getattr(enc, name)})[name],
        }
    return out


def _read_encoded(folder: Path, info: dict, claims: Table) -> Encoded:
    kw: dict[str, Any] = {}
    gathered: dict[str, Any] = {}
    for name, meta in info.items():
        if name.startswith(_GATHERED):
            gathered[name[len(_GATHERED) :]] = _from_arrow(
                _read_ipc(folder / meta["file"])[name[len(_GATHERED) :]], meta
            )
        elif "file" in meta:
            kw[name] = _from_arrow(_read_ipc(folder / meta["file"])[name], meta)
        elif "dict" in meta:
            kw[name] = {
                k: (
                    claims.values[m["claims_column"]]
                    if "claims_column" in m
                    else _from_arrow(_read_ipc(folder / m["file"])[k], m)
                )
                for k, m in meta["dict"].items()
            }
        elif "rows" in meta:
            t = _read_ipc(folder / meta["rows"])
            cols = [t[f"c{i}"].to_pylist() for i in range(meta["width"])]
            rows = list(zip(*cols)) if cols else []
            if meta.get("kept"):  # the kept values as the encoder holds them: Arrow scalars of their own type
                kept = [t[f"keep{j}"].combine_chunks() for j in range(meta["kept"])]
                rows = [(*row, tuple(k[i] for k in kept)) for i, row in enumerate(rows)]
            kw[name] = rows
        else:
            kw[name] = meta["value"]
    enc = Encoded(**kw)
    enc.__dict__.update(gathered)  # the cached properties, already computed
    return enc


# ---------------------------------------------------------------------------
# Sources: what the dataset was prepared from
# ---------------------------------------------------------------------------


def _sources(args: Sequence[str | Path], t: Table) -> dict:
    files = []
    for f in t.files:
        st = Path(f).stat()
        files.append(
            {
                "name": str(f),
                "path": str(Path(f).resolve()),
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "sha256": t.digests[str(f)],
            }
        )
    return {"args": [str(Path(a).resolve()) for a in args], "files": files}


def _check_sources(name: str, src: dict, dataset: Path) -> None:
    """The source files of one table are as they were when the dataset was prepared."""
    again = f"prepare the dataset again (adjudicate prepare … --out {dataset})"
    for f in src["files"]:
        p = Path(f["path"])
        try:
            st = p.stat()
        except OSError:
            raise DatasetError(f"stale dataset: its {name} source {p} no longer exists; {again}", dataset) from None
        if st.st_size == f["size"] and st.st_mtime_ns == f["mtime_ns"]:
            continue  # unchanged (size and time as recorded); else compare the contents
        if file_digest(p) != f["sha256"]:
            raise DatasetError(f"stale dataset: its {name} source {p} changed since it was prepared; {again}", dataset)
    try:
        now = [str(p.resolve()) for p in expand_paths(src["args"], name)]
    except InputError:
        now = None
    if now is not None and now != [f["path"] for f in src["files"]]:
        raise DatasetError(
            f"stale dataset: the {name} files given to prepare are not the same files any more "
            f"(a file was added to or removed from a folder); {again}",
            dataset,
        )


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def write_dataset(
    prep: Prepared,
    out: Path,
    args: dict[str, Sequence[str | Path]] | None = None,
    sources: dict[str, dict] | None = None,
) -> dict:
    """Write ``prep`` as a dataset folder (atomically); returns the manifest.

    ``args`` are the paths the user gave per table (files or folders);
    ``sources`` the already-known source records per table (kept from an
    earlier dataset when re-joining).
    """
    inputs = prep.inputs
    tables = {
        "claims": inputs.claims,
        "members": inputs.members,
        "providers": inputs.providers,
        "catalogue": inputs.catalogue,
    }
    srcs = dict(sources or {})
    for name, t in tables.items():
        if name not in srcs:
            srcs[name] = _sources((args or {}).get(name, t.files), t)
    # the lines' item codes in line order, for the lines.parquet of every run from the dataset
    prep.enc.source[LINE_ITEM_CODES] = line_item_codes(prep.enc)
    with atomic_dir(Path(out)) as tmp:
        who, fp = fingerprint.members(prep.enc, fingerprint.claims(prep.enc, inputs.members, inputs.providers))
        _write_ipc(
            tmp / MEMBER_FINGERPRINTS, {"member_id": inputs.members["member_id"].take(pa.array(who)), "hash": fp}
        )
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "engine_version": __version__,
            "id": uuid.uuid4().hex,
            "input_lines": prep.input_lines,
            "digests": prep.digests,
            "sources": srcs,
            "kept": keep.names_of(prep.enc.source),
            "tables": {
                name: {"file": f"tables/{name}.arrow", **_write_table(t, tmp / "tables" / f"{name}.arrow")}
                for name, t in tables.items()
            },
            "encoded": _write_encoded(prep.enc, inputs.claims, tmp),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


_REQUIRED = {"id", "input_lines", "digests", "sources", "tables", "encoded"}


def read_manifest(path: Path) -> dict:
    """The manifest of a dataset of this engine and format, or :class:`DatasetError`."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError("the dataset folder does not exist (write one with adjudicate prepare)", path)
    f = path / "manifest.json"
    try:
        manifest = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DatasetError(
            "not a prepared dataset (no readable manifest.json; write one with adjudicate prepare)", path
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError("not a prepared dataset (its manifest.json is not one of adjudicate prepare)", path)
    made = (manifest.get("engine_version"), manifest.get("format_version"))
    expected = encoded_fields() + [_GATHERED + n for n in gathered_fields()]
    if (
        made != (__version__, FORMAT_VERSION)
        or list(manifest.get("encoded", {})) != expected
        or not _REQUIRED <= set(manifest)
    ):
        if made == (__version__, FORMAT_VERSION):
            raise DatasetError(
                "prepared by another build of adjudicate (its encoded arrays differ from this one's): prepare it again",
                path,
            )
        raise DatasetError(
            f"prepared by another version of adjudicate (engine {made[0]}, format {made[1]}; this "
            f"is engine {__version__}, format {FORMAT_VERSION}): prepare it again",
            path,
        )
    return manifest


def open_dataset(path: Path, check: Sequence[str] = tuple(SPECS)) -> Prepared:
    """A dataset's prepared inputs, memory-mapped; refused when stale or foreign.

    ``check`` names the tables whose sources must be unchanged (all by default).
    """
    path = Path(path)
    manifest = read_manifest(path)
    for name in check:
        _check_sources(name, manifest["sources"][name], path)
    digests = manifest["digests"]
    stored = manifest.get("kept", [])
    tables = {
        name: _read_table(name, path / info["file"], info, digests, stored) for name, info in manifest["tables"].items()
    }
    inputs = Inputs(tables["claims"], tables["members"], tables["providers"], tables["catalogue"])
    enc = _read_encoded(path, manifest["encoded"], inputs.claims)
    return Prepared(inputs, _kept_now(enc, stored, path), dict(digests), manifest["input_lines"])


def _kept_now(enc: Encoded, stored: Sequence[str], path: Path) -> Encoded:
    """``enc`` with the kept columns of the command running now (``--keep``, in its order), out of those
    the dataset was prepared with; a column it was prepared without is an error."""
    now = keep.kept()
    if list(now) == list(stored):
        return enc
    missing = [n for n in now if n not in stored]
    if missing:
        had = f"with --keep {', --keep '.join(stored)}" if stored else "without --keep"
        raise DatasetError(
            f"--keep {missing[0]}: the dataset was prepared {had}; prepare it again with "
            f"--keep {' --keep '.join(now)} (adjudicate prepare … --keep COLUMN)",
            path,
        )
    at = [list(stored).index(n) for n in now]
    source = {k: v for k, v in enc.source.items() if not k.startswith(keep.SOURCE)}
    source.update({keep.SOURCE + n: enc.source[keep.SOURCE + n] for n in now})
    rows = [r[:-1] + ((tuple(r[-1][i] for i in at),) if now else ()) for r in enc.rejected] if stored else enc.rejected
    return replace(enc, source=source, rejected=rows)


def provenance(dataset: Path, policy) -> dict:
    """What summary.json records of a run from a dataset: which one, and under what exactly, so
    that a later readjudicate can tell which members' results may have changed since."""
    m = read_manifest(Path(dataset))
    return {
        "path": str(Path(dataset).resolve()),
        "id": m["id"],
        "engine_version": __version__,
        "policy_digest": policy_digest(policy),
    }


def policy_digest(policy) -> str:
    """A digest of the validated policy (every value that can change a result). Where its file lies is
    not one: the same policy installed or copied elsewhere keeps the next night incremental."""
    text = repr(policy).replace(repr(policy.path), "")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def member_fingerprints(dataset: Path) -> tuple[pa.Array, np.ndarray]:
    """(member_id, fingerprint) of each member with settled claims in a dataset."""
    t = _read_ipc(Path(dataset) / MEMBER_FINGERPRINTS)
    return t["member_id"].combine_chunks(), t["hash"].combine_chunks().to_numpy()


def load_prepared(
    claims: Sequence,
    members: Sequence,
    providers: Sequence,
    catalogue: Sequence,
    dataset: Path | None = None,
    timer: Timer | None = None,
    claims_table: bool = True,
) -> Prepared:
    """The prepared inputs of a command: from ``dataset`` if given, else read and encoded now.

    ``claims_table=False`` for a command that reads only the encoded claims (compare, sweep): the
    claims table's columns are let go once encoded (:func:`without_claims_table`)."""
    from .engine import read_inputs

    timer = timer or Timer()
    if dataset is not None:
        with timer("read"):
            prep = open_dataset(Path(dataset))
    else:
        with timer("read"):
            inputs = read_inputs(claims, members, providers, catalogue)
        prep = prepare(inputs, timer)
    return prep if claims_table else without_claims_table(prep)


def without_claims_table(prep: Prepared) -> Prepared:
    """``prep`` with its claims table emptied (its row count, files and digests kept), in place.

    Once encoded, the claims table's columns (about half the memory of a run) are read by
    nothing that only settles and compares: everything per claim and per line is in
    ``prep.enc``. Let go, their memory is what the kernel passes take next, already mapped,
    instead of fresh pages (which a virtual machine zeroes at 1.4–2 s per GiB; docs/memory.md)."""
    c = prep.inputs.claims
    prep.inputs.claims = replace(c, values={}, nulls={}, codes={}, file_of_row=None)
    return prep


def prepare_dataset(
    claims: Sequence,
    members: Sequence,
    providers: Sequence,
    catalogue: Sequence,
    out: Path,
    timer: Timer | None = None,
    progress=None,
) -> dict:
    """Read, check and encode the four inputs; write them as a dataset. Returns the manifest."""
    from .engine import read_inputs

    timer = timer or Timer()
    say = progress or (lambda s: None)
    say("read")
    with timer("read"):
        inputs = read_inputs(claims, members, providers, catalogue)
    say("encode")
    prep = prepare(inputs, timer)
    say("write")
    with timer("write"):
        return write_dataset(
            prep, out, {"claims": claims, "members": members, "providers": providers, "catalogue": catalogue}
        )


def rejoin(
    old: Path,
    members: Sequence | None = None,
    providers: Sequence | None = None,
    catalogue: Sequence | None = None,
    timer: Timer | None = None,
) -> tuple[Prepared, dict]:
    """An earlier dataset with corrected members, providers and/or catalogue; the claims are not read again.

    A new catalogue alone only re-joins the lines to it (the claims' order and
    rejections do not depend on it); new members or providers encode the
    stored, checked claims again. Returns the prepared inputs and the source
    records to write with them.
    """
    timer = timer or Timer()
    new = {k: v for k, v in (("members", members), ("providers", providers), ("catalogue", catalogue)) if v}
    manifest = read_manifest(Path(old))
    with keep.keeping(manifest.get("kept", [])):  # the corrected dataset keeps what the old one kept
        return _rejoin(Path(old), manifest, new, timer)


def _rejoin(old: Path, manifest: dict, new: dict, timer: Timer) -> tuple[Prepared, dict]:
    prev = open_dataset(old, check=[k for k in SPECS if k not in new])
    with timer("read"):
        tables = {k: load(SPECS[k], v) for k, v in new.items()}
    i = prev.inputs
    inputs = Inputs(
        i.claims,
        tables.get("members", i.members),
        tables.get("providers", i.providers),
        tables.get("catalogue", i.catalogue),
    )
    sources = {k: v for k, v in manifest["sources"].items() if k not in new}
    for k, v in new.items():
        sources[k] = _sources(v, tables[k])
    digests = inputs.digests()  # the stored tables keep their sources' digests
    if set(new) == {"catalogue"}:
        with timer("encode"):
            enc = relink_catalogue(prev.enc, inputs.claims, inputs.catalogue)
    else:
        with timer("encode"):
            enc = encode(inputs.claims, inputs.members, inputs.providers, inputs.catalogue)
    return Prepared(inputs, enc, digests, prev.input_lines), sources


def relink_catalogue(enc: Encoded, claims: Table, catalogue: Table) -> Encoded:
    """``enc`` with its lines joined to another catalogue (class, ratio, price ceiling), as encode joins them."""
    admit = np.ascontiguousarray(claims["admit_date"])[enc.line_row]
    # the lines' item codes as a dictionary array: only its distinct values are looked up
    crow = catalogue_rows(catalogue, pa.chunked_array([line_item_codes(enc)]), admit)
    cls, item_ratio, max_price = gather_catalogue_columns(crow, catalogue)
    return replace(enc, cls=cls, item_ratio=item_ratio, max_price=max_price)


__all__ = [
    "DatasetError",
    "load_prepared",
    "open_dataset",
    "prepare_dataset",
    "provenance",
    "read_manifest",
    "rejoin",
    "without_claims_table",
    "write_dataset",
]
