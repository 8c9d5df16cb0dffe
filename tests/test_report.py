"""report.html: written by every command that writes an output folder, self-contained,
and rendered by real headless Chromium with no console error (issue 12, contract §5)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser import Browser, require_chromium
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.sample import sample_dir

DATA = sample_dir()
RECONCILE = Path(__file__).resolve().parents[1] / "data" / "reconcile"


def invoke(*args):
    r = CliRunner().invoke(cli.main, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One output folder of each command, on the bundled sample; and the same in Chinese."""
    root = tmp_path_factory.mktemp("reports")
    out = {}
    for lang in ("en", "zh"):
        d = root / lang
        run, cmp, readj, rec = d / "run", d / "compare", d / "readjudicate", d / "reconcile"
        invoke("run", "--inputs", DATA, "--policy", "prefecture-employee", "--out", run, "-q", "--lang", lang)
        invoke(
            "compare",
            "--inputs",
            DATA,
            "--policy",
            "prefecture-employee",
            "--policy",
            "city-employee",
            "--out",
            cmp,
            "-q",
            "--lang",
            lang,
        )
        invoke(
            "readjudicate",
            "--inputs",
            DATA,
            "--previous",
            run,
            "--policy",
            "city-employee",
            "--out",
            readj,
            "-q",
            "--lang",
            lang,
        )
        invoke(
            "reconcile",
            "--settlements",
            run,
            "--providers",
            DATA / "providers.parquet",
            "--members",
            DATA / "members.parquet",
            "--income",
            RECONCILE / "income.csv",
            "--opening",
            RECONCILE / "opening.csv",
            "--out",
            rec,
            "-q",
            "--lang",
            lang,
        )
        invoke("demo", "--out", d / "demo", "-q", "--lang", lang)
        invoke("audit", "--inputs", DATA, "--policy", "prefecture-employee", "--out", d / "audit", "-q", "--lang", lang)
        invoke(
            "run",
            "--inputs",
            DATA,
            "--policy",
            "prefecture-employee",
            "--out",
            d / "run-audit",
            "-q",
            "--audit",
            "--lang",
            lang,
        )
        out[lang] = {
            "run": run,
            "compare": cmp,
            "readjudicate": readj,
            "reconcile": rec,
            "demo": d / "demo",
            "audit": d / "audit",
            "run-audit": d / "run-audit",
        }
    return out


#: What each page must draw: (CSS selector, at least how many).
EXPECTED = {
    "run": [("svg.chart", 4), ("svg.chart rect.bar", 20), ("table", 5)],
    "compare": [("svg.chart", 2), ("svg.chart rect.bar", 8), ("table", 3)],
    "readjudicate": [("svg.chart", 2), ("svg.chart rect.bar", 5), ("table", 2)],
    "reconcile": [
        ("svg.chart", 2),
        ("svg.chart rect.bar", 10),
        ("svg.chart line.mark", 3),
        ("svg.chart polyline.line", 4),
        ("table", 3),
    ],
    "demo": [("a[href]", 4), ("table", 1)],
    "audit": [("svg.chart", 1), ("svg.chart rect.bar", 4), ("table", 3)],
    "run-audit": [("svg.chart", 5), ("svg.chart rect.bar", 24), ("table", 8)],
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_every_output_folder_has_a_self_contained_report(folders, kind):
    html = (folders["en"][kind] / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # nothing fetched: no external script, stylesheet, image, font or link target
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html and "<script" not in html


def test_report_figures_are_the_summary_figures(folders):
    run = folders["en"]["run"]
    s = json.loads((run / "summary.json").read_text())
    html = (run / "report.html").read_text(encoding="utf-8")
    from adjudicate.money import group_digits

    for k in ("total", "fund_pool", "cash_paid", "account_paid"):
        assert f">{group_digits(s['totals'][k])}<" in html
    for reason, n in s["counts"]["rejected_by_reason"].items():
        if n:
            assert f">{reason}<" in html


def test_months_of_the_run_add_up_to_the_totals(folders):
    """The month-by-month table is exact: its column sums are the summary's totals."""
    from decimal import Decimal

    run = folders["en"]["run"]
    s = json.loads((run / "summary.json").read_text())
    html = (run / "report.html").read_text(encoding="utf-8")
    rows = re.findall(r"<tr><td>(\d{4}-\d{2})</td>(.*?)</tr>", html)
    assert rows
    sums = [Decimal(0)] * 5
    for _, cells in rows:
        vals = re.findall(r"<td class=num>([-\d,.]+)</td>", cells)
        sums = [a + Decimal(v.replace(",", "")) for a, v in zip(sums, vals)]
    assert sums == [
        Decimal(s["totals"][k]) for k in ("fund_pool", "fund_supplementary", "subsidy", "account_paid", "cash_paid")
    ]


def test_chinese_report_uses_the_glossary_terms(folders):
    html = (folders["zh"]["run"] / "report.html").read_text(encoding="utf-8")
    assert 'lang="zh-CN"' in html and "统筹基金支付" in html and "个人账户支付" in html and "现金支付" in html
    rec = (folders["zh"]["reconcile"] / "report.html").read_text(encoding="utf-8")
    assert "备付能力" in rec and "累计结余" in rec


def test_reports_render_in_headless_chromium(folders):
    """Each report loads in real Chromium with no console error or fetch, and its charts have their marks."""
    binary = require_chromium()
    with Browser(binary) as b:
        for lang in ("en", "zh"):
            for kind, expected in EXPECTED.items():
                b.events.clear()
                b.load((folders[lang][kind] / "report.html").as_uri())
                assert b.problems() == [], (lang, kind, b.problems())
                for selector, least in expected:
                    n = b.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")
                    assert n >= least, (lang, kind, selector, n)
                # the charts are laid out: every one has a real size on the page
                sizes = b.evaluate(
                    "[...document.querySelectorAll('svg.chart')].map("
                    "s => {const r = s.getBoundingClientRect(); return [r.width, r.height]})"
                )
                assert all(w > 100 and h > 20 for w, h in sizes), (lang, kind, sizes)
                # bars have a drawn size too (the SVG geometry is valid)
                widths = b.evaluate("[...document.querySelectorAll('svg.chart rect.bar')].map(r => r.getBBox().width)")
                assert all(w > 0 for w in widths), (lang, kind)


def test_streaming_run_writes_the_same_report(tmp_path, folders):
    invoke("run", "--inputs", DATA, "--policy", "prefecture-employee", "--out", tmp_path / "s", "-q", "--partitions", 3)
    mem = (folders["en"]["run"] / "report.html").read_text(encoding="utf-8")
    streamed = (tmp_path / "s" / "report.html").read_text(encoding="utf-8")
    strip = lambda h: re.sub(r"<p class=meta>.*?</p>", "", h)  # noqa: E731
    assert strip(streamed) == strip(mem)


def test_the_browser_check_sees_console_errors_and_fetches(tmp_path):
    """The harness is not blind: a console error, an exception and a network fetch are all reported."""
    binary = require_chromium()
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><script>console.error('boom'); null.x;</script>"
        "<img src='http://127.0.0.1:9/x.png'></body></html>",
        encoding="utf-8",
    )
    with Browser(binary) as b:
        b.load(page.as_uri())
        problems = " ".join(b.problems())
    assert "console.error" in problems and "exception" in problems and "127.0.0.1:9" in problems


def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch, tmp_path):
    import browser

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        browser.require_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        browser.require_chromium()


def test_reconcile_warns_without_income_or_opening_and_refuses_an_empty_year(tmp_path, folders):
    run = folders["en"]["run"]
    base = [
        "reconcile",
        "--settlements",
        run,
        "--providers",
        DATA / "providers.parquet",
        "--members",
        DATA / "members.parquet",
    ]
    r = CliRunner().invoke(cli.main, [str(a) for a in base + ["--out", tmp_path / "r", "-q"]])
    assert r.exit_code == 0, r.output
    assert "warning: no --income given" in r.output and "warning: no --opening given" in r.output
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert len(s["warnings"]) == 2
    assert "no --income given" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    r = CliRunner().invoke(cli.main, [str(a) for a in base + ["--year", 2031, "--out", tmp_path / "r2"]])
    assert r.exit_code == 2 and "no claim of benefit year 2031" in r.output and not (tmp_path / "r2").exists()
    # with both tables, no warning
    assert (
        "warning"
        not in invoke(
            *base,
            "--income",
            RECONCILE / "income.csv",
            "--opening",
            RECONCILE / "opening.csv",
            "--out",
            tmp_path / "r3",
            "-q",
        ).output
    )


def test_demo_keeps_the_whole_flow_and_its_links_resolve(folders):
    demo = folders["en"]["demo"]
    for name in ("run/report.html", "compare/report.html", "reconcile/report.html", "run/settlements.parquet"):
        assert (demo / name).is_file(), name
    html = (demo / "report.html").read_text(encoding="utf-8")
    for href in re.findall(r'href="([^"]+)"', html):
        assert (demo / href).is_file(), href
    s = json.loads((demo / "summary.json").read_text())
    explained = demo / f"explain-{s['demo']['explained_claim']}.txt"
    assert explained.read_text(encoding="utf-8").count("kernel agrees") == 1
