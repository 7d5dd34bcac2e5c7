"""The documentation site (mkdocs-material + mkdocstrings, numpy docstrings) builds with --strict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "embedding" / "index.html").read_text()
    assert "embed_cells" in api and "Parameters" in api  # the API reference is generated from the docstrings
    # every page of docs/ is in the site (the nav lists them all)
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")} - {"index"}
    built = {p.parent.name for p in (tmp_path / "site").glob("*/index.html")}
    assert pages <= built, sorted(pages - built)
