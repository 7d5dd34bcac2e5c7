"""A follow-up review of the evaluation protocol: validation drawn by cell, and many p-values in one report.

1. ``region`` and ``holdout`` splits drew their validation samples one by one from the non-test samples; with
   ``pooling=`` (several rows per cell) validation rows shared their cells with training rows, and the ridge
   penalty chosen on them was the one that memorises cells.
2. ``paired_table`` lists every pair of methods with a p-value each; ``p_holm`` adjusts them (Holm-Bonferroni)
   over the comparisons of one task, split and probe.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geos2vec import evaluate as ev
from geos2vec.cells import latlng_to_cell


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _rows_per_cell(n_cells=60, seed=0):
    """Houses of ``n_cells`` cells (3-6 per cell), labels that are pure noise per cell, a one-hot of the cell."""
    rng = np.random.default_rng(seed)
    cells = np.unique(latlng_to_cell(rng.uniform(37.2, 37.5, 400), rng.uniform(-122.1, -121.8, 400), 12))
    cells = np.sort(rng.permutation(cells)[:n_cells])
    per = rng.integers(3, 7, len(cells))
    row_cell = np.repeat(cells, per)
    y = pd.Series(np.repeat(rng.standard_normal(len(cells)), per) + 0.01 * rng.standard_normal(len(row_cell)))
    pool = pd.DataFrame({"sample": y.index, "cell_id": row_cell, "weight": 1.0})
    onehot = pd.DataFrame(np.eye(len(cells)), index=pd.Index(cells, name="cell_id"))
    return cells, row_cell, y, pool, {"cell id": onehot}


@pytest.mark.parametrize("kind", ["holdout", "region"])
def test_validation_of_rows_per_cell_draws_whole_cells(kind):
    """Per-cell noise: only a memorising fit does well on validation rows of cells seen in training, so a leaky
    validation chose the smallest penalty (0.01) on every repetition; drawn by cell, no validation row shares a
    cell with a training row and the penalty chosen is large (the probe predicts about the training mean)."""
    cells, row_cell, y, pool, methods = _rows_per_cell()
    east = pd.Series(np.isin(row_cell, cells[-15:]), index=y.index)
    regions = pd.Series(np.where(east, "east", "west"), index=y.index)
    where = {"holdout": east} if kind == "holdout" else {"regions": regions}
    res = ev.evaluate(y, methods, pooling=pool, split=kind, n_splits=8, probes=["ridge"], progress=False, **where)
    s = res.scores
    assert set(s.split) == ({"holdout"} if kind == "holdout" else {"region:east->west", "region:west->east"})
    # leaky: validation MSE 1e-4 (the cells' own labels, memorised), penalty <= 0.1 on every repetition
    assert (s.val_mse > 0.2).all(), s.val_mse.tolist()  # unseen cells: about the labels' variance (1)
    assert (s.alpha <= 0.1).mean() < 0.5, s.alpha.tolist()
    assert (s.r2 < 0.05).all()


def test_holdout_splits_by_cell():
    """``holdout_splits(cells=)``: validation holds whole cells (a quarter of the non-test cells); one sample per
    cell gives exactly the splits without ``cells``."""
    cells = np.repeat(np.arange(20), 3)
    mask = cells >= 16
    for tr, va, te in ev.holdout_splits(mask, 5, cells=cells):
        assert len(np.unique(cells[va])) == 4 and not set(cells[tr]) & set(cells[va])
        assert sorted(np.r_[tr, va, te].tolist()) == list(range(60))
        np.testing.assert_array_equal(te, np.flatnonzero(mask))
    one = np.arange(60) * 7 + 1
    for (a, b) in zip(ev.holdout_splits(mask, 5, cells=one), ev.holdout_splits(mask, 5)):
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p, q)
    regs = np.where(np.arange(60) < 30, "a", "b")
    new, old = ev.region_splits(regs, 3, cells=one), ev.region_splits(regs, 3)
    assert new.keys() == old.keys()
    for k in new:
        for a, b in zip(new[k], old[k]):
            for p, q in zip(a, b):
                np.testing.assert_array_equal(p, q)
