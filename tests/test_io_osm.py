"""Readers: read_osm on the real .osm.pbf extracts, read_pois / read_roads."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely

from geos2vec.features import count_features
from geos2vec.io import read_osm, read_pois, read_roads
from geos2vec.ontology import load_ontology

osmium = pytest.importorskip("osmium")


def _reference(path):
    """Independent pass with plain pyosmium: POI nodes and road ways per the ontology."""
    onto = load_ontology()
    kv = {(k, v) for k, v in zip(onto.table["osm_key"], onto.table["osm_value"]) if k != "highway"}
    poi_keys = ("amenity", "shop", "tourism", "leisure", "historic", "office", "craft", "healthcare")
    nodes, ways = {}, {}
    for obj in osmium.FileProcessor(str(path)).with_locations():
        tags = dict(obj.tags)
        if obj.is_node() and (any((k, v) in kv for k, v in tags.items()) or any(k in tags for k in poi_keys)):
            nodes[obj.id] = (obj.location.lon, obj.location.lat)
        elif obj.is_way() and tags.get("highway") in onto.road_values:
            ways[obj.id] = tags["highway"]
    return nodes, ways


def test_read_osm_liechtenstein(shared_data):
    path = shared_data / "osm" / "liechtenstein-latest.osm.pbf"
    data = read_osm(path)
    pois, roads = data
    nodes, ways = _reference(path)
    got_nodes = pois[pois["osm_type"] == "node"]
    assert set(got_nodes["osm_id"]) == set(nodes)
    first = got_nodes.iloc[0]
    assert np.allclose(nodes[first["osm_id"]], (first.geometry.x, first.geometry.y), atol=1e-7)
    assert dict(zip(roads["osm_id"], roads["highway"])) == ways
    assert pois.crs.to_epsg() == 4326 and roads.crs.to_epsg() == 4326
    assert (shapely.get_type_id(pois.geometry.values) == 0).all()
    assert (shapely.get_type_id(roads.geometry.values) == 1).all()
    areas = pois[pois["osm_type"] != "node"]
    assert len(areas) > 100  # tagged areas (parking lots, schools, ...) at a point on their surface
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
    path = shared_data / "osm" / "harrisburg.osm.pbf"
    only_roads = read_osm(path, pois=False)
    assert len(only_roads.pois) == 0 and len(only_roads.roads) > 0
    every = read_osm(path, pois=False, all_highways=True)
    assert len(every.roads) >= len(only_roads.roads)
    with pytest.raises(FileNotFoundError):
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
    with pytest.raises(TypeError):
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
