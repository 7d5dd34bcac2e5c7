"""scripts/train_gpu.py helpers: dense views and per-value weights, the held-out loss over fixed masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def train_gpu():
    return load_script("train_gpu")


def test_dense_views_and_uint8_weights(train_gpu):
    counts = np.zeros((2, 4, 3), np.float32)
    counts[0, 1, 2], counts[1, 3, 0] = 5.0, 2.0
    flat = counts.ravel()
    idx = np.flatnonzero(flat)
    covered = np.array([[1, 1, 0, 1], [1, 0, 1, 1]], bool)
    road_ok = np.array([[1, 0, 1, 1], [0, 0, 0, 0]], bool)
    data = {"train_shape": np.array(counts.shape), "train_idx": idx, "train_val": flat[idx],
            "train_covered": covered, "train_road_ok": road_ok}
    mean, std = np.array([0.1, 0.2, 0.3], np.float32), np.array([1.0, 2.0, 4.0], np.float32)
    x, w, c, n = train_gpu.dense(data, "train", mean, std, road=1)
    np.testing.assert_array_equal(n, counts)
    np.testing.assert_allclose(x, (np.log1p(counts) - mean) / std, rtol=1e-6)
    assert w.dtype == np.uint8 and w.shape == counts.shape
    expected = np.repeat(covered[..., None], 3, axis=-1).astype(np.uint8)
    expected[..., 1] &= road_ok.astype(np.uint8)  # the road channel counts only where the source has roads
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(c, covered)
    # newer files: groups of channels some source lacks, each with its own availability row
    avail = np.stack([road_ok, np.array([[1, 1, 0, 0], [1, 0, 0, 1]], bool)])
    data["train_avail"] = avail
    meta = {"channels": ["a", "road", "pub"], "avail_groups": [["road"], ["a", "pub"]]}
    groups = train_gpu.avail_groups(meta)
    assert groups == [[1], [0, 2]]
    _, w, _, _ = train_gpu.dense(data, "train", mean, std, road=1, groups=groups)
    expected = np.repeat(covered[..., None], 3, axis=-1).astype(np.uint8)
    expected[..., 1] &= avail[0].astype(np.uint8)
    expected[..., 0] &= avail[1].astype(np.uint8)
    expected[..., 2] &= avail[1].astype(np.uint8)
    np.testing.assert_array_equal(w, expected)
    assert train_gpu.avail_groups({"channels": ["a"]}) is None


def test_fixed_val_loss_is_the_mean_objective_over_the_given_masks(train_gpu):
    from geos2vec.model.config import S2VecConfig
    from geos2vec.model.mae import build_mae

    cfg = S2VecConfig(embedding_dim=16, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2, seed=0,
                      ignore_unobserved=True, activity_weight=1.0)
    model = build_mae(cfg, 16, 4)
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(size=(6, 16, 4)).astype(np.float32),
             "w": (rng.random((6, 16, 4)) < 0.8).astype(np.uint8), "c": (rng.random((6, 16)) < 0.9).astype(np.uint8)}
    noises = [rng.random((6, 16)).astype(np.float32) for _ in range(3)]
    by_hand = []
    for noise in noises:
        out = model.reconstruct(batch["x"], noise, training=False, covered=batch["c"])
        by_hand.append(float(keras.ops.convert_to_numpy(model.compute_loss(batch, y_pred=out))))
    fn = train_gpu.compiled_reconstruct(model)
    assert train_gpu.fixed_val_loss(model, batch, noises, fn) == pytest.approx(np.mean(by_hand), rel=1e-6)
    pred, mask, _ = fn(batch, noises[0])
    out = model.reconstruct(batch["x"], noises[0], training=False, covered=batch["c"])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pred), keras.ops.convert_to_numpy(out["pred"]), atol=1e-6)
    assert len(set(by_hand)) == 3  # the masks differ, so the average is over three different losses


def test_plot_gpu_sweep_draws_every_run_of_the_kept_report(tmp_path):
    module = load_script("plot_gpu_sweep")
    import json

    report = ROOT / "docs" / "training" / "gpu-sweep-2026-11-26b.json"
    found = list(module.runs(json.loads(report.read_text())))
    # lease 1: 2 settings x 3 seeds; lease 2: seeds 0 and 1 (seed 2 was killed before its report)
    assert [(lease, name) for lease, name, _ in found][-2:] == [("lease2_schedule100", "paper-sincos-activity-s0"),
                                                                ("lease2_schedule100", "paper-sincos-activity-s1")]
    assert len(found) == 8 and all(len(run["history"]) == run["epochs"] for _, _, run in found)
    out = tmp_path / "curves.png"
    module.main([str(report), "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
