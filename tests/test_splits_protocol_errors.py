"""Refusals of the splits and of the protocol, the hold-out given as a mask, and MLP sweeps whose widths diverge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec import cell_to_latlng, latlng_to_cell
from geos2vec import evaluate as E
from geos2vec.errors import InvalidInputError
from geos2vec.evaluate import protocol
from geos2vec.evaluate.protocol import Method


def _task(n_side=8, seed=0):
    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(n_side), -121.95 + 0.02 * np.arange(n_side), indexing="ij")
    cells = np.unique(latlng_to_cell(lat.ravel(), lng.ravel(), 12))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(cells), 3))
    idx = pd.Index(cells, name="cell_id")
    return pd.Series(x @ [2.0, -1.0, 0.5] + 0.1 * rng.standard_normal(len(cells)), index=idx, name="y"), \
        pd.DataFrame(x, index=idx)


# ------------------------------------------------------------------ splits
def test_split_functions_refuse_bad_arguments():
    with pytest.raises(ValueError, match="n_splits must be >= 1, got 0"):
        E.random_splits(50, 0)
    with pytest.raises(ValueError, match="n_splits must be >= 1, got -1"):
        E.blocked_splits(np.arange(50) % 5, -1)
    for bad in ((0.6, 0.4), (0.5, 0.6, -0.1), (0.5, 0.2, 0.2)):
        with pytest.raises(ValueError, match=r"fractions must be three positive numbers summing to 1, got \["):
            E.blocked_splits(np.arange(50) % 5, 2, fractions=bad)
    with pytest.raises(ValueError, match=r"region splits need at least 2 regions, got \['a'\]"):
        E.region_splits(np.array(["a"] * 10), 2)


def test_holdout_mask_refuses_bad_regions():
    cells = latlng_to_cell(np.array([37.3, 37.4, 37.45]), np.array([-121.9, -121.8, -121.9]), 12)
    for bbox in ((-122.0, 37.0, -121.0), (-121.0, 37.0, -122.0, 38.0), (-122.0, 38.0, -121.0, 37.0)):
        with pytest.raises(ValueError, match=r"bbox must be \(min_lon, min_lat, max_lon, max_lat\), got"):
            E.holdout_mask(cells, bbox=bbox)
    for geom in (shapely.LineString([(-122, 37), (-121, 38)]), shapely.Point(-121.9, 37.3)):
        with pytest.raises(TypeError, match=f"polygon must be a shapely Polygon/MultiPolygon, got {geom.geom_type}"):
            E.holdout_mask(cells, polygon=geom)
    with pytest.raises(ValueError, match="side must be 'east' or 'west', got 'north'"):
        E.holdout_mask(cells, lon=-121.85, side="north")
    with pytest.raises(ValueError, match="exactly one of bbox=, polygon=, lon="):
        E.holdout_mask(cells, bbox=(-122, 37, -121, 38), lon=-121.85)
    # a multipolygon is a region: its parts' union (shapely reference)
    parts = shapely.MultiPolygon([shapely.box(-121.95, 37.25, -121.85, 37.35),
                                  shapely.box(-121.82, 37.35, -121.7, 37.5)])
    lat, lng = cell_to_latlng(cells)
    np.testing.assert_array_equal(E.holdout_mask(cells, polygon=parts), shapely.contains_xy(parts, lng, lat))
    np.testing.assert_array_equal(E.holdout_mask(cells, polygon=parts), [True, True, False])  # by hand


@pytest.mark.parametrize("n_test, n_rest, val_fraction", [(0, 20, 0.25), (5, 0, 0.25), (5, 2, 0.25), (5, 2, 0.5),
                                                              (5, 40, 0.01)])
def test_holdout_splits_say_which_side_is_short(n_test, n_rest, val_fraction):
    mask = np.r_[np.ones(n_test, bool), np.zeros(n_rest, bool)]
    n_val = int(round(val_fraction * n_rest))
    with pytest.raises(ValueError, match=f"hold-out leaves {n_test} test and {n_rest} train/val cells") as info:
        E.holdout_splits(mask, 2, val_fraction=val_fraction)
    assert isinstance(info.value, InvalidInputError)
    # the message says what is missing: the validation or training cells the train/val side cannot give
    assert f"{n_val} for validation" in str(info.value) and "at least 1 test, 1 validation and 2 training" in \
        str(info.value)
    ok = np.r_[np.ones(1, bool), np.zeros(3, bool)]                      # the smallest that works: 1 / 1 / 2
    ((tr, va, te),) = E.holdout_splits(ok, 1)
    assert (len(tr), len(va), te.tolist()) == (2, 1, [0])


# ------------------------------------------------------------------ Method and evaluate refusals
def test_method_refuses_bad_specs():
    t = pd.DataFrame(np.ones((3, 2)))
    with pytest.raises(ValueError, match="a Method needs at least one table"):
        Method([])
    with pytest.raises(ValueError, match="transform must be None, 'pca' or 'random projection', got 'svd'"):
        Method([t], transform="svd")
    with pytest.raises(ValueError, match="scale needs one entry per block"):
        Method([t, t], scale=[True])
    m = Method(t, scale=[0])                                             # one table is a list of one block
    assert len(m.blocks) == 1 and m.blocks[0] is t and m.scale == [False]


def test_evaluate_refuses_bad_inputs():
    target, x = _task()
    kw = dict(probes="ridge", n_splits=2, progress=False)
    with pytest.raises(ValueError, match="methods must be a non-empty dict"):
        E.evaluate(target, {}, **kw)
    with pytest.raises(ValueError, match="methods must be a non-empty dict"):
        E.evaluate(target, [x], **kw)
    with pytest.raises(ValueError, match=r"probes must be a non-empty subset of \['ridge', 'mlp'\], got \['lasso'\]"):
        E.evaluate(target, {"x": x}, probes="lasso", progress=False)
    for key in ("lr", "hidden", "dropout"):
        with pytest.raises(ValueError, match=f"sweep\\['{key}'\\] is empty"):
            E.evaluate(target, {"x": x}, sweep={key: []}, **kw)
    twice = pd.concat([target, target.iloc[:3]])
    with pytest.raises(ValueError, match="target has duplicate sample ids"):
        E.evaluate(twice, {"x": x}, **kw)
    pooling = pd.DataFrame({"sample": target.index, "cell_id": target.index})
    with pytest.raises(ValueError, match=r"pooling needs columns sample, cell_id, weight; missing \['weight'\]"):
        E.evaluate(target, {"x": x}, pooling=pooling, **kw)
    with pytest.raises(ValueError, match="split='region' needs regions="):
        E.evaluate(target, {"x": x}, split="region", **kw)
    # 9 samples with a target, or a method with rows for only 7 of the cells: too few to split
    with pytest.raises(ValueError, match="only 9 samples have a target and data in every method; need at least 10"):
        E.evaluate(target.iloc[:9], {"x": x}, **kw)
    with pytest.raises(ValueError, match="only 7 samples have a target and data in every method"):
        E.evaluate(target, {"x": x, "few": x.iloc[:7]}, **kw)
    # regions must label every evaluated sample
    regions = pd.Series(np.where(np.arange(len(target)) % 2, "a", "b"), index=target.index).iloc[3:]
    with pytest.raises(ValueError, match="regions has no label for 3 evaluated samples"):
        E.evaluate(target, {"x": x}, split="region", regions=regions, **kw)


# ------------------------------------------------------------------ the hold-out as a mask
def test_holdout_mask_series_of_cells_is_the_test_set():
    target, x = _task()
    cells = target.index.to_numpy()
    lat, lng = cell_to_latlng(cells)
    east = lng >= np.quantile(lng, 0.7)
    # a mask with int64 storage of the ids (negative here), and without 3 east cells (missing: not test)
    assert (cells.view(np.int64) < 0).all()
    left_out = cells[east][:3]
    mask = pd.Series(east, index=pd.Index(cells.view(np.int64))).drop(left_out.view(np.int64))
    res = E.evaluate(target, {"x": x}, holdout=mask, probes="ridge", n_splits=3, progress=False)
    want = set(cells[east].tolist()) - set(left_out.tolist())
    assert len(want) == east.sum() - 3 > 5
    assert res.config["split"] == "holdout" and res.config["holdout"] == "mask"
    for _, g in res.predictions.groupby("rep"):
        assert set(g["sample"].to_numpy(np.uint64).tolist()) == want
    assert (res.scores.n_test == len(want)).all()
    assert res.config["split_sizes"]["holdout"][2] == len(want)
    assert sum(res.config["split_sizes"]["holdout"][:2]) == len(cells) - len(want)


def test_holdout_mask_series_of_pooled_samples():
    target, x = _task()
    cells = target.index.to_numpy()
    # polygon samples of two cells each (weights 0.7 / 0.3), labelled by name
    names = [f"tract{i}" for i in range(len(cells) - 1)]
    pooling = pd.DataFrame({"sample": np.repeat(names, 2), "cell_id": np.c_[cells[:-1], cells[1:]].ravel(),
                            "weight": np.tile([0.7, 0.3], len(names))})
    y = pd.Series(target.to_numpy()[:-1], index=pd.Index(names), name="y")
    test = {"tract3", "tract10", "tract11", "tract40"}
    mask = pd.Series([n in test for n in names], index=names)
    res = E.evaluate(y, {"x": x}, holdout=mask, pooling=pooling, probes="ridge", n_splits=1, progress=False)
    for _, g in res.predictions.groupby("rep"):
        assert set(g["sample"]) == test
    # purged: training/validation tracts sharing a cell with a test tract are left out (the neighbours)
    neighbours = {f"tract{i + d}" for i in (3, 10, 11, 40) for d in (-1, 1)} - test
    sizes = res.config["split_sizes"]["holdout"]                       # one repetition: exact sizes
    assert sum(sizes[:2]) == len(names) - len(test) - len(neighbours)
    assert res.config["purged"]["holdout"] == len(neighbours)


# ------------------------------------------------------------------ MLP sweeps whose widths diverge
def _fake_train_group(diverged_widths):
    """A trainer whose validation loss is NaN for every head of ``diverged_widths``, else 0.1 x its width index."""
    def fake(xs, ys, tr, va, *, eval_idx, lrs, hidden, **kw):
        heads = len(lrs)
        val = np.full(heads, np.nan) if hidden in diverged_widths else np.full(heads, 1.0 / hidden)
        pred = np.tile(np.linspace(0, 1, eval_idx.shape[1]), (heads, 1)) + hidden
        return pred, val, None
    return fake


def _probe(y, splits, hidden):
    x = np.random.default_rng(0).normal(size=(len(y), 3))
    return protocol._mlp_probe("m", Method([0]), [x], y, splits, sweep={"hidden": hidden, "lr": [1e-3, 1e-2],
                               "dropout": [0.0]}, fusion="concat", fusion_units=8, max_epochs=1, patience=1,
                               weight_decay=0.0, batch_size=8, seed=0, tick=lambda: None, target_scale="standard")


def test_mlp_probe_skips_a_width_where_every_configuration_diverged(monkeypatch):
    y = np.random.default_rng(1).normal(5.0, 2.0, 40)
    splits = [(np.arange(0, 20), np.arange(20, 30), np.arange(30, 40))]
    for diverged, chosen in (({4}, 8), ({8}, 4)):
        monkeypatch.setattr(protocol, "_train_group", _fake_train_group(diverged))
        ((pred, val_mse, cfg),) = _probe(y, splits, [4, 8])
        assert cfg["hidden"] == chosen and cfg["lr"] == 1e-3
        mu, sd = y[:20].mean(), y[:20].std()                               # back to the target's units
        np.testing.assert_allclose(pred, (np.linspace(0, 1, 10) + chosen) * sd + mu)
        assert val_mse == pytest.approx(sd ** 2 / chosen)


def test_mlp_probe_predicts_the_training_mean_when_every_configuration_diverged(monkeypatch):
    y = np.random.default_rng(2).normal(5.0, 2.0, 45)
    splits = E.random_splits(45, 3, seed=4)
    monkeypatch.setattr(protocol, "_train_group", _fake_train_group({4, 8}))
    results = _probe(y, splits, [4, 8])
    assert len(results) == 3
    for (tr, _, te), (pred, val_mse, cfg) in zip(splits, results):
        np.testing.assert_allclose(pred, np.full(len(te), y[tr].mean()))
        assert val_mse == np.inf and cfg["hidden"] == 0
        assert np.isnan(cfg["lr"]) and np.isnan(cfg["dropout"])
