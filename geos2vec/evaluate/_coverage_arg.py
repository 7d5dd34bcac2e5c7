"""The ``coverage=`` argument of the baselines: which cells lie where the feature source has data.

:func:`covered_mask` (re-exported by :mod:`geos2vec.evaluate.baselines` and :mod:`geos2vec.evaluate`) reads
``None``, boxes, a polygon or cell ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cells import _as_cells, cell_to_latlng
from ..errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    import shapely
    from numpy.typing import ArrayLike


def covered_mask(cells: ArrayLike, coverage: shapely.Geometry | ArrayLike | None = None) -> np.ndarray:
    """Which ``cells`` lie where the feature source has data.

    ``coverage`` is ``None`` (everywhere), a ``(min_lon, min_lat, max_lon, max_lat)`` box or a list of
    them (the cell centre inside any), a shapely (Multi)Polygon (the cell centre inside), or an array of
    cell ids (exactly those cells).

    Parameters
    ----------
    cells : array_like of uint64
        Cell ids (flattened).
    coverage : None, tuple, list of tuple, shapely geometry or integer array of cell ids
        Where the source has data, as above (boxes in degrees, bounds included). Cell ids may be uint64 or
        their signed 64-bit storage (an int64 array, a list of ints); integers beyond 180 cannot be degrees
        and are read as cell ids.

    Returns
    -------
    numpy.ndarray of bool
        One entry per cell.

    Raises
    ------
    InvalidInputError
        A ``coverage`` that is none of the above, boxes that are not ``(min_lon, min_lat, max_lon,
        max_lat)`` in degrees with min <= max, invalid cell ids, or a geometry whose bounds are not degrees
        (a ``ValueError``).
    """
    cells = _as_cells(cells).ravel()
    if coverage is None:
        return np.ones(len(cells), bool)
    if isinstance(coverage, str):
        raise InvalidInputError(f"coverage must be None, a bbox, a list of bboxes, a polygon or cell ids; got the "
                                f"string {coverage!r}")
    if isinstance(coverage, (pd.Series, pd.DataFrame)) and hasattr(coverage, "geom_type"):
        raise InvalidTypeError(f"coverage must be a shapely geometry, not a {type(coverage).__name__}; pass "
                               "coverage.to_crs(4326).union_all()")
    if hasattr(coverage, "geom_type"):
        import shapely

        bounds = np.asarray(coverage.bounds, dtype=float)
        if not coverage.is_empty and not (np.isfinite(bounds).all() and -180 <= bounds[0] and bounds[2] <= 180
                                          and -90 <= bounds[1] and bounds[3] <= 90):
            raise InvalidInputError(f"coverage bounds {tuple(bounds.tolist())} are not longitude/latitude degrees; "
                                    "a coverage geometry is taken as EPSG:4326 (lon, lat): transform it first")
        lat, lng = cell_to_latlng(cells)
        return shapely.contains_xy(coverage, lng, lat)
    arr = np.asarray(coverage.to_numpy() if isinstance(coverage, (pd.Series, pd.Index)) else coverage)
    is_int = arr.dtype.kind in "iu" or (arr.dtype == object and arr.size
                                          and all(isinstance(v, (int, np.integer)) for v in arr.ravel()))
    if arr.dtype == np.uint64 or (is_int and arr.size and np.abs(arr.astype(float)).max() > 180):
        # cell ids (an int64 array of them was read as boxes: every cell "uncovered", silently)
        try:
            ids = _as_cells(arr).ravel()
        except (InvalidInputError, InvalidTypeError) as exc:
            raise type(exc)(f"coverage as cell ids: {exc}") from None
        return np.isin(cells, ids)
    try:
        boxes = arr.astype(float)
    except (TypeError, ValueError):
        raise InvalidInputError(f"coverage must be None, a bbox, a list of bboxes, a polygon or cell ids; got "
                                f"{coverage!r}") from None
    boxes = boxes.reshape(-1, 4) if boxes.ndim == 1 and boxes.size % 4 == 0 else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InvalidInputError(f"coverage must be None, a bbox, a list of bboxes, a polygon or cell ids; got "
                                f"{coverage!r}")
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(boxes).all(axis=1) & (boxes[:, 0] <= boxes[:, 2]) & (boxes[:, 1] <= boxes[:, 3])
                & (boxes[:, 0] >= -180) & (boxes[:, 2] <= 180) & (boxes[:, 1] >= -90) & (boxes[:, 3] <= 90))
    if bad.any():  # a box with min > max, or (lat, lon) order, covered nothing, silently
        raise InvalidInputError(f"coverage boxes are (min_lon, min_lat, max_lon, max_lat) in degrees with min <= max; "
                                f"got {boxes[bad][:3].tolist()} (not finite, min > max, or latitude and longitude "
                                "swapped?)")
    lat, lng = cell_to_latlng(cells)
    out = np.zeros(len(cells), bool)
    for b in boxes:
        out |= (lng >= b[0]) & (lng <= b[2]) & (lat >= b[1]) & (lat <= b[3])
    return out
