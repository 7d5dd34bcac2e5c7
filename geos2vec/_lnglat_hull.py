"""Convex hulls of longitude/latitude coordinates, across the antimeridian where they lie on both sides of it.

In plain longitudes the hull of points at 179.9 and -179.9 spans the globe's whole width; taken with longitudes
in [0, 360) (:func:`east_longitudes`) it is the narrow area they lie in, cut at 180 and its western part shifted
back. The one home of that rule for ``coverage="infer"`` (:func:`geos2vec.coverage.infer_coverage`, and the
hull vertices each dask partition sends it, :mod:`geos2vec.partitioned`) and for
:func:`geos2vec.io.venue_coverage`.
"""

from __future__ import annotations

import numpy as np
import shapely

_WORLD = (-180.0, -90.0, 180.0, 90.0)


def east_longitudes(lon: np.ndarray) -> np.ndarray:
    """Longitudes in [0, 360): the negative ones plus 360 (where a hull across ±180 is taken)."""
    return np.where(lon < 0, lon + 360.0, lon)


def _plain_hull(xy: np.ndarray, bounds=_WORLD) -> tuple[shapely.Geometry, bool]:
    """``(hull, flat)``: the convex hull of ``xy``, and whether it had no area.

    Collinear points get a hair of area (the line buffered by 1e-6 degrees), kept inside ``bounds``.
    """
    hull = shapely.convex_hull(shapely.multipoints(xy))
    flat = bool(shapely.get_type_id(hull) != 3)
    if flat:
        hull = shapely.intersection(hull.buffer(1e-6), shapely.box(*bounds))
    return hull, flat


def hull_and_flat(xy: np.ndarray) -> tuple[shapely.Geometry, bool]:
    """``(hull, flat)``: :func:`lnglat_hull` of ``xy``, and whether the points lie on a line (a hull of no area).

    ``flat`` is told of the hull returned: in [0, 360) longitudes where it is taken across ±180.
    """
    lon = xy[:, 0]
    east = np.column_stack([east_longitudes(lon), xy[:, 1]])
    if np.ptp(lon) <= 180 or np.ptp(east[:, 0]) > 180:  # not around the antimeridian, or around the globe
        return _plain_hull(xy)
    hull, flat = _plain_hull(east, bounds=(0.0, -90.0, 360.0, 90.0))
    east_part = shapely.intersection(hull, shapely.box(0.0, -90.0, 180.0, 90.0))
    west_part = shapely.transform(shapely.intersection(hull, shapely.box(180.0, -90.0, 360.0, 90.0)),
                                  lambda c: c - np.array([360.0, 0.0]))
    # a hull touching 180 meets the other box in a point or a line: keep the areas only (no GeometryCollection)
    parts = [g for g in shapely.get_parts([east_part, west_part]) if shapely.get_type_id(g) in (3, 6)]
    return shapely.union_all(parts), flat


def lnglat_hull(xy: np.ndarray) -> shapely.Geometry:
    """The convex hull of ``(n, 2)`` lon/lat points, across the antimeridian where they lie on both sides of it.

    Points spread over more than 180 degrees of longitude either way keep the plain hull; collinear points get
    a hair of area (1e-6 degrees).
    """
    return hull_and_flat(xy)[0]
