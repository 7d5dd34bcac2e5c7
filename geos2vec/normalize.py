"""Feature-wise normalization (the S2Vec paper's global mean/variance scaling).

Optionally (``log1p=True``) counts are first compressed with ``log(1 + x)``: POI and road counts are
heavy-tailed, and on the shared cities a masked autoencoder on log counts beats the predict-the-mean
baseline clearly where one on raw counts barely does (docs/model.md). The bundled model uses it.

:class:`FeatureStats` is fitted once on a cell-feature table, saved next to a
model as JSON, and applied in the training / embedding pipelines. Partial
statistics of separate chunks (e.g. dask partitions) merge exactly with
Chan et al.'s parallel update, so the statistics of a data set that never fits
in memory are the same as those computed in one pass.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._jsonfile import write_text_atomic
from ._stats_inputs import as_matrix, channel_columns, channels_last, labelled, lazy_blocks, log1p_checked, scaled
from .errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import xarray as xr
    from numpy.typing import ArrayLike

    from ._typing import StrPath

__all__ = ["FeatureStats"]


@dataclass
class FeatureStats:
    """Per-channel count, mean and sum of squared deviations (``m2``).

    ``count`` is the number of rows, or, when some channels were unavailable in some rows (a source that lacks
    them, :mod:`geos2vec.coverage`), an int64 array of the rows that count for each channel.

    Examples
    --------
    >>> import pandas as pd
    >>> stats = FeatureStats.fit(pd.DataFrame({"cafe": [0, 2, 4], "road": [1, 1, 1]}))
    >>> stats.mean.tolist(), stats.var.tolist()
    ([2.0, 1.0], [2.6666666666666665, 0.0])
    """

    channels: list
    count: int | np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    eps: float = 1e-6
    meta: dict = field(default_factory=dict)
    log1p: bool = False

    def __post_init__(self):  # FeatureStats(2 channels, mean of 3) failed at transform with NumPy's broadcast error
        n = len(self.channels)
        if np.shape(self.mean) != (n,) or np.shape(self.m2) != (n,) or np.shape(self.count) not in ((), (n,)):
            raise InvalidInputError(f"FeatureStats: {n} channels but mean {np.shape(self.mean)}, m2 "
                                    f"{np.shape(self.m2)} and count {np.shape(self.count)}; give one mean and m2 per "
                                    "channel and count one number (or one per channel), or use FeatureStats.fit(table)")

    def __repr__(self) -> str:  # the dataclass repr listed every channel and value (50,000 characters for 5,000)
        from ._reprs import feature_stats_repr

        return feature_stats_repr(self)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, table: pd.DataFrame | xr.DataArray | ArrayLike, channels: Sequence[str] | None = None, *,
            log1p: bool = False) -> "FeatureStats":
        """Statistics of a table (DataFrame, DataArray with ``feature`` dim, or array).

        With ``log1p=True`` the statistics are those of ``log(1 + x)``, and
        :meth:`transform` applies the same compression first (values must then be > -1).

        Infinite values raise. NaN in a DataFrame is a missing value (as
        ``count_features`` gives a ``mean``/``min``/``max`` extra in a cell
        without values): it is left out of its channel's statistics, like an
        unavailable value (``count`` becomes per channel). NaN in a DataArray or
        array raises: images must be finite, as the model cannot read NaN.

        **Missing is not empty.** Values of a channel the source lacks are left out: in a table from
        ``count_features(..., coverage=...)`` whose coverage records missing channels (roads of Who's On First
        venues, the categories SimpleGeo does not distinguish), or in images with an ``available``
        coordinate. Each channel then has its own count (``count`` is an array). Zeros that stand for "no
        data" would otherwise pull a channel's mean down and shrink its spread, so that one real value
        elsewhere became an outlier of many standard deviations.

        Parameters
        ----------
        table : pandas.DataFrame, xarray.DataArray or array_like
            A cell-feature table (one column per channel; with a coverage that
            lacks channels, see above); a DataArray with a ``feature`` dimension
            (with an ``observed`` coordinate only the observed pixels count, with
            ``available`` only the available values; a lazy one, e.g. from ``open_zarr``, is read in blocks of
            32 MB and their statistics merged); or a numeric array whose
            last axis holds the channels. Booleans count as 0 and 1 in every form.
        channels : list of str, optional
            DataFrame: the columns to use (default: all, which must be numeric).
            DataArray without a ``feature`` coordinate, or array: the channel names,
            one per entry of the last axis (default ``f0, f1, ...``). DataArray
            with a ``feature`` coordinate: must equal it, if given.
        log1p : bool, default False
            Fit the statistics of ``log(1 + x)``.

        Returns
        -------
        FeatureStats
            ``count`` rows (per channel where availability differs), ``mean``
            and ``m2`` of shape ``(F,)``, float64 (zeros for a channel without
            rows).

        Raises
        ------
        InvalidInputError (a ValueError)
            Infinite values, NaN in a DataArray or array, channels that are not
            columns (or duplicate columns), a ``cell_id`` index of cells of several levels, channel names that
            do not match the width of the data, a DataArray without a ``feature`` dimension, or
            values <= -1 with ``log1p=True``.
        InvalidTypeError (a TypeError)
            Non-numeric (or complex) columns or values; ``channels`` given as one string or as a set (whose order
            changes from one process to the next: pass a list).
        """
        blocks = lazy_blocks(table)
        if blocks is not None:  # a lazy DataArray (a zarr store): block by block, merged exactly
            return cls.combine(cls.fit(block, channels, log1p=log1p) for block in blocks)
        values, names, avail = as_matrix(table, channels)
        nan = np.isnan(values)
        if np.isinf(values).any():
            bad = [names[k] for k in np.flatnonzero(np.isinf(values).any(axis=0))]
            raise InvalidInputError(f"features contain {int(np.isinf(values).sum())} infinite value(s) in channel(s) "
                                    f"{bad[:5]}; no count or aggregate is infinite: fix or drop those rows")
        if nan.any():
            bad = [names[k] for k in np.flatnonzero(nan.any(axis=0))]
            if not isinstance(table, pd.DataFrame):
                raise InvalidInputError(
                    f"features contain {int(nan.sum())} NaN value(s) in channel(s) {bad[:5]}; images and arrays must "
                    "be finite (the model cannot read NaN). Fit on the feature table instead (a DataFrame's NaN are "
                    "left out as missing), drop those channels (da.drop_sel(feature=[...])), or fill only values "
                    "whose true value you know")
            avail = ~nan if avail is None else avail & ~nan  # missing, not zero: left out of the statistics
        if log1p:
            values = log1p_checked(values, names)
        with np.errstate(over="ignore", invalid="ignore"):  # values near 1e200: said below, not warned
            if avail is not None:
                n = avail.sum(axis=0).astype(np.int64)
                mean = np.where(avail, values, 0.0).sum(axis=0) / np.maximum(n, 1)
                m2 = (np.where(avail, values - mean, 0.0) ** 2).sum(axis=0)
            else:
                n = int(values.shape[0])
                mean = values.mean(axis=0) if n else np.zeros(len(names))
                m2 = ((values - mean) ** 2).sum(axis=0) if n else np.zeros(len(names))
        big = ~(np.isfinite(mean) & np.isfinite(m2))
        if big.any():
            raise InvalidInputError(f"the statistics of channel(s) {[names[k] for k in np.flatnonzero(big)][:5]} "
                                    "overflow float64 (values near 1e154 or beyond); fit with log1p=True, or rescale "
                                    "those channels")
        return cls(names, n, mean, m2, log1p=bool(log1p))

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Combine the statistics of two disjoint chunks (exact, order-independent up to rounding).

        Parameters
        ----------
        other : FeatureStats
            Statistics of another chunk, with the same channels (in the same order) and ``log1p``.

        Returns
        -------
        FeatureStats
            The statistics of both chunks together (a new object, with ``eps`` and ``meta`` of ``self``).

        Raises
        ------
        TypeError
            If ``other`` is not a FeatureStats.
        ValueError
            If the channels or the ``log1p`` settings differ.
        """
        if not isinstance(other, FeatureStats):
            raise InvalidTypeError(f"can only merge FeatureStats, got {type(other).__name__}")
        if list(self.channels) != list(other.channels):
            raise InvalidInputError(f"cannot merge statistics of different channels: {self.channels} vs "
                                    f"{other.channels}")
        if self.log1p != other.log1p:
            raise InvalidInputError("cannot merge statistics fitted with and without log1p")
        n = self.count + other.count
        if np.all(n == 0):
            return FeatureStats(list(self.channels), n, self.mean.copy(), self.m2.copy(), self.eps,
                                copy.deepcopy(self.meta), self.log1p)
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / np.maximum(n, 1))
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / np.maximum(n, 1))
        return FeatureStats(list(self.channels), n, mean, m2, self.eps, copy.deepcopy(self.meta), self.log1p)

    @classmethod
    def combine(cls, parts: Iterable[FeatureStats]) -> "FeatureStats":
        """Merge an iterable of partial statistics.

        Parameters
        ----------
        parts : iterable of FeatureStats
            Statistics of disjoint chunks, all with the same channels and ``log1p``.

        Returns
        -------
        FeatureStats
            The statistics of all chunks (:meth:`merge` applied left to right).

        Raises
        ------
        ValueError
            If ``parts`` is empty, or the parts do not match (see :meth:`merge`).
        """
        parts = list(parts)
        if not parts:
            raise InvalidInputError("no partial statistics to combine")
        out = parts[0]
        for p in parts[1:]:
            out = out.merge(p)
        return out

    # ------------------------------------------------------------------ values
    @property
    def var(self) -> np.ndarray:
        """Population variance per channel."""
        return self.m2 / np.maximum(self.count, 1)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation used for scaling (channels with zero variance scale by 1)."""
        std = np.sqrt(self.var)
        return np.where(std > self.eps, std, 1.0)

    def _check_width(self, x) -> np.ndarray:
        x = np.asarray(x)
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating) or x.dtype == bool):
            raise InvalidTypeError(f"feature values must be numeric, got dtype {x.dtype}")
        if x.ndim == 0:
            raise InvalidInputError(f"expected an array whose last axis holds the {len(self.channels)} channels, "
                                    "got a scalar")
        x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
        if x.shape[-1] != len(self.channels):
            raise InvalidInputError(f"expected {len(self.channels)} channels in the last axis, got {x.shape[-1]}")
        return x

    def prepare(self, x: ArrayLike) -> np.ndarray | ArrayLike:
        """The values the statistics are about: ``log1p(x)`` if fitted with ``log1p=True``, else ``x``.

        Parameters
        ----------
        x : array_like
            Feature values.

        Returns
        -------
        numpy.ndarray or object
            ``numpy.log1p(x)`` with ``log1p=True``, else ``x`` itself (unchanged, not copied).

        Raises
        ------
        ValueError
            With ``log1p=True``, if a value is <= -1.
        """
        return log1p_checked(x, self.channels) if self.log1p else x

    def transform(self, x: pd.DataFrame | ArrayLike) -> np.ndarray | pd.DataFrame | xr.DataArray:
        """``(prepare(x) - mean) / std`` over the last axis; DataFrames keep index and columns.

        Parameters
        ----------
        x : array_like, pandas.DataFrame or xarray.DataArray
            Array whose last axis holds the channels, in the fitted order; a
            DataFrame with (at least) the fitted channels as columns; or a DataArray
            whose ``feature`` coordinate holds them (read by name, in any order or axis:
            the result keeps ``x``'s dims, its channels in the fitted order).

        Returns
        -------
        numpy.ndarray, pandas.DataFrame or xarray.DataArray
            Normalized values of the shape of ``x``, in ``x``'s float dtype
            (float64 for other dtypes). A DataFrame (DataArray) comes back as
            one with ``x``'s index (dims and coordinates, no attrs) and only
            the fitted channels, in their fitted order.

        Raises
        ------
        ValueError
            If the last axis has the wrong length (or ``x`` is a scalar), a channel column is missing or
            duplicated, or (``log1p=True``) a value is <= -1.
        TypeError
            If the values (or channel columns) are not numeric.
        """
        if isinstance(x, pd.DataFrame):
            sub = x[channel_columns(x, self.channels)]
            return pd.DataFrame(self.transform(sub.to_numpy(np.float64)), x.index, sub.columns, copy=False)
        xs = channels_last(x, self.channels)  # a DataArray by channel name, as fit reads it
        v = self._check_width(xs)
        # in blocks, into log1p's new array: no float64 copy of float32 values, no copy of the result
        return labelled(x, xs, scaled(self.prepare(v), v, self.mean, self.std))

    def affine_to(self, other: "FeatureStats") -> tuple[np.ndarray, np.ndarray]:
        """``(scale, shift)`` per channel with ``other.transform(x) == self.transform(x) * scale + shift``.

        Both normalize ``prepare(x)`` affinely, so values (or predictions of them) move between the two units
        exactly, e.g. to score models normalized differently on one scale.

        Parameters
        ----------
        other : FeatureStats
            Statistics of the same channels, in the same order, with the same ``log1p``.

        Returns
        -------
        tuple of numpy.ndarray
            ``scale = self.std / other.std`` and ``shift = (self.mean - other.mean) / other.std``, shape ``(F,)``.

        Raises
        ------
        ValueError
            Other channels, another order or another ``log1p``.
        """
        if list(other.channels) != list(self.channels) or bool(other.log1p) != bool(self.log1p):
            raise InvalidInputError("the statistics must have the same channels, in the same order, and the same "
                                    f"log1p setting ({self.log1p}) to map values between their units")
        return self.std / other.std, (self.mean - other.mean) / other.std

    def inverse_transform(self, z: pd.DataFrame | ArrayLike) -> np.ndarray | pd.DataFrame | xr.DataArray:
        """Inverse of :meth:`transform`.

        Parameters
        ----------
        z : array_like, pandas.DataFrame or xarray.DataArray
            Normalized values, channels on the last axis (or as columns, or a DataArray's
            ``feature`` coordinate, read by name on any axis).

        Returns
        -------
        numpy.ndarray, pandas.DataFrame or xarray.DataArray
            Values in the original units (``expm1`` applied when fitted with
            ``log1p=True``), float64; a DataFrame (DataArray) keeps ``z``'s
            index (dims and coordinates) and holds the fitted channels.

        Raises
        ------
        ValueError
            If the last axis has the wrong length or a channel column is missing.
        """
        if isinstance(z, pd.DataFrame):
            sub = z[channel_columns(z, self.channels)]
            return pd.DataFrame(self.inverse_transform(sub.to_numpy(np.float64)), z.index, sub.columns, copy=False)
        zs = channels_last(z, self.channels)
        out = self._check_width(zs) * self.std + self.mean
        return labelled(z, zs, np.expm1(out, out=out) if self.log1p else out)

    def _check_columns(self, df: pd.DataFrame) -> list:
        """The labels of ``df``'s fitted channel columns (matched as strings), checked."""
        return channel_columns(df, self.channels)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """The statistics as a JSON-safe dict.

        Returns
        -------
        dict
            Keys ``channels``, ``count`` (an int, or a list of them per channel), ``mean``, ``m2`` (lists of
            float), ``eps``, ``meta`` and ``log1p``; :meth:`from_dict` reads it back.
        """
        count = np.asarray(self.count).tolist() if np.ndim(self.count) else int(self.count)
        return {"channels": [str(c) for c in self.channels], "count": count,
                "mean": self.mean.tolist(), "m2": self.m2.tolist(), "eps": self.eps, "meta": copy.deepcopy(self.meta),
                "log1p": bool(self.log1p)}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureStats":
        """Statistics from :meth:`to_dict` output, checked.

        Parameters
        ----------
        d : dict
            As :meth:`to_dict` returns (``eps``, ``meta`` and ``log1p`` are optional).

        Returns
        -------
        FeatureStats

        Raises
        ------
        InvalidInputError (a ValueError)
            If a key is missing, a value has the wrong type (``channels`` not a
            list of distinct strings, ``count`` not an integer or a list of them,
            ``mean``/``m2`` not lists of numbers, ``log1p`` not a bool, ``eps``
            not a finite number >= 0, ``meta`` not a dict), the shapes do not
            match the channels, ``count`` is below 1, or ``mean``/``m2`` are not
            finite (or ``m2`` is negative).
        """
        if not isinstance(d, dict):
            raise InvalidInputError(f"not a FeatureStats file: expected a JSON object, got {type(d).__name__}")
        missing = [k for k in ("channels", "count", "mean", "m2") if k not in d]
        if missing:
            raise InvalidInputError(f"not a FeatureStats file: missing key(s) {missing}")

        def is_int(v):
            return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

        def is_num(v):
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))

        channels, count, eps = d["channels"], d["count"], d.get("eps", 1e-6)
        problems = []
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            problems.append(f"channels must be a list of strings, got {channels!r:.80}")
        elif len(set(channels)) != len(channels):
            dup = sorted({c for c in channels if channels.count(c) > 1})
            problems.append(f"channels must be distinct, got duplicates {dup}")
        if not (is_int(count) or isinstance(count, list) and all(is_int(c) for c in count)):
            problems.append(f"count must be an integer or a list of integers, got {count!r:.80}")
        for key in ("mean", "m2"):
            if not isinstance(d[key], list) or not all(is_num(v) for v in d[key]):
                problems.append(f"{key} must be a list of numbers")
        if not is_num(eps) or not np.isfinite(eps) or eps < 0:
            problems.append(f"eps must be a finite number >= 0, got {eps!r}")
        if not isinstance(d.get("log1p", False), (bool, np.bool_)):
            problems.append(f"log1p must be true or false, got {d.get('log1p')!r}")
        if not isinstance(d.get("meta", {}), dict):
            problems.append(f"meta must be an object, got {type(d.get('meta')).__name__}")
        if problems:
            raise InvalidInputError("FeatureStats: " + "; ".join(problems) + "; the statistics file is corrupt")
        count = np.asarray(count, dtype=np.int64) if isinstance(count, list) else int(count)
        out = cls(list(channels), count, np.asarray(d["mean"], dtype=np.float64), np.asarray(d["m2"], dtype=np.float64),
                  float(eps), copy.deepcopy(d.get("meta", {})), bool(d.get("log1p", False)))
        bad_count = np.max(out.count) < 1 or np.min(out.count) < 0
        if bad_count or not np.isfinite(out.mean).all() or not np.isfinite(out.m2).all() or (out.m2 < 0).any():
            raise InvalidInputError("FeatureStats: count must be >= 1, mean and m2 finite and m2 (the sum of squared "
                                    "deviations) >= 0; the statistics file is corrupt")
        return out

    def save(self, path: StrPath) -> Path:
        """Write the statistics as JSON (exact: float64 round-trips through repr).

        Parameters
        ----------
        path : str or path-like
            The file to write (overwritten).

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        InvalidInputError (a ValueError)
            For statistics of no rows (``count == 0``): :meth:`load` would refuse the file.

        Notes
        -----
        The file is written under a temporary name in the same folder, then renamed over ``path``: an
        interrupted save leaves the previous file as it was.
        """
        if np.max(self.count) < 1:
            raise InvalidInputError("these statistics were fitted on no rows (count 0) and cannot be saved: a file "
                                    "of them would not load; fit them on a table with at least one row")
        return write_text_atomic(Path(path).expanduser(), json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: StrPath) -> "FeatureStats":
        """Statistics from a JSON file written by :meth:`save`, checked.

        Parameters
        ----------
        path : str or path-like
            A JSON file written by :meth:`save`.

        Returns
        -------
        FeatureStats

        Raises
        ------
        InvalidInputError (a ValueError)
            If the file is not a JSON object or fails the checks of :meth:`from_dict`.
        """
        from ._jsonfile import read_json_object

        return cls.from_dict(read_json_object(Path(path).expanduser()))  # not JSON: InvalidInputError naming it

    def __eq__(self, other):
        return (isinstance(other, FeatureStats) and list(self.channels) == list(other.channels)
                and np.array_equal(self.count, other.count) and np.array_equal(self.mean, other.mean)
                and np.array_equal(self.m2, other.m2) and self.log1p == other.log1p and self.eps == other.eps)
