"""Case files: worked examples policy staff write, run through the real engine.

A case is one TOML file, in the manner of OpenFisca's YAML tests: a member or
several, a few claims with their lines, catalogue rows and providers inline,
the policy, and the amounts expected per claim. Everything has a sensible
default so that a case stays short (see ``policies/README.md``, "Case files"):

```toml
[case]
name = "prefecture-employee: first admission at level 3"
policy = "prefecture-employee"         # a shipped name, or a .toml path relative to this file

[[claims]]
claim_id = "C1"
lines = [{ item_code = "A1", amount = "10000.00" }]
expect = { deductible = "700.00", fund_pool = "8463.00", member_policy_share = "1537.00" }
```

:func:`load_case` reads and checks a file whole (a :class:`CaseError` names the
file, the key and its line); :func:`run_case` writes the case's four tables
as CSV into a temporary folder, reads them with the engine's own reader,
adjudicates, and compares every expected amount exactly.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from . import policy as P
from .errors import InputError
from .schema import AMOUNTS, CATALOGUE, CLAIMS, MEMBERS, PROVIDERS
from .tomlfile import KeyLocator, read_toml

#: Defaults of a case's rows (column -> text as in a CSV input file).
MEMBER_DEFAULTS = {
    "member_id": "M1",
    "birth_date": "1970-06-01",
    "category": "in_service",
    "civil_servant": "false",
    "enrolled_since": "2000-01-01",
    "account_balance": "0",
    "prior_year_wage": "60000",
}
PROVIDER_DEFAULTS = {
    "provider_id": "H3",
    "kind": "hospital",
    "level": "3",
    "designated": "true",
    "local": "true",
    "quota_per_admission": "",
}
CATALOGUE_DEFAULTS = {
    "name": "",
    "first_self_pay_ratio": "",
    "max_unit_price": "",
    "valid_from": "2000-01-01",
    "valid_to": "",
}
#: Always in a case's catalogue (more rows may be added): one item of each class.
DEFAULT_ITEMS = (("A1", "A"), ("B1", "B"), ("S1", "special"), ("P1", "supplementary"), ("X1", "excluded"))
DEFAULT_DATE = dt.date(2024, 3, 1)
CLAIM_KEYS = {
    "claim_id",
    "member_id",
    "provider_id",
    "setting",
    "referral",
    "admit_date",
    "discharge_date",
    "diagnosis",
    "lines",
    "expect",
    "rejected",
}
LINE_KEYS = {"item_code", "amount", "quantity", "unit_price", "expect"}
#: What a claim's ``expect`` may name: the settlement columns that are numbers.
CLAIM_EXPECT = AMOUNTS + ("admission_ordinal", "benefit_year")
LINE_EXPECT = ("self_pay", "first_self_pay", "eligible", "fund_pool", "fund_supplementary", "class")


class CaseError(Exception):
    """A malformed case file: names the file, the key and (where found) its line."""

    def __init__(self, message: str, file: str | Path | None = None, key: str | None = None, line: int | None = None):
        self.file, self.key, self.line = file, key, line
        where = [f"case file {file}"] if file else []
        if line:
            where.append(f"line {line}")
        if key:
            where.append(f"key '{key}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass
class Expect:
    where: str  # the case key of the expectation, e.g. claims[0].expect.fund_pool
    claim_id: str
    line_no: int | None
    column: str
    value: Any  # Decimal (yuan), int, str, or None (null)


@dataclass
class Case:
    path: Path
    name: str
    policy: P.Policy
    tables: dict[str, list[dict[str, str]]]  # members, providers, catalogue, claims: rows of CSV text
    origin: dict[str, list[str]]  # table -> the case key of each row, for input errors
    expects: list[Expect] = field(default_factory=list)
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)  # claim_id -> (reason, key)


@dataclass
class Difference:
    claim_id: str
    line_no: int | None
    column: str
    expected: str
    got: str
    delta: str | None


@dataclass
class Outcome:
    case: Case
    differences: list[Difference]

    @property
    def passed(self) -> bool:
        return not self.differences


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """The case files named: files as given, folders searched for ``*.toml`` (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.toml") if _is_case(f))
            if not found:
                raise CaseError("no case files (*.toml with a [case] table) in this folder", p)
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise CaseError("no such file or folder", p)
    return out


def _is_case(path: Path) -> bool:
    """A folder may hold policy files beside its cases: a case file has a [case] table."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return True  # let load_case report it
    return any(line.strip() == "[case]" for line in text.splitlines())


class _Reader(KeyLocator):
    def error(self, key: str, message: str) -> CaseError:
        return CaseError(message, self.path, key, self._line_of(key))

    def text(self, v: Any, key: str, kind: str) -> str:
        """A scalar as the text a CSV input would hold."""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (dt.date, dt.datetime)):
            if isinstance(v, dt.datetime):
                raise self.error(key, f"expected a date (YYYY-MM-DD), got the date and time {v}")
            return v.isoformat()
        if isinstance(v, (int, Decimal)):
            return str(v)
        if isinstance(v, str):
            return v
        raise self.error(key, f"expected {kind}, got {v!r}")

    def rows(self, doc: dict, name: str) -> list[dict]:
        v = doc.get(name, [])
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise self.error(name, f"expected [[{name}]] tables")
        return v


def load_case(path: str | Path) -> Case:
    """Read and check one case file (errors: :class:`CaseError`, naming file, key and line)."""
    path = Path(path)
    doc, text = read_toml(path, CaseError, "case", parse_float=Decimal)
    r = _Reader(path, text)
    r.only(doc, "", {"case", "members", "providers", "catalogue", "claims"})
    head = doc.get("case")
    if not isinstance(head, dict):
        raise r.error("case", "missing the [case] table (name, policy)")
    r.only(head, "case", {"name", "policy", "date", "set", "notes"})
    name = head.get("name", path.stem)
    if not isinstance(name, str):
        raise r.error("case.name", "expected text")
    if "policy" not in head or not isinstance(head["policy"], str):
        raise r.error("case.policy", "expected the policy: a shipped name or the path of a .toml file")
    date = head.get("date", DEFAULT_DATE)
    if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
        raise r.error("case.date", f"expected a date like 2024-03-01 (no quotes), got {date!r}")
    overrides = head.get("set", [])
    if not isinstance(overrides, list) or not all(isinstance(x, str) for x in overrides):
        raise r.error("case.set", 'expected a list of overrides, e.g. ["limits.fund_cap.amount=50000"]')
    policy = _policy(r, head["policy"], overrides)

    tables: dict[str, list[dict[str, str]]] = {"members": [], "providers": [], "catalogue": [], "claims": []}
    origin: dict[str, list[str]] = {k: [] for k in tables}
    for table, spec, defaults, _key_col in (
        ("members", MEMBERS, MEMBER_DEFAULTS, "member_id"),
        ("providers", PROVIDERS, PROVIDER_DEFAULTS, "provider_id"),
    ):
        rows = r.rows(doc, table)
        for i, row in enumerate(rows):
            k = f"{table}[{i}]"
            r.only(row, k, {c.name for c in spec.columns})
            tables[table].append({**defaults, **{c: r.text(v, f"{k}.{c}", "a value") for c, v in row.items()}})
            origin[table].append(k)
        if not rows:  # the default row
            tables[table].append(dict(defaults))
            origin[table].append("case")
    for item, cls in DEFAULT_ITEMS:
        tables["catalogue"].append({"item_code": item, "class": cls, **CATALOGUE_DEFAULTS, "name": f"class {cls}"})
        origin["catalogue"].append("case")
    for i, row in enumerate(r.rows(doc, "catalogue")):
        k = f"catalogue[{i}]"
        r.only(row, k, {c.name for c in CATALOGUE.columns})
        for need in ("item_code", "class"):
            if need not in row:
                raise r.error(f"{k}.{need}", f"missing required key {need!r}")
        tables["catalogue"].append(
            {**CATALOGUE_DEFAULTS, **{c: r.text(v, f"{k}.{c}", "a value") for c, v in row.items()}}
        )
        origin["catalogue"].append(k)

    case = Case(path, name, policy, tables, origin)
    first_member = tables["members"][0]["member_id"]
    first_provider = tables["providers"][0]["provider_id"]
    claims = r.rows(doc, "claims")
    if not claims:
        raise r.error("claims", "a case needs at least one [[claims]] table")
    seen: set[str] = set()
    for i, row in enumerate(claims):
        k = f"claims[{i}]"
        r.only(row, k, CLAIM_KEYS)
        cid = r.text(row.get("claim_id", f"C{i + 1}"), f"{k}.claim_id", "text")
        if cid in seen:
            raise r.error(f"{k}.claim_id", f"claim {cid!r} appears twice in the case")
        seen.add(cid)
        setting = r.text(row.get("setting", "inpatient"), f"{k}.setting", "a setting")
        admit = r.text(row.get("admit_date", date), f"{k}.admit_date", "a date")
        discharge = row.get("discharge_date", admit if setting == "inpatient" else "")
        head_cols = {
            "claim_id": cid,
            "member_id": r.text(row.get("member_id", first_member), f"{k}.member_id", "text"),
            "provider_id": r.text(row.get("provider_id", first_provider), f"{k}.provider_id", "text"),
            "setting": setting,
            "referral": r.text(row.get("referral", ""), f"{k}.referral", "text"),
            "admit_date": admit,
            "discharge_date": r.text(discharge, f"{k}.discharge_date", "a date"),
            "diagnosis": r.text(row.get("diagnosis", ""), f"{k}.diagnosis", "text"),
        }
        lines = row.get("lines")
        if not isinstance(lines, list) or not lines or not all(isinstance(x, dict) for x in lines):
            raise r.error(f"{k}.lines", 'expected a list of lines, e.g. [{ item_code = "A1", amount = "100.00" }]')
        for j, line in enumerate(lines):
            lk = f"{k}.lines[{j}]"
            r.only(line, lk, LINE_KEYS)
            for need in ("item_code", "amount"):
                if need not in line:
                    raise r.error(f"{lk}.{need}", f"missing required key {need!r}")
            amount = _decimal(r, line["amount"], f"{lk}.amount")
            qty = _decimal(r, line.get("quantity", 1), f"{lk}.quantity")
            if qty == 0 and "unit_price" not in line:
                raise r.error(f"{lk}.quantity", "a quantity of 0 has no unit price; give unit_price too")
            price = line.get("unit_price") if "unit_price" in line else (amount / qty).quantize(Decimal("0.01"))
            tables["claims"].append(
                {
                    **head_cols,
                    "line_no": str(j + 1),
                    "item_code": r.text(line["item_code"], f"{lk}.item_code", "text"),
                    "quantity": str(qty),
                    "unit_price": r.text(price, f"{lk}.unit_price", "yuan"),
                    "amount": str(amount),
                }
            )
            origin["claims"].append(lk)
            for col, v in _expects(r, line.get("expect"), f"{lk}.expect", LINE_EXPECT):
                case.expects.append(Expect(f"{lk}.expect.{col}", cid, j + 1, col, v))
        if "rejected" in row:
            if "expect" in row:
                raise r.error(f"{k}.rejected", "a rejected claim has no amounts: give 'expect' or 'rejected'")
            case.rejected[cid] = (r.text(row["rejected"], f"{k}.rejected", "a rejection reason"), f"{k}.rejected")
        for col, v in _expects(r, row.get("expect"), f"{k}.expect", CLAIM_EXPECT):
            case.expects.append(Expect(f"{k}.expect.{col}", cid, None, col, v))
    if not case.expects and not case.rejected:
        raise r.error("claims", "the case expects nothing: give 'expect = { fund_pool = \"…\" }' on a claim")
    return case


def _policy(r: _Reader, name: str, overrides: list[str]) -> P.Policy:
    from .compare import policy_with_overrides

    local = r.path.parent / name
    target = local if name.endswith(".toml") and local.exists() else name
    try:
        P.load(target)  # the policy's own errors first, named as the case's policy
    except P.PolicyError as e:
        raise r.error("case.policy", str(e)) from None
    try:
        return policy_with_overrides(target, overrides)
    except P.PolicyError as e:
        raise r.error("case.set", str(e)) from None


def _decimal(r: _Reader, v: Any, key: str) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, (int, Decimal, str)):
        raise r.error(key, f'expected an amount in yuan (e.g. "8463.00"), got {v!r}')
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        raise r.error(key, f'expected an amount in yuan (e.g. "8463.00"), got {v!r}') from None
    if not d.is_finite():
        raise r.error(key, f"expected a finite amount, got {v!r}")
    return d


def _expects(r: _Reader, v: Any, key: str, allowed: tuple[str, ...]):
    if v is None:
        return []
    if not isinstance(v, dict):
        raise r.error(key, 'expected a table, e.g. { fund_pool = "8463.00" }')
    if "rejected" in v and key.endswith("].expect") and ".lines[" not in key:
        # a natural slip: the rejection is said on the claim itself, beside its expect
        raise r.error(
            f"{key}.rejected",
            'a claim expected to be rejected says rejected = "reason" on the '
            "claim itself (beside lines), not inside expect",
        )
    r.only(v, key, set(allowed))
    out: list[tuple[str, Decimal | str | int | None]] = []
    for col, x in v.items():
        k = f"{key}.{col}"
        if col in AMOUNTS:
            out.append((col, _decimal(r, x, k)))
        elif col == "class":
            out.append((col, r.text(x, k, "a class")))
        elif x == "none" and col == "admission_ordinal":
            out.append((col, None))
        elif isinstance(x, int) and not isinstance(x, bool):
            out.append((col, x))
        else:
            hint = ' (or "none")' if col == "admission_ordinal" else ""
            raise r.error(k, f"expected a whole number{hint}, got {x!r}")
    return out


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for row in rows:
            w.writerow([row.get(c, "") for c in columns])


def run_case(case: Case) -> Outcome:
    """Adjudicate the case with the engine and compare every expectation exactly."""
    from .engine import adjudicate, read_inputs
    from .outputs import lines_table, rejected_table, settlements_table

    with tempfile.TemporaryDirectory(prefix="adjudicate-case-") as tmp:
        paths = {}
        for name, spec in (
            ("claims", CLAIMS),
            ("members", MEMBERS),
            ("providers", PROVIDERS),
            ("catalogue", CATALOGUE),
        ):
            paths[name] = Path(tmp) / f"{name}.csv"
            _write_csv(paths[name], [c.name for c in spec.columns], case.tables[name])
        try:
            inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
            result = adjudicate(inputs, case.policy, threads=1)
        except InputError as e:
            raise _input_error(case, e, Path(tmp)) from None
        except P.PolicyError as e:
            raise CaseError(str(e), case.path, "case.policy") from None
    settled = {row["claim_id"]: row for row in settlements_table(result).to_pylist()}
    lines = {(row["claim_id"], row["line_no"]): row for row in lines_table(result).to_pylist()}
    rejected = {row["claim_id"]: row["reason"] for row in rejected_table(result).to_pylist()}
    diffs: list[Difference] = []
    for cid, (reason, _) in case.rejected.items():
        got = rejected.get(cid)
        if got != reason:
            diffs.append(Difference(cid, None, "rejected", reason, got or "settled", None))
    for x in case.expects:
        row = settled.get(x.claim_id) if x.line_no is None else lines.get((x.claim_id, x.line_no))
        if row is None:
            why = f"rejected ({rejected[x.claim_id]})" if x.claim_id in rejected else "not settled"
            diffs.append(Difference(x.claim_id, x.line_no, x.column, _show(x.value), why, None))
            continue
        got = row[x.column]
        if got != x.value:
            delta = f"{got - x.value:+.2f}" if isinstance(got, Decimal) and isinstance(x.value, Decimal) else None
            diffs.append(Difference(x.claim_id, x.line_no, x.column, _show(x.value), _show(got), delta))
    return Outcome(case, diffs)


def _show(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, Decimal):
        return f"{v:.2f}" if v == v.quantize(Decimal("0.01")) else str(v)
    return str(v)


def _input_error(case: Case, e: InputError, folder: Path) -> CaseError:
    """An input error in the case's data, named by the case key of the row and column."""
    table = Path(e.file).stem if e.file is not None and Path(e.file).parent == folder else None
    key = "case"
    if table in case.origin and e.row is not None and e.row < len(case.origin[table]):
        key = case.origin[table][e.row]
        if e.column:
            header = table == "claims" and e.column not in LINE_KEYS and e.column != "line_no"
            key = f"{key.rsplit('.lines[', 1)[0] if header else key}.{e.column}"
    message = str(e).split(": ", 1)[-1] if e.file is not None else str(e)
    loc = _Reader(case.path, case.path.read_text(encoding="utf-8"))
    return CaseError(f"{message} ({table or 'input'} of the case)", case.path, key, loc._line_of(key))


def run_paths(paths: Iterable[str | Path]) -> tuple[list[Outcome], list[CaseError]]:
    """Run every case file named: the outcomes of the cases that ran, and the malformed files.

    A malformed file (its TOML, its keys, or input the engine refuses) is reported
    and the others still run, as a test runner reports a file it cannot collect.
    A path that does not exist, or a folder without case files, raises: the
    command line itself is wrong."""
    outcomes: list[Outcome] = []
    broken: list[CaseError] = []
    for f in case_files(paths):
        try:
            outcomes.append(run_case(load_case(f)))
        except CaseError as e:
            broken.append(e)
    return outcomes, broken
