"""Shared fixtures: the real OSM-derived data in ../shared/data (next to the project root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GEOS2VEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
CITIES = ["nyc", "chicago", "san_jose", "los_angeles"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; tests that need it are skipped where it is absent."""
    if not (SHARED_DATA / "SOURCES.md").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
