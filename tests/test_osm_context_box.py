"""osm_features reads the 16 cells of context around the area at every latitude (context_box)."""

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geos2vec import cells as C
from geos2vec.io.download import context_box


def _context_cells(bounds, level=12, k=16):
    """Reference: every cell within k of a cell of the box (cells of a dense grid of points in the box)."""
    x0, y0, x1, y1 = bounds
    lng, lat = np.meshgrid(np.linspace(x0, x1, 25), np.linspace(y0, y1, 25))
    cells = np.unique(C.latlng_to_cell(lat.ravel(), lng.ravel(), level))
    return np.unique(C.grid_disk(cells, k))


@settings(max_examples=25, deadline=None)
@given(st.floats(-70.0, 70.0), st.floats(-170.0, 170.0), st.floats(0.0, 0.3), st.floats(0.0, 0.3))
def test_the_box_holds_every_context_cell(lat, lng, w, h):
    bounds = (lng, lat, lng + w, lat + h)
    box = context_box(bounds)
    verts = C.cell_to_boundary(_context_cells(bounds)).reshape(-1, 2)
    inside = shapely.covers(box, shapely.points(verts[:, 1], verts[:, 0]))
    assert inside.all()
    # and not much more: the box is within one cell of the context's own extent
    edge = 90.0 / 4096 * 2.5 / max(np.cos(np.radians(min(abs(lat) + h + 1, 89))), 0.05)
    x0, y0, x1, y1 = box.bounds
    assert x0 >= verts[:, 1].min() - edge and x1 <= verts[:, 1].max() + edge


@pytest.mark.parametrize("lat", [47.0, 60.0, 70.0])
def test_the_old_fixed_pad_fell_short_east_west_away_from_the_equator(lat):
    lat_c, lng_c = C.cell_to_latlng(C.grid_disk(C.latlng_to_cell(np.array([lat]), np.array([10.0]), 12), 16)[0])
    east, west = lng_c.max() - 10.0, 10.0 - lng_c.min()
    old_pad = 16 * 90.0 / 4096 * 1.2
    assert min(east, west) > old_pad  # the context's centres lie beyond the old 0.42° pad
    x0, _, x1, _ = context_box((10.0, lat, 10.0, lat)).bounds
    assert x1 >= lng_c.max() and x0 <= lng_c.min()


def test_across_the_antimeridian_every_longitude():
    assert context_box((179.9, 10.0, 179.95, 10.1)).bounds[::2] == (-180.0, 180.0)
