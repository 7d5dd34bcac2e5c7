"""Ontology.lookup strips spaces around bare values and keys, as it does around the parts of key=value tags."""

import numpy as np

from geos2vec.ontology import load_ontology


def test_bare_values_and_keys_with_stray_spaces_match_like_full_tags():
    onto = load_ontology()
    clean = onto.lookup(["restaurant", "amenity=restaurant", "cafe"])
    assert (clean >= 0).all()
    np.testing.assert_array_equal(onto.lookup([" restaurant", "amenity= restaurant", "cafe\t"]), clean)
    np.testing.assert_array_equal(onto.lookup([" restaurant ", "cafe"], keys=[" amenity", "amenity "]),
                                  onto.lookup(["restaurant", "cafe"], keys=["amenity", "amenity"]))
    assert onto.lookup(["Restaurant"])[0] == -1  # case is kept: OSM tags are case-sensitive
