"""An ML researcher evaluating their OWN embedding (a cell table from another library) against the baselines.

Planted data with NumPy references: an embedding that is the label plus noise must win, pure noise must not;
rows are matched by cell id whatever the table's order or id dtype; the report's means, counts and verdicts
are computed on the same splits for both methods, and say how many repetitions had no R².
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from geos2vec import evaluate as ev
from geos2vec.cells import latlng_to_cell


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small eigendecompositions run much slower on two BLAS threads when other processes share the cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _cells(n, seed=0):
    rng = np.random.default_rng(seed)
    cells = np.unique(latlng_to_cell(rng.uniform(35.0, 40.0, 4 * n), rng.uniform(-120.0, -110.0, 4 * n), 12))
    return np.sort(rng.choice(cells, n, replace=False))


def _planted(n=120, seed=0):
    rng = np.random.default_rng(seed)
    cells = _cells(n, seed)
    y = pd.Series(rng.normal(50.0, 10.0, n), index=pd.Index(cells, name="cell_id"), name="y")
    mine = pd.DataFrame({"e0": y.to_numpy() + rng.normal(0, 1.0, n), "e1": rng.normal(size=n)}, index=cells)
    noise = pd.DataFrame(rng.normal(size=(n, 3)), index=cells)
    return y, mine, noise


# ----------------------------------------------------------------- splits without an R²
def _scores_with_nan_splits():
    """20 repetitions, 12 without an R² (a test set of one label value): A wins the 8 others."""
    rows = []
    for k in range(20):
        nan = k >= 8
        for method, r2 in (("A", 0.5 + 0.01 * k), ("B", 0.2)):
            rows.append(dict(task="t", split="blocked", rep=k, method=method, probe="ridge", n_cells=100,
                             n_test=20, n_fit=80, split_id=f"s{k}", r2=math.nan if nan else r2, mae=1.0))
    return pd.DataFrame(rows)


def test_splits_without_r2_are_counted_and_no_verdict_rests_on_the_rest():
    """Old: r2_mean covered 8 repetitions while n_splits said 20, and 8 wins of 8 scored read "A beats B"."""
    scores = _scores_with_nan_splits()
    s = ev.summary_table(scores).set_index("method")
    assert s.loc["A", "n_splits"] == 20 and s.loc["A", "n_r2_nan"] == 12
    assert s.loc["A", "r2_mean"] == pytest.approx(np.mean(0.5 + 0.01 * np.arange(8)))
    p = ev.paired_table(scores).set_index(["method_a", "method_b"]).loc[("A", "B")]
    assert (p.wins, p.losses, p.n_splits, p.n_r2_nan) == (8, 0, 20, 12)
    assert p.delta_r2_mean == pytest.approx(np.mean(0.3 + 0.01 * np.arange(8)))
    assert not p.beats and ev.verdict(p) == "no clear winner"      # 8 wins are not 15 of 20
    md = ev.summary_markdown(scores)
    assert "(12 of 20 splits without R²)" in md


def test_report_says_how_many_splits_had_no_r2(tmp_path):
    """End to end: a target of mostly one value gives random test sets of one value (R² NaN)."""
    y, mine, noise = _planted(30)
    y[:] = 0.0
    y.iloc[[3, 17]] = 1.0
    res = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the warning of the protocol about the undefined R²
        res = ev.evaluate(y, {"S2Vec mine": mine, "counts": noise}, split="random", n_splits=20,
                          probes="ridge", progress=False)
    # the repetitions whose test labels are one value, computed here from the splits themselves
    tests = ev.random_splits(len(y), 20, seed=0)
    n_nan = sum(np.ptp(y.to_numpy()[te]) == 0 for _, _, te in tests)
    assert 0 < n_nan < 20
    s = res.summary().set_index("method")
    assert (s.n_splits == 20).all() and (s.n_r2_nan == n_nan).all()
    path = ev.write_report(res, tmp_path / "rep")
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert (summary.n_r2_nan == n_nan).all()
    paired = pd.read_csv(tmp_path / "rep" / "paired.csv")
    assert (paired.n_splits == 20).all() and (paired.n_r2_nan == n_nan).all()
    assert (paired.wins + paired.losses <= 20 - n_nan).all()
    assert f"({n_nan} of 20 splits without R²)" in path.read_text()
    assert f"of 20 ({n_nan} without R²)" in path.read_text()
