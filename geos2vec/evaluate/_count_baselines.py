"""The count baselines: a cell's own ``log(1 + count)`` and its mean over the squares of cells around.

:func:`log1p_counts` and :func:`smoothed_counts` (re-exported by :mod:`geos2vec.evaluate.baselines` and
:mod:`geos2vec.evaluate`). Missing is not empty: a cell absent from the table is empty only where it is covered
(:func:`geos2vec.evaluate.baselines.covered_mask`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cells import _as_cells, get_level
from ..errors import InvalidInputError
from ._coverage_arg import covered_mask
from ._table_checks import _check_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    import shapely
    from numpy.typing import ArrayLike


def _same_level(cells: np.ndarray, counts: pd.DataFrame) -> np.ndarray:
    """``cells``, after checking that they are of a level of the ``counts`` table's cells (else 0 everywhere)."""
    table_levels = np.unique(get_level(counts.index.to_numpy()))
    levels = np.unique(get_level(cells)) if cells.size else table_levels
    other = np.setdiff1d(levels, table_levels)
    if other.size:
        raise InvalidInputError(
            f"cells of level {other.tolist()} asked of a counts table of level {table_levels.tolist()}: a cell of "
            "another level is never in the table, so it would read as empty. Ask for cells of the table's level "
            "(geos2vec.cells.cell_to_parent / cell_to_children), or aggregate the table to theirs")
    return cells


def _known(cells: np.ndarray, counts: pd.DataFrame, coverage) -> tuple[np.ndarray, np.ndarray | None]:
    """Per cell: a row of ``counts`` or covered; and the ``(cells, channels)`` availability (None: alike).

    Without ``coverage``, from the table's own (:func:`geos2vec.coverage.covered_mask`, channel by channel).
    """
    from ..coverage import covered_mask as table_mask
    from ..coverage import has_coverage

    if coverage is None and has_coverage(counts):
        return table_mask(cells, counts)
    return np.isin(cells, counts.index.to_numpy()) | covered_mask(cells, coverage), None


def log1p_counts(counts: pd.DataFrame, cells: ArrayLike | None = None, *,
                 coverage: shapely.Geometry | ArrayLike | None = None) -> pd.DataFrame:
    """``log(1 + count)`` of ``cells`` (default: the table's cells).

    A cell absent from ``counts`` is a cell with no feature (zero counts) when it is covered
    (:func:`covered_mask`), and unknown otherwise: it gets no row.

    Parameters
    ----------
    counts : pandas.DataFrame
        Cell x channel counts (>= 0), indexed by uint64 cell id.
    cells : array_like of uint64, optional
        The cells wanted (sorted and deduplicated).
    coverage : optional
        Where the source has data (:func:`covered_mask`); default: the table's own coverage
        (``counts.attrs["coverage"]``, :func:`geos2vec.coverage.get_coverage`) when it records one, else
        everywhere.

    Returns
    -------
    pandas.DataFrame
        float64, index ``cell_id``: the known cells of ``cells`` (those in ``counts`` or covered), sorted
        when ``cells`` is given; the columns of ``counts``.

    Raises
    ------
    ValueError
        Negative counts, an invalid table (see :func:`normalized_counts`), or ``cells`` of a level the table
        has no cells of (:class:`geos2vec.errors.InvalidInputError`: they would all read as empty).
    """
    counts = _check_table(counts, "counts")
    if (counts.to_numpy() < 0).any():
        raise InvalidInputError("log1p_counts needs counts >= 0")
    cells = counts.index.to_numpy() if cells is None else _same_level(np.unique(_as_cells(cells).ravel()), counts)
    known, _ = _known(cells, counts, coverage)
    out = counts.reindex(pd.Index(cells[known], name="cell_id"), fill_value=0.0)
    return np.log1p(out)


def _repeats(disk: np.ndarray) -> np.ndarray:
    """True at the second and later copies of a cell in each row (a square next to a cube corner repeats cells)."""
    out = np.zeros(disk.shape, bool)
    srt = np.sort(disk, axis=1)
    for r in np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1)):
        _, first = np.unique(disk[r], return_index=True)
        out[r] = True
        out[r, first] = False
    return out


def smoothed_counts(counts: pd.DataFrame, cells: ArrayLike | None = None, *,
                    coverage: shapely.Geometry | ArrayLike | None = None,
                    rings: Sequence[int] = (1, 2)) -> pd.DataFrame:
    """Own ``log(1 + count)`` || its mean over the ``(2k+1) x (2k+1)`` square of cells around, per ``k``.

    The squares are on the cells' own level grid (:func:`geos2vec.cells.grid_disk`), across level-8
    borders and cube faces. Unknown neighbours (absent from ``counts`` and outside ``coverage``) are left
    out of the mean, not counted as empty; with the table's own coverage, channel by channel (a neighbour is
    left out of a channel its source lacks there: ``road`` of a venue source, POIs of a road-only cell beyond
    the POI coverage, ``attrs["coverage"]["layers"]``). Columns: ``<channel>``, then ``<channel>@3x3``,
    ``<channel>@5x5`` (for the default ``rings=(1, 2)``). Rows: ``cells`` (default the table's cells)
    whose own counts are known.

    Parameters
    ----------
    counts : pandas.DataFrame
        Cell x channel counts (>= 0), indexed by uint64 cell id.
    cells : array_like of uint64, optional
        The cells wanted (see :func:`log1p_counts`).
    coverage : optional
        Where the source has data (:func:`covered_mask`); default: the table's own coverage, per channel
        (``counts.attrs["coverage"]`` as ``count_features(..., coverage=...)`` records it) when it has one, else
        everywhere. A given ``coverage`` is used for every channel instead.
    rings : sequence of int
        The ``k`` of each square (positive).

    Returns
    -------
    pandas.DataFrame
        float64, the rows of :func:`log1p_counts`, ``(1 + len(rings)) x`` its columns as above.

    Raises
    ------
    ValueError
        A ring that is not positive, negative counts, an invalid table or ``cells`` of another level than
        the table's (see :func:`log1p_counts`).
    """
    from ..cells import grid_disk

    rings = tuple(int(k) for k in rings)
    if not rings or min(rings) < 1:
        raise InvalidInputError(f"rings must be positive integers, got {rings}")
    own = log1p_counts(counts, cells, coverage=coverage)
    checked = _check_table(counts, "counts")
    table = np.log1p(checked)
    index = table.index.to_numpy()
    order = np.argsort(index)
    sorted_ids = index[order]
    values = np.vstack([table.to_numpy()[order], np.zeros((1, table.shape[1]))])  # last row: a covered empty cell
    kmax = max(rings)
    side = 2 * kmax + 1
    di, dj = np.divmod(np.arange(side * side), side)
    di, dj = di - kmax, dj - kmax
    ids = own.index.to_numpy()
    out = [own.to_numpy()]
    sums = {k: np.zeros(own.shape) for k in rings}
    counts_n = {k: np.zeros(own.shape) for k in rings}  # per channel: their known neighbours may differ
    chunk = max(1, 2_000_000 // (side * side * max(1, table.shape[1])))
    for a in range(0, len(ids), chunk):
        disk = grid_disk(ids[a:a + chunk], kmax)  # (rows, side*side)
        flat = disk.ravel()
        pos = np.searchsorted(sorted_ids, flat)
        pos = np.minimum(pos, len(sorted_ids) - 1)
        hit = sorted_ids[pos] == flat
        known, avail = _known(flat, checked, coverage)
        pos = np.where(hit, pos, len(sorted_ids)).reshape(disk.shape)
        known = (known | hit).reshape(disk.shape)
        for k in rings:
            sel = (np.abs(di) <= k) & (np.abs(dj) <= k)
            w = (known[:, sel] & ~_repeats(disk[:, sel]))[:, :, None]  # (rows, n_sel, 1)
            if avail is not None:  # (rows, n_sel, channels): the channels known there
                w = w & avail.reshape(disk.shape + (-1,))[:, sel]
            w = w.astype(float)
            v = values[pos[:, sel]]  # (rows, n_sel, channels)
            sums[k][a:a + chunk] = np.einsum("rn,rnc->rc", w[:, :, 0], v) if avail is None else (w * v).sum(axis=1)
            counts_n[k][a:a + chunk] = w.sum(axis=1)
    cols = list(own.columns)
    names = list(cols)
    for k in rings:
        out.append(sums[k] / np.maximum(counts_n[k], 1.0))
        names += [f"{c}@{2 * k + 1}x{2 * k + 1}" for c in cols]
    return pd.DataFrame(np.hstack(out), index=own.index, columns=names)
