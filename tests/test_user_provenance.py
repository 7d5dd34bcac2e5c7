"""A data engineer reviewing licences, provenance and coverage before adopting geos2vec.

Every data file the package ships is named in DATA_NOTICE.md with its source and licence, and the package's
licence expression names every licence there; ``read_osm`` closes its progress bar when interrupted and says
when a file looks filtered to roads (its POIs are then not all the place holds).
"""

from __future__ import annotations

import re
import tomllib
import warnings
from pathlib import Path

import osmium
import pytest

import geos2vec.io.osm
from geos2vec.errors import CoverageWarning
from geos2vec.io import read_osm
from geos2vec.io.osm_profile import LAND_KEYS, is_land_way, looks_filtered

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ what ships, and under which licence
def _shipped_data_files() -> list[str]:
    files = []
    for folder in ("geos2vec/data", "geos2vec/pretrained"):
        for p in sorted((ROOT / folder).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".py", ".pyc"):
                files.append(p.relative_to(ROOT).as_posix())
    return files


def _notice_rows() -> dict[str, str]:
    """``{path: the rest of its table row}`` for the rows of DATA_NOTICE.md that name a file."""
    rows = {}
    for line in (ROOT / "DATA_NOTICE.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `(geos2vec/[^`]+)` \|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_every_shipped_data_file_has_its_source_and_licence_in_the_notice():
    files = _shipped_data_files()
    assert "geos2vec/data/ontology_v1.csv" in files and "geos2vec/pretrained/weights.npz" in files
    rows = _notice_rows()
    assert [f for f in files if f not in rows] == []  # the ontology and every pretrained file were not named
    assert [r for r in rows if r not in files] == []  # no row for a file that is not shipped
    for path, row in rows.items():
        assert re.search(r"ODbL 1\.0|CC0 1\.0|Apache-2\.0", row), path
    # the crosswalk comes from Who's On First (CC0), the sample from OpenStreetMap (ODbL)
    assert "CC0 1.0" in rows["geos2vec/data/crosswalk_simplegeo_v1.csv"]
    for sample in ("los_angeles_pois.parquet", "los_angeles_roads.parquet"):
        assert "ODbL 1.0, © OpenStreetMap contributors" in rows[f"geos2vec/data/sample/{sample}"]
    # the bundled model was trained on Who's On First venues as well as OpenStreetMap (its model card)
    card = (ROOT / "geos2vec/pretrained/MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Who's On First venues** (CC0)" in card and "OpenStreetMap** (© OpenStreetMap contributors" in card
    weights = rows["geos2vec/pretrained/weights.npz"]
    assert "Who's On First" in weights and "OpenStreetMap" in weights and "CC0 1.0" in weights


def test_the_sdists_figures_and_run_records_are_in_the_notice():
    notice = (ROOT / "DATA_NOTICE.md").read_text(encoding="utf-8")
    named = re.findall(r"`(docs/[^`*]+/)`", notice)
    files = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "docs").rglob("*"))
             if p.is_file() and p.suffix != ".md"]
    assert "docs/img/raster_cities.png" in files  # a map of OpenStreetMap counts: a produced work
    assert [f for f in files if not f.startswith(tuple(named))] == []
    assert "docs/img/seams/" in named and "© OpenStreetMap contributors, ODbL 1.0, produced works" in notice


def test_the_sample_readme_describes_the_sample():
    import geopandas as gpd
    import numpy as np
    import shapely

    text = (ROOT / "geos2vec/data/sample/README.md").read_text(encoding="utf-8")
    pois = gpd.read_parquet(ROOT / "geos2vec/data/sample/los_angeles_pois.parquet")
    roads = gpd.read_parquet(ROOT / "geos2vec/data/sample/los_angeles_roads.parquet")
    assert len(pois) == 1731 and list(pois.columns) == ["osm_id", "name", "fclass", "geometry"]
    assert len(roads) == 8205 and list(roads.columns) == ["osm_id", "highway", "geometry"]
    assert tuple(np.round(pois.total_bounds, 3)) == (-118.536, 34.043, -118.183, 34.221)
    assert "bbox −118.536, 34.043, −118.183, 34.221" in text
    x0, y0, x1, y1 = pois.total_bounds
    box = shapely.box(x0 - 0.02, y0 - 0.02, x1 + 0.02, y1 + 0.02)
    lines = np.asarray(roads.geometry.values)
    assert shapely.intersects(box, lines).all()  # every segment reaches the box...
    past = ~shapely.within(lines, box)  # ...but was not cut at its edge ("clipped to" it, the README said)
    assert int(past.sum()) == 6 and round(float(roads.total_bounds[3]), 3) == 34.279
    assert "6 of them run past it, up to 34.279° N" in text


def test_the_licence_expression_names_every_licence_of_the_shipped_data():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    expression = project["license"]
    assert set(expression.split(" AND ")) == {"Apache-2.0", "ODbL-1.0", "CC0-1.0"}  # CC0-1.0 was missing
    assert f"`{expression}`" in (ROOT / "DATA_NOTICE.md").read_text(encoding="utf-8")
    assert project["license-files"] == ["LICENSE", "DATA_NOTICE.md"]
    packaging = pytest.importorskip("packaging.licenses")
    assert packaging.canonicalize_license_expression(expression) == expression


# ------------------------------------------------------------------ read_osm: synthetic files
def _write_pbf(path: Path, *, n_roads: int, n_buildings: int, n_pois: int = 3) -> Path:
    """A small .osm.pbf: ``n_pois`` restaurant nodes, ``n_roads`` residential roads, ``n_buildings`` buildings."""
    nid, wid = 1, 1
    with osmium.SimpleWriter(str(path)) as w:
        for k in range(n_pois):
            w.add_node(osmium.osm.mutable.Node(id=nid, location=(10.0 + k * 1e-3, 50.0),
                                               tags={"amenity": "restaurant"}))
            nid += 1
        first = nid
        for k in range(2 * (n_roads + n_buildings) + 2):
            w.add_node(osmium.osm.mutable.Node(id=nid, location=(10.0 + k * 1e-5, 50.001 + (k % 2) * 1e-5)))
            nid += 1
        for k in range(n_roads):
            w.add_way(osmium.osm.mutable.Way(id=wid, nodes=[first + 2 * k, first + 2 * k + 1],
                                             tags={"highway": "residential"}))
            wid += 1
        for k in range(n_buildings):  # open ways tagged building: ways the profile counts, not areas
            a = first + 2 * (n_roads + k)
            w.add_way(osmium.osm.mutable.Way(id=wid, nodes=[a, a + 1], tags={"building": "yes"}))
            wid += 1
    return path


def test_an_interrupted_read_osm_closes_its_progress_bar(tmp_path, monkeypatch):
    """Checked, not fixed: tqdm's iterator closes the bar when the loop is left by an exception (its generator's
    ``finally``), so a Ctrl-C in read_osm, its traceback kept as a notebook keeps it, leaves no bar behind."""
    from tqdm.auto import tqdm

    pbf = _write_pbf(tmp_path / "interrupted.osm.pbf", n_roads=5, n_buildings=0)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(geos2vec.io.osm, "_classify", interrupted)
    with pytest.raises(KeyboardInterrupt) as caught:  # keeps the frames (and an open bar) alive, as a notebook does
        read_osm(pbf, progress=True)
    assert caught.traceback
    assert [bar.desc for bar in list(tqdm._instances) if bar.desc == "interrupted.osm.pbf"] == []
    monkeypatch.undo()
    osm = read_osm(pbf, progress=True)  # a read to the end closes it too
    assert len(osm.pois) == 3 and len(osm.roads) == 5
    assert [bar.desc for bar in list(tqdm._instances) if bar.desc == "interrupted.osm.pbf"] == []


def test_a_file_filtered_to_roads_warns_that_its_pois_are_incomplete(tmp_path):
    filtered = _write_pbf(tmp_path / "roads_only.osm.pbf", n_roads=1000, n_buildings=20)  # 1.96 % land ways
    with pytest.warns(CoverageWarning, match=r"roads_only\.osm\.pbf looks filtered to roads: 20 of its 1,020 ways "
                                             r"\(1\.96%\).*\(3 read\).*pois=False") as caught:
        osm = read_osm(filtered)
    assert caught[0].filename == __file__  # the user's line
    assert osm.pois.attrs["looks_filtered"] is True
    assert len(osm.pois) == 3 and len(osm.roads) == 1000  # read as before
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)  # roads only asked for: the POIs are missing anyway
        roads_only = read_osm(filtered, pois=False)
        complete = read_osm(_write_pbf(tmp_path / "complete.osm.pbf", n_roads=1000, n_buildings=40))  # 3.85 %
        small = read_osm(_write_pbf(tmp_path / "small.osm.pbf", n_roads=999, n_buildings=0))  # too few to judge
    assert roads_only.pois.attrs["not_read"] is True
    assert complete.pois.attrs["looks_filtered"] is False and small.pois.attrs["looks_filtered"] is False


def test_the_filter_rule_on_the_shared_extracts(shared_data):
    """The shares docs/data.md gives: a road-filtered test file against a complete extract (ways only: fast)."""
    def shares(name):
        n = land = 0
        for way in osmium.FileProcessor(str(shared_data / "osm" / name), osmium.osm.WAY):
            n += 1
            land += is_land_way(way.tags)
        return n, land

    assert LAND_KEYS == ("building", "landuse", "natural", "waterway")
    assert shares("oslo-east-filtered.osm.pbf") == (14893, 1) and looks_filtered(14893, 1)
    assert shares("campo-grande.osm.pbf") == (4590, 270) and not looks_filtered(4590, 270)  # the least mapped


# ------------------------------------------------------------------ provenance: the licences of what the model makes
def test_embeddings_of_the_bundled_model_record_its_training_data_and_their_licences(tmp_path):
    import geopandas as gpd

    import geos2vec
    from geos2vec.provenance import DEFAULT_MODEL_DATA, flat_attrs, provenance, record_from_attrs

    pois = gpd.GeoDataFrame({"fclass": ["restaurant", "cafe", "school"]}, crs=4326,
                            geometry=gpd.points_from_xy([-73.99, -73.98, -73.985], [40.73, 40.735, 40.74]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = geos2vec.count_features(pois)
        out = pois.s2vec.embed(features=table, mode="patch")
    rec = out.attrs["geos2vec"]
    assert rec["model"] == "default"
    assert rec["model_data"] == ("OpenStreetMap POIs and roads (ODbL-1.0, credit: (c) OpenStreetMap contributors); "
                                 "Who's On First venues (CC0-1.0, credit: Data from Who's On First)")
    assert rec["model_data"] == DEFAULT_MODEL_DATA
    out.to_parquet(tmp_path / "emb.parquet")  # it travels with the file
    assert gpd.read_parquet(tmp_path / "emb.parquet").attrs["geos2vec"]["model_data"] == DEFAULT_MODEL_DATA
    # DataArrays (zarr, netCDF) carry it flat; other models and the feature table make no such claim
    assert record_from_attrs(flat_attrs(rec)) == rec and flat_attrs(rec)["geos2vec_model_data"] == DEFAULT_MODEL_DATA
    assert "model_data" not in table.attrs["geos2vec"]
    assert "model_data" not in provenance(stage="embed", model="in-memory")
    assert "model_data" not in provenance(stage="embed", model="/models/mine.zip")


# ------------------------------------------------------------------ venue coverage across the antimeridian
def test_venue_coverage_of_venues_on_both_sides_of_the_antimeridian_is_not_the_globes_width():
    import numpy as np
    import pandas as pd
    import shapely

    from geos2vec.io import venue_coverage

    rng = np.random.default_rng(0)  # Fiji's Taveuni / Vanua Levu: 179.5 E to 179.5 W
    lon = np.concatenate([rng.uniform(179.5, 179.99, 30), rng.uniform(-179.99, -179.5, 30)])
    lat = rng.uniform(-17.5, -16.5, 60)
    venues = pd.DataFrame({"lon": lon, "lat": lat})
    cov = venue_coverage(venues, by=None)
    reference = shapely.convex_hull(shapely.multipoints(np.column_stack([np.where(lon < 0, lon + 360, lon), lat])))
    assert cov.area == pytest.approx(reference.area, rel=1e-12)  # was 336.6 square degrees: 0.87
    assert cov.area < 1.0
    assert shapely.covers(cov, shapely.points(lon, lat)).all()
    assert cov.covers(shapely.Point(179.8, -17.0)) and cov.covers(shapely.Point(-179.8, -17.0))
    assert not cov.covers(shapely.Point(0.0, -17.0)) and not cov.covers(shapely.Point(-100.0, -17.0))
    # a group that does not straddle it keeps its plain hull (unchanged)
    ri = venues.assign(lon=lon - 180 * np.sign(lon))  # the same points around 0 longitude
    assert venue_coverage(ri, by=None).equals(shapely.convex_hull(shapely.multipoints(ri[["lon", "lat"]].to_numpy())))
    spread = pd.DataFrame({"lon": np.repeat([-170.0, 0.0, 170.0], 6) + np.tile(np.linspace(0, 0.1, 6), 3),
                           "lat": np.tile(np.linspace(10, 10.5, 6), 3)})  # around the globe: no way round is narrow
    assert venue_coverage(spread, by=None, min_neighbours=0).equals(
        shapely.convex_hull(shapely.multipoints(spread.to_numpy())))
