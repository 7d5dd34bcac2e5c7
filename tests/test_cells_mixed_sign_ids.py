"""Cell ids of both 64-bit storages (uint64 and the same bits as int64) in one object array or list."""

import numpy as np
import pytest
import s2sphere

from geos2vec import cells as C
from geos2vec.errors import InvalidInputError, InvalidTypeError


def _ids():
    pts = [(40.7, -74.0), (-33.9, 151.2), (35.0, 139.7), (-60.0, -100.0), (70.0, 10.0), (-80.0, 30.0)]
    return [s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b)).parent(12).id() for a, b in pts]


def test_mixed_storages_give_the_uint64_ids():
    ids = _ids()
    assert any(i >= 1 << 63 for i in ids) and any(i < 1 << 63 for i in ids)
    signed = [i - (1 << 64) if i >= 1 << 63 else i for i in ids]  # int64 storage of the same bits
    mixed = [s if k % 2 else u for k, (u, s) in enumerate(zip(ids, signed))]
    want = np.array(ids, dtype=np.uint64)
    for form in (np.array(mixed, dtype=object), mixed, tuple(signed)):
        np.testing.assert_array_equal(C._as_cells(form), want)
    np.testing.assert_array_equal(C.get_level(np.array(mixed, dtype=object)), np.full(len(ids), 12))
    lat, lng = C.cell_to_latlng(mixed)
    for (a, b), cid in zip(zip(lat, lng), ids):
        ll = s2sphere.CellId(cid).to_lat_lng()
        assert abs(a - ll.lat().degrees) < 1e-9 and abs(b - ll.lng().degrees) < 1e-9


def test_out_of_range_and_floats_are_still_refused():
    with pytest.raises(InvalidInputError, match="fit in 64 bits"):
        C._as_cells(np.array([1 << 64, 5], dtype=object))
    with pytest.raises(InvalidInputError, match="fit in 64 bits"):
        C._as_cells([-(1 << 63) - 1, 1 << 63])
    with pytest.raises(InvalidTypeError, match="dtype float64"):
        C._as_cells([1.5, 2.0])
