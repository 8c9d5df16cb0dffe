"""Chinese data in: CSV in GB18030/GBK or UTF-8 (with or without BOM), Chinese enum
aliases, dates written 2024/1/1, and the message naming the encoding (issue 12)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.errors import InputError
from adjudicate.inputs import csv_encoding, load
from adjudicate.sample import sample_dir
from adjudicate.schema import ENUM_ALIASES, FALSE_WORDS, MEMBERS, TRUE_WORDS

ROOT = Path(__file__).resolve().parents[1]

#: One Chinese alias per canonical value, as a fund office's export writes them.
TO_CHINESE = {
    "setting": {"inpatient": "住院", "outpatient": "门诊", "special_outpatient": "门特", "pharmacy": "药店"},
    "referral": {"referred": "转诊", "emergency": "急诊"},
    "category": {"in_service": "在职", "retired": "退休"},
    "kind": {"community": "社区", "hospital": "医院", "pharmacy": "药店", "other": "其他"},
    "class": {"A": "甲类", "B": "乙类", "special": "特检", "supplementary": "补充目录", "excluded": "丙类"},
}
DATES = ("admit_date", "discharge_date", "birth_date", "enrolled_since", "valid_from", "valid_to")
BOOLS = ("civil_servant", "designated", "local")


def _slash_date(d: dt.date | None) -> str | None:
    return None if d is None else f"{d.year}/{d.month}/{d.day}"


def chinese_csv(table: pa.Table) -> pa.Table:
    """The table as text, written the way a Chinese spreadsheet export writes it."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if name in TO_CHINESE:
            cols[name] = pa.array([TO_CHINESE[name].get(v, v) if v is not None else None for v in col.to_pylist()])
        elif name in DATES:
            cols[name] = pa.array([_slash_date(v) for v in col.to_pylist()], pa.string())
        elif name in BOOLS:
            cols[name] = pa.array(["是" if v else "否" for v in col.to_pylist()])
        else:
            cols[name] = pc.cast(col, pa.string())
    return pa.table(cols)


def write_csv(table: pa.Table, path: Path, encoding: str, bom: bool = False) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(table.column_names)
    for row in zip(*(c.to_pylist() for c in table.columns)):
        w.writerow(["" if v is None else v for v in row])
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode(encoding))


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


@pytest.fixture(scope="module")
def chinese_inputs(tmp_path_factory):
    """The bundled sample as Chinese CSV: in GB18030, and in UTF-8 with a BOM."""
    root = tmp_path_factory.mktemp("zh")
    src = sample_dir()
    for enc, bom in (("gb18030", False), ("utf-8", True)):
        d = root / enc
        d.mkdir()
        for name in ("claims", "members", "providers", "catalogue"):
            write_csv(chinese_csv(pq.read_table(src / f"{name}.parquet")), d / f"{name}.csv", enc, bom)
    return root


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    r = invoke("run", "--inputs", sample_dir(), "--policy", "prefecture-employee", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    return pq.read_table(out / "settlements.parquet")


@pytest.mark.parametrize(
    "encoding,args", [("gb18030", ["--encoding", "gb18030"]), ("gb18030", ["--encoding", "GBK"]), ("utf-8", [])]
)
def test_chinese_csv_settles_exactly_like_the_parquet_sample(chinese_inputs, reference_run, tmp_path, encoding, args):
    out = tmp_path / "out"
    r = invoke(
        "run", "--inputs", chinese_inputs / encoding, *args, "--policy", "prefecture-employee", "--out", out, "-q"
    )
    assert r.exit_code == 0, r.output
    got = pq.read_table(out / "settlements.parquet")
    assert got.sort_by("claim_id").equals(reference_run.sort_by("claim_id"))


def test_gb18030_without_encoding_names_the_encoding(chinese_inputs, tmp_path):
    r = invoke(
        "run",
        "--inputs",
        chinese_inputs / "gb18030",
        "--policy",
        "prefecture-employee",
        "--out",
        tmp_path / "out",
        "-q",
    )
    assert r.exit_code == 2
    assert "is not UTF-8 text" in r.output and "GB18030" in r.output and "--encoding gb18030" in r.output
    assert re.search(r"line \d+ decodes as", r.output)
    assert "Traceback" not in r.output and not (tmp_path / "out").exists()


def test_validate_takes_encoding(chinese_inputs):
    r = invoke("validate", "--encoding", "gb18030", chinese_inputs / "gb18030")
    assert "not UTF-8" not in r.output and "unknown value" not in r.output, r.output


def test_unknown_encoding_is_a_usage_error(tmp_path):
    r = invoke(
        "run",
        "--inputs",
        sample_dir(),
        "--encoding",
        "klingon",
        "--policy",
        "prefecture-employee",
        "--out",
        tmp_path / "o",
    )
    assert r.exit_code == 2 and "unknown text encoding" in r.output


def _members_csv(tmp_path: Path, rows: list[str], encoding: str = "utf-8") -> Path:
    p = tmp_path / "members.csv"
    head = "member_id,birth_date,category,civil_servant,enrolled_since,account_balance,prior_year_wage"
    p.write_bytes(("\n".join([head, *rows]) + "\n").encode(encoding))
    return p


def test_dates_in_every_everyday_spelling(tmp_path):
    p = _members_csv(
        tmp_path,
        [
            "M1,2024/1/1,在职,是,2024-01-01,0,",
            "M2,2024.1.31,退休,否,2024-1-9,0,",
            "M3,2024年2月29日,在职职工,true,2024/12/31,0,",
        ],
    )
    t = load(MEMBERS, [p])
    days = lambda d: (d - dt.date(1970, 1, 1)).days  # noqa: E731
    assert list(t["birth_date"]) == [days(dt.date(2024, 1, 1)), days(dt.date(2024, 1, 31)), days(dt.date(2024, 2, 29))]
    assert list(t["enrolled_since"]) == [
        days(dt.date(2024, 1, 1)),
        days(dt.date(2024, 1, 9)),
        days(dt.date(2024, 12, 31)),
    ]
    assert list(t["category"]) == [0, 1, 0]
    assert list(t["civil_servant"]) == [True, False, True]


@pytest.mark.parametrize("bad", ["2024/2/30", "2024/13/1", "24/1/1", "2024-01-01x"])
def test_impossible_dates_are_still_errors(tmp_path, bad):
    p = _members_csv(tmp_path, ["M1,2000-01-01,在职,是,2024-01-01,0,", f"M2,{bad},在职,是,2024-01-01,0,"])
    with pytest.raises(InputError, match=r"column 'birth_date', row 1 .*is not a date"):
        load(MEMBERS, [p])


def test_unknown_enum_names_the_aliases(tmp_path):
    p = _members_csv(tmp_path, ["M1,2000-01-01,离休,是,2024-01-01,0,"])
    with pytest.raises(InputError, match="unknown value '离休'.*在职/在职职工/退休/退休人员"):
        load(MEMBERS, [p])


def test_aliases_work_in_parquet_too(tmp_path):
    t = pa.table(
        {
            "member_id": ["M1"],
            "birth_date": [dt.date(1950, 1, 1)],
            "category": ["退休"],
            "civil_servant": [False],
            "enrolled_since": [dt.date(2000, 1, 1)],
            "account_balance": pa.array([0], pa.int64()),
        }
    )
    pq.write_table(t, tmp_path / "m.parquet")
    assert list(load(MEMBERS, [tmp_path / "m.parquet"])["category"]) == [1]


def test_explicit_encoding_applies_only_inside_the_block(tmp_path):
    p = _members_csv(tmp_path, ["M1,2000-01-01,退休,是,2024-01-01,0,"], "gbk")
    with csv_encoding("gbk"):
        assert list(load(MEMBERS, [p])["category"]) == [1]
    with pytest.raises(InputError, match="--encoding gb18030"):
        load(MEMBERS, [p])


def test_every_alias_is_documented():
    import adjudicate.reconcile.tables  # noqa: F401 - registers the funds' and income items' aliases

    doc = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    for aliases in ENUM_ALIASES.values():
        for alias, code in aliases.items():
            assert re.search(rf"`{re.escape(alias)}`", doc), f"alias {alias} ({code}) is not in the data dictionary"
    for w in TRUE_WORDS + FALSE_WORDS:
        assert f"`{w}`" in doc


def test_income_in_chinese(tmp_path):
    import adjudicate.reconcile.tables as T

    p = tmp_path / "income.csv"
    p.write_bytes(
        "fund,year,month,item,amount\n统筹基金,2024,1,征缴收入,100.00\n个人账户,2024,2,利息,1.5\n".encode("gbk")
    )
    with csv_encoding("gbk"):
        t = load(T.INCOME, [p])
    assert list(t["fund"]) == [0, 1] and list(t["item"]) == [0, 1]


def test_reconcile_reads_gbk_income_with_encoding(tmp_path, reference_run):
    run = tmp_path / "run"
    assert invoke("run", "--inputs", sample_dir(), "--policy", "prefecture-employee", "--out", run, "-q").exit_code == 0
    income = tmp_path / "income.csv"
    income.write_bytes("fund,year,month,item,amount\n统筹基金,2024,1,征缴收入,1000.00\n".encode("gbk"))
    base = [
        "reconcile",
        "--settlements",
        run,
        "--providers",
        sample_dir() / "providers.parquet",
        "--members",
        sample_dir() / "members.parquet",
        "--income",
        income,
        "--year",
        2024,
        "-q",
    ]
    r = invoke(*base, "--out", tmp_path / "a")
    assert r.exit_code == 2 and "--encoding gb18030" in r.output
    r = invoke(*base, "--encoding", "gbk", "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output
    funds = pq.read_table(tmp_path / "b" / "funds.parquet").to_pylist()
    assert next(f for f in funds if f["fund"] == "pool")["contributions"] == 1000


@pytest.mark.parametrize("encoding,args", [("gb18030", ["--encoding", "gb18030"]), ("utf-8", [])])
def test_chinese_csv_streamed_in_member_ranges(chinese_inputs, reference_run, tmp_path, encoding, args):
    """The streaming partition pass reads CSV in the command's --encoding too (it read UTF-8 only)."""
    out = tmp_path / "out"
    r = invoke(
        "run",
        "--inputs",
        chinese_inputs / encoding,
        *args,
        "--policy",
        "prefecture-employee",
        "--partitions",
        "3",
        "--out",
        out,
        "-q",
    )
    assert r.exit_code == 0, r.output
    got = pq.read_table(out / "settlements.parquet")
    assert got.sort_by("claim_id").equals(reference_run.sort_by("claim_id"))


def test_gb18030_streamed_without_encoding_names_the_encoding(chinese_inputs, tmp_path):
    """Streaming says what the in-memory reader says about claims text that is not UTF-8."""
    utf8 = chinese_inputs / "utf-8"
    r = invoke(
        "run",
        *("--claims", chinese_inputs / "gb18030" / "claims.csv"),
        *(x for t in ("members", "providers", "catalogue") for x in (f"--{t}", utf8 / f"{t}.csv")),
        *("--policy", "prefecture-employee", "--partitions", "2", "--out", tmp_path / "out", "-q"),
    )
    assert r.exit_code == 2 and "--encoding gb18030" in r.output, r.output
