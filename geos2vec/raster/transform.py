"""Table -> images (:func:`rasterize`, NumPy or dask) and back (:func:`to_frame`)."""

from __future__ import annotations

import json
import math
import numbers
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from .. import cells as _cells
from .._optional import require
from ..errors import InvalidInputError, InvalidTypeError
from ..provenance import flat_attrs, provenance
from ._common import (
    DIMS,
    _as_cell_index,
    _build_dataarray,
    _channel_dtypes,
    _check_fill,
    _common_dtype,
    _dask_table,
    _fill_pixels,
    _image_positions,
    _is_dask_frame,
    _one_image,
    _pixel_cells,
    _pixel_coord,
    _range,
    _recorded_dtypes,
    _resolve_images,
    _shown,
    _single_level,
)

if TYPE_CHECKING:
    import dask.dataframe as dd
    from numpy.typing import ArrayLike

    from .._typing import AreaLike

__all__ = ["rasterize", "to_frame"]


# --------------------------------------------------------------------------- rasterize
def rasterize(features: pd.DataFrame | dd.DataFrame, *, image_level: int = 8, patch_level: int | None = None,
              fill: float = 0, images: ArrayLike | None = None,
              area: AreaLike | None = None,
              chunks: int | dict[str, int] | None = None) -> xr.DataArray:
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
    area : shapely geometry, GeoSeries, GeoDataFrame or (min_lon, min_lat, max_lon, max_lat), optional
        Add every image cell intersecting this polygon of interest (a box in degrees, as ``read_osm`` takes; see
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
        ``fill``, ``channel_dtypes`` (one per channel) with ``channel_names``
        (the channels they belong to, as strings) and, with a coverage,
        ``coverage`` (the table's ``attrs["coverage"]`` as JSON), used by
        :func:`to_frame`.

    Raises
    ------
    TypeError
        Non-numeric channels, non-integer index, non-DataFrame input.
    ValueError
        Empty table (without ``images``/``area``), duplicate or invalid cell
        ids, mixed levels, ``patch_level`` not the cells' level, ``image_level``
        finer than the cells, rows outside ``images``, inexact casts, a bad
        fill value (a non-number fill is a ``TypeError``).
    """
    if _is_dask_frame(features):
        return _rasterize_dask(features, image_level=image_level, patch_level=patch_level, fill=fill,
                               images=images, area=area, chunks=chunks)
    if chunks is not None:  # before the layout is computed: not a bare "No module named 'dask'" at the end
        require("dask", what="rasterize(chunks=...)")
    if not isinstance(features, pd.DataFrame):
        if isinstance(features, pd.Series):
            raise InvalidTypeError("features must be a DataFrame (one column per channel); use series.to_frame()")
        raise InvalidTypeError(f"features must be a pandas (or dask) DataFrame indexed by cell_id, "
                               f"not {type(features).__name__}")
    names, dtypes = _channel_dtypes(features)
    cells = _as_cell_index(features.index)
    image_level = _cells._check_level(image_level, "image_level")
    if cells.size:
        level = _single_level(np.asarray(_cells.get_level(cells)), "feature table")
        if features.index.has_duplicates:
            dup = features.index[features.index.duplicated()].unique()
            raise InvalidInputError(f"{dup.size} duplicate cell id(s) in the feature table (e.g. "
                                    f"{_shown(_cells.cell_to_token(np.asarray(dup, dtype=np.uint64)))}); aggregate "
                                    "them first (features.groupby(level=0).sum())")
    elif images is None and area is None:
        raise InvalidInputError("the feature table is empty; pass images= or area= to rasterize empty images")
    else:
        level = None
    lay = _layout(cells, level, patch_level, image_level, images, area, dtypes, fill)
    patch_level, dtype, fill_value, imgs, n = lay.patch_level, lay.dtype, lay.fill_value, lay.images, lay.n
    cell_ids, observed, pos, pix = lay.cell_ids, lay.observed, lay.pos, lay.pix
    attrs = _attrs(image_level, patch_level, fill, names, dtypes)

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
    """``covered`` (and, when channels differ, ``available``) from the table's coverage, if it has one.

    The coverage itself goes to ``attrs["coverage"]`` (JSON, so that netCDF and zarr keep it), from which
    :func:`to_frame` gives it back to the table.
    """
    from ..coverage import covered_mask, has_coverage

    if not has_coverage(features):
        return out
    covered, available = covered_mask(np.asarray(out["cell_id"].values), features, names)
    out = out.assign_coords(covered=(("image", "row", "col"), covered))
    if available is not None:
        out = out.assign_coords(available=(DIMS, available))
    out.attrs["coverage"] = json.dumps(features.attrs["coverage"])
    return out


def _dask_coverage_table(ddf, cells: np.ndarray):
    """What :func:`_add_coverage` needs of a dask table, held in memory (its meta when it has no coverage).

    Its cells, its coverage and, for the channels with their own coverage or of an input layer
    (``attrs["coverage"]["layers"]``: beyond the coverage a cell has the channels of the layers it holds a count
    of), where they are non-zero (a cell with a count in a channel has that channel): one int8 flag per cell and
    such channel.
    """
    from ..coverage import get_coverage, has_coverage

    meta = ddf._meta
    if not has_coverage(meta):
        return meta
    _, channels = get_coverage(meta)
    wanted = set(channels) | {str(c) for chans in meta.attrs["coverage"].get("layers") or [] for c in chans}
    cols = [c for c in meta.columns if str(c) in wanted]
    nonzero = pd.DataFrame(np.zeros((cells.size, len(cols)), dtype=np.int8), columns=cols,
                           index=pd.Index(cells, dtype=np.uint64, name="cell_id"))
    if cols:
        rows = ddf[cols].map_partitions(_nonzero_rows, meta=nonzero.iloc[:0]).compute()
        nonzero.loc[rows.index] = rows.to_numpy()
    nonzero.attrs["coverage"] = meta.attrs["coverage"]
    return nonzero


def _nonzero_rows(part: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``part`` with a non-zero value (NaN is none), as int8 0/1 flags."""
    flags = np.nan_to_num(part.to_numpy(dtype=np.float64, na_value=np.nan)) != 0
    keep = flags.any(axis=1)
    return pd.DataFrame(flags[keep].astype(np.int8), index=part.index[keep], columns=part.columns)


def _resolve_patch_level(patch_level, level, image_level) -> int:
    if patch_level is None:
        if level is None:
            raise InvalidInputError("patch_level is required when the table is empty")
        patch_level = level
    patch_level = _cells._check_level(patch_level, "patch_level")
    if level is not None and level != patch_level:
        raise InvalidInputError(
            f"the table's cells are at level {level}, not patch_level {patch_level}; aggregate them with "
            "geos2vec.cells.cell_to_parent + groupby().sum(), or leave patch_level=None"
        )
    if patch_level < image_level:
        raise InvalidInputError(f"image_level {image_level} is finer than patch_level {patch_level}; images must "
                                "be coarser than their pixels")
    if patch_level - image_level > 12:
        raise InvalidInputError(f"patch_level - image_level = {patch_level - image_level} gives images of "
                                f"{1 << (patch_level - image_level)} pixels per side; use a gap of at most 12")
    return patch_level


def _attrs(image_level, patch_level, fill, names, dtypes) -> dict:
    f = np.asarray(fill).item()
    return {
        **flat_attrs(provenance(stage="rasterize")),
        "image_level": int(image_level),
        "patch_level": int(patch_level),
        "fill": f if not (isinstance(f, float) and math.isnan(f)) else "nan",
        "channel_dtypes": [str(dt) for dt in dtypes],
        "channel_names": [str(name) for name in names],  # whose dtypes: attrs outlive da.sel(feature=[...])
    }


def _chunk_size(chunks, n, nfeat, dtype) -> int:
    if isinstance(chunks, dict):
        unknown = set(chunks) - {"image"}
        if unknown:
            raise InvalidInputError(f"only the image dimension is chunked; got chunks for {sorted(unknown)}")
        chunks = chunks.get("image", "auto")
    if chunks == "auto":
        per_image = n * n * max(nfeat, 1) * np.dtype(dtype).itemsize
        return max(1, (128 * 2**20) // per_image)
    if isinstance(chunks, bool) or not isinstance(chunks, numbers.Integral) or chunks < 1:
        raise InvalidInputError(f"chunks must be a positive number of images, 'auto' or {{'image': int}}, "
                                f"got {chunks!r}")
    return int(chunks)


def _lazy_blocks(block, nimg, step, n, nfeat, dtype, da, inputs=None):
    """Images ``[lo, hi)`` of each chunk from ``block(lo, hi, *inputs(lo, hi))``, a dask array.

    ``inputs`` gives the dask objects a chunk reads (its table partitions), so that they are graph dependencies:
    a ``compute()`` inside a task deadlocked on Python 3.11 (dask-expr lowers expressions in every worker thread,
    and ``functools.cached_property`` holds one lock per property across all instances).
    """
    import dask

    blocks = []
    for lo in range(0, nimg, step):
        hi = min(lo + step, nimg)
        args = () if inputs is None else inputs(lo, hi)
        blocks.append(da.from_delayed(dask.delayed(block, pure=True)(lo, hi, *args), shape=(hi - lo, n, n, nfeat),
                                      dtype=dtype))
    if not blocks:
        return da.empty((0, n, n, nfeat), dtype=dtype, chunks=-1)  # automatic chunks divide by zero here
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
    image_level = _cells._check_level(image_level, "image_level")
    # empty: said as such; with rows: known divisions, and a signed index reinterpreted as uint64
    ddf, cells = _dask_table(ddf, images, area)
    level = _single_level(np.asarray(_cells.get_level(cells)), "feature table") if cells.size else None
    if np.unique(cells).size != cells.size:
        raise InvalidInputError("duplicate cell ids in the feature table; aggregate them first")
    lay = _layout(cells, level, patch_level, image_level, images, area, dtypes, fill)
    patch_level, dtype, fill_value, imgs, n = lay.patch_level, lay.dtype, lay.fill_value, lay.images, lay.n
    cell_ids, observed = lay.cell_ids, lay.observed
    step = _chunk_size("auto" if chunks is None else chunks, n, len(names), dtype)
    lo_ids, hi_ids = _range(imgs, image_level)
    parts = ddf.to_delayed()
    # known divisions: the partitions whose cell range meets a chunk's images; else (none, or a table re-sorted
    # from signed ids whose divisions dask left unknown) every partition
    divisions = None if any(d is None for d in ddf.divisions) else [int(d) for d in ddf.divisions]

    def inputs(lo, hi):
        if divisions is None:
            return parts
        a, b = int(lo_ids[lo:hi].min()), int(hi_ids[lo:hi].max())
        return [p for i, p in enumerate(parts) if divisions[i] <= b and divisions[i + 1] >= a]

    def block(lo, hi, *frames):
        part = pd.concat(frames) if frames else ddf._meta
        part = part[part.index.isin(cell_ids[lo:hi].ravel())]  # image sets need not be contiguous
        pcells = _as_cell_index(part.index)
        out = np.full((hi - lo, n, n, len(names)), fill_value, dtype=dtype)
        if pcells.size:
            ppos = _image_positions(_cells.cell_to_parent(pcells, image_level), imgs[lo:hi])
            r, c = _cells.cell_to_rowcol(pcells, image_level)
            _fill_pixels(out.reshape(-1, len(names)), (ppos * n + r) * n + c, part, names, dtypes, dtype)
        return out

    data = _lazy_blocks(block, imgs.size, step, n, len(names), dtype, da, inputs)
    out = _build_dataarray(data, imgs, names, cell_ids, observed, _attrs(image_level, patch_level, fill, names, dtypes))
    return _add_coverage(out, _dask_coverage_table(ddf, cells), names)


# --------------------------------------------------------------------------- inverse
def to_frame(da: xr.DataArray) -> pd.DataFrame:
    """Images -> cell-feature table: the observed pixels, exact inverse of :func:`rasterize`.

    Parameters
    ----------
    da : xarray.DataArray
        Output of :func:`rasterize`, :func:`windows`, :func:`augment` or
        :func:`open_zarr` (any first dimension; trailing dims ``row, col,
        feature``; coordinates ``cell_id`` and ``observed``, one value per pixel),
        or one image of them (``da.isel(image=k)``: dims ``row, col, feature``).

    Returns
    -------
    pandas.DataFrame
        Indexed by uint64 ``cell_id``, sorted by cell id, one column per
        channel (column index named ``feature``, as in
        :func:`geos2vec.features.count_features`) with the dtypes the table had before :func:`rasterize` (from
        ``attrs["channel_dtypes"]``, looked up by channel name in ``attrs["channel_names"]``, so a subset or
        reorder such as ``da.sel(feature=[...])`` keeps them; where that keeps every value: after ``da / 2`` a
        count channel stays float; a channel without a recorded dtype, e.g. renamed, stays in the array's
        dtype) and, when ``da.attrs`` hold the table's
        coverage, that coverage in ``attrs["coverage"]`` (so missing channels stay
        missing downstream). A cell seen several times (overlapping
        windows) appears once. Dask-backed arrays are read chunk by chunk.

    Raises
    ------
    InvalidInputError
        Other dims, no ``cell_id``/``observed`` coordinate or one on other dims (``xr.concat`` along
        ``feature``), or a cell seen several times with different values (concatenated images).

    Warns
    -----
    CoverageWarning
        When ``da`` has a ``covered`` coordinate but no ``attrs["coverage"]``
        (the table's coverage is then unknown).
    """
    if not isinstance(da, xr.DataArray):
        raise InvalidTypeError(f"to_frame needs an xarray.DataArray from rasterize, not {type(da).__name__}")
    if da.ndim == 3 and set(da.dims) == {"row", "col", "feature"}:  # one image: da.isel(image=k)
        da = _one_image(da)
    if da.ndim != 4 or tuple(da.dims[1:]) != ("row", "col", "feature"):
        hint = "; transpose first: da.transpose(..., 'row', 'col', 'feature')" if da.ndim == 4 and {
            "row", "col", "feature"} <= set(da.dims) else ""
        raise InvalidInputError(f"expected dims (image|window, row, col, feature), got {da.dims}{hint}")
    for coord in ("cell_id", "observed"):
        if coord not in da.coords:
            raise InvalidInputError(f"the DataArray has no {coord!r} coordinate; it must come from rasterize")
    names = list(da["feature"].values)
    nfeat = len(names)
    pixel_dims = (da.dims[0], "row", "col")
    obs = _pixel_coord(da, "observed", pixel_dims).astype(bool)
    cids = _pixel_coord(da, "cell_id", pixel_dims).astype(np.uint64)
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
        vals = np.concatenate(val_parts) if len(val_parts) > 1 else val_parts[0]  # one chunk: no copy of it
    else:
        cell = np.empty(0, dtype=np.uint64)
        vals = np.empty((0, nfeat), dtype=da.dtype)
    del val_parts  # not held beside the sorted copy
    order = np.argsort(cell, kind="stable")
    cell, vals = cell[order], vals[order]
    if cell.size > 1:
        first = np.concatenate([[True], cell[1:] != cell[:-1]])
        if not first.all():
            _check_repeats(cell, vals, first)
            cell, vals = cell[first], vals[first]
    index = pd.Index(cell, name="cell_id", dtype=np.uint64)
    dts = _recorded_dtypes(da.attrs, names)
    if dts is None or all(d is None or d == vals.dtype for d in dts):
        out = pd.DataFrame(vals, index=index, columns=pd.Index(names, name="feature"), copy=False)
    else:  # only where exact: attrs outlive arithmetic (da / 2) and xr.concat
        out = pd.DataFrame({name: vals[:, k] if d is None else _cast_back(vals[:, k], d)
                            for k, (name, d) in enumerate(zip(names, dts))}, index=index)
        out.columns.name = "feature"
    return _with_coverage(out, da)


def _cast_back(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` in the channel's original ``dtype`` when that keeps every value, else as they are.

    xarray keeps attrs through ``da / 2``, ``np.log1p(da)`` and ``xr.concat``: a cast that changed values
    (0.5 -> 0) would be silent.
    """
    if values.dtype == dtype:
        return values
    with np.errstate(invalid="ignore", over="ignore"):
        cast = values.astype(dtype)
        exact = np.array_equal(cast.astype(values.dtype), values, equal_nan=values.dtype.kind == "f")
    return cast if exact else values


def _check_repeats(cell: np.ndarray, vals: np.ndarray, first: np.ndarray) -> None:
    """Raise when a cell seen several times (overlapping windows, concatenated images) has different values."""
    start = np.flatnonzero(first)[np.cumsum(first) - 1]  # each row's first row of its cell
    same = (vals == vals[start]) | ((vals != vals) & (vals[start] != vals[start]))  # NaN equals NaN
    bad = ~same.all(axis=1)
    if bad.any():
        shown = _shown(_cells.cell_to_token(np.unique(cell[bad])).tolist())
        raise InvalidInputError(
            f"{np.unique(cell[bad]).size} cell(s) appear in several images or windows with different values "
            f"(tokens {shown}; e.g. xr.concat of two rasterizations sharing an image): to_frame cannot tell which "
            "is right; combine the tables first (geos2vec.features.combine_counts, or groupby(level=0).sum()) and "
            "rasterize that")


def _with_coverage(table: pd.DataFrame, da: xr.DataArray) -> pd.DataFrame:
    """``table`` with the coverage :func:`rasterize` kept in ``da.attrs["coverage"]``, if any."""
    cov = da.attrs.get("coverage")
    if cov is None:
        if "covered" in da.coords:
            from .._stacklevel import warn
            from ..errors import CoverageWarning

            warn("to_frame: the images have a 'covered' coordinate but no attrs['coverage'], so the table's "
                 "coverage is unknown (every cell of its images counts as covered); give it back with "
                 "geos2vec.coverage.set_coverage", CoverageWarning)
        return table
    table.attrs["coverage"] = json.loads(cov) if isinstance(cov, str) else dict(cov)
    return table
