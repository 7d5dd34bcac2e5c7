"""A reviewer of the evaluation protocol hunting for test information reaching training or model selection.

Synthetic cases where a leak shows as an impossible score: labels that are pure noise per cell or per block, so
that nothing seen in training can predict a test sample, and a method that is a one-hot of the cell or block (it
can memorise a label only where the same cell or block was trained on). A protocol that does not leak scores
R² <= 0 there (the probe can only predict a constant on unseen one-hot columns).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from geos2vec import evaluate as ev
from geos2vec.cells import cell_to_parent, latlng_to_cell


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _cells(n, seed=0, box=(37.2, 37.5, -122.1, -121.8)):
    rng = np.random.default_rng(seed)
    cells = np.unique(latlng_to_cell(rng.uniform(box[0], box[1], 6 * n), rng.uniform(box[2], box[3], 6 * n), 12))
    return np.sort(rng.permutation(cells)[:n])


def _onehot(keys, index, prefix="g"):
    """A table indexed by ``index`` whose row is the one-hot of its key (cell id or block)."""
    codes, uniq = pd.factorize(np.asarray(keys), sort=True)
    x = np.zeros((len(index), len(uniq)))
    x[np.arange(len(index)), codes] = 1.0
    return pd.DataFrame(x, index=pd.Index(np.asarray(index, np.uint64), name="cell_id"),
                        columns=[f"{prefix}{i}" for i in range(len(uniq))])


# ----------------------------------------------------------------- rows of one cell on both sides (fixed)
def test_random_splits_keep_the_rows_of_one_cell_together():
    """docs/evaluate.md: labels per row (one per house) may stay one sample each with ``pooling=``; the random
    split drew the rows, so rows of one cell (the same vector in every method) were trained on and tested: labels
    that are pure noise per cell scored R² 0.76-0.99 with a one-hot of the cell (per-cell medians: <= 0)."""
    rng = np.random.default_rng(0)
    cells = _cells(40)
    per = rng.integers(1, 8, len(cells))                   # 1-7 houses per cell
    row_cell = np.repeat(cells, per)
    noise = rng.standard_normal(len(cells))
    y = pd.Series(np.repeat(noise, per) + 0.05 * rng.standard_normal(len(row_cell)), name="price")
    pool = pd.DataFrame({"sample": y.index, "cell_id": row_cell, "weight": 1.0})
    methods = {"cell id": _onehot(cells, cells), "region one-hot": ev.region_onehot(cells, 8)}
    res = ev.evaluate(y, methods, pooling=pool, split="random", n_splits=6, probes=["ridge"], progress=False)
    s = res.scores[res.scores.method == "cell id"]
    assert (s.r2 <= 1e-9).all(), s.r2.tolist()             # nothing about an unseen cell is learnable
    # every cell's rows on one side of every split: a test cell has no row in training or validation
    p = res.predictions[res.predictions.method == "cell id"]
    cell_of = pd.Series(row_cell, index=y.index)
    for rep, g in p.groupby("rep"):
        test_cells = set(cell_of[g["sample"]].to_numpy())
        n_rows = cell_of.isin(test_cells).sum()
        assert len(g) == n_rows                            # all rows of the test cells are tested
        row = res.scores[(res.scores.method == "cell id") & (res.scores.rep == rep)].iloc[0]
        assert row.n_fit + row.n_test == len(y)            # and the other rows trained or validated on
    # the splits are the paper's random 60/20/20 of the cells: the same draw as of the per-cell medians
    yc = y.groupby(row_cell).median()
    yc.index = pd.Index(yc.index.to_numpy(np.uint64))
    rc = ev.evaluate(yc, methods, split="random", n_splits=6, probes=["ridge"], progress=False)
    q = rc.predictions[rc.predictions.method == "cell id"]
    for rep in range(6):
        tested = set(cell_of[p[p.rep == rep]["sample"]].to_numpy())
        assert tested == set(q[q.rep == rep]["sample"].to_numpy(np.uint64))


def test_random_splits_of_one_sample_per_cell_are_unchanged():
    """Samples that are their own cells (or polygons of distinct heaviest cells) keep ``random_splits(n)``."""
    cells = _cells(30, seed=3)
    y = pd.Series(np.random.default_rng(3).standard_normal(30), index=cells, name="y")
    t = pd.DataFrame(np.random.default_rng(4).standard_normal((30, 2)), index=pd.Index(cells, name="cell_id"))
    res = ev.evaluate(y, {"t": t}, split="random", n_splits=3, probes=["ridge"], progress=False)
    pool = pd.DataFrame({"sample": np.arange(30), "cell_id": cells, "weight": 1.0})
    pooled = ev.evaluate(y.reset_index(drop=True), {"t": t}, pooling=pool, split="random", n_splits=3,
                         probes=["ridge"], progress=False)
    for rep, (_, _, te) in enumerate(ev.random_splits(30, 3)):
        assert sorted(res.predictions[res.predictions.rep == rep]["sample"]) == sorted(cells[te])
        assert sorted(pooled.predictions[pooled.predictions.rep == rep]["sample"]) == sorted(te)


# ----------------------------------------------------------------- guards: no leak where none was found
def test_blocked_splits_of_block_noise_score_no_better_than_a_constant():
    """Labels pure noise per level-10 block, a one-hot of the block: blocked splits cannot beat a constant."""
    rng = np.random.default_rng(1)
    cells = _cells(300, seed=1, box=(37.0, 37.8, -122.4, -121.4))
    block = cell_to_parent(cells, 10)
    ub, inv = np.unique(block, return_inverse=True)
    y = pd.Series(rng.standard_normal(len(ub))[inv] + 0.05 * rng.standard_normal(len(cells)), index=cells, name="y")
    methods = {"block id": _onehot(block, cells), "block id (region one-hot)": ev.region_onehot(cells, 10)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uneven block sizes
        res = ev.evaluate(y, methods, split="blocked", block_level=10, n_splits=8, probes=["ridge"], progress=False)
        rnd = ev.evaluate(y, methods, split="random", n_splits=8, probes=["ridge"], progress=False)
    assert (res.scores.r2.dropna() <= 1e-9).all()
    for _, g in res.predictions.groupby(["method", "rep"]):
        assert np.ptp(g.y_pred.to_numpy()) < 1e-9        # one constant for every test sample
    assert rnd.scores.r2.mean() > 0.3                     # the same labels leak on random splits, as documented


def test_purged_polygon_samples_leak_nothing_through_shared_cells():
    """Polygons pooled over two cells each (a chain: sample i covers cells i and i + 1), labels the sum of per-cell
    noise: a training sample that shares a cell with a test sample would carry part of its label. Purged
    (the default) no test cell is ever trained on, so the cell one-hot predicts a constant; unpurged it leaks."""
    rng = np.random.default_rng(2)
    lat = np.linspace(37.0, 37.9, 400)
    chain = pd.unique(latlng_to_cell(lat, np.full(400, -122.0), 12))   # neighbouring cells, south to north
    n = len(chain) - 1
    u = rng.standard_normal(len(chain))
    pool = pd.DataFrame({"sample": np.repeat(np.arange(n), 2), "cell_id": np.c_[chain[:-1], chain[1:]].ravel(),
                         "weight": np.tile([0.6, 0.4], n)})
    y = pd.Series(u[:-1] + u[1:], name="y")
    methods = {"cell id": _onehot(chain, chain)}
    kw = dict(pooling=pool, split="blocked", block_level=10, n_splits=6, probes=["ridge"], progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ev.evaluate(y, methods, **kw)
        raw = ev.evaluate(y, methods, purge=False, **kw)
    assert (res.scores.r2.dropna() <= 1e-9).all() and res.config["purged"]["blocked"] > 0
    assert raw.scores.r2.dropna().max() > 0.05             # the case does detect a leak


def test_paired_methods_share_every_split_exactly():
    """Every method (ridge and the fast one-hot path) is tested on the same rows in every repetition, and the
    split ids agree, so paired differences compare like with like; the corrected t-test uses the mean sizes."""
    cells = _cells(60, seed=5)
    rng = np.random.default_rng(5)
    y = pd.Series(rng.standard_normal(60), index=cells, name="y")
    methods = {"a": pd.DataFrame(rng.standard_normal((60, 3)), index=pd.Index(cells, name="cell_id")),
               "region one-hot": ev.region_onehot(cells, 10),
               "pca": ev.Method([pd.DataFrame(rng.standard_normal((60, 4)), index=pd.Index(cells, name="cell_id"))],
                                transform="pca", n_components=2)}
    res = ev.evaluate(y, methods, split="random", n_splits=5, probes=["ridge"], progress=False)
    rows = res.predictions.groupby(["rep", "method"])["sample"].apply(lambda s: tuple(sorted(s)))
    assert rows.groupby("rep").nunique().eq(1).all()
    assert res.scores.groupby("rep").split_id.nunique().eq(1).all()
    paired = ev.paired_table(res)
    row = paired[(paired.method_a == "a") & (paired.method_b == "pca")].iloc[0]
    wide = res.scores.pivot(index="rep", columns="method", values="r2")
    d = wide["a"] - wide["pca"]
    assert row.wins == int((d > 0).sum()) and row.losses == int((d < 0).sum())
    t, p = ev.corrected_resampled_ttest(d.to_numpy(), res.scores.n_fit.mean(), res.scores.n_test.mean())
    assert row.t_corrected == pytest.approx(t) and row.p_corrected == pytest.approx(p)


# ----------------------------------------------------------------- a real task's split membership, with pandas
@pytest.fixture(scope="module")
def chicago(shared_data):
    return ev.load_task("chicago-tracts:EP_PCI", shared_data)


@pytest.mark.parametrize("kind", ["random", "blocked", "region"])
def test_chicago_tract_splits_membership(chicago, kind):
    """chicago-tracts (738 polygons pooled over cells): per split, recomputed with pandas from the test tracts alone.

    random: the test set holds every tract of its heaviest cells, and every other tract is fitted on. blocked /
    region: the training + validation tracts are exactly the others that share no cell with a test tract (purged);
    blocked: no level-10 block of a test tract's heaviest cell holds a fitted tract."""
    task = chicago
    cells = np.unique(task.pooling["cell_id"].to_numpy(np.uint64))
    res = ev.evaluate(task.target, {"region one-hot": ev.region_onehot(cells, 8)}, pooling=task.pooling, split=kind,
                      regions=task.regions, block_level=10, n_splits=3, probes=["ridge"], progress=False)
    pool = task.pooling[task.pooling["sample"].isin(task.target.index)]
    heavy = pool.sort_values("weight", ascending=False, kind="stable").drop_duplicates("sample").set_index("sample")
    rep = heavy["cell_id"].astype("uint64")
    cells_of = pool.groupby("sample")["cell_id"].apply(set)
    assert res.n_cells == len(task.target)
    for (split, k), g in res.predictions.groupby(["split", "rep"]):
        test = set(g["sample"])
        row = res.scores[(res.scores.split == split) & (res.scores.rep == k)].iloc[0]
        assert row.n_test == len(test)
        if kind == "random":
            assert set(rep.index[rep.isin(rep[list(test)])]) == test
            assert row.n_fit == len(task.target) - len(test)
            continue
        test_cells = set().union(*cells_of[list(test)])
        clean = [s for s in task.target.index if s not in test and not cells_of[s] & test_cells]
        assert row.n_fit == len(clean) < len(task.target) - len(test)   # some neighbours purged, the rest fitted
        if kind == "blocked":
            test_blocks = set(cell_to_parent(rep[list(test)].to_numpy(), 10))
            assert not test_blocks & set(cell_to_parent(rep[clean].to_numpy(), 10))

