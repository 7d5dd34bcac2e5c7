"""Rasterization: cell-feature tables as labelled xarray images, and back.

S2Vec treats each coarse "image" cell (level 8) as an image whose pixels
("patches") are its level-12 descendants, each pixel a feature vector. This
module turns the cell-indexed feature table of :mod:`geos2vec.features` (a
DataFrame indexed by uint64 cell ids, index named ``cell_id``, one numeric
column per channel) into an :class:`xarray.DataArray` with dims
``("image", "row", "col", "feature")`` and back:

* :func:`rasterize` - table -> images (NumPy, or dask with ``chunks=``),
* :func:`to_frame` - images -> table (exact inverse on observed pixels),
* :func:`windows` - training views at arbitrary offsets on the patch grid,
* :func:`augment` - the eight flips/rotations (dihedral group D4),
* :func:`to_zarr` / :func:`open_zarr` - storage that streams,
* :func:`plot_image` - one image, or a map of every image, for one channel.

Pixel order is the one :func:`geos2vec.cells.cell_to_rowcol` defines: row by
row from the top-left; north up and east right on the equatorial faces.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numba
import numpy as np

from ._numba_cache import ensure_once as _ensure_numba_cache

_ensure_numba_cache()  # before any @njit(cache=True): read-only installs use a temporary folder
import pandas as pd  # noqa: E402 - after the numba cache set-up
import xarray as xr  # noqa: E402 - after the numba cache set-up

from . import cells as _cells  # noqa: E402 - after the numba cache set-up

__all__ = [
    "rasterize",
    "to_frame",
    "image_cells",
    "windows",
    "augment",
    "to_zarr",
    "open_zarr",
    "mark_zarr_complete",
    "plot_image",
]

DIMS = ("image", "row", "col", "feature")
_VAR = "features"
_MAX_SHOWN = 5


# --------------------------------------------------------------------------- helpers
def _shown(values) -> str:
    values = list(values)
    more = f" and {len(values) - _MAX_SHOWN} more" if len(values) > _MAX_SHOWN else ""
    return f"{values[:_MAX_SHOWN]}{more}"


def _is_dask_frame(obj) -> bool:
    mod = type(obj).__module__ or ""
    return mod.startswith("dask") and hasattr(obj, "npartitions") and hasattr(obj, "columns")


def _channel_dtypes(features) -> tuple[list, list[np.dtype]]:
    """Channel names and their NumPy dtypes; raises on non-numeric channels."""
    names = list(features.columns)
    if len(names) == 0:
        raise ValueError("the feature table has no columns; it needs one numeric column per channel")
    if len(set(names)) != len(names):
        dup = pd.Index(names)[pd.Index(names).duplicated()].unique()
        raise ValueError(f"duplicate channel names {_shown(dup)}; channel names must be unique")
    dtypes = []
    for name, dt in zip(names, features.dtypes):
        if isinstance(dt, np.dtype):
            np_dt = dt
        else:  # pandas extension dtypes (Int64, Float64, boolean, ...)
            np_dt = getattr(dt, "numpy_dtype", None)
        if np_dt is None or np_dt.kind not in "biuf":
            raise TypeError(
                f"channel {name!r} has dtype {dt}; channels must be numeric (int, uint, float or bool). "
                "Encode categories as count columns (see geos2vec.features) or drop the column"
            )
        dtypes.append(np.dtype(np_dt))
    return names, dtypes


def _column(features: pd.DataFrame, name, np_dt: np.dtype) -> np.ndarray:
    col = features[name]
    if isinstance(col.dtype, np.dtype):
        return col.to_numpy()
    if col.isna().any():
        raise ValueError(
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
        raise ValueError(
            f"channel {name!r} ({values.dtype}) cannot be stored exactly in the common dtype {dtype} of "
            "the table; cast the channels to one dtype first (e.g. features.astype('float64'))"
        )


def _check_fill(fill, dtype: np.dtype):
    f = np.asarray(fill)
    if f.ndim != 0 or f.dtype.kind not in "biuf":
        raise TypeError(f"fill must be a number, got {fill!r}")
    with np.errstate(invalid="ignore", over="ignore"):
        cast = f.astype(dtype)
        same = bool(cast.astype(np.float64) == f.astype(np.float64)) or (
            bool(np.isnan(f.astype(np.float64))) and dtype.kind == "f"
        )
    if not same:
        raise ValueError(
            f"fill={fill!r} cannot be stored in the features' dtype {dtype}; use a fill value of that "
            "dtype (e.g. fill=0) or cast the table first (features.astype('float32') for fill=np.nan)"
        )
    return cast[()]


def _as_cell_index(index, what: str = "feature table") -> np.ndarray:
    if isinstance(index, pd.MultiIndex):
        raise TypeError(f"the {what} must have a flat index of uint64 cell ids (named 'cell_id'), "
                        "not a MultiIndex")
    values = np.asarray(index)
    if values.dtype == object or not np.issubdtype(values.dtype, np.integer):
        raise TypeError(
            f"the {what} must be indexed by uint64 S2 cell ids (index name 'cell_id'), got index dtype "
            f"{index.dtype}; set it with df.set_index('cell_id') or use geos2vec.cells.token_to_cell for "
            "tokens"
        )
    try:
        return _cells._as_cells(values)
    except ValueError as exc:
        raise ValueError(f"the {what} index: {exc}") from None


def _single_level(levels: np.ndarray, what: str) -> int:
    lo, hi = int(levels.min()), int(levels.max())
    if lo != hi:
        raise ValueError(
            f"the {what} mixes cell levels {lo}..{hi}; all cells must share one level (aggregate them "
            "to one level first, e.g. with geos2vec.cells.cell_to_parent and groupby().sum())"
        )
    return lo


def _range(cells: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """[range_min, range_max] of cell ids descending from ``cells`` (all at ``level``)."""
    lsb = np.uint64(1) << np.uint64(2 * (30 - level))
    return cells - (lsb - np.uint64(1)), cells + (lsb - np.uint64(1))


# --------------------------------------------------------------------------- image sets
def image_cells(area, level: int = 8) -> np.ndarray:
    """Image cells at ``level`` covering a polygon of interest (sorted uint64 ids).

    Every cell whose (lat/lng quadrilateral) polygon intersects ``area`` is
    returned. Candidates come from a grid of sample points over the area's
    bounding box, widened by one cell diagonal and spaced at less than half the
    smallest cell width at ``level``, so no intersecting cell is missed away
    from the poles.

    Parameters
    ----------
    area : shapely geometry, GeoSeries or GeoDataFrame
        Plain shapely geometries are taken as EPSG:4326 longitude/latitude;
        GeoPandas input is transformed from its CRS (a missing CRS raises).
    level : int, default 8
    """
    import geopandas as gpd
    import shapely

    from . import _geo

    level = _cells._check_level(level)
    if isinstance(area, (gpd.GeoSeries, gpd.GeoDataFrame)):
        geoms = _geo.to_wgs84(_geo.as_geoseries(area, "area"), "area")
        if _geo.missing_mask(geoms).all():
            raise ValueError("area has no non-empty geometry")
        geom = shapely.union_all(np.asarray(geoms.values)[~_geo.missing_mask(geoms)])
    elif isinstance(area, shapely.Geometry):
        geom = area
    else:
        raise TypeError(f"area must be a shapely geometry, GeoSeries or GeoDataFrame, not {type(area).__name__}")
    if geom.is_empty:
        raise ValueError("area is empty")
    x0, y0, x1, y1 = geom.bounds
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise ValueError(
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
    keep = shapely.intersects(polys, geom)
    return cand[keep]


def _resolve_images(data_images: np.ndarray, images, area, image_level: int) -> np.ndarray:
    """The image list: data images (default), an explicit list, or data + area covering."""
    if images is not None and area is not None:
        raise ValueError("give either images= or area=, not both")
    if images is None:
        out = np.unique(data_images)
        if area is not None:
            out = np.union1d(out, image_cells(area, image_level))
        return out
    imgs = _cells._as_cells(np.atleast_1d(np.asarray(images)))
    if imgs.ndim != 1:
        raise ValueError("images must be a 1-D sequence of image cell ids")
    if imgs.size == 0:
        raise ValueError("images is empty; pass at least one image cell (or images=None)")
    lev = np.asarray(_cells.get_level(imgs))
    if (lev != image_level).any():
        raise ValueError(f"images must be cells at image_level {image_level}; got levels "
                         f"{_shown(np.unique(lev))}")
    if np.unique(imgs).size != imgs.size:
        raise ValueError("images contains duplicate cell ids")
    missing = np.setdiff1d(np.unique(data_images), imgs)
    if missing.size:
        raise ValueError(
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


# --------------------------------------------------------------------------- kernels
@numba.njit(cache=True, nogil=True)
def _scatter_rows(out2d, pix, vals):  # pragma: no cover - numba
    """out2d[pix[i], :] = vals[i, :] in row blocks (cache friendly for C or F ``vals``)."""
    n, f = vals.shape
    block = 256
    for start in range(0, n, block):
        stop = min(start + block, n)
        for k in range(f):
            for i in range(start, stop):
                out2d[pix[i], k] = vals[i, k]


def _fill_pixels(out2d: np.ndarray, pix: np.ndarray, features: pd.DataFrame, names, dtypes, dtype) -> None:
    """Write every row of ``features`` to ``out2d[pix]`` without copying the whole table."""
    uniform = all(dt == dtype for dt in dtypes) and all(isinstance(dt, np.dtype) for dt in features.dtypes)
    if uniform:
        vals = features.to_numpy(copy=False)  # a view for a single-block frame
        if vals.dtype != dtype:  # pragma: no cover - defensive
            vals = vals.astype(dtype)
        _scatter_rows(out2d, pix, vals)
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


# --------------------------------------------------------------------------- rasterize
def rasterize(features, *, image_level: int = 8, patch_level: int | None = None, fill=0, images=None,
              area=None, chunks=None) -> xr.DataArray:
    """Cell-feature table -> images: one image per coarse cell, one pixel per fine cell.

    Parameters
    ----------
    features : pandas.DataFrame or dask.dataframe.DataFrame
        Indexed by uint64 S2 cell ids (index name ``cell_id``), all at one
        level, unique; one numeric column per channel (int, uint, float, bool
        or nullable pandas numbers without ``<NA>``).
    image_level : int, default 8
        Level of the image cells.
    patch_level : int, optional
        Level of the pixels; defaults to (and must equal) the level of the
        table's cells. ``patch_level - image_level = g`` gives ``2**g`` pixels
        per side (S2Vec: 12 - 8 = 4, 16 x 16).
    fill : number, default 0
        Value of pixels without a row in the table (``observed`` is False
        there, whatever the fill). Must fit the output dtype (``np.nan`` needs
        float channels).
    images : array_like of uint64, optional
        Exactly these image cells, in this order. Rows of the table outside
        them raise (nothing is dropped silently). Default: every image cell
        holding at least one row, sorted by cell id (Hilbert order).
    area : shapely geometry, GeoSeries or GeoDataFrame, optional
        Add every image cell intersecting this polygon of interest (see
        :func:`image_cells`) to the data images, so that empty surroundings
        are included.
    chunks : int or dict, optional
        Images per chunk (``int`` or ``{"image": int}``): the output is then a
        lazy dask array, built block by block on compute (for example while
        :func:`to_zarr` writes it). Dask DataFrame input is always lazy
        (default about 128 MB per chunk) and needs a sorted index with known
        divisions.

    Returns
    -------
    xarray.DataArray
        Named ``features``, dims ``("image", "row", "col", "feature")``,
        coordinates ``image`` (uint64 image cells), ``token`` (on ``image``),
        ``feature`` (channel names), ``cell_id`` (image, row, col: each pixel's
        cell, uint64) and ``observed`` (image, row, col: bool: the pixel has a
        row in the table). When the table records its coverage
        (``count_features(..., coverage=...)``, :mod:`geos2vec.coverage`),
        also ``covered`` (image, row, col: the source has data there, so an
        unobserved covered pixel is known to be empty) and, when some channel
        has other coverage (roads of a venue source), ``available`` (image,
        row, col, feature). Its dtype is the
        table's when uniform (counts stay integers), else NumPy's common dtype
        (casts must be exact). ``attrs`` hold ``image_level``, ``patch_level``,
        ``fill`` and ``channel_dtypes`` (used by :func:`to_frame`).

    Raises
    ------
    TypeError
        Non-numeric channels, non-integer index, non-DataFrame input.
    ValueError
        Empty table (without ``images``/``area``), duplicate or invalid cell
        ids, mixed levels, ``patch_level`` not the cells' level, ``image_level``
        finer than the cells, rows outside ``images``, inexact casts, bad fill.
    """
    if _is_dask_frame(features):
        return _rasterize_dask(features, image_level=image_level, patch_level=patch_level, fill=fill,
                               images=images, area=area, chunks=chunks)
    if not isinstance(features, pd.DataFrame):
        if isinstance(features, pd.Series):
            raise TypeError("features must be a DataFrame (one column per channel); use series.to_frame()")
        raise TypeError(f"features must be a pandas (or dask) DataFrame indexed by cell_id, "
                        f"not {type(features).__name__}")
    names, dtypes = _channel_dtypes(features)
    cells = _as_cell_index(features.index)
    image_level = _cells._check_level(image_level, "image_level")
    if cells.size:
        level = _single_level(np.asarray(_cells.get_level(cells)), "feature table")
        if features.index.has_duplicates:
            dup = features.index[features.index.duplicated()].unique()
            raise ValueError(f"{dup.size} duplicate cell id(s) in the feature table (e.g. "
                             f"{_shown(_cells.cell_to_token(np.asarray(dup, dtype=np.uint64)))}); aggregate "
                             "them first (features.groupby(level=0).sum())")
    elif images is None and area is None:
        raise ValueError("the feature table is empty; pass images= or area= to rasterize empty images")
    else:
        level = None
    lay = _layout(cells, level, patch_level, image_level, images, area, dtypes, fill)
    patch_level, dtype, fill_value, imgs, n = lay.patch_level, lay.dtype, lay.fill_value, lay.images, lay.n
    cell_ids, observed, pos, pix = lay.cell_ids, lay.observed, lay.pos, lay.pix
    attrs = _attrs(image_level, patch_level, fill, dtypes)

    if chunks is None:
        out = np.full((imgs.size, n, n, len(names)), fill_value, dtype=dtype)
        _fill_pixels(out.reshape(-1, len(names)), pix, features, names, dtypes, dtype)
        return _add_coverage(_build_dataarray(out, imgs, names, cell_ids, observed, attrs), features, names)

    import dask.array as da

    step = _chunk_size(chunks, n, len(names), dtype)
    order = np.argsort(pos, kind="stable")
    sorted_pos = pos[order]

    def block(lo, hi):
        a, b = np.searchsorted(sorted_pos, [lo, hi])
        rows_idx = order[a:b]
        out = np.full((hi - lo, n, n, len(names)), fill_value, dtype=dtype)
        part = features.iloc[rows_idx]
        _fill_pixels(out.reshape(-1, len(names)), pix[rows_idx] - lo * n * n, part, names, dtypes, dtype)
        return out

    data = _lazy_blocks(block, imgs.size, step, n, len(names), dtype, da)
    return _add_coverage(_build_dataarray(data, imgs, names, cell_ids, observed, attrs), features, names)


def _add_coverage(out: xr.DataArray, features, names) -> xr.DataArray:
    """``covered`` (and, when channels differ, ``available``) from the table's coverage, if it has one."""
    from .coverage import covered_mask, has_coverage

    if not has_coverage(features):
        return out
    covered, available = covered_mask(np.asarray(out["cell_id"].values), features, names)
    out = out.assign_coords(covered=(("image", "row", "col"), covered))
    if available is not None:
        out = out.assign_coords(available=(DIMS, available))
    return out


def _resolve_patch_level(patch_level, level, image_level) -> int:
    if patch_level is None:
        if level is None:
            raise ValueError("patch_level is required when the table is empty")
        patch_level = level
    patch_level = _cells._check_level(patch_level, "patch_level")
    if level is not None and level != patch_level:
        raise ValueError(
            f"the table's cells are at level {level}, not patch_level {patch_level}; aggregate them with "
            "geos2vec.cells.cell_to_parent + groupby().sum(), or leave patch_level=None"
        )
    if patch_level < image_level:
        raise ValueError(f"image_level {image_level} is finer than patch_level {patch_level}; images must "
                         "be coarser than their pixels")
    if patch_level - image_level > 12:
        raise ValueError(f"patch_level - image_level = {patch_level - image_level} gives images of "
                         f"{1 << (patch_level - image_level)} pixels per side; use a gap of at most 12")
    return patch_level


def _attrs(image_level, patch_level, fill, dtypes) -> dict:
    f = np.asarray(fill).item()
    return {
        "image_level": int(image_level),
        "patch_level": int(patch_level),
        "fill": f if not (isinstance(f, float) and math.isnan(f)) else "nan",
        "channel_dtypes": [str(dt) for dt in dtypes],
    }


def _chunk_size(chunks, n, nfeat, dtype) -> int:
    if isinstance(chunks, dict):
        unknown = set(chunks) - {"image"}
        if unknown:
            raise ValueError(f"only the image dimension is chunked; got chunks for {sorted(unknown)}")
        chunks = chunks.get("image", "auto")
    if chunks == "auto":
        per_image = n * n * max(nfeat, 1) * np.dtype(dtype).itemsize
        return max(1, (128 * 2**20) // per_image)
    if isinstance(chunks, bool) or not isinstance(chunks, numbers.Integral) or chunks < 1:
        raise ValueError(f"chunks must be a positive number of images, 'auto' or {{'image': int}}, got {chunks!r}")
    return int(chunks)


def _lazy_blocks(block, nimg, step, n, nfeat, dtype, da):
    import dask

    blocks = []
    for lo in range(0, nimg, step):
        hi = min(lo + step, nimg)
        blocks.append(da.from_delayed(dask.delayed(block, pure=True)(lo, hi), shape=(hi - lo, n, n, nfeat),
                                      dtype=dtype))
    if not blocks:
        return da.empty((0, n, n, nfeat), dtype=dtype)
    return da.concatenate(blocks, axis=0)


class _Layout(NamedTuple):
    patch_level: int
    dtype: np.dtype
    fill_value: object
    images: np.ndarray      # image cell ids, in output order
    n: int                  # pixels per side
    cell_ids: np.ndarray    # (image, row, col) pixel cells
    observed: np.ndarray    # (image, row, col) bool
    pos: np.ndarray         # image position of each table row
    pix: np.ndarray         # flat pixel index of each table row


def _layout(cells, level, patch_level, image_level, images, area, dtypes, fill) -> _Layout:
    """Where every table row goes: the images, their pixel cells and the observed mask (pandas and dask)."""
    patch_level = _resolve_patch_level(patch_level, level, image_level)
    dtype = _common_dtype(dtypes)
    fill_value = _check_fill(fill, dtype)
    parents = _cells.cell_to_parent(cells, image_level)
    imgs = _resolve_images(parents, images, area, image_level)
    n = 1 << (patch_level - image_level)
    cell_ids = _pixel_cells(imgs, n, patch_level)
    rows, cols = _cells.cell_to_rowcol(cells, image_level)
    pos = _image_positions(parents, imgs)
    pix = (pos * n + rows) * n + cols
    observed = np.zeros(cell_ids.shape, dtype=bool)
    observed.reshape(-1)[pix] = True
    return _Layout(patch_level, dtype, fill_value, imgs, n, cell_ids, observed, pos, pix)


def _rasterize_dask(ddf, *, image_level, patch_level, fill, images, area, chunks) -> xr.DataArray:
    import dask.array as da

    names, dtypes = _channel_dtypes(ddf)
    if not ddf.known_divisions:
        raise ValueError(
            "a dask DataFrame must be sorted by cell_id with known divisions, so that each image chunk "
            "reads only its partitions; call ddf = ddf.reset_index().set_index('cell_id') (or read parquet "
            "with calculate_divisions=True)"
        )
    image_level = _cells._check_level(image_level, "image_level")
    cells = _as_cell_index(ddf.index.compute())  # 8 bytes per cell: the index alone
    if cells.size == 0 and images is None and area is None:
        raise ValueError("the feature table is empty; pass images= or area= to rasterize empty images")
    level = _single_level(np.asarray(_cells.get_level(cells)), "feature table") if cells.size else None
    if np.unique(cells).size != cells.size:
        raise ValueError("duplicate cell ids in the feature table; aggregate them first")
    lay = _layout(cells, level, patch_level, image_level, images, area, dtypes, fill)
    patch_level, dtype, fill_value, imgs, n = lay.patch_level, lay.dtype, lay.fill_value, lay.images, lay.n
    cell_ids, observed = lay.cell_ids, lay.observed
    step = _chunk_size("auto" if chunks is None else chunks, n, len(names), dtype)
    lo_ids, hi_ids = _range(imgs, image_level)

    def block(lo, hi):
        a, b = lo_ids[lo:hi].min(), hi_ids[lo:hi].max()
        part = ddf.loc[a:b].compute()
        part = part[part.index.isin(cell_ids[lo:hi].ravel())]  # image sets need not be contiguous
        pcells = _as_cell_index(part.index)
        out = np.full((hi - lo, n, n, len(names)), fill_value, dtype=dtype)
        if pcells.size:
            ppos = _image_positions(_cells.cell_to_parent(pcells, image_level), imgs[lo:hi])
            r, c = _cells.cell_to_rowcol(pcells, image_level)
            _fill_pixels(out.reshape(-1, len(names)), (ppos * n + r) * n + c, part, names, dtypes, dtype)
        return out

    data = _lazy_blocks(block, imgs.size, step, n, len(names), dtype, da)
    return _build_dataarray(data, imgs, names, cell_ids, observed, _attrs(image_level, patch_level, fill, dtypes))


# --------------------------------------------------------------------------- inverse
def to_frame(da: xr.DataArray) -> pd.DataFrame:
    """Images -> cell-feature table: the observed pixels, exact inverse of :func:`rasterize`.

    Parameters
    ----------
    da : xarray.DataArray
        Output of :func:`rasterize`, :func:`windows`, :func:`augment` or
        :func:`open_zarr` (any first dimension; trailing dims ``row, col,
        feature``; coordinates ``cell_id`` and ``observed``).

    Returns
    -------
    pandas.DataFrame
        Indexed by uint64 ``cell_id``, sorted by cell id, one column per
        channel (column index named ``feature``, as in
        :func:`geos2vec.features.count_features`) with the dtypes the table had before :func:`rasterize` (from
        ``attrs["channel_dtypes"]``). A cell seen several times (overlapping
        windows) appears once. Dask-backed arrays are read chunk by chunk.
    """
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"to_frame needs an xarray.DataArray from rasterize, not {type(da).__name__}")
    if da.ndim != 4 or tuple(da.dims[1:]) != ("row", "col", "feature"):
        raise ValueError(f"expected dims (image|window, row, col, feature), got {da.dims}")
    for coord in ("cell_id", "observed"):
        if coord not in da.coords:
            raise ValueError(f"the DataArray has no {coord!r} coordinate; it must come from rasterize")
    names = list(da["feature"].values)
    nfeat = len(names)
    obs = np.asarray(da["observed"].values, dtype=bool)
    cids = np.asarray(da["cell_id"].values, dtype=np.uint64)
    chunks = da.chunks[0] if da.chunks is not None else (da.shape[0],)
    cell_parts, val_parts, start = [], [], 0
    for size in chunks:
        sl = slice(start, start + size)
        start += size
        o = obs[sl].reshape(-1)
        if not o.any():
            continue
        block = np.asarray(da.data[sl]).reshape(-1, nfeat)
        cell_parts.append(cids[sl].reshape(-1)[o])
        val_parts.append(block[o])
    if cell_parts:
        cell = np.concatenate(cell_parts)
        vals = np.concatenate(val_parts)
    else:
        cell = np.empty(0, dtype=np.uint64)
        vals = np.empty((0, nfeat), dtype=da.dtype)
    order = np.argsort(cell, kind="stable")
    cell, vals = cell[order], vals[order]
    if cell.size > 1:
        first = np.concatenate([[True], cell[1:] != cell[:-1]])
        if not first.all():
            cell, vals = cell[first], vals[first]
    index = pd.Index(cell, name="cell_id", dtype=np.uint64)
    dts = da.attrs.get("channel_dtypes")
    if dts is None or len(dts) != nfeat or all(np.dtype(d) == vals.dtype for d in dts):
        return pd.DataFrame(vals, index=index, columns=pd.Index(names, name="feature"), copy=False)
    out = pd.DataFrame({name: vals[:, k].astype(np.dtype(d)) for k, (name, d) in enumerate(zip(names, dts))},
                       index=index)
    out.columns.name = "feature"
    return out


# --------------------------------------------------------------------------- training views
def _dihedral(arr: np.ndarray, t: int, axes=(1, 2)) -> np.ndarray:
    """Transform ``t`` in 0..7: ``t % 4`` quarter turns counter-clockwise, then a left-right flip if ``t >= 4``."""
    out = np.rot90(arr, t % 4, axes=axes)
    if t >= 4:
        out = np.flip(out, axis=axes[1])
    return out


def augment(da: xr.DataArray, transforms=range(8)) -> xr.DataArray:
    """The eight flips/rotations (dihedral group D4) of every image or window.

    Augmentation for training on a small data set; not part of the S2Vec
    paper's recipe (off unless asked for). Transform ``t``: ``t % 4`` quarter
    turns counter-clockwise, then a left-right flip when ``t >= 4``; ``t = 0``
    is the identity. Pixel coordinates (``cell_id``, ``observed``, ``covered``, ``available``) move with
    the pixels, so :func:`to_frame` still maps every value to its cell.

    Returns
    -------
    xarray.DataArray
        First dimension ``len(transforms)`` times as long (transform-major:
        all of transform 0, then all of transform 1, ...), with a ``transform``
        coordinate on it.
    """
    ts = [int(t) for t in transforms]
    if not ts or any(t < 0 or t > 7 for t in ts):
        raise ValueError(f"transforms must be a non-empty subset of 0..7, got {list(transforms)}")
    if da.shape[1] != da.shape[2]:
        raise ValueError("augment needs square images or windows")
    dim0 = da.dims[0]
    values = np.asarray(da.values)
    cid = np.asarray(da["cell_id"].values)
    obs = np.asarray(da["observed"].values)
    data = np.concatenate([_dihedral(values, t) for t in ts])
    cids = np.concatenate([_dihedral(cid, t) for t in ts])
    obss = np.concatenate([_dihedral(obs, t) for t in ts])
    coords = {"feature": da["feature"].values, "cell_id": ((dim0, "row", "col"), cids),
              "observed": ((dim0, "row", "col"), obss),
              "transform": (dim0, np.repeat(np.asarray(ts, dtype=np.int8), da.shape[0]))}
    for name, dims in (("covered", (dim0, "row", "col")), ("available", (dim0, "row", "col", "feature"))):
        if name in da.coords:
            arr = np.asarray(da[name].transpose(*dims).values)
            coords[name] = (dims, np.concatenate([_dihedral(arr, t) for t in ts]))
    for name, c in da.coords.items():
        if c.dims == (dim0,) and name != "transform":
            coords[name] = (dim0, np.tile(np.asarray(c.values), len(ts)))
    return xr.DataArray(data, dims=da.dims, coords=coords, name=da.name, attrs=dict(da.attrs))


def windows(da: xr.DataArray, size: int = 16, stride: int | None = None, *, min_observed: int = 1,
            augment: bool = False) -> xr.DataArray:
    """Square training windows at arbitrary offsets on the patch-level grid.

    Images of one S2 face tile a common grid of patch-level cells (the frame of
    :func:`geos2vec.cells.cell_to_rowcol` extended over the face). Windows are
    placed on that grid with top-left corners at multiples of ``stride``,
    so they straddle neighbouring images instead of only coinciding with them
    (a few cities give many more training views).

    Face edges: a window never crosses an S2 face edge (the neighbouring face's
    grid is rotated against this one), and only windows whose every pixel lies
    in an image of ``da`` are produced; pixels of images that are in ``da``
    but hold no data are fill with ``observed=False``.

    Parameters
    ----------
    da : xarray.DataArray
        Output of :func:`rasterize` (NumPy-backed or small enough to load).
    size : int, default 16
        Pixels per side.
    stride : int, optional
        Step between window corners in pixels; default ``size // 2``.
    min_observed : int, default 1
        Keep windows with at least this many observed pixels.
    augment : bool, default False
        Also return the eight flips/rotations of each window (see
        :func:`augment`); off by default, as in the paper.

    Returns
    -------
    xarray.DataArray
        Dims ``("window", "row", "col", "feature")``; coordinates ``face``,
        ``row0``/``col0`` (top-left pixel on the face grid), ``cell_id``,
        ``observed``, ``covered``/``available`` when ``da`` has them (and
        ``transform`` with ``augment=True``).
    """
    if not isinstance(da, xr.DataArray) or da.dims != DIMS:
        raise TypeError(f"windows needs a DataArray from rasterize with dims {DIMS}")
    for name, v in (("size", size), ("stride", stride if stride is not None else 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    stride = size // 2 if stride is None else int(stride)
    stride = max(stride, 1)
    imgs = np.asarray(da["image"].values, dtype=np.uint64)
    n = da.shape[1]
    levels = np.asarray(_cells.get_level(imgs)) if imgs.size else np.array([0])
    ilev = int(levels.min())
    if imgs.size and (levels != ilev).any():
        raise ValueError("windows needs images of one level")
    if ilev > 29:
        raise ValueError("windows supports image levels up to 29")
    face, fi, fj = _cells.cell_to_face_ij(imgs)
    gr, gc = _cells._rowcol_from_ij(np.asarray(face), np.asarray(fi), np.asarray(fj), 1 << ilev)
    side = 1 << ilev
    keys = (np.asarray(face, dtype=np.int64) * side + gr) * side + gc
    korder = np.argsort(keys)
    skeys = keys[korder]
    # candidate corners: lattice points whose window touches an image
    span = np.arange(-((size - 1) // stride) - 1, n // stride + 2)
    r0 = (gr * n // stride)[:, None] + span[None, :]
    c0 = (gc * n // stride)[:, None] + span[None, :]
    rr = np.broadcast_to(r0[:, :, None], (imgs.size, span.size, span.size)) * stride
    cc = np.broadcast_to(c0[:, None, :], (imgs.size, span.size, span.size)) * stride
    ff = np.broadcast_to(np.asarray(face, dtype=np.int64)[:, None, None], rr.shape)
    cand = np.unique(np.stack([ff.ravel(), rr.ravel(), cc.ravel()], axis=1), axis=0)
    total = side * n
    ok = (cand[:, 1] >= 0) & (cand[:, 2] >= 0) & (cand[:, 1] + size <= total) & (cand[:, 2] + size <= total)
    cand = cand[ok]
    off = np.arange(size)
    R = cand[:, 1][:, None, None] + off[None, :, None]
    C = cand[:, 2][:, None, None] + off[None, None, :]
    F = cand[:, 0][:, None, None]
    k = (F * side + R // n) * side + C // n
    p = np.searchsorted(skeys, k).clip(0, max(skeys.size - 1, 0))
    found = skeys[p] == k if skeys.size else np.zeros(k.shape, bool)
    full = found.all(axis=(1, 2))
    cand, p, R, C = cand[full], p[full], R[full], C[full]
    img_idx = korder[p]
    lr, lc = R % n, C % n
    obs = np.asarray(da["observed"].values)[img_idx, lr, lc]
    keep = obs.sum(axis=(1, 2)) >= min_observed
    cand, img_idx, lr, lc, obs = cand[keep], img_idx[keep], lr[keep], lc[keep], obs[keep]
    data = np.asarray(da.values)[img_idx, lr, lc]
    cid = np.asarray(da["cell_id"].values)[img_idx, lr, lc]
    coords = {"face": ("window", cand[:, 0].astype(np.int8)), "row0": ("window", cand[:, 1]),
              "col0": ("window", cand[:, 2]), "feature": da["feature"].values,
              "cell_id": (("window", "row", "col"), cid), "observed": (("window", "row", "col"), obs)}
    if "covered" in da.coords:
        coords["covered"] = (("window", "row", "col"), np.asarray(da["covered"].values)[img_idx, lr, lc])
    if "available" in da.coords:
        coords["available"] = (("window", "row", "col", "feature"),
                               np.asarray(da["available"].transpose(*DIMS).values)[img_idx, lr, lc])
    out = xr.DataArray(data, dims=("window", "row", "col", "feature"), coords=coords, name=da.name,
                       attrs={**da.attrs, "window_size": int(size), "window_stride": int(stride)})
    if augment:
        out = globals()["augment"](out)
    return out


# --------------------------------------------------------------------------- storage
def to_zarr(da: xr.DataArray, store, *, mode: str = "w", **kwargs):
    """Write a rasterized DataArray to a zarr store (dask arrays stream block by block).

    The ``token`` coordinate is not stored (it is recomputed by
    :func:`open_zarr`); everything else, attrs included, round-trips exactly.
    Extra keyword arguments go to :meth:`xarray.Dataset.to_zarr`.

    The store is marked complete only after every block is written: a write
    that is interrupted (killed, Ctrl-C, an error in a dask block) leaves a
    store that :func:`open_zarr` refuses to open, instead of images of zeros
    that would read as real empty cells. (With ``compute=False`` the marking is
    yours: call :func:`mark_zarr_complete` after computing.)
    """
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"to_zarr needs an xarray.DataArray, not {type(da).__name__}")
    names = [x.item() if isinstance(x, np.generic) else x for x in da["feature"].values]
    # channel names go to attrs (JSON): zarr 3 has no stable string dtype yet
    ds = da.drop_vars([c for c in ("token", "feature") if c in da.coords]).to_dataset(name=_VAR)
    ds[_VAR].attrs = {**da.attrs, "feature_names": names}
    ds.attrs = {_COMPLETE: False}
    out = ds.to_zarr(store, mode=mode, consolidated=False, **kwargs)
    if kwargs.get("compute", True):
        mark_zarr_complete(store)
    return out


_COMPLETE = "geos2vec_complete"


def mark_zarr_complete(store) -> None:
    """Mark a store written by :func:`to_zarr` as completely written (done by ``to_zarr`` itself)."""
    import zarr

    zarr.open_group(store, mode="r+").attrs[_COMPLETE] = True


def open_zarr(store, *, chunks=None) -> xr.DataArray:
    """Open a store written by :func:`to_zarr` lazily (dask), without loading the data.

    Parameters
    ----------
    store : str, path or zarr store
    chunks : dict, optional
        Dask chunks (e.g. ``{"image": 64}``); default: the stored chunks.
    """
    ds = xr.open_zarr(store, chunks={} if chunks is None else chunks, consolidated=False)
    if _VAR not in ds:
        raise ValueError(f"{store!r} holds no {_VAR!r} array; was it written by geos2vec.raster.to_zarr?")
    if ds.attrs.get(_COMPLETE) is False:  # stores of geos2vec 0.1 have no marker: they open as before
        from .errors import InvalidInputError

        raise InvalidInputError(f"{store!r} was not completely written (the write was interrupted, or "
                                "to_zarr(..., compute=False) was never marked complete); write it again")
    da = ds[_VAR]
    attrs = dict(da.attrs)
    names = attrs.pop("feature_names", None)
    if names is not None:
        da = da.assign_coords(feature=("feature", np.asarray(names, dtype=str if all(
            isinstance(x, str) for x in names) else object)))
    da.attrs = attrs
    for name in ("cell_id", "observed", "covered", "available"):
        if name in da.coords:
            da = da.assign_coords({name: da[name].load()})
    if "image" in da.dims:
        imgs = np.asarray(da["image"].values, dtype=np.uint64)
        da = da.assign_coords(token=("image", _cells.cell_to_token(imgs).astype(str) if imgs.size
                                     else np.array([], str)))
    return da


# --------------------------------------------------------------------------- plotting
def plot_image(da: xr.DataArray, channel=None, image=None, *, ax=None, cmap="viridis", log=True,
               outline=True, **kwargs):
    """Plot one channel: one image as pixels, or every image as a map.

    Parameters
    ----------
    da : xarray.DataArray
        Output of :func:`rasterize`.
    channel : str or list of str, optional
        Channel name(s); several are summed. Default: the sum of all channels.
    image : int, str or uint64, optional
        One image to show as a ``row x col`` picture: a position, a token or an
        image cell id. Default: a map of all images in longitude/latitude, each
        pixel drawn as its cell polygon (unobserved pixels light grey).
    ax : matplotlib Axes, optional
    log : bool, default True
        Logarithmic colour scale (``log1p``) for counts.
    outline : bool, default True
        Outline image cells on the map.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    if not isinstance(da, xr.DataArray) or da.dims != DIMS:
        raise TypeError(f"plot_image needs a DataArray from rasterize with dims {DIMS}")
    feats = list(da["feature"].values)
    if channel is None:
        chans, label = feats, "all channels"
    else:
        chans = [channel] if isinstance(channel, str) or not np.iterable(channel) else list(channel)
        unknown = [c for c in chans if c not in feats]
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; available: {_shown(feats)}")
        label = " + ".join(map(str, chans))
    if ax is None:
        _, ax = plt.subplots(figsize=kwargs.pop("figsize", (6, 6)))
    sel = da.sel(feature=chans)
    if image is not None:
        pos = _image_position(da, image)
        values = np.asarray(sel.isel(image=pos).sum("feature").values, dtype=float)
        obs = np.asarray(da["observed"].values[pos])
        shown = np.where(obs, np.log1p(np.clip(values, 0, None)) if log else values, np.nan)
        im = ax.imshow(shown, cmap=cmap, interpolation="nearest", **kwargs)
        ax.set_title(f"image {da['token'].values[pos]}: {label}")
        ax.set_xlabel("col")
        ax.set_ylabel("row")
        plt.colorbar(im, ax=ax, shrink=0.8, label=f"log1p({label})" if log else label)
        return ax
    obs = np.asarray(da["observed"].values).reshape(-1)
    cid = np.asarray(da["cell_id"].values).reshape(-1)
    values = np.asarray(sel.sum("feature").values, dtype=float).reshape(-1)
    bnd = _cells.cell_to_boundary(cid)[..., ::-1]  # (lng, lat)
    if (~obs).any():
        ax.add_collection(PolyCollection(bnd[~obs], facecolors="#eeeeee", edgecolors="none"))
    shown = np.log1p(np.clip(values[obs], 0, None)) if log else values[obs]
    pc = PolyCollection(bnd[obs], array=shown, cmap=cmap, edgecolors="none", **kwargs)
    ax.add_collection(pc)
    if outline:
        ib = _cells.cell_to_boundary(np.asarray(da["image"].values, dtype=np.uint64))[..., ::-1]
        ax.add_collection(PolyCollection(ib, facecolors="none", edgecolors="#555555", linewidths=0.6))
    ax.autoscale_view()
    lat_mid = float(np.mean(bnd[..., 1])) if bnd.size else 0.0
    ax.set_aspect(1.0 / max(math.cos(math.radians(lat_mid)), 1e-3))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(label)
    plt.colorbar(pc, ax=ax, shrink=0.8, label=f"log1p({label})" if log else label)
    return ax


def _image_position(da: xr.DataArray, image) -> int:
    imgs = np.asarray(da["image"].values, dtype=np.uint64)
    if isinstance(image, str):
        target = _cells.token_to_cell(image)
    elif isinstance(image, (int, np.integer)) and not isinstance(image, np.uint64) and 0 <= int(image) < imgs.size:
        return int(image)
    else:
        target = np.uint64(image)
    hit = np.flatnonzero(imgs == target)
    if hit.size == 0:
        raise ValueError(f"image {image!r} is not in the DataArray (give a position, token or image cell id)")
    return int(hit[0])
