"""Shared fixtures: the real OSM-derived data in ../shared/data (next to the project root); loading scripts."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

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


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """HOME in a temporary folder and the working directory in another (a user's notebook): what a path
    starting with ``~`` must reach, and no "./~" folder left in the working directory after the test."""
    h, work = tmp_path / "home", tmp_path / "work"
    h.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.chdir(work)
    assert os.path.expanduser("~") == str(h)
    yield h
    assert not (work / "~").exists()  # nothing written into a "./~" folder


@pytest.fixture(autouse=True)
def _restore_options():
    """Every test starts from the options the one before it found (a docs block's global
    ``set_options(progress=False)`` leaked into later tests that read the option)."""
    from geos2vec.options import OPTIONS

    saved = dict(OPTIONS)
    yield
    OPTIONS.clear()
    OPTIONS.update(saved)


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (the scripts are not a package), run once per call."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def copy(tmp_path):
    """A copy of the bundled (compact) model, to damage."""
    import shutil

    from geos2vec.model.io import default_model_path

    target = tmp_path / "m"
    shutil.copytree(default_model_path(), target)
    return target


def edit_json(path, **changes) -> None:
    """Set keys of the JSON object in ``path`` (a value of None removes the key)."""
    import json

    d = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    path.write_text(json.dumps(d, indent=1))


def la_downtown(shared_data: Path):
    """POIs and roads of the Los Angeles sample near downtown (-118.30..-118.22 E, 34.03..34.08 N), and their table."""
    import warnings

    import geopandas as gpd
    import shapely

    import geos2vec

    box = shapely.box(-118.30, 34.03, -118.22, 34.08)
    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")
    roads = gpd.read_parquet(shared_data / "roads" / "los_angeles.parquet")
    pois, roads = pois[pois.intersects(box)], roads[roads.intersects(box)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return pois, roads, geos2vec.count_features(pois, roads)
