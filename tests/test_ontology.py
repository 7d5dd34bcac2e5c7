"""The packaged ontology and user ontologies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geos2vec.ontology import ROAD_CHANNEL, Ontology, load_ontology


def test_default_ontology_shape_and_uniqueness():
    onto = load_ontology()
    again = load_ontology("v1")  # its own copy of the cached one (editing one changes no later call)
    assert again is not onto and again.channels == onto.channels and again.table.equals(onto.table)
    assert len(onto.channels) == 115
    assert onto.all_channels[-1] == ROAD_CHANNEL and ROAD_CHANNEL not in onto.channels
    pois = onto.table[onto.table["channel"] != ROAD_CHANNEL]
    # every key=value is in one channel, and bare values are unambiguous (fclass data has values only)
    assert not pois.duplicated(["osm_key", "osm_value"]).any()
    assert pois.groupby("osm_value")["channel"].nunique().max() == 1
    assert {"motorway", "residential", "footway", "service"} <= onto.road_values
    assert "proposed" not in onto.road_values


def test_default_ontology_covers_geofabrik_poi_layers(shared_data):
    layers = pd.read_csv(shared_data / "ontology" / "geofabrik_layers.csv")
    poi_groups = ["public", "education", "health", "leisure", "catering", "accommodation", "shopping",
                  "money", "tourism", "miscpoi", "pofw"]
    tags = layers[layers["group"].isin(poi_groups)]
    onto = load_ontology()
    codes = onto.lookup(tags["osm_value"].to_numpy(), keys=tags["osm_key"].to_numpy())
    missing = tags[codes < 0]
    assert missing.empty, missing
    road_groups = ["major_roads", "minor_roads", "highway_links", "very_small_roads", "paths_unsuitable_for_cars",
                   "unkown_roads"]
    roads = layers[layers["group"].isin(road_groups) & (layers["osm_key"] == "highway")]
    assert set(roads["osm_value"]) == set(onto.road_values)


def test_default_ontology_matches_most_observed_pois(shared_data):
    obs = pd.read_csv(shared_data / "ontology" / "fclass_observed.csv", keep_default_na=False)
    codes = load_ontology().lookup(obs["fclass"].to_numpy())
    matched = obs["total"].to_numpy()[codes >= 0].sum()
    assert matched / obs["total"].sum() > 0.98
    # every value seen >= 10 times (except the blank) has a channel
    frequent = obs[(obs["total"] >= 10) & (obs["fclass"].str.strip() != "")]
    assert (load_ontology().lookup(frequent["fclass"].to_numpy()) >= 0).all()


def test_lookup_key_value_forms():
    onto = load_ontology()
    ch = onto.channels
    got = onto.lookup(["restaurant", "amenity=cafe", "shop=cafe", "newsagent", None, np.nan, "nope"])
    assert [ch[c] if c >= 0 else None for c in got] == ["restaurant", "cafe", None, "kiosk", None, None, None]
    # with a key column: key decides; an unknown key falls back to the value
    got = onto.lookup(["swimming_pool", "swimming", "restaurant", "restaurant"],
                      keys=["leisure", "sport", "craft_xyz", "shop"])
    assert [ch[c] if c >= 0 else None for c in got] == ["swimming_pool", "swimming_pool", "restaurant", None]
    with pytest.raises(ValueError, match="differ in length"):
        onto.lookup(["a"], keys=["b", "c"])


def test_custom_mapping_and_channels():
    onto = Ontology.from_mapping({"amenity=restaurant": "food", "cafe": "food", "shop=*": "shop"})
    assert onto.channels == ["food", "shop"]
    assert onto.lookup(["restaurant", "amenity=restaurant", "shop=anything", "cafe", "bar"]).tolist() == [
        0, 0, 1, 0, -1]
    assert load_ontology(["a", "b"]).lookup(["b", "a", "c"]).tolist() == [1, 0, -1]
    amb = Ontology.from_mapping({"amenity=x": "one", "shop=x": "two"})
    with pytest.raises(ValueError, match="several channels"):
        amb.lookup(["x"])
    assert amb.lookup(["shop=x"]).tolist() == [1]


@pytest.mark.parametrize("bad, exc, match", [
    ({}, TypeError, "non-empty dict"), ({"a": ""}, TypeError, "non-empty strings, got 'a': ''"),
    ({"=x": "c"}, ValueError, "malformed tag '=x'"), ({"a": "road"}, ValueError, "reserved for the road count"),
    (["a", "a"], ValueError, r"duplicate channels: \['a'\]"), ("v99", ValueError, "unknown ontology 'v99'"),
    (3, TypeError, "got int"),
])
def test_bad_ontologies(bad, exc, match):
    with pytest.raises(exc, match=match):
        load_ontology(bad)


def test_ontology_errors_are_geos2vec_errors():
    from geos2vec.errors import InvalidInputError, InvalidTypeError

    with pytest.raises(InvalidInputError, match=r"unknown ontology 'v9'; packaged versions: \['default', 'v1'"):
        load_ontology("v9")
    with pytest.raises(InvalidTypeError, match="got int"):
        load_ontology(3)
    with pytest.raises(InvalidInputError, match=r"duplicate channels: \['a'\]"):
        load_ontology(["a", "b", "a"])
    with pytest.raises(InvalidInputError, match="malformed tag '=cafe'"):
        load_ontology({"=cafe": "cafe"})
    assert issubclass(InvalidInputError, ValueError) and issubclass(InvalidTypeError, TypeError)


def test_from_mapping_blank_or_spaced_tags_and_channels_and_bad_names():
    from geos2vec.errors import InvalidInputError, InvalidTypeError
    from geos2vec.ontology import Ontology

    # spaces around a bare value go, as they already did around a key and a value
    onto = Ontology.from_mapping({" shop ": "shops", " amenity = cafe ": "food"})
    assert onto.table[["osm_key", "osm_value"]].values.tolist() == [[None, "shop"], ["amenity", "cafe"]]
    # a bare value is matched by value alone (also against keyed tags); the data's " shop" is "shop" (spaces
    # around data values are stripped, as count_features strips them)
    np.testing.assert_array_equal(onto.lookup(["shop", "cafe", "amenity=cafe", " shop"], None), [0, 1, 1, 0])
    with pytest.raises(InvalidInputError, match=r"malformed tag '   ' \(blank\)"):
        Ontology.from_mapping({"   ": "x"})
    with pytest.raises(InvalidInputError, match=r"the channel of tag 'shop' is blank"):
        Ontology.from_mapping({"shop": "  "})
    with pytest.raises(InvalidInputError, match=r"channel name ' food' \(of tag 'cafe'\) starts or ends with spaces; "
                                                r"write 'food'"):
        Ontology.from_mapping({"cafe": " food"})
    for bad in (3, None, "", "  ", ["x"]):
        with pytest.raises(InvalidTypeError, match="an ontology's name must be a non-empty string"):
            Ontology.from_mapping({"cafe": "food"}, name=bad)
        with pytest.raises(InvalidTypeError, match="an ontology's name must be a non-empty string"):
            Ontology.from_channels(["cafe"], name=bad)
    assert Ontology.from_channels(["cafe"], name="mine").name == "mine"
