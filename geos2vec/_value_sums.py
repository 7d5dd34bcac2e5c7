"""Per-cell sums that add each cell's values in order of value: the same bits whatever order the rows come in.

``count_features`` (``sum`` / ``mean`` extras) and ``combine_counts`` (float channels) add a cell's values in
ascending order, so shuffled POIs or tables given in another order give the same sums. They did it with
``np.lexsort((values, cells))`` per column, then a sequential sum: one O(n log n) sort of every row per column.
:func:`sums_by_value` gives the same bits in one pass: the rows are grouped by cell (a counting sort, once for
all columns), and only each cell's few values are sorted, then added from ``0.0`` in that order, as
``np.bincount(cells, weights)`` adds the lexsorted rows (NaN sort last, as in NumPy; ``-0.0`` and ``0.0``
tie, and add up to the same bits in either order).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ._numba_cache import ensure_once as _ensure_numba_cache

_ensure_numba_cache()  # before any @njit(cache=True): read-only installs use a temporary folder


@nb.njit(cache=True)
def _sort(seg):
    """Sort ``seg`` in place, NaN last.

    By insertion when short: most cells hold a few values, and numba's sort costs ~0.3 us a call at any length.
    """
    if seg.size > 16:
        seg.sort()
        return
    for i in range(1, seg.size):
        x = seg[i]
        k = i - 1
        while k >= 0 and (seg[k] > x or (math.isnan(seg[k]) and not math.isnan(x))):
            seg[k + 1] = seg[k]
            k -= 1
        seg[k + 1] = x


@nb.njit(cache=True)
def _sums_kernel(dest, values, n_cells, skip_nan):
    n, n_cols = values.shape
    start = np.zeros(n_cells + 1, dtype=np.int64)
    for i in range(n):
        start[dest[i] + 1] += 1
    for c in range(n_cells):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    perm = np.empty(n, dtype=np.int64)
    for i in range(n):  # rows grouped by cell, each group in the rows' order
        perm[fill[dest[i]]] = i
        fill[dest[i]] += 1
    sums = np.zeros((n_cells, n_cols))
    counts = np.zeros((n_cells if skip_nan else 0, n_cols), dtype=np.int64)  # NaN kept: each row counts
    buf = np.empty(n)
    for c in range(n_cells):  # a cell's rows, each read whole: one pass over the rows for all columns
        size = start[c + 1] - start[c]
        if size == 1:  # most cells: nothing to sort
            r = perm[start[c]]
            for j in range(n_cols):
                x = values[r, j]
                if not (skip_nan and math.isnan(x)):
                    sums[c, j] = 0.0 + x
                    if skip_nan:
                        counts[c, j] = 1
            continue
        seg = buf[:size]
        for j in range(n_cols):
            for k in range(size):
                seg[k] = values[perm[start[c] + k], j]
            _sort(seg)  # ascending, NaN last
            acc = 0.0
            m = 0
            for k in range(size):
                if skip_nan and math.isnan(seg[k]):
                    break  # only NaN follow
                acc += seg[k]
                m += 1
            sums[c, j] = acc
            if skip_nan:
                counts[c, j] = m
    return sums, counts


def _writable(arr, dtype) -> np.ndarray:
    """``arr`` C-contiguous and writable, as ``dtype``: one compiled signature (read-only arrays compile another)."""
    out = np.ascontiguousarray(arr, dtype=dtype)
    return out if out.flags.writeable else out.copy()


def sums_by_value(dest: np.ndarray, values: np.ndarray, n_cells: int, *, skip_nan: bool):
    """Per-cell sums of each column of ``values``, each cell's values added in ascending order from ``0.0``.

    Parameters
    ----------
    dest : numpy.ndarray of int
        The cell (``0 .. n_cells - 1``) of each row.
    values : numpy.ndarray
        ``(n,)`` or ``(n, F)`` real values (summed as float64).
    n_cells : int
        Number of cells.
    skip_nan : bool
        Leave NaN out (counted neither); otherwise a NaN makes its cell's sum NaN.

    Returns
    -------
    sums : numpy.ndarray of float64
        ``(n_cells,)`` or ``(n_cells, F)``, ``0.0`` for cells without values.
    counts : numpy.ndarray of int64
        The number of values added, in the same shape (with ``skip_nan`` only; otherwise empty).
    """
    one = np.ndim(values) == 1
    vals = _writable(np.asarray(values)[:, None] if one else values, np.float64)
    sums, counts = _sums_kernel(_writable(dest, np.int64), vals, int(n_cells), bool(skip_nan))
    return (sums[:, 0], counts[:, 0]) if one else (sums, counts)


def cell_sums(dest: np.ndarray, values: np.ndarray, n_cells: int, *, mean: bool) -> np.ndarray:
    """``count_features``' ``sum`` (0 for cells without values) or ``mean`` (NaN there) extra, NaN left out.

    Parameters
    ----------
    dest : numpy.ndarray of int
        The cell of each value.
    values : numpy.ndarray of float
        The values.
    n_cells : int
        Number of cells.
    mean : bool
        The mean instead of the sum.

    Returns
    -------
    numpy.ndarray of float64, shape (n_cells,)
    """
    sums, counts = sums_by_value(dest, values, n_cells, skip_nan=True)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan) if mean else sums


def add_rows(dest: np.ndarray, values: np.ndarray, n_cells: int, by_value: np.ndarray) -> np.ndarray:
    """``combine_counts``' per-cell sums of the rows of ``values``, in its dtype; NaN kept.

    Parameters
    ----------
    dest : numpy.ndarray of int
        The cell of each row.
    values : numpy.ndarray, shape (n, F)
        The rows.
    n_cells : int
        Number of cells.
    by_value : numpy.ndarray of bool, shape (F,)
        Columns added in order of value (float channels); the others (counts, exact in any order) with
        ``np.add.at``.

    Returns
    -------
    numpy.ndarray, shape (n_cells, F)
    """
    rest = ~np.asarray(by_value, dtype=bool)
    if not rest.any():
        return sums_by_value(dest, values, n_cells, skip_nan=False)[0].astype(values.dtype, copy=False)
    acc = np.zeros((n_cells, values.shape[1]), dtype=values.dtype)
    np.add.at(acc, dest, values)  # every column (fewer copies than picking the others out)
    if not rest.all():
        acc[:, ~rest] = sums_by_value(dest, values[:, ~rest], n_cells, skip_nan=False)[0]
    return acc
