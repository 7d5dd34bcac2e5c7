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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import xarray as xr
    from numpy.typing import ArrayLike

    from ._typing import StrPath

__all__ = ["FeatureStats"]


def _as_matrix(table, channels):
    """(n, F) float64 matrix, channel names and availability from a DataFrame, DataArray or ndarray.

    Availability: (n, F) bool, or None where every value counts.
    """
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a hard dependency
        xr = None
    if xr is not None and isinstance(table, xr.DataArray):
        if "feature" not in table.dims:
            raise ValueError("a DataArray needs a 'feature' dimension")
        names = [str(c) for c in table["feature"].values] if "feature" in table.coords else channels
        da = table.transpose(..., "feature")
        avail = np.asarray(table["available"].transpose(*da.dims)) if "available" in table.coords else None
        if "observed" in table.coords:  # only real cells, never fill pixels
            mask = np.asarray(table["observed"].transpose(*[d for d in da.dims if d != "feature"]))
            values = np.asarray(da.values)[mask]
            avail = None if avail is None else avail[mask]
        else:
            values = np.asarray(da.values).reshape(-1, da.sizes["feature"])
            avail = None if avail is None else avail.reshape(-1, da.sizes["feature"])
        return values.astype(np.float64), names, avail
    if isinstance(table, pd.DataFrame):
        cols = list(table.columns) if channels is None else list(channels)
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise ValueError(f"channels {missing} are not columns of the table")
        sub = table[cols]
        bad = [c for c in cols if not pd.api.types.is_numeric_dtype(sub[c])]
        if bad:
            raise TypeError(f"feature columns must be numeric; not numeric: {bad}")
        return sub.to_numpy(dtype=np.float64), [str(c) for c in cols], _table_availability(table, cols)
    arr = np.asarray(table)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"features must be numeric, got dtype {arr.dtype}")
    arr = arr.reshape(-1, arr.shape[-1]).astype(np.float64)
    names = list(channels) if channels is not None else [f"f{i}" for i in range(arr.shape[1])]
    return arr, names, None


def _table_availability(table, cols):
    """Per-value availability of a feature table whose coverage (``attrs["coverage"]``) lacks some channels."""
    from .coverage import covered_mask, get_coverage

    geom, missing = get_coverage(table)
    if geom is None or not any(str(c) in missing for c in cols):
        return None
    from .cells import get_level, is_valid_cell

    msg = ("this table records channels its source lacks (attrs['coverage']), which needs its cell_id index (S2 "
           "cells of one level) to tell where; keep the count_features index (or drop attrs['coverage'])")
    try:
        cells = np.asarray(table.index, dtype=np.uint64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(msg) from None
    if not is_valid_cell(cells).all() or len(np.unique(get_level(cells))) > 1:
        raise ValueError(msg)
    return covered_mask(cells, table, cols)[1]


def _log1p_checked(x):
    x = np.asarray(x)
    if x.size and np.nanmin(x) <= -1:
        raise ValueError("log1p normalization needs values > -1 (counts are >= 0)")
    return np.log1p(x)


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

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, table: pd.DataFrame | xr.DataArray | ArrayLike, channels: Sequence[str] | None = None, *,
            log1p: bool = False) -> "FeatureStats":
        """Statistics of a table (DataFrame, DataArray with ``feature`` dim, or array).

        With ``log1p=True`` the statistics are those of ``log(1 + x)``, and
        :meth:`transform` applies the same compression first (values must then be > -1).

        NaN or infinite values raise ``ValueError``: counts are never missing,
        and a NaN would poison every later normalized value.

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
            ``available`` only the available values); or a numeric array whose
            last axis holds the channels.
        channels : list of str, optional
            DataFrame: the columns to use (default: all, which must be numeric).
            DataArray without a ``feature`` coordinate, or array: the channel names
            (arrays default to ``f0, f1, ...``).
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
        ValueError
            NaN/inf values, channels that are not columns, a DataArray without
            a ``feature`` dimension, or values <= -1 with ``log1p=True``.
        TypeError
            Non-numeric columns or values.
        """
        values, names, avail = _as_matrix(table, channels)
        if not np.isfinite(values).all():
            raise ValueError("features contain NaN or infinite values; fill them (counts: 0) before fitting")
        if log1p:
            values = _log1p_checked(values)
        if avail is not None:
            n = avail.sum(axis=0).astype(np.int64)
            mean = np.where(avail, values, 0.0).sum(axis=0) / np.maximum(n, 1)
            m2 = (np.where(avail, values - mean, 0.0) ** 2).sum(axis=0)
            return cls(names, n, mean, m2, log1p=bool(log1p))
        n = values.shape[0]
        if n == 0:
            return cls(names, 0, np.zeros(len(names)), np.zeros(len(names)), log1p=bool(log1p))
        mean = values.mean(axis=0)
        m2 = ((values - mean) ** 2).sum(axis=0)
        return cls(names, int(n), mean, m2, log1p=bool(log1p))

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
        ValueError
            If the channels or the ``log1p`` settings differ.
        """
        if list(self.channels) != list(other.channels):
            raise ValueError(f"cannot merge statistics of different channels: {self.channels} vs {other.channels}")
        if self.log1p != other.log1p:
            raise ValueError("cannot merge statistics fitted with and without log1p")
        n = self.count + other.count
        if np.all(n == 0):
            return FeatureStats(list(self.channels), n, self.mean.copy(), self.m2.copy(), self.eps,
                                log1p=self.log1p)
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / np.maximum(n, 1))
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / np.maximum(n, 1))
        return FeatureStats(list(self.channels), n, mean, m2, self.eps, dict(self.meta), self.log1p)

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
            raise ValueError("no partial statistics to combine")
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
        x = np.asarray(x, dtype=np.float64) if not np.issubdtype(np.asarray(x).dtype, np.floating) else np.asarray(x)
        if x.shape[-1] != len(self.channels):
            raise ValueError(f"expected {len(self.channels)} channels in the last axis, got {x.shape[-1]}")
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
        return _log1p_checked(x) if self.log1p else x

    def transform(self, x: pd.DataFrame | ArrayLike) -> np.ndarray | pd.DataFrame:
        """``(prepare(x) - mean) / std`` over the last axis; DataFrames keep index and columns.

        Parameters
        ----------
        x : array_like or pandas.DataFrame
            Array whose last axis holds the channels, in the fitted order; or a
            DataFrame with (at least) the fitted channels as columns.

        Returns
        -------
        numpy.ndarray or pandas.DataFrame
            Normalized values of the shape of ``x``, in ``x``'s float dtype
            (float64 for other dtypes). A DataFrame comes back as a float64
            DataFrame with ``x``'s index and only the fitted channels, in
            their fitted order.

        Raises
        ------
        ValueError
            If the last axis has the wrong length, a channel column is missing,
            or (``log1p=True``) a value is <= -1.
        """
        if isinstance(x, pd.DataFrame):
            self._check_columns(x)
            return pd.DataFrame(self.transform(x[list(self.channels)].to_numpy(np.float64)),
                                index=x.index, columns=x[list(self.channels)].columns)
        x = self._check_width(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return ((self.prepare(x) - self.mean) / self.std).astype(dtype)

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
            raise ValueError("the statistics must have the same channels, in the same order, and the same log1p "
                             f"setting ({self.log1p}) to map values between their units")
        return self.std / other.std, (self.mean - other.mean) / other.std

    def inverse_transform(self, z: pd.DataFrame | ArrayLike) -> np.ndarray | pd.DataFrame:
        """Inverse of :meth:`transform`.

        Parameters
        ----------
        z : array_like or pandas.DataFrame
            Normalized values, channels on the last axis (or as columns).

        Returns
        -------
        numpy.ndarray or pandas.DataFrame
            Values in the original units (``expm1`` applied when fitted with
            ``log1p=True``), float64; a DataFrame keeps ``z``'s index and holds
            the fitted channels.

        Raises
        ------
        ValueError
            If the last axis has the wrong length or a channel column is missing.
        """
        if isinstance(z, pd.DataFrame):
            self._check_columns(z)
            return pd.DataFrame(self.inverse_transform(z[list(self.channels)].to_numpy(np.float64)),
                                index=z.index, columns=z[list(self.channels)].columns)
        z = self._check_width(z)
        out = z * self.std + self.mean
        return np.expm1(out) if self.log1p else out

    def _check_columns(self, df: pd.DataFrame):
        missing = [c for c in self.channels if c not in df.columns]
        if missing:
            raise ValueError(f"the table lacks channels the statistics were fitted on: {missing}")

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
                "mean": self.mean.tolist(), "m2": self.m2.tolist(), "eps": self.eps, "meta": self.meta,
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
        ValueError
            If a key is missing, the shapes do not match the channels, ``count``
            is below 1, or ``mean``/``m2`` are not finite (or ``m2`` is negative).
        """
        try:
            count = d["count"]
            count = np.asarray(count, dtype=np.int64) if isinstance(count, list) else int(count)
            out = cls(list(d["channels"]), count, np.asarray(d["mean"], dtype=np.float64),
                      np.asarray(d["m2"], dtype=np.float64), float(d.get("eps", 1e-6)), dict(d.get("meta", {})),
                      bool(d.get("log1p", False)))
        except KeyError as exc:
            raise ValueError(f"not a FeatureStats file: missing key {exc}") from None
        n = len(out.channels)
        if out.mean.shape != (n,) or out.m2.shape != (n,) or np.shape(out.count) not in ((), (n,)):
            raise ValueError(f"FeatureStats: {n} channels but mean {out.mean.shape}, m2 {out.m2.shape} and count "
                             f"{np.shape(out.count)}")
        bad_count = np.max(out.count) < 1 or np.min(out.count) < 0
        if bad_count or not np.isfinite(out.mean).all() or not np.isfinite(out.m2).all() or (out.m2 < 0).any():
            raise ValueError("FeatureStats: count must be >= 1, mean and m2 finite and m2 (the sum of squared "
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
        ValueError
            For statistics of no rows (``count == 0``): :meth:`load` would refuse the file.
        """
        if np.max(self.count) < 1:
            raise ValueError("these statistics were fitted on no rows (count 0) and cannot be saved: a file of "
                             "them would not load; fit them on a table with at least one row")
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

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
        ValueError
            If the file is not a JSON object or fails the checks of :meth:`from_dict`.
        """
        from ._jsonfile import read_json_object

        return cls.from_dict(read_json_object(path))

    def __eq__(self, other):
        return (isinstance(other, FeatureStats) and list(self.channels) == list(other.channels)
                and np.array_equal(self.count, other.count) and np.array_equal(self.mean, other.mean)
                and np.array_equal(self.m2, other.m2) and self.log1p == other.log1p)
