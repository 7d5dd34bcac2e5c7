"""A researcher's own labels through ``geos2vec.evaluate`` and ``geos2vec evaluate --labels``.

Projected CRSs, polygons, duplicate geometries, NaN targets, own embedding tables, and the options of the
protocol that were accepted without a word or failed deep inside with a raw error.
"""

from __future__ import annotations

import argparse
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely

from geos2vec import cli_evaluate as C
from geos2vec import evaluate as ev
from geos2vec.cli import main
from geos2vec.errors import InvalidInputError

FAST = ["--model", "none", "--probes", "ridge", "--n-splits", "3", "--location-scales", "2", "--quiet"]


def _s2(lat, lng, level=12):
    """Cell ids from s2sphere (the reference, independent of geos2vec's kernels)."""
    return np.array([s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b)).parent(level).id()
                     for a, b in zip(lat, lng)], dtype=np.uint64)


def _centre(cell):
    ll = s2sphere.CellId(int(cell)).to_lat_lng()
    return ll.lat().degrees, ll.lng().degrees


@pytest.fixture
def grid(tmp_path):
    """100 level-12 cells near San José, an embedding file of two signals, a target linear in them."""
    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(10), -121.95 + 0.02 * np.arange(10), indexing="ij")
    cells = np.unique(_s2(lat.ravel(), lng.ravel()))
    centres = np.array([_centre(c) for c in cells])
    rng = np.random.default_rng(0)
    sig = rng.standard_normal((len(cells), 2))
    y = 3 * sig[:, 0] - 2 * sig[:, 1] + 0.1 * rng.standard_normal(len(cells))
    pd.DataFrame({"cell_id": cells, "s0": sig[:, 0], "s1": sig[:, 1]}).to_parquet(tmp_path / "emb.parquet")
    return dict(dir=tmp_path, cells=cells, lat=centres[:, 0], lng=centres[:, 1], y=y, sig=sig)


def _argv(path, target, grid, out):
    return ["evaluate", "--labels", str(path), "--target", target, "--embedding", f"mine={grid['dir'] / 'emb.parquet'}",
            *FAST, "--out", str(grid["dir"] / out), "--debug"]


# ------------------------------------------------------------------ the CLI's --labels path
def test_own_embedding_is_compared_with_the_baselines_in_the_report(grid):
    """report.md listed paired comparisons only for methods named "S2Vec...": an --embedding got none."""
    pd.DataFrame({"lat": grid["lat"], "lon": grid["lng"], "v": grid["y"]}).to_csv(grid["dir"] / "l.csv", index=False)
    assert main([*_argv(grid["dir"] / "l.csv", "v", grid, "rep"), "--splits", "blocked"]) == 0
    text = (grid["dir"] / "rep" / "report.md").read_text()
    paired = pd.read_csv(grid["dir"] / "rep" / "paired.csv")
    assert "Paired comparisons with the strong baselines" in text
    for a, b in (("mine", "region one-hot"), ("mine", "location-only"), ("mine-Loc", "location-only")):
        row = paired[(paired.method_a == a) & (paired.method_b == b)].iloc[0]
        assert f"| {a} | {b} | blocked / ridge | {row.delta_r2_mean:+.3f} | {row.wins} / {row.losses} of 3 |" in text


def test_within_uses_the_geometries_of_a_projected_geoparquet(grid):
    """--within read lat/lon columns, so points in EPSG:3857 without them failed: 'no latitude column found'."""
    pts = gpd.GeoDataFrame({"v": grid["y"]}, geometry=gpd.points_from_xy(grid["lng"], grid["lat"]), crs=4326)
    pts.to_crs(3857).to_parquet(grid["dir"] / "pts.parquet")
    box = (-121.95, 37.30, -121.80, 37.42)
    inside = (grid["lng"] >= box[0]) & (grid["lng"] <= box[2]) & (grid["lat"] >= box[1]) & (grid["lat"] <= box[3])
    assert 10 < inside.sum() < len(inside) / 2
    argv = _argv(grid["dir"] / "pts.parquet", "v", grid, "w")
    assert main([*argv, "--splits", "random", "--within=" + ",".join(map(str, box))]) == 0
    config = json.loads((grid["dir"] / "w" / "config.json").read_text())
    assert config["n_samples"] == inside.sum() and not config["pooled"]


def test_polygon_labels_are_pooled_over_their_cells(grid, capsys):
    """Polygons were reduced to one point each, silently; now pooled as the tract tasks (duplicates: one sample)."""
    # 40 squares of ~200 m well inside one cell each (weight 1 for that cell), one duplicated, one with NaN
    k = 40
    squares = [shapely.box(x - 0.001, y - 0.001, x + 0.001, y + 0.001) for x, y in zip(grid["lng"][:k],
                                                                                     grid["lat"][:k])]
    y = grid["y"][:k].copy()
    y[5] = np.nan
    polys = gpd.GeoDataFrame({"v": np.r_[y, y[0] + 4.0]}, geometry=[*squares, squares[0]], crs=4326).to_crs(3857)
    polys.index = [7] * (k + 1)                                       # a useless, non-unique index
    polys.to_parquet(grid["dir"] / "poly.parquet")
    args = argparse.Namespace(target="v", lat=None, lon=None)
    target, pooling = C._samples(gpd.read_parquet(grid["dir"] / "poly.parquet"), args)
    assert len(target) == k and target.name == "v"                    # the duplicate geometry: one sample
    assert target.iloc[0] == pytest.approx(y[0] + 2.0)                # median of y0 and y0 + 4
    assert np.isnan(target.iloc[5])
    np.testing.assert_allclose(target.drop([0, 5]).to_numpy(), np.delete(y, [0, 5]))
    assert (pooling.groupby("sample")["weight"].sum().to_numpy() == pytest.approx(1.0))
    assert len(pooling) == k                                          # each square inside one cell
    np.testing.assert_array_equal(pooling.sort_values("sample")["cell_id"].to_numpy(np.uint64), grid["cells"][:k])

    assert main([*_argv(grid["dir"] / "poly.parquet", "v", grid, "p"), "--splits", "random"]) == 0
    assert "40 distinct geometries" in capsys.readouterr().err
    config = json.loads((grid["dir"] / "p" / "config.json").read_text())
    assert config["pooled"] and config["n_samples"] == k - 1          # the NaN target left out
    scores = pd.read_csv(grid["dir"] / "p" / "scores.csv")
    # duplicate at sample 0 has target y0 + 2, off the linear model by 2: R² still near 1 on the rest
    assert scores[scores.method == "mine"].r2.median() > 0.8


def test_holdout_polygon_without_a_crs_is_refused_with_the_fix(grid):
    pd.DataFrame({"lat": grid["lat"], "lon": grid["lng"], "v": grid["y"]}).to_csv(grid["dir"] / "l.csv", index=False)
    gpd.GeoDataFrame(geometry=[shapely.box(-121.9, 37.3, -121.8, 37.4)]).to_parquet(grid["dir"] / "zone.parquet")
    with pytest.raises(InvalidInputError, match=r"--holdout-polygon .*zone.parquet has no CRS.*set_crs"):
        main([*_argv(grid["dir"] / "l.csv", "v", grid, "z"), "--holdout-polygon", str(grid["dir"] / "zone.parquet")])


@pytest.mark.parametrize("option, value, message", [
    ("--lr", "abc", "--lr takes comma-separated numbers, got 'abc'"),
    ("--hidden", "64,big", "--hidden takes comma-separated integers, got '64,big'"),
    ("--holdout-bbox", "a,b,c,d", "a bbox takes comma-separated numbers"),
    ("--batch-size", "0", "batch_size must be an integer >= 1, got 0"),        # was ZeroDivisionError mid-run
])
def test_cli_numbers_are_checked_and_named(grid, option, value, message):
    pd.DataFrame({"lat": grid["lat"], "lon": grid["lng"], "v": grid["y"]}).to_csv(grid["dir"] / "l.csv", index=False)
    argv = _argv(grid["dir"] / "l.csv", "v", grid, "n")
    argv[argv.index("ridge")] = "ridge,mlp"
    with pytest.raises(InvalidInputError, match=message):
        main([*argv, f"{option}={value}"])


# ------------------------------------------------------------------ evaluate()'s options
def _small():
    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(6), -121.95 + 0.02 * np.arange(6), indexing="ij")
    cells = np.unique(_s2(lat.ravel(), lng.ravel()))
    x = pd.DataFrame(np.random.default_rng(1).standard_normal((len(cells), 3)), index=pd.Index(cells, name="cell_id"))
    return pd.Series(x.to_numpy() @ [1.0, -1.0, 0.5], index=x.index, name="y"), x


@pytest.mark.parametrize("kw, message", [
    (dict(fusion="bogus"), r"unknown fusion 'bogus'; choose one of \['concat', 'weighted', 'project'\]"),
    (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
    (dict(max_epochs=0), "max_epochs must be an integer >= 1, got 0"),
    (dict(patience=-1), "patience must be an integer >= 0, got -1"),
    (dict(fusion_units=2.5), "fusion_units must be an integer >= 1, got 2.5"),
    (dict(sweep={"hidden": [0]}), r"sweep\['hidden'\] value must be an integer >= 1, got 0"),
    (dict(sweep={"dropout": [1.5]}), r"sweep\['dropout'\] value must be a number >= 0 and < 1, got 1.5"),
    (dict(sweep={"lr": 0.01}), r"sweep\['lr'\] must be a list of values to try, got 0.01"),
    (dict(sweep={"lr": [0.0]}), r"sweep\['lr'\] value must be a number > 0, got 0.0"),
    (dict(n_splits=1.5), "n_splits must be >= 1, got 1.5: an integer"),
    (dict(holdout={"box": (0, 0, 1, 1)}), "holdout= takes a boolean Series or the keywords bbox, polygon, lon"),
])
def test_evaluate_refuses_bad_options_before_training(kw, message, monkeypatch):
    """Accepted silently (dropout 1.5, hidden 0, max_epochs 0), raw errors (ZeroDivisionError, ...), or refused
    only after the MLPs of the one-block methods had trained (an unknown fusion)."""
    import geos2vec.evaluate.protocol as P

    def no_training(*a, **k):
        raise AssertionError("an MLP trained before the options were checked")

    monkeypatch.setattr(P, "_train_group", no_training)
    y, x = _small()
    with pytest.raises(InvalidInputError, match=message):
        ev.evaluate(y, {"x": x, "x2": [x, x]}, probes=["ridge", "mlp"], progress=False, **kw)


def test_a_rotation_of_the_features_ties_in_the_paired_table():
    """PCA (a rotation: ridge scores it as the counts) differed from counts by ~1e-16 and 'won' some splits."""
    y, x = _small()
    x = pd.concat([x, x ** 2, np.abs(x)], axis=1)
    x.columns = range(x.shape[1])
    res = ev.evaluate(y + 0.3 * np.sin(5 * x[0]), {"x": x, "pca": ev.Method([x], transform="pca")},
                      probes="ridge", n_splits=10, progress=False)
    r2 = res.scores.pivot_table(index="rep", columns="method", values="r2")
    np.testing.assert_allclose(r2["pca"], r2["x"], rtol=0, atol=1e-9)   # the same model, up to round-off
    row = ev.paired_table(res).query("method_a == 'pca' and method_b == 'x'").iloc[0]
    assert (row.wins, row.losses) == (0, 0) and ev.verdict(row) == "no clear winner"
    # a real difference above round-off still counts
    s = res.scores.copy()
    s.loc[(s.method == "pca") & (s.rep < 9), "r2"] += 1e-6  # 9 of 10: 8 would be p = 0.055 by the sign test
    row = ev.paired_table(s).query("method_a == 'pca' and method_b == 'x'").iloc[0]
    assert row.wins == 9 and ev.verdict(row) == "A beats B"


def test_plots_leave_the_users_matplotlib_backend_alone(tmp_path):
    """``plot_task`` and the demo map called ``matplotlib.use("Agg")``: in a notebook that switched the session's
    inline backend off. A task without scores raised ``ZeroDivisionError``."""
    import geopandas as gpd
    import matplotlib
    import shapely

    from geos2vec.demo import plot_embedding_map
    from geos2vec.errors import InvalidInputError
    from geos2vec.evaluate.report import plot_task

    scores = pd.DataFrame({"task": "t", "split": ["random", "random"], "method": ["a", "b"], "probe": "ridge",
                           "n_cells": 10, "r2": [0.5, 0.2], "mae": 1.0})
    before = matplotlib.get_backend()
    matplotlib.use("svg")                                               # the user's choice
    try:
        plot_task(scores, "t", tmp_path / "t.png")
        cells = gpd.GeoDataFrame({f"s2vec_{k}": np.random.default_rng(k).normal(size=4) for k in range(4)},
                                 geometry=[shapely.box(i, 0, i + 1, 1) for i in range(4)], crs="EPSG:4326")
        plot_embedding_map(cells, tmp_path / "m.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InvalidInputError, match=r"no scores for task 'nope'; the scores hold \['t'\]"):
        plot_task(scores, "nope", tmp_path / "x.png")
