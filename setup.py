"""Build the compiled modules (every src/adjudicate/*.pyx: the kernel _core, the audit pass _audit);
everything else is in pyproject.toml.

The Cython compiler directives are set here, once, for every extension: a
.pyx carries no ``# cython:`` header line. Within these directives a module
needing an exception writes it locally (``with cython.boundscheck(True):``).
"""
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
}

extensions = [
    Extension(
        f"adjudicate.{pyx.stem}",
        [pyx.as_posix()],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )
    for pyx in sorted(Path("src/adjudicate").glob("*.pyx"))
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES))
