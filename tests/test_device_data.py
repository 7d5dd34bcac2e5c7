"""DeviceBatches: whole, seeded, per-epoch shuffled batches gathered from arrays kept on the device."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from geos2vec.model.config import S2VecConfig  # noqa: E402
from geos2vec.model.device_data import DeviceBatches  # noqa: E402
from geos2vec.model.mae import build_mae  # noqa: E402


def _np(t):
    return keras.ops.convert_to_numpy(t)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), batch=st.integers(1, 20), seed=st.integers(0, 5))
def test_batches_are_whole_rows_of_a_seeded_permutation(n, batch, seed):
    rows = np.arange(n)
    arrays = {"x": np.stack([rows, -rows], 1).astype(np.float32), "w": (rows % 2).astype(np.uint8)}
    if n < batch:
        with pytest.raises(ValueError, match="do not fill one batch"):
            DeviceBatches(arrays, batch)
        return
    data = DeviceBatches(arrays, batch, seed=seed)
    assert len(data) == n // batch
    seen = []
    for i in range(len(data)):
        (b,) = data[i]
        x, w = _np(b["x"]), _np(b["w"])
        assert x.shape == (batch, 2) and w.shape == (batch,) and w.dtype == np.uint8
        # rows stay together: every array of the batch is gathered with the same indices
        np.testing.assert_array_equal(x[:, 1], -x[:, 0])
        np.testing.assert_array_equal(w, x[:, 0].astype(int) % 2)
        seen.extend(x[:, 0].astype(int))
    # no window twice in an epoch, and exactly the first len * batch of numpy's permutation for (seed, 0)
    expected = np.random.default_rng([seed, 0]).permutation(n)[:len(data) * batch]
    np.testing.assert_array_equal(seen, expected)
    with pytest.raises(IndexError):
        data[len(data)]


def test_each_epoch_draws_a_new_permutation_and_the_seed_repeats_it():
    arrays = {"x": np.arange(100, dtype=np.float32)[:, None]}
    a, b = DeviceBatches(arrays, 10, seed=3), DeviceBatches(arrays, 10, seed=3)
    first = np.concatenate([_np(a[i][0]["x"]) for i in range(len(a))]).ravel()
    a.on_epoch_end()
    second = np.concatenate([_np(a[i][0]["x"]) for i in range(len(a))]).ravel()
    assert sorted(first) == sorted(second) == list(range(100))  # 100 // 10: every window, once
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, np.concatenate([_np(b[i][0]["x"]) for i in range(len(b))]).ravel())
    ordered = DeviceBatches(arrays, 30, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([_np(ordered[i][0]["x"]) for i in range(3)]).ravel(),
                                  np.arange(90))


def test_bad_arrays_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        DeviceBatches({}, 4)
    with pytest.raises(ValueError, match="different lengths"):
        DeviceBatches({"x": np.zeros((8, 2)), "w": np.zeros(7)}, 4)


def test_fit_on_device_batches_trains_with_uint8_weights():
    """The masked autoencoder trains from DeviceBatches (0/1 weights as uint8) and its loss matches the float32
    weights' on the same batch and masks."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 16, 5)).astype(np.float32)
    w = (rng.random((24, 16, 5)) < 0.7).astype(np.uint8)
    c = (rng.random((24, 16)) < 0.8).astype(np.uint8)
    cfg = S2VecConfig(embedding_dim=16, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2, seed=0,
                      ignore_unobserved=True)
    model = build_mae(cfg, 16, 5)
    noise = rng.random((24, 16)).astype(np.float32)
    out = model.reconstruct(x, noise, covered=c)
    as_uint8 = float(_np(model.compute_loss({"x": x, "w": w, "c": c}, y_pred=out)))
    as_float = float(_np(model.compute_loss({"x": x, "w": w.astype(np.float32), "c": c}, y_pred=out)))
    assert as_uint8 == pytest.approx(as_float, rel=1e-6)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    hist = model.fit(DeviceBatches({"x": x, "w": w, "c": c}, 8, seed=0), epochs=3, verbose=0)
    assert len(hist.history["loss"]) == 3 and np.isfinite(hist.history["loss"]).all()


@settings(max_examples=15, deadline=None)
@given(side=st.integers(2, 5), n=st.integers(4, 30), seed=st.integers(0, 3), feats=st.integers(1, 3))
def test_augment_gives_each_window_one_of_the_eight_transforms_of_raster_augment(side, n, seed, feats):
    """Every window of a batch equals one of geos2vec.raster's eight flips/rotations of its source window, the
    same transform for every pixel array of that window; per-window arrays are untouched."""
    from geos2vec._dihedral import dihedral as _dihedral  # what geos2vec.raster.augment applies

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, side, side, feats)).astype(np.float32)
    c = (rng.random((n, side, side)) < 0.6).astype(np.uint8)
    arrays = {"x": x.reshape(n, side * side, feats), "c": c.reshape(n, side * side),
              "id": np.arange(n, dtype=np.int32)}
    data = DeviceBatches(arrays, 4, seed=seed, shuffle=False, augment=True, side=side)
    used = set()
    for i in range(len(data)):
        (b,) = data[i]
        bx, bc, ids = _np(b["x"]), _np(b["c"]), _np(b["id"])
        assert bx.shape == (4, side * side, feats) and bc.shape == (4, side * side) and bc.dtype == np.uint8
        np.testing.assert_array_equal(ids, np.arange(4 * i, 4 * i + 4))
        for k, src in enumerate(ids):
            got = bx[k].reshape(side, side, feats)
            ts = [t for t in range(8) if np.array_equal(_dihedral(x[src][None], t)[0], got)]
            assert ts, "not a flip/rotation of its source window"
            assert any(np.array_equal(_dihedral(c[src][None], t)[0], bc[k].reshape(side, side)) for t in ts)
            used.add(ts[0])
    if len(data) * 4 >= 24:  # 24+ draws of 8 transforms: all but impossible to see only one
        assert len(used) > 1


def test_augment_draws_all_eight_transforms_and_repeats_with_the_seed():
    side = 3
    x = np.arange(9, dtype=np.float32)[None, :, None].repeat(400, axis=0)  # one asymmetric window, 400 times
    a = DeviceBatches({"x": x}, 100, seed=1, augment=True, side=side)
    b = DeviceBatches({"x": x}, 100, seed=1, augment=True, side=side)
    got = np.concatenate([_np(a[i][0]["x"]) for i in range(len(a))])[..., 0]
    assert len({tuple(r) for r in got}) == 8
    np.testing.assert_array_equal(got, np.concatenate([_np(b[i][0]["x"]) for i in range(len(b))])[..., 0])
    a.on_epoch_end()
    assert not np.array_equal(got, np.concatenate([_np(a[i][0]["x"]) for i in range(len(a))])[..., 0])


def test_augment_without_pixel_arrays_is_refused():
    with pytest.raises(ValueError, match="augment=True needs an array of 256 pixels"):
        DeviceBatches({"x": np.zeros((8, 100, 2))}, 4, augment=True)
