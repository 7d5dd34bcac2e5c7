"""The ``coverage=`` argument of the baselines: which cells lie where the feature source has data.

:func:`covered_mask` (re-exported by :mod:`geos2vec.evaluate.baselines` and :mod:`geos2vec.evaluate`) reads
``None``, boxes, a polygon, a GeoSeries or cell ids. :func:`lnglat_area` and :func:`lnglat_geometry` make the
polygon of a GeoSeries in any CRS, or of a shapely geometry in degrees, a longitude/latitude area within ±180
(also for :func:`geos2vec.evaluate.holdout_mask` and ``geos2vec evaluate --holdout-polygon``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cells import _as_cells, cell_to_latlng
from ..errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    import geopandas as gpd
    import shapely
    from numpy.typing import ArrayLike


def lnglat_geometry(geom: shapely.Geometry, name: str) -> shapely.Geometry:
    """A shapely geometry in longitude/latitude degrees, its parts past ±180 moved by 360 degrees.

    Longitudes within [-360, 360] and at most 360 degrees apart are read as the area they draw (an area across
    the antimeridian given as ``box(178, -18, 182, -16)``, as :func:`geos2vec.raster.image_cells` takes it); other
    bounds (metres) raise, naming ``name``.
    """
    from .._coverage_layers import polygonal, wrap_lnglat

    if geom.is_empty:
        return geom
    geom = polygonal(geom, name)  # a point or line covered no cell, silently; a collection: its polygons
    x0, y0, x1, y1 = (float(v) for v in geom.bounds)
    if not (np.isfinite([x0, y0, x1, y1]).all() and -360 <= x0 <= x1 <= 360 and x1 - x0 <= 360
            and -90 <= y0 <= y1 <= 90):
        raise InvalidInputError(f"{name} bounds {(x0, y0, x1, y1)} are not longitude/latitude degrees; a shapely "
                                "geometry is taken as EPSG:4326 (lon, lat): transform it first, or pass a GeoSeries "
                                "with its CRS")
    return wrap_lnglat(geom)


def lnglat_area(geoms: gpd.GeoSeries | gpd.GeoDataFrame, name: str) -> shapely.Geometry:
    """The union of a GeoSeries' (GeoDataFrame's) geometries in longitude/latitude degrees, split at ±180.

    Checked by :func:`geos2vec._geo.to_wgs84` (a missing CRS or coordinates outside its domain raise naming their
    rows; a projected area around a pole is the polar area it draws), then
    :func:`geos2vec._coverage_layers.lnglat_union`: a projected
    area is densified and an area across the antimeridian (EPSG:3832, EPSG:3460) split into its parts either
    side of ±180 (``to_crs(4326).union_all()`` made it a band round the globe the other way: the wrong cells),
    and geographic geometries past ±180 are wrapped there; other bounds raise (:func:`lnglat_geometry`).
    """
    from .._coverage_layers import lnglat_union, polygonal_series
    from .._geo import as_geoseries, missing_mask, to_wgs84
    from ..errors import CoverageError

    gs = as_geoseries(geoms, name)
    gs = polygonal_series(gs[~missing_mask(gs)], name)  # collections by their polygons; points, lines refused
    to_wgs84(gs, name)
    try:
        geom = lnglat_union(gs)
    except CoverageError as err:  # pragma: no cover - to_wgs84 names the row first
        raise InvalidInputError(f"{name}: {err}") from None
    return lnglat_geometry(geom, name)


def lnglat_boxes(boxes: ArrayLike, name: str) -> np.ndarray:
    """``(n, 4)`` boxes ``(min_lon, min_lat, max_lon, max_lat)`` in degrees, those past ±180 split there.

    Longitudes within [-360, 360] and at most 360 degrees apart are read as the area they draw, as a polygon past
    ±180 is (:func:`lnglat_geometry`): ``(178, -18, 182, -16)`` is Fiji, ``(178, -18, 180, -16)`` and
    ``(-180, -18, -178, -16)``. Anything else raises, naming ``name``.
    """
    b = np.asarray(boxes, dtype=float)
    b = b.reshape(-1, 4) if b.ndim == 1 and b.size % 4 == 0 else b
    if b.ndim != 2 or b.shape[1] != 4:
        raise InvalidInputError(f"{name} must be (min_lon, min_lat, max_lon, max_lat) or a list of such boxes; "
                                f"got {boxes!r}")
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(b).all(axis=1) & (b[:, 0] <= b[:, 2]) & (b[:, 1] <= b[:, 3])
                & (b[:, 0] >= -360) & (b[:, 2] <= 360) & (b[:, 2] - b[:, 0] <= 360)
                & (b[:, 1] >= -90) & (b[:, 3] <= 90))
    if bad.any():  # a box with min > max, or (lat, lon) order, covered nothing, silently
        raise InvalidInputError(f"{name} boxes are (min_lon, min_lat, max_lon, max_lat) in degrees with min <= max; "
                                f"got {b[bad][:3].tolist()} (not finite, min > max, longitudes beyond 360 degrees, "
                                "or latitude and longitude swapped?)")
    out = []
    for shift in (-360.0, 0.0, 360.0):  # the part of each box in [-180, 180] after moving it by 360 degrees
        part = b + np.array([shift, 0.0, shift, 0.0])
        part[:, 0], part[:, 2] = np.maximum(part[:, 0], -180.0), np.minimum(part[:, 2], 180.0)
        out.append(part[part[:, 0] <= part[:, 2]])
    return np.concatenate(out)


def in_lnglat_boxes(lng: np.ndarray, lat: np.ndarray, boxes: ArrayLike, name: str) -> np.ndarray:
    """Which points ``(lng, lat)`` lie in any of ``boxes`` (bounds included), read by :func:`lnglat_boxes`."""
    out = np.zeros(len(lng), bool)
    for b in lnglat_boxes(boxes, name):
        out |= (lng >= b[0]) & (lng <= b[2]) & (lat >= b[1]) & (lat <= b[3])
    return out


def covered_mask(cells: ArrayLike,
                 coverage: shapely.Geometry | gpd.GeoSeries | gpd.GeoDataFrame | ArrayLike | None = None) -> np.ndarray:
    """Which ``cells`` lie where the feature source has data.

    ``coverage`` is ``None`` (everywhere), a ``(min_lon, min_lat, max_lon, max_lat)`` box or a list of
    them (the cell centre inside any; longitudes past ±180 draw a box across it, :func:`lnglat_boxes`), a
    shapely (Multi)Polygon in degrees or a GeoSeries / GeoDataFrame in any
    CRS (the cell centre inside; :func:`lnglat_area`: an area across ±180 is split there), WKT or the path of a
    ``.osm.pbf`` (its header's box), as ``count_features(coverage=...)`` takes them
    (:func:`geos2vec.coverage.as_coverage`), or an array of cell ids (exactly those cells).

    Parameters
    ----------
    cells : array_like of uint64
        Cell ids (flattened).
    coverage : None, tuple, list of tuple, shapely geometry, GeoSeries, GeoDataFrame, WKT, .osm.pbf path or cell ids
        Where the source has data, as above (boxes in degrees, bounds included; a shapely geometry in degrees,
        longitudes past ±180 taken across the antimeridian). Cell ids may be uint64 or
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
        max_lat)`` in degrees with min <= max, invalid cell ids, a geometry whose bounds are not degrees, or
        a GeoSeries without a CRS (a ``ValueError``).
    """
    cells = _as_cells(cells).ravel()
    if coverage is None:
        return np.ones(len(cells), bool)
    if isinstance(coverage, str) and coverage.strip() == "infer":  # count_features' own: its input's hull
        raise InvalidInputError("coverage='infer' is count_features' (the hull of the POIs it counts); here give "
                                "None, a bbox, a list of bboxes, a polygon, WKT, a .osm.pbf path or cell ids")
    if isinstance(coverage, str) or hasattr(coverage, "__fspath__"):  # WKT or a .osm.pbf, as count_features takes
        from ..coverage import as_coverage

        try:
            coverage = as_coverage(coverage)
        except InvalidInputError as exc:
            raise InvalidInputError(f"coverage must be None, a bbox, a list of bboxes, a polygon, WKT, a .osm.pbf path "
                                    f"or cell ids; got {'the string ' * isinstance(coverage, str)}{coverage!r} "
                                    f"({exc})") from None
    if isinstance(coverage, (pd.Series, pd.DataFrame)) and hasattr(coverage, "geom_type"):
        # to_crs(4326).union_all() of an area across ±180 in a projected CRS covered the rest of the globe
        coverage = lnglat_area(coverage, "coverage")
    elif hasattr(coverage, "geom_type"):
        coverage = lnglat_geometry(coverage, "coverage")
    if hasattr(coverage, "geom_type"):
        import shapely

        lat, lng = cell_to_latlng(cells)
        return shapely.contains_xy(coverage, lng, lat)
    arr = np.asarray(coverage.to_numpy() if isinstance(coverage, (pd.Series, pd.Index)) else coverage)
    is_int = arr.dtype.kind in "iu" or (arr.dtype == object and arr.size
                                          and all(isinstance(v, (int, np.integer)) for v in arr.ravel()))
    # whole degrees of boxes, also past ±180 ((178, -18, 182, -16)): not cell ids (those are far beyond 360)
    degrees = is_int and arr.size and np.abs(arr.astype(float)).max() <= 360
    if arr.dtype == np.uint64 or (is_int and arr.size and not degrees):
        # cell ids (an int64 array of them was read as boxes: every cell "uncovered", silently)
        try:
            ids = _as_cells(arr).ravel()
        except (InvalidInputError, InvalidTypeError) as exc:
            raise type(exc)(f"coverage as cell ids: {exc}") from None
        return np.isin(cells, ids)
    try:
        boxes = arr.astype(float)
    except (TypeError, ValueError):
        boxes = None
    boxes = boxes.reshape(-1, 4) if boxes is not None and boxes.ndim == 1 and boxes.size % 4 == 0 else boxes
    if boxes is None or boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InvalidInputError(f"coverage must be None, a bbox, a list of bboxes, a polygon or cell ids; got "
                                f"{coverage!r}")
    lat, lng = cell_to_latlng(cells)
    return in_lnglat_boxes(lng, lat, boxes, "coverage")
