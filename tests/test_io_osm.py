"""Readers: read_osm on the real .osm.pbf extracts, read_pois / read_roads."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest
import shapely

from geos2vec.features import count_features
from geos2vec.io import read_osm, read_pois, read_roads
from geos2vec.ontology import load_ontology

osmium = pytest.importorskip("osmium")


def _reference(path):
    """Independent pass with a plain pyosmium handler: POI nodes, POI areas and road ways per the ontology.

    A POI's category is its first tag in the ontology, in the order of the ontology's keys, else the value of
    the first key of POI_KEYS it has (read_osm's documented rule). Areas (closed ways and multipolygon
    relations, assembled by osmium) are keyed by (osm_type, way/relation id, category), with their polygon
    built here from osmium's outer and inner rings.
    """
    onto = load_ontology()
    table = onto.table[onto.table["osm_key"] != "highway"]
    kv = set(zip(table["osm_key"], table["osm_value"]))
    keys = list(dict.fromkeys(table["osm_key"]))
    poi_keys = ("amenity", "shop", "tourism", "leisure", "historic", "office", "craft", "healthcare")

    def category(tags):
        return next((tags[k] for k in keys if (k, tags.get(k)) in kv),
                    next((tags[k] for k in poi_keys if k in tags), None))

    class Handler(osmium.SimpleHandler):
        def __init__(self):
            super().__init__()
            self.nodes, self.ways, self.areas = {}, {}, {}

        def node(self, n):
            fclass = category(dict(n.tags))
            if fclass is not None:
                self.nodes[n.id] = (n.location.lon, n.location.lat, fclass)

        def way(self, w):
            if w.tags.get("highway") in onto.road_values:
                self.ways[w.id] = w.tags["highway"]

        def area(self, a):
            fclass = category(dict(a.tags))
            if fclass is None:
                return
            polys = [shapely.Polygon([(n.lon, n.lat) for n in outer],
                                     [[(n.lon, n.lat) for n in inner] for inner in a.inner_rings(outer)])
                     for outer in a.outer_rings()]
            self.areas["way" if a.from_way() else "relation", a.orig_id(), fclass] = shapely.MultiPolygon(polys)

    handler = Handler()
    handler.apply_file(str(path), locations=True)
    return handler.nodes, handler.ways, handler.areas


def test_read_osm_liechtenstein(shared_data):
    path = shared_data / "osm" / "liechtenstein-latest.osm.pbf"
    data = read_osm(path)
    pois, roads = data
    nodes, ways, area_polys = _reference(path)
    got_nodes = pois[pois["osm_type"] == "node"]
    assert set(got_nodes["osm_id"]) == set(nodes) and got_nodes["osm_id"].is_unique
    ref = np.array([nodes[i][:2] for i in got_nodes["osm_id"]])
    assert np.allclose(ref, np.c_[got_nodes.geometry.x, got_nodes.geometry.y], rtol=0, atol=1e-7)
    assert got_nodes["fclass"].tolist() == [nodes[i][2] for i in got_nodes["osm_id"]]
    assert dict(zip(roads["osm_id"], roads["highway"])) == ways
    assert pois.crs.to_epsg() == 4326 and roads.crs.to_epsg() == 4326
    assert (shapely.get_type_id(pois.geometry.values) == 0).all()
    assert (shapely.get_type_id(roads.geometry.values) == 1).all()
    areas = pois[pois["osm_type"] != "node"]
    assert len(areas) > 100  # tagged areas (parking lots, schools, ...) at a point on their surface
    keys = list(zip(areas["osm_type"], areas["osm_id"], areas["fclass"]))
    assert len(set(keys)) == len(keys) and set(keys) == set(area_polys)
    assert {t for t, _, _ in keys} == {"way", "relation"}
    polys = np.array([area_polys[k] for k in keys], dtype=object)
    assert shapely.within(np.asarray(areas.geometry.values), polys).all()
    assert {"osm_key", "fclass", "name"} <= set(pois.columns)
    # straight into the features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = count_features(pois, roads)
    rep = table.attrs["report"]
    assert rep["n_pois_counted"] + sum(rep["dropped_categories"].values()) == len(pois)
    assert table["road"].sum() >= len(roads) and rep["dropped_roads"] == {}


def test_read_osm_unsorted_file_warns(shared_data):
    with pytest.warns(UserWarning, match="not sorted"):
        pois, roads = read_osm(shared_data / "osm" / "columbus.osm.pbf")
    assert (pois["osm_type"] == "node").all() and len(roads) > 10_000


def test_read_osm_layers_and_errors(shared_data, tmp_path):
    # andorra has highway values outside the ontology (harrisburg has none, so it could not tell)
    path = shared_data / "osm" / "andorra-latest.osm.pbf"
    onto = load_ontology()
    only_roads = read_osm(path, pois=False)
    assert len(only_roads.pois) == 0 and len(only_roads.roads) > 0
    assert only_roads.roads["highway"].isin(onto.road_values).all()
    every = read_osm(path, pois=False, all_highways=True)
    assert len(every.roads) > len(only_roads.roads)
    others = every.roads.loc[~every.roads["highway"].isin(onto.road_values), "highway"]
    # reference: every highway way of the file, counted with plain pyosmium
    ref = Counter(w.tags["highway"] for w in osmium.FileProcessor(str(path), osmium.osm.WAY)
                  .with_filter(osmium.filter.KeyFilter("highway")) if w.tags["highway"] not in onto.road_values)
    assert set(others) == {"raceway", "rest_area", "via_ferrata"} == set(ref)
    assert Counter(others) == ref and len(every.roads) == len(only_roads.roads) + sum(ref.values())
    assert set(only_roads.roads["osm_id"]) < set(every.roads["osm_id"])
    with pytest.raises(FileNotFoundError, match="no OSM file at"):
        read_osm(tmp_path / "missing.osm.pbf")
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"not an osm file at all")
    with pytest.raises(ValueError, match="could not read"):
        read_osm(bad)


def test_read_pois_roads_parquet(shared_data):
    pois = read_pois(shared_data / "pois" / "chicago.parquet")
    roads = read_roads(shared_data / "roads" / "chicago.parquet")
    assert "fclass" in pois.columns and len(roads) == 61_677
    with pytest.raises(ValueError, match="no 'kind' column"):
        read_pois(pois, category_column="kind")
    with pytest.raises(ValueError, match="LineStrings"):
        read_roads(pois)
    with pytest.raises(ValueError, match="no CRS"):
        read_roads(roads.set_crs(None, allow_override=True))
    with pytest.raises(TypeError, match="pois must be a path or a GeoDataFrame, got int"):
        read_pois(42)


def _blob_ends(data: bytes) -> list[int]:
    """Byte offsets where each PBF blob ends (4-byte length, BlobHeader with datasize in field 3, blob)."""
    ends, i = [], 0

    def varint(buf, j):
        v = shift = 0
        while True:
            b = buf[j]
            j += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v, j

    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        hdr, j, size = data[i + 4:i + 4 + n], 0, 0
        while j < len(hdr):
            field, wire = hdr[j] >> 3, hdr[j] & 7
            j += 1
            value, j = varint(hdr, j)
            if wire == 2:
                j += value
            elif field == 3:
                size = value
        i += 4 + n + size
        ends.append(i)
    return ends


def test_read_osm_warns_on_a_file_cut_at_a_blob_boundary(shared_data, tmp_path):
    data = (shared_data / "osm" / "andorra-latest.osm.pbf").read_bytes()
    ends = _blob_ends(data)
    assert ends[-1] == len(data)
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(data[:ends[2]])  # the header and two blocks of nodes: a valid file, silently partial
    with pytest.warns(UserWarning, match="looks cut short"):
        pois, roads = read_osm(cut)
    assert len(roads) == 0 and len(pois) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the whole file reads without that warning
        read_osm(shared_data / "osm" / "andorra-latest.osm.pbf")


def test_read_osm_layer_not_read_is_missing_not_zero(shared_data):
    """A layer read_osm was told to skip is marked, and count_features records its channels missing, not 0."""
    from geos2vec.coverage import covered_mask, pbf_bounds

    path = shared_data / "osm" / "campo-grande.osm.pbf"
    no_roads = read_osm(path, roads=False)
    assert len(no_roads.roads) == 0 and no_roads.roads.attrs["not_read"] is True
    assert "not_read" not in no_roads.pois.attrs and len(no_roads.pois) > 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = count_features(no_roads.pois, no_roads.roads, coverage=path)
        reference = count_features(no_roads.pois, None, coverage=path)  # roads not given at all
    assert table.attrs["coverage"] == reference.attrs["coverage"]
    assert table.attrs["coverage"]["channels"] == {"road": "POLYGON EMPTY"}
    covered, available = covered_mask(table.index.to_numpy(), table)
    road = list(table.columns).index("road")
    assert covered.all() and not available[:, road].any() and available[:, :road].all()

    no_pois = read_osm(path, pois=False)
    assert len(no_pois.pois) == 0 and no_pois.pois.attrs["not_read"] is True
    assert "not_read" not in no_pois.roads.attrs and len(no_pois.roads) > 1000
    table = count_features(no_pois.pois, no_pois.roads, coverage=path)
    onto = load_ontology()
    assert sorted(table.attrs["coverage"]["channels"]) == sorted(onto.channels)  # all 115 POI channels
    assert shapely.from_wkt(table.attrs["coverage"]["geometry"]).equals(shapely.box(*pbf_bounds(path)))
    # an area clip keeps the mark
    clipped = read_osm(path, roads=False, area=shapely.box(*pbf_bounds(path)).buffer(-0.01))
    assert clipped.roads.attrs["not_read"] is True
    # the dask path records the same (its roads frame partitioned, the mark on its meta)
    dgpd = pytest.importorskip("dask_geopandas")
    from geos2vec.partitioned import count_features_dask

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lazy = count_features_dask(dgpd.from_geopandas(no_roads.pois, npartitions=3),
                                   dgpd.from_geopandas(no_roads.roads, npartitions=1), coverage=path)
    assert lazy.attrs["coverage"] == reference.attrs["coverage"]


_UNSORTED = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <node id="10" lat="47.10" lon="9.50"><tag k="amenity" v="restaurant"/></node>
  <node id="1" lat="47.20" lon="9.60"><tag k="amenity" v="cafe"/></node>
  <node id="2" lat="47.30" lon="9.70"/>
  <node id="3" lat="47.31" lon="9.71"/>
  <node id="4" lat="47.31" lon="9.70"/>
  <node id="11" lat="47.11" lon="9.49"/>
  <way id="7"><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="2"/><tag k="amenity" v="school"/></way>
  <way id="5"><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>
  <way id="6"><nd ref="10"/><nd ref="11"/><tag k="highway" v="footway"/></way>
  <node id="20" lat="47.40" lon="9.80"><tag k="amenity" v="bank"/></node>
</osm>
"""


def test_read_osm_unsorted_file_keeps_the_area(tmp_path):
    """The fallback for a file not sorted by id (no area POIs) still clips to ``area``."""
    path = tmp_path / "unsorted.osm"
    path.write_text(_UNSORTED)
    with pytest.warns(UserWarning, match="not sorted"):
        full = read_osm(path)
    assert sorted(full.pois["osm_id"]) == [1, 10, 20] and sorted(full.roads["osm_id"]) == [5, 6]
    box = (9.45, 47.05, 9.55, 47.15)  # holds node 10 and the whole footway 6 only
    with pytest.warns(UserWarning, match="not sorted"):
        pois, roads = read_osm(path, area=box)
    assert pois[["osm_id", "fclass"]].values.tolist() == [[10, "restaurant"]]
    assert roads["osm_id"].tolist() == [6]
    assert shapely.get_coordinates(roads.geometry.values).tolist() == [[9.5, 47.1], [9.49, 47.11]]
