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
