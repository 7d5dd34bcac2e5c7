"""A statistician reviewing the evaluation's verdicts, and a command-line user evaluating an embedding file.

Identical methods must tie (not win by round-off, not reach "significance" by it); the report must say how
many splits tied; an interrupted evaluation closes its progress bar; ``--embedding`` takes S2 tokens.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import s2sphere
from scipy import stats

from geos2vec import evaluate as ev
from geos2vec.cli import main
from geos2vec.errors import InvalidInputError
from geos2vec.evaluate import report as R

FAST = ["--model", "none", "--probes", "ridge", "--n-splits", "3", "--location-scales", "2", "--quiet",
        "--splits", "random"]


def _s2(lat, lng, level=12):
    """Cell ids from s2sphere (the reference, independent of geos2vec's kernels)."""
    return np.array([s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b)).parent(level).id()
                     for a, b in zip(lat, lng)], dtype=np.uint64)


def _token(cell) -> str:
    return s2sphere.CellId(int(cell)).to_token()


@pytest.fixture(scope="module")
def grid():
    """120 level-12 cells near San José, a 6-column embedding, a target linear in it plus noise."""
    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(12), -121.95 + 0.02 * np.arange(10), indexing="ij")
    cells = np.unique(_s2(lat.ravel(), lng.ravel()))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((len(cells), 6))
    y = x @ rng.standard_normal(6) + 2.0 * rng.standard_normal(len(cells))
    emb = pd.DataFrame(x, index=pd.Index(cells, name="cell_id"), columns=[f"e{i}" for i in range(6)])
    centres = np.array([[s2sphere.CellId(int(c)).to_lat_lng().lat().degrees,
                         s2sphere.CellId(int(c)).to_lat_lng().lng().degrees] for c in cells])
    return dict(cells=cells, emb=emb, y=pd.Series(y, index=emb.index, name="y"), centres=centres)


def _scores(r2_by_method, split="random"):
    """A scores table of planted R² per method (20 repetitions of 80 training and 20 test samples)."""
    return pd.DataFrame([dict(task="t", split=split, rep=k, method=m, probe="ridge", r2=float(r[k]), mae=1.0,
                              n_cells=100, n_test=20, n_fit=80)
                         for m, r in r2_by_method.items() for k in range(len(r))])


def _row(paired, a, b):
    return paired[(paired.method_a == a) & (paired.method_b == b)].iloc[0]


# ------------------------------------------------------------------ ties
def test_a_copy_and_a_column_permuted_copy_tie_on_every_split(grid):
    """The same table, and the same columns in another order (other BLAS sums), are 20 ties, p = 1."""
    emb = grid["emb"]
    permuted = emb.iloc[:, ::-1].set_axis([f"p{i}" for i in range(6)], axis=1)
    res = ev.evaluate(grid["y"], {"emb": emb, "copy": emb.copy(), "permuted": permuted}, probes="ridge",
                      n_splits=20, progress=False)
    r2 = res.scores.pivot_table(index="rep", columns="method", values="r2")
    assert (r2["emb"] - r2["permuted"]).abs().max() < 1e-12      # the same fit up to round-off
    paired = ev.paired_table(res)
    for other in ("permuted", "copy"):
        for a, b in (("emb", other), (other, "emb")):
            row = _row(paired, a, b)
            assert (row.delta_r2_mean, row.delta_r2_std, row.t_corrected, row.p_corrected) == (0.0, 0.0, 0.0, 1.0)
            assert (row.wins, row.losses, row.ties, row.n_splits, row.n_r2_nan) == (0, 0, 20, 20, 0)
            assert not row.beats and ev.verdict(row) == "no clear winner"


def test_round_off_leaning_one_way_is_not_a_significant_difference():
    """0 wins and 0 losses of 20 read p_corrected = 0.008 when the round-off leaned one way."""
    r2 = np.random.default_rng(1).uniform(0.3, 0.6, 20)
    leaning = np.array([np.nextafter(v, 0) if k % 3 == 0 else v - (1 + k % 2) * 2e-16 for k, v in enumerate(r2)])
    assert ((r2 - leaning) > 0).all()                               # every split a hair higher for A
    row = _row(ev.paired_table(_scores({"A": r2, "B": leaning})), "A", "B")
    assert (row.t_corrected, row.p_corrected, row.delta_r2_mean) == (0.0, 1.0, 0.0)   # was t 2.94, p 0.008
    assert (row.wins, row.losses, row.ties) == (0, 0, 20)


def test_ties_count_as_zero_differences_in_the_corrected_t_test():
    """5 real wins, 3 real losses and 12 ties (within 1e-9): the t-test of the differences with the ties as 0."""
    a = np.linspace(0.2, 0.6, 20)
    real = np.r_[[0.02, 0.03, 0.01, 0.04, 0.02], [-0.01, -0.02, -0.005], np.zeros(12)]
    noise = np.r_[np.zeros(8), np.tile([3e-10, 5e-10, 2e-10], 4)]     # B a hair below A on the 12 ties
    row = _row(ev.paired_table(_scores({"A": a, "B": a - real - noise})), "A", "B")
    d = a - (a - real - noise)
    d[8:] = 0.0                                                      # the ties, as the table takes them
    j = 20
    t = d.mean() / math.sqrt((1 / j + 20 / 80) * d.var(ddof=1))      # Nadeau & Bengio, n_test 20, n_train 80
    assert row.t_corrected == pytest.approx(t, rel=1e-12)
    assert row.p_corrected == pytest.approx(2 * stats.t.sf(abs(t), j - 1), rel=1e-9)
    assert row.delta_r2_mean == pytest.approx(d.mean(), rel=1e-12)
    assert (row.wins, row.losses, row.ties, row.n_splits) == (5, 3, 12, 20)
    assert row.wins + row.losses + row.ties + row.n_r2_nan == row.n_splits


def test_round_off_of_a_hugely_negative_r2_is_a_tie():
    """R² of -5e7 (an extrapolation gone wrong) has float steps of 7e-9: one step was a win (20/20: "beats")."""
    a = np.full(20, -5e7) - np.arange(20) * 1e3
    b = np.nextafter(a, -np.inf)
    assert ((a - b) > 1e-9).all()
    row = _row(ev.paired_table(_scores({"A": a, "B": b})), "A", "B")
    assert ev.verdict(row) == "no clear winner"                      # was "A beats B", 20 wins of one float step
    assert (row.wins, row.losses, row.ties, bool(row.beats)) == (0, 0, 20, False)
    # a real difference of the same size relative to 1 stays a win
    row = _row(ev.paired_table(_scores({"A": np.full(20, 0.5), "B": np.full(20, 0.5 - 1e-8)})), "A", "B")
    assert (row.wins, row.ties, bool(row.beats)) == (20, 0, True)


def test_the_report_says_how_many_splits_tied():
    """"0 / 0 of 20" of a method against a copy read as 20 splits unaccounted for: the ties are named."""
    a = np.linspace(0.2, 0.6, 20)
    mine = a + np.r_[np.full(8, 0.01), np.full(12, 1e-16)]
    scores = _scores({"mine": mine, "counts": a})
    text = R._paired_markdown(ev.paired_table(scores), "t", ["mine"])
    assert "| mine | counts | random / ridge | +0.004 | 8 / 0 of 20, 12 tied |" in text
    assert list(ev.paired_table(scores).columns[7:11]) == ["wins", "losses", "ties", "n_splits"]


# ------------------------------------------------------------------ interrupts
def test_an_interrupted_evaluation_closes_its_progress_bar(grid, monkeypatch):
    from tqdm.auto import tqdm

    from geos2vec.evaluate import protocol

    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return protocol.ridge_probe.__wrapped__(*args, **kwargs)

    interrupted.__wrapped__ = protocol.ridge_probe
    monkeypatch.setattr(protocol, "ridge_probe", interrupted)
    with pytest.raises(KeyboardInterrupt) as caught:      # keeps the frames (and the bar) alive, as a notebook does
        ev.evaluate(grid["y"], {"emb": grid["emb"]}, probes="ridge", n_splits=5, progress=True)
    assert caught.traceback and len(calls) == 3
    assert [bar.desc for bar in list(tqdm._instances) if bar.desc.startswith("evaluate")] == []


# ------------------------------------------------------------------ --embedding files of tokens
@pytest.fixture
def files(grid, tmp_path):
    lat, lng = grid["centres"][:, 0], grid["centres"][:, 1]
    pd.DataFrame({"lat": lat, "lon": lng, "v": grid["y"].to_numpy()}).to_csv(tmp_path / "labels.csv", index=False)
    emb = grid["emb"].reset_index()
    emb.to_parquet(tmp_path / "ids.parquet")
    tokens = emb.assign(cell_id=[_token(c) for c in grid["cells"]])
    assert not tokens.cell_id.str.fullmatch(r"\d+").all()            # read from CSV as text
    return dict(dir=tmp_path, tokens=tokens)


def _evaluate(files, emb_path, out):
    d = files["dir"]
    argv = ["evaluate", "--labels", str(d / "labels.csv"), "--target", "v", "--embedding", f"mine={emb_path}",
            *FAST, "--out", str(d / out), "--debug"]
    assert main(argv) == 0
    return pd.read_csv(d / out / "scores.csv")


def test_embedding_files_of_tokens_score_as_files_of_cell_ids(files):
    d, tokens = files["dir"], files["tokens"]
    tokens.to_csv(d / "tokens.csv", index=False)
    tokens.iloc[::-1].set_index("cell_id").to_parquet(d / "tokens.parquet")      # tokens as the index, rows reversed
    # a cell_embeddings table: s2_cell (uint64) and token columns, no cell_id; neither is a feature
    tokens.rename(columns={"cell_id": "token"}).assign(s2_cell=files["tokens"].cell_id.map(
        lambda t: np.uint64(s2sphere.CellId.from_token(t).id()))).to_parquet(d / "cell_embeddings.parquet")
    want = _evaluate(files, d / "ids.parquet", "ids")
    for name in ("tokens.csv", "tokens.parquet", "cell_embeddings.parquet"):
        got = _evaluate(files, d / name, f"out_{name}")
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
    config = json.loads((d / "out_cell_embeddings.parquet" / "config.json").read_text())
    assert config["methods"]["mine"] == [6]                          # s2_cell and token are not features


def test_an_embed_output_is_not_taken_for_a_table_of_cells(files):
    """`geos2vec embed` writes one row per input row with s2_cell: no table of cells (a polygon's vector is pooled)."""
    d = files["dir"]
    rows = files["tokens"].drop(columns="cell_id").assign(s2_cell=files["tokens"].cell_id.map(
        lambda t: np.uint64(s2sphere.CellId.from_token(t).id())))
    rows.to_parquet(d / "embedded_rows.parquet")
    with pytest.raises(InvalidInputError, match=r"embedded_rows.parquet needs a cell_id column .* looks like a "
                                                r"`geos2vec embed` output"):
        _evaluate(files, d / "embedded_rows.parquet", "rows")


def test_embedding_file_of_invalid_tokens_is_refused_by_name(files, capsys):
    d, tokens = files["dir"], files["tokens"].copy()
    tokens.loc[4, "cell_id"] = "0x89c25"
    tokens.to_csv(d / "bad.csv", index=False)
    with pytest.raises(InvalidInputError, match=r"bad.csv: its cell_id values are text but not all S2 tokens: .*"
                                                r"positions \[4\].*'0x89c25'"):
        _evaluate(files, d / "bad.csv", "bad")
    argv = ["evaluate", "--labels", str(d / "labels.csv"), "--target", "v", "--embedding", f"mine={d / 'bad.csv'}",
            *FAST, "--out", str(d / "bad")]
    assert main(argv) == 1
    assert "bad.csv: its cell_id values are text but not all S2 tokens" in capsys.readouterr().err


def test_equal_differences_have_no_variance():
    """Three differences of 0.1 had a variance of 1e-33 (the mean rounds): t was 7.7e15, not the documented inf."""
    assert ev.corrected_resampled_ttest([0.1, 0.1, 0.1], 80, 20) == (math.inf, 0.0)
    assert ev.corrected_resampled_ttest([-0.3] * 20, 80, 20) == (-math.inf, 0.0)
    t, p = ev.corrected_resampled_ttest([0.1, 0.1, 0.2], 80, 20)
    d = np.array([0.1, 0.1, 0.2])
    assert t == pytest.approx(d.mean() / math.sqrt((1 / 3 + 0.25) * d.var(ddof=1)), rel=1e-12)


# ------------------------------------------------------------------ method names
def test_an_embedding_named_like_a_baseline_is_refused(grid):
    """An embedding named "counts" replaced the counts baseline without a word (and the report skipped it)."""
    cells, emb = grid["cells"], grid["emb"]
    counts = pd.DataFrame({"a": np.arange(len(cells), dtype=float)}, index=emb.index)
    for kwargs, taken in (({"embeddings": {"counts": emb}}, "counts"),
                          ({"embeddings": {"region one-hot": emb}}, "region one-hot"),
                          ({"embeddings": {"mine": emb}, "controls": {"mine-Loc": emb}}, "mine-Loc"),
                          ({"controls": {"PCA": emb}}, "PCA")):
        with pytest.raises(InvalidInputError, match=f"would replace the method '{taken}'"):
            ev.standard_methods(cells, counts, location_params={"frequency_num": 2}, **kwargs)
    methods = ev.standard_methods(cells, counts, {"mine": emb}, location_params={"frequency_num": 2})
    assert list(methods)[-3:] == ["mine", "mine-Loc", "mine + smoothed counts"] and methods["mine"] is emb
    assert methods["counts"] is not emb


def test_two_embedding_files_of_one_name_are_refused(files):
    """--embedding a=X --embedding a=Y evaluated Y alone, as "a", without a word."""
    d = files["dir"]
    argv = ["evaluate", "--labels", str(d / "labels.csv"), "--target", "v", "--embedding", f"a={d / 'ids.parquet'}",
            "--embedding", f"a={d / 'ids.parquet'}", *FAST, "--out", str(d / "dup"), "--debug"]
    with pytest.raises(InvalidInputError, match="--embedding a=.*the name 'a' is taken"):
        main(argv)
    with pytest.raises(InvalidInputError, match="--embedding needs NAME=FILE, got '=x.parquet'"):
        main([*argv[:5], "--embedding", "=x.parquet", *argv[9:]])


def test_one_method_name_as_a_string_is_one_name(tmp_path):
    """paired_table(methods="counts-Loc") searched the str for substrings: "counts" was put on side A too."""
    a = np.linspace(0.2, 0.6, 20)
    scores = _scores({"counts": a, "counts-Loc": a + 0.01, "mine": a + 0.02})
    p = ev.paired_table(scores, methods="counts-Loc")
    assert sorted(zip(p.method_a, p.method_b)) == [("counts-Loc", "counts"), ("counts-Loc", "mine")]
    pd.testing.assert_frame_equal(p, ev.paired_table(scores, methods=["counts-Loc"]))
    # write_report(embeddings="mine") listed the comparisons of "m", "i", "n", "e": none
    text = ev.write_report(scores, tmp_path / "rep", embeddings="mine").read_text()
    assert "| mine | counts | random / ridge | +0.020 | 20 / 0 of 20 |" in text


def test_one_mode_as_a_string_is_one_mode(grid, monkeypatch):
    """model_embeddings(modes="patch") embedded the modes "p", "a", "t", ...; run_suite's untrained control took
    modes[:1] of "contextual": "c"."""
    import geos2vec.embedding
    from geos2vec.evaluate import suite

    seen = []

    def fake_embed_cells(cells, counts, *, model, mode, outside, context):
        seen.append(mode)
        return grid["emb"].loc[np.asarray(cells, np.uint64)]

    monkeypatch.setattr(geos2vec.embedding, "embed_cells", fake_embed_cells)
    out = ev.model_embeddings(grid["cells"], grid["emb"], model=object(), modes="patch")
    assert list(out) == ["S2Vec (patch)"] and seen == ["patch"]

    class Task:
        name, features, cells = "t", "f", grid["cells"]

    class Model:
        channels = list(grid["emb"].columns)

    calls = []

    def fake_embeddings(cells, counts, model, modes, name, cache_dir):
        calls.append((name, list(modes)))
        if name == "untrained":
            raise KeyboardInterrupt  # enough: both embeddings were asked for
        return {}

    monkeypatch.setattr(suite, "load_task", lambda name, data_dir, states=None: Task)
    monkeypatch.setattr(suite, "load_features", lambda features, data_dir: (grid["emb"], None))
    monkeypatch.setattr(suite, "_embeddings", fake_embeddings)
    monkeypatch.setattr("geos2vec.evaluate.baselines.untrained_model", lambda model, seed: model)
    with pytest.raises(KeyboardInterrupt):
        ev.run_suite("t", model=Model(), modes="contextual", log=None, progress=False)
    assert calls == [("S2Vec", ["contextual"]), ("untrained", ["contextual"])]


def test_modes_with_spaces_after_commas(files, grid, monkeypatch):
    """--modes "contextual, patch" asked the model for mode " patch" (refused, after embedding the first mode)."""
    from geos2vec import cli_evaluate

    d = files["dir"]
    grid["emb"].abs().reset_index().to_parquet(d / "counts.parquet")    # a count table: cell_id + counts
    asked = []

    def fake_model_embeddings(cells, counts, model, modes):
        asked.extend(modes)
        return {f"S2Vec ({m})": grid["emb"] for m in modes}

    monkeypatch.setattr(cli_evaluate, "model_embeddings", fake_model_embeddings)
    argv = ["evaluate", "--labels", str(d / "labels.csv"), "--target", "v", "--features", str(d / "counts.parquet"),
            "--model", "default", "--modes", "contextual, patch", *FAST[2:], "--out", str(d / "modes"), "--debug"]
    assert main(argv) == 0
    assert asked == ["contextual", "patch"]
    assert {"S2Vec (contextual)", "S2Vec (patch)"} <= set(pd.read_csv(d / "modes" / "scores.csv").method)


def test_a_duplicated_embedding_table_is_not_told_to_add_its_vectors_up(grid):
    """The advice was "aggregate them first (e.g. table.groupby(level=0).sum())": twice the vector of the cell."""
    emb = pd.concat([grid["emb"], grid["emb"].iloc[:3]])
    with pytest.raises(InvalidInputError, match=r"method 'mine' block 0 has duplicate cell ids .*embedding vectors "
                                                r"do not: \.mean\(\)"):
        ev.evaluate(grid["y"], {"mine": emb}, probes="ridge", n_splits=2, progress=False)
