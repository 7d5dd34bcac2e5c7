"""A user who saves everything between notebook sessions and reads it back later.

The round trips of the evaluation files (``scores.csv``, ``paired.csv``) and of paths under ``~`` (a notebook
that saves to ``~/project/...`` and reloads it from another working directory).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

import geos2vec.evaluate as ev
from geos2vec.errors import InvalidInputError
from geos2vec.normalize import FeatureStats


def _scores(methods, task="t", split="random", n=20):
    """Planted R² per method: method k is k * 0.1 better on every split (so each later method beats the ones before)."""
    rng = np.random.default_rng(0)
    base = rng.random(n)
    return pd.DataFrame([dict(task=task, split=split, rep=k, method=m, probe="ridge", r2=float(base[k] + 0.1 * i),
                              mae=1.0, n_cells=100, n_test=20, n_fit=80)
                         for i, m in enumerate(methods) for k in range(n)])


# ------------------------------------------------------------------ scores.csv read back
@pytest.mark.parametrize("name", ["NA", "None", "null"])
def test_scores_csv_with_a_method_pandas_reads_as_missing_is_refused_not_dropped(tmp_path, name):
    """pd.read_csv turns a method or task named "NA"/"None"/"null" into NaN; groupby then dropped its rows."""
    scores = _scores(["counts", name])
    d = ev.write_report(scores, tmp_path / "rep").parent
    back = pd.read_csv(d / "scores.csv")
    assert back["method"].isna().sum() == 20           # what pandas does with the name (not geos2vec)
    with pytest.raises(InvalidInputError, match="keep_default_na=False"):
        ev.paired_table(back)                           # was: 0 rows, or KeyError(nan)
    with pytest.raises(InvalidInputError, match="without a method"):
        ev.summary_table(back)                          # was: the method's rows silently left out
    task = _scores(["a", "b"], task=name)
    d = ev.write_report(task, tmp_path / "rep2").parent
    with pytest.raises(InvalidInputError, match="without a task"):
        ev.paired_table(pd.read_csv(d / "scores.csv"))   # was: an empty table
    # the read_csv the message names gives back the same tables (numeric-looking names stay text)
    scores = _scores(["counts", name, "1.50"])
    d = ev.write_report(scores, tmp_path / "rep3").parent
    back = pd.read_csv(d / "scores.csv", keep_default_na=False, na_values=[""],
                       dtype={"task": str, "split": str, "method": str, "probe": str})
    pd.testing.assert_frame_equal(ev.paired_table(back), ev.paired_table(scores), check_dtype=False)
    pd.testing.assert_frame_equal(ev.summary_table(back), ev.summary_table(scores), check_dtype=False)
    assert len(ev.paired_table(back)) == 6


# ------------------------------------------------------------------ paired.csv read back
def test_verdict_of_a_paired_row_without_one_test_set_follows_its_split(tmp_path):
    """pd.concat of a paired.csv from before 0.3 (no one_test_set) with a new one gives NaN there: bool(NaN) is
    True, so a 20/20 win on random splits read "A ahead on one test set" instead of "A beats B"."""
    new = ev.paired_table(_scores(["a", "b"]))
    old = ev.paired_table(_scores(["c", "d"])).drop(columns="one_test_set")
    hold = ev.paired_table(_scores(["e", "f"], split="holdout")).drop(columns="one_test_set")
    both = pd.concat([new, old, hold], ignore_index=True)
    both.to_csv(tmp_path / "paired.csv", index=False)
    back = pd.read_csv(tmp_path / "paired.csv")
    assert back["one_test_set"].isna().sum() == 4      # the old rows
    got = {(r.method_a, r.method_b): ev.verdict(r) for r in back.itertuples()}
    assert got[("b", "a")] == "A beats B"
    assert got[("d", "c")] == "A beats B"              # was "A ahead on one test set"
    assert got[("c", "d")] == "B beats A"
    assert got[("f", "e")] == "A ahead on one test set"  # a holdout split shares its test set
    # 20 wins of 20 on splits of distinct test sets: the sign test p is 1/2**20
    assert ev.sign_test_p(20, 20) == pytest.approx(0.5 ** 20) and math.isclose(back.wins.max(), 20)


def test_verdict_of_a_paired_csv_read_as_text(tmp_path):
    """pd.read_csv(..., dtype=str) (as the scores need): bool("False") is True."""
    p = ev.paired_table(_scores(["a", "b"]))
    p.to_csv(tmp_path / "paired.csv", index=False)
    back = pd.read_csv(tmp_path / "paired.csv", dtype=str)
    assert back.one_test_set.tolist() == ["False", "False"]
    assert [ev.verdict(r) for r in back.itertuples()] == [ev.verdict(r) for r in p.itertuples()] == [
        "B beats A", "A beats B"]


# ------------------------------------------------------------------ paths under ~
def _no_tilde_folder():
    return not os.path.exists("~")


def test_write_report_into_home(home):
    scores = _scores(["a", "b"])
    out = ev.write_report(scores, "~/rep")               # was OSError after making ./~/rep
    assert out == home / "rep" / "report.md" and out.exists() and _no_tilde_folder()
    pd.testing.assert_frame_equal(pd.read_csv(home / "rep" / "scores.csv"), scores)


def test_feature_stats_saved_under_home_reload_from_elsewhere(home, monkeypatch):
    table = pd.DataFrame({"café": [1.0, 2.0, 4.0], "a b/c": [0.0, 3.0, 3.0]})
    stats = FeatureStats.fit(table)
    stats.save("~/stats.json")
    assert (home / "stats.json").exists() and _no_tilde_folder()   # was ./~/stats.json
    monkeypatch.chdir(home.parent)
    assert FeatureStats.load("~/stats.json") == stats
    assert FeatureStats.load(home / "stats.json") == stats


def test_model_saved_under_home_reloads_from_elsewhere(home, monkeypatch):
    import geos2vec

    model = geos2vec.load_model("default")
    saved = model.save("~/models/mine.zip", compact=True)
    assert saved == home / "models" / "mine.zip" and saved.is_file() and _no_tilde_folder()
    monkeypatch.chdir(home.parent)
    back = geos2vec.load_model("~/models/mine.zip")
    assert list(back.channels) == list(model.channels) and back.stats == model.stats
    assert back.source == str(home / "models" / "mine.zip")


def test_zarr_images_under_home(home):
    pytest.importorskip("zarr")
    pytest.importorskip("dask")
    from geos2vec import cells
    from geos2vec.raster import open_zarr, rasterize, to_frame, to_zarr

    rng = np.random.default_rng(0)
    ids = np.unique(cells.latlng_to_cell(48.85 + 0.05 * rng.random(60), 2.3 + 0.05 * rng.random(60), 12))
    table = pd.DataFrame({"café": rng.integers(0, 5, len(ids)), "x/y": rng.random(len(ids))},
                         index=pd.Index(np.asarray(ids, np.uint64), name="cell_id"))
    da = rasterize(table)
    to_zarr(da, "~/images.zarr")                       # was FileNotFoundError after writing ~/images.zarr
    assert (home / "images.zarr").is_dir() and _no_tilde_folder()
    back = open_zarr("~/images.zarr").load()
    np.testing.assert_array_equal(back.values, da.values)
    assert back.cell_id.dtype == np.uint64
    got = to_frame(back)
    pd.testing.assert_frame_equal(got[got.index.isin(table.index)], table.rename_axis(columns="feature"),
                                  check_like=True)


def test_a_config_saved_to_a_home_path_is_there_and_loads(tmp_path, monkeypatch):
    """``S2VecConfig.save("~/c.json")`` wrote into a folder literally named ``~`` under the working directory."""
    from geos2vec.model.config import S2VecConfig

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    config = S2VecConfig(embedding_dim=64, epochs=3)
    out = config.save("~/c.json")
    assert out == home / "c.json" and out.is_file() and not (work / "~").exists()
    assert S2VecConfig.load("~/c.json") == config
