"""Build hook: compile the numba kernels into the built package (see ``geos2vec/_precompile.py``).

All metadata is in ``pyproject.toml``. A regular (non-editable) build runs ``geos2vec._precompile`` on the
built copy of the package, so numba's cache ships in the wheel, keyed to this CPU and numba version; numba
ignores it anywhere else. ``GEOS2VEC_PRECOMPILE=0`` turns it off; a failure only prints a warning (the
kernels then compile at their first call, as without it).
"""

import os
import subprocess
import sys
import time

from setuptools import setup
from setuptools.command.build_py import build_py


def _stub_code(pkg):
    """``geos2vec._precompile._STUB_CODE``, read from the built copy (setup.py cannot import the package)."""
    import ast

    with open(os.path.join(pkg, "_precompile.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_STUB_CODE":
            return ast.literal_eval(node.value)
    raise RuntimeError("geos2vec/_precompile.py has no _STUB_CODE")


class BuildPyWithKernels(build_py):
    """``build_py`` that also compiles the numba kernels into the built package's ``__pycache__``."""

    def run(self):
        """Build as usual, then precompile into the built copy (not for editable installs)."""
        super().run()
        if getattr(self, "editable_mode", False) or os.environ.get("GEOS2VEC_PRECOMPILE", "1") == "0":
            return  # an editable install compiles in the source tree at first use
        pkg = os.path.abspath(os.path.join(self.build_lib, "geos2vec"))
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}  # the cache goes into the package
        t0 = time.perf_counter()
        try:
            res = subprocess.run([sys.executable, "-c", _stub_code(pkg), pkg, "--quiet"], env=env,
                                 capture_output=True, text=True, timeout=900)
        except (OSError, RuntimeError, SyntaxError, subprocess.SubprocessError) as exc:
            print(f"geos2vec: kernels not precompiled ({exc}); they compile at first use", file=sys.stderr)
            return
        if res.returncode != 0:
            tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
            print("geos2vec: kernels not precompiled; they compile at first use:\n  " + "\n  ".join(tail),
                  file=sys.stderr)
            return
        print(f"geos2vec: numba kernels precompiled in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


setup(cmdclass={"build_py": BuildPyWithKernels})
