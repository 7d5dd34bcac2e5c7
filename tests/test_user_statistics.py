"""A statistician's audit of the evaluation protocol: separation, train-only fitting, pairing, significance.

Planted signals on real labels (``ca-housing``, ``chicago-tracts``) and small synthetic cases with hand-computed
references (NumPy normal equations, SciPy's t distribution).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from geos2vec import evaluate as ev
from geos2vec.cells import cell_to_parent, latlng_to_cell
from geos2vec.errors import InvalidInputError


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small eigendecompositions run ~10x slower on two BLAS threads when other processes share the cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def housing(shared_data):
    """ca-housing (216 labelled cells) and its smoothed / log counts."""
    task = ev.load_task("ca-housing", shared_data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counts, coverage = ev.load_features(task.features, shared_data)
    cells = np.sort(task.target.index.to_numpy(np.uint64))
    methods = ev.standard_methods(cells, counts, coverage=coverage)
    return task, methods


def _cells(n, seed=0):
    rng = np.random.default_rng(seed)
    cells = np.unique(latlng_to_cell(rng.uniform(37.2, 37.5, 4 * n), rng.uniform(-122.1, -121.8, 4 * n), 12))
    return cells[:n]


# ----------------------------------------------------------------- separation and train-only fitting
@pytest.mark.parametrize("kind", ["random", "blocked", "region"])
def test_test_labels_never_reach_the_fit(housing, kind):
    """Planted: the test labels of repetition 0 set to nonsense; its test predictions must not move."""
    task, methods = housing
    kw = dict(split=kind, block_level=10, regions=task.regions, n_splits=1, probes=["ridge"], progress=False)
    r0 = ev.evaluate(task.target, methods, **kw)
    split = r0.scores.split.iloc[0]
    p0 = r0.predictions[(r0.predictions.split == split) & (r0.predictions.rep == 0)]
    test = p0[p0.method == "counts"]["sample"].to_numpy(np.uint64)
    y2 = task.target.copy()
    y2.loc[test] = np.random.default_rng(1).normal(1e7, 1e6, len(test))
    r1 = ev.evaluate(y2, methods, **kw)
    p1 = r1.predictions[(r1.predictions.split == split) & (r1.predictions.rep == 0)]
    a, b = (p.set_index(["method", "sample"]).y_pred for p in (p0, p1))
    assert len(a) == len(b) and np.array_equal(a.to_numpy(), b.reindex(a.index).to_numpy())
    # blocked: no level-10 block in two parts, and every method is tested on the same rows
    if kind == "blocked":
        cells = np.sort(task.target.index.to_numpy(np.uint64))
        for tr, va, te in ev.blocked_splits(cell_to_parent(cells, 10), 1):
            assert not set(cell_to_parent(cells[te], 10)) & set(cell_to_parent(cells[np.r_[tr, va]], 10))
        rows = p0.groupby("method")["sample"].apply(lambda s: tuple(sorted(s)))
        assert rows.nunique() == 1 and set(rows.iloc[0]) == set(test)


def test_r2_uses_the_test_folds_own_mean(housing):
    """R² = 1 - SSE / sum((y_test - mean(y_test))²), as sklearn's r2_score (docs/evaluate.md)."""
    task, methods = housing
    res = ev.evaluate(task.target, {"s": methods["smoothed counts"]}, split="blocked", block_level=10,
                      n_splits=3, probes=["ridge"], progress=False)
    for k, p in res.predictions.groupby("rep"):
        t, q = p.y_true.to_numpy(), p.y_pred.to_numpy()
        want = 1 - ((t - q) ** 2).sum() / ((t - t.mean()) ** 2).sum()
        assert res.scores.set_index("rep").r2[k] == pytest.approx(want, rel=1e-12)


# ----------------------------------------------------------------- the ridge probe
def test_ridge_intercept_is_unpenalized_after_clipping():
    """Clipping at ±4 SD moves the training mean off 0; the intercept must still be the unpenalized one."""
    rng = np.random.default_rng(0)
    n = 120
    x = np.c_[rng.lognormal(0, 1.5, n), rng.lognormal(0, 2.0, n), rng.standard_normal(n)]
    y = 2 * np.log(x[:, 0]) + x[:, 2] + 5 + 0.3 * rng.standard_normal(n)
    tr, va, te = np.arange(70), np.arange(70, 95), np.arange(95, n)
    z = ev.standardize(x, tr)
    assert np.abs(z[tr].mean(axis=0)).max() > 0.02          # the clip shifted the training mean
    alpha = 30.0
    pred, _, _ = ev.ridge_probe(z, y, tr, va, te, alphas=[alpha])
    # reference: ridge with an unpenalized intercept (penalize only the slopes of the centred design)
    mu = z[tr].mean(axis=0)
    zc = z[tr] - mu
    beta = np.linalg.solve(zc.T @ zc + alpha * np.eye(3), zc.T @ (y[tr] - y[tr].mean()))
    want = (z[te] - mu) @ beta + y[tr].mean()
    np.testing.assert_allclose(pred, want, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------- pairing
def test_paired_table_refuses_scores_of_different_splits(housing):
    """Two evaluate() runs with other seeds or other samples do not share splits: pairing them is refused."""
    task, methods = housing
    smooth = methods["counts"]
    kw = dict(split="blocked", block_level=10, n_splits=6, probes=["ridge"], progress=False)
    base = ev.evaluate(task.target, {"counts": smooth}, **kw)
    # the same table in a separate run with the same seed and samples: the same splits, every split a tie
    same = ev.evaluate(task.target, {"mine": smooth}, **kw)
    row = ev.paired_table([base, same]).query("method_a == 'mine'").iloc[0]
    assert (row.wins, row.losses, row.n_splits) == (0, 0, 6)
    # the same table again, but three cells missing (other samples) or another seed: other splits. Before, they
    # were paired by repetition number (20 splits of smoothed counts against itself: 14 wins / 5 losses, 12 / 8)
    cells = np.sort(task.target.index.to_numpy(np.uint64))
    fewer = ev.evaluate(task.target, {"mine": smooth.drop(index=cells[:3])}, **kw)
    seed1 = ev.evaluate(task.target, {"mine": smooth}, seed=1, **kw)
    for other in (fewer, seed1):
        with pytest.raises(InvalidInputError, match="not scored on the same splits"):
            ev.paired_table([base, other])
    # the same method from two seeds was averaged per repetition silently
    with pytest.raises(InvalidInputError, match="not scored on the same splits"):
        ev.paired_table([base, ev.evaluate(task.target, {"counts": smooth, "c": methods["region one-hot"]},
                                           seed=1, **kw)])
    # saved scores keep the split ids
    again = ev.paired_table(pd.concat([base.scores, same.scores]).astype({"split_id": str}))
    assert len(again) == 2


def test_corrected_ttest_uses_the_samples_fitted_on(shared_data):
    """Purged polygon samples are not trained on: n_train of the corrected t-test is train + validation."""
    task = ev.load_task("chicago-tracts:EP_PCI", shared_data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counts, coverage = ev.load_features(task.features, shared_data)
    m = ev.standard_methods(task.cells, counts, coverage=coverage)
    res = ev.evaluate(task.target, {k: m[k] for k in ("counts", "smoothed counts")}, split="blocked",
                      pooling=task.pooling, block_level=10, n_splits=5, probes=["ridge"], progress=False)
    assert res.config["purged"]["blocked"] > 0
    s = res.scores
    sizes = res.config["split_sizes"]["blocked"]
    assert (s.n_fit < s.n_cells - s.n_test).all()             # purged samples are neither trained nor tested
    wide = s.pivot(index="rep", columns="method", values="r2")
    d = (wide["smoothed counts"] - wide["counts"]).to_numpy()
    n_fit, n_test = s.n_fit.mean(), s.n_test.mean()
    t = d.mean() / math.sqrt((1 / len(d) + n_test / n_fit) * d.var(ddof=1))
    p = 2 * scipy.stats.t.sf(abs(t), len(d) - 1)
    row = ev.paired_table(res).query("method_a == 'smoothed counts'").iloc[0]
    assert row.t_corrected == pytest.approx(t, rel=1e-9) and row.p_corrected == pytest.approx(p, rel=1e-8)
    assert abs(sum(sizes[:2]) - n_fit) <= 1


def test_student_t_tail_and_corrected_test_against_scipy():
    for df in (1, 3, 19, 200):
        for t in (0.0, 0.7, 2.1, 6.0, -1.3):
            assert ev.student_t_sf(t, df) == pytest.approx(scipy.stats.t.sf(t, df), rel=1e-10)
    d = np.random.default_rng(2).normal(0.02, 0.05, 20)
    t, p = ev.corrected_resampled_ttest(d, 100, 0)          # no correction: the one-sample t-test
    ref = scipy.stats.ttest_1samp(d, 0.0)
    assert t == pytest.approx(ref.statistic, rel=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-10)


# ----------------------------------------------------------------- constant labels and tiny folds
def test_constant_target_is_refused():
    cells = _cells(30)
    table = pd.DataFrame({"a": np.arange(30.0)}, index=pd.Index(cells, name="cell_id"))
    with pytest.raises(InvalidInputError, match="constant"):
        ev.evaluate(pd.Series(3.0, index=cells, name="y"), {"t": table}, n_splits=2, probes=["ridge"],
                    progress=False)


def test_undefined_r2_is_announced():
    """A test set of one sample has no R²; the summary's mean then covers fewer splits than it lists."""
    cells = _cells(30)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.standard_normal(30)}, index=pd.Index(cells, name="cell_id"))
    y = pd.Series(table["a"].to_numpy() + rng.standard_normal(30), index=cells, name="y")
    mask = pd.Series(False, index=cells)
    mask.iloc[4] = True
    with pytest.warns(UserWarning, match="R² is undefined on 2 of 2"):
        res = ev.evaluate(y, {"t": table}, holdout=mask, n_splits=2, probes=["ridge"], progress=False)
    assert res.scores.r2.isna().all()


def test_missing_labels_and_features_drop_the_same_rows_for_every_method():
    cells = _cells(60)
    rng = np.random.default_rng(3)
    full = pd.DataFrame({"a": rng.standard_normal(60)}, index=pd.Index(cells, name="cell_id"))
    y = pd.Series(full["a"].to_numpy() + rng.standard_normal(60), index=cells, name="y")
    y.iloc[[0, 1]] = np.nan                                   # two missing labels
    methods = {"full": full, "lacks 3": full.drop(index=cells[5:8]), **{k: v for k, v in ev.standard_methods(
        cells, location_params={"frequency_num": 2}).items()}}
    res = ev.evaluate(y, methods, split="blocked", block_level=11, n_splits=3, probes=["ridge"], progress=False)
    assert res.config["n_dropped"] == 5 and res.n_cells == 55
    rows = res.predictions.groupby(["rep", "method"])["sample"].apply(lambda s: tuple(sorted(s)))
    assert (rows.groupby(level="rep").nunique() == 1).all()
    assert not set(rows.iloc[0]) & set(cells[[0, 1, 5, 6, 7]])
    assert res.scores.split_id.groupby(res.scores.rep).nunique().eq(1).all()


def test_mlp_never_sees_the_test_labels():
    """Planted for the MLP: target scaling, the sweep and early stopping use training and validation only."""
    pytest.importorskip("tensorflow")
    cells = _cells(60)
    rng = np.random.default_rng(4)
    table = pd.DataFrame(rng.standard_normal((60, 3)), index=pd.Index(cells, name="cell_id"), columns=list("abc"))
    y = pd.Series(table.to_numpy() @ [1.0, -2.0, 0.5] + 0.2 * rng.standard_normal(60), index=cells, name="y")
    kw = dict(split="random", n_splits=1, probes=["mlp"], progress=False, max_epochs=12, patience=3,
              sweep={"lr": [1e-2, 3e-3], "hidden": [8], "dropout": [0.0]})
    r0 = ev.evaluate(y, {"t": table}, **kw)
    test = r0.predictions["sample"].to_numpy(np.uint64)
    y2 = y.copy()
    y2.loc[test] = rng.normal(1e6, 1e5, len(test))
    r1 = ev.evaluate(y2, {"t": table}, **kw)
    np.testing.assert_array_equal(r0.predictions.y_pred.to_numpy(), r1.predictions.y_pred.to_numpy())
    assert r0.scores.val_mse.iloc[0] == r1.scores.val_mse.iloc[0] and r0.scores.lr.iloc[0] == r1.scores.lr.iloc[0]


def test_pca_is_fitted_on_the_centred_training_samples():
    """PCA keeps the top components of the training samples around their mean (after the ±4 SD clip)."""
    cells = _cells(80)
    rng = np.random.default_rng(5)
    x = np.c_[rng.lognormal(0, 2.0, (80, 3)), rng.standard_normal((80, 3))]
    table = pd.DataFrame(x, index=pd.Index(cells, name="cell_id"), columns=list("abcdef"))
    y = pd.Series(np.log(x[:, 0]) + x[:, 4] + 0.3 * rng.standard_normal(80), index=cells, name="y")
    res = ev.evaluate(y, {"pca": ev.Method([table], transform="pca", n_components=2)}, n_splits=1,
                      probes=["ridge"], progress=False)
    tr, va, te = ev.random_splits(80, 1)[0]
    z = ev.standardize(x, tr)
    zc = z - z[tr].mean(axis=0)
    vt = np.linalg.svd(zc[tr], full_matrices=False)[2][:2]
    pred, _, _ = ev.ridge_probe(zc @ vt.T, y.to_numpy(), tr, va, te)
    np.testing.assert_allclose(res.predictions.y_pred.to_numpy(), pred, rtol=1e-9)


def test_test_features_do_not_reach_the_fit():
    """Planted: one test sample's features made wild; no other test prediction may move (scaler, PCA, penalty)."""
    cells = _cells(80)
    rng = np.random.default_rng(6)
    table = pd.DataFrame(rng.lognormal(0, 1, (80, 5)), index=pd.Index(cells, name="cell_id"), columns=list("abcde"))
    y = pd.Series(np.log(table["a"]).to_numpy() + rng.standard_normal(80), index=cells, name="y")
    loc = ev.standard_methods(cells, location_params={"frequency_num": 2})["location-only"]

    def methods(t):
        return {"t": t, "pca": ev.Method([t], transform="pca", n_components=2),
                "rp": ev.Method([t], transform="random projection", n_components=4), "two": [t, loc]}

    kw = dict(split="random", n_splits=1, probes=["ridge"], progress=False)
    p0 = ev.evaluate(y, methods(table), **kw).predictions
    wild = p0["sample"].to_numpy(np.uint64)[0]
    t2 = table.copy()
    t2.loc[wild] = 1e4
    p1 = ev.evaluate(y, methods(t2), **kw).predictions
    keep = p0["sample"].to_numpy(np.uint64) != wild
    np.testing.assert_array_equal(p0.y_pred.to_numpy()[keep], p1.y_pred.to_numpy()[keep])
