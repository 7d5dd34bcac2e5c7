"""An international user's checks: OpenStreetMap extracts of Europe and South America through read_osm ->
count_features -> coverage. References: pyosmium's own handlers, s2sphere cells and hand-checked files."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec
from geos2vec.io import read_osm

osmium = pytest.importorskip("osmium")
s2sphere = pytest.importorskip("s2sphere")


def _cell(lon, lat, level=12):
    return np.uint64(s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lon)).parent(level).id())


# Campo Grande (south of the equator, west of Greenwich), cut like `osmium extract --strategy simple`: way 10
# runs through nodes 1, 2, (99: outside the extract), 3, 4; way 11 through 5, 6, (98); way 12 through 7, (97),
# 8 has no two known nodes in a row.
_CUT = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <node id="1" lat="-20.500" lon="-54.600"/>
  <node id="2" lat="-20.500" lon="-54.599"/>
  <node id="3" lat="-20.450" lon="-54.550"/>
  <node id="4" lat="-20.450" lon="-54.549"/>
  <node id="5" lat="-20.420" lon="-54.520"/>
  <node id="6" lat="-20.420" lon="-54.519"/>
  <node id="7" lat="-20.480" lon="-54.580"/>
  <node id="8" lat="-20.470" lon="-54.570"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="99"/><nd ref="3"/><nd ref="4"/>
    <tag k="highway" v="primary"/><tag k="name" v="Avenida Afonso Pena"/></way>
  <way id="11"><nd ref="5"/><nd ref="6"/><nd ref="98"/><tag k="highway" v="residential"/></way>
  <way id="12"><nd ref="7"/><nd ref="97"/><nd ref="8"/><tag k="highway" v="residential"/></way>
</osm>
"""


def test_read_osm_keeps_the_parts_of_roads_cut_by_the_extract_boundary(tmp_path):
    path = tmp_path / "cut.osm"
    path.write_text(_CUT, encoding="utf-8")
    _, roads = read_osm(path)
    # ways 10 and 11 keep what the file holds; way 12 has no part of 2 nodes
    assert roads["osm_id"].tolist() == [10, 11]
    assert roads["name"].tolist() == ["Avenida Afonso Pena", ""]
    assert roads.attrs["skipped"] == {"roads_missing_nodes": 1, "roads_one_node": 0}
    assert roads.attrs["cut"] == 2
    avenida, street = roads.geometry
    assert avenida.geom_type == "MultiLineString"  # not joined across the node outside the extract
    assert [list(g.coords) for g in avenida.geoms] == [[(-54.6, -20.5), (-54.599, -20.5)],
                                                      [(-54.55, -20.45), (-54.549, -20.45)]]
    assert list(street.coords) == [(-54.52, -20.42), (-54.519, -20.42)]
    # every part counts in its level-12 cell, and nothing between the parts
    parts = {"a": (-54.6, -20.5, -54.599, -20.5), "b": (-54.55, -20.45, -54.549, -20.45),
             "c": (-54.52, -20.42, -54.519, -20.42)}
    cells = {k: _cell(x0, y0) for k, (x0, y0, _, _) in parts.items()}
    assert all(_cell(x1, y1) == cells[k] for k, (_, _, x1, y1) in parts.items())  # each part in one cell
    assert len(set(cells.values())) == 3
    table = geos2vec.count_features(roads=roads)
    expected = pd.Series(1, index=pd.Index(sorted(cells.values()), dtype=np.uint64, name="cell_id"), name="road")
    pd.testing.assert_series_equal(table["road"], expected)
    assert _cell(-54.575, -20.475) not in table.index


@pytest.fixture(scope="module")
def campo_grande(shared_data):
    return shared_data / "osm" / "campo-grande.osm.pbf"


def test_campo_grande_roads_at_the_box_edge_count_in_the_covered_cells(campo_grande):
    # reference: pyosmium's own pass over the file; a highway way is either read (whole or in parts) or skipped
    ways, cut = 0, 0
    for obj in osmium.FileProcessor(str(campo_grande), osmium.osm.NODE | osmium.osm.WAY).with_locations():
        if obj.is_way() and "highway" in obj.tags:
            ways += 1
            cut += not all(n.location.valid() for n in obj.nodes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        osm = read_osm(campo_grande, pois=False)
    skipped = osm.roads.attrs["skipped"]
    assert (ways, cut) == (4129, 189)
    assert len(osm.roads) + skipped["roads_missing_nodes"] + skipped["roads_one_node"] == ways
    assert osm.roads.attrs["cut"] + skipped["roads_missing_nodes"] == cut
    assert osm.roads.attrs["cut"] == 146
    # the parts lie in the header box (the extract's boundary): they are roads of covered cells
    box = shapely.box(-54.6, -20.6, -54.5, -20.4)
    kept = osm.roads[osm.roads["osm_id"].isin(_cut_ids(campo_grande))]
    assert len(kept) == 146 and kept.intersects(box).all()
    # the road channel per cell against lines sampled every ~2 m (cells via geos2vec, checked against s2sphere)
    table = geos2vec.count_features(roads=osm.roads, coverage=campo_grande)
    xy, which = shapely.get_coordinates(shapely.segmentize(np.asarray(osm.roads.geometry.values), 2e-5),
                                        return_index=True)
    cells = geos2vec.cells.latlng_to_cell(xy[:, 1], xy[:, 0], 12)
    assert all(cells[i] == _cell(*xy[i]) for i in range(0, len(xy), 5000))
    reference = pd.DataFrame({"road": which, "cell": cells}).drop_duplicates().groupby("cell").size()
    pd.testing.assert_series_equal(table["road"], reference.rename("road").rename_axis("cell_id"),
                                   check_dtype=False)


def _cut_ids(path):
    ids = set()
    for obj in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations():
        if obj.is_way() and "highway" in obj.tags and not all(n.location.valid() for n in obj.nodes):
            ids.add(obj.id)
    return ids


def _write_pbf(path, box, nodes):
    header = osmium.io.Header()
    header.add_box(osmium.osm.Box(osmium.osm.Location(box[0], box[1]), osmium.osm.Location(box[2], box[3])))
    writer = osmium.SimpleWriter(str(path), header=header)
    for i, (lon, lat, tag) in enumerate(nodes, start=1):
        writer.add_node(osmium.osm.mutable.Node(id=i, location=(lon, lat), tags=dict([tag.split("=")])))
    writer.close()


def test_count_features_says_the_data_reaches_past_a_pbf_header_box(tmp_path):
    # like rnv_mannheim.osm.pbf: its header box holds 31 % of its road vertices and 19 % of its POIs
    box = (8.55, 49.31, 8.60, 49.35)
    nodes = [(8.57, 49.33, "amenity=cafe"), (8.30, 49.50, "amenity=cafe"), (8.31, 49.51, "shop=bakery"),
             (8.32, 49.52, "amenity=pharmacy")]
    _write_pbf(tmp_path / "rnv.osm.pbf", box, nodes)
    pois, roads = read_osm(tmp_path / "rnv.osm.pbf")
    with pytest.warns(geos2vec.errors.CoverageWarning) as seen:
        table = geos2vec.count_features(pois, roads, coverage=tmp_path / "rnv.osm.pbf")
    message = " ".join(str(w.message) for w in seen)
    assert "3 of 4 input coordinates" in message and "header box of rnv.osm.pbf" in message
    assert "another CRS" not in message  # the header box is in degrees: that was the wrong hint
    assert shapely.from_wkt(table.attrs["coverage"]["geometry"]).equals(shapely.box(*box))


def test_an_upper_case_pbf_path_is_taken_as_its_header_box(tmp_path):
    box = (-8.795, 40.981, -8.358, 41.399)  # Porto: west of Greenwich
    _write_pbf(tmp_path / "porto.osm.pbf", box, [(-8.61, 41.15, "amenity=cafe"), (-8.62, 41.16, "amenity=bench"),
                                                (-8.60, 41.14, "shop=bakery")])
    (tmp_path / "porto.osm.pbf").rename(tmp_path / "PORTO.OSM.PBF")  # as some downloads on Windows are named
    pois, roads = read_osm(tmp_path / "PORTO.OSM.PBF")
    with pytest.warns(geos2vec.errors.CoverageWarning, match=r"header box of .*PORTO\.OSM\.PBF .*fills only 0\.22%"):
        table = geos2vec.count_features(pois, roads, coverage=str(tmp_path / "PORTO.OSM.PBF"))  # 3 POIs in a city box
    assert shapely.from_wkt(table.attrs["coverage"]["geometry"]).equals(shapely.box(*box))
    assert table[["cafe", "bench", "bakery"]].sum().tolist() == [1, 1, 1]
    # a name without an OSM ending is not a damaged download: say to rename it
    (tmp_path / "PORTO.OSM.PBF").rename(tmp_path / "porto.dat")
    with pytest.raises(geos2vec.errors.InvalidInputError, match=r"could not tell the format .*porto\.dat.*name it "
                                                                  r"\.osm\.pbf") as raised:
        read_osm(tmp_path / "porto.dat")
    assert "Download it again" not in str(raised.value)


def test_an_error_page_saved_as_pbf_is_refused_as_coverage_by_name(tmp_path):
    (tmp_path / "malta-latest.osm.pbf").write_text("<html><body>503 Service Unavailable</body></html>")
    with pytest.raises(geos2vec.errors.CoverageError, match=r"could not read the header of .*malta-latest\.osm\.pbf "
                                                            r"as an OpenStreetMap file .*Download it again"):
        geos2vec.coverage.as_coverage(tmp_path / "malta-latest.osm.pbf")
    assert issubclass(geos2vec.errors.CoverageError, ValueError)


def test_docs_osm_tiles_read_with_area_are_not_additive_for_roads(campo_grande):
    # docs/osm.md: halves read with area= and summed count roads crossing the cut twice, in the cells along it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        whole = read_osm(campo_grande)
        halves = [read_osm(campo_grande, area=box) for box in ((-54.6, -20.6, -54.55, -20.4),
                                                                 (-54.55, -20.6, -54.5, -20.4))]
        full = geos2vec.count_features(whole.pois, whole.roads)
        summed = geos2vec.features.combine_counts([geos2vec.count_features(h.pois, h.roads) for h in halves])
    excess = summed - full.reindex(summed.index, fill_value=0)
    assert int(excess["road"].sum()) == 79 and int((excess["road"] != 0).sum()) == 6
    assert (excess["road"] >= 0).all() and not excess.drop(columns="road").to_numpy().any()  # POIs: one tile each
    # the cells with too many roads are those the cut at 54.55 W runs through
    lat, lng = geos2vec.cell_to_latlng(excess.index[excess["road"] != 0].to_numpy())
    assert np.abs(lng + 54.55).max() < 0.02
