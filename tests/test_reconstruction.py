"""Reconstruction evaluation: seeded masks, parameter-free predictors, ``MaskedAutoencoder.reconstruct``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geos2vec.model import S2VecModel
from geos2vec.model.reconstruction import (LossAccumulator, baseline_predictions, draw_noise, mask_from_noise,
                                           reconstruction_losses)

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from geos2vec.model.data import make_dataset  # noqa: E402
from geos2vec.model.mae import masked_mse, masks_from_noise  # noqa: E402
from test_model import TINY, synthetic_images  # noqa: E402

# dropout on, so that a forward pass in training mode would differ: evaluation must not use it
CFG = TINY.replace(dropout=0.2, mask_ratio=0.5)


# --------------------------------------------------------------------------- plain arrays
# two images of four patches with two features; patch (0, 2) and (1, 1) are masked but unobserved
X = np.array([[[1, 2], [3, 4], [0, 0], [5, -1]],
              [[2, 2], [0, 1], [1, 0], [4, 4]]], dtype=np.float32)
W = np.array([[1, 1, 0, 1], [1, 0, 1, 1]], dtype=np.float32)
MASK = np.array([[0, 1, 1, 0], [1, 1, 0, 0]], dtype=np.float32)
EMPTY = np.array([-1.0, 0.5])


def test_predictor_losses_by_hand():
    df = reconstruction_losses(X, W, MASK, empty=EMPTY, pred=X + 1.0)
    assert list(df.index) == ["model", "zero", "empty", "visible_mean", "local_mean"]  # 2 x 2 images
    df = df.drop(index="local_mean")  # checked against a loop in test_local_mean_matches_a_loop_reference
    # per-patch MSE of the masked patches (0,1) observed, (0,2) unobserved, (1,0) observed, (1,1) unobserved
    # zero:          (9+16)/2 = 12.5,      0,            (4+4)/2 = 4,        (0+1)/2 = .5
    # empty (-1,.5): (16+12.25)/2=14.125,  (1+.25)/2=.625, (9+2.25)/2=5.625, (1+.25)/2=.625
    # visible mean: image 0 (3, .5), image 1 (2.5, 2):
    #                (0+12.25)/2 = 6.125,  (9+.25)/2=4.625, (.25+0)/2=.125,   (6.25+1)/2=3.625
    expected = pd.DataFrame({"loss_observed": [1.0, (12.5 + 4) / 2, (14.125 + 5.625) / 2, (6.125 + .125) / 2],
                             "loss_all": [1.0, 17 / 4, 21 / 4, 14.5 / 4]}, index=df.index)
    expected["loss_covered"] = expected["loss_all"]  # coverage unknown: every pixel counts as covered
    pd.testing.assert_frame_equal(df, expected, rtol=1e-12, atol=0)
    # without the observed weight every masked patch counts
    all_w = reconstruction_losses(X, None, MASK, empty=EMPTY)
    np.testing.assert_allclose(all_w["loss_observed"], all_w["loss_all"])
    assert "model" not in all_w.index


def test_covered_loss_counts_available_channels_only():
    # feature 1 is unavailable in image 0 (a source without that channel): it must not count there
    v = np.ones_like(X)
    v[0, :, 1] = 0
    df = reconstruction_losses(X, W, MASK, empty=EMPTY, v=v)
    # zero, masked patches: (0,1) feature 0 only: 9; (0,2): 0; (1,0): 4, 4; (1,1): 0, 1 -> 18 / 6 values
    assert df.loc["zero", "loss_covered"] == pytest.approx(18 / 6, rel=1e-12)
    # the other columns are unchanged
    ref = reconstruction_losses(X, W, MASK, empty=EMPTY)
    pd.testing.assert_series_equal(df["loss_all"], ref["loss_all"])
    # all available: the same as without v
    full = reconstruction_losses(X, W, MASK, empty=EMPTY, v=np.ones_like(X))
    pd.testing.assert_series_equal(full["loss_covered"], ref["loss_covered"], rtol=1e-12)
    with pytest.raises(ValueError, match="shape of x"):
        reconstruction_losses(X, W, MASK, v=v[:, :, :1])


def test_covered_loss_and_visible_mean_by_hand():
    # patch (0, 2) is masked and not covered; patch (1, 3) is visible and not covered
    c = np.array([[1, 1, 0, 1], [1, 1, 1, 0]], dtype=np.float32)
    df = reconstruction_losses(X, W, MASK, empty=EMPTY, c=c)
    # zero on the covered masked patches (0,1), (1,0), (1,1): 12.5, 4, .5
    assert df.loc["zero", "loss_covered"] == pytest.approx(17 / 3, rel=1e-12)
    # visible mean over visible covered patches: image 0 (3, .5); image 1 only patch 2: (1, 0)
    # (0,1): (0 + 12.25)/2 = 6.125; (1,0): (1 + 4)/2 = 2.5; (1,1): (1 + 1)/2 = 1
    assert df.loc["visible_mean", "loss_covered"] == pytest.approx((6.125 + 2.5 + 1) / 3, rel=1e-12)
    # observed / all keep their meaning; the visible mean changed for image 1 only
    assert df.loc["zero", "loss_all"] == pytest.approx(17 / 4, rel=1e-12)


def test_local_mean_matches_a_loop_reference():
    rng = np.random.default_rng(7)
    side, f = 4, 2
    x = rng.normal(size=(3, side * side, f))
    mask = (rng.random((3, side * side)) < 0.6).astype(float)
    c = (rng.random((3, side * side)) < 0.8).astype(float)
    preds = baseline_predictions(x, mask, None, c)
    vis = (1 - mask) * c
    for b in range(3):
        vm = (vis[b][:, None] * x[b]).sum(0) / max(vis[b].sum(), 1)
        np.testing.assert_allclose(preds["visible_mean"][b, 0], vm, rtol=1e-12)
        for p in range(side * side):
            r, col = divmod(p, side)
            near = [q for q in range(side * side) if q != p and abs(q // side - r) <= 2 and abs(q % side - col) <= 2
                    and vis[b, q] == 1]
            m = len(near)
            local = x[b, near].mean(0) if m else np.zeros(f)
            ref = m / (m + 4) * local + 4 / (m + 4) * vm
            np.testing.assert_allclose(preds["local_mean"][b, p], ref, rtol=1e-10, atol=1e-12)


def test_predictors_match_numpy_reference():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 9, 3)).astype(np.float32)
    w = (rng.random((5, 9)) < 0.7).astype(np.float32)
    mask = mask_from_noise(draw_noise(rng, 5, 9), num_keep=3)
    empty = rng.normal(size=3)
    preds = baseline_predictions(x, mask, empty)
    xd = x.astype(np.float64)
    for b in range(5):
        vis = mask[b] == 0
        np.testing.assert_allclose(preds["visible_mean"][b, 0], xd[b, vis].mean(axis=0), rtol=1e-12)
    df = reconstruction_losses(x, w, mask, empty=empty)
    for name, p in [("zero", 0.0), ("empty", empty), ("visible_mean", preds["visible_mean"])]:
        err = ((xd - p) ** 2).mean(-1)
        sel_obs, sel_all = (mask == 1) & (w == 1), mask == 1
        assert df.loc[name, "loss_observed"] == pytest.approx(err[sel_obs].mean(), rel=1e-12)
        assert df.loc[name, "loss_all"] == pytest.approx(err[sel_all].mean(), rel=1e-12)


def test_accumulator_pools_over_masks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 8, 2))
    w = (rng.random((4, 8)) < 0.5).astype(float)
    masks = [mask_from_noise(draw_noise(rng, 4, 8), 2) for _ in range(3)]
    acc = LossAccumulator(3, predictors=["zero", "visible_mean"])
    for k, m in enumerate(masks):
        acc.add(k, x[:2], w[:2], m[:2], baseline_predictions(x[:2], m[:2]))   # two batches per mask
        acc.add(k, x[2:], w[2:], m[2:], baseline_predictions(x[2:], m[2:]))
    table = acc.table()
    ref = reconstruction_losses(np.concatenate([x] * 3), np.concatenate([w] * 3), np.concatenate(masks))
    np.testing.assert_allclose(table[["loss_observed", "loss_all", "loss_covered"]], ref.loc[table.index], rtol=1e-12)
    per_mask = [reconstruction_losses(x, w, m).loc["zero", "loss_all"] for m in masks]
    assert table.loc["zero", "loss_all_sd"] == pytest.approx(np.std(per_mask, ddof=1), rel=1e-9)
    assert table.loc["visible_mean", "ratio_all_to_visible_mean"] == 1.0


def test_channel_table_by_hand():
    # X, MASK with coverage: patch (1, 1) uncovered; feature 1 unavailable in image 0
    c = np.array([[1, 1, 1, 1], [1, 0, 1, 1]], dtype=np.float32)
    v = np.ones_like(X)
    v[0, :, 1] = 0
    acc = LossAccumulator(1, predictors=["zero", "visible_mean"], n_features=2)
    acc.add(0, X, W, MASK, baseline_predictions(X, MASK, c=c), c, v)
    t = acc.channel_table(["a", "b"])
    # values counted: masked & covered = (0,1), (0,2), (1,0); feature b only in image 1 -> (1,0)
    assert t["values"].tolist() == [3, 1]
    # zero: feature a: 3^2 + 0^2 + 2^2 = 13 over 3; feature b: 2^2 = 4 over 1
    assert t.loc["a", "loss_zero"] == pytest.approx(13 / 3) and t.loc["b", "loss_zero"] == pytest.approx(4.0)
    # visible mean: image 0 keeps patches 0, 3 -> a: (1 + 5) / 2 = 3; image 1 keeps 2, 3 -> a: 2.5, b: 2
    # a: (3 - 3)^2 + (0 - 3)^2 + (2 - 2.5)^2 = 9.25 over 3; b: (2 - 2)^2 = 0
    assert t.loc["a", "loss_visible_mean"] == pytest.approx(9.25 / 3) and t.loc["b", "loss_visible_mean"] == 0
    assert t["share"].tolist() == pytest.approx([13 / 17, 4 / 17])      # the first predictor's, no model here
    # pooled over channels it is the table's loss_covered
    pooled = (t["values"] * t["loss_zero"]).sum() / t["values"].sum()
    assert pooled == pytest.approx(acc.table().loc["zero", "loss_covered"], rel=1e-12)
    with pytest.raises(ValueError, match="n_features"):
        LossAccumulator(1).channel_table()
    with pytest.raises(ValueError, match="names"):
        acc.channel_table(["a"])


def test_noise_is_a_seeded_stream_without_ties():
    a = draw_noise(np.random.default_rng([0, 1]), 8, 16)
    rng = np.random.default_rng([0, 1])
    np.testing.assert_array_equal(np.concatenate([draw_noise(rng, 3, 16), draw_noise(rng, 5, 16)]), a)
    assert a.dtype == np.float32 and (a >= 0).all() and (a < 1).all()
    assert all(len(np.unique(row)) == 16 for row in a)
    assert not np.array_equal(a, draw_noise(np.random.default_rng([0, 2]), 8, 16))
    mask = mask_from_noise(a, 5)
    assert (mask.sum(1) == 11).all()
    _, _, tf_mask = masks_from_noise(a, 5)
    np.testing.assert_array_equal(np.asarray(tf_mask), mask)


# --------------------------------------------------------------------------- model
@pytest.fixture(scope="module")
def images():
    da = synthetic_images(n_images=6, seed=2)
    # some fill pixels (no row in the feature table: zero counts, unobserved)
    obs = da["observed"].values.copy()
    obs[:, 0, :2] = False
    vals = da.values.copy()
    vals[~obs] = 0
    return da.copy(data=vals).assign_coords(observed=(("image", "row", "col"), obs))


@pytest.fixture(scope="module")
def model(images):
    return S2VecModel(CFG).build(images)


def _arrays(model, images):
    batch = next(iter(make_dataset(images, model.stats, batch_size=1000)))
    return batch["x"].numpy(), batch["w"].numpy()


def test_evaluate_is_seeded(model, images):
    a = model.evaluate(images, seed=0, n_masks=4)
    model.keras_model(_arrays(model, images)[0], training=True)   # advances the masking layer's own generator
    b = model.evaluate(images, seed=0, n_masks=4)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.index) == ["model", "zero", "empty", "visible_mean", "local_mean"]
    assert {"loss_observed", "loss_all", "ratio_observed_to_visible_mean"} <= set(a.columns)
    assert a.attrs["seed"] == 0 and a.attrs["n_masks"] == 4 and a.attrs["n_images"] == 6
    c = model.evaluate(images, seed=1, n_masks=4)
    assert not np.allclose(a["loss_all"], c["loss_all"])
    # the masks do not depend on how the images are batched (the model's numbers up to float rounding)
    d = model.evaluate(images, seed=0, n_masks=4, batch_size=4)
    np.testing.assert_allclose(d[["loss_observed", "loss_all"]], a[["loss_observed", "loss_all"]], rtol=1e-5)
    assert isinstance(model.evaluate(images, seed=None, n_masks=1).attrs["seed"], int)
    with pytest.raises(ValueError, match="n_masks"):
        model.evaluate(images, n_masks=0)


def test_evaluate_matches_reconstruct_and_masked_mse(model, images):
    km = model.keras_model
    x, w = _arrays(model, images)
    n_images, n = x.shape[:2]
    empty = model.stats.transform(np.zeros(len(model.channels)))
    np.testing.assert_allclose(x[w == 0], np.broadcast_to(empty, x[w == 0].shape), rtol=1e-5, atol=1e-6)
    assert (w == 0).any() and (w == 1).any()
    table = model.evaluate(images, seed=3, n_masks=2)
    preds, masks, obs_sums, all_losses, n_obs = [], [], [], [], []
    for k in range(2):
        noise = draw_noise(np.random.default_rng([3, k]), n_images, n)
        out = km.reconstruct(x, noise)
        mask = np.asarray(out["mask"])
        np.testing.assert_array_equal(mask, mask_from_noise(noise, km.masking.num_keep))
        preds.append(np.asarray(out["pred"]))
        masks.append(mask)
        cnt = float((mask * w).sum())
        obs_sums.append(float(masked_mse(x, out["pred"], out["mask"], w)) * cnt)
        n_obs.append(cnt)
        all_losses.append(float(masked_mse(x, out["pred"], out["mask"])))
    assert table.loc["model", "loss_observed"] == pytest.approx(sum(obs_sums) / sum(n_obs), rel=1e-5)
    assert table.loc["model", "loss_all"] == pytest.approx(np.mean(all_losses), rel=1e-5)
    ref = reconstruction_losses(np.concatenate([x, x]), np.concatenate([w, w]), np.concatenate(masks),
                                empty=empty, pred=np.concatenate(preds))
    np.testing.assert_allclose(table[["loss_observed", "loss_all", "loss_covered"]], ref.loc[table.index], rtol=1e-5)
    # the legacy interface: the model's training loss (all masked patches here) and the zero predictor
    loss, zero = model.evaluate(images, seed=3, n_masks=2, baseline=True)
    assert (loss, zero) == (table.loc["model", "loss_all"], table.loc["zero", "loss_all"])
    assert model.evaluate(images, seed=3, n_masks=2, baseline=False) == loss


def test_call_is_reconstruct_with_the_masking_layers_noise(model, images):
    km = model.keras_model
    x = tf.constant(_arrays(model, images)[0])
    gen = km.masking.seed_generator
    state = gen.state.numpy()
    out = km(x, training=False)
    gen.state.assign(state)
    _, _, layer_mask = km.masking(x)          # the layer's own draw from the same generator state
    gen.state.assign(state)
    again = km.reconstruct(x, km.draw_noise(x.shape[0]), training=False)
    np.testing.assert_array_equal(np.asarray(layer_mask), np.asarray(out["mask"]))
    np.testing.assert_array_equal(np.asarray(again["mask"]), np.asarray(out["mask"]))
    np.testing.assert_array_equal(np.asarray(again["pred"]), np.asarray(out["pred"]))
    assert np.asarray(out["mask"]).sum(1).tolist() == [km.num_patches - km.masking.num_keep] * x.shape[0]


def test_evaluate_in_the_units_of_other_statistics(model, images):
    """``stats=``: the reconstruction and the images mapped affinely into other units, predictors computed there."""
    from geos2vec.normalize import FeatureStats

    km = model.keras_model
    x, w = _arrays(model, images)
    own = model.evaluate(images, seed=3, n_masks=2)
    same = model.evaluate(images, seed=3, n_masks=2, stats=model.stats)
    np.testing.assert_allclose(same[own.columns], own, rtol=1e-5)
    other = FeatureStats(list(model.channels), 10, model.stats.mean + np.linspace(-1, 1, len(model.channels)),
                         model.stats.m2 * np.linspace(0.5, 4.0, len(model.channels)), log1p=model.stats.log1p)
    table = model.evaluate(images, seed=3, n_masks=2, stats=other)
    assert table.attrs["stats"] == "given" and own.attrs["stats"] == "model"
    # by hand: counts-space values (before normalization) re-normalized with the other statistics
    to_other = lambda z: (z * model.stats.std + model.stats.mean - other.mean) / other.std  # noqa: E731
    preds, masks = [], []
    for k in range(2):
        out = km.reconstruct(x, draw_noise(np.random.default_rng([3, k]), *x.shape[:2]))
        preds.append(to_other(np.asarray(out["pred"])))
        masks.append(np.asarray(out["mask"]))
    xo = to_other(x)
    ref = reconstruction_losses(np.concatenate([xo, xo]), np.concatenate([w, w]), np.concatenate(masks),
                                empty=other.transform(np.zeros(len(model.channels))), pred=np.concatenate(preds))
    np.testing.assert_allclose(table[["loss_observed", "loss_all", "loss_covered"]], ref.loc[table.index], rtol=1e-4)
    assert not np.allclose(table["loss_all"], own["loss_all"])
    with pytest.raises(ValueError, match="channels"):
        model.evaluate(images, n_masks=1, stats=FeatureStats(["a"], 1, np.zeros(1), np.ones(1)))


def test_evaluate_by_channel_pools_to_the_covered_loss(model, images):
    table = model.evaluate(images, seed=3, n_masks=2)
    chan = model.evaluate(images, seed=3, n_masks=2, by="channel")
    assert list(chan.index) == list(model.channels) and chan.attrs["n_masks"] == 2
    for p in table.index:
        pooled = (chan["values"] * chan[f"loss_{p}"]).sum() / chan["values"].sum()
        assert pooled == pytest.approx(table.loc[p, "loss_covered"], rel=1e-6)
    assert chan["share"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(chan["ratio_to_visible_mean"], chan["loss_model"] / chan["loss_visible_mean"])
    both = model.evaluate(images, seed=3, n_masks=2, by=("predictor", "channel"))  # one pass, both tables
    pd.testing.assert_frame_equal(both[0], table, check_exact=True)
    pd.testing.assert_frame_equal(both[1], chan, check_exact=True)
    assert both[0].attrs == table.attrs and both[1].attrs == chan.attrs
    with pytest.raises(ValueError, match="by must be"):
        model.evaluate(images, by="image")
    with pytest.raises(ValueError, match="by must be"):
        model.evaluate(images, by=("channel", "predictor"))
    with pytest.raises(ValueError, match="baseline"):
        model.evaluate(images, by="channel", baseline=True)
