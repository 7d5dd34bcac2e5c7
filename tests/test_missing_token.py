"""Coverage-aware training: the learned missing token and the loss over covered pixels / available channels."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely

import geos2vec
from geos2vec.features import combine_counts, count_features
from geos2vec.normalize import FeatureStats
from geos2vec.raster import rasterize

tf = pytest.importorskip("tensorflow")

from geos2vec.model import S2VecModel  # noqa: E402
from geos2vec.model.data import make_dataset  # noqa: E402
from geos2vec.model.mae import masked_mse  # noqa: E402
from geos2vec.model.numpy_encoder import encode as np_encode  # noqa: E402
from geos2vec.model.numpy_encoder import weights_from_keras  # noqa: E402

VENUES = (-74.02, 40.70, -73.95, 40.77)
CITY = (-73.99, 40.72, -73.97, 40.74)


def _points(n, box, seed, cats=("restaurant", "cafe", "school")):
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame({"fclass": rng.choice(cats, n)},
                            geometry=gpd.points_from_xy(rng.uniform(box[0], box[2], n),
                                                        rng.uniform(box[1], box[3], n)), crs=4326)


@pytest.fixture(scope="module")
def data():
    road = gpd.GeoDataFrame({"highway": ["primary"]}, crs=4326,
                            geometry=[shapely.LineString([(CITY[0], 40.73), (CITY[2], 40.73)])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        venues = count_features(_points(60, VENUES, 0), coverage=VENUES)      # no roads
        city = count_features(_points(30, CITY, 1), road, coverage=CITY)
    table = combine_counts([venues, city])
    table = table.loc[:, (table != 0).any() | (table.columns == "road")]
    return table, rasterize(table)


@pytest.fixture(scope="module")
def model(data):
    table, da = data
    m = S2VecModel(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2, epochs=1,
                   seed=2, missing_token=True, batch_size=4)
    m.build(da, stats=FeatureStats.fit(table, log1p=True))
    return m


def test_dataset_carries_coverage_and_availability(data):
    table, da = data
    ds = make_dataset(da, FeatureStats.fit(table, log1p=True), batch_size=64)
    batch = next(iter(ds))
    n = da.sizes["row"] * da.sizes["col"]
    np.testing.assert_array_equal(batch["c"].numpy(), da["covered"].values.reshape(-1, n).astype(np.float32))
    np.testing.assert_array_equal(batch["v"].numpy(),
                                  da["available"].values.reshape(-1, n, da.sizes["feature"]).astype(np.float32))
    road = list(da["feature"].values).index("road")
    v = batch["v"].numpy()
    assert (batch["c"].numpy() == 1).sum() > (v[..., road] == 1).sum() > 0  # roads only in the city box


def test_missing_token_replaces_uncovered_inputs(model, data):
    _, da = data
    km = model.keras_model
    n, f = km.num_patches, km.num_features
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(2, n, f)).astype(np.float32)
    x2 = x1.copy()
    covered = np.ones((2, n), np.float32)
    covered[:, :10] = 0
    x2[:, :10] = rng.normal(size=(2, 10, f))  # what the encoder sees under uncovered pixels must not matter
    h1 = km.embed_patches(x1, covered).numpy()
    h2 = km.embed_patches(x2, covered).numpy()
    np.testing.assert_allclose(h1, h2, atol=1e-6)
    pos = km.pos_embed.embedding.numpy().reshape(n, -1)
    np.testing.assert_allclose(h1[0, :10], km.missing_embed.numpy()[0] + pos[:10], atol=1e-6)
    np.testing.assert_allclose(km.encode(x1, covered=None).numpy(),
                               km.encode(x1, covered=np.ones((2, n), np.float32)).numpy(), atol=1e-6)
    # the NumPy encoder of compact models does the same
    w = weights_from_keras(km)
    np.testing.assert_allclose(np_encode(w, x1, km.num_heads, covered), km.encode(x1, covered=covered).numpy(),
                               atol=1e-4)


def test_loss_counts_available_channels_of_covered_pixels(model, data):
    table, da = data
    km = model.keras_model
    batch = next(iter(make_dataset(da, model.stats, batch_size=64)))
    out = km(batch, training=False)
    loss = float(km.compute_loss(batch, y_pred=out))
    sq = (out["pred"].numpy() - batch["x"].numpy()) ** 2
    wv = batch["v"].numpy() * out["mask"].numpy()[..., None]
    assert loss == pytest.approx(float((sq * wv).sum() / wv.sum()), rel=1e-5)
    assert loss == pytest.approx(float(masked_mse(batch["x"], out["pred"], out["mask"], batch["v"])), rel=1e-6)
    # the reconstruction table reports the covered loss next to the all-pixel one
    table_ev = model.evaluate(da, seed=0, n_masks=2)
    assert {"loss_covered", "ratio_covered_to_visible_mean"} <= set(table_ev.columns)
    assert table_ev.loc["model", "loss_covered"] != pytest.approx(table_ev.loc["model", "loss_all"])


def test_ignore_unobserved_also_leaves_unavailable_channels_out(model, data):
    table, da = data
    km = model.keras_model
    batch = next(iter(make_dataset(da, model.stats, batch_size=64)))
    out = km(batch, training=False)
    km.ignore_unobserved = True
    try:
        loss = float(km.compute_loss(batch, y_pred=out))
    finally:
        km.ignore_unobserved = False
    sq = (out["pred"].numpy() - batch["x"].numpy()) ** 2
    wv = batch["w"].numpy()[..., None] * batch["v"].numpy() * out["mask"].numpy()[..., None]
    assert (batch["v"].numpy() == 0).any() and (batch["w"].numpy() == 1).any()
    assert loss == pytest.approx(float((sq * wv).sum() / wv.sum()), rel=1e-5)   # was: unavailable values counted
    # evaluate's loss_observed likewise (the bookkeeping of geos2vec.model.reconstruction)
    from geos2vec.model.reconstruction import reconstruction_losses

    x, w, v, mask = batch["x"].numpy(), batch["w"].numpy(), batch["v"].numpy(), out["mask"].numpy()
    t = reconstruction_losses(x, w, mask, pred=out["pred"].numpy(), v=v)
    wv = (mask * w)[..., None] * v
    assert t.loc["model", "loss_observed"] == pytest.approx(float((sq * wv).sum() / wv.sum()), rel=1e-5)


def test_images_without_data_do_not_dilute_the_loss(data):
    """An image with no covered pixel used to count as a zero in Keras' per-image mean of val_loss."""
    table, da = data
    empty = da.isel(image=[0, 0, 0]).copy()
    empty = empty.assign_coords(image=np.arange(3) + 10**18, covered=empty["covered"] & False,
                                observed=empty["observed"] & False)
    import xarray as xr

    padded = xr.concat([da, empty], dim="image")
    runs = []
    for val in (da, padded):
        m = S2VecModel(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2, epochs=2,
                       seed=2, batch_size=8)
        __import__("keras").utils.set_random_seed(0)  # the same initial weights for both runs
        m.build(da, stats=FeatureStats.fit(table, log1p=True))
        runs.append(m.fit(da, validation_data=val, verbose=0).history["val_loss"])
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-6)
    from geos2vec.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="no training image has a pixel"):
        S2VecModel(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2,
                   epochs=1).fit(empty, verbose=0)


def test_a_diverged_run_raises_instead_of_keeping_nan_weights(data):
    from geos2vec.errors import InvalidInputError
    from geos2vec.model import S2VecConfig

    for bad in ({"learning_rate": float("inf")}, {"weight_decay": float("nan")}, {"seed": -1}):
        with pytest.raises(InvalidInputError, match="finite number|non-negative integer"):
            S2VecConfig(**bad)
    table, da = data
    m = S2VecModel(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2, epochs=3,
                   seed=2, batch_size=4, learning_rate=1e38, clipnorm=None)
    with pytest.raises(InvalidInputError, match="training diverged"):
        m.fit(da, verbose=0)


def test_missing_token_model_trains_saves_and_embeds_the_same(model, data, tmp_path):
    table, da = data
    model.fit(da, verbose=0)
    before = model.embed(da, as_frame=True, verbose=False)
    model.save(tmp_path / "m", compact=True)
    loaded = geos2vec.load_model(tmp_path / "m")
    assert loaded.config.missing_token and "missing_embed" in loaded.numpy_weights
    after = loaded.embed(da, as_frame=True, verbose=False)
    np.testing.assert_allclose(after.to_numpy(), before.to_numpy(), atol=5e-3)  # float16 weights
    tiled = loaded.embed(da, mode="tiled", as_frame=True, verbose=False)
    assert np.isfinite(tiled.to_numpy()).all()


def test_activity_loss_by_hand():
    from geos2vec.model.mae import activity_mse

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 4, 3)).astype(np.float32)
    pred = rng.normal(size=(2, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [0, 1, 1, 0]], np.float32)
    v = np.ones((2, 4, 3), np.float32)
    v[0, 0, 2] = 0          # one channel unavailable at one pixel
    v[1, 2] = 0             # a pixel with nothing available: left out
    ref, n = 0.0, 0
    for b in range(2):
        for i in range(4):
            if mask[b, i] and v[b, i].sum():
                w = v[b, i]
                ref += ((x[b, i] * w).sum() / w.sum() - (pred[b, i] * w).sum() / w.sum()) ** 2
                n += 1
    assert float(activity_mse(x, pred, mask, v)) == pytest.approx(ref / n, rel=1e-5)
    plain = ((x.mean(-1) - pred.mean(-1)) ** 2 * mask).sum() / mask.sum()
    assert float(activity_mse(x, pred, mask)) == pytest.approx(plain, rel=1e-5)


def test_activity_weight_adds_the_activity_term(model, data):
    from geos2vec.model.mae import activity_mse

    _, da = data
    km = model.keras_model
    batch = next(iter(make_dataset(da, model.stats, batch_size=64)))
    out = km(batch, training=False)
    base = float(km.compute_loss(batch, y_pred=out))
    km.activity_weight = 0.5
    try:
        both = float(km.compute_loss(batch, y_pred=out))
    finally:
        km.activity_weight = 0.0
    extra = float(activity_mse(batch["x"], out["pred"], out["mask"], batch["v"]))
    assert both == pytest.approx(base + 0.5 * extra, rel=1e-5)


def test_dataset_marks_cells_with_counts(data):
    table, da = data
    stats = FeatureStats.fit(table, log1p=True)
    batch = next(iter(make_dataset(da, stats, batch_size=64)))
    n = da.sizes["row"] * da.sizes["col"]
    counts = np.nan_to_num(da.transpose("image", "row", "col", "feature").values.astype(np.float64))
    expected = (counts > 0).any(-1).reshape(-1, n).astype(np.float32)
    assert 0 < expected.sum() < expected.size  # some cells with counts, some without
    np.testing.assert_array_equal(batch["e"].numpy(), expected)


def test_nonempty_weight_is_a_weighted_mean_over_masked_values(model, data):
    _, da = data
    km = model.keras_model
    batch = next(iter(make_dataset(da, model.stats, batch_size=64)))
    mask = np.asarray(km(batch, training=False)["mask"])
    x, v, e = batch["x"].numpy(), batch["v"].numpy(), batch["e"].numpy()
    # predictions off by 2 on counted cells and by 1 on empty ones: reweighting must move the loss
    pred = x + 1.0 + e[..., None]
    out = {"pred": pred, "mask": mask}
    assert (mask * e).sum() > 0 and (mask * (1 - e)).sum() > 0  # masked cells of both kinds
    base = float(km.compute_loss(batch, y_pred=out))
    km.nonempty_weight = 3.0
    try:
        weighted = float(km.compute_loss(batch, y_pred=out))
        no_flags = float(km.compute_loss({k: t for k, t in batch.items() if k != "e"}, y_pred=out))
    finally:
        km.nonempty_weight = 1.0
    wv = v * mask[..., None] * (1.0 + 2.0 * e)[..., None]  # available values of masked cells, counted cells x 3
    ref = ((x - pred) ** 2 * wv).sum() / wv.sum()
    assert weighted == pytest.approx(ref, rel=1e-5)
    plain = v * mask[..., None]
    assert base == pytest.approx(((x - pred) ** 2 * plain).sum() / plain.sum(), rel=1e-5)
    assert weighted != pytest.approx(base, rel=1e-3)
    assert no_flags == pytest.approx(base, rel=1e-6)  # without "e" in the batch nothing is reweighted


def test_nonempty_weight_in_config_and_model():
    from geos2vec.model import S2VecConfig
    from geos2vec.model.mae import MaskedAutoencoder, build_mae

    cfg = S2VecConfig(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2,
                      nonempty_weight=2.5)
    km = build_mae(cfg, num_patches=4, num_features=3)
    assert km.nonempty_weight == 2.5
    assert MaskedAutoencoder.from_config(km.get_config()).nonempty_weight == 2.5
    assert S2VecConfig.from_dict(cfg.to_dict()).nonempty_weight == 2.5
    for bad in ({"nonempty_weight": 0.0}, {"nonempty_weight": -1.0}, {"activity_weight": -0.5}):
        with pytest.raises(ValueError, match="nonempty_weight"):
            S2VecConfig(**bad)
