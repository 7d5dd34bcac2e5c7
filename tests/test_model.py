"""Tests of geos2vec.model: the S2Vec masked autoencoder (tiny configs, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from geos2vec.errors import InvalidInputError
import xarray as xr

from geos2vec.cells import cell_to_parent, cell_to_rowcol, get_level, latlng_to_cell, rowcol_to_cell
from geos2vec.model import S2VecConfig, S2VecModel, load_model
from geos2vec.normalize import FeatureStats

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from geos2vec.model.data import make_dataset, match_channels, split_images  # noqa: E402
from geos2vec.model.layers import RandomMasking  # noqa: E402
from geos2vec.model.mae import build_mae, masked_mse  # noqa: E402

TINY = S2VecConfig(embedding_dim=32, encoder_layers=2, decoder_dim=16, decoder_layers=1, num_heads=4,
                   dropout=0.0, batch_size=8, epochs=2, shuffle_buffer=64, validation_split=0.2, seed=1)


# --------------------------------------------------------------------------- data helpers
def images_from_table(table: pd.DataFrame, image_level: int) -> xr.DataArray:
    """Reference rasterization (what geos2vec.raster.rasterize produces) of a cell-indexed table."""
    cells = np.asarray(table.index, dtype=np.uint64)
    level = int(get_level(cells[:1])[0])
    parents = cell_to_parent(cells, image_level)
    images = np.unique(parents)
    side = 2 ** (level - image_level)
    row, col = cell_to_rowcol(cells, image_level)
    pos = np.searchsorted(images, parents)
    data = np.zeros((len(images), side, side, table.shape[1]), dtype=table.to_numpy().dtype)
    data[pos, row, col] = table.to_numpy()
    observed = np.zeros((len(images), side, side), dtype=bool)
    observed[pos, row, col] = True
    rr, cc = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    cell_id = rowcol_to_cell(images[:, None, None], rr[None], cc[None], level).astype(np.uint64)
    return xr.DataArray(data, dims=("image", "row", "col", "feature"),
                        coords={"image": images, "feature": [str(c) for c in table.columns],
                                "cell_id": (("image", "row", "col"), cell_id),
                                "observed": (("image", "row", "col"), observed)},
                        attrs={"image_level": image_level, "patch_level": level})


def synthetic_images(n_images=12, image_level=10, n_features=5, seed=0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    lat = rng.uniform(40.0, 41.0, 4000)
    lng = rng.uniform(-74.5, -73.5, 4000)
    cells = np.unique(latlng_to_cell(lat, lng, 12))
    imgs = np.unique(cell_to_parent(cells, image_level))[:n_images]
    cells = cells[np.isin(cell_to_parent(cells, image_level), imgs)]
    counts = rng.poisson(rng.uniform(0.5, 5.0, n_features), size=(len(cells), n_features))
    table = pd.DataFrame(counts, index=pd.Index(cells, name="cell_id"), columns=[f"c{i}" for i in range(n_features)])
    return images_from_table(table, image_level)


@pytest.fixture(scope="module")
def synth():
    return synthetic_images()


@pytest.fixture(scope="module")
def real_images(shared_data):
    """Level-10 images (4x4 level-12 pixels) of POI-category counts of two real cities."""
    frames = [pd.read_parquet(shared_data / "pois" / f"{c}.parquet", columns=["fclass", "geometry"])
              for c in ("san_jose", "los_angeles", "chicago")]
    gdf = pd.concat(frames, ignore_index=True)
    import shapely

    pts = shapely.from_wkb(gdf["geometry"]) if gdf["geometry"].dtype == object else gdf["geometry"]
    lng, lat = shapely.get_x(pts), shapely.get_y(pts)
    top = gdf["fclass"].value_counts().index[:12]
    cat = gdf["fclass"].where(gdf["fclass"].isin(top), "other")
    cells = latlng_to_cell(lat, lng, 12)
    table = pd.crosstab(pd.Index(cells, name="cell_id"), cat)
    table.index = table.index.astype(np.uint64)
    return images_from_table(table, 10)


@pytest.fixture(scope="module")
def trained(synth):
    model = S2VecModel(TINY)
    model.fit(synth, verbose=0)
    return model


# --------------------------------------------------------------------------- config / import
def test_config_defaults_are_table_1():
    c = S2VecConfig()
    assert (c.num_heads, c.encoder_layers, c.embedding_dim, c.decoder_layers, c.decoder_dim) == (8, 6, 256, 2, 128)
    assert (c.weight_decay, c.clipnorm, c.learning_rate, c.cosine_alpha) == (1e-3, 1.0, 5e-4, 0.1)
    assert (c.batch_size, c.shuffle_buffer, c.epochs, c.dropout, c.mask_ratio) == (64, 1000, 50, 0.2, 0.75)


def test_config_validation_and_roundtrip(tmp_path):
    with pytest.raises(ValueError, match="mask_ratio"):
        S2VecConfig(mask_ratio=1.0)
    with pytest.raises(ValueError, match="divisible"):
        S2VecConfig(embedding_dim=30, num_heads=8)
    with pytest.raises(ValueError, match="encoder_layers"):
        S2VecConfig(encoder_layers=0)
    with pytest.raises(TypeError, match="unknown"):
        TINY.replace(nope=1)
    assert S2VecConfig.load(TINY.save(tmp_path / "c.json")) == TINY
    with pytest.raises(ValueError, match="unknown S2VecConfig fields"):
        S2VecConfig.from_dict({"bogus": 1})


def test_import_is_lazy():
    code = "import sys, geos2vec, geos2vec.model; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


# --------------------------------------------------------------------------- layers / model
@pytest.mark.parametrize("length,ratio", [(16, 0.75), (256, 0.75), (16, 0.5), (10, 0.9)])
def test_random_masking_kept_and_masked_disjoint(length, ratio):
    layer = RandomMasking(length, ratio, seed=3)
    x = tf.zeros((6, length, 2))
    ids_keep, ids_restore, mask = (np.asarray(t) for t in layer(x))
    n_keep = max(int(round(length * (1 - ratio))), 1)
    assert ids_keep.shape == (6, n_keep)
    assert mask.shape == (6, length)
    assert (mask.sum(axis=1) == length - n_keep).all()
    for b in range(6):
        kept = set(ids_keep[b].tolist())
        masked = set(np.flatnonzero(mask[b]).tolist())
        assert len(kept) == n_keep and kept.isdisjoint(masked) and kept | masked == set(range(length))
        # ids_restore is the inverse of the shuffle whose head is the kept set
        shuffled = np.argsort(ids_restore[b])
        np.testing.assert_array_equal(shuffled[:n_keep], ids_keep[b])
        assert set(shuffled[n_keep:].tolist()) == masked
    again = np.asarray(layer(x)[2])
    assert not np.array_equal(again, mask)  # a new mask at every call
    assert len({tuple(r) for r in mask.astype(int).tolist()}) > 1  # and per image


def test_masked_mse_matches_numpy():
    rng = np.random.default_rng(0)
    x, pred = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 4))
    mask = (rng.random((3, 5)) < 0.6).astype(np.float32)
    w = (rng.random((3, 5)) < 0.7).astype(np.float32)
    err = ((x - pred) ** 2).mean(-1)
    assert float(masked_mse(x, pred, mask)) == pytest.approx((err * mask).sum() / mask.sum(), rel=1e-5)
    assert float(masked_mse(x, pred, mask, w)) == pytest.approx((err * mask * w).sum() / (mask * w).sum(),
                                                                rel=1e-5)


def test_model_shapes_and_masked_input_independence():
    km = build_mae(TINY, 16, 5)
    x = np.random.default_rng(1).normal(size=(3, 16, 5)).astype(np.float32)
    out = km(x, training=True)
    assert out["pred"].shape == (3, 16, 5) and out["mask"].shape == (3, 16)
    assert km.encode(x).shape == (3, 16, 32)
    # the encoder sees only kept patches: with the masking fixed, changing masked inputs
    # leaves the decoder input (and so the prediction) unchanged
    seed_state = km.masking.seed_generator.state.numpy()
    out1 = km(x, training=False)
    mask = np.asarray(out1["mask"]).astype(bool)
    x2 = x.copy()
    x2[mask] += 100.0
    km.masking.seed_generator.state.assign(seed_state)
    out2 = km(x2, training=False)
    np.testing.assert_array_equal(np.asarray(out2["mask"]), np.asarray(out1["mask"]))
    np.testing.assert_allclose(np.asarray(out2["pred"]), np.asarray(out1["pred"]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="features per patch"):
        km.encode(np.zeros((1, 16, 4), np.float32))


# --------------------------------------------------------------------------- data pipeline
def test_dataset_normalizes_and_streams_lazily(synth):
    stats = FeatureStats.fit(synth)
    batches = list(make_dataset(synth, stats, batch_size=5))
    x = np.concatenate([b["x"].numpy() for b in batches])
    w = np.concatenate([b["w"].numpy() for b in batches])
    n, r, c, f = synth.shape
    np.testing.assert_allclose(x, stats.transform(synth.values.reshape(n, r * c, f).astype(float)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(w, synth["observed"].values.reshape(n, r * c))
    lazy = synth.chunk({"image": 5})
    xl = np.concatenate([b["x"].numpy() for b in make_dataset(lazy, stats, batch_size=5, block=4)])
    np.testing.assert_array_equal(xl, x)
    # channels in another order are matched by name
    xs = np.concatenate([b["x"].numpy() for b in make_dataset(synth.isel(feature=[4, 3, 2, 1, 0]), stats)])
    np.testing.assert_array_equal(xs, x)


def test_dataset_is_not_autotuned(synth):
    # tf.data's autotuner made Keras wait at every epoch's end for its next wake-up, up to the epoch's own
    # length (benchmarks/RESULTS.md, "An epoch's end"): the pipeline has fixed parallelism instead
    stats = FeatureStats.fit(synth)
    ds = make_dataset(synth, stats, batch_size=5, shuffle_buffer=8, seed=3)
    assert ds.options().autotune.enabled is False
    shuffled = np.concatenate([b["x"].numpy() for b in ds])  # an epoch is still a permutation of the images
    plain = np.concatenate([b["x"].numpy() for b in make_dataset(synth, stats, batch_size=5)])
    assert not np.array_equal(shuffled, plain)
    assert sorted(r.tobytes() for r in shuffled) == sorted(r.tobytes() for r in plain)


def test_dataset_map_calls_follow_the_available_cores(monkeypatch):
    from geos2vec.model.data import _map_calls

    for cores, calls in ((1, 2), (2, 2), (5, 5), (64, 8)):  # at least 2, at most 8
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert _map_calls() == calls


def test_split_and_channel_errors(synth):
    tr, va = split_images(20, 0.2, seed=0)
    assert len(va) == 4 and len(tr) == 16 and not set(tr) & set(va)
    assert set(tr) | set(va) == set(range(20))
    np.testing.assert_array_equal(split_images(20, 0.2, seed=0)[1], va)
    with pytest.raises(ValueError, match=r"missing \['c9'\]"):
        match_channels(synth, ["c0", "c1", "c2", "c3", "c4", "c9"])
    with pytest.raises(ValueError, match="dims"):
        S2VecModel(TINY).build(synth.isel(row=0))
    with pytest.raises(TypeError, match="DataArray"):
        S2VecModel(TINY).build(synth.values)


# --------------------------------------------------------------------------- training
def test_fit_is_deterministic_with_a_seed(trained, synth):
    again = S2VecModel(TINY).fit(synth, verbose=0).history
    assert len(again["loss"]) == TINY.epochs and np.isfinite(again["loss"] + again["val_loss"]).all()
    np.testing.assert_array_equal(again["loss"], trained.history.history["loss"])
    np.testing.assert_array_equal(again["val_loss"], trained.history.history["val_loss"])


def test_fit_default_and_mirrored_strategy_agree(synth):
    # without shuffling (the distributed dataset draws its own shuffle order), a one-replica
    # MirroredStrategy must take exactly the steps of the default strategy
    cfg = TINY.replace(shuffle_buffer=0)
    h1 = S2VecModel(cfg).fit(synth, verbose=0).history
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    model = S2VecModel(cfg)
    h2 = model.fit(synth, strategy=strategy, verbose=0).history
    assert model.keras_model.distribute_strategy is strategy
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-6)
    np.testing.assert_allclose(h2["val_loss"], h1["val_loss"], rtol=1e-6)
    assert h2["loss"][-1] < h2["loss"][0]


def test_loss_falls_on_real_sample(real_images):
    assert real_images.sizes["image"] > 50
    cfg = TINY.replace(epochs=6, batch_size=16, learning_rate=2e-3, mask_ratio=0.5)
    model = S2VecModel(cfg)
    hist = model.fit(real_images, verbose=0).history
    assert hist["loss"][-1] < 0.9 * hist["loss"][0]
    assert hist["val_loss"][-1] < hist["val_loss"][0]
    loss, mean_loss = model.evaluate(real_images, baseline=True, seed=0)
    assert loss < mean_loss


def test_resume_from_checkpoint(synth, tmp_path):
    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:  # interrupted after one finished epoch
                raise KeyboardInterrupt

    cfg = TINY.replace(epochs=2)
    with pytest.raises(KeyboardInterrupt):
        S2VecModel(cfg).fit(synth, checkpoint_dir=tmp_path / "ck", log_dir=tmp_path / "log", callbacks=[Stop()],
                            verbose=0)
    assert (tmp_path / "ck" / "last.weights.h5").exists()
    hist = S2VecModel(cfg).fit(synth, checkpoint_dir=tmp_path / "ck", log_dir=tmp_path / "log", verbose=0)
    assert hist.epoch == [1]  # only the epoch that had not run
    log = pd.read_csv(tmp_path / "log" / "training.csv")
    assert log["epoch"].tolist() == [0, 1]


def test_resume_refuses_another_run_and_keeps_the_best_checkpoint(synth, tmp_path):
    import json

    class StopAt(keras.callbacks.Callback):
        def __init__(self, epoch):
            super().__init__()
            self.at = epoch

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == self.at:
                raise KeyboardInterrupt

    cfg = TINY.replace(epochs=3)
    ck = tmp_path / "ck"
    with pytest.raises(KeyboardInterrupt):
        S2VecModel(cfg).fit(synth, checkpoint_dir=ck, callbacks=[StopAt(2)], verbose=0)
    best = json.loads((ck / "best.json").read_text())
    # another run (other settings, or other images) does not continue from this backup
    with pytest.raises(InvalidInputError, match=r"another run .*config.learning_rate.*delete .*backup"):
        S2VecModel(cfg.replace(learning_rate=0.05)).fit(synth, checkpoint_dir=ck, verbose=0)
    with pytest.raises(InvalidInputError, match="images_sha256"):
        S2VecModel(cfg).fit(synth.isel(image=slice(0, 10)), checkpoint_dir=ck, verbose=0)

    # the same run resumes; a worse epoch after the resume does not replace best.weights.h5
    class Worse(keras.callbacks.Callback):  # the resumed epoch's val_loss reads worse than every earlier one
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = best["best"] + 1.0

    hist = S2VecModel(cfg).fit(synth, checkpoint_dir=ck, callbacks=[Worse()], verbose=0)
    assert hist.epoch == [2]
    assert json.loads((ck / "best.json").read_text())["best"] == best["best"]
    a, b = S2VecModel(cfg), S2VecModel(cfg)
    a.build(synth), b.build(synth)
    a.keras_model.load_weights(ck / "best.weights.h5")
    b.keras_model.load_weights(ck / "last.weights.h5")
    assert not all(np.array_equal(x, y) for x, y in zip(a.keras_model.get_weights(), b.keras_model.get_weights()))
    # a fresh run in the same folder (no backup left) starts afresh
    S2VecModel(cfg.replace(learning_rate=0.05)).fit(synth, checkpoint_dir=ck, epochs=1, verbose=0)
    # a backup a killed run left half-written is named, with the fix (was a bare h5py/JSON error)
    with pytest.raises(KeyboardInterrupt):
        S2VecModel(cfg).fit(synth, checkpoint_dir=ck, callbacks=[StopAt(2)], verbose=0)
    for name in ("latest.weights.h5", "training_metadata.json"):
        f = ck / "backup" / name
        keep = f.read_bytes()
        f.write_bytes(keep[: len(keep) // 2])
        with pytest.raises(InvalidInputError, match=rf"{name}: an interrupted write.*delete .*backup"):
            S2VecModel(cfg).fit(synth, checkpoint_dir=ck, verbose=0)
        f.write_bytes(keep)
    meta = ck / "backup" / "training_metadata.json"
    keep = meta.read_bytes()
    meta.unlink()  # a kill between Keras' weights and metadata writes of the first backup: it would restart at 0
    with pytest.raises(InvalidInputError, match="latest.weights.h5 without training_metadata.json"):
        S2VecModel(cfg).fit(synth, checkpoint_dir=ck, verbose=0)
    meta.write_bytes(keep)
    assert S2VecModel(cfg).fit(synth, checkpoint_dir=ck, verbose=0).epoch == [2]


def test_a_resumed_fit_is_identical_to_an_uninterrupted_one(synth, tmp_path, monkeypatch):
    class StopAt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    # shuffling, dropout, masking and early stopping all draw or count across epochs
    cfg = TINY.replace(epochs=4, dropout=0.2, early_stopping_patience=1, learning_rate=0.02)
    a = S2VecModel(cfg)
    full = a.fit(synth, checkpoint_dir=tmp_path / "a", verbose=0).history
    with pytest.raises(KeyboardInterrupt):
        S2VecModel(cfg).fit(synth, checkpoint_dir=tmp_path / "b", callbacks=[StopAt()], verbose=0)
    b = S2VecModel(cfg)
    resumed = b.fit(synth, checkpoint_dir=tmp_path / "b", verbose=0)
    assert resumed.epoch[0] == 2
    for key in ("loss", "val_loss"):
        assert resumed.history[key] == full[key][2:]  # exactly
    for x, y in zip(a.keras_model.get_weights(), b.keras_model.get_weights()):
        np.testing.assert_array_equal(x, y)

    # killed after every other write of epoch 1 but before the backup's: epoch 1 is repeated, with its draws
    original = keras.callbacks.BackupAndRestore.on_epoch_end

    def killed_at_1(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt
        original(self, epoch, logs)

    with monkeypatch.context() as mp:
        mp.setattr(keras.callbacks.BackupAndRestore, "on_epoch_end", killed_at_1)
        with pytest.raises(KeyboardInterrupt):
            S2VecModel(cfg).fit(synth, checkpoint_dir=tmp_path / "d", verbose=0)
    d = S2VecModel(cfg)
    assert d.fit(synth, checkpoint_dir=tmp_path / "d", verbose=0).history["loss"] == full["loss"][1:]
    for x, y in zip(a.keras_model.get_weights(), d.keras_model.get_weights()):
        np.testing.assert_array_equal(x, y)

    # killed between Keras' two writes of epoch 1's backup (weights written, metadata not): the seal tells,
    # and the fit resumes after epoch 1 (not again from weights that already include it)
    def weights_only_at_1(self):
        if self._current_epoch == 2:
            self.model.save_weights(filepath=self._weights_path, overwrite=True)
            raise KeyboardInterrupt
        save(self)

    save = keras.callbacks.BackupAndRestore._save_model
    with monkeypatch.context() as mp:
        mp.setattr(keras.callbacks.BackupAndRestore, "_save_model", weights_only_at_1)
        with pytest.raises(KeyboardInterrupt):
            S2VecModel(cfg).fit(synth, checkpoint_dir=tmp_path / "e", verbose=0)
    e = S2VecModel(cfg)
    with pytest.warns(UserWarning, match="newer than its metadata"):
        assert e.fit(synth, checkpoint_dir=tmp_path / "e", verbose=0).history["loss"] == full["loss"][2:]
    for x, y in zip(a.keras_model.get_weights(), e.keras_model.get_weights()):
        np.testing.assert_array_equal(x, y)

    # killed after early stopping's last epoch, before Keras deleted the backup: the resumed fit only ends
    long = cfg.replace(epochs=10, early_stopping_patience=2)
    g_full = S2VecModel(long)
    stopped = g_full.fit(synth, checkpoint_dir=tmp_path / "g0", verbose=0).epoch
    assert len(stopped) < 10  # early stopping ended it
    end = keras.callbacks.BackupAndRestore.on_train_end

    def killed_at_the_end(self, logs=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(keras.callbacks.BackupAndRestore, "on_train_end", killed_at_the_end)
        with pytest.raises(KeyboardInterrupt):
            S2VecModel(long).fit(synth, checkpoint_dir=tmp_path / "g", verbose=0)
    assert keras.callbacks.BackupAndRestore.on_train_end is end
    g = S2VecModel(long)
    assert g.fit(synth, checkpoint_dir=tmp_path / "g", verbose=0).epoch == []  # no epoch more
    assert not (tmp_path / "g" / "backup").exists()
    for x, y in zip(g_full.keras_model.get_weights(), g.keras_model.get_weights()):
        np.testing.assert_array_equal(x, y)  # the best weights, restored as the uninterrupted fit did

    # without the record of the resumed epoch (e.g. a backup of an older version) it warns and still resumes
    with pytest.raises(KeyboardInterrupt):
        S2VecModel(cfg).fit(synth, checkpoint_dir=tmp_path / "c", callbacks=[StopAt()], verbose=0)
    (tmp_path / "c" / "state.json").unlink()
    c = S2VecModel(cfg)
    with pytest.warns(UserWarning, match="no usable record of epoch 2"):
        assert c.fit(synth, checkpoint_dir=tmp_path / "c", verbose=0).epoch[0] == 2
    assert not all(np.array_equal(x, y) for x, y in zip(a.keras_model.get_weights(), c.keras_model.get_weights()))


def _training_state(km, folder, start, **early):
    """An EarlyStopping at the start of a fit and the TrainingState of ``folder`` resuming at ``start``."""
    from geos2vec.model.resume import TrainingState

    es = keras.callbacks.EarlyStopping(patience=3, **early)
    es.set_model(km)
    es.on_train_begin()
    ts = TrainingState(folder, start, es)
    ts.set_model(km)
    return es, ts


def test_training_state_keeps_early_stopping_and_random_states(synth, tmp_path):
    import json

    m = S2VecModel(TINY.replace(dropout=0.2))
    m.build(synth)
    km = m.keras_model
    seeds = [v for v in km.variables if v.name == "seed_generator_state"]
    assert len(seeds) == 1 + 2 * (TINY.encoder_layers + TINY.decoder_layers)  # masking, two dropouts per block
    best = [w + 1.0 for w in km.get_weights()]
    km.set_weights(best)
    km.save_weights(tmp_path / "best.weights.h5")
    km.set_weights([w - 1.0 for w in best])
    es, ts = _training_state(km, tmp_path, 0, restore_best_weights=True)
    es.wait, es.best, es.best_epoch = 2, 0.5, 1
    seeds[0].assign(np.array([7, 9]))
    ts.on_train_begin()  # a fresh fit restores nothing
    ts.on_epoch_end(3)
    (record,) = json.loads((tmp_path / "state.json").read_text())["records"]
    assert record["epoch"] == 4 and record["seed_states"][0] == [7, 9]
    assert record["early_stopping"] == {"wait": 2, "best": 0.5, "best_epoch": 1}

    seeds[0].assign(np.array([0, 0]))
    es2, ts2 = _training_state(km, tmp_path, 4, restore_best_weights=True)
    ts2.on_train_begin()
    assert (es2.wait, es2.best, es2.best_epoch) == (2, 0.5, 1)
    np.testing.assert_array_equal(seeds[0].numpy(), [7, 9])
    for x, y in zip(es2.best_weights, best):
        np.testing.assert_array_equal(x, y)
    es3, ts3 = _training_state(km, tmp_path, 5)  # a record of another epoch is not used
    with pytest.warns(UserWarning, match="no usable record of epoch 5"):
        ts3.on_train_begin()
    assert (es3.wait, es3.best) == (0, None)
    # the next epoch keeps the record before it (a fit killed before the backup's write resumes from it)
    ts2.on_epoch_end(4)
    assert [r["epoch"] for r in json.loads((tmp_path / "state.json").read_text())["records"]] == [4, 5]
    # a record that does not fit (damaged field, other generators) is not used, with a warning
    text = (tmp_path / "state.json").read_text()
    for bad in (text.replace('"wait": 2', '"wait": "x"'), text.replace("[[7, 9], ", "[")):  # one state less
        (tmp_path / "state.json").write_text(bad)
        es4, ts4 = _training_state(km, tmp_path, 4)
        with pytest.warns(UserWarning, match="no usable record of epoch 4"):
            ts4.on_train_begin()
        assert es4.wait == 0
    # an unreadable best.weights.h5 does not block the resume: a warning, and the counters are restored
    (tmp_path / "state.json").write_text(text)
    data = (tmp_path / "best.weights.h5").read_bytes()
    (tmp_path / "best.weights.h5").write_bytes(data[: len(data) // 2])
    es5, ts5 = _training_state(km, tmp_path, 4, restore_best_weights=True)
    with pytest.warns(UserWarning, match="best.weights.h5 could not be read"):
        ts5.on_train_begin()
    assert (es5.wait, es5.best, es5.best_weights) == (2, 0.5, None)


# --------------------------------------------------------------------------- embedding
def test_embed_modes_match_reference(trained, synth):
    km, stats = trained.keras_model, trained.stats
    n, r, c, f = synth.shape
    x = stats.transform(synth.values.reshape(n, r * c, f).astype(np.float32)).astype(np.float32)
    tokens = km.encode(x).numpy()
    obs = synth["observed"].values.reshape(n, -1)
    ids = synth["cell_id"].values.reshape(n, -1)

    emb = trained.embed(synth, mode="tiled", verbose=False)  # v0.1's per-image contextual mode
    assert emb.dims == ("cell", "dim") and emb.shape == (obs.sum(), 32) and emb.dtype == np.float32
    np.testing.assert_array_equal(emb["cell"].values, ids[obs])
    np.testing.assert_allclose(emb.values, tokens[obs], rtol=1e-4, atol=1e-5)
    seamless = trained.embed(synth, verbose=False)  # the default: windows around each cell (test_context.py)
    assert {k: v for k, v in seamless.attrs.items() if not k.startswith("geos2vec_")} == {
        "mode": "contextual", "context": "blend"} and seamless.shape == emb.shape
    assert seamless.attrs["geos2vec_model"] == "in-memory" and seamless.attrs["geos2vec_mode"] == "contextual"
    np.testing.assert_array_equal(seamless["cell"].values, ids[obs])

    full = trained.embed(synth, cells="all", batch_size=3, verbose=False)
    assert full.sizes["cell"] == n * r * c

    img = trained.embed(synth, mode="image", verbose=False)
    np.testing.assert_array_equal(img["cell"].values, synth["image"].values)
    np.testing.assert_allclose(img.values, tokens.mean(axis=1), rtol=1e-4, atol=1e-5)

    patch = trained.embed(synth, mode="patch", verbose=False)
    w, b = km.patch_embed.kernel.numpy(), km.patch_embed.bias.numpy()
    np.testing.assert_allclose(patch.values, x[obs] @ w + b, rtol=1e-4, atol=1e-4)
    table = pd.DataFrame(synth.values.reshape(n, r * c, f)[obs], index=pd.Index(ids[obs], name="cell_id"),
                         columns=synth["feature"].values)
    frame = trained.embed(table, mode="patch", as_frame=True)
    assert list(frame.columns) == [f"s2vec_{i}" for i in range(32)]
    assert frame.index.name == "cell_id" and frame.index.dtype == np.uint64
    np.testing.assert_allclose(frame.to_numpy(), patch.values, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        trained.embed(synth, mode="pixel")


def test_save_load_identical_embeddings(trained, synth, tmp_path):
    before = trained.embed(synth, verbose=False)
    for target in (tmp_path / "model_dir", tmp_path / "model.zip"):
        trained.save(target)
        loaded = load_model(target)
        assert loaded.channels == trained.channels and loaded.grid == trained.grid
        assert (loaded.image_level, loaded.patch_level) == (10, 12)
        assert loaded.stats == trained.stats and loaded.config == trained.config
        np.testing.assert_array_equal(loaded.embed(synth, verbose=False).values, before.values)
    assert zipfile.is_zipfile(tmp_path / "model.zip")
    meta = json.loads((tmp_path / "model_dir" / "metadata.json").read_text())
    assert meta["channels"] == ["c0", "c1", "c2", "c3", "c4"] and meta["format_version"] == 1
    with pytest.raises(ValueError, match="missing"):
        load_model(tmp_path / "model_dir", channels=["c0", "c1"])
    renamed = synth.assign_coords(feature=["c0", "c1", "c2", "c3", "x"])
    with pytest.raises(ValueError, match=r"missing \['c4'\].*unexpected \['x'\]"):
        loaded.embed(renamed, verbose=False)
    with pytest.raises(ValueError, match="not a complete saved S2Vec model"):
        load_model(tmp_path)


def test_a_fitted_model_loads_in_a_fresh_process(trained, tmp_path):
    """model.keras names the fitted model's optimizer (FusedAdamW): loading must not depend on having trained."""
    trained.save(tmp_path / "model_dir")
    code = (f"import numpy as np, geos2vec; m = geos2vec.load_model({str(tmp_path / 'model_dir')!r}); "
            "km = m.keras_model; opt = km.optimizer; "
            f"np.savez({str(tmp_path / 'w.npz')!r}, *km.get_weights()); "
            "print(type(opt).__name__, int(opt.iterations.numpy()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    km = trained.keras_model
    assert out.stdout.split()[-2:] == ["FusedAdamW", str(int(km.optimizer.iterations.numpy()))]
    with np.load(tmp_path / "w.npz") as saved:
        weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    assert len(weights) == len(km.get_weights())
    for a, b in zip(weights, km.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_cli_train(synth, tmp_path):
    raster = pytest.importorskip("geos2vec.raster")
    from geos2vec.cli import main

    store = tmp_path / "images.zarr"
    raster.to_zarr(synth, store)
    cfg = tmp_path / "cfg.json"
    TINY.save(cfg)
    rc = main(["train", "--data", str(store), "--out", str(tmp_path / "m"), "--epochs", "1", "--config", str(cfg),
               "--batch-size", "4", "--mask-ratio", "0.5", "--learning-rate", "0.002", "--validation-split", "0.25",
               "--seed", "7", "--quiet"])
    assert rc == 0
    model = load_model(tmp_path / "m")
    assert model.channels == [str(c) for c in synth["feature"].values]
    assert len(model.metadata["history"]["loss"]) == 1
    # the config file's fields, then the flags over them
    assert model.config == TINY.replace(epochs=1, batch_size=4, mask_ratio=0.5, learning_rate=0.002,
                                        validation_split=0.25, seed=7)
    assert model.count_params() == S2VecModel(TINY).build(synth).count_params()


def test_history_is_a_table(trained):
    frame = pd.DataFrame(trained.history.history)  # every entry a per-epoch series (issue: 'replicas' broke it)
    assert list(frame["loss"]) == trained.history.history["loss"] and trained.history.params["replicas"] >= 1


# --------------------------------------------------------------------------- tracing (issue 15)
def test_eager_and_graph_fit_take_the_same_steps(synth):
    h_eager = S2VecModel(TINY).fit(synth, verbose=0, run_eagerly=True).history
    h_graph = S2VecModel(TINY).fit(synth, verbose=0, run_eagerly=False).history
    np.testing.assert_allclose(h_eager["loss"], h_graph["loss"], rtol=1e-4)
    np.testing.assert_allclose(h_eager["val_loss"], h_graph["val_loss"], rtol=1e-4)


def test_fit_traces_once_and_a_second_fit_reuses_the_graphs(synth, monkeypatch):
    from geos2vec.model.mae import MaskedAutoencoder

    traced = []
    original = MaskedAutoencoder.compute_loss

    def counting(self, *args, **kwargs):
        traced.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MaskedAutoencoder, "compute_loss", counting)
    a = S2VecModel(TINY)
    a.fit(synth, verbose=0, run_eagerly=False)
    # one trace of the train step (optimizer variables are built before it, so no second trace) + one test step
    assert len(traced) == 2
    a.fit(synth, verbose=0, run_eagerly=False)
    assert len(traced) == 2  # same settings: nothing traced again
    # ... and the same training as a freshly compiled optimizer gives
    b = S2VecModel(TINY)
    b.fit(synth, verbose=0, run_eagerly=False)
    b.keras_model._geos2vec_compiled_for = None  # force a new compile and optimizer
    b.fit(synth, verbose=0, run_eagerly=False)
    assert len(traced) == 6
    for wa, wb in zip(a.keras_model.get_weights(), b.keras_model.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.history.history["loss"], b.history.history["loss"], rtol=1e-5)
    # other settings compile again (the learning-rate schedule depends on the number of epochs)
    a.fit(synth, verbose=0, run_eagerly=False, epochs=3)
    assert len(traced) == 8


def test_run_eagerly_auto():
    from geos2vec.errors import InvalidInputError
    from geos2vec.model.train import EAGER_MAX_STEPS, resolve_run_eagerly

    cpu = tf.distribute.get_strategy()
    assert resolve_run_eagerly("auto", EAGER_MAX_STEPS, cpu) is (not tf.config.list_logical_devices("GPU"))
    assert resolve_run_eagerly("auto", EAGER_MAX_STEPS + 1, cpu) is False
    assert resolve_run_eagerly(True, 10 ** 6, cpu) is True and resolve_run_eagerly(False, 1, cpu) is False
    with pytest.raises(InvalidInputError, match="run_eagerly"):
        resolve_run_eagerly("yes", 1, cpu)


def test_fit_takes_windows_lazy_or_not_and_trains_the_same(synth):
    pytest.importorskip("dask")
    from geos2vec.raster import windows

    eager = windows(synth, size=4, stride=2)
    lazy = windows(synth.chunk({"image": 2}), size=4, stride=2, chunk_windows=3)
    assert lazy.chunks is not None and eager.sizes["window"] > synth.sizes["image"]
    h1 = S2VecModel(TINY).fit(eager, verbose=0).history
    h2 = S2VecModel(TINY).fit(lazy, verbose=0).history
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-6)
    np.testing.assert_allclose(h2["val_loss"], h1["val_loss"], rtol=1e-6)


def _seed_state():
    import random

    from keras.src.backend.common import global_state
    from tensorflow.python.eager import context

    return (random.random(), float(np.random.random()), context.global_seed(), context.internal_operation_seed(),
            global_state.get_global_attribute("global_random_seed"),
            global_state.get_global_attribute("global_seed_generator"))


@pytest.mark.parametrize("before", [None, 7, 8])
def test_set_random_seed_leaves_what_keras_leaves_and_keeps_the_kernel_cache(before, monkeypatch):
    """train.set_random_seed = keras.utils.set_random_seed (same generators after it), without
    tf.random.set_seed's kernel-cache clear when TensorFlow's global seed is already the one asked for."""
    import random

    import keras
    from tensorflow.python import pywrap_tfe

    from geos2vec.model.train import set_random_seed

    def spend():  # draw from every generator, so that a missing reset would show
        random.random(), np.random.random(), tf.random.uniform([1]), keras.random.uniform([1])

    states = []
    for fn in (keras.utils.set_random_seed, set_random_seed):
        if before is not None:
            keras.utils.set_random_seed(before)
        spend()
        clears = []
        real = pywrap_tfe.TFE_ContextClearCaches
        monkeypatch.setattr(pywrap_tfe, "TFE_ContextClearCaches", lambda h: (clears.append(1), real(h))[1])
        fn(7)
        monkeypatch.setattr(pywrap_tfe, "TFE_ContextClearCaches", real)
        states.append((_seed_state(), float(keras.random.uniform([1])[0]), len(clears)))
    (keras_state, keras_draw, keras_clears), (ours_state, ours_draw, ours_clears) = states
    assert ours_state == keras_state and ours_draw == keras_draw
    assert keras_clears == 1
    # no clear when TensorFlow's global seed was 7 already (by `before`, or left by the Keras call just before)
    assert ours_clears == (1 if before == 8 else 0)
