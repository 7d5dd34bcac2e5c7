"""scripts/train_gpu.py: its helpers (dense views and per-value weights, the held-out loss over fixed masks), and the
whole script on a small packed file under TensorFlow and, where JAX is installed, under JAX without TensorFlow."""

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


def _packed_file(path, n_train=16, n_val=4, side=16, seed=0):
    """A small file in scripts/prepare_training_data.py's format (synthetic counts; channels a, b, road; the
    road channel unavailable in the second half of the views)."""
    prep = load_script("prepare_training_data")
    import json

    rng = np.random.default_rng(seed)
    channels = ["a", "b", "road"]
    packed = {}
    for part, n in (("train", n_train), ("val", n_val)):
        counts = rng.poisson(rng.gamma(0.5, 2.0, size=(n, side * side, 1)), size=(n, side * side, 3))
        counts = counts.astype(np.float32)
        covered = rng.random((n, side * side)) < 0.8
        road_ok = np.zeros((n, side * side), bool)
        road_ok[: n // 2] = covered[: n // 2]
        idx, val = prep.pack(counts)
        packed.update({f"{part}_idx": idx, f"{part}_val": val, f"{part}_shape": np.array(counts.shape),
                       f"{part}_covered": covered, f"{part}_avail": road_ok[None], f"{part}_road_ok": road_ok})
    logs = np.log1p(counts.reshape(-1, 3))
    meta = {"channels": channels, "mean": logs.mean(0).tolist(), "std": logs.std(0).tolist(),
            "holdout": ["osm:somewhere"], "avail_groups": [["road"]], "sources": {"synthetic": n_train}, "stride": 8}
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **packed)
    return path


def _cpu_small_model():
    from geos2vec.model.config import S2VecConfig
    from geos2vec.model.mae import build_mae

    sweep = load_script("train_gpu").SWEEP
    return build_mae(S2VecConfig(**{"ignore_unobserved": True, "seed": 0, **sweep["cpu-small"]}), 256, 3)


def _check_run(out, run, epochs, n_weights):
    import json

    report = json.loads((out / "report.json").read_text())
    r = report["configs"][run]
    assert r["epochs"] == epochs and len(r["history"]) == epochs
    fixed = [h["val_fixed"] for h in r["history"]]
    assert r["best_val_loss"] == min(fixed) and all(np.isfinite(fixed))
    table = r["holdout_covered"]
    assert table["ratio_covered_to_visible_mean"]["visible_mean"] == 1.0
    assert {"model", "zero", "empty", "visible_mean", "local_mean"} <= set(table["loss_covered"])
    assert all(np.isfinite(v) and v > 0 for v in table["loss_covered"].values())
    with np.load(out / f"{run}.npz") as f:
        weights = [f[f"arr_{i}"] for i in range(len(f.files))]
    assert len(weights) == n_weights and all(w.dtype == np.float16 for w in weights)
    assert not list(out.glob("*.tmp"))
    return report, weights


def test_train_gpu_end_to_end_on_a_small_packed_file(train_gpu, tmp_path):
    """The whole script (TensorFlow, host feed): two fit calls, the checkpoint chosen on the fixed held-out
    masks, the held-out scoring, files written whole; the saved weights are the kept checkpoint's."""
    data = _packed_file(tmp_path / "data.npz")
    out = tmp_path / "run"
    train_gpu.main(["--data", str(data), "--out", str(out), "--configs", "cpu-small", "--max-epochs", "2",
                    "--chunk", "1", "--batch-size", "8", "--precision", "float32", "--masks", "2",
                    "--val-masks", "1", "--minutes", "5"])
    model = _cpu_small_model()
    report, weights = _check_run(out, "cpu-small-s0", 2, len(model.get_weights()))
    assert report["backend"] == "tensorflow" and report["train_views"] == 16 and report["val_views"] == 4
    # the held-out loss of the saved weights, recomputed here, is the best one the report kept
    model.set_weights([w.astype(np.float32) for w in weights])
    import json

    with np.load(data) as f:
        meta = json.loads(str(f["meta"]))
        xv, wv, cv, nv = train_gpu.dense(f, "val", np.float32(meta["mean"]), np.float32(meta["std"]), 2,
                                         train_gpu.avail_groups(meta))
    val_in = {"x": xv, "w": wv, "c": cv.astype(np.uint8), "e": (nv > 0).any(-1).astype(np.uint8)}
    noise = [np.random.default_rng([1, 0]).random(xv.shape[:2]).astype(np.float32)]
    got = train_gpu.fixed_val_loss(model, val_in, noise)
    assert got == pytest.approx(report["configs"]["cpu-small-s0"]["best_val_loss"], rel=2e-2)  # float16 weights


def test_train_gpu_runs_on_jax_without_tensorflow(tmp_path):
    """What a GPU lease runs (scripts/gpu_session.sh): Keras on JAX, device feed with flips/rotations, in a fresh
    interpreter where TensorFlow cannot be imported."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    data = _packed_file(tmp_path / "data.npz")
    out = tmp_path / "run"
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import builtins, runpy, sys\n"
        "real = builtins.__import__\n"
        "def block(name, *a, **k):\n"
        "    if name == 'tensorflow' or name.startswith('tensorflow.'):\n"
        "        raise ImportError('tensorflow blocked')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = block\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    args = ["--data", str(data), "--out", str(out), "--configs", "cpu-small", "--max-epochs", "2", "--chunk", "1",
            "--batch-size", "8", "--precision", "float32", "--masks", "2", "--val-masks", "1", "--feed", "device",
            "--augment"]
    script = str(ROOT / "scripts" / "train_gpu.py")
    res = subprocess.run([sys.executable, str(probe), script, *args], capture_output=True, text=True, timeout=600,
                         env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    report, _ = _check_run(out, "cpu-small-d4-s0", 2, len(_cpu_small_model().get_weights()))
    assert report["backend"] == "jax" and report["device"].startswith("cpu")




def test_gpu_session_script_end_to_end_on_cpu_jax(tmp_path):
    """scripts/gpu_session.sh as a lease runs it (benchmark skipped, one config with flips, one seed), on this
    machine's JAX: the run trains, is scored, and its best weights are copied out with the sweep's archive."""
    import importlib.util
    import os
    import shutil
    import subprocess
    import tarfile

    if importlib.util.find_spec("jax") is None or shutil.which("bash") is None:
        pytest.skip("needs jax and bash")
    data = _packed_file(tmp_path / "data.npz", n_train=512, n_val=4)
    out = tmp_path / "out"
    import sys

    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # python3: this one
    env = {**os.environ, "PATH": path, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "DATA": str(data),
           "CONFIGS": "cpu-small+d4", "SEEDS": "0", "KEEP": "1", "BENCH_S": "0"}
    # the budget only bounds the run (it stops after 2 epochs): a loaded machine (load 6) overran 300 s once
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_session.sh"), str(out), "900", "2"],
                         capture_output=True, text=True, timeout=1000, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "cpu-small-d4-s0: best held-out loss" in res.stdout and "2 epochs" in res.stdout, res.stdout
    assert (out / "best-cpu-small-d4-s0.npz").stat().st_size > 0
    with tarfile.open(out / "sweep.tgz") as tar:
        names = tar.getnames()
    assert "./cpu-small-d4-s0/report.json" in names and not any(n.endswith(".npz") for n in names)
    # a run that fails leaves no report: the session says so, shows the log's end, and exits non-zero
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_session.sh"), str(tmp_path / "bad"), "300", "2"],
                         capture_output=True, text=True, timeout=600, env={**env, "CONFIGS": "no-such-config"},
                         cwd=ROOT)
    assert res.returncode != 0 and "no-such-config-s0: no report" in res.stdout and "KeyError" in res.stdout
    assert "no run wrote a report" in res.stderr
