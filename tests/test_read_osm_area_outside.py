"""read_osm(area=...) that keeps nothing of a file that has data says so (a (lat, lon) box kept nothing silently)."""

import warnings

import pytest

pytest.importorskip("osmium")

from geos2vec.io import read_osm  # noqa: E402


def test_an_area_beside_the_data_warns_and_one_on_it_does_not(shared_data):
    pbf = shared_data / "osm" / "liechtenstein-latest.osm.pbf"
    with pytest.warns(UserWarning, match=r"none of the .* lie in the area \(47\.1, 9\.5, 47\.18, 9\.56\).*order"):
        pois, roads = read_osm(pbf, area=(47.10, 9.50, 47.18, 9.56))  # (lat, lon): in Somalia's sea
    assert len(pois) == 0 and len(roads) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pois, roads = read_osm(pbf, area=(9.50, 47.10, 9.56, 47.18))
    assert len(pois) > 0 and len(roads) > 0
