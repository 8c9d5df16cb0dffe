"""adjudicate audit: planted patterns and near misses, hand-computed indicators, rules file errors, CLI."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import Case
from click.testing import CliRunner

from adjudicate import policy as P
from adjudicate.audit import RULES, load_audit_rules, run_audit
from adjudicate.audit.plant import plant_audit, planted_cases
from adjudicate.cli import main
from adjudicate.engine import adjudicate, read_inputs
from adjudicate.generate import generate_tables, write_dataset
from adjudicate.outdir import MARKER
from adjudicate.outputs import settlements_table
from adjudicate.reconcile.rules import RulesError

DEFAULT = Path(load_audit_rules().path)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A generated data set with every pattern planted, and its audit."""
    folder = tmp_path_factory.mktemp("planted")
    tables = plant_audit(generate_tables(150, 2024, seed=11))
    paths = write_dataset(tables, folder)
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    result = adjudicate(inputs, P.load("prefecture-employee"), threads=2)
    audit = run_audit(result, inputs, threads=2)
    return paths, planted_cases(tables), audit


def _pairs(flags: pa.Table) -> set[tuple[str, str]]:
    return set(zip(flags["claim_id"].to_pylist(), flags["rule"].to_pylist()))


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_finds_every_planted_case_and_no_near_miss(planted, rule):
    _, cases, audit = planted
    got = _pairs(audit.flags)
    mine = [c for c in cases["planted"] if c[1] == rule]
    near = [c for c in cases["near_miss"] if c[1] == rule]
    assert mine, f"no planted case for {rule}"
    assert near, f"no near miss for {rule}"
    assert [c for c in mine if c not in got] == []
    assert [c for c in near if c in got] == []


def test_planted_claims_fire_only_their_own_rule(planted):
    _, cases, audit = planted
    expected = set(cases["planted"])
    on_planted = {p for p in _pairs(audit.flags) if p[0].startswith("AUDC")}
    assert on_planted == expected


def test_flag_evidence(planted):
    _, _, audit = planted
    rows = [r for r in audit.flags.to_pylist() if r["claim_id"].startswith("AUDC")]
    by = defaultdict(list)
    for r in rows:
        by[r["rule"]].append(r)
    readmit = sorted(by["readmission"], key=lambda r: r["gap_days"])
    assert [r["gap_days"] for r in readmit] == [10, 15]
    assert readmit[0]["evidence_claim_id"].startswith("AUDC") and readmit[0]["severity"] == "high"
    assert str(readmit[0]["evidence_amount"]) == "20.00"
    dup = by["duplicate_billing"][0]
    assert dup["claim_id"].endswith("D00002") and dup["evidence_claim_id"].endswith("D00001")
    assert dup["measure"] == 3 and dup["measure_unit"] == "lines"
    bed = by["bed_blocking"][0]
    assert bed["gap_days"] == 10 and str(bed["evidence_amount"]) == "700.00"
    assert bed["measure"] == pytest.approx(0.9333) and bed["measure_unit"] == "share"
    freq = by["pharmacy_frequency"][0]
    assert freq["measure"] == 4 and freq["gap_days"] == 3
    units = {r["measure_unit"] for r in by["large_prescription"]}
    assert units == {"yuan", "units"}
    assert all(r["evidence"] for r in rows)


def test_same_flags_whatever_the_row_order_and_threads(planted):
    paths, _, audit = planted
    claims = pq.read_table(paths["claims"])
    perm = np.random.default_rng(5).permutation(claims.num_rows)
    shuffled = paths["claims"].parent / "shuffled.parquet"
    pq.write_table(claims.take(pa.array(perm)), shuffled)
    inputs = read_inputs([shuffled], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    again = run_audit(adjudicate(inputs, P.load("prefecture-employee"), threads=1), inputs, threads=1)
    assert again.flags.equals(audit.flags)
    assert again.indicators.equals(audit.indicators)


def test_catalogue_without_item_kind_still_works_and_says_what_was_skipped(planted, tmp_path):
    paths, cases, _ = planted
    cat = pq.read_table(paths["catalogue"]).drop(["item_kind"])
    pq.write_table(cat, tmp_path / "catalogue.parquet")
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [tmp_path / "catalogue.parquet"])
    a = run_audit(adjudicate(inputs, P.load("prefecture-employee")), inputs)
    s = a.summary()
    assert set(s["skipped_rules"]) == {"bed_blocking", "pharmacy_non_drug"}
    got = _pairs(a.flags)
    assert all(c in got for c in cases["planted"] if c[1] in ("readmission", "overlapping_stay", "duplicate_billing"))
    assert not {r for _, r in got} & {"bed_blocking", "pharmacy_non_drug"}


# ---------------------------------------------------------------- indicators on a hand-made data set
def _indicator_case(tmp_path: Path) -> dict[str, Path]:
    c = Case()
    for m in ("M1", "M2", "M3"):
        c.member(m)
    for h in ("H1", "H2", "H3"):
        c.provider(h, kind="hospital", level=2)
    c.provider("PH", kind="pharmacy", level=0)
    c.item("D", "A").item("F", "A").item("T", "A")
    # H1: two stays of M1 (the second a readmission after 5 days), two visits of M2
    c.claim("c1", [("D", 600), ("F", 400)], "M1", "H1", admit="2024-03-01", discharge="2024-03-05")
    c.claim("c2", [("D", 300), ("X1", 200)], "M1", "H1", admit="2024-03-10", discharge="2024-03-12")
    c.claim("c3", [("T", 100)], "M2", "H1", setting="outpatient", admit="2024-04-01")
    c.claim("c4", [("T", 50), ("X1", 50)], "M2", "H1", setting="outpatient", admit="2024-04-02")
    # H2 and H3: M3
    c.claim("c5", [("D", 1000)], "M3", "H2", admit="2024-05-01", discharge="2024-05-03")
    c.claim("c6", [("T", 100)], "M3", "H2", setting="outpatient", admit="2024-05-10")
    c.claim("c7", [("D", 2000)], "M3", "H3", admit="2024-06-01", discharge="2024-06-11")
    c.claim("c8", [("T", 100)], "M3", "H3", setting="outpatient", admit="2024-06-20")
    c.claim("c9", [("D", 30)], "M1", "PH", setting="pharmacy", admit="2024-07-01")
    paths = c.write(tmp_path / "ind")
    cat = pq.read_table(paths["catalogue"])
    kinds = {
        "A1": "drug",
        "B1": "drug",
        "S1": "treatment",
        "P1": "drug",
        "X1": "drug",
        "D": "drug",
        "F": "facility",
        "T": "treatment",
    }
    cat = cat.append_column("item_kind", pa.array([kinds[i] for i in cat["item_code"].to_pylist()]))
    pq.write_table(cat, paths["catalogue"])
    return paths


def _rules(tmp_path: Path, **replace: str) -> Path:
    text = DEFAULT.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    p = tmp_path / "rules.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_indicators_reproduce_hand_computed_values(tmp_path):
    paths = _indicator_case(tmp_path)
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    result = adjudicate(inputs, P.load("prefecture-employee"))
    rules = load_audit_rules(_rules(tmp_path, **{"min_claims = 5": "min_claims = 1"}))
    a = run_audit(result, inputs, rules)
    ind = {(r["provider_id"], r["indicator"]): r for r in a.indicators.to_pylist()}
    h1 = {k[1]: v for k, v in ind.items() if k[0] == "H1"}

    def nd(name):
        return h1[name]["numerator"], h1[name]["denominator"]

    assert nd("admissions") == (2, 1) and nd("outpatient_visits") == (2, 1)
    assert nd("inpatient_total_per_admission") == (150000, 2) and h1["inpatient_total_per_admission"]["value"] == 750.0
    assert nd("outpatient_total_per_visit") == (20000, 2) and h1["outpatient_total_per_visit"]["value"] == 100.0
    assert nd("average_length_of_stay") == (6, 2) and h1["average_length_of_stay"]["value"] == 3.0
    assert nd("self_pay_share") == (25000, 170000)
    assert nd("drug_share") == (110000, 150000)
    assert nd("readmission_rate") == (1, 2) and h1["readmission_rate"]["value"] == 0.5
    assert nd("admissions_per_100_visits") == (200, 2)
    assert nd("visits_per_member") == (4, 2)
    # fund per admission: the run's own fund_pool + fund_supplementary of H1's stays
    s = {r["claim_id"]: r for r in settlements_table(result).to_pylist()}
    fund = sum(int((s[c]["fund_pool"] + s[c]["fund_supplementary"]) * 100) for c in ("c1", "c2"))
    assert nd("inpatient_fund_per_admission") == (fund, 2)
    # peers: H1 750, H2 1000, H3 2000 per admission; median 1000; H3 is 2.0 × the median > 1.5
    per_adm = {p: ind[(p, "inpatient_total_per_admission")] for p in ("H1", "H2", "H3")}
    assert [per_adm[p]["peer_rank"] for p in ("H1", "H2", "H3")] == [3, 2, 1]
    assert all(v["peers"] == 3 and v["peer_median"] == 1000.0 for v in per_adm.values())
    assert per_adm["H3"]["outlier"] and per_adm["H3"]["outlier_reason"] == "peer median"
    assert not per_adm["H1"]["outlier"] and not per_adm["H2"]["outlier"]
    # drug share 1100/1500 is above the seed's 50 % standard (004 第2篇)
    assert h1["drug_share"]["outlier"] and "standard" in h1["drug_share"]["outlier_reason"]
    # a pharmacy has no admissions: per-admission values are null, never judged
    ph = ind[("PH", "inpatient_total_per_admission")]
    assert ph["value"] is None and ph["denominator"] == 0 and not ph["outlier"]
    # readmission flag on c2
    assert ("c2", "readmission") in _pairs(a.flags)


def test_min_claims_keeps_small_providers_from_being_judged(tmp_path):
    paths = _indicator_case(tmp_path)
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    a = run_audit(adjudicate(inputs, P.load("prefecture-employee")), inputs)  # min_claims = 5
    rows = [r for r in a.indicators.to_pylist() if r["indicator"] == "inpatient_total_per_admission"]
    assert not any(r["outlier"] for r in rows) and all(r["peer_rank"] is None for r in rows)


# ---------------------------------------------------------------- rules file
@pytest.mark.parametrize(
    "old,new,key",
    [
        ("{ value = 15,", "{ value = -1,", "readmission.window_days"),
        ('severity = "high"\nwindow_days = {', 'severity = "urgent"\nwindow_days = {', "readmission.severity"),
        ("min_facility_share = 0.80", "min_facility_share = 1.5", "bed_blocking.min_facility_share"),
        ("min_facility_share = 0.80", "min_facility_share = 0.80\nthreshold = 3", "bed_blocking.threshold"),
        ('settings = ["outpatient", "pharmacy"]', 'settings = ["outpatient", "shop"]', "large_prescription.settings"),
        ("max_claim_amount = 2000", "max_claim_amount = 2000.001", "large_prescription.max_claim_amount"),
        ("peer_factor = 1.5", "peer_factor = 0.5", "indicators.peer_factor"),
        ('kinds = ["treatment", "facility", "other"]', 'kinds = ["food"]', "pharmacy_non_drug.kinds"),
    ],
)
def test_rules_file_errors_name_the_key_and_line(tmp_path, old, new, key):
    path = _rules(tmp_path, **{old: new})
    with pytest.raises(RulesError) as e:
        load_audit_rules(path)
    assert key in str(e.value) and "line " in str(e.value)
    line = int(str(e.value).split("line ")[1].split(",")[0])
    assert key.split(".")[-1] in path.read_text(encoding="utf-8").splitlines()[line - 1]


def test_rules_file_missing_table_and_key(tmp_path):
    text = DEFAULT.read_text(encoding="utf-8")
    p = tmp_path / "r.toml"
    p.write_text(text.replace("[duplicate_billing]", "[duplicate_billing_x]"), encoding="utf-8")
    with pytest.raises(RulesError, match="duplicate_billing"):
        load_audit_rules(p)
    p.write_text(text.replace("max_purchases = 3", ""), encoding="utf-8")
    with pytest.raises(RulesError, match="pharmacy_frequency.max_purchases.*missing|missing"):
        load_audit_rules(p)


def test_disabled_rule_does_not_run(planted, tmp_path):
    paths, _, _ = planted
    rules = load_audit_rules(
        _rules(
            tmp_path,
            **{
                'enabled = true\nseverity = "high"\n\n[bed_blocking]': 'enabled = false\nseverity = "high"\n\n[bed_blocking]'
            },
        )
    )
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    a = run_audit(adjudicate(inputs, P.load("prefecture-employee")), inputs, rules)
    assert "duplicate_billing" not in set(a.flags["rule"].to_pylist())
    assert a.summary()["skipped_rules"]["duplicate_billing"] == "disabled in the rules file"


# ---------------------------------------------------------------- command line
def _args(paths) -> list[str]:
    return [
        "--claims",
        str(paths["claims"]),
        "--members",
        str(paths["members"]),
        "--providers",
        str(paths["providers"]),
        "--catalogue",
        str(paths["catalogue"]),
        "--policy",
        "prefecture-employee",
    ]


def test_audit_command_writes_flags_indicators_summary(planted, tmp_path):
    paths, cases, _ = planted
    out = tmp_path / "audit"
    r = CliRunner().invoke(main, ["audit", *_args(paths), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    # contract §5: every command that writes an output folder also writes report.html, and the marker
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "flags.parquet",
        "indicators.parquet",
        "report.html",
        "summary.json",
    ]
    flags = pq.read_table(out / "flags.parquet")
    assert {"claim_id", "member_id", "provider_id", "rule", "severity", "evidence"} <= set(flags.column_names)
    assert all(c in _pairs(flags) for c in cases["planted"])
    s = json.loads((out / "summary.json").read_text())
    assert s["audit"]["flags"] == flags.num_rows and s["counts"]["reconciles"]


def test_run_audit_writes_flags_beside_the_settlements(planted, tmp_path):
    paths, _, audit = planted
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["run", *_args(paths), "--out", str(out), "--audit", "-q"])
    assert r.exit_code == 0, r.output
    names = {p.name for p in out.iterdir()}
    assert {"settlements.parquet", "lines.parquet", "flags.parquet", "indicators.parquet"} <= names
    assert _pairs(pq.read_table(out / "flags.parquet")) == _pairs(audit.flags)
    s = json.loads((out / "summary.json").read_text())
    assert "audit" in s and "audit" in s["timings_seconds"]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--rules", "x.toml"], "--rules"),
    ],
)
def test_run_audit_usage_errors(planted, tmp_path, extra, message):
    paths, _, _ = planted
    r = CliRunner().invoke(main, ["run", *_args(paths), "--out", str(tmp_path / "o"), *extra])
    assert r.exit_code == 2 and message in r.output
    assert not (tmp_path / "o").exists()


def test_bad_rules_file_exits_2_without_output(planted, tmp_path):
    paths, _, _ = planted
    bad = _rules(tmp_path, **{"{ value = 15,": "{ value = 'x',"})
    r = CliRunner().invoke(main, ["audit", *_args(paths), "--rules", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "readmission.window_days" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_bad_item_kind_is_an_input_error(planted, tmp_path):
    paths, _, _ = planted
    cat = pq.read_table(paths["catalogue"])
    kinds = cat["item_kind"].to_pylist()
    kinds[3] = "food"
    pq.write_table(
        cat.set_column(cat.column_names.index("item_kind"), "item_kind", pa.array(kinds)), tmp_path / "cat.parquet"
    )
    args = _args({**paths, "catalogue": tmp_path / "cat.parquet"})
    r = CliRunner().invoke(main, ["audit", *args, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "item_kind" in r.output and "row 3" in r.output


def test_generate_plant_audit_option(tmp_path):
    r = CliRunner().invoke(
        main,
        [
            "generate",
            "--members",
            "60",
            "--year",
            "2024",
            "--seed",
            "2",
            "--plant-audit",
            "--out",
            str(tmp_path / "g"),
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    cases = planted_cases(pq.read_schema(tmp_path / "g" / "claims.parquet"))
    assert {rule for _, rule in cases["planted"]} == set(RULES)
    assert {rule for _, rule in cases["near_miss"]} == set(RULES)
    assert "item_kind" in pq.read_schema(tmp_path / "g" / "catalogue.parquet").names
    on_file = json.loads((tmp_path / "g" / "audit-planted.json").read_text())
    assert {k: [tuple(x) for x in v] for k, v in on_file.items()} == cases


# ---------------------------------------------------------------- the compiled pass against a plain reading
def _reference_flags(paths, result, rules) -> set[tuple]:
    """Every rule again, straight from its definition in AUDIT-RULES.md, O(n²) per member."""
    from adjudicate.audit.plant import item_kinds  # noqa: F401  (kinds come from the catalogue file)

    settled = {r["claim_id"]: r for r in settlements_table(result).to_pylist()}
    cat = pq.read_table(paths["catalogue"]).to_pylist()
    kind_of = {}
    for row in cat:
        kind_of.setdefault(row["item_code"], []).append(row)
    claims: dict[str, dict] = {}
    for ln in pq.read_table(paths["claims"]).to_pylist():
        if ln["claim_id"] not in settled:
            continue
        c = claims.setdefault(
            ln["claim_id"],
            {
                "id": ln["claim_id"],
                "m": ln["member_id"],
                "p": ln["provider_id"],
                "s": ln["setting"],
                "a": ln["admit_date"],
                "lines": [],
            },
        )
        c["d"] = ln["discharge_date"] if ln["setting"] == "inpatient" else ln["admit_date"]
        rows = [
            r
            for r in kind_of.get(ln["item_code"], [])
            if r["valid_from"] <= ln["admit_date"] and (r["valid_to"] is None or ln["admit_date"] <= r["valid_to"])
        ]
        c["lines"].append((ln["item_code"], ln["quantity"], ln["amount"], rows[0]["item_kind"] if rows else None))
    for c in claims.values():
        c["total"] = sum(x[2] for x in c["lines"])
    by_member = defaultdict(list)
    for c in claims.values():
        by_member[c["m"]].append(c)
    R = {n: rules.rules[n].params for n in RULES}
    out = set()
    for cs in by_member.values():
        cs.sort(key=lambda c: (c["d"], c["id"].encode()))
        pos = {c["id"]: k for k, c in enumerate(cs)}
        for i in cs:
            if i["s"] == "inpatient":
                prev = [
                    j
                    for j in cs
                    if j is not i
                    and j["s"] == "inpatient"
                    and j["p"] == i["p"]
                    and j["d"] <= i["a"]
                    and (i["a"] - j["d"]).days <= R["readmission"]["window_days"]
                    and (j["a"], j["id"].encode()) < (i["a"], i["id"].encode())
                ]
                if prev:
                    j = max(prev, key=lambda j: (j["d"], j["a"], j["id"].encode()))
                    out.add((i["id"], "readmission", j["id"], (i["a"] - j["d"]).days))
                for j in cs:
                    if j["p"] == i["p"] or j is i:
                        continue
                    if j["s"] == "inpatient" and j["a"] < i["d"] and i["a"] < j["d"]:
                        out.add(
                            (i["id"], "overlapping_stay", j["id"], (min(i["d"], j["d"]) - max(i["a"], j["a"])).days)
                        )
                    if j["s"] in ("outpatient", "special_outpatient", "pharmacy") and i["a"] < j["d"] < i["d"]:
                        out.add((j["id"], "overlapping_stay", i["id"], (j["d"] - i["a"]).days))
                los = (i["d"] - i["a"]).days
                fac = sum(x[2] for x in i["lines"] if x[3] == "facility")
                if (
                    los >= R["bed_blocking"]["min_days"]
                    and i["total"] > 0
                    and fac > 0
                    and fac * 10000 >= R["bed_blocking"]["min_facility_share"] * i["total"]
                ):
                    out.add((i["id"], "bed_blocking", None, los))
                items = {x[0] for x in i["lines"]}
                o2i = [
                    j
                    for j in cs
                    if j["s"] == "outpatient"
                    and j["p"] == i["p"]
                    and 0 <= (i["a"] - j["d"]).days <= R["outpatient_to_inpatient"]["window_days"]
                    and items & {x[0] for x in j["lines"]}
                ]
                if o2i:
                    j = max(o2i, key=lambda j: (j["d"], j["id"].encode()))
                    out.add((i["id"], "outpatient_to_inpatient", j["id"], (i["a"] - j["d"]).days))
            key = sorted((x[0], x[1], x[2]) for x in i["lines"])
            dups = [
                j
                for j in cs
                if j is not i
                and j["s"] == i["s"]
                and j["a"] == i["a"]
                and j["p"] == i["p"]
                and sorted((x[0], x[1], x[2]) for x in j["lines"]) == key
            ]
            if dups:
                j = min(dups, key=lambda j: j["id"].encode())
                if j["id"].encode() < i["id"].encode():
                    out.add((i["id"], "duplicate_billing", j["id"], 0))
            if i["s"] in ("outpatient", "pharmacy"):
                big = i["total"] * 100 > R["large_prescription"]["max_claim_amount"]
                qty = [x for x in i["lines"] if x[3] == "drug" and x[1] > R["large_prescription"]["max_line_quantity"]]
                if big or qty:
                    out.add((i["id"], "large_prescription", None, None))
            if i["s"] == "pharmacy":
                if any(x[3] in ("treatment", "facility", "other") for x in i["lines"]):
                    out.add((i["id"], "pharmacy_non_drug", None, None))
                win = [
                    j
                    for j in cs[: pos[i["id"]] + 1]
                    if j["s"] == "pharmacy" and (i["d"] - j["d"]).days < R["pharmacy_frequency"]["window_days"]
                ]
                if len(win) > R["pharmacy_frequency"]["max_purchases"]:
                    out.add((i["id"], "pharmacy_frequency", win[0]["id"], (i["d"] - win[0]["d"]).days))
    return out


def test_compiled_pass_agrees_with_a_plain_reading_of_the_rules(planted, tmp_path):
    paths, _, _ = planted
    # loose thresholds, so the background data fires every rule many times, not only the planted cases
    rules = load_audit_rules(
        _rules(
            tmp_path,
            **{
                "{ value = 15,": "{ value = 90,",
                "max_purchases = 3": "max_purchases = 1",
                "window_days = 7 ": "window_days = 30 ",
                "window_days = 3 ": "window_days = 60 ",
                "min_facility_share = 0.80": "min_facility_share = 0.30",
                "max_claim_amount = 2000": "max_claim_amount = 300",
                "max_line_quantity = 200": "max_line_quantity = 20",
            },
        )
    )
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    result = adjudicate(inputs, P.load("prefecture-employee"))
    audit = run_audit(result, inputs, rules, threads=2)
    expected = _reference_flags(paths, result, rules)
    got = set(
        zip(
            audit.flags["claim_id"].to_pylist(),
            audit.flags["rule"].to_pylist(),
            audit.flags["evidence_claim_id"].to_pylist(),
            audit.flags["gap_days"].to_pylist(),
        )
    )
    assert len(got) == audit.flags.num_rows  # no flag twice
    assert got == expected
    assert len(got) > 500


def _dense_random_case(tmp_path: Path, seed: int) -> dict[str, Path]:
    """Members with many claims at few providers within two months: every rule fires often."""
    rng = np.random.default_rng(seed)
    c = Case()
    kinds = {"A1": "drug", "B1": "drug", "S1": "treatment", "P1": "material", "X1": "other"}
    for code, kind in (
        ("D1", "drug"),
        ("D2", "drug"),
        ("T1", "treatment"),
        ("T2", "treatment"),
        ("F1", "facility"),
        ("F2", "facility"),
        ("G1", "other"),
    ):
        c.item(code, "A")
        kinds[code] = kind
    for h in ("H1", "H2", "H3"):
        c.provider(h, kind="hospital", level=2)
    for ph in ("P1", "P2"):
        c.provider(ph, kind="pharmacy", level=0)
    items = list(kinds)
    n = 0
    for m in range(40):
        mid = f"M{m:03d}"
        c.member(mid)
        made = []
        for _ in range(int(rng.integers(4, 14))):
            n += 1
            setting = str(
                rng.choice(["inpatient", "outpatient", "pharmacy", "special_outpatient"], p=[0.35, 0.3, 0.3, 0.05])
            )
            prov = str(rng.choice(["P1", "P2"])) if setting == "pharmacy" else str(rng.choice(["H1", "H2", "H3"]))
            admit = np.datetime64("2024-03-01") + int(rng.integers(0, 60))
            dis = admit + int(rng.integers(0, 12))
            lines = [
                (str(rng.choice(items)), int(rng.integers(1, 9)) * 100, int(rng.integers(1, 4)))
                for _ in range(int(rng.integers(1, 5)))
            ]
            if made and rng.random() < 0.1:  # a re-billed copy, lines reordered
                cid, ls, s_, p_, a_, d_ = made[int(rng.integers(0, len(made)))]
                c.claim(f"C{n:05d}", ls[::-1], mid, p_, setting=s_, admit=a_, discharge=d_)
                continue
            claim_id = f"C{int(rng.integers(0, 10**5)):05d}{n}"  # claim_id order is not date order
            c.claim(claim_id, lines, mid, prov, setting=setting, admit=str(admit), discharge=str(dis))
            made.append((claim_id, lines, setting, prov, str(admit), str(dis)))
    paths = c.write(tmp_path / f"dense{seed}")
    cat = pq.read_table(paths["catalogue"])
    pq.write_table(
        cat.append_column("item_kind", pa.array([kinds[i] for i in cat["item_code"].to_pylist()])), paths["catalogue"]
    )
    return paths


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_pass_agrees_with_the_plain_reading_on_dense_random_members(tmp_path, seed):
    paths = _dense_random_case(tmp_path, seed)
    rules = load_audit_rules(
        _rules(
            tmp_path,
            **{
                "max_claim_amount = 2000": "max_claim_amount = 1500",
                "max_line_quantity = 200": "max_line_quantity = 2",
                "max_purchases = 3": "max_purchases = 1",
                "window_days = 3 ": "window_days = 30 ",
            },
        )
    )
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    result = adjudicate(inputs, P.load("prefecture-employee"))
    audit = run_audit(result, inputs, rules, threads=2)
    got = set(
        zip(
            audit.flags["claim_id"].to_pylist(),
            audit.flags["rule"].to_pylist(),
            audit.flags["evidence_claim_id"].to_pylist(),
            audit.flags["gap_days"].to_pylist(),
        )
    )
    assert len(got) == audit.flags.num_rows
    assert got == _reference_flags(paths, result, rules)
    fired = defaultdict(int)
    for _, rule, _, _ in got:
        fired[rule] += 1
    assert all(fired[r] >= 2 for r in RULES), fired


def test_same_day_stays_readmission_order(tmp_path, run_case):
    """A stay discharged on the admission day of a same-day stay, ordered after it by claim_id, is still
    the previous stay (settlement order puts it after; the rule looks both ways)."""
    c = Case().member("M1").provider("H3")
    c.claim("z1", [("A1", 100)], admit="2024-03-01", discharge="2024-03-10")
    c.claim("a2", [("A1", 100)], admit="2024-03-10", discharge="2024-03-10")
    paths = c.write(tmp_path / "same")
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    a = run_audit(adjudicate(inputs, P.load("prefecture-employee")), inputs)
    rows = [
        (r["claim_id"], r["evidence_claim_id"], r["gap_days"])
        for r in a.flags.to_pylist()
        if r["rule"] == "readmission"
    ]
    assert rows == [("a2", "z1", 0)]


@pytest.mark.parametrize("same_diagnosis,flagged", [(False, ["r2", "r3"]), (True, ["r3"])])
def test_readmission_same_diagnosis_option(tmp_path, same_diagnosis, flagged):
    c = Case().member("M1").provider("H3")
    c.claim("r1", [("A1", 100)], admit="2024-03-01", discharge="2024-03-05", diagnosis="I10")
    c.claim("r2", [("A1", 100)], admit="2024-03-08", discharge="2024-03-09", diagnosis="J18.9")  # other disease
    c.claim("r3", [("A1", 100)], admit="2024-03-12", discharge="2024-03-14", diagnosis="J18.9")
    paths = c.write(tmp_path / "dx")
    rules = load_audit_rules(
        _rules(tmp_path, **{"same_diagnosis = false": f"same_diagnosis = {str(same_diagnosis).lower()}"})
    )
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    a = run_audit(adjudicate(inputs, P.load("prefecture-employee")), inputs, rules)
    got = [(r["claim_id"], r["evidence_claim_id"]) for r in a.flags.to_pylist() if r["rule"] == "readmission"]
    expected = {"r2": "r1", "r3": "r2"} if not same_diagnosis else {"r3": "r2"}
    assert got == [(k, expected[k]) for k in flagged]


def test_no_settled_claims_gives_empty_outputs(tmp_path):
    c = Case().member("M1").provider("H3")
    c.claim("x1", [("A1", 100)], member_id="NOBODY")  # rejected: unknown member
    paths = c.write(tmp_path / "empty")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["audit", *_args(paths), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert pq.read_table(out / "flags.parquet").num_rows == 0
    assert pq.read_table(out / "indicators.parquet").num_rows == 0
    assert json.loads((out / "summary.json").read_text())["counts"]["rejected_claims"] == 1


@pytest.mark.parametrize("partitions", ["3", "2"])
def test_streaming_run_audit_equals_the_in_memory_audit(planted, tmp_path, partitions):
    paths, _, _ = planted
    one, many = tmp_path / "one", tmp_path / "many"
    for out, parts in ((one, "1"), (many, partitions)):
        r = CliRunner().invoke(
            main, ["run", *_args(paths), "--out", str(out), "--audit", "--partitions", parts, "--no-lines", "-q"]
        )
        assert r.exit_code == 0, r.output
    for name in ("flags.parquet", "indicators.parquet"):
        assert pq.read_table(many / name).equals(pq.read_table(one / name)), name
    a, b = (json.loads((d / "summary.json").read_text())["audit"] for d in (one, many))
    for key in ("flags", "flagged_claims", "by_rule", "indicator_rows", "outliers", "skipped_rules"):
        assert a[key] == b[key], key
    assert json.loads((many / "summary.json").read_text())["partitions"] == int(partitions)


def test_report_tables_hook(planted):
    _, _, audit = planted
    t = audit.report_tables(top=2)
    rules = t["flags"]["rule"].to_pylist()
    severities = t["flags"]["severity"].to_pylist()
    order = {"high": 0, "medium": 1, "low": 2}
    assert [order[s] for s in severities] == sorted(order[s] for s in severities)
    assert all(rules.count(r) <= 2 for r in set(rules)) and len(set(rules)) == len(RULES)
    assert t["outliers"].num_rows == audit.summary()["outliers"] and all(t["outliers"]["outlier"].to_pylist())


def test_rules_values_may_be_cited_but_not_dated(tmp_path):
    cited = load_audit_rules(
        _rules(tmp_path, **{"max_purchases = 3": 'max_purchases = { value = 2, reference = "fund office circular 7" }'})
    )
    assert cited.rules["pharmacy_frequency"].params["max_purchases"] == 2
    assert cited.references["pharmacy_frequency.max_purchases"] == "fund office circular 7"
    assert cited.references["readmission.window_days"].startswith("seed 004 第7篇")
    dated = _rules(tmp_path, **{"max_purchases = 3": "max_purchases = { values = { 2024-01-01 = 3, 2024-07-01 = 2 } }"})
    with pytest.raises(RulesError, match="pharmacy_frequency.max_purchases.*one value"):
        load_audit_rules(dated)
    structure = _rules(
        tmp_path, **{'severity = "low"\nwindow_days = 7': 'severity = { value = "low" }\nwindow_days = 7'}
    )
    with pytest.raises(RulesError, match="pharmacy_frequency.severity"):
        load_audit_rules(structure)


def test_streaming_audit_can_begin_again(planted, tmp_path):
    """A streaming run settles again when a later range holds an earlier year: the audit starts over."""
    from adjudicate.audit import StreamingAudit

    paths, _, audit = planted
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    result = adjudicate(inputs, P.load("prefecture-employee"))
    s = StreamingAudit(load_audit_rules())
    s.start(tmp_path)
    s.add(result, inputs)
    s.start(tmp_path)  # the second pass
    s.add(result, inputs)
    summary = s.finish()
    assert pq.read_table(tmp_path / "flags.parquet").equals(audit.flags)
    assert pq.read_table(tmp_path / "indicators.parquet").equals(audit.indicators)
    assert summary["flags"] == audit.flags.num_rows
