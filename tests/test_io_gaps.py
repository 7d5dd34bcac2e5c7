"""Readers' paths no other test ran: read_osm's progress bar, one-node ways, broken areas and area cuts;
read_pois / read_roads from files; read_wof's optional columns, casts, empty files and many categories; the
crosswalk from a CSV file and its refusals. References: pyosmium, shapely, pandas and hand-checked cases."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec.errors import InvalidInputError, InvalidTypeError
from geos2vec.io import read_osm, read_pois, read_roads, read_wof
from geos2vec.io.crosswalk import load_crosswalk
from geos2vec.ontology import load_ontology

osmium = pytest.importorskip("osmium")

# Hand-checked: node 8 is the only POI node; way 10 is a road of one node (no line); way 11 an open road;
# way 13 a closed school; ways 14 and 11 are not closed, so relations 20 and 21 are broken multipolygons that
# osmium's assembler still hands over as areas (their geometry cannot be built).
_SMALL = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <node id="1" lat="47.00" lon="9.00"/>
  <node id="2" lat="47.00" lon="9.10"/>
  <node id="3" lat="47.10" lon="9.10"/>
  <node id="4" lat="47.10" lon="9.00"/>
  <node id="5" lat="47.20" lon="9.20"/>
  <node id="6" lat="47.30" lon="9.30"/>
  <node id="7" lat="47.20" lon="9.30"/>
  <node id="8" lat="47.25" lon="9.25"><tag k="amenity" v="cafe"/></node>
  <way id="10"><nd ref="5"/><tag k="highway" v="residential"/></way>
  <way id="11"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>
  <way id="13"><nd ref="5"/><nd ref="6"/><nd ref="7"/><nd ref="5"/><tag k="amenity" v="school"/></way>
  <way id="14"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/></way>
  <relation id="20"><member type="way" ref="14" role="outer"/><tag k="type" v="multipolygon"/>
    <tag k="leisure" v="park"/></relation>
  <relation id="21"><member type="way" ref="11" role="outer"/><tag k="type" v="multipolygon"/>
    <tag k="leisure" v="pitch"/></relation>
</osm>
"""

# A box (9.1, 47.1, 9.2, 47.2): road 30 ends on its corner (touches it only), road 31 crosses it and touches
# its opposite corner on the way out, road 32 lies outside; POI 40 sits on its edge, POI 41 outside.
_CUT = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <node id="1" lat="47.05" lon="9.05"/>
  <node id="2" lat="47.10" lon="9.10"/>
  <node id="3" lat="47.05" lon="9.15"/>
  <node id="4" lat="47.15" lon="9.15"/>
  <node id="5" lat="47.15" lon="9.25"/>
  <node id="6" lat="47.20" lon="9.20"/>
  <node id="7" lat="47.25" lon="9.25"/>
  <node id="8" lat="47.30" lon="9.30"/>
  <node id="9" lat="47.35" lon="9.35"/>
  <node id="40" lat="47.15" lon="9.20"><tag k="amenity" v="cafe"/></node>
  <node id="41" lat="47.25" lon="9.15"><tag k="amenity" v="bank"/></node>
  <way id="30"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>
  <way id="31"><nd ref="3"/><nd ref="4"/><nd ref="5"/><nd ref="6"/><nd ref="7"/>
    <tag k="highway" v="residential"/></way>
  <way id="32"><nd ref="8"/><nd ref="9"/><tag k="highway" v="residential"/></way>
</osm>
"""
_BOX = (9.1, 47.1, 9.2, 47.2)


@pytest.fixture
def small_osm(tmp_path):
    path = tmp_path / "small.osm"
    path.write_text(_SMALL)
    return path


def test_read_osm_drops_one_node_ways_and_areas_osmium_cannot_build(small_osm):
    # reference: what plain pyosmium hands over, and which of its areas WKBFactory can build
    wkb = osmium.geom.WKBFactory()
    built, broken = set(), set()
    for obj in osmium.FileProcessor(str(small_osm)).with_locations().with_areas():
        if obj.is_area():
            try:
                wkb.create_multipolygon(obj)
                built.add(obj.orig_id())
            except RuntimeError:
                broken.add(obj.orig_id())
    assert built == {13} and broken == {20, 21}  # the broken areas do reach read_osm
    pois, roads = read_osm(small_osm)
    assert pois[["osm_type", "osm_id", "fclass"]].values.tolist() == [["node", 8, "cafe"], ["way", 13, "school"]]
    assert shapely.contains(shapely.Polygon([(9.2, 47.2), (9.3, 47.3), (9.3, 47.2)]), pois.geometry.iloc[1])
    assert roads["osm_id"].tolist() == [11]  # way 10 has a single node: no line
    assert shapely.get_coordinates(roads.geometry.values).tolist() == [[9.0, 47.0], [9.1, 47.0], [9.1, 47.1]]
    # what could not become a feature is counted, not dropped without a word
    assert pois.attrs["skipped"] == {"broken_areas": len(broken)}
    assert roads.attrs["skipped"] == {"roads_missing_nodes": 0, "roads_one_node": 1}


def test_read_osm_progress_bar_counts_every_object_and_changes_nothing(small_osm, capsys):
    quiet = read_osm(small_osm)
    capsys.readouterr()
    shown = read_osm(small_osm, progress=True)
    err = capsys.readouterr().err
    # reference: the objects pyosmium hands over (nodes, ways, relations and the assembled areas)
    n = sum(1 for _ in osmium.FileProcessor(str(small_osm)).with_locations().with_areas())
    assert n > 15 and f"{n} objects" in err and "small.osm" in err
    pd.testing.assert_frame_equal(shown.pois, quiet.pois)
    pd.testing.assert_frame_equal(shown.roads, quiet.roads)


def test_read_osm_area_cut_keeps_only_line_parts_of_roads_that_touch_it(tmp_path):
    path = tmp_path / "cut.osm"
    path.write_text(_CUT)
    pois, roads = read_osm(path, area=_BOX)
    assert pois["osm_id"].tolist() == [40]  # on the edge: kept (boundary included); 41 outside
    # road 30 only touches the corner (a point): dropped; road 31's cut is a line and a point: the line kept
    assert roads["osm_id"].tolist() == [31]
    want = shapely.MultiLineString([[(9.15, 47.1), (9.15, 47.15), (9.2, 47.15)]])
    got = roads.geometry.iloc[0]
    assert got.geom_type == "MultiLineString" and got.equals(want)
    assert got.length == pytest.approx(0.1, abs=1e-12)


def test_read_osm_refuses_an_area_it_would_silently_match_nothing_with(small_osm, tmp_path):
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(b"not an osm file")
    # metres taken for degrees kept nothing, silently; checked before the file is read (junk is not read)
    with pytest.raises(InvalidInputError, match=r"area bounds .* not longitude/latitude degrees"):
        read_osm(junk, area=shapely.box(1.0e6, 5.9e6, 1.02e6, 5.95e6))
    with pytest.raises(InvalidInputError, match="area must be polygonal.*LineString"):
        read_osm(small_osm, area=shapely.LineString([(9.0, 47.0), (9.1, 47.0)]))
    with pytest.raises(InvalidInputError, match="area box"):
        read_osm(small_osm, area=("a", "b", "c", "d"))
    # a GeoSeries carries its CRS: the same result as the box in degrees
    projected = gpd.GeoSeries([shapely.box(9.15, 47.15, 9.35, 47.35)], crs=4326).to_crs(3857)
    by_crs = read_osm(small_osm, area=projected)
    by_box = read_osm(small_osm, area=(9.15, 47.15, 9.35, 47.35))
    assert by_crs.pois["osm_id"].tolist() == by_box.pois["osm_id"].tolist() == [8, 13]


@pytest.fixture
def poi_frame():
    rng = np.random.default_rng(3)
    return gpd.GeoDataFrame({"fclass": rng.choice(["cafe", "bank", "pub"], 12), "name": [f"p{i}" for i in range(12)]},
                            geometry=gpd.points_from_xy(rng.uniform(-88, -87.5, 12), rng.uniform(41.7, 42.1, 12)),
                            crs=4326)


def test_read_pois_and_roads_from_files(tmp_path, poi_frame):
    with pytest.raises(FileNotFoundError, match="no pois file at"):
        read_pois(tmp_path / "missing.geojson")
    with pytest.raises(FileNotFoundError, match="no roads file at"):
        read_roads(tmp_path / "missing.parquet")
    # a GeoJSON file goes through geopandas.read_file (reference: the frame written)
    poi_frame.to_file(tmp_path / "pois.geojson")
    got = read_pois(tmp_path / "pois.geojson")
    assert got["fclass"].tolist() == poi_frame["fclass"].tolist()
    assert shapely.equals_exact(got.geometry.values, poi_frame.geometry.values, tolerance=1e-12).all()
    assert read_pois(tmp_path / "pois.geojson", columns=["fclass"]).columns.tolist() == ["fclass", "geometry"]
    lines = gpd.GeoDataFrame({"highway": ["primary", "service"]},
                             geometry=[shapely.LineString([(0, 0), (1, 1)]), shapely.LineString([(1, 0), (2, 2)])],
                             crs=4326)
    lines.to_file(tmp_path / "roads.geojson")
    roads = read_roads(tmp_path / "roads.geojson")
    assert roads["highway"].tolist() == ["primary", "service"]
    assert shapely.equals(roads.geometry.values, lines.geometry.values).all()


def test_read_pois_parquet_options_and_unreadable_files(tmp_path, poi_frame):
    path = tmp_path / "pois.parquet"
    poi_frame.to_parquet(path)
    # columns= without the geometry column: read_file adds it, read_parquet raised geopandas' own error
    got = read_pois(path, columns=["fclass"])
    assert got.columns.tolist() == ["fclass", "geometry"] and got["fclass"].tolist() == poi_frame["fclass"].tolist()
    assert shapely.equals(got.geometry.values, poi_frame.geometry.values).all()
    # an upper-case suffix is Parquet too (it went to GDAL: "libduckdb.so: cannot open shared object file")
    upper = tmp_path / "POIS.PARQUET"
    poi_frame.to_parquet(upper)
    pd.testing.assert_frame_equal(pd.DataFrame(read_pois(upper)), pd.DataFrame(poi_frame))
    junk = tmp_path / "junk.geojson"
    junk.write_text("not geojson")
    with pytest.raises(InvalidInputError, match=r"could not read .*junk\.geojson.* of pois"):
        read_pois(junk)
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InvalidInputError, match=r"could not read .*bad\.parquet.* as a GeoParquet file of roads"):
        read_roads(bad)
    with pytest.raises(InvalidTypeError, match="pois must be a path or a GeoDataFrame, got DataFrame"):
        read_pois(pd.DataFrame(poi_frame))
    with pytest.raises(InvalidInputError, match="pois have no 'kind' column"):
        read_pois(poi_frame, category_column="kind")


# --------------------------------------------------------------------------- Who's On First
def _venue_file(path, **columns):
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({"wof_id": np.arange(1, n + 1, dtype=np.int64), **columns})
    frame.to_parquet(path)
    return frame


def _read_wof(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_wof(*args, **kwargs)


def test_read_wof_without_the_optional_columns(tmp_path):
    # no name, sg_type or is_current: names "", type missing, status unknown (kept); hand-checked channels
    path = tmp_path / "us-zz.parquet"
    _venue_file(path, lon=[-71.4, -71.41, -71.42, -71.43], lat=[41.8, 41.81, 41.82, 41.83],
                sg_category=["Restaurant", "Coffee & Tea", "Professional", "Restaurant"],
                sg_subcategory=[None, None, "Lawyer & Legal Services", None])
    out = _read_wof(path)
    assert out["wof_id"].tolist() == [1, 2, 4] and out["fclass"].tolist() == ["restaurant", "cafe", "restaurant"]
    assert out["name"].tolist() == ["", "", ""] and out["sg_type"].isna().all()
    rep = out.attrs["wof_report"]
    assert rep["n_read"] == 4 and rep["dropped"]["unmapped_category"] == 1 and rep["dropped"]["not_current"] == 0
    assert out["state"].tolist() == ["zz"] * 3


def test_read_wof_refuses_unreadable_columns_missing_ids_and_empty_state_lists(tmp_path):
    path = tmp_path / "us-zz.parquet"
    _venue_file(path, lon=["-71.4", "west"], lat=[41.8, 41.81], sg_category=["Restaurant"] * 2,
                sg_subcategory=[None, None])
    with pytest.raises(InvalidInputError, match=r"column 'lon' of type .* cannot be read as double"):
        read_wof(path)
    ids = tmp_path / "us-yy.parquet"
    pd.DataFrame({"wof_id": pd.array([7, None], dtype="Int64"), "lon": [-71.4, -71.41], "lat": [41.8, 41.81],
                  "sg_category": ["Restaurant"] * 2, "sg_subcategory": [None, None]}).to_parquet(ids)
    with pytest.raises(InvalidInputError, match="column 'wof_id' has 1 missing value"):  # was read as id 0
        read_wof(ids)
    with pytest.raises(InvalidTypeError, match=r"states must be a state code or a list of them .* got 5"):
        read_wof(tmp_path, states=5)
    with pytest.raises(InvalidInputError, match="states is empty"):  # returned an empty frame, silently
        read_wof(tmp_path, states=[])


def test_read_wof_of_a_file_without_rows(tmp_path):
    path = tmp_path / "us-zz.parquet"
    _venue_file(path, lon=np.zeros(0), lat=np.zeros(0), sg_category=np.array([], dtype=object),
                sg_subcategory=np.array([], dtype=object))
    out = read_wof(path)  # nothing dropped: no warning
    assert len(out) == 0 and out.crs.to_epsg() == 4326
    assert {"wof_id", "name", "state", "osm_key", "fclass"} <= set(out.columns)
    rep = out.attrs["wof_report"]
    assert (rep["n_read"], rep["n_returned"], rep["per_state"]) == (0, 0, {"zz": [0, 0]})
    assert np.isnan(rep["share_mapped"])


def test_read_wof_with_more_category_pairs_than_the_dense_count(tmp_path):
    # > 2**22 (category, subcategory) pairs: the sparse np.unique path; reference: pandas value_counts
    n = 2100
    cats = [f"Cat{i}" for i in range(n)] + [f"Cat{k}" for k in range(20) for _ in range(k + 1)]
    subs = [f"Sub{i}" for i in range(n)] + [f"Sub{k}" for k in range(20) for _ in range(k + 1)]
    cats += ["Restaurant"] * 3 + ["Coffee & Tea"] * 2
    subs += [None] * 5
    m = len(cats)
    assert len(set(cats)) * (len(set(subs)) + 1) > 1 << 22
    rng = np.random.default_rng(0)
    path = tmp_path / "us-zz.parquet"
    frame = _venue_file(path, lon=rng.uniform(-71.5, -71.1, m), lat=rng.uniform(41.5, 42.0, m),
                        sg_type=["Services"] * m, sg_category=cats, sg_subcategory=subs)
    out = _read_wof(path)
    mapped = frame["sg_category"].isin(["Restaurant", "Coffee & Tea"])
    assert out["wof_id"].tolist() == frame.loc[mapped, "wof_id"].tolist()
    assert out["fclass"].tolist() == ["restaurant"] * 3 + ["cafe"] * 2
    rep = out.attrs["wof_report"]
    assert rep["dropped"]["unmapped_category"] == int((~mapped).sum())
    ref = frame[~mapped].groupby(["sg_category", "sg_subcategory"]).size().sort_values(ascending=False)
    ref = {f"Services / {c} / {s}": int(v) for (c, s), v in ref.iloc[:20].items()}
    assert rep["top_unmapped"] == ref and list(rep["top_unmapped"].values()) == list(range(21, 1, -1))


# --------------------------------------------------------------------------- crosswalk
def test_crosswalk_from_a_csv_file_equals_the_same_table(tmp_path):
    table = pd.DataFrame({"sg_category": ["Restaurant", "Coffee & Tea", "Professional"],
                          "sg_subcategory": ["", "", "Lawyer & Legal Services"],
                          "channel": ["restaurant", "cafe", ""], "osm_tag": ["", "amenity=cafe", ""]})
    path = tmp_path / "cw.csv"
    path.write_text("# a comment line\n" + table.to_csv(index=False))
    from_file = load_crosswalk(path)
    from_frame = load_crosswalk(table)
    assert from_file.attrs["name"] == str(path) and from_frame.attrs["name"] == "custom"
    pd.testing.assert_frame_equal(from_file, from_frame)
    # reference: the ontology's own tag of each channel
    onto = load_ontology()
    rows = onto.table[onto.table["channel"] == "restaurant"].iloc[0]
    assert from_file[["osm_key", "osm_value"]].values.tolist() == [
        [rows["osm_key"], rows["osm_value"]], ["amenity", "cafe"], ["", ""]]


def test_crosswalk_refusals_name_the_row_and_the_fix():
    base = {"sg_subcategory": ["", ""], "channel": ["restaurant", "cafe"]}
    with pytest.raises(InvalidInputError, match=r"rows without sg_category at rows \[1\]$"):  # not [np.int64(1)]
        load_crosswalk(pd.DataFrame({"sg_category": ["Restaurant", " "], **base}))
    with pytest.raises(InvalidInputError, match="osm_tag 'cafe' is not 'key=value'"):
        load_crosswalk(pd.DataFrame({"sg_category": ["Restaurant", "Coffee"], "osm_tag": ["", "cafe"], **base}))
    # an ontology whose channels have no key: a crosswalk row must say its tag
    keyless = load_ontology(["restaurant", "cafe"])
    with pytest.raises(InvalidInputError, match="channel 'restaurant' has no key=value tag in the ontology; give "
                                                "osm_tag"):
        load_crosswalk(pd.DataFrame({"sg_category": ["Restaurant", "Coffee"], **base}), ontology=keyless)
    with pytest.raises(InvalidTypeError, match="crosswalk must be 'default', a CSV path or a DataFrame, got int"):
        load_crosswalk(3)


def test_read_osm_counts_roads_whose_nodes_the_file_lacks(tmp_path):
    """An extract cut at its boundary holds ways whose nodes lie outside it: skipped, and counted."""
    path = tmp_path / "cut.osm"
    path.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <node id="1" lat="47.00" lon="9.00"/>
  <node id="2" lat="47.00" lon="9.10"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>
  <way id="11"><nd ref="1"/><nd ref="99"/><tag k="highway" v="primary"/></way>
</osm>
""")
    pois, roads = read_osm(path)
    assert roads["osm_id"].tolist() == [10]
    assert roads.attrs["skipped"] == {"roads_missing_nodes": 1, "roads_one_node": 0}
    assert len(pois) == 0 and pois.attrs["skipped"] == {"broken_areas": 0}
