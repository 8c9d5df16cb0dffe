"""Start-up: the command line imports only what the command it runs uses.

``adjudicate --version`` and ``--help`` must not load numpy, pyarrow, rich or
any library module that does (their import is most of a small run's wall
time); each command's module is imported when that command runs. Checked in
a fresh interpreter, by what lands in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from adjudicate import cli

#: Never loaded for --version / --help: the heavy dependencies and the library modules built on them.
HEAVY = (
    "numpy",
    "pyarrow",
    "rich",
    "adjudicate.inputs",
    "adjudicate.engine",
    "adjudicate.outputs",
    "adjudicate.policy",
    "adjudicate.money",
    "adjudicate.report",
    "adjudicate.compare",
    "adjudicate.audit",
    "adjudicate.export",
    "adjudicate.spark",
    "adjudicate._core",
)


def _modules_after(*args: str) -> tuple[int, set[str]]:
    code = (
        "import json, sys\n"
        "from adjudicate.cli import main\n"
        "try:\n"
        f"    main({list(args)!r}, standalone_mode=False)\n"
        "finally:\n"
        "    sys.stderr.write('\\nMODULES' + json.dumps(sorted(sys.modules)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return r.returncode, set(json.loads(r.stderr.rsplit("MODULES", 1)[1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize(
    "args", [("--version",), ("--help",), ("run", "--help"), ("compare", "--help"), ("policies", "--help")]
)
def test_version_and_help_import_no_heavy_module(args):
    status, modules = _modules_after(*args)
    assert status == 0
    assert _heavy(modules) == [], args


def test_version_imports_no_command_module():
    _, modules = _modules_after("--version")
    assert not [m for m in modules if m.startswith("adjudicate.cli.") and m != "adjudicate.cli.common"]


def test_a_command_imports_its_own_module_only():
    _, modules = _modules_after("generate", "--help")
    commands = {m for m in modules if m.startswith("adjudicate.cli.")} - {"adjudicate.cli.common"}
    assert commands == {"adjudicate.cli.generate"}


def test_lazy_table_names_every_command_as_it_names_itself():
    # the table's key is what a user types; it must be the command's own name
    names = list(cli.main.commands)
    assert sorted(names) == cli.main.list_commands(None)
    for name in names:
        assert cli.main.commands[name].name == name


def test_an_unknown_command_is_a_usage_error():
    r = CliRunner().invoke(cli.main, ["nosuch"])
    assert r.exit_code == 2 and "No such command" in r.output


def test_a_refused_out_is_still_exit_2_without_traceback(tmp_path):
    # outdir raises InputError (imported lazily); errors() must still know it for a user error
    (tmp_path / "mine.txt").write_text("not adjudicate's")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "adjudicate.cli",
            "generate",
            "--members",
            "5",
            "--year",
            "2024",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.startswith("error:")


def test_a_command_runs_without_importing_pandas(tmp_path):
    # pyarrow would import pandas (when installed) only to ask whether its arguments are pandas objects
    pytest.importorskip("pandas")
    gen, out = tmp_path / "gen", tmp_path / "out"
    status, modules = _modules_after("generate", "--members", "5", "--year", "2024", "--out", str(gen), "-q")
    assert status == 0 and "pyarrow" in modules and "pandas" not in modules
    status, modules = _modules_after(
        "run", "--inputs", str(gen), "--policy", "prefecture-employee", "--out", str(out), "-q"
    )
    assert status == 0 and (out / "settlements.parquet").exists()
    assert "pyarrow.dataset" in modules or "pyarrow.parquet" in modules
    assert "pandas" not in modules


def test_pandas_is_importable_again_after_a_command():
    # only the command's own run goes without pandas: a caller in the same process can import it after
    from adjudicate.lazy_pandas import pandas_unused

    code = (
        "import sys\n"
        "from adjudicate.lazy_pandas import pandas_unused\n"
        "with pandas_unused() as blocked:\n"
        "    import pyarrow as pa\n"
        "    pa.array([1, 2]); pa.table({'x': [1]})\n"
        "    try:\n"
        "        import pandas\n"
        "        print('imported inside')\n"
        "    except ImportError:\n"
        "        print('refused inside')\n"
        "import pandas\n"
        "print(blocked, 'pandas' in sys.modules, pa.table({'x': [1]}).to_pandas().shape)\n"
    )
    pytest.importorskip("pandas")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["refused inside", "True True (1, 1)"], r.stdout
    with pandas_unused() as blocked:  # this test process has pandas already: nothing is blocked
        assert blocked is False
