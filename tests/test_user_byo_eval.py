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


# ----------------------------------------------------------------- your own table: matching and missing cells
def test_own_table_is_matched_by_cell_id_whatever_its_order_and_id_dtype():
    """uint64, their signed int64 storage and a shuffled table give the same scores; tokens are refused by name."""
    from geos2vec.cells import cell_to_token
    from geos2vec.errors import InvalidTypeError

    y, mine, noise = _planted()
    kw = dict(split="blocked", block_level=6, n_splits=4, probes="ridge", progress=False)
    ref = ev.evaluate(y, {"mine": mine, "noise": noise}, **kw).scores
    signed = mine.set_axis(pd.Index(mine.index.to_numpy(np.uint64).view(np.int64)))
    shuffled = signed.sample(frac=1.0, random_state=3)
    y_signed = y.sample(frac=1.0, random_state=4).set_axis(
        pd.Index(y.sample(frac=1.0, random_state=4).index.to_numpy(np.uint64).view(np.int64)))
    got = ev.evaluate(y_signed, {"mine": shuffled, "noise": noise}, **kw).scores
    pd.testing.assert_series_equal(got.r2, ref.r2)
    # the label plus noise explains ~99 % of the variance: R² = 1 - 1/100 in expectation
    assert ref[ref.method == "mine"].r2.min() > 0.95 and ref[ref.method == "noise"].r2.max() < 0.2
    tokens = mine.set_axis(pd.Index([cell_to_token(c) for c in mine.index]))
    with pytest.raises(InvalidTypeError, match="token_to_cell"):
        ev.evaluate(y, {"mine": tokens}, **kw)


def test_cells_your_table_lacks_are_left_out_for_every_method_and_said_by_name():
    """Old: half the samples vanished from every method without a word (config['n_dropped'] only)."""
    y, mine, noise = _planted()
    part = mine.drop(index=mine.index[::2])                     # your table lacks every other cell
    kw = dict(split="random", n_splits=5, probes="ridge", progress=False)
    with pytest.warns(UserWarning, match=r"60 of 120 samples are left out for every method.*'mine' \(60\)"):
        res = ev.evaluate(y, {"mine": part, "noise": noise}, **kw)
    assert res.config["missing"] == {"mine": 60} and res.config["n_dropped"] == 60
    assert (res.scores.n_cells == 60).all()
    # the baseline is scored on exactly the samples your table has: as if the target had only those
    alone = ev.evaluate(y.loc[part.index], {"mine": part, "noise": noise}, **kw)
    pd.testing.assert_frame_equal(res.scores, alone.scores)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                          # nothing lacking: no warning
        assert ev.evaluate(y, {"mine": mine, "noise": noise}, **kw).config["missing"] == {}


def test_cli_note_names_the_embedding_that_lacks_cells(tmp_path, capsys):
    """``--embedding mine=FILE`` lacking 20 of the labelled cells: the note says it is ``mine`` that lacks them."""
    from geos2vec.cells import cell_to_latlng
    from geos2vec.cli import main

    y, mine, _ = _planted(80)
    lat, lng = cell_to_latlng(y.index.to_numpy(np.uint64))
    pd.DataFrame({"lat": lat, "lon": lng, "y": y.to_numpy()}).to_csv(tmp_path / "labels.csv", index=False)
    table = mine.iloc[20:].rename_axis("cell_id").reset_index()
    table["cell_id"] = table["cell_id"].astype(np.uint64).astype(np.int64)     # as another library stores them
    table.to_parquet(tmp_path / "mine.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)              # said once, as a note, not also as a warning
        main(["evaluate", "--labels", str(tmp_path / "labels.csv"), "--target", "y", "--embedding",
              f"mine={tmp_path / 'mine.parquet'}", "--model", "none", "--n-splits", "2", "--splits", "random",
              "--location-scales", "2", "--quiet", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert "note: 20 of 80 labelled samples left out" in err and "samples without data: mine (20)" in err
    config = __import__("json").loads((tmp_path / "report" / "config.json").read_text())
    assert config["missing"] == {"mine": 20, "mine-Loc": 20}


# ----------------------------------------------------------------- baselines: the random projection
def test_random_projection_does_not_depend_on_the_column_order():
    """Old: the seeded matrix met the columns by position, so the same counts reordered were another baseline."""
    from geos2vec.ontology import ROAD_CHANNEL, load_ontology

    rng = np.random.default_rng(2)
    y, _, _ = _planted(120)
    cells = y.index.to_numpy(np.uint64)
    channels = [*load_ontology().channels[:6], ROAD_CHANNEL]     # count_features' channels, in its order
    counts = pd.DataFrame(rng.poisson(2.0, (120, 7)).astype(float), index=cells, columns=channels)
    counts["p"] = y.to_numpy() / 10 + rng.normal(0, 1, 120)       # a channel carrying the label
    # in count_features' order the projection is the plain x @ G / sqrt(k) (published scores keep their values)
    g = np.random.default_rng(0).standard_normal((8, 5))
    np.testing.assert_allclose(ev.random_projection(counts, 5).to_numpy(), counts.to_numpy() @ g / np.sqrt(5))
    shuffled = counts[["p", ROAD_CHANNEL, *channels[5::-1]]]
    pd.testing.assert_frame_equal(ev.random_projection(shuffled, 5), ev.random_projection(counts, 5))
    kw = dict(split="blocked", block_level=6, n_splits=5, probes="ridge", progress=False)
    rp = {"rp": ev.Method([counts], transform="random projection", n_components=5),
          "rp shuffled": ev.Method([shuffled], transform="random projection", n_components=5)}
    s = ev.evaluate(y, rp, **kw).scores.pivot(index="rep", columns="method", values="r2")
    np.testing.assert_allclose(s["rp shuffled"], s["rp"], rtol=0, atol=1e-12)


# ----------------------------------------------------------------- the report
def test_report_compares_your_own_embedding_with_the_baselines(tmp_path):
    """Old: ``write_report`` listed the paired comparisons of names starting with "S2Vec" only."""
    y, mine, noise = _planted()
    rng = np.random.default_rng(9)
    z = ((y - y.mean()) / y.std()).to_numpy()
    smooth = pd.DataFrame({"s0": 0.7 * z + rng.normal(size=len(y)), "s1": rng.normal(size=len(y))}, index=mine.index)
    res = ev.evaluate(y, {"mine": mine, "noise": noise, "smoothed counts": smooth}, split="blocked",
                      block_level=6, n_splits=20, probes="ridge", progress=False)
    text = ev.write_report(res, tmp_path / "rep").read_text()
    assert "| mine | smoothed counts | blocked / ridge |" in text
    assert "| noise | smoothed counts | blocked / ridge |" in text
    assert "| smoothed counts | mine |" not in text              # a baseline is side B only
    p = ev.paired_table(res).set_index(["method_a", "method_b"])
    r = res.scores.pivot(index="rep", columns="method", values="r2")
    d = (r["mine"] - r["smoothed counts"]).to_numpy()
    assert p.loc[("mine", "smoothed counts"), "wins"] == int((d > 1e-9).sum()) == 20   # label + noise: every split
    row = [ln for ln in text.splitlines() if ln.startswith("| mine | smoothed counts |")][0]
    assert "20 / 0 of 20" in row and "**A beats B**" in row
    dn = (r["noise"] - r["smoothed counts"]).to_numpy()      # pure noise against a weak signal: it loses
    assert p.loc[("noise", "smoothed counts"), "losses"] == int((dn < -1e-9).sum()) >= 15
    row = [ln for ln in text.splitlines() if ln.startswith("| noise | smoothed counts |")][0]
    assert "B beats A" in row


# ----------------------------------------------------------------- blocked splits of very unequal blocks
def _uneven_blocks():
    """One level-6 block holding 60 samples, 20 blocks holding 3 (as Las Vegas' among Nevada's ZIP codes)."""
    from geos2vec.cells import cell_to_parent

    rng = np.random.default_rng(5)
    pts = np.unique(latlng_to_cell(rng.uniform(33.0, 45.0, 60000), rng.uniform(-122.0, -100.0, 60000), 12))
    parent = cell_to_parent(pts, 6)
    blocks, counts = np.unique(parent, return_counts=True)
    big = blocks[np.argmax(counts)]
    small = [b for b in blocks[counts >= 3] if b != big][:20]
    cells = np.concatenate([pts[parent == big][:60]] + [pts[parent == b][:3] for b in small])
    return np.sort(cells)


def test_uneven_blocked_splits_are_warned_and_their_test_sizes_reported(tmp_path):
    """Whole blocks make test sets of 1 to 60 samples here: said by a warning and in report.md (was silent)."""
    from geos2vec.cells import cell_to_parent

    cells = _uneven_blocks()
    assert len(cells) == 120
    with pytest.warns(UserWarning, match=r"blocked splits: .*test sets of \d+ to \d+ samples \(share: 24\).*"
                                         r"largest block holds 60 of the 120 samples, and (6\d) samples are in "
                                         r"no test set of the 20"):
        splits = ev.blocked_splits(cell_to_parent(cells, 6), 20, seed=0)
    te = [len(t) for _, _, t in splits]
    assert min(te) < 6 or max(te) > 48                        # far from the 24 of a 20 % share
    tested = np.unique(np.concatenate([t for _, _, t in splits]))
    big = cell_to_parent(cells, 6) == pd.Series(cell_to_parent(cells, 6)).mode()[0]
    assert not np.isin(np.flatnonzero(big), tested).any()    # the 60 of the big block: never tested (train fills first)
    rng = np.random.default_rng(1)
    y = pd.Series(rng.normal(size=120), index=pd.Index(cells, name="cell_id"), name="y")
    mine = pd.DataFrame({"e": y.to_numpy() + rng.normal(0, 0.3, 120)}, index=cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ev.evaluate(y, {"mine": mine}, split="blocked", block_level=6, n_splits=20, probes="ridge",
                          progress=False)
    assert sorted(res.scores.n_test) == sorted(te)           # the protocol uses exactly these splits
    text = ev.write_report(res, tmp_path / "rep").read_text()
    assert f"Test samples per repetition: blocked {min(te)}–{max(te)}." in text


def test_report_of_one_method(tmp_path):
    """Old: ``write_report`` of a single method (your embedding alone) raised AttributeError: 'method_a'."""
    y, mine, _ = _planted(40)
    res = ev.evaluate(y, {"mine": mine}, split="random", n_splits=3, probes="ridge", progress=False)
    path = ev.write_report(res, tmp_path / "rep")
    paired = pd.read_csv(tmp_path / "rep" / "paired.csv")
    assert len(paired) == 0 and "method_a" in paired.columns and "n_r2_nan" in paired.columns
    assert "| mine |" in path.read_text()


def test_a_table_of_another_level_is_refused_saying_its_level():
    """Old: "only 0 samples have a target and data in every method" without saying which table or why."""
    from geos2vec.cells import cell_to_parent
    from geos2vec.errors import InvalidInputError

    y, mine, noise = _planted()
    coarse = mine.groupby(cell_to_parent(mine.index.to_numpy(np.uint64), 10)).mean()    # a level-10 embedding
    with pytest.raises(InvalidInputError, match=r"only 0 samples .*'mine' lacks 120 of 120 \(its cells are level "
                                                r"10, the samples' level 12"):
        ev.evaluate(y, {"mine": coarse, "noise": noise}, split="random", n_splits=2, probes="ridge", progress=False)
    # what the message suggests: each level-12 cell takes its parent's row
    fine = coarse.reindex(cell_to_parent(y.index.to_numpy(np.uint64), 10)).set_axis(y.index)
    res = ev.evaluate(y, {"mine": fine, "noise": noise}, split="random", n_splits=2, probes="ridge", progress=False)
    assert res.n_cells == 120


def test_paired_numbers_recomputed_from_the_predictions():
    """R², ΔR², wins and the corrected t-test, recomputed with NumPy / SciPy from the test predictions."""
    import scipy.stats

    y, mine, noise = _planted()
    res = ev.evaluate(y, {"mine": mine, "noise": noise}, split="blocked", block_level=6, n_splits=12,
                      probes="ridge", progress=False)
    r2 = {}
    for (rep, method), g in res.predictions.groupby(["rep", "method"]):
        t, p = g.y_true.to_numpy(), g.y_pred.to_numpy()
        r2[method, rep] = 1 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2)
        # the test labels are the target's, by sample id: rows are matched by cell, not position
        np.testing.assert_array_equal(t, y.loc[g["sample"].to_numpy(np.uint64)].to_numpy())
    s = res.scores.set_index(["method", "rep"])
    np.testing.assert_allclose([r2[k] for k in s.index], s.r2.to_numpy(), rtol=1e-12)
    d = np.array([r2["mine", k] - r2["noise", k] for k in range(12)])
    row = ev.paired_table(res).set_index(["method_a", "method_b"]).loc[("mine", "noise")]
    n_test, n_fit = res.scores.n_test.mean(), res.scores.n_fit.mean()
    t = d.mean() / np.sqrt((1 / 12 + n_test / n_fit) * d.var(ddof=1))
    assert row.delta_r2_mean == pytest.approx(d.mean()) and row.wins == int((d > 0).sum()) == 12
    assert row.t_corrected == pytest.approx(t) and row.p_corrected == pytest.approx(2 * scipy.stats.t.sf(abs(t), 11))
    assert row.beats and ev.verdict(row) == "A beats B"


def test_a_target_indexed_by_tokens_gets_the_librarys_error():
    """Old: tokens raised NumPy's bare ``ValueError: invalid literal for int()``; a RangeIndex an unexplained
    "invalid S2 cell id(s)"; floats were truncated where tables refuse them. Now as the tables: said by name."""
    from geos2vec.cells import cell_to_token, token_to_cell
    from geos2vec.errors import InvalidInputError, InvalidTypeError

    y, mine, noise = _planted()
    kw = dict(split="random", n_splits=2, probes="ridge", progress=False)
    tokens = y.set_axis(pd.Index([cell_to_token(c) for c in y.index]))
    with pytest.raises(InvalidTypeError, match=r"target needs S2 cell ids .*token_to_cell"):
        ev.evaluate(tokens, {"mine": mine, "noise": noise}, **kw)
    with pytest.raises(InvalidInputError, match=r"target needs S2 cell ids \(join_labels\) unless pooling="):
        ev.evaluate(y.reset_index(drop=True), {"mine": mine, "noise": noise}, **kw)
    back = tokens.set_axis(pd.Index(token_to_cell(tokens.index.to_numpy())))      # what the message suggests
    pd.testing.assert_frame_equal(ev.evaluate(back, {"mine": mine, "noise": noise}, **kw).scores,
                                  ev.evaluate(y, {"mine": mine, "noise": noise}, **kw).scores)
    regions = pd.Series(np.where(np.arange(120) % 2, "a", "b"), index=[cell_to_token(c) for c in y.index])
    with pytest.raises(InvalidTypeError, match="regions: index it by the target's sample ids"):
        ev.evaluate(y, {"mine": mine}, split="region", regions=regions, n_splits=2, probes="ridge", progress=False)
