"""Build hook: compile the numba kernels into the built package (see ``geos2vec/_precompile.py``).

All metadata is in ``pyproject.toml``. A regular (non-editable) build runs ``geos2vec._precompile`` on the
built copy of the package, so numba's cache ships in the wheel, keyed to this CPU and numba version; numba
ignores it anywhere else. ``GEOS2VEC_PRECOMPILE=0`` turns it off; a failure only prints a warning (the
kernels then compile at their first call, as without it).

The package's earlier built copy (``build/lib/geos2vec`` of an earlier build in this tree) is removed first:
setuptools copies into it without deleting, so a module removed since, or numba cache files of an earlier
build (even with ``GEOS2VEC_PRECOMPILE=0``), would otherwise ship in the wheel.

The long description (PyPI's project page) is README.md with its relative links made absolute (``REPO``):
on PyPI a link such as ``docs/embed.md`` leads nowhere.
"""

import os
import re
import shutil
import subprocess
import sys
import time

import setuptools
from setuptools import setup
from setuptools.command.build_py import build_py

#: pyproject.toml's ``license`` is an SPDX expression (PEP 639), which setuptools reads from 77.0 on; older ones
#: (a build with ``--no-build-isolation`` in an environment that has one) stop with pages of JSON schema
#: ("`project.license` must be valid exactly by one definition") that do not name the cause. (Only when run by a
#: build: tests read this file under another name, with whatever setuptools the test environment has.)
if __name__ == "__main__" and int(re.match(r"\d+", setuptools.__version__).group()) < 77:
    sys.exit(f"geos2vec: building needs setuptools>=77 (pyproject.toml's [build-system] requires), this environment "
             f"has {setuptools.__version__}: pip install -U 'setuptools>=77', or build without --no-build-isolation")


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
        pkg = os.path.abspath(os.path.join(self.build_lib, "geos2vec"))
        editable = getattr(self, "editable_mode", False)
        if not editable:  # a fresh copy: leftovers of an earlier build in this tree would ship in the wheel
            shutil.rmtree(pkg, ignore_errors=True)
        super().run()
        if editable or os.environ.get("GEOS2VEC_PRECOMPILE", "1") == "0":
            return  # an editable install compiles in the source tree at first use
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


#: the repository (``[project.urls]`` Source in pyproject.toml, ``repo_url`` in mkdocs.yml)
REPO = "https://github.com/geos2vec/geos2vec"
_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_INLINE = re.compile(r"(!?)(\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?)([^)\s>]+)")
_REFERENCE = re.compile(r"^( {0,3}\[[^\]]+\]:\s*<?)(\S+?)(>?(?:\s|$))", re.M)


def _absolute(target, image=False):
    """A Markdown link target, made absolute: relative paths point at the repository's files on GitHub."""
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:|#|//", target):  # a URL, an e-mail address, an anchor on the page
        return target
    return f"{REPO}/{'raw' if image else 'blob'}/main/{target.removeprefix('./')}"


def long_description(text):
    """README.md for PyPI: relative links (and images) outside code blocks point at the repository."""

    def prose(part):
        part = _INLINE.sub(lambda m: m.group(1) + m.group(2) + _absolute(m.group(3), image=bool(m.group(1))), part)
        return _REFERENCE.sub(lambda m: m.group(1) + _absolute(m.group(2)) + m.group(3), part)

    out, pos = [], 0
    for fence in _FENCE.finditer(text):
        out += [prose(text[pos:fence.start()]), fence.group(0)]
        pos = fence.end()
    return "".join(out + [prose(text[pos:])])


with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md"), encoding="utf-8") as _f:
    _README = _f.read()

setup(cmdclass={"build_py": BuildPyWithKernels}, long_description=long_description(_README),
      long_description_content_type="text/markdown")
