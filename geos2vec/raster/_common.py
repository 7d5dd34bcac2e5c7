"""Shared pieces of :mod:`geos2vec.raster`: dims, checks of tables and dtypes, image sets, filling pixels."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from .. import cells as _cells
from .._s2 import writable_view
from ..errors import InvalidInputError, InvalidTypeError
from ._kernels import scatter_rows

if TYPE_CHECKING:
    import shapely

    from .._typing import AreaLike


DIMS = ("image", "row", "col", "feature")
_VAR = "features"
_MAX_SHOWN = 5


# --------------------------------------------------------------------------- helpers
def _shown(values) -> str:
    values = list(values)
    more = f" and {len(values) - _MAX_SHOWN} more" if len(values) > _MAX_SHOWN else ""
    return f"{values[:_MAX_SHOWN]}{more}"


def _is_dask(obj) -> bool:
    """Whether ``obj`` is a dask collection (array, frame), without importing dask."""
    return (type(obj).__module__ or "").startswith("dask")


def _is_dask_frame(obj) -> bool:
    return _is_dask(obj) and hasattr(obj, "npartitions") and hasattr(obj, "columns")


def _pixel_coord(da: xr.DataArray, name: str, dims: tuple) -> np.ndarray:
    """The values of the pixel coordinate ``name`` (``cell_id``, ``observed``, ...) in ``dims`` order.

    Refuses a coordinate on other dims: ``xr.concat`` along ``feature`` of two rasterizations gives each
    channel its own ``cell_id``/``observed`` (dims ``(feature, image, row, col)``).
    """
    coord = da[name]
    if set(coord.dims) != set(dims):
        raise InvalidInputError(
            f"the {name!r} coordinate has dims {coord.dims}, expected {dims}: one value per pixel (did "
            "xr.concat along 'feature' join two rasterizations? Join the tables instead, e.g. "
            "a.join(b, how='outer').fillna(0), and rasterize that)")
    return np.asarray(coord.transpose(*dims).values)


def _one_image(da: xr.DataArray) -> xr.DataArray:
    """A single image, its image dimension dropped (``da.isel(image=k)``), as a stack of one image.

    The dimension comes back under its old name (``image``, or ``window`` for a window), with the scalar
    coordinate the selection left as its value, and the per-pixel coordinates (``cell_id``, ``observed``, ...)
    spread over it.
    """
    dim = "window" if "window" in da.coords and "image" not in da.coords else "image"
    da = da.transpose("row", "col", "feature").expand_dims(dim)
    return da.assign_coords({c: da[c].expand_dims(dim) for c in da.coords if set(da[c].dims) == {"row", "col"}})


def _channel_dtypes(features) -> tuple[list, list[np.dtype]]:
    """Channel names and their NumPy dtypes; raises on non-numeric channels."""
    names = list(features.columns)
    if len(names) == 0:
        raise InvalidInputError("the feature table has no columns; it needs one numeric column per channel")
    if len(set(names)) != len(names):
        dup = pd.Index(names)[pd.Index(names).duplicated()].unique()
        raise InvalidInputError(f"duplicate channel names {_shown(dup)}; channel names must be unique")
    dtypes = []
    for name, dt in zip(names, features.dtypes):
        if isinstance(dt, np.dtype):
            np_dt = dt
        else:  # pandas extension dtypes (Int64, Float64, boolean, ...)
            np_dt = getattr(dt, "numpy_dtype", None)
        if np_dt is None or np_dt.kind not in "biuf":
            raise InvalidTypeError(
                f"channel {name!r} has dtype {dt}; channels must be numeric (int, uint, float or bool). "
                "Encode categories as count columns (see geos2vec.features) or drop the column"
            )
        dtypes.append(np.dtype(np_dt))
    return names, dtypes


def _recorded_dtypes(attrs, names) -> list[np.dtype | None] | None:
    """The dtype :func:`rasterize` recorded for each of ``names`` (None: none recorded), or None for no attrs.

    ``attrs["channel_dtypes"]`` is positional and xarray keeps it through ``da.sel(feature=[...])``,
    ``da.isel(feature=...)`` and reorders, so each dtype is found by its channel's name in
    ``attrs["channel_names"]``. Arrays written before that attr existed: positional, only when there is one
    dtype per channel (a subset then gets none).
    """
    dts = attrs.get("channel_dtypes")
    if dts is None:
        return None
    dts = [dts] if isinstance(dts, str) else list(np.atleast_1d(dts))  # netCDF reads a 1-list back as a str
    keys = attrs.get("channel_names")
    if keys is None:
        return [np.dtype(str(d)) for d in dts] if len(dts) == len(names) else None
    keys = [str(k) for k in ([keys] if isinstance(keys, str) else np.atleast_1d(keys))]
    if len(keys) != len(dts) or len(set(keys)) != len(keys):
        return None
    by_name = dict(zip(keys, dts))
    return [np.dtype(str(by_name[str(n)])) if str(n) in by_name else None for n in names]


def _column(features: pd.DataFrame, name, np_dt: np.dtype) -> np.ndarray:
    col = features[name]
    if isinstance(col.dtype, np.dtype):
        return col.to_numpy()
    if col.isna().any():
        raise InvalidInputError(
            f"channel {name!r} has {int(col.isna().sum())} missing (<NA>) values; fill them "
            "(e.g. .fillna(0)) or cast the column to float so that they become NaN"
        )
    return col.to_numpy(dtype=np_dt)


def _common_dtype(dtypes: list[np.dtype]) -> np.dtype:
    return np.result_type(*dtypes)


def _check_exact_cast(values: np.ndarray, dtype: np.dtype, name) -> None:
    if values.dtype == dtype or values.dtype.kind == "b":
        return
    if values.dtype.kind == "f" and dtype.kind == "f" and dtype.itemsize >= values.dtype.itemsize:
        return
    back = values.astype(dtype).astype(values.dtype)
    if not np.array_equal(back, values, equal_nan=values.dtype.kind == "f"):
        raise InvalidInputError(
            f"channel {name!r} ({values.dtype}) cannot be stored exactly in the common dtype {dtype} of "
            "the table; cast the channels to one dtype first (e.g. features.astype('float64'))"
        )


def _check_fill(fill, dtype: np.dtype):
    f = np.asarray(fill)
    if f.ndim != 0 or f.dtype.kind not in "biuf":
        raise InvalidTypeError(f"fill must be a number, got {fill!r}")
    with np.errstate(invalid="ignore", over="ignore"):
        cast = f.astype(dtype)
        same = bool(cast.astype(np.float64) == f.astype(np.float64)) or (
            bool(np.isnan(f.astype(np.float64))) and dtype.kind == "f"
        )
    if not same:
        raise InvalidInputError(
            f"fill={fill!r} cannot be stored in the features' dtype {dtype}; use a fill value of that "
            "dtype (e.g. fill=0) or cast the table first (features.astype('float32') for fill=np.nan)"
        )
    return cast[()]


def _as_cell_index(index, what: str = "feature table") -> np.ndarray:
    if isinstance(index, pd.MultiIndex):
        raise InvalidTypeError(f"the {what} must have a flat index of uint64 cell ids (named 'cell_id'), "
                               "not a MultiIndex")
    values = np.asarray(index)
    if values.dtype == object or not np.issubdtype(values.dtype, np.integer):
        raise InvalidTypeError(
            f"the {what} must be indexed by uint64 S2 cell ids (index name 'cell_id'), got index dtype "
            f"{index.dtype}; set it with df.set_index('cell_id') or use geos2vec.cells.token_to_cell for "
            "tokens"
        )
    try:
        return _cells._as_cells(values)
    except ValueError as exc:
        # (a reset index, 0..n-1, read as cells: the message said which positions, not how to fix it)
        raise InvalidInputError(f"the {what} index: {exc}; index the table by its cell ids, e.g. "
                                "df.set_index('cell_id') (count_features tables are)") from None


def _dask_table(ddf, images, area):
    """``(ddf, cells)``: a dask feature table checked for lazy rasterizing, and its cell ids (computed once).

    An empty table is refused as in memory (without ``images``/``area`` there is nothing to rasterize) and
    otherwise needs no divisions (there is nothing to read; an empty frame has none, whatever is done to it).
    A table with rows needs known divisions, so that each image chunk reads only its partitions
    (chosen by uint64 division bounds): a signed int64 index is reinterpreted bit for bit, as in memory,
    and the frame re-indexed in uint64 order (ids of faces 4 and 5 are negative as int64).
    """
    cells = _as_cell_index(ddf.index.compute())  # 8 bytes per cell: the index alone
    if cells.size == 0:
        if images is None and area is None:
            raise InvalidInputError("the feature table is empty; pass images= or area= to rasterize empty images "
                                    "(no partition of the dask DataFrame has a row)")
        return ddf, cells
    name = ddf.index.name if ddf.index.name is not None else "index"
    if not ddf.known_divisions:
        raise InvalidInputError(
            "a dask DataFrame must be sorted by cell_id with known divisions, so that each image chunk "
            f"reads only its partitions; call ddf = ddf.reset_index().set_index({name!r}) (or read parquet "
            "with calculate_divisions=True)")
    if pd.api.types.is_signed_integer_dtype(ddf.index.dtype):
        divisions = np.asarray(ddf.divisions, dtype=np.int64).view(np.uint64)
        flat = ddf.reset_index()
        flat[name] = flat[name].map_partitions(_as_uint64, meta=(name, np.uint64))
        if (np.diff(divisions.astype(object)) >= 0).all():  # one sign throughout: the order stays, so do the parts
            ddf = flat.set_index(name, sorted=True, divisions=tuple(int(d) for d in divisions))
        else:  # the negative ids come after the others in uint64 order: sort again
            ddf = flat.set_index(name)
    return ddf, cells


def _as_uint64(ids: pd.Series) -> pd.Series:
    return pd.Series(ids.to_numpy(dtype=np.int64).view(np.uint64), index=ids.index, name=ids.name)


def _single_level(levels: np.ndarray, what: str) -> int:
    lo, hi = int(levels.min()), int(levels.max())
    if lo != hi:
        raise InvalidInputError(
            f"the {what} mixes cell levels {lo}..{hi}; all cells must share one level (aggregate them "
            "to one level first, e.g. with geos2vec.cells.cell_to_parent and groupby().sum())"
        )
    return lo


def _range(cells: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """[range_min, range_max] of cell ids descending from ``cells`` (all at ``level``)."""
    lsb = np.uint64(1) << np.uint64(2 * (30 - level))
    return cells - (lsb - np.uint64(1)), cells + (lsb - np.uint64(1))


# --------------------------------------------------------------------------- image sets
def _unwrap_xy(xy: np.ndarray) -> tuple[np.ndarray, float]:
    """Longitudes of a vertex chain shifted by multiples of 360 where consecutive ones jump over 180 degrees."""
    step = np.diff(xy[:, 0])
    shift = np.concatenate([[0.0], np.cumsum(np.where(np.abs(step) > 180.0, -360.0 * np.sign(step), 0.0))])
    out = xy.copy()
    out[:, 0] += shift
    return out, float(shift[-1])


def _hole_shift(exterior: np.ndarray, hole: np.ndarray) -> float:
    """The multiple of 360 degrees of longitude that puts an unwrapped hole inside its unwrapped exterior."""
    import shapely

    shell = shapely.Polygon(exterior)
    x, y = shapely.get_coordinates(shapely.Polygon(hole).representative_point())[0]
    nearest = np.round((exterior[:, 0].mean() - hole[:, 0].mean()) / 360.0)
    for k in (nearest, nearest - 1, nearest + 1, nearest - 2, nearest + 2):
        if shapely.contains_xy(shell, x + 360.0 * k, y):
            return 360.0 * k
    return 360.0 * nearest  # a hole outside its exterior (an invalid polygon): as near as it gets


def _unwrap_part(part: shapely.Geometry) -> shapely.Geometry:
    """One point, line or polygon in lon/lat, transformed from a projected CRS, unwrapped across ±180.

    An edge of a small projected area that crosses the antimeridian becomes two vertices about 360 degrees
    of longitude apart: it is taken the short way round (the vertices past it are shifted by ±360), and the
    part is then moved by a multiple of 360 so that its middle lies in [-180, 180).
    """
    import shapely
    from shapely import affinity

    if part.geom_type == "Polygon":
        rings = []
        for ring in (part.exterior, *part.interiors):
            xy, net = _unwrap_xy(shapely.get_coordinates(ring))
            if net != 0:  # goes once round the Earth in longitude: encloses a pole
                from .._polar_area import around_pole

                return around_pole(part)
            if rings:  # a hole: inside the exterior (its vertex mean may be over 180 degrees away from the hole)
                xy[:, 0] += _hole_shift(rings[0], xy)
            rings.append(xy)
        out = shapely.Polygon(rings[0], rings[1:])
    elif part.geom_type in ("LineString", "LinearRing"):
        out = shapely.LineString(_unwrap_xy(shapely.get_coordinates(part))[0])
    else:
        out = part
    x0, _, x1, _ = out.bounds
    return affinity.translate(out, xoff=-360.0 * np.floor(((x0 + x1) / 2 + 180.0) / 360.0))


def _unwrap_transformed(geoms: np.ndarray) -> shapely.Geometry:
    """The union of projected geometries transformed to lon/lat, each part unwrapped (:func:`_unwrap_part`)."""
    import shapely

    parts = shapely.get_parts(geoms)
    while (multi := shapely.get_type_id(parts) >= 4).any():  # multi-geometries and collections: their parts
        parts = np.concatenate([parts[~multi], shapely.get_parts(parts[multi])])
    return shapely.union_all([_unwrap_part(p) for p in parts if not p.is_empty])


def image_cells(area: AreaLike, level: int = 8) -> np.ndarray:
    """Image cells at ``level`` covering a polygon of interest (sorted uint64 ids).

    Every cell whose (lat/lng quadrilateral) polygon intersects ``area`` is
    returned. Candidates come from a grid of sample points over the area's
    bounding box, widened by one cell diagonal and spaced at less than half the
    smallest cell width at ``level``, so no intersecting cell is missed away
    from the poles.

    Areas across the antimeridian: a GeoPandas area in a projected CRS (e.g. EPSG:3832 or a UTM zone) is
    taken the short way across ±180 (its edges are densified in its CRS, and an edge whose ends lie more
    than 180 degrees of longitude apart crosses the antimeridian). In longitude/latitude (plain shapely
    geometries, geographic CRSs) the coordinates are read as they are, so give such an area with
    longitudes running past ±180 (e.g. ``shapely.box(179.5, -17.5, 180.5, -16.5)``), or split it at ±180.

    Parameters
    ----------
    area : shapely geometry, GeoSeries, GeoDataFrame or (min_lon, min_lat, max_lon, max_lat)
        A box in degrees, as :func:`geos2vec.io.read_osm` and :func:`geos2vec.coverage.as_coverage` take it.
        Plain shapely geometries are taken as EPSG:4326 longitude/latitude
        (longitudes within [-360, 360], at most 360 degrees apart);
        GeoPandas input is transformed from its CRS (a missing CRS raises).
    level : int, default 8
        Level of the image cells, 0-30.

    Returns
    -------
    numpy.ndarray of uint64
        Sorted, unique cell ids at ``level``.

    Raises
    ------
    ValueError
        If the area is empty (or every geometry is missing), its bounds are not
        longitude/latitude degrees, or a GeoPandas input has no CRS. (A projected area around a pole is the
        polar area it draws, closed along latitude ±90: :func:`geos2vec._polar_area.around_pole`.)
    TypeError
        If ``area`` is of another type.
    """
    import geopandas as gpd
    import shapely
    from shapely import affinity

    from .. import _geo

    level = _cells._check_level(level)
    projected = False
    if isinstance(area, (gpd.GeoSeries, gpd.GeoDataFrame)):
        geoms = _geo.as_geoseries(area, "area")
        geoms = geoms[~_geo.missing_mask(geoms)]
        if len(geoms) == 0:
            raise InvalidInputError("area has no non-empty geometry")
        projected = geoms.crs is not None and not geoms.crs.is_geographic
        if projected:  # short edges, so that only an edge across the antimeridian jumps by about 360 degrees
            x0, y0, x1, y1 = geoms.total_bounds
            step = max(math.hypot(x1 - x0, y1 - y0) / 64, 1e-9)  # small parts keep their vertices
            values = np.asarray(geoms.values).copy()
            real = shapely.length(values) > 0  # GEOS cannot segmentize a zero-length line or ring
            values[real] = shapely.segmentize(values[real], step)
            geoms = gpd.GeoSeries(values, index=geoms.index, crs=geoms.crs)
        geoms = _geo.to_wgs84(geoms, "area")
        values = np.asarray(geoms.values)
        geom = _unwrap_transformed(values) if projected else shapely.union_all(values)
    elif isinstance(area, shapely.Geometry):
        geom = area
    elif isinstance(area, (tuple, list, np.ndarray)) and np.ndim(area) == 1 and len(area) == 4:
        # a lon/lat box, as read_osm(area=...), download_osm and as_coverage take it (it was a TypeError here)
        try:
            x0, y0, x1, y1 = (float(v) for v in area)
        except (TypeError, ValueError):
            x0 = x1 = y0 = y1 = math.nan
        if not (np.isfinite([x0, y0, x1, y1]).all() and x0 <= x1 and y0 <= y1):
            raise InvalidInputError(f"an area box is (min_lon, min_lat, max_lon, max_lat) in degrees; got "
                                    f"{tuple(area)}")
        geom = shapely.box(x0, y0, x1, y1)
    else:
        raise InvalidTypeError(f"area must be a shapely geometry, GeoSeries, GeoDataFrame or a (min_lon, min_lat, "
                               f"max_lon, max_lat) box, not {type(area).__name__}")
    if geom.is_empty:
        raise InvalidInputError("area is empty")
    x0, y0, x1, y1 = geom.bounds
    # a projected area's parts each lie about [-180, 180) (_unwrap_part): parts either side of 180 may span more
    # than 360 degrees together
    if not (-360 <= x0 <= x1 <= 360 and (projected or x1 - x0 <= 360) and -90 <= y0 <= y1 <= 90):
        raise InvalidInputError(
            f"area bounds {geom.bounds} are not longitude/latitude degrees; pass a GeoSeries with its CRS "
            "(it is transformed) or a shapely geometry in EPSG:4326"
        )
    # S2 metrics (quadratic projection): min width 2*sqrt(2)/3 * 2^-level, max diagonal 2.438 * 2^-level rad
    min_width = math.degrees(2 * math.sqrt(2) / 3 / (1 << level))
    max_diag = math.degrees(2.438 / (1 << level))
    step = min_width / 2.5
    ya, yb = max(y0 - max_diag, -90.0), min(y1 + max_diag, 90.0)
    near_lat = 0.0 if ya <= 0 <= yb else min(abs(ya), abs(yb))
    far_lat = max(abs(ya), abs(yb))
    widen = max_diag / max(math.cos(math.radians(far_lat)), 1e-6)
    xa, xb = x0 - widen, x1 + widen
    if xb - xa >= 360 or far_lat > 89:
        xa, xb = -180.0, 180.0
    lat = np.arange(ya, yb + step, step).clip(-90, 90)
    lng_step = step / math.cos(math.radians(near_lat))
    lng = np.arange(xa, xb + lng_step, lng_step)
    lng = ((lng + 180.0) % 360.0) - 180.0
    glat, glng = np.meshgrid(lat, lng, indexing="ij")
    cand = np.unique(_cells.latlng_to_cell(glat.ravel(), glng.ravel(), level))
    polys = np.asarray(_cells.cell_polygons(cand).values)
    # cell polygons lie in [-180, 180] (those across the antimeridian past 180): compare the area and its
    # copies 360 degrees east and west where they reach that range
    pb = shapely.bounds(polys)
    keep = np.zeros(cand.size, bool)
    for shift in (-360.0, 0.0, 360.0):
        if x0 + shift <= pb[:, 2].max() and x1 + shift >= pb[:, 0].min():
            target = affinity.translate(geom, xoff=shift)
            shapely.prepare(target)
            keep |= shapely.intersects(polys, target)
    return cand[keep]


def _resolve_images(data_images: np.ndarray, images, area, image_level: int) -> np.ndarray:
    """The image list: data images (default), an explicit list, or data + area covering."""
    if images is not None and area is not None:
        raise InvalidInputError("give either images= or area=, not both")
    if images is None:
        out = np.unique(data_images)
        if area is not None:
            out = np.union1d(out, image_cells(area, image_level))
        return out
    imgs = np.atleast_1d(np.asarray(images))
    if imgs.size == 0:  # before the dtype check: NumPy makes [] a float64 array
        raise InvalidInputError("images is empty; pass at least one image cell (or images=None)")
    imgs = _cells._as_cells(imgs)
    if imgs.ndim != 1:
        raise InvalidInputError("images must be a 1-D sequence of image cell ids")
    lev = np.asarray(_cells.get_level(imgs))
    if (lev != image_level).any():
        raise InvalidInputError(f"images must be cells at image_level {image_level}; got levels "
                                f"{_shown(np.unique(lev))}")
    if np.unique(imgs).size != imgs.size:
        raise InvalidInputError("images contains duplicate cell ids")
    missing = np.setdiff1d(np.unique(data_images), imgs)
    if missing.size:
        raise InvalidInputError(
            f"{missing.size} image cell(s) holding data are not in images= (tokens "
            f"{_shown(_cells.cell_to_token(missing))}); nothing is dropped silently: filter the table "
            "first, or add them to images"
        )
    return imgs


def _image_positions(parents: np.ndarray, imgs: np.ndarray) -> np.ndarray:
    order = np.argsort(imgs, kind="stable")
    sorted_imgs = imgs[order]
    pos = np.searchsorted(sorted_imgs, parents)
    return order[pos]


def _fill_pixels(out2d: np.ndarray, pix: np.ndarray, features: pd.DataFrame, names, dtypes, dtype) -> None:
    """Write every row of ``features`` to ``out2d[pix]`` without copying the whole table."""
    uniform = all(dt == dtype for dt in dtypes) and all(isinstance(dt, np.dtype) for dt in features.dtypes)
    if uniform and np.dtype(dtype) != np.float16:  # numba has no float16 (NotImplementedError: float16)
        vals = features.to_numpy(copy=False)  # a view for a single-block frame
        if vals.dtype != dtype:  # pragma: no cover - defensive
            vals = vals.astype(dtype)
        scatter_rows(out2d, pix, writable_view(vals))  # one compiled signature for read-only frames too
        return
    for k, (name, dt) in enumerate(zip(names, dtypes)):
        col = _column(features, name, dt)
        _check_exact_cast(col, dtype, name)
        out2d[pix, k] = col


def _pixel_cells(imgs: np.ndarray, n: int, patch_level: int) -> np.ndarray:
    rows = np.arange(n).reshape(1, n, 1)
    cols = np.arange(n).reshape(1, 1, n)
    if imgs.size == 0:
        return np.empty((0, n, n), dtype=np.uint64)
    return _cells.rowcol_to_cell(imgs.reshape(-1, 1, 1), rows, cols, patch_level)


def _build_dataarray(data, imgs, names, cell_ids, observed, attrs) -> xr.DataArray:
    return xr.DataArray(
        data,
        dims=DIMS,
        coords={
            "image": ("image", imgs),
            "token": ("image", _cells.cell_to_token(imgs).astype(str) if imgs.size else np.array([], str)),
            "feature": ("feature", np.asarray(names, dtype=object if not all(isinstance(x, str) for x in names)
                                              else str)),
            "cell_id": (("image", "row", "col"), cell_ids),
            "observed": (("image", "row", "col"), observed),
        },
        name=_VAR,
        attrs=attrs,
    )
