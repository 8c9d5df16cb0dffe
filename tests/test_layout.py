"""One definition of the kernel's tables (_core.pxd) and one numbering of the settlement steps."""

import re
from pathlib import Path

import numpy as np

from adjudicate import _core, engine, layout, policy, reference

SRC = Path(policy.__file__).parent
ROOT = Path(__file__).resolve().parent.parent  # the checkout (the package may be installed elsewhere)


def test_block_fields_come_from_the_pxd():
    pxd = (SRC / "_core.pxd").read_text(encoding="utf-8")
    declared = re.findall(r"^\s+F_(\w+) = (\d+)", pxd, re.M)
    assert policy.FIELDS == tuple(name.lower() for name, _ in declared)
    assert [int(v) for _, v in declared] == list(range(len(declared)))
    assert [f.name for f in layout.BlockField] == [name for name, _ in declared]


def test_compiled_block_row_by_name():
    pol = policy.load("shenzhen-comprehensive")
    c = policy.compile_policy(pol)
    F = layout.BlockField
    for i, b in enumerate(pol.blocks):
        row = c.B[i]
        assert row[F.NBANDS] == len(b.bands)
        assert row[F.ACCOUNT] == layout.AccountMode[b.account.upper()]
        assert row[F.INPATIENT] == b.inpatient
        assert row[F.CAP] == (list(pol.limits).index(b.cap) if b.cap else -1)
        assert row[F.TIER_RATE] == b.tier_bp


def test_claim_sum_and_output_columns_are_named_once():
    assert [c.name for c in layout.ClaimSum] == [
        "TOTAL",
        "SELF_PAY",
        "FIRST_SELF_PAY",
        "ELIGIBLE_A",
        "ELIGIBLE_B",
        "ELIGIBLE_SPECIAL",
        "ELIGIBLE_SUPPLEMENTARY",
    ]
    assert len(layout.ClaimSum) - layout.ClaimSum.ELIGIBLE_A == len(policy.FUND_CLASSES)
    assert (engine.TOTAL, engine.SELF_PAY, engine.FIRST_SELF_PAY, engine.ELIG_A) == (0, 1, 2, 3)
    assert [c.name for c in layout.Settled] == [
        "DEDUCTIBLE",
        "FUND_POOL",
        "FUND_SUPPLEMENTARY",
        "SUBSIDY",
        "ACCOUNT_PAID",
        "ADMISSION_ORDINAL",
    ]
    assert engine.POOL == _core.OUT_FUND_POOL and engine.ORDINAL == _core.OUT_ADMISSION_ORDINAL


def test_split_lines_writes_the_named_columns():
    # one line of class B, 100.00 yuan at ratio 10 %: self_pay 0, first_self_pay 10.00, eligible B 90.00
    sums = np.zeros((1, len(layout.ClaimSum)), np.int64)
    one = np.ones(1, np.int64)
    _core.split_lines(
        np.zeros(1, np.int64),
        np.array([10000], np.int64),
        one,
        np.array([1], np.int8),
        np.array([1000], np.int16),  # the item's ratio in bp: int16 since the per-line arrays were narrowed
        np.array([-1], np.int64),
        np.ones(1, np.uint8),
        np.zeros(6, np.int64),
        True,
        10**8,
        np.empty(1, np.int64),
        np.empty(1, np.int64),
        np.empty(1, np.int64),
        sums,
        0,
        1,
    )
    S = layout.ClaimSum
    assert sums[0, S.TOTAL] == 10000 and sums[0, S.SELF_PAY] == 0 and sums[0, S.FIRST_SELF_PAY] == 1000
    assert sums[0, S.ELIGIBLE_B] == 9000 and sums[0, S.ELIGIBLE_A] == 0


def test_steps_numbered_alike_in_kernel_reference_and_guide():
    names = [f.__name__ for f in reference.STEPS]
    assert names == [f"step{i}_{n.split('_', 1)[1]}" for i, n in enumerate(names, 1)]
    kernel = (SRC / "_core.pyx").read_text(encoding="utf-8")
    helpers = re.findall(r"^cdef inline void (step\d+_\w+)\(", kernel, re.M)
    assert helpers == names
    calls = re.findall(r"^\s+(step\d+_\w+)\(&w", kernel, re.M)
    assert calls == names  # settle_claims calls every step, in order
    guide = (SRC / "policies" / "README.md").read_text(encoding="utf-8")
    section = guide.split("## How a claim is settled", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^(\d+)\. ", section, re.M) == [str(i) for i in range(1, len(names) + 1)]
    for i, f in enumerate(reference.STEPS, 1):
        assert f.__doc__.startswith(f"{i}. ")


def test_cython_directives_in_one_place():
    for pyx in SRC.glob("*.pyx"):
        assert not re.search(r"^#\s*cython:", pyx.read_text(encoding="utf-8"), re.M), pyx.name
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert "compiler_directives=DIRECTIVES" in setup and 'glob("*.pyx")' in setup


def test_static_declarations_match_the_compiled_module():
    """The type checker's view of the kernel (_core.pyi, layout.py's TYPE_CHECKING enums) names
    exactly what _core compiles, so a constant added to _core.pxd must be added there too."""
    import ast

    compiled = {n for n in dir(_core) if re.match(r"(F|ACCOUNT|SUM|OUT|FLAG)_|FSP_BIT$", n)}
    stub = (SRC / "_core.pyi").read_text(encoding="utf-8")
    assert set(re.findall(r"^(\w+): int$", stub, re.M)) == compiled
    functions = {n for n in dir(_core) if callable(getattr(_core, n)) and not n.startswith("_")}
    functions -= {n for n in functions if isinstance(getattr(_core, n), type)}
    assert set(re.findall(r"^def (\w+)\(", stub, re.M)) == functions
    tree = ast.parse((SRC / "layout.py").read_text(encoding="utf-8"))
    static = {
        node.name: [t.id for item in node.body if isinstance(item, ast.Assign) for t in item.targets]
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    for enum in (layout.BlockField, layout.AccountMode, layout.ClaimSum, layout.Settled):
        assert static[enum.__name__] == [m.name for m in enum], enum.__name__


def test_partition_stub_names_what_the_router_compiles():
    from adjudicate import _partition

    stub = (SRC / "_partition.pyi").read_text(encoding="utf-8")
    # every public name of the compiled class: methods, properties (`def` in the stub) and attributes
    public = {n for n in dir(_partition.Router) if not n.startswith("_")}
    assert set(re.findall(r"^    (?:def )?(\w+)[(:]", stub, re.M)) - {"__init__"} == public
    constants = {n for n in dir(_partition) if n.isupper()}
    assert set(re.findall(r"^(\w+): int$", stub, re.M)) == constants
