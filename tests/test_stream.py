"""The streaming path gives the same outputs as one in-memory run (contract §3)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from builders import Case

from adjudicate import policy as P
from adjudicate.generate import generate_tables, write_dataset
from adjudicate.stream import run_streaming

NAMES = ("settlements", "lines", "rejected")


def both(folder, tmp_path, policy, parts, fmt_files=None):
    files = fmt_files or {k: [folder / f"{k}.parquet"] for k in ("claims", "members", "providers", "catalogue")}
    args = (files["claims"], files["members"], files["providers"], files["catalogue"], P.load(policy))
    run_streaming(*args, tmp_path / "one", parts=1)
    s = run_streaming(*args, tmp_path / "many", parts=parts)
    return s, {
        n: (pq.read_table(tmp_path / "one" / f"{n}.parquet"), pq.read_table(tmp_path / "many" / f"{n}.parquet"))
        for n in NAMES
    }


@pytest.mark.parametrize(
    "policy,parts", [("prefecture-employee", 3), ("shenzhen-comprehensive", 7), ("zhenjiang-resident", 2)]
)
def test_partitions_match_in_memory(tmp_path, policy, parts):
    folder = tmp_path / "gen"
    write_dataset(generate_tables(600, 2024, seed=9, bad_rows=0.05), folder)
    s, tables = both(folder, tmp_path, policy, parts)
    for name, (one, many) in tables.items():
        assert many.equals(one), name
    assert s["counts"]["reconciles"] and s["partitions"] == parts
    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert one["totals"] == s["totals"]
    assert {k: v for k, v in one["counts"].items()} == s["counts"]


def test_claim_spanning_partitions_is_rejected_once(tmp_path):
    case = Case().provider()
    for m in range(20):
        case.member(f"M{m:02d}")
        case.claim(f"C{m:02d}", [("A1", "100.00")], member_id=f"M{m:02d}")
    case.claim("SPLIT", [("A1", "100.00"), ("A1", "50.00")], member_id="M00")
    case.claims[-1]["member_id"] = "M19"  # second line: another member, in another range
    case.claim("GHOST", [("A1", "10.00")], member_id="NOBODY")
    case.write(tmp_path / "in")
    s, tables = both(tmp_path / "in", tmp_path, "prefecture-employee", 4)
    for name, (one, many) in tables.items():
        assert many.equals(one), name
    rejected = {r["claim_id"]: r["reason"] for r in tables["rejected"][1].to_pylist()}
    assert rejected == {"SPLIT": "inconsistent_claim_header", "GHOST": "unknown_member"}
    assert s["counts"]["settled_claims"] == 20


def test_input_error_names_the_original_file_and_row(tmp_path):
    import pyarrow as pa

    from adjudicate.inputs import InputError

    folder = tmp_path / "gen"
    write_dataset(generate_tables(50, 2024, seed=1), folder)
    claims = pq.read_table(folder / "claims.parquet")
    setting = claims["setting"].to_pylist()
    setting[123] = "teleconsultation"
    pq.write_table(
        claims.set_column(claims.schema.get_field_index("setting"), "setting", pa.array(setting, pa.string())),
        folder / "claims.parquet",
    )
    with pytest.raises(InputError) as e:
        both(folder, tmp_path, "prefecture-employee", 3)
    assert e.value.row == 123 and e.value.column == "setting" and e.value.file.name == "claims.parquet"


def test_csv_and_feather_inputs_stream_the_same(tmp_path):
    tables = generate_tables(300, 2024, seed=4, bad_rows=0.03)
    for fmt, suffix in (("csv", ".csv"), ("feather", ".arrow")):
        folder = tmp_path / fmt
        write_dataset(tables, folder, fmt)
        files = {k: [folder / f"{k}{suffix}"] for k in ("claims", "members", "providers", "catalogue")}
        _, out = both(folder, tmp_path / f"out-{fmt}", "city-employee", 3, files)
        for name, (one, many) in out.items():
            assert many.equals(one), (fmt, name)


def test_cli_partitions_option(tmp_path):
    from click.testing import CliRunner

    from adjudicate.cli import main

    folder = tmp_path / "gen"
    write_dataset(generate_tables(200, 2024, seed=2, bad_rows=0.02), folder)
    args = [
        "--claims",
        folder / "claims.parquet",
        "--members",
        folder / "members.parquet",
        "--providers",
        folder / "providers.parquet",
        "--catalogue",
        folder / "catalogue.parquet",
        "--policy",
        "prefecture-employee",
        "-q",
    ]
    for parts, out in ((1, "a"), (4, "b")):
        r = CliRunner().invoke(main, ["run", *map(str, args), "--partitions", str(parts), "--out", str(tmp_path / out)])
        assert r.exit_code == 0, r.output
    for name in NAMES:
        assert pq.read_table(tmp_path / "b" / f"{name}.parquet").equals(
            pq.read_table(tmp_path / "a" / f"{name}.parquet")
        )


def test_bad_bytes_in_a_streamed_file_are_an_input_error(tmp_path):
    import pyarrow as pa

    from adjudicate.inputs import InputError

    folder = tmp_path / "gen"
    write_dataset(generate_tables(50, 2024, seed=1), folder)
    claims = pq.read_table(folder / "claims.parquet")
    ids = claims["claim_id"].cast(pa.binary()).to_pylist()
    ids[7] = b"\xff\xfe"
    pq.write_table(claims.set_column(0, "claim_id", pa.array(ids, pa.binary())), folder / "claims.parquet")
    with pytest.raises(InputError) as e:
        both(folder, tmp_path, "prefecture-employee", 3)
    assert e.value.file.name == "claims.parquet"
