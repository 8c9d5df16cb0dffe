"""Build the compiled kernels (src/adjudicate/_core.pyx, _audit.pyx); everything else is in pyproject.toml."""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "adjudicate._core",
        ["src/adjudicate/_core.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    ),
    # the audit pass (adjudicate.audit): its own module, beside the settlement kernel
    Extension(
        "adjudicate._audit",
        ["src/adjudicate/_audit.pyx"],
        extra_compile_args=["-O3"],
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )
)
