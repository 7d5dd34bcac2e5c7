"""ruff (pyflakes, pycodestyle, pydocstyle with numpy rules; configured in pyproject.toml) is clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    pytest.importorskip("ruff")
    exe = shutil.which("ruff") or sys.executable
    cmd = [exe, "check", "--no-cache", str(ROOT)] if exe != sys.executable else \
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_modules_stay_small():
    """Modules named for what they do, none over 500 lines (split by concern past that)."""
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
             for p in (ROOT / "geos2vec").rglob("*.py")}
    big = {k: v for k, v in sizes.items() if v > 500}
    assert not big, big


def test_public_modules_declare_all():
    """Every public module (not ``_private``, not a CLI entry module) says what it exports."""
    missing = []
    for p in (ROOT / "geos2vec").rglob("*.py"):
        rel = p.relative_to(ROOT)
        if any(part.startswith("_") and part != "__init__.py" for part in rel.parts) or "cli" in p.stem:
            continue
        if "\n__all__ = [" not in "\n" + p.read_text():
            missing.append(rel.as_posix())
    assert not missing, missing
