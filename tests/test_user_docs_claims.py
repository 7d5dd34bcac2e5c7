"""Concrete claims of the user docs, recomputed independently of geos2vec's own pipeline.

Each test reads a number (or a short statement) from README.md or a docs page and recomputes it with pandas,
shapely, s2sphere, osmium or plain arithmetic from the shared data and the package's data files, so that a
changed data file, ontology or behaviour cannot leave the docs quoting a stale value. Tests that need
``../shared/data`` are skipped where it is absent.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import cells as C

ROOT = Path(__file__).resolve().parents[1]
CITIES = ["nyc", "chicago", "san_jose", "los_angeles"]
EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius


def page(name: str) -> str:
    """A docs page with its line breaks folded into spaces (numbers are often split across lines)."""
    return re.sub(r"\s+", " ", (ROOT / name).read_text())


def number(text: str) -> float:
    return float(text.replace(",", ""))


def ontology_table() -> pd.DataFrame:
    return pd.read_csv(ROOT / "geos2vec" / "data" / "ontology_v1.csv", comment="#")


@pytest.fixture(scope="module")
def city_pois(shared_data):
    gpd = pytest.importorskip("geopandas")
    return pd.concat([gpd.read_parquet(shared_data / "pois" / f"{c}.parquet").assign(city=c) for c in CITIES])


# --- features.md: the ontology and what the shared cities' POIs hit --------------------------------------------


def test_features_share_of_city_pois_in_a_channel(city_pois):
    """'98.7 % of the shared cities' POIs (N of M) fall in a channel; the rest (B blanks and R rare/typo values)'."""
    m = re.search(r"([\d.]+) % of the shared cities' POIs \(([\d,]+) of ([\d,]+)\) fall in a channel; the rest "
                  r"\(([\d,]+) blanks and ([\d,]+) rare/typo values\)", page("docs/features.md"))
    assert m, "the sentence on the share of the cities' POIs in a channel is gone or reworded"
    share, counted, total, blanks, rest = (number(g) for g in m.groups())
    ont = ontology_table()
    poi_values = set(ont.loc[ont["channel"] != "road", "osm_value"])  # bare values: fclass holds tag values only
    fclass = city_pois["fclass"]
    blank = fclass.isna() | (fclass.astype(str).str.strip() == "")
    in_channel = fclass.isin(poi_values) & ~blank
    assert total == len(city_pois)
    assert counted == in_channel.sum()
    assert blanks == blank.sum()
    assert rest == (~in_channel & ~blank).sum()
    assert share == round(100 * in_channel.mean(), 1)


def test_features_counts_of_added_values(city_pois):
    """The per-value POI counts quoted for the values outside Geofabrik's groups, e.g. `bbq` (58)."""
    text = page("docs/features.md")
    para = text[text.index("**Add what the data holds in numbers**"):text.index("**Merge rare")]
    quoted = dict(re.findall(r"`(\w+)` \(([\d,]+)", para))
    assert len(quoted) >= 10, quoted
    counts = city_pois["fclass"].value_counts()
    assert {k: int(number(v)) for k, v in quoted.items()} == {k: int(counts.get(k, 0)) for k in quoted}
    assert f"{len(city_pois):,} POIs of the four cities" in text


def test_features_geofabrik_pairs_and_road_classes(shared_data):
    """'147 tag pairs, 145 distinct values' of the 11 POI groups; the road classes are '23 values'."""
    text = page("docs/features.md")
    m = re.search(r"pofw\): ([\d,]+) tag pairs, ([\d,]+) distinct values", text)
    assert m
    layers = pd.read_csv(shared_data / "ontology" / "geofabrik_layers.csv")
    layers = layers.apply(lambda s: s.str.strip())
    groups = "public education health leisure catering accommodation shopping money tourism miscpoi pofw".split()
    poi = layers[layers["group"].isin(groups)]
    assert number(m.group(1)) == len(poi.drop_duplicates(["osm_key", "osm_value"]))
    assert number(m.group(2)) == poi["osm_value"].nunique()
    roads = ["major_roads", "minor_roads", "highway_links", "very_small_roads", "paths_unsuitable_for_cars",
             "unkown_roads"]
    highway = set(layers.loc[layers["group"].isin(roads) & (layers["osm_key"] == "highway"), "osm_value"])
    n_roads = re.search(r"unknown_roads groups \((\d+) values\)", text)
    assert n_roads and int(n_roads.group(1)) == len(highway)
    ont = ontology_table()
    assert set(ont.loc[ont["channel"] == "road", "osm_value"]) == highway


def test_features_merge_table_matches_the_ontology_file():
    """Every row of the 'Merge rare or near-duplicate tags' table lists exactly the tags of its channel."""
    text = (ROOT / "docs" / "features.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (`[^|]*`) \|$", text, re.M)
    assert len(rows) > 30
    ont = ontology_table()
    tags = (ont["osm_key"] + "=" + ont["osm_value"]).groupby(ont["channel"]).agg(set)
    for channel, listed in rows:
        assert set(re.findall(r"`([^`]+)`", listed)) == tags[channel], channel
    several = set(tags[tags.map(len) > 1].index) - {"road"}
    assert several == {channel for channel, _ in rows}
    n_poi = ont.loc[ont["channel"] != "road", "channel"].nunique()
    assert f"gives {n_poi} POI channels + `road`" in page("docs/features.md")
    assert f"({n_poi} POI categories + `road`)" in page("README.md")


def test_features_pitch_count_in_heidelberg(shared_data):
    """'`leisure=pitch` (the most frequent unmatched tag there: N areas in `heidelberg.test.pbf`)'."""
    osmium = pytest.importorskip("osmium")
    m = re.search(r"leisure=pitch` \(the most frequent unmatched tag there: ([\d,]+) areas in `heidelberg\.test\.pbf`",
                  page("docs/features.md"))
    assert m
    path = str(shared_data / "osm" / "heidelberg.test.pbf")
    n = sum(obj.tags.get("leisure") == "pitch" for obj in osmium.FileProcessor(path).with_areas()
            if obj.is_area())
    assert number(m.group(1)) == n


def test_features_road_covering_pairs_los_angeles(shared_data):
    """'1 of 9,668 in Los Angeles': shapely's (road, cell) pairs against straight-edged S2 cell polygons."""
    gpd = pytest.importorskip("geopandas")
    s2sphere = pytest.importorskip("s2sphere")
    shapely = pytest.importorskip("shapely")
    m = re.search(r"(\d+) of ([\d,]+) in Los Angeles", page("docs/features.md"))
    assert m
    roads = gpd.read_parquet(shared_data / "roads" / "los_angeles.parquet")
    x0, y0, x1, y1 = roads.total_bounds
    rect = s2sphere.LatLngRect.from_point_pair(s2sphere.LatLng.from_degrees(y0 - 0.01, x0 - 0.01),
                                               s2sphere.LatLng.from_degrees(y1 + 0.01, x1 + 0.01))
    coverer = s2sphere.RegionCoverer()
    coverer.min_level = coverer.max_level = 12
    coverer.max_cells = 10**6
    polygons = []
    for cid in coverer.get_covering(rect):
        cell = s2sphere.Cell(cid)
        ll = [s2sphere.LatLng.from_point(cell.get_vertex(k)) for k in range(4)]
        polygons.append(shapely.Polygon([(p.lng().degrees, p.lat().degrees) for p in ll]))
    pairs = shapely.STRtree(polygons).query(roads.geometry.values, predicate="intersects")
    assert number(m.group(2)) == pairs.shape[1]
    # the S2 covering differs by the handful of slivers the page names
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = geos2vec.count_features(roads=roads, road_column=None)
    assert abs(int(table["road"].sum()) - pairs.shape[1]) <= int(m.group(1))


# --- data.md: Who's On First, recomputed with pandas from the venue files and the crosswalk -----------------------


def _crosswalk_channel() -> dict[tuple[str, str], str | None]:
    cw = pd.read_csv(ROOT / "geos2vec" / "data" / "crosswalk_simplegeo_v1.csv", comment="#")
    cw["sg_subcategory"] = cw["sg_subcategory"].fillna("")
    return {(r.sg_category, r.sg_subcategory): (r.channel if isinstance(r.channel, str) else None)
            for r in cw.itertuples()}


def _wof_pipeline(files: list[Path]) -> dict[str, float]:
    """read_wof's documented drop rules, in their documented order, written out with pandas."""
    channel = _crosswalk_channel()
    out = dict.fromkeys(["venues", "stacked", "stack_locations", "not_current", "unknown_after", "uncategorised",
                         "unmapped", "kept", "minus_one", "categorised", "categorised_mapped"], 0)
    kept, channels = [], set()
    for f in files:
        v = pd.read_parquet(f, columns=["wof_id", "lon", "lat", "sg_category", "sg_subcategory", "is_current"])
        out["venues"] += len(v)
        out["minus_one"] += int((v["is_current"] == -1).sum())
        cat = v["sg_category"].astype(object)
        cat = cat.where(cat.notna() & (cat != "None"))
        sub = v["sg_subcategory"].astype(object)
        sub = sub.where(sub.notna() & (sub != "None"), "")
        mapped = pd.Series([channel.get((c, s), channel.get((c, ""))) if isinstance(c, str) else None
                            for c, s in zip(cat, sub)], index=v.index, dtype=object)
        out["categorised"] += int(cat.notna().sum())
        out["categorised_mapped"] += int(mapped.notna().sum())
        valid = np.isfinite(v["lon"]) & np.isfinite(v["lat"]) & (v["lon"].abs() <= 180) & (v["lat"].abs() <= 90)
        valid &= ~((v["lon"] == 0) & (v["lat"] == 0))
        assert valid.all()  # the docs' table says 0 invalid coordinates
        stacked = v.groupby(["lon", "lat"])["wof_id"].transform("size") >= 50
        out["stacked"] += int(stacked.sum())
        out["stack_locations"] += v[stacked].groupby(["lon", "lat"]).ngroups
        keep = ~stacked
        not_current = keep & (v["is_current"] == 0)
        out["not_current"] += int(not_current.sum())
        keep &= ~not_current
        out["unknown_after"] += int((keep & (v["is_current"] == -1)).sum())
        uncategorised = keep & cat.isna()
        out["uncategorised"] += int(uncategorised.sum())
        keep &= ~uncategorised
        unmapped = keep & mapped.isna()
        out["unmapped"] += int(unmapped.sum())
        keep &= ~unmapped
        out["kept"] += int(keep.sum())
        kept.append(v.loc[keep, ["lat", "lon"]])
        channels |= set(mapped[keep])
    ll = pd.concat(kept)
    ids = C.latlng_to_cell(ll["lat"].to_numpy(), ll["lon"].to_numpy(), 12)
    per_cell = pd.Series(ids).value_counts()
    out["cells"], out["cells5"], out["channels"] = len(per_cell), int((per_cell >= 5).sum()), len(channels)
    out["share"] = out["kept"] / (out["kept"] + out["unmapped"])
    return out


def test_data_wof_22_state_numbers(shared_data):
    """The 'What is dropped' table, the returned venues and cells, and the crosswalk's share, for 22 states."""
    files = sorted((shared_data / "wof").glob("us-*.parquet"))
    if len(files) != 22:
        pytest.skip("the 22 Who's On First states are not all present")
    got = _wof_pipeline(files)
    text = page("docs/data.md")

    def cell(reason):
        return re.search(rf"\| `{reason}` \| [^|]* \| ([^|]*) \|", text).group(1).strip()

    assert number(cell("invalid_coordinates")) == 0
    assert cell("stacked") == f"{got['stacked']:,} ({got['stack_locations']:,} locations)"
    assert cell("not_current") == f"{got['not_current']:,}"
    assert cell("status_unknown") == f"({got['unknown_after']:,})"
    assert cell("uncategorised") == f"{got['uncategorised']:,}"
    assert cell("unmapped_category") == f"{got['unmapped']:,}"
    assert (f"Of {got['venues']:,} venues, {got['kept']:,} are returned (in {got['cells']:,} level-12 cells, "
            f"{got['cells5']:,} of them with 5 or more venues") in text
    assert re.search(rf"have a channel: {100 * got['share']:.1f} %", text)
    assert (f"Of the {got['categorised']:,} categorised venues, {got['categorised_mapped']:,} "
            f"({100 * got['categorised_mapped'] / got['categorised']:.1f} %) fall in a class with a channel; "
            f"{got['channels']} of the 115 POI channels receive venues") in text
    assert f"{got['minus_one']:,} have -1" in text
    missing = 115 - got["channels"]
    assert f"So the other {missing} channels are **missing**" in text
    assert f"Polygon {missing + 1}: roads and {missing} categories SimpleGeo lacks" in text


def test_data_wof_rhode_island_example(shared_data):
    """The first block's comments: {'stacked': 1656, 'not_current': 552, ...} and 37.3 % for Rhode Island."""
    got = _wof_pipeline([shared_data / "wof" / "us-ri.parquet"])
    text = page("docs/data.md")
    assert (f"{{'invalid_coordinates': 0, 'stacked': {got['stacked']}, 'not_current': {got['not_current']}, ...}}"
            in text)
    assert f"# {100 * got['share']:.1f}%" in text


def test_data_header_boxes(shared_data):
    """Andorra's header box as printed, Heidelberg's placeholder (0, 0, 180, 90), no box in Columbus."""
    osmium = pytest.importorskip("osmium")
    text = page("docs/data.md")

    def box(name):
        reader = osmium.io.Reader(str(shared_data / "osm" / name), osmium.osm.osm_entity_bits.NOTHING)
        try:
            b = reader.header().box()
        finally:
            reader.close()
        if not b.valid():
            return None
        return (b.bottom_left.lon, b.bottom_left.lat, b.top_right.lon, b.top_right.lat)

    andorra = re.search(r"print\(get_coverage\(ad\)\[0\]\.bounds\) # \(([^)]*)\)", text).group(1)
    assert tuple(float(x) for x in andorra.split(",")) == pytest.approx(box("andorra-latest.osm.pbf"), abs=1e-7)
    assert box("heidelberg.test.pbf") == (0, 0, 180, 90)
    assert "(`heidelberg.test.pbf`: (0, 0, 180, 90), a quarter of the world)" in text
    assert box("columbus.osm.pbf") is None


# --- cells.md, raster.md, README: geometry --------------------------------------------------------------------------


def test_cells_examples_against_s2sphere():
    """The token of the Empire State Building's cell, and 45.01° N 90° W on the top row of face 2."""
    s2sphere = pytest.importorskip("s2sphere")
    text = page("docs/cells.md")
    m = re.search(r"latlng_to_cell\(np\.array\(\[([\d.-]+)\]\), np\.array\(\[([\d.-]+)\]\), 12\).*?"
                  r"cell_to_token\(ids\) # array\(\['(\w+)'\]", text)
    lat, lng, token = float(m.group(1)), float(m.group(2)), m.group(3)
    assert s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(12).to_token() == token
    face, i, j, _ = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(45.01, -90.0)).to_face_ij_orientation()
    assert "45.01°N 90°W: the top row (j = 4095) of face 2" in text
    assert (face, j >> (30 - 12)) == (2, 4095)
    assert s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(44.99, -90.0)).face() == 4


def test_cells_extent_of_the_equatorial_faces():
    """'everything within 35.26° of the equator, and up to 45° at longitudes 0°, ±90° and 180°' (and Seattle)."""
    s2sphere = pytest.importorskip("s2sphere")
    text = page("docs/cells.md")
    assert "everything within 35.26° of the equator, and up to 45° at longitudes 0°, ±90° and 180°" in text

    def face(lat, lng):
        return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).face()

    corner = math.degrees(math.atan(1 / math.sqrt(2)))  # latitude of the cube's corners
    assert round(corner, 2) == 35.26
    rng = np.random.default_rng(0)
    for lat, lng in zip(rng.uniform(-35.25, 35.25, 500), rng.uniform(-180, 180, 500)):
        assert face(lat, lng) in (0, 1, 3, 4)
    assert face(corner + 0.1, 45.0) == 2 and face(-corner - 0.1, -135.0) == 5
    assert {face(44.9, lng) for lng in (0.0, 90.0, 180.0, -90.0)} == {0, 1, 3, 4}
    assert face(47.6, -122.3) == 2 and face(40.5, -122.0) == 2  # Seattle; 40.5° N at 122° W


def test_readme_average_cell_area_and_edge():
    """'every level-12 cell (about 5 km² on average)'; features.md: 'level 12, ~2 km'."""
    area = 4 * math.pi * EARTH_RADIUS_KM**2 / (6 * 4**12)
    m = re.search(r"level-12 cell \(about (\d+) km² on average\)", page("README.md"))
    assert m and int(m.group(1)) == round(area)
    m = re.search(r"\(level 12, ~(\d+) km\)", page("docs/features.md"))
    assert m and int(m.group(1)) == round(math.sqrt(area))


def test_raster_nyc_road_file_edge_and_images(shared_data):
    """'The road file of the shared data stops at longitude −74.125'; NYC's table gives 7 level-8 images."""
    gpd = pytest.importorskip("geopandas")
    s2sphere = pytest.importorskip("s2sphere")
    text = page("docs/raster.md")
    m = re.search(r"stops at longitude −([\d.]+)", text)
    roads = gpd.read_parquet(shared_data / "roads" / "nyc.parquet")
    pois = gpd.read_parquet(shared_data / "pois" / "nyc.parquet")
    assert -number(m.group(1)) == pytest.approx(roads.total_bounds[0], abs=5e-4)
    assert pois.total_bounds[0] < roads.total_bounds[0] - 0.1  # Staten Island's POIs lie west of it
    import shapely

    xy = np.concatenate([shapely.get_coordinates(pois.geometry.values), shapely.get_coordinates(roads.geometry.values)])
    images = set(C.cell_to_parent(C.latlng_to_cell(xy[:, 1], xy[:, 0], 12), 8).tolist())
    for x, y in xy[:: len(xy) // 500]:  # the cells module against S2 itself, on a sample
        assert s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(y, x)).parent(8).id() in images
    n = re.search(r"<xarray\.DataArray 'features' \(image: (\d+), row: 16, col: 16, feature: (\d+)\)>", text)
    assert int(n.group(1)) == len(images)
    assert int(n.group(2)) == ontology_table()["channel"].nunique()


# --- embed.md: the bundled model and the documented signatures ----------------------------------------------------


def test_embed_bundled_model_size_and_shape():
    """'(256, 12, 8, 116)', '(paper-size model, 5.3 M parameters) | ~9 MiB', read from the files themselves."""
    pretrained = ROOT / "geos2vec" / "pretrained"
    text = page("docs/embed.md")
    config = json.loads((pretrained / "config.json").read_text())
    meta = json.loads((pretrained / "metadata.json").read_text())
    expected = (config["embedding_dim"], meta["patch_level"], meta["image_level"], len(meta["channels"]))
    assert f"len(model.channels) # {expected}".replace(" ", "") in text.replace(" ", "")
    weights = np.load(pretrained / "weights.npz")
    n_params = sum(weights[k].size for k in weights.files)
    m = re.search(r"paper-size model, ([\d.]+) M parameters\) \| ~(\d+) MiB", text)
    assert m and float(m.group(1)) == round(n_params / 1e6, 1)
    assert int(m.group(2)) == round((pretrained / "weights.npz").stat().st_size / 2**20)
    floats = {weights[k].dtype for k in weights.files if weights[k].dtype.kind == "f"}
    assert floats == {np.dtype("float16")}  # 'weights.npz, float16'


def _documented_signature(text: str, name: str) -> str:
    m = re.search(rf"{name}\((.*?)\) -> ", text, re.S)
    return re.sub(r"\s+", " ", m.group(1))


@pytest.mark.parametrize("doc, name, func", [
    ("docs/embed.md", "gdf.s2vec.embed", "geos2vec.embedding.embed"),
    ("docs/embed.md", "`embed_cells", "geos2vec.embedding.embed_cells"),
    ("docs/embed.md", "`cell_embeddings", "geos2vec.embedding.cell_embeddings"),
])
def test_embed_documented_defaults(doc, name, func):
    """The signatures written out in the docs name the real keyword arguments and defaults."""
    import importlib

    module, attr = func.rsplit(".", 1)
    sig = inspect.signature(getattr(importlib.import_module(module), attr))
    documented = _documented_signature((ROOT / doc).read_text(), re.escape(name))
    pairs = dict(re.findall(r"(\w+)=('[^']*'|\"[^\"]*\"|[\w.]+)", documented))
    assert pairs
    for key, value in pairs.items():
        assert key in sig.parameters, (name, key)
        assert sig.parameters[key].default == eval(value), (name, key)  # noqa: S307 (literals of our own docs)
    documented_keywords = {k for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
    assert documented_keywords == set(pairs), (name, documented_keywords ^ set(pairs))


def test_raster_documented_defaults():
    """'rasterize(features, *, image_level=8, ...)', 'windows(da, size=16, stride=size // 2, ...)', augment."""
    from geos2vec import raster

    text = page("docs/raster.md")
    sig = inspect.signature(raster.rasterize)
    documented = re.search(r"`rasterize\(features, \*, (.*?)\)`", text).group(1)
    pairs = dict(re.findall(r"(\w+)=([\w.]+)", documented))
    assert {k: sig.parameters[k].default for k in pairs} == {k: eval(v) for k, v in pairs.items()}  # noqa: S307
    assert set(pairs) == set(sig.parameters) - {"features"}
    w = inspect.signature(raster.windows).parameters
    assert "windows(da, size=16, stride=size // 2, min_observed=1, augment=False)" in text
    assert (w["size"].default, w["stride"].default, w["min_observed"].default, w["augment"].default) == (
        16, None, 1, False)
    assert "augment(da, transforms=range(8))" in text
    assert list(inspect.signature(raster.augment).parameters["transforms"].default) == list(range(8))


def test_embed_line_weights_within_documented_bound():
    """Line weights are the shares of length per cell to within the documented 0.02 on a 13 km, six-cell line."""
    gpd = pytest.importorskip("geopandas")
    s2sphere = pytest.importorskip("s2sphere")
    shapely = pytest.importorskip("shapely")
    from geos2vec.embedding import row_cells

    text = page("docs/embed.md")
    m = re.search(r"on a (\d+) km line through (\w+) cells the weights differ from the exact shares by up to "
                  r"([\d.]+)", text)
    assert m
    line = shapely.LineString([(-118.40, 34.10), (-118.30, 34.12), (-118.31, 34.15)])
    _, ids, weights = row_cells(gpd.GeoSeries([line], crs=4326), 12, "auto")
    exact = {}
    rect = s2sphere.LatLngRect.from_point_pair(s2sphere.LatLng.from_degrees(34.08, -118.42),
                                               s2sphere.LatLng.from_degrees(34.17, -118.28))
    coverer = s2sphere.RegionCoverer()
    coverer.min_level = coverer.max_level = 12
    coverer.max_cells = 10**5
    for cid in coverer.get_covering(rect):
        cell = s2sphere.Cell(cid)
        ll = [s2sphere.LatLng.from_point(cell.get_vertex(k)) for k in range(4)]
        piece = shapely.Polygon([(p.lng().degrees, p.lat().degrees) for p in ll]).intersection(line)
        km = 0.0
        for part in getattr(piece, "geoms", [piece]):
            xy = np.asarray(part.coords) if not part.is_empty else np.empty((0, 2))
            d, mid = np.diff(xy, axis=0), (xy[1:, 1] + xy[:-1, 1]) / 2
            km += np.hypot(d[:, 0] * np.cos(np.radians(mid)), d[:, 1]).sum() * math.pi / 180 * EARTH_RADIUS_KM
        if km > 0:
            exact[cid.id()] = km
    total = sum(exact.values())
    assert round(total) == int(m.group(1))
    assert len(exact) == {"five": 5, "six": 6, "seven": 7}[m.group(2)]
    got = dict(zip(ids.tolist(), weights.tolist()))
    assert set(got) == set(exact)
    worst = max(abs(got[c] - exact[c] / total) for c in exact)
    assert worst <= float(m.group(3))
    # half a piece of 1/8 cell edge (the average cell's) at each of a cell's two border crossings, at most
    edge_km = math.sqrt(4 * math.pi * EARTH_RADIUS_KM**2 / (6 * 4**12))
    assert worst * total <= 2 * 1.2 * edge_km / 16


def test_embed_centred_and_blend_window_counts():
    """'4 per image against up to 9 for an isolated image; ... (0.79× for 4 × 4 images, 0.91× for 10 × 10'."""
    from geos2vec.model.context import window_plan

    text = page("docs/embed.md")
    m = re.search(r"(\d) per image against up to (\d) for an isolated image; .*?\(([\d.]+)× for 4 × 4 images, "
                  r"([\d.]+)× for 10 × 10", text)
    assert m
    counts = {}
    for k in (1, 4, 10):
        # every pixel of a k × k block of 16 × 16 images, away from the face's edges
        r, c = (a.ravel() + 1600 for a in np.meshgrid(np.arange(16 * k), np.arange(16 * k), indexing="ij"))
        face = np.zeros_like(r)
        counts[k] = tuple(len(window_plan(face, r, c, 16, ctx)[0]) for ctx in ("centred", "blend"))
        assert counts[k] == ((2 * k) ** 2, (2 * k + 1) ** 2)
    assert counts[1] == (int(m.group(1)), int(m.group(2)))
    assert float(m.group(3)) == round(counts[4][0] / counts[4][1], 2)
    assert float(m.group(4)) == round(counts[10][0] / counts[10][1], 2)
