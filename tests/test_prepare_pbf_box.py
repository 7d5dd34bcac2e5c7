"""``scripts/prepare_training_data.py`` takes an extract's header box as its coverage, unless it is a placeholder."""

from __future__ import annotations

import osmium
import pytest
import shapely

from conftest import load_script
from geos2vec.io import read_osm


@pytest.mark.parametrize(("name", "placeholder"), [("heidelberg.test.pbf", True),
                                                    ("liechtenstein-latest.osm.pbf", False)])
def test_a_placeholder_header_box_is_not_the_coverage(shared_data, name, placeholder):
    path = shared_data / "osm" / name
    header = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING).header().box()
    head = (header.bottom_left.lon, header.bottom_left.lat, header.top_right.lon, header.top_right.lat)
    osm = read_osm(path)
    xy = shapely.get_coordinates(list(osm.pois.geometry.values) + list(osm.roads.geometry.values))
    extent = (xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max())
    box = load_script("prepare_training_data")._pbf_box(path, osm)
    if placeholder:  # (0, 0, 180, 90): a quarter of the globe was taken as surveyed
        assert head == pytest.approx((0.0, 0.0, 180.0, 90.0))
        assert box == pytest.approx(extent)
    else:
        assert box == pytest.approx(head)
