"""Shared input checks for geometries: CRS, emptiness, coordinates.

Every public function that takes GeoPandas input goes through here so that bad
input gets the same clear message everywhere.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import InvalidInputError, InvalidTypeError, foreign_frame

_MAX_REPORTED = 10


def describe_labels(index: pd.Index, mask: np.ndarray) -> str:
    """The first offending index labels of ``mask``, for error messages."""
    labels = list(index[np.asarray(mask)][:_MAX_REPORTED])
    extra = int(np.count_nonzero(mask)) - len(labels)
    more = f" and {extra} more" if extra > 0 else ""
    return f"{labels}{more}"


def check_lnglat(lng, lat, labels: pd.Index, name: str = "input", where: str = "index ") -> None:
    """Raise a ValueError naming ``labels`` of NaN/inf or out-of-range coordinates (degrees)."""
    bad = ~(np.isfinite(lat) & np.isfinite(lng)) | (np.abs(lat) > 90.0) | (np.abs(lng) > 180.0)
    if bad.any():
        raise InvalidInputError(
            f"{name} has {int(bad.sum())} coordinate(s) that are NaN/inf or outside lat [-90, 90] / lon "
            f"[-180, 180] at {where}{describe_labels(labels, bad)}; is the CRS right (set_crs vs to_crs), "
            "or are longitude and latitude swapped?"
        )


def as_geoseries(data, name: str = "input") -> gpd.GeoSeries:
    """The active geometry of a GeoDataFrame / GeoSeries, else a clear TypeError."""
    if isinstance(data, gpd.GeoDataFrame):
        try:
            return data.geometry
        except AttributeError as exc:
            raise InvalidTypeError(f"{name} has no active geometry column; call set_geometry(...) first") from exc
    if isinstance(data, gpd.GeoSeries):
        return data
    import os

    if isinstance(data, (str, os.PathLike)):  # it said to build points from df.lon/df.lat, also for roads' paths
        read = "read_parquet" if str(data).lower().endswith((".parquet", ".geoparquet", ".pq")) else "read_file"
        hint = f"read the file first: geopandas.{read}({os.fspath(data)!r})"
    elif name in ("roads", "polygons", "area"):  # lines or polygons: points from lon/lat are not what it takes
        hint = "build one with geopandas.GeoDataFrame(df, geometry=<shapely geometries>, crs='EPSG:4326')"
    else:
        hint = ("build one with geopandas.GeoDataFrame(df, geometry=geopandas.points_from_xy(df.lon, df.lat), "
                "crs='EPSG:4326')")
    raise InvalidTypeError(f"{name} must be a GeoDataFrame or GeoSeries, got {type(data).__name__}"
                           f"{foreign_frame(data)}; {hint}")


def series_frame(geoms: gpd.GeoSeries) -> gpd.GeoDataFrame:
    """A GeoSeries as a one-column GeoDataFrame: its name (``"geometry"`` when unnamed), CRS and ``attrs`` kept."""
    out = gpd.GeoDataFrame(geometry=geoms) if geoms.name is None else geoms.to_frame()
    out.attrs = dict(geoms.attrs)
    return out


def append_columns(gdf: gpd.GeoDataFrame, extra: pd.DataFrame) -> gpd.GeoDataFrame:
    """``gdf`` with the columns of ``extra`` (same index) appended; its active geometry and CRS kept.

    A geometry column labelled by a tuple is concatenated as plain frames: geopandas' own ``pd.concat(axis=1)``
    of such a GeoDataFrame (MultiIndex columns of strings, pandas 3) raised "eq not implemented for <class
    'tuple'>".
    """
    if not isinstance(gdf.geometry.name, tuple):  # pandas' concat: a GeoDataFrame subclass and its metadata kept
        return pd.concat([gdf, extra], axis=1)
    joined = pd.concat([pd.DataFrame(gdf, copy=False), extra], axis=1)
    # __finalize__: gdf's attrs and flags (allows_duplicate_labels=False), as pandas' concat kept them
    return gpd.GeoDataFrame(joined, geometry=gdf.geometry.name, crs=gdf.crs).__finalize__(gdf)


def to_wgs84(geoms: gpd.GeoSeries, name: str = "input") -> gpd.GeoSeries:
    """Geometries in EPSG:4326 (longitude/latitude degrees).

    A missing CRS raises: guessing degrees for projected metres would give
    silently wrong cells. Any other CRS, projected or geographic, is
    transformed with pyproj.
    """
    if geoms.crs is None:
        raise InvalidInputError(
            f"{name} has no CRS. If its coordinates are longitude/latitude degrees, call "
            ".set_crs('EPSG:4326'); otherwise set_crs(...) with the CRS they are in"
        )
    if geoms.crs.equals("EPSG:4326"):
        return geoms
    out = geoms.to_crs("EPSG:4326")
    _check_round_trip(geoms, out, name)
    return out if geoms.crs.is_geographic else _split_at_antimeridian(geoms, out, name)


def lon_jumps(arr: np.ndarray) -> np.ndarray:
    """Bool per geometry of ``arr`` (longitude/latitude): two consecutive vertices lie over 180 degrees apart.

    A geometry transformed vertex by vertex from a projected CRS has such a jump where it crosses ±180; one
    without any lies within [-180, 180] as it is (a whole-array test, no Python loop over the parts).
    """
    out = np.zeros(len(arr), dtype=bool)
    xy, owner = shapely.get_coordinates(arr, return_index=True)
    jump = (np.abs(np.diff(xy[:, 0])) > 180.0) & (owner[1:] == owner[:-1])
    out[owner[1:][jump]] = True
    return out


def lon_unwrap_shift(lon: np.ndarray, group: np.ndarray) -> np.ndarray | None:
    """Per vertex, the multiple of 360 degrees that unwraps its run: no step within a ``group`` jumps over 180.

    ``lon`` are consecutive vertices' longitudes, ``group`` (sorted) the line or part each belongs to; the shift
    restarts at 0 at each group's first vertex. ``None`` when no step jumps (nothing to unwrap).
    """
    step = np.diff(lon)
    jump = (np.abs(step) > 180.0) & (group[1:] == group[:-1])
    if not jump.any():
        return None
    shift = np.concatenate([[0.0], np.where(jump, -360.0 * np.sign(step), 0.0)])
    starts = np.r_[True, group[1:] != group[:-1]]
    cum = np.cumsum(shift)
    cum -= cum[np.maximum.accumulate(np.where(starts, np.arange(cum.size), 0))]  # restart at each group
    return cum


def _split_at_antimeridian(src: gpd.GeoSeries, dst: gpd.GeoSeries, name: str) -> gpd.GeoSeries:
    """``dst`` with the polygons of projected ``src`` that cross ±180 as the MultiPolygon of their parts either side.

    Transformed vertex by vertex, an edge across the antimeridian spans about 360 degrees of longitude: the polygon
    ran the long way round the globe (a Fiji building in EPSG:3460 was counted at longitude 0).
    """
    arr = np.asarray(dst.values)
    poly = np.flatnonzero(np.isin(shapely.get_type_id(arr), (3, 6)))
    jump = lon_jumps(arr[poly])
    if not jump.any():
        return dst
    from ._coverage_layers import lnglat_union
    from .errors import CoverageError

    out, src_arr = dst.copy(), np.asarray(src.values)
    for k in poly[jump]:
        try:
            out.iloc[k] = lnglat_union(gpd.GeoSeries([src_arr[k]], crs=src.crs))
        except CoverageError as err:
            why = str(err).replace("the area ", "", 1)
            raise InvalidInputError(f"{name} has a polygon at index {src.index[k]!r} that {why}") from None
    return out


def _check_round_trip(src: gpd.GeoSeries, dst: gpd.GeoSeries, name: str) -> None:
    """Raise where a coordinate does not survive the transform back: it is outside the CRS's domain.

    (EPSG:3857 y = 1e12 becomes latitude 90 without an error from the projection library.)
    """
    from pyproj import Transformer

    xy, owner = shapely.get_coordinates(np.asarray(src.values), return_index=True)
    if xy.size == 0:
        return
    ll = shapely.get_coordinates(np.asarray(dst.values))
    if ll.shape != xy.shape:  # pragma: no cover - to_crs keeps vertices
        return
    back = np.column_stack(Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(ll[:, 0], ll[:, 1]))
    with np.errstate(invalid="ignore"):
        bad_xy = ~np.isfinite(ll).all(axis=1) | ~(np.abs(back - xy) <= 1e-6 * (1.0 + np.abs(xy))).all(axis=1)
    if bad_xy.any():
        bad = np.zeros(len(src), bool)
        bad[np.unique(owner[bad_xy])] = True
        raise InvalidInputError(
            f"{name} has {int(bad.sum())} geometr(y/ies) with coordinates outside the domain of its CRS "
            f"({src.crs.to_string()}): they do not survive the transform to longitude/latitude and back, at "
            f"index {describe_labels(src.index, bad)}; are the coordinates in the CRS that is set?"
        )


def line_mask(geoms: gpd.GeoSeries) -> np.ndarray:
    """True where a geometry is a LineString, LinearRing or MultiLineString.

    These are the rows counted as roads when a frame of POIs and roads is split by geometry
    (``embed(features=gdf)``, ``geos2vec features``, dask frames).
    """
    return np.isin(shapely.get_type_id(np.asarray(geoms.values)), (1, 2, 5))


def missing_mask(geoms: gpd.GeoSeries) -> np.ndarray:
    """True where a geometry is missing: None/NaN, empty, or ``POINT (NaN NaN)``.

    ``points_from_xy`` makes ``POINT (NaN NaN)`` of a missing location; a point with only one NaN coordinate is
    not missing but broken (the coordinate checks name it).
    """
    arr = np.asarray(geoms.values)
    missing = np.asarray(geoms.isna()) | np.asarray(shapely.is_empty(arr))
    point = ~missing & (shapely.get_type_id(arr) == 0)
    if point.any():
        missing[point] = np.isnan(shapely.get_x(arr[point])) & np.isnan(shapely.get_y(arr[point]))
    return missing


def check_missing(geoms: gpd.GeoSeries, errors: str, name: str = "input",
                  coerce: str | None = "get <NA> for those rows") -> np.ndarray:
    """Raise on missing/empty geometries unless ``errors='coerce'``; return the mask.

    ``coerce`` says what ``errors='coerce'`` does for the caller, or is None where the caller has no such option
    (the message then only says how to drop them).
    """
    if errors not in ("raise", "coerce"):
        raise InvalidInputError(f"errors must be 'raise' or 'coerce', got {errors!r}")
    missing = missing_mask(geoms)
    if missing.any() and errors == "raise":
        fix = "gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]"
        raise InvalidInputError(
            f"{name} has {int(missing.sum())} missing or empty geometries at index "
            f"{describe_labels(geoms.index, missing)}; drop them ({fix})"
            + ("" if coerce is None else f", or pass errors='coerce' to {coerce}")
        )
    return missing


def representative_lnglat(geoms: gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude of each geometry (EPSG:4326): its representative point.

    Points as they are; lines (LineString, LinearRing, MultiLineString) the point halfway along their length
    (:func:`line_midpoints`); others ``shapely.point_on_surface``. Missing or empty geometries give NaN.
    """
    arr = np.asarray(geoms.values)
    out = np.full((arr.size, 2), np.nan)
    ok = ~missing_mask(geoms)
    if ok.any():
        sub = arr[ok]
        kind = shapely.get_type_id(sub)
        is_point, is_line = kind == 0, np.isin(kind, (1, 2, 5))
        pts = np.where(is_point, sub, None)
        if is_line.any():
            pts[is_line] = line_midpoints(sub[is_line])
        other = ~is_point & ~is_line
        if other.any():
            pts[other] = shapely.point_on_surface(sub[other])
        out[ok] = shapely.get_coordinates(pts.astype(object))
    return out[:, 0], out[:, 1]


def line_midpoints(lines: np.ndarray) -> np.ndarray:
    """The point halfway along each (multi)line's length in longitude/latitude degrees, as shapely Points.

    Not ``shapely.point_on_surface``: for a line that is the vertex nearest its centroid, and the two ends of a
    two-vertex line tie, so which one won depended on rounding (the same road had another cell once transformed
    from a projected CRS). A segment across ±180 is taken the short way (179.99 -> -179.99 is 0.02 degrees long),
    the point wrapped back into [-180, 180).
    """
    lines = np.asarray(lines, dtype=object)
    out = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    parts, owner = shapely.get_parts(lines, return_index=True)
    xy = shapely.get_coordinates(lines)  # the parts' vertices, in order
    part_of = np.repeat(np.arange(parts.size), shapely.get_num_coordinates(parts))
    cum = lon_unwrap_shift(xy[:, 0], part_of)
    if cum is None:
        return out
    crossing = np.unique(owner[part_of[cum != 0]])  # a part that jumps moves the vertex after its first jump
    rows = np.isin(owner[part_of], crossing)
    fixed = shapely.set_coordinates(lines[crossing].copy(), xy[rows] + np.c_[cum[rows], np.zeros(rows.sum())])
    mid = shapely.get_coordinates(shapely.line_interpolate_point(fixed, 0.5, normalized=True))
    out[crossing] = shapely.points((mid[:, 0] + 180.0) % 360.0 - 180.0, mid[:, 1])
    return out
