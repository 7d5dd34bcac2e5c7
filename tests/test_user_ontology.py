"""A user's own ontology and data: read_osm with one ontology and counted with another, .osm.pbf header boxes
as coverage, custom ontologies and road classes.

Each test checks the library against an independent reference (pyosmium, s2sphere, pandas) on real data.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geos2vec.coverage import get_coverage, pbf_bounds
from geos2vec.errors import CoverageWarning, InvalidInputError, InvalidTypeError
from geos2vec.features import count_features
from geos2vec.ontology import Ontology, load_ontology

osmium = pytest.importorskip("osmium")
s2sphere = pytest.importorskip("s2sphere")


def _cell(lat, lng, level=12):
    return np.uint64(s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(level).id())


def _quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return count_features(*args, **kwargs)


def test_pois_read_with_another_ontology_warn_and_name_the_tags_never_read(shared_data):
    from geos2vec.io import read_osm

    pbf = shared_data / "osm" / "north-bayreuth.osm.pbf"
    mine = {"man_made=*": "man_made", "natural=tree": "tree", "amenity=cafe": "cafe"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default_read = read_osm(pbf, roads=False, areas=False).pois
        own_read = read_osm(pbf, roads=False, areas=False, ontology=mine).pois
    # independent reference: nodes with a man_made / natural=tree tag, per level-12 cell (pyosmium, s2sphere)
    ref = {"man_made": {}, "tree": {}}
    for node in osmium.FileProcessor(str(pbf), osmium.osm.NODE):
        if not node.location.valid():
            continue
        for channel, hit in (("man_made", "man_made" in node.tags), ("tree", node.tags.get("natural") == "tree")):
            if hit:
                cell = _cell(node.location.lat, node.location.lon)
                ref[channel][cell] = ref[channel].get(cell, 0) + 1
    assert sum(ref["man_made"].values()) > 5 and sum(ref["tree"].values()) > 0

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="count_features counted these in no channel")
        with pytest.warns(UserWarning, match=r"does not select 2 tag\(s\).*man_made=\*.*natural=tree"):
            wrong = count_features(default_read, ontology=mine)
    assert wrong.attrs["report"]["unread_tags"] == ["man_made=*", "natural=tree"]
    assert wrong["tree"].sum() == 0 < sum(ref["tree"].values())  # what the warning is about

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the same ontology for reading and counting: no warning
        warnings.filterwarnings("ignore", message="count_features counted these in no channel")
        right = count_features(own_read, ontology=mine)
    assert "unread_tags" not in right.attrs["report"]
    for channel in ("man_made", "tree"):
        got = right[channel][right[channel] > 0]
        expected = pd.Series(ref[channel]).sort_index()
        assert got.to_dict() == expected.to_dict()
    assert "unread_tags" not in _quiet(default_read).attrs["report"]  # default read, default count


def test_a_pbf_header_box_far_larger_than_the_data_is_not_taken_silently(shared_data):
    pbf = shared_data / "osm" / "heidelberg.test.pbf"
    header = osmium.io.Reader(str(pbf), osmium.osm.osm_entity_bits.NOTHING).header().box()
    box = (header.bottom_left.lon, header.bottom_left.lat, header.top_right.lon, header.top_right.lat)
    assert pbf_bounds(pbf) == pytest.approx(box)
    assert box == pytest.approx((0.0, 0.0, 180.0, 90.0))  # a placeholder: the file's data lie near 8.7 E 49.4 N
    pois = gpd.GeoDataFrame({"fclass": ["cafe", "school", "bank"]},
                            geometry=gpd.points_from_xy([8.69, 8.70, 8.71], [49.40, 49.41, 49.42]), crs=4326)
    with pytest.warns(CoverageWarning, match=r"header box of .*heidelberg.test.pbf is \(0.0, 0.0, 180.0, 90.0\)"):
        table = count_features(pois, coverage=pbf)
    assert get_coverage(table)[0].bounds == pytest.approx(box)  # still what was asked for, but said

    good = shared_data / "osm" / "liechtenstein-latest.osm.pbf"
    x0, y0, x1, y1 = pbf_bounds(good)
    inside = gpd.GeoDataFrame({"fclass": ["cafe", "school"]}, geometry=gpd.points_from_xy([x0 + 0.01, x1 - 0.01],
                              [y0 + 0.01, y1 - 0.01]), crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)
        count_features(inside, coverage=good)


def test_custom_ontology_says_when_it_counts_non_roads_and_can_take_the_default_road_classes(shared_data):
    roads = gpd.read_parquet(shared_data / "roads" / "los_angeles.parquet")
    road_classes = load_ontology().road_values
    not_roads = roads.loc[~roads["highway"].isin(road_classes), "highway"].value_counts()
    assert {"proposed", "construction"} <= set(not_roads.index)

    with pytest.warns(UserWarning, match=r"lines as roads whose highway value is not a road class.*proposed"):
        every = count_features(roads=roads, ontology={"restaurant": "food"})
    assert every.attrs["report"]["non_road_highways"] == not_roads.to_dict()
    assert every.attrs["report"]["n_roads_counted"] == len(roads)

    only = _quiet(roads=roads, ontology=Ontology.from_mapping({"restaurant": "food"}, road_values="default"))
    default = _quiet(roads=roads)
    assert only.attrs["report"]["n_roads_counted"] == int(roads["highway"].isin(road_classes).sum())
    assert only.attrs["report"]["dropped_roads"] == not_roads.to_dict()
    pd.testing.assert_series_equal(only["road"], default["road"])
    listed = _quiet(roads=roads, ontology=Ontology.from_channels(["cafe"], road_values=["motorway"]))
    assert listed.attrs["report"]["n_roads_counted"] == int((roads["highway"] == "motorway").sum())
    with warnings.catch_warnings():  # road_column=None: every line on purpose, nothing to say
        warnings.simplefilter("error", UserWarning)
        assert "non_road_highways" not in count_features(roads=roads, ontology={"x": "y"},
                                                         road_column=None).attrs["report"]
    with pytest.raises(InvalidInputError, match="road_values='v9'"):
        Ontology.from_mapping({"x": "y"}, road_values="v9")
    with pytest.raises(InvalidTypeError, match="non-empty list of highway values"):
        Ontology.from_channels(["x"], road_values=[])
    with pytest.raises(InvalidTypeError, match="road_values must be None"):
        Ontology.from_channels(["x"], road_values=3)

