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


# ------------------------------------------------------------------ many p-values: Holm-Bonferroni (p_holm)
def test_holm_adjust_hand_checked():
    """Sorted 0.005, 0.01, 0.03, 0.04 (m = 4): 4 x 0.005 = 0.02, 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, then
    max(0.06, 1 x 0.04) = 0.06 (monotone); NaN is no test (m counts the others); capped at 1."""
    np.testing.assert_allclose(ev.holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(ev.holm_adjust([0.2, np.nan, 0.01]), [0.2, np.nan, 0.02])
    np.testing.assert_allclose(ev.holm_adjust([0.6, 0.5, 0.4]), [1.0, 1.0, 1.0])
    assert ev.holm_adjust([]).shape == (0,)


def _scores(loss=-0.007):
    """S2Vec wins 16 of 20 against smoothed counts (sign test p = 0.006, corrected t-test p = 0.026), among
    three other comparisons of no difference and two large ones."""
    rng = np.random.default_rng(1)
    base = 0.4 + 0.05 * rng.standard_normal(20)
    d = np.r_[np.full(16, 0.02), np.full(4, loss)]
    r2 = {"S2Vec": base + d, "smoothed counts": base, "counts": base + 0.08 * rng.standard_normal(20),
          "location-only": base - 0.1 + 0.08 * rng.standard_normal(20)}
    return pd.DataFrame([dict(task="t", split="random", probe="ridge", method=m, rep=k, split_id=f"s{k}", r2=v[k],
                              mae=1.0, n_cells=100, n_test=20, n_fit=80) for m, v in r2.items() for k in range(20)])


def _hand_holm(p):
    """Holm step-down written out: reject in order while p_(i) <= alpha / (m - i); adjusted values by hand."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def test_paired_table_p_holm_over_the_task_and_probe():
    scores = pd.concat([_scores(), _scores().assign(split="blocked", split_id=lambda s: "b" + s.split_id)])
    p = ev.paired_table(scores)
    assert list(p.columns[-3:]) == ["p_corrected", "p_holm", "beats"]
    key = p.apply(lambda r: (r.split, *sorted((r.method_a, r.method_b))), axis=1)
    family = p.assign(key=key).drop_duplicates("key")  # A-B and B-A: one test; 6 pairs x 2 splits = 12
    assert len(family) == 12
    hand = dict(zip(family.key, _hand_holm(family.p_corrected.tolist())))
    np.testing.assert_allclose(p.p_holm, [hand[k] for k in key], rtol=1e-12)
    # side A restricted: the same family, the same p_holm
    only = ev.paired_table(scores, methods="S2Vec")
    np.testing.assert_allclose(only.p_holm, p[p.method_a == "S2Vec"].p_holm, rtol=1e-12)
    # another probe is another family
    two = ev.paired_table(pd.concat([_scores(), _scores().assign(probe="mlp")]))
    np.testing.assert_allclose(two[two.probe == "mlp"].p_holm, two[two.probe == "ridge"].p_holm, rtol=1e-12)


def test_a_beats_b_needs_the_holm_adjusted_p(tmp_path):
    """16 wins of 20 and p_corrected 0.026 read "A beats B"; adjusted for the 6 comparisons of the task and
    probe (p_holm 0.11) it is no clear winner. S2Vec against location-only (p_holm 0.005) still beats."""
    p = ev.paired_table(_scores()).set_index(["method_a", "method_b"])
    row = p.loc[("S2Vec", "smoothed counts")]
    assert (row.wins, row.losses) == (16, 4) and ev.sign_test_p(16, 20) < 0.05
    assert 0.02 < row.p_corrected < 0.05 and 0.05 < row.p_holm == pytest.approx(4 * row.p_corrected)
    assert not row.beats and ev.verdict(row) == "no clear winner"
    assert p.loc[("S2Vec", "location-only")].beats and p.loc[("smoothed counts", "location-only")].beats
    # a row without p_holm (an older paired.csv): the counts decide, as before
    assert ev.verdict(row.drop("p_holm")) == "A beats B"
    text = ev.write_report(_scores(), tmp_path / "r", embeddings=["S2Vec"]).read_text()
    assert "| corrected p | Holm p | verdict |" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("| S2Vec | smoothed counts |"))
    assert line.endswith(f"| {row.p_corrected:.2g} | {row.p_holm:.2g} | no clear winner |"), line
    assert "p_holm" in pd.read_csv(tmp_path / "r" / "paired.csv").columns
    # smaller losses: p_holm 0.03, the verdict stands
    q = ev.paired_table(_scores(loss=-0.003)).set_index(["method_a", "method_b"]).loc[("S2Vec", "smoothed counts")]
    assert q.p_holm < 0.05 and q.beats and ev.verdict(q) == "A beats B"
