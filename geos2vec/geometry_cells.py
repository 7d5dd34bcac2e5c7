"""The cells each geometry covers, with weights: :func:`row_cells` (re-exported by :mod:`geos2vec.embedding`).

Points take their cell; lines are cut into pieces of at most 1/8 cell edge and weighted by length; polygons
take the cells they cover, weighted by area (exactly, per cell).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import _geo, cells as _cells

__all__ = ["row_cells", "check_vertices", "MAX_POLYGON_CELLS"]

# sampling step for line/polygon weights, as a fraction of the cell's edge
_STEPS_PER_CELL = 8
# the most cells in one polygon's bounding box (its area on the sphere over the average cell's: ~5.3 million km² at
# level 12, at any latitude; or a box tall enough for its sampling grid to be as large): larger polygons raise
MAX_POLYGON_CELLS = 1 << 20
# S2's kMinWidth for the quadratic projection (2 sqrt(2) / 3): the narrowest cell of level k is this / 2**k radians
_MIN_WIDTH = 2.0 * np.sqrt(2.0) / 3.0


def _edge_degrees(level: int) -> float:
    """Approximate edge of a cell at ``level`` in degrees of latitude (average S2 cell)."""
    return 90.0 / (1 << level) * 1.2


def check_vertices(geoms: gpd.GeoSeries, name: str = "geoms") -> None:
    """Raise where any vertex of a geometry is NaN/inf or outside lat [-90, 90] / lon [-180, 180].

    Every vertex is checked, not only each row's representative point: a longitude of 241.74 is not a
    longitude (the CRS is probably wrong), and is neither wrapped nor skipped. A polygon with an edge spanning
    more than 180° of longitude (one that crosses the antimeridian) raises too: it must be split at ±180.

    Parameters
    ----------
    geoms : GeoSeries
        Geometries in EPSG:4326 (longitude/latitude degrees); missing and empty ones have no vertices.
    name : str
        The input's name in the message.

    Raises
    ------
    InvalidInputError
        Naming the index labels of the offending rows and how to fix them.
    """
    xy, owner = shapely.get_coordinates(np.asarray(geoms.values), return_index=True)
    if xy.size == 0:
        return
    with np.errstate(invalid="ignore"):
        bad_xy = ~np.isfinite(xy).all(axis=1) | (np.abs(xy[:, 1]) > 90.0) | (np.abs(xy[:, 0]) > 180.0)
    if bad_xy.any():
        from .errors import InvalidInputError

        bad = np.zeros(len(geoms), bool)
        bad[owner[bad_xy]] = True
        raise InvalidInputError(
            f"{name} has {int(bad.sum())} row(s) with {int(bad_xy.sum())} vertex coordinate(s) that are NaN/inf "
            f"or outside lat [-90, 90] / lon [-180, 180], at index {_geo.describe_labels(geoms.index, bad)}; is "
            "the CRS right (set_crs vs to_crs), or are longitude and latitude swapped? Fix or drop those rows "
            "(split a geometry that crosses the antimeridian at lon 180 so that every vertex lies in [-180, 180])")
    _check_polygons_across_antimeridian(geoms, name)


def _check_polygons_across_antimeridian(geoms: gpd.GeoSeries, name: str) -> None:
    """Raise where a polygon's ring has an edge spanning more than 180° of longitude.

    Such a polygon crosses the antimeridian: in longitude/latitude it runs the long way round (a band round
    the globe), and neither its covering nor its representative point is where the polygon is. Lines are
    unwrapped instead (:func:`_unwrap_antimeridian`); polygons must be split at ±180.
    """
    arr = np.asarray(geoms.values)
    # only polygons (or collections) wider than 180° can have such an edge: a cheap filter on the bounds first
    wide = np.flatnonzero(np.isin(shapely.get_type_id(arr), (3, 6, 7)))
    box = shapely.bounds(arr[wide])
    wide = wide[box[:, 2] - box[:, 0] > 180.0]
    if not wide.size:
        return
    parts, owner = shapely.get_parts(arr[wide], return_index=True)
    owner = wide[owner]
    while (nested := np.isin(shapely.get_type_id(parts), (4, 5, 6, 7))).any():  # collections, multi-parts
        sub, sub_owner = shapely.get_parts(parts[nested], return_index=True)
        parts, owner = np.r_[parts[~nested], sub], np.r_[owner[~nested], owner[nested][sub_owner]]
    poly = shapely.get_type_id(parts) == 3
    if not poly.any():
        return
    rings, ring_owner = shapely.get_rings(parts[poly], return_index=True)
    xy, of = shapely.get_coordinates(rings, return_index=True)
    # an edge from -180 to 180 (a band round the globe, e.g. box(-180, 0, 180, 1)) spans the full circle on purpose
    full = (np.abs(xy[:-1, 0]) == 180.0) & (np.abs(xy[1:, 0]) == 180.0)
    jump = (np.abs(np.diff(xy[:, 0])) > 180.0) & (of[1:] == of[:-1]) & ~full
    if jump.any():
        from .errors import InvalidInputError

        bad = np.zeros(len(geoms), bool)
        bad[owner[poly][ring_owner[of[1:][jump]]]] = True
        raise InvalidInputError(
            f"{name} has {int(bad.sum())} polygon(s) that cross the antimeridian (an edge spans more than 180° of "
            f"longitude) at index {_geo.describe_labels(geoms.index, bad)}: in longitude/latitude they would run the "
            "long way round the globe; split them at lon 180 (a MultiPolygon of the parts east and west of it)")


def row_cells(geoms: gpd.GeoSeries, level: int = 12, how: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells each geometry needs, with weights that sum to 1 per row.

    Parameters
    ----------
    geoms : GeoSeries or GeoDataFrame (its active geometry) without missing or empty geometries
        In any CRS (transformed to EPSG:4326; without a CRS, taken as longitude/latitude degrees). Every vertex
        must be finite and within lat [-90, 90] / lon [-180, 180] (:func:`check_vertices`); a polygon that
        crosses the antimeridian must be split at ±180.
    level : int
    how : {"auto", "point", "weighted"}
        ``"point"``: the cell of each geometry's representative point. ``"weighted"`` (and ``"auto"`` for
        lines and polygons): every cell the geometry covers, weighted by the length (lines: the line cut
        into pieces of at most 1/8 of a cell edge, each counted at its midpoint) or area (polygons: every
        cell the polygon overlaps, weighted by the area of the overlap; a polygon, or part of a MultiPolygon,
        whose bounding box spans more than ``MAX_POLYGON_CELLS`` cells raises) inside it. Points always take
        their own cell; multipoints weight each of their points equally; a GeometryCollection counts as the
        multi-geometry of its parts, which must be of one kind (points, lines or polygons). Invalid polygons
        (self-intersecting rings, e.g. a bow-tie) are repaired with ``shapely.make_valid`` first, keeping their
        polygonal parts.

    Returns
    -------
    row : int64 ndarray (position of the row), cell : uint64 ndarray, weight : float64 ndarray

    Raises
    ------
    InvalidTypeError
        A ``level`` that is not an integer; ``geoms`` that is not a GeoSeries or GeoDataFrame.
    InvalidInputError
        A ``level`` outside 0-30, an unknown ``how``, a missing or empty geometry, a vertex that is NaN/inf or
        out of range, a polygon across the antimeridian (naming the rows), or a polygon too large to cover.
    """
    _check_how(how)
    level = _cells._check_level(level)  # 12.0 or 31 failed deep inside (a bare TypeError, a polygon "too large")
    geoms = _geo.as_geoseries(geoms, "geoms")
    if geoms.crs is not None:  # a projected or other geographic CRS was read as degrees
        geoms = _geo.to_wgs84(geoms, "geoms")
    _geo.check_missing(geoms, "raise", "geoms", coerce=None)  # raw AttributeError / "arange" errors before
    check_vertices(geoms)
    return _row_cells(geoms, level, how)


def _check_how(how: str) -> None:
    if how not in ("auto", "point", "weighted"):
        from .errors import InvalidInputError

        raise InvalidInputError(f"how must be 'auto', 'point' or 'weighted', got {how!r}")


def _make_valid(polys: np.ndarray) -> np.ndarray:
    """Invalid polygons repaired with ``shapely.make_valid``, keeping their polygonal parts.

    A repair without any area (a collapsed polygon) is kept whole: it takes its representative point's cell.
    """
    from ._coverage_layers import polygon_parts

    out = polys.copy()
    bad = np.flatnonzero(~shapely.is_valid(polys))
    for k in bad:
        fixed = shapely.make_valid(polys[k])
        if shapely.get_type_id(fixed) == 7:  # a collection: its polygons, if any
            parts = polygon_parts(fixed)
            fixed = shapely.union_all(parts) if parts else fixed
        out[k] = fixed
    return out


def _collections_as_multi(geoms: np.ndarray, labels: pd.Index) -> np.ndarray:
    """GeometryCollections as the multi-geometry of their parts, which must all be of one kind.

    A collection of lines is weighted like a MultiLineString, of polygons like a MultiPolygon, of points like
    a MultiPoint; a mixed one raises :class:`~geos2vec.errors.InvalidInputError` naming the rows (before, line
    parts were ignored and polygons lost their boundary cells).
    """
    gc = np.flatnonzero(shapely.get_type_id(geoms) == 7)
    if not gc.size:
        return geoms
    out, mixed = geoms.copy(), np.zeros(len(geoms), bool)
    for k in gc:
        parts = np.asarray([geoms[k]])
        while np.isin(shapely.get_type_id(parts), (4, 5, 6, 7)).any():  # nested collections and multi-parts
            parts = shapely.get_parts(parts)
        parts = parts[~shapely.is_empty(parts)]  # e.g. POINT EMPTY left by an overlay
        kinds = {int(t) for t in shapely.get_type_id(parts)}
        if not kinds:  # nothing but empty parts: leave it; it is covered as the (empty) geometry it is
            continue
        if kinds <= {0}:
            out[k] = shapely.multipoints(parts)
        elif kinds <= {1, 2}:
            out[k] = shapely.multilinestrings(parts)
        elif kinds <= {3}:
            out[k] = shapely.union_all(parts)
        else:
            mixed[k] = True
    if mixed.any():
        from .errors import InvalidInputError

        raise InvalidInputError(
            f"GeometryCollection(s) mixing points, lines and polygons at index {_geo.describe_labels(labels, mixed)}:"
            " there is no one way to weight their cells; split them into rows of one kind each, or pass "
            "how='point' (the representative point's cell)")
    return out


def _row_cells(geoms: gpd.GeoSeries, level: int, how: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`row_cells` of checked input (``how`` known, every vertex valid)."""
    arr = np.asarray(geoms.values)
    kind = shapely.get_type_id(arr)
    is_point = (kind == 0) | (how == "point")
    rows, lngs, lats, wts = [], [], [], []

    def add(row, lng, lat, weight=None):
        rows.append(row)
        lngs.append(lng)
        lats.append(lat)
        wts.append(np.ones(len(row)) if weight is None else weight)

    if is_point.any():
        lng, lat = _geo.representative_lnglat(geoms[is_point])
        add(np.flatnonzero(is_point), lng, lat)
    others = np.flatnonzero(~is_point)
    if others.size:
        step = _edge_degrees(level) / _STEPS_PER_CELL
        sub = _collections_as_multi(arr[others], geoms.index[others])
        sub_kind = shapely.get_type_id(sub)
        is_line = np.isin(sub_kind, (1, 2, 5))
        is_multipoint = sub_kind == 4
        if is_line.any():
            # pieces of at most `step`, each weighted by its length at its midpoint's cell (vertex counts
            # would over-weight densely digitized stretches)
            line_pos = np.flatnonzero(is_line)
            parts, part_owner = shapely.get_parts(sub[is_line], return_index=True)
            parts = _unwrap_antimeridian(parts)
            _check_line_pieces(parts, part_owner, others[line_pos], geoms.index, step, level)
            real = shapely.length(parts) > 0  # GEOS cannot segmentize a zero-length line (two equal points)
            parts[real] = shapely.segmentize(parts[real], step)
            xy, part_of = shapely.get_coordinates(parts, return_index=True)
            same = part_of[1:] == part_of[:-1]
            a, b = xy[:-1][same], xy[1:][same]
            mid = (a + b) / 2
            length = np.hypot((b[:, 0] - a[:, 0]) * np.cos(np.radians(mid[:, 1])), b[:, 1] - a[:, 1])
            seg_owner = line_pos[part_owner[part_of[:-1][same]]]
            pos = length > 0  # repeated vertices weigh nothing: no cell of weight 0
            add(others[seg_owner[pos]], mid[pos, 0], mid[pos, 1], length[pos])
            total = np.bincount(seg_owner, weights=length, minlength=sub.size)
            degenerate = line_pos[total[line_pos] <= 0]  # zero-length lines: their representative point
            if degenerate.size:
                c = shapely.get_coordinates(_geo.line_midpoints(sub[degenerate]))
                add(others[degenerate], c[:, 0], c[:, 1])
        if is_multipoint.any():  # every point counts once
            c, owner = shapely.get_coordinates(sub[is_multipoint], return_index=True)
            add(others[np.flatnonzero(is_multipoint)[owner]], c[:, 0], c[:, 1])
        poly_pos = np.flatnonzero(~is_line & ~is_multipoint)
        polys = _make_valid(sub[poly_pos])
        for p, g in zip(poly_pos, polys):  # polygons: the cells they overlap, weighted by the overlapping area
            lng_c, lat_c, area = _polygon_cover(g, level)
            add(np.full(lng_c.size, others[p]), lng_c, lat_c, area)
    row = np.concatenate(rows) if rows else np.empty(0, np.int64)
    lng = np.concatenate(lngs) if lngs else np.empty(0)
    lat = np.concatenate(lats) if lats else np.empty(0)
    wt = np.concatenate(wts) if wts else np.empty(0)
    # input vertices lie in [-180, 180] (check_vertices); only lines unwrapped across the antimeridian pass it
    lng = np.where((lng > 180.0) | (lng < -180.0), (lng + 180.0) % 360.0 - 180.0, lng)
    cell = _cells.latlng_to_cell(lat, lng, level)
    # weights: a row's share of samples (points, polygon grid points) or of length (lines) in each cell
    frame = pd.DataFrame({"row": row, "cell": cell, "w": wt})
    sums = frame.groupby(["row", "cell"], sort=True)["w"].sum()
    r = sums.index.get_level_values(0).to_numpy(np.int64)
    c = sums.index.get_level_values(1).to_numpy(np.uint64)
    w = sums.to_numpy(np.float64, copy=True)
    w /= np.bincount(r, weights=w, minlength=len(arr))[r]
    return r, c, w


def _check_line_pieces(parts, part_owner, rows, labels: pd.Index, step: float, level: int) -> None:
    """Raise where a line would be cut into more than ``_STEPS_PER_CELL * MAX_POLYGON_CELLS`` pieces.

    A 1° line at level 30 is some 10^8 pieces: the process was killed for memory (22 GB), a longer one raised
    GEOS' "Tolerance is too small compared to geometry length".
    """
    pieces = np.bincount(part_owner, weights=shapely.length(parts) / step, minlength=len(rows))
    long = pieces > _STEPS_PER_CELL * MAX_POLYGON_CELLS
    if long.any():
        from .errors import InvalidInputError

        bad = np.zeros(len(labels), bool)
        bad[rows[long]] = True
        limit = _STEPS_PER_CELL * MAX_POLYGON_CELLS
        raise InvalidInputError(
            f"{int(long.sum())} line(s) too long for level {level} at index {_geo.describe_labels(labels, bad)}: up to "
            f"{int(pieces.max()):,} pieces of 1/{_STEPS_PER_CELL} cell edge (limit {limit:,} a row); use a coarser "
            "level, split them, or embed them with how='point'")


def _polygon_cover(g, level: int):
    """Centres of the cells polygon ``g`` overlaps and the overlapping area (deg² x cos(lat)) of each.

    A cell coverer bounded by cells, not by a sampling grid: the cells its rings cross (the road covering
    kernel), plus the interior cells found on a grid finer than the narrowest cell; the weight of a boundary cell
    is the area of its intersection with ``g``, of an interior cell its own area. At most ``MAX_POLYGON_CELLS``
    cells in the bounding box of each part: larger polygons raise (a MultiPolygon whose own box is too large or spans
    180° of longitude is covered part by part, so that one split at ±180 or with islands far apart is not refused
    for its wide, empty box).
    """
    from . import _cover
    from .errors import InvalidInputError

    edge = _edge_degrees(level)
    x0, y0, x1, y1 = g.bounds
    # a grid finer than the narrowest cell: every cell of the level is at least _MIN_WIDTH / 2**level radians
    # across (S2's kMinWidth), so a square grid of step width / sqrt(2) has a point in each (in longitude the
    # step is widened by 1 / cos of the lowest latitude of the box, where cells span the fewest degrees)
    step_y = np.degrees(_MIN_WIDTH / (1 << level)) / np.sqrt(2.0) * 0.9
    low = 0.0 if y0 <= 0.0 <= y1 else min(abs(y0), abs(y1))
    step_x = step_y / np.cos(np.radians(low))
    # the box's cells: its area on the sphere over the average cell's (4 pi / (6 * 4**level) sr; was the box in
    # degrees / cos of its highest latitude, 20x too many for Svalbard), or the grid's points / ~6 a cell if more
    sphere = np.radians(x1 - x0) * abs(np.sin(np.radians(y1)) - np.sin(np.radians(y0)))
    n_box = max(sphere * 6 * 4.0**level / (4 * np.pi), ((x1 - x0) / step_x + 1) * ((y1 - y0) / step_y + 1) / 6)
    parts = shapely.get_parts(g)
    if parts.size > 1 and (n_box > MAX_POLYGON_CELLS or x1 - x0 >= 180):
        # part by part: the box of parts far apart (split at ±180, islands) is mostly empty
        covers = [_polygon_cover(p, level) for p in parts]
        real = [cv for cv, p in zip(covers, parts) if p.area > 0] or covers[:1]
        return tuple(np.concatenate(x) for x in zip(*real))
    if n_box > MAX_POLYGON_CELLS:
        raise InvalidInputError(
            f"a polygon spans about {int(n_box):,} level-{level} cells (bounds {tuple(round(v, 3) for v in g.bounds)}"
            f"; limit {MAX_POLYGON_CELLS:,}); split it, embed it with how='point', or use a coarser level")
    # every ring of every part (get_rings of a MultiPolygon itself is empty); geodesic pieces close to the edges
    rings = shapely.segmentize(shapely.get_rings(parts), edge / 8)
    _, boundary = _cover.cover_lines(np.asarray(rings, dtype=object), level)
    xs = np.arange(x0 + step_x / 2, x1, step_x)
    ys = np.arange(y0 + step_y / 2, y1, step_y)
    gx, gy = np.meshgrid(xs, ys)
    inside = shapely.contains_xy(g, gx.ravel(), gy.ravel())
    interior = _cells.latlng_to_cell(gy.ravel()[inside], gx.ravel()[inside], level) if inside.any() \
        else np.empty(0, np.uint64)
    boundary = np.unique(np.asarray(boundary, np.uint64))
    interior = np.setdiff1d(np.unique(interior), boundary)
    cells = np.concatenate([boundary, interior])
    polys = np.asarray(_cells.cell_polygons(cells).values)
    area = shapely.area(polys)
    if boundary.size:
        edge_polys = polys[:boundary.size]
        area[:boundary.size] = shapely.area(shapely.intersection(edge_polys, g))
        past = shapely.bounds(edge_polys)[:, 2] > 180.0  # level-0 face 3 is drawn at lng 135..225: its western half
        if past.any():
            area[:boundary.size][past] += shapely.area(
                shapely.intersection(edge_polys[past], shapely.affinity.translate(g, 360.0)))
    lat, lng = _cells.cell_to_latlng(cells)
    area = area * np.cos(np.radians(lat))
    keep = area > 0
    if not keep.any():  # degenerate (zero-area) polygon: its representative point's cell
        c = shapely.point_on_surface(g)
        return np.array([c.x]), np.array([c.y]), np.ones(1)
    return lng[keep], lat[keep], area[keep]


def _unwrap_antimeridian(lines: np.ndarray) -> np.ndarray:
    """Lines whose consecutive vertices jump more than 180° in longitude, unwrapped (±360°).

    A segment from 179.99° to -179.99° is 0.02° long across the antimeridian, not 359.98° the other way round
    (the way ``count_features`` covers it too); vertices may then lie beyond ±180°, wrapped back per cell.
    """
    empty = shapely.is_empty(lines)
    if empty.any() and not empty.all():  # an EMPTY part of a MultiLineString: rebuilt lines need coordinates
        out = np.array(lines, dtype=object)
        out[~empty] = _unwrap_antimeridian(out[~empty])
        return out
    xy, owner = shapely.get_coordinates(lines, return_index=True)
    if xy.size == 0:
        return lines
    cum = _geo.lon_unwrap_shift(xy[:, 0], owner)
    if cum is None:
        return lines
    xy = xy.copy()
    xy[:, 0] += cum
    return shapely.linestrings(xy, indices=owner)


def weighted_means(emb: np.ndarray, row: np.ndarray, inv: np.ndarray, weight: np.ndarray, pairs: np.ndarray,
                   block: int = 1 << 14) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``weight``-ed mean of the vectors of its cells that have data, over the (row, cell) ``pairs``.

    ``emb[inv[p]]`` is the vector of pair ``p``'s cell (NaN: no data, left out) and ``row[p]`` its row. Sums in
    float64, in blocks of whole rows (about ``block`` pairs): no (pairs x dim) float64 copies of them all (a few
    GB for many large polygons). Returns the rows (sorted) and their float32 means (NaN where no cell has data).
    """
    order = pairs[np.argsort(row[pairs], kind="stable")]
    r, k = row[order], inv[order]
    good = ~np.isnan(emb).any(axis=1)[k]
    w = np.where(good, weight[order], 0.0)
    starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    edges = np.unique(np.r_[starts[np.searchsorted(starts, np.arange(0, r.size, block), side="right") - 1], r.size])
    out = np.empty((starts.size, emb.shape[1]), np.float32)
    for a, b in zip(edges[:-1], edges[1:]):  # whole rows: each row's sums run as in one pass
        g0, g1 = np.searchsorted(starts, [a, b])
        s = starts[g0:g1] - a
        vec = np.where(good[a:b, None], emb[k[a:b]], 0.0).astype(np.float64)
        acc, wsum = np.add.reduceat(vec * w[a:b, None], s, axis=0), np.add.reduceat(w[a:b], s)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[g0:g1] = (acc / wsum[:, None]).astype(np.float32)
    return r[starts], out
