"""What :meth:`geos2vec.normalize.FeatureStats.fit` accepts.

Tables, DataArrays and arrays as a matrix of values, channel names and per-value availability (missing is
not empty: unavailable values stay out of the statistics).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

from ._textfile import lookalike_names
from .errors import InvalidInputError, InvalidTypeError, check_ordered, foreign_frame

__all__ = ["as_matrix", "channel_columns", "channels_last", "lazy_blocks", "log1p_checked", "scaled"]


def lazy_blocks(table, block_bytes: int = 2**25):
    """In-memory blocks of a lazy (dask- or store-backed) DataArray along its first non-``feature`` dimension.

    ``None`` for anything else. A zarr store of a country's images is fitted block by block and the statistics
    merged (:meth:`~geos2vec.normalize.FeatureStats.merge`), instead of read whole as float64 at once.
    """
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a hard dependency
        return None
    if not isinstance(table, xr.DataArray) or isinstance(table.variable._data, np.ndarray) \
            or "feature" not in table.dims or table.ndim < 2:
        return None
    dim = next(d for d in table.dims if d != "feature")
    size = table.sizes[dim]
    step = max(1, int(block_bytes) // max(1, 8 * table.size // max(size, 1)))  # float64 values per block
    if size <= step:
        return None
    return (table.isel({dim: slice(a, a + step)}).load() for a in range(0, size, step))


def as_matrix(table, channels):
    """(n, F) float64 matrix, channel names and availability from a DataFrame, DataArray or ndarray.

    Availability: (n, F) bool, or None where every value counts.
    """
    _refuse_foreign(table)
    check_ordered(channels, "channels")  # the statistics' channel order
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a hard dependency
        xr = None
    if xr is not None and isinstance(table, xr.DataArray):
        if "feature" not in table.dims:
            raise InvalidInputError(f"a DataArray needs a 'feature' dimension (the channels); its dimensions are "
                                    f"{table.dims}")
        if "feature" in table.coords:
            names = [str(c) for c in table["feature"].values]
            if isinstance(channels, str):
                raise InvalidTypeError(f"channels must be a list of names, got the string {channels!r}")
            if channels is not None and [str(c) for c in channels] != names:
                raise InvalidInputError(
                    f"channels={list(channels)} differ from the DataArray's feature coordinate {names}; leave "
                    "channels out, or select the channels first (da.sel(feature=[...]))")
        else:
            names = _channel_names(channels, table.sizes["feature"])
        da = table.transpose(..., "feature")
        # 0/1 masks as booleans (an int8 ``observed`` indexed rows 0 and 1 over and over, silently)
        avail = _flags(table, "available", da.dims)
        pixel_dims = [d for d in da.dims if d != "feature"]
        rows = np.arange(int(np.prod([da.sizes[d] for d in pixel_dims])))
        if "observed" in table.coords:  # only real cells, never fill pixels
            rows = np.flatnonzero(_flags(table, "observed", pixel_dims))
        if "cell_id" in table.coords and set(table["cell_id"].dims) == set(pixel_dims):  # pixels in cell order: float
            cells = np.asarray(table["cell_id"].transpose(*pixel_dims)).ravel()[rows]  # sums that do not follow the
            rows = rows[np.argsort(cells, kind="stable")]                             # images' (windows') order
        values = np.asarray(da.values).reshape(-1, da.sizes["feature"])[rows]
        avail = None if avail is None else avail.reshape(-1, da.sizes["feature"])[rows]
        if values.dtype.kind not in "biuf":  # complex would lose its imaginary part
            raise InvalidTypeError(f"features must be real numbers, got dtype {values.dtype}")
        return values.astype(np.float64), names, avail
    if isinstance(table, pd.DataFrame):
        if isinstance(channels, str):
            raise InvalidTypeError(f"channels must be a list of column names, got the string {channels!r}")
        cols = list(table.columns) if channels is None else list(channels)
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise InvalidInputError(f"channels {missing} are not columns of the table")
        dup = sorted({str(c) for c in table.columns[table.columns.duplicated()] if c in cols}
                     | {str(c) for c in cols if cols.count(c) > 1})
        if dup:
            raise InvalidInputError(f"the table has duplicate channel columns {dup}; rename or drop them "
                                    "(e.g. table.loc[:, ~table.columns.duplicated()]) so each channel is one column")
        _one_level(table.index)
        if not table.index.is_monotonic_increasing:  # rows in index order: float sums that do not follow the
            with contextlib.suppress(TypeError):    # rows' order (a table re-read or shuffled gives the same stats)
                table = table.sort_index(kind="stable")
        sub = table[cols]
        bad = [c for c in cols if not pd.api.types.is_numeric_dtype(sub[c]) or pd.api.types.is_complex_dtype(sub[c])]
        if bad:
            raise InvalidTypeError(f"feature columns must be numeric; not numeric: {bad}")
        return sub.to_numpy(dtype=np.float64), [str(c) for c in cols], _table_availability(table, cols)
    arr = np.asarray(table)
    if arr.dtype.kind not in "biuf":  # booleans are 0/1, as in a table or DataArray; complex would lose its imaginary
        raise InvalidTypeError(f"features must be real numbers (or booleans), got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise InvalidInputError("features must be an array whose last axis holds the channels, got a scalar")
    arr = arr.reshape(-1, arr.shape[-1]).astype(np.float64)
    return arr, _channel_names(channels, arr.shape[1]), None


def _one_level(index) -> None:
    """Refuse a ``cell_id`` index of S2 cells of several levels: their counts are of cells of other sizes.

    ``pd.concat([table12, table14])`` was fitted without a word: a level-14 cell holds about 1/16 of a level-12
    cell's counts, so the mean and spread were of neither level (rasterize and combine_counts refuse such tables).
    """
    if index.name != "cell_id" or not len(index) or not pd.api.types.is_integer_dtype(index.dtype):
        return
    from ._cells_core import get_level, is_valid_cell

    ids = index.to_numpy().astype(np.uint64)
    if not np.asarray(is_valid_cell(ids)).all():
        return
    levels = np.unique(get_level(ids))
    if levels.size > 1:
        raise InvalidInputError(
            f"the table's cells are of levels {levels.tolist()}: counts of cells of different sizes have no common "
            f"mean and spread; fit the statistics of one level (table[geos2vec.get_level(table.index) == "
            f"{int(levels[0])}]), or sum finer cells into their parents (geos2vec.cell_to_parent + groupby().sum())")


def _flags(table, name, dims):
    """The coordinate ``name`` of ``table`` in ``dims`` order as booleans (None when absent); only 0/1 values."""
    if name not in table.coords:
        return None
    flags = np.asarray(table[name].transpose(*dims))
    if flags.dtype != bool:
        if flags.dtype.kind not in "biuf" or not np.isin(flags, (0, 1)).all():
            raise InvalidInputError(f"the {name!r} coordinate must be True/False (or 0/1), got dtype {flags.dtype} "
                                    "with other values; rebuild it as booleans")
        flags = flags.astype(bool)
    return flags


def _channel_names(channels, width):
    """Channel names for ``width`` channels: ``channels`` (checked) or ``f0, f1, ...``."""
    if channels is None:
        return [f"f{i}" for i in range(width)]
    if isinstance(channels, str):
        raise InvalidTypeError(f"channels must be a list of names, got the string {channels!r}")
    names = [str(c) for c in channels]
    if len(names) != width:
        raise InvalidInputError(f"{len(names)} channel names {names[:5]} for data with {width} channels in its last "
                                "axis; give one name per channel, in order")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise InvalidInputError(f"duplicate channel names {dup}; give each channel its own name")
    return names


def _table_availability(table, cols):
    """Per-value availability of a feature table whose coverage (``attrs["coverage"]``) lacks some channels."""
    from .coverage import covered_mask, get_coverage

    geom, missing = get_coverage(table)
    if geom is None or not (any(str(c) in missing for c in cols) or table.attrs["coverage"].get("layers")):
        return None
    from .cells import get_level, is_valid_cell

    msg = ("this table records channels its source lacks (attrs['coverage']), which needs its cell_id index (S2 "
           "cells of one level) to tell where; keep the count_features index (or drop attrs['coverage'])")
    try:
        cells = np.asarray(table.index, dtype=np.uint64)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(msg) from None
    if not is_valid_cell(cells).all() or len(np.unique(get_level(cells))) > 1:
        raise InvalidInputError(msg)
    return covered_mask(cells, table, cols)[1]


def channel_columns(df, channels) -> list:
    """The column labels of ``df`` that hold the fitted ``channels``, checked.

    ``fit`` names channels ``str(label)``, so a column is matched by its name as a string: integer labels
    (a frame made from an array) and tuples (MultiIndex columns) find their channels again.
    """
    by_name: dict = {}
    for label in df.columns:
        by_name.setdefault(str(label), []).append(label)
    missing = [c for c in channels if str(c) not in by_name]
    if missing:
        others = [n for n in by_name if n not in set(map(str, channels))]
        raise InvalidInputError(f"the table lacks channels the statistics were fitted on: {missing}."
                                + lookalike_names(missing, others, "fitted", "table"))
    dup = sorted({str(c) for c in channels if len(by_name[str(c)]) > 1})
    if dup:
        raise InvalidInputError(f"the table has duplicate columns {dup} (fitted channels) (labels compared as "
                                "strings); rename or drop them (e.g. table.loc[:, ~table.columns.duplicated()]) so "
                                "each channel is one column")
    labels = [by_name[str(c)][0] for c in channels]
    bad = [str(c) for c in labels if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise InvalidTypeError(f"channel columns must be numeric; not numeric: {bad[:5]}")
    return labels


def channels_last(x, channels):
    """A DataArray with a ``feature`` dimension as its fitted ``channels``, in their order, on the last axis.

    ``fit`` reads a DataArray's channels by name; ``transform`` read the last axis by position, so after
    ``da.sel(feature=[...])`` (another order) each channel was scaled with another channel's statistics, silently,
    and ``da.transpose("feature", ...)`` raised (or, were another axis as long, scaled the wrong axis). Anything
    else comes back unchanged.
    """
    _refuse_foreign(x)
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a hard dependency
        return x
    if not isinstance(x, xr.DataArray) or "feature" not in x.dims:
        return x
    x = x.transpose(..., "feature")
    if "feature" not in x.coords:
        return x
    names = [str(c) for c in x["feature"].values]
    missing = [c for c in channels if str(c) not in names]
    if missing:
        others = [n for n in names if n not in set(map(str, channels))]
        raise InvalidInputError(f"the DataArray lacks channels the statistics were fitted on: {missing[:5]} "
                                f"({len(missing)} of {len(channels)}); its feature coordinate must hold them all."
                                + lookalike_names(missing, others, "fitted", "DataArray"))
    dup = sorted({c for c in names if names.count(c) > 1 and c in set(map(str, channels))})
    if dup:
        raise InvalidInputError(f"the DataArray's feature coordinate repeats the fitted channels {dup[:5]}; select "
                                "each channel once (da.sel(feature=stats.channels))")
    if names == [str(c) for c in channels]:
        return x
    return x.isel(feature=[names.index(str(c)) for c in channels])


def labelled(x, xs, values):
    """``values`` (computed from ``xs = channels_last(x, ...)``) in the form ``x`` came in.

    A DataArray: ``x``'s dims in ``x``'s order and ``xs``'s coordinates (the channels in their fitted order),
    without attrs (as xarray's arithmetic drops them: a raster's ``channel_dtypes`` would be wrong). Anything
    else: the plain values.

    A DataArray came back as an unlabelled array in the fitted channel order, so ``da.copy(data=...)`` of a
    reordered ``da`` put each channel's values under another's name.
    """
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a hard dependency
        return values
    if not isinstance(x, xr.DataArray):
        return values
    out = xr.DataArray(np.asarray(values), dims=xs.dims, coords=xs.coords, name=x.name)
    return out.transpose(*x.dims)


def _refuse_foreign(table) -> None:
    """A polars / pyarrow table was read as a bare array: channels ``f0, f1, ...`` (a ``cell_id`` column one)."""
    hint = foreign_frame(table)
    if hint:
        raise InvalidTypeError(f"features must be a pandas DataFrame, an xarray DataArray or an array, got "
                               f"{type(table).__name__}{hint}; a pandas table's columns are its channels, so "
                               "move cell ids into its index (.set_index('cell_id'))")


def log1p_checked(x, names=None):
    """``log(1 + x)``, refusing values <= -1 (counts are >= 0), naming the channels (last axis) that hold them."""
    x = np.asarray(x)
    with np.errstate(invalid="ignore"):
        bad = (x <= -1).reshape(-1, x.shape[-1]).any(axis=0) if x.ndim else np.atleast_1d(x <= -1)
    if bad.any():
        where = [names[k] if names is not None else f"#{k}" for k in np.flatnonzero(bad)][:5]
        raise InvalidInputError(f"log1p normalization needs values > -1 (counts are >= 0); channel(s) {where} hold "
                                "values <= -1: drop those channels (signed aggregates such as a mean) or fit with "
                                "log1p=False")
    return np.log1p(x)


def scaled(p, v, mean, std, block_bytes: int = 2**22) -> np.ndarray:
    """``((p - mean) / std)`` over the last axis in ``v``'s float dtype (float64 for others), in blocks along axis 0.

    The same bits and layout as at once, but the float64 intermediate of float32 values is one block, not a copy
    of them all, and a ``p`` that is not ``v`` (``log1p``'s new array) of the result's dtype takes the result.
    """
    dtype = v.dtype if v.dtype.kind == "f" else np.dtype(np.float64)
    out = p if p is not v and p.dtype == dtype and p.flags.writeable else np.empty_like(p, dtype=dtype)
    step = p.shape[0] if p.ndim < 2 else max(1, block_bytes // (8 * max(1, p.size // max(1, p.shape[0]))))
    buf = np.empty((min(step, p.shape[0]),) + p.shape[1:], np.result_type(p, mean, std))
    for s in range(0, p.shape[0], step):
        block = np.subtract(p[s:s + step], mean, out=buf[:len(p[s:s + step])])
        out[s:s + step] = np.divide(block, std, out=block)
    return out
