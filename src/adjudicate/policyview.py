"""A policy file key by key: what ``adjudicate policies show`` prints.

Every value of the file becomes one row ``key = value`` with its whole dotted
key (``blocks.inpatient.scale.bands[1].pool.retired``), the date it takes
effect and its reference. On a date, the values in force then; without one,
every value of every dated series, one row per date.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from . import dated
from . import policy as P
from .tomlfile import read_toml


def literal(v: Any) -> str:
    """A value as TOML text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {literal(x)}" for k, x in v.items()) + " }"
    return str(v)


def _leaves(node: Any, key: str, stop: set[str]):
    """(key, value) of each leaf; a list of tables is walked element by element, a key in ``stop`` kept whole."""
    if key in stop:
        yield key, node
    elif isinstance(node, dict) and node:
        for k, v in node.items():
            yield from _leaves(v, f"{key}.{k}" if key else str(k), stop)
    elif isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{key}[{i}]", stop)
    else:
        yield key, node


def view(name_or_path: str, on: dt.date | None = None) -> dict:
    """The policy's values as rows {key, value, from, reference}: in force ``on`` a date, or all of them."""
    policy = P.load(name_or_path)  # a file that does not load is not shown
    doc, _ = read_toml(policy.path, P.PolicyError, "policy")
    series = policy.series
    doc = {k: v for k, v in doc.items() if k != "policy"}  # the head, shown apart
    rows = []
    if on is not None:
        in_force = policy.at(on)
        for key, value in _leaves(dated.resolve(doc, series, on), "", set()):
            found = dated.in_force(series, key, on)
            e = found[0] if found else {"from": None, "reference": None}
            rows.append({"key": key, "value": literal(value), "from": e["from"], "reference": e["reference"]})
        period_from = max([d for d in policy.changes if d <= on], default=policy.valid_from)
        head = {
            "version": in_force.version,
            "on": on.isoformat(),
            "period_from": period_from.isoformat() if period_from else None,
        }
    else:
        for key, value in _leaves(doc, "", set(series)):
            if key in series:
                for entry in series[key].entries:
                    rows.append(
                        {
                            "key": key,
                            "value": literal(entry.value),
                            "from": entry.start.isoformat() if entry.start else None,
                            "reference": entry.reference,
                        }
                    )
            else:
                rows.append({"key": key, "value": literal(value), "from": None, "reference": None})
        head = {"version": policy.version, "on": None, "period_from": None}
    return {
        "name": policy.name,
        "title": policy.title,
        "source": policy.source,
        "notes": list(policy.notes),
        "file": str(policy.path),
        "changes": [d.isoformat() for d in ((policy.valid_from,) + policy.changes if policy.valid_from else ())],
        **head,
        "values": rows,
    }


def text(v: dict) -> str:
    """The view as lines a policy analyst reads: ``key = value  # from DATE · reference``."""
    out = [f"{v['name']} {v['version']} · {v['title']}", f"source: {v['source']}", f"file: {v['file']}"]
    out += [f"note: {n}" for n in v["notes"]]
    if v["on"]:
        since = f" (the values in force since {v['period_from']})" if v["period_from"] else " (nothing is dated)"
        out.append(f"in force on {v['on']}{since}")
    elif v["changes"]:
        out.append("every dated value, one line per date; dates of change: " + ", ".join(v["changes"]))
    out.append("")
    for r in v["values"]:
        line = f"{r['key']} = {r['value']}"
        note = [f"from {r['from']}"] if r["from"] else []
        if r["reference"]:
            note.append(r["reference"])
        out.append(f"{line}  # {' · '.join(note)}" if note else line)
    return "\n".join(out)
