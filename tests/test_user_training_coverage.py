"""``scripts/prepare_training_data.py``: an ``.osm.pbf`` extract filtered to roads is counted from its roads only.

Its POIs are not all the place holds (``read_osm`` sets ``pois.attrs["looks_filtered"]``), so in the training
data its POI channels must be *missing* there (unknown, no loss), not zero; its roads stay observed. A complete
extract keeps every channel observed.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec.evaluate.tasks
from conftest import ROOT, load_script
from geos2vec import cell_to_latlng, latlng_to_cell
from geos2vec.coverage import get_coverage
from geos2vec.errors import CoverageWarning
from geos2vec.io import read_osm

FILTERED, COMPLETE = "oslo-east-filtered", "campo-grande"  # the smallest filtered / complete extracts


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The script's ``sources()`` on a data folder of one small state and the two extracts (no city files)."""
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "SOURCES.md").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    data = tmp_path_factory.mktemp("data")
    (data / "wof").mkdir()
    (data / "osm").mkdir()
    (data / "wof" / "us-ak.parquet").symlink_to(SHARED_DATA / "wof" / "us-ak.parquet")
    for name in (FILTERED, COMPLETE):
        (data / "osm" / f"{name}.osm.pbf").symlink_to(SHARED_DATA / "osm" / f"{name}.osm.pbf")
    script = load_script("prepare_training_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(geos2vec.evaluate.tasks, "CITY_BOXES", {})  # the four city files are not needed here
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            srcs = script.sources(data)
    return script, data, srcs, printed.getvalue()


def _ontology_channels():
    """The default ontology's channels, read from its CSV (not through geos2vec)."""
    table = pd.read_csv(ROOT / "geos2vec" / "data" / "ontology_v1.csv", comment="#")
    poi = list(dict.fromkeys(c for c in table["channel"] if c != "road"))
    return poi, poi + ["road"]


def test_the_extracts_are_what_the_test_assumes(run):
    _, data, _, _ = run
    with pytest.warns(CoverageWarning, match="looks filtered to roads"):
        assert read_osm(data / "osm" / f"{FILTERED}.osm.pbf", roads=False).pois.attrs["looks_filtered"] is True
    assert read_osm(data / "osm" / f"{COMPLETE}.osm.pbf", roads=False).pois.attrs["looks_filtered"] is False


def test_a_filtered_extracts_poi_channels_are_missing_and_its_roads_observed(run):
    _, _, srcs, printed = run
    poi, _ = _ontology_channels()
    assert len(poi) == 115
    table, box = srcs[f"pbf:{FILTERED}"]
    geom, lacking = get_coverage(table)
    assert set(lacking) == set(poi)  # every POI channel lacking, the road channel not
    assert all(g.is_empty for g in lacking.values())
    assert geom.equals(box)
    assert table["road"].sum() > 0
    assert table.reindex(columns=poi, fill_value=0).to_numpy().sum() == 0  # no POI counted as observed
    line = next(s for s in printed.splitlines() if s.startswith("roads only"))
    assert FILTERED in line and COMPLETE not in line


def test_a_complete_extract_keeps_its_poi_channels(run):
    _, _, srcs, _ = run
    poi, _ = _ontology_channels()
    table, _ = srcs[f"pbf:{COMPLETE}"]
    assert get_coverage(table)[1] == {}
    assert table.reindex(columns=poi, fill_value=0).to_numpy().sum() > 0
    assert table["road"].sum() > 0


def test_training_pixels_of_the_filtered_extract_carry_no_poi_channels(run):
    script, _, srcs, _ = run
    poi, channels = _ontology_channels()
    groups = script.channel_groups(srcs, channels)
    by_channel = {c: lacking for lacking, chans in groups for c in chans}
    assert set(by_channel) == set(channels)  # Alaska lacks road and some POI channels; the filtered file the rest
    assert by_channel["road"] == ("wof:ak",)
    for c in poi:
        assert f"pbf:{FILTERED}" in by_channel[c] and f"pbf:{COMPLETE}" not in by_channel[c]
    # one pixel at the centre of each extract's box (the boxes are far from Alaska and from each other)
    centres = [srcs[f"pbf:{n}"][1].centroid for n in (FILTERED, COMPLETE)]
    cells = latlng_to_cell(np.array([p.y for p in centres]), np.array([p.x for p in centres]), 12).reshape(1, 2)
    lat, lng = cell_to_latlng(cells.ravel())
    for (_, box), x, y in zip((srcs[f"pbf:{FILTERED}"], srcs[f"pbf:{COMPLETE}"]), lng, lat):
        assert shapely.contains_xy(box, x, y)
    covered, avail = script.pixel_masks(cells, srcs, groups)
    assert covered.tolist() == [[True, True]]
    for g, (_, chans) in enumerate(groups):
        has_road = "road" in chans
        assert avail[g, 0].tolist() == [has_road, True], chans[:3]  # filtered: roads only; complete: everything
