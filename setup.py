"""Build of fastbp's compiled core: the C kernels in src_c/ wrapped by Cython, one extension.

The Cython templates fastbp/*.tp are first rendered with Tempita (each to its name without
.tp, when missing or older than the template). The C is compiled with -O3 and OpenMP
(-fopenmp); where the compiler has no OpenMP (or FASTBP_NO_OPENMP=1 is set) the build goes on
single-threaded with a warning. BLAS comes from SciPy at run time (scipy.linalg.cython_blas),
so nothing is linked against a BLAS here.
"""
import os
import sys
import tempfile
import warnings
from glob import glob

import numpy as np
from Cython import Tempita
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

C_SOURCES = sorted(glob(os.path.join("src_c", "*.c")))
# What the templates loop over to write each typed declaration and C call once: (C element type,
# suffix of the C functions, the branch of a binding that selects it on its bint `f32`).
DTYPES = [("float", "f32", "if f32"), ("double", "f64", "else")]
OPENMP_TEST = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"


def compiler_has_openmp(compiler) -> bool:
    """True when `compiler` compiles and links a program with -fopenmp."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "omp_test.c")
        with open(source, "w") as f:
            f.write(OPENMP_TEST)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objects, os.path.join(tmp, "omp_test"),
                                     extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class BuildExtWithOpenMP(build_ext):
    """build_ext that adds -fopenmp where the compiler supports it, and warns where not."""

    def build_extensions(self):
        use_openmp = os.environ.get("FASTBP_NO_OPENMP") != "1" and compiler_has_openmp(
            self.compiler)
        if not use_openmp:
            warnings.warn("fastbp: building without OpenMP: kernels will run on one thread",
                          stacklevel=1)
            print("WARNING: fastbp is being built without OpenMP", file=sys.stderr)
        for ext in self.extensions:
            if use_openmp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
            else:
                ext.extra_compile_args.append("-Wno-unknown-pragmas")
        super().build_extensions()


def render_templates() -> None:
    """Render each fastbp/*.tp Tempita template to the file without .tp, where it is older."""
    for template in sorted(glob(os.path.join("fastbp", "*.tp"))):
        target = template[:-len(".tp")]
        if os.path.exists(target) and os.path.getmtime(target) >= os.path.getmtime(template):
            continue
        with open(template) as f:
            text = Tempita.Template(f.read(), name=template).substitute(DTYPES=DTYPES)
        with open(target, "w") as f:
            f.write(f"# Generated from {template} by setup.py: edit the template.\n{text}")


render_templates()
# fastbp._core: the whole C core, its kernels' bindings and the compiled training step.
core = Extension(
    "fastbp._core",
    sources=["fastbp/_core.pyx", *C_SOURCES],
    include_dirs=["src_c", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    extra_compile_args=["-O3", "-std=c11", "-fno-math-errno"],
    extra_link_args=[],
)

setup(
    ext_modules=cythonize([core], language_level=3),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)
