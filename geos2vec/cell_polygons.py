"""Cell outlines as shapely polygons: :func:`cell_polygons` (re-exported by :mod:`geos2vec.cells`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._cells_core import _as_cells, _latlng, _xyz, cell_to_boundary, get_level

if TYPE_CHECKING:
    import geopandas as gpd
    from numpy.typing import ArrayLike

__all__ = ["cell_polygons"]


_DENSIFY_TOL = 1e-5  # degrees (about a metre): straight lon/lat edges closer than this to the geodesic stay
_DENSIFY_STEPS = 16  # the fewest points per edge where they do not
_MAX_STEPS = 2048  # the most (a level-0 face's edge: ~1 m from its geodesic between points)
_DENSIFY_REL = 1e-3  # ... nor further than this fraction of the cell's size (small cells near the poles)


def _dlng_edge(lng):
    """Longitude steps along each cell's edges (to the next vertex), in (-180, 180]."""
    return (np.roll(lng, -1, axis=1) - lng + 180.0) % 360.0 - 180.0


def cell_polygons(cells: ArrayLike) -> gpd.GeoSeries:
    """Cells as a :class:`geopandas.GeoSeries` of polygons in EPSG:4326.

    Cell edges are geodesics (great-circle arcs). Where a straight edge in
    longitude/latitude strays more than about a metre from its geodesic, or
    more than a thousandth of the cell's size (large cells, high latitudes,
    fine cells within metres of a pole) the edge is densified with points on
    the geodesic (16 to 2048 per edge, enough to keep every piece that close
    to it, down to the level-0 faces), so that a point lies in the polygon of
    the cell it belongs to. Cells that straddle the antimeridian (only the level-0
    face 3) get longitudes past 180° (the western vertices are shifted by
    +360°) so that their polygons stay valid and small; every other cell lies
    within [-180, 180], on its own side of the antimeridian where it touches
    it. Cells with a pole as a corner (every level from 1) get
    densified edges and the pole drawn as a stretch of latitude ±90° between
    their two meridian edges; the level-0 polar faces (2 and 5), which hold a
    pole inside, are polar caps from longitude -180 to 180 closed along
    latitude ±90°.

    Parameters
    ----------
    cells : array_like of uint64
        Valid S2 cell ids (any shape; flattened, a scalar gives one polygon).

    Returns
    -------
    geopandas.GeoSeries
        One polygon per cell, in the order of the flattened input, with a
        default ``RangeIndex`` and CRS EPSG:4326 (longitude, latitude).

    Raises
    ------
    ValueError
        If a value is not a valid S2 cell id.
    """
    import geopandas as gpd
    import shapely

    cells = np.atleast_1d(_as_cells(cells)).ravel()
    bnd = cell_to_boundary(cells)
    lat, lng = bnd[..., 0], bnd[..., 1].copy()
    # a vertex on the antimeridian reads +180 or -180 by the sign of a zero (+180 on face 5): put it on the side of
    # the cell's other vertices (a cell west of it at lng -179.97..+180 was drawn at 180..180.03, off its points)
    on_am = np.abs(lng) == 180.0
    side = np.where(on_am, 0.0, np.sign(lng))
    one_side = ((side >= 0).all(axis=1) | (side <= 0).all(axis=1)) & (side != 0).any(axis=1)
    lng = np.where(on_am & one_side[:, None], 180.0 * side.sum(axis=1, keepdims=True).clip(-1, 1), lng)
    wraps = (lng.max(axis=1) - lng.min(axis=1)) > 180.0
    lng[wraps] = np.where(lng[wraps] < 0, lng[wraps] + 360.0, lng[wraps])
    coords = np.stack([lng, lat], axis=-1)
    polys = shapely.polygons(coords)
    if cells.size:
        # the geodesic midpoint of each edge against the straight one
        a = _xyz(lat, bnd[..., 1])
        mid_lat, mid_lng = _latlng(a + np.roll(a, -1, axis=1))
        lin_lng = (lng + np.roll(lng, -1, axis=1)) / 2
        dlng = (mid_lng - lin_lng + 180.0) % 360.0 - 180.0
        off = np.maximum(np.abs(mid_lat - (lat + np.roll(lat, -1, axis=1)) / 2),
                         np.abs(dlng) * np.cos(np.radians(mid_lat)))
        levels = np.asarray(get_level(cells))
        polar_face = (levels == 0) & np.isin(cells >> np.uint64(61), (2, 5))  # the pole inside, not a corner
        at_pole = (np.abs(lat) > 90.0 - 1e-9).any(axis=1) & (levels > 0)  # the pole is a corner
        # a sub-edge strays from the geodesic about off / steps**2 (the sagitta): enough steps for ~_DENSIFY_TOL
        # (16 for every cell left a level-1 cell's points up to 600 m outside its polygon), or for a thousandth of
        # the cell's size where that is less: a level-20 cell (~9 m) next to a pole strays ~1 m, a ninth of it
        size = np.hypot(lat - np.roll(lat, -1, axis=1), _dlng_edge(lng) * np.cos(np.radians(lat))).max(axis=1)
        tol = np.minimum(_DENSIFY_TOL, _DENSIFY_REL * size)
        need = np.sqrt(off.max(axis=1) / tol)
        steps = np.clip(2 ** np.ceil(np.log2(np.maximum(need, 1.0))), _DENSIFY_STEPS, _MAX_STEPS).astype(np.int64)
        dense = (off.max(axis=1) > tol) & ~at_pole & ~polar_face
        for n in np.unique(steps[dense]):
            sel = dense & (steps == n)
            polys[sel] = _densified(a[sel], lng[sel, 0], wraps[sel], int(n))
        for k in np.flatnonzero(at_pole):
            polys[k] = _pole_corner_polygon(a[k], int(steps[k]))
        for k in np.flatnonzero(polar_face):
            polys[k] = _polar_face_polygon(a[k])
    return gpd.GeoSeries(polys, crs="EPSG:4326")


def _polar_face_polygon(corners_xyz):
    """Level-0 face 2 or 5 (the pole inside): its densified ring around the pole, closed along latitude ±90°.

    Drawn over longitudes -180 to 180 (cut at the antimeridian and joined), as a polar cap is on a map.
    """
    import shapely

    t = np.arange(_MAX_STEPS) / _MAX_STEPS
    pts = np.concatenate([(1 - t)[:, None] * corners_xyz[k] + t[:, None] * corners_xyz[(k + 1) % 4]
                          for k in range(4)])
    lat, lng = _latlng(pts)
    lng = np.degrees(np.unwrap(np.radians(np.append(lng, lng[0]))))  # once around: 360° from start to end
    lat = np.append(lat, lat[0])
    pole = np.copysign(90.0, corners_xyz[0, 2])
    ring = np.column_stack([np.r_[lng, lng[-1], lng[0]], np.r_[lat, pole, pole]])
    ring[:, 0] -= 360.0 * np.floor((ring[:, 0].min() + 180.0) / 360.0)  # longitudes from [-180, 180) onwards
    cap = shapely.Polygon(ring)
    west = shapely.affinity.translate(shapely.clip_by_rect(cap, 180.0, -90.0, 540.0, 90.0), -360.0)
    return shapely.union(shapely.clip_by_rect(cap, -180.0, -90.0, 180.0, 90.0), west)


def _pole_corner_polygon(corners_xyz, steps=_DENSIFY_STEPS):
    """A cell with a pole as a corner, as a polygon.

    Its edges densified, the pole replaced by the stretch of the pole's parallel between the longitudes of
    the two meridian edges that meet there.
    """
    import shapely

    t = np.arange(steps) / steps
    ring = []
    for k in range(4):
        a, b = corners_xyz[k], corners_xyz[(k + 1) % 4]
        ring.append((1 - t)[:, None] * a + t[:, None] * b)
    pts = np.concatenate(ring)
    lat, lng = _latlng(pts)
    # the pole corner's place on the ring: the corner nearest the axis (|z| is 1.0 for every corner of a tiny cell)
    i = int(np.argmin(np.hypot(corners_xyz[:, 0], corners_xyz[:, 1]))) * steps
    lat[i] = np.copysign(90.0, corners_xyz[i // steps, 2])
    keep = np.ones(lat.size, bool)
    keep[i] = False
    # the pole's neighbours on the ring lie on the two meridians that meet at the pole
    before, after = lng[(i - 1) % lat.size], lng[(i + 1) % lat.size]
    lat_l, lng_l = list(lat), list(lng)
    out_lat, out_lng = [], []
    for j in range(lat.size):
        if j == i:
            out_lat += [lat[i], lat[i]]
            out_lng += [before, after]
        elif keep[j]:
            out_lat.append(lat_l[j])
            out_lng.append(lng_l[j])
    lng_u = np.unwrap(np.asarray(out_lng), period=360.0)
    if lng_u.max() > 180.0 + 1e-9:  # the western quarter at the south pole (face 5 reads its meridian edge as +180)
        lng_u -= 360.0
    elif lng_u.min() < -180.0 - 1e-9:
        lng_u += 360.0
    lng_u = np.clip(lng_u, -180.0, 180.0)  # unwrap's rounding: -180.00000000000006
    return shapely.Polygon(np.column_stack([lng_u, out_lat]))


def _densified(corners_xyz, lng0, wraps, steps=_DENSIFY_STEPS):
    """Polygons whose edges follow the great circles between the corners (normalized linear interpolation).

    ``lng0``: the longitude the first corner takes in the straight polygon; the ring is shifted by 360° to match.
    Rings of cells that do not straddle the antimeridian (``~wraps``) stay within [-180, 180].
    """
    import shapely

    t = np.arange(steps) / steps
    a = corners_xyz[:, :, None, :]
    b = np.roll(corners_xyz, -1, axis=1)[:, :, None, :]
    pts = (1 - t)[None, None, :, None] * a + t[None, None, :, None] * b  # on the chord: same great circle
    lat, lng = _latlng(pts.reshape(len(corners_xyz), -1, 3))
    lng = np.unwrap(lng, period=360.0, axis=1)  # continuous along the ring
    lng = lng + 360.0 * np.round((lng0 - lng[:, 0]) / 360.0)[:, None]
    lng = np.where(wraps[:, None], lng, np.clip(lng, -180.0, 180.0))  # unwrap's rounding: -180.00000000000006
    return shapely.polygons(np.stack([lng, lat], axis=-1))
