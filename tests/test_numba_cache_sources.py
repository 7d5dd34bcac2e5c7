"""A cached kernel that compiles in _s2's helpers is compiled again when _s2.py changes (an upgrade, a checkout).

numba keys a cached kernel on its own source file only; ``_numba_cache.key_on_sources`` adds _s2.py's digest.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import geos2vec

CALL = "from geos2vec import _cover, _s2; print(_cover._uv_to_cell_ij(0.3, 0), _s2.st_to_ij(_s2.uv_to_st(0.3)))"


def _run(root: Path, cache: Path) -> tuple[int, int]:
    env = {**os.environ, "PYTHONPATH": str(root), "NUMBA_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", CALL], capture_output=True, text=True, timeout=300, env=env,
                         cwd=root, check=True).stdout.split()
    return int(out[-2]), int(out[-1])


def test_a_changed_helper_module_is_not_served_from_the_cache(tmp_path):
    pkg = tmp_path / "src" / "geos2vec"
    shutil.copytree(Path(geos2vec.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__", "pretrained"))
    cache = tmp_path / "cache"
    kernel, helper = _run(pkg.parent, cache)
    assert kernel == helper  # the first run compiles and caches the kernel
    s2 = pkg / "_s2.py"
    text = s2.read_text()
    assert "    v = math.floor(MAX_SIZE * s)\n" in text
    s2.write_text(text.replace("    v = math.floor(MAX_SIZE * s)\n", "    v = math.floor(MAX_SIZE * s) + 7.0\n"))
    kernel2, helper2 = _run(pkg.parent, cache)
    assert helper2 == helper + 7
    assert kernel2 == helper2  # not the cached kernel with the old helper
