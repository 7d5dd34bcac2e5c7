"""Which channels a row beyond a table's coverage has: those of the input layer that put it there.

``count_features(pois, roads, coverage=...)`` counts two layers with one coverage. A row whose cell lies wholly
outside it is covered because it holds data, but only data of the layer that reached it: a road-only cell
beyond a city's POI box (the shared cities' roads reach 0.02 degrees past it) says nothing about POIs there.
``attrs["coverage"]["layers"]`` lists the channels of each layer (``[[POI channels and extras], ["road"]]``);
a row whose cell does not meet the coverage has a layer's channels when it holds a count in one of them. A
row whose cell straddles the coverage's edge (centre outside) keeps every channel, as the cells inside do
(private helpers of :mod:`geos2vec.coverage`).
"""

from __future__ import annotations

import os

import numpy as np
import shapely

from . import cells as _cells


def is_pbf(coverage) -> bool:
    """Whether a coverage argument is the path of an ``.osm.pbf`` file (its header box is the coverage)."""
    return isinstance(coverage, (str, os.PathLike)) and os.fspath(coverage).lower().endswith(".pbf")


def outside_counts(geom, lng, lat) -> tuple[int, int]:
    """``(coordinates, of them outside geom)`` of finite lon/lat arrays."""
    ok = np.isfinite(lng) & np.isfinite(lat)
    lng, lat = np.asarray(lng)[ok], np.asarray(lat)[ok]
    if not lng.size:
        return 0, 0
    shapely.prepare(geom)
    return int(lng.size), int(lng.size - np.count_nonzero(shapely.intersects_xy(geom, lng, lat)))


class MissingChannels(list):
    """The channels a source lacks (a list), and the channels of each input layer (``layers``)."""

    layers: list | None = None


def _nonzero(table, cols) -> np.ndarray:
    values = np.nan_to_num(np.asarray(table[cols].to_numpy(), dtype=np.float64))
    return (values != 0).any(axis=1)


def layer_rows(table, layers) -> list:
    """Per layer, the cell ids of the rows that hold a count of it (None: none of its channels is a column)."""
    index = np.asarray(table.index, dtype=np.uint64)
    out = []
    for chans in layers or []:
        wanted = {str(c) for c in chans}
        cols = [c for c in table.columns if str(c) in wanted]
        out.append(index[_nonzero(table, cols)] if cols else None)
    return out


def detached(cells, geom) -> np.ndarray:
    """Bool per cell of ``cells`` (centres outside ``geom``): its polygon does not meet ``geom`` either."""
    if not cells.size:
        return np.zeros(0, bool)
    if geom.is_empty:
        return np.ones(cells.size, bool)
    shapely.prepare(geom)
    return ~shapely.intersects(geom, np.asarray(_cells.cell_polygons(cells).values))


def layer_gaps(flat, table, layers, has_row, inside_geom, features, geom) -> np.ndarray | None:
    """``(len(flat), len(features))`` bool: True where a row beyond the coverage lacks the channel's layer."""
    outside = has_row & ~inside_geom
    if not layers or not len(features) or not outside.any():
        return None
    far = np.unique(flat[outside])
    far = far[detached(far, geom)]
    outside &= np.isin(flat, far)
    if not outside.any():
        return None
    names = [str(c) for c in features]
    gaps = np.zeros((flat.size, len(names)), bool)
    index = np.asarray(table.index, dtype=np.uint64)
    rows = table.iloc[np.flatnonzero(np.isin(index, far))]  # only the far rows' values are read
    for chans, cells in zip(layers, layer_rows(rows, layers)):
        if cells is None:  # the layer's channels are not in this table: nothing to tell
            continue
        lacking = outside & ~np.isin(flat, cells)
        wanted = {str(c) for c in chans}
        cols = [k for k, c in enumerate(names) if c in wanted]
        if cols and lacking.any():
            gaps[np.ix_(lacking, cols)] = True
    return gaps if gaps.any() else None


def rows_with_layer(rows, layers, channel, far) -> np.ndarray:
    """Bool per row of ``rows``: it holds a count of ``channel``'s layer, or is not ``far`` (meets the coverage).

    All True when no layer lists the channel.
    """
    for chans in layers or []:
        wanted = {str(c) for c in chans}
        if str(channel) in wanted:
            cols = [c for c in rows.columns if str(c) in wanted]
            return (_nonzero(rows, cols) | ~far) if cols else np.ones(len(rows), bool)
    return np.ones(len(rows), bool)


def rows_outside(table, geom):
    """``(cell polygons, rows, far)`` of ``table``'s rows whose centre lies outside ``geom`` (covered by their row).

    ``far``: the row's cell does not meet ``geom`` at all.
    """
    try:
        cells = np.asarray(table.index, dtype=np.uint64)
    except (TypeError, ValueError, OverflowError):
        return np.empty(0, dtype=object), table.iloc[:0], np.zeros(0, bool)
    valid = np.asarray(_cells.is_valid_cell(cells), dtype=bool) if cells.size else np.zeros(0, dtype=bool)
    lat, lng = _cells.cell_to_latlng(cells[valid]) if valid.any() else (np.empty(0),) * 2
    outside = np.zeros(cells.size, dtype=bool)
    shapely.prepare(geom)
    outside[valid] = ~shapely.contains_xy(geom, lng, lat)
    if not outside.any():
        return np.empty(0, dtype=object), table.iloc[:0], np.zeros(0, bool)
    polys = np.asarray(_cells.cell_polygons(cells[outside]).values)
    return polys, table.iloc[np.flatnonzero(outside)], ~shapely.intersects(geom, polys)


def zero_rows(extra, channel, layers=None) -> list:
    """The polygons of the rows of :func:`rows_outside` whose ``channel`` is zero (or missing), of its layer.

    Rows wholly outside the part's coverage are taken only when they hold a count of the channel's layer.
    """
    polys, rows, far = extra
    if not len(rows) or channel not in rows.columns:
        return []
    values = np.nan_to_num(np.asarray(rows[channel].to_numpy(), dtype=np.float64))
    return list(polys[(values == 0) & rows_with_layer(rows, layers, channel, far)])


def wrap_lnglat(geom):
    """A geometry in longitude/latitude degrees with its parts past ±180 moved by 360 degrees (split there).

    ``box(178, -18, 182, -16)`` is the area across the antimeridian it draws (Fiji): the MultiPolygon of
    ``box(178, -18, 180, -16)`` and ``box(-180, -18, -178, -16)``. A geometry within ±180 is returned as it is;
    longitudes are taken within [-540, 540] (the callers check their bounds).
    """
    from shapely import affinity

    if geom.is_empty:
        return geom
    x0, _, x1, _ = geom.bounds
    if -180 <= x0 and x1 <= 180:
        return geom
    return shapely.union_all([affinity.translate(shapely.intersection(geom, shapely.box(s - 180, -90, s + 180, 90)),
                                                 xoff=-s) for s in (-360.0, 0.0, 360.0)])


def polygon_parts(geom: shapely.Geometry) -> list:
    """The polygonal parts (Polygons, MultiPolygons) of a geometry collection, in order."""
    return [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]


def polygonal(geom: shapely.Geometry, name: str) -> shapely.Geometry:
    """The area of one shapely geometry: a collection by its polygonal parts; points and lines are refused.

    A point or line covers no area: as coverage or a hold-out polygon every cell came out outside, silently.
    """
    from .errors import CoverageError

    if geom is None or geom.is_empty:
        return geom
    kind = shapely.get_type_id(geom)
    if kind == 7:  # make_valid's polygon with a spike: its polygonal parts
        parts = polygon_parts(geom)
        if parts:
            return shapely.union_all(parts)
    elif kind in (3, 6):
        return geom
    raise CoverageError(f"{name} must be a polygon (the area), got a {geom.geom_type}: buffer points or lines "
                        "into areas first, or drop them")


def polygonal_series(gs, name: str):
    """A GeoSeries' geometries as areas: collections by their polygonal parts; points and lines refused.

    The error names how many geometries are not areas and the first one's row (:func:`polygonal` for one).
    """
    from .errors import CoverageError

    kind, empty = np.asarray(gs.geom_type), np.asarray(gs.is_empty)
    collection = (kind == "GeometryCollection") & ~empty  # None (a missing geometry) is neither
    if collection.any():
        gs = gs.copy()
        gs[collection] = [shapely.union_all(polygon_parts(g)) for g in gs[collection]]
        kind = np.asarray(gs.geom_type)
    # empty as given: a collection without a polygon (now empty) is refused too
    other = ~np.isin(kind, ["Polygon", "MultiPolygon"]) & ~empty & ~np.asarray(gs.isna())
    if other.any():  # points or lines cover no area: every cell came out outside, or they were dropped unseen
        raise CoverageError(f"{name} must be polygons (the area); {int(other.sum()):,} of its geometries are not "
                            f"({', '.join(sorted(set(kind[other])))}; first at index {gs.index[other][0]!r}): "
                            "buffer points or lines into areas first, or drop them")
    return gs


def lnglat_union(gs):
    """The union of a GeoSeries' geometries in EPSG:4326 longitude/latitude, split at ±180.

    A projected CRS's straight edges are curves in longitude/latitude: its geometries are densified first (a
    box of California in EPSG:5070 had edges up to 0.19 degrees off), and an area across the antimeridian
    (EPSG:3832, a Fiji grid) is unwrapped and split into the parts east and west of ±180 (its transformed
    vertices, about 360 degrees apart, made a band round the globe that left out the area itself). Only the
    geometries with such a jump (:func:`geos2vec._geo.lon_jumps`) are unwrapped one by one; the rest are one
    union, as ``to_crs(4326).union_all()``. Geographic longitudes past ±180 (up to 360 degrees apart) are the area
    they draw across the antimeridian (:func:`wrap_lnglat`); wider or other bounds are left for the caller's check.
    """
    from ._geo import lon_jumps
    from .errors import CoverageError
    from .raster._common import _unwrap_transformed

    values = np.asarray(gs.values)
    values = values[~(shapely.is_missing(values) | shapely.is_empty(values))]
    if gs.crs.is_geographic or not values.size:
        lnglat = np.asarray(gs.to_crs(4326).values)
        lnglat = lnglat[~(shapely.is_missing(lnglat) | shapely.is_empty(lnglat))]
        bounds = shapely.bounds(lnglat)
        # each geometry past ±180 wrapped on its own: a union of one drawn past 180 and one past -180 (or one
        # already split there) is over 360 degrees wide, and was refused as "not degrees"
        past = ((bounds[:, 0] < -180) | (bounds[:, 2] > 180)) & (bounds[:, 0] >= -360) & (bounds[:, 2] <= 360) \
            & (bounds[:, 2] - bounds[:, 0] <= 360)
        lnglat[past] = [wrap_lnglat(g) for g in lnglat[past]]
        return shapely.union_all(lnglat)
    x0, y0, x1, y1 = shapely.total_bounds(values)
    step = max(float(np.hypot(x1 - x0, y1 - y0)) / 256, 1e-9)  # error of the edges ~ (1/256)^2 of their bend
    real = shapely.length(values) > 0  # GEOS cannot segmentize a zero-length ring
    values[real] = shapely.segmentize(values[real], step)
    lnglat = np.asarray(type(gs)(values, crs=gs.crs).to_crs(4326).values)
    bounds = shapely.bounds(lnglat)
    slow = lon_jumps(lnglat) | (bounds[:, 0] < -180) | (bounds[:, 2] > 180)  # else within ±180 as they are
    if not slow.any():
        return shapely.union_all(lnglat)
    try:
        wrapped = _unwrap_transformed(lnglat[slow])  # each part the short way round, its middle in [-180, 180)
    except ValueError as err:
        raise CoverageError(f"the area cannot be taken to longitude/latitude: {err}") from None
    # one union of them all (the union of two unions, a large one and the few split, took as long again)
    return shapely.union_all(np.concatenate([lnglat[~slow], shapely.get_parts(wrap_lnglat(wrapped))]))
