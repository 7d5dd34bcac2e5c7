"""The masked autoencoder is backend-neutral Keras 3: ``geos2vec.model.{layers,mae}`` need only keras + numpy.

CI runs this file with TensorFlow. It also runs as it is under ``KERAS_BACKEND=jax`` or ``=torch`` in an
environment with only keras, numpy, pytest and that backend (no TensorFlow, no geopandas): the model modules
are then imported through stub ``geos2vec`` / ``geos2vec.model`` packages (``geos2vec/__init__.py`` is not run),
the loader described in ``docs/model.md`` ("Backends"). ``REFERENCE`` holds outputs computed under the torch and
jax backends: every backend must reproduce them from the same weights.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "geos2vec" / "model"
STANDALONE = ("layers.py", "mae.py", "_mae_losses.py")


def load_model_modules(repo_root=ROOT):
    """``geos2vec.model.mae``: the installed package where it imports, else through stub packages."""
    try:
        return importlib.import_module("geos2vec.model.mae")
    except ImportError:  # geos2vec's own dependencies (pandas, geopandas, ...) are missing
        for name in [n for n in sys.modules if n == "geos2vec" or n.startswith("geos2vec.")]:
            del sys.modules[name]
    for name in ("geos2vec", "geos2vec.model"):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(Path(repo_root).joinpath(*name.split(".")))]
        sys.modules[name] = pkg
    return importlib.import_module("geos2vec.model.mae")


mae = load_model_modules()
from geos2vec.model.config import S2VecConfig  # noqa: E402
from geos2vec.model.layers import gather_tokens  # noqa: E402

ops = keras.ops
BACKEND = keras.backend.backend()
CFG = S2VecConfig(embedding_dim=32, encoder_layers=2, decoder_dim=16, decoder_layers=1, num_heads=4, dropout=0.2,
                  mask_ratio=0.75, seed=0)
P, F = 16, 5


def fixed_inputs():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, P, F)).astype(np.float32)
    noise = np.stack([rng.permutation(P) for _ in range(3)]).astype(np.float32) / P  # no ties
    return x, noise


def fixed_weights(model):
    """Weights drawn with NumPy (the same on every backend), in ``get_weights`` order."""
    rng = np.random.default_rng(123)
    return [(0.3 * rng.standard_normal(w.shape)).astype(np.float32) for w in model.get_weights()]


# pred[0, :2, :] and sums of reconstruct(x, noise) with fixed_weights, measured under KERAS_BACKEND=torch
# (torch 2.13.0) and =jax (jax 0.10.2) with keras 3.15.1 on CPU; TensorFlow 2.21 and both agree to 3e-7
# (pred_head) and 1e-7 relative (sums)
REFERENCE = {
    "pred_head": [[0.71731722, -0.50522554, -1.0480130, -0.54944885, -0.18677311],
                  [0.61840844, -0.39842981, -0.99535519, -0.55724525, -0.31822056]],
    "pred_sum": -75.824875,
    "pred_abs_sum": 137.20798,
    "encode_sum": 123.48077,
    "masked": [[0, 1, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14], [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 13, 15],
               [0, 2, 3, 4, 5, 6, 8, 10, 12, 13, 14, 15]],
}


def np_(t):
    return ops.convert_to_numpy(t)


# --------------------------------------------------------------------------- imports
def _module_level_imports(path):
    """``(module, level)`` of every import statement outside function bodies and ``if TYPE_CHECKING:`` blocks.

    (The imports of a ``TYPE_CHECKING`` block serve annotations only and never run.)
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, 0) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.append((child.module or "", child.level))
            visit(child)

    visit(tree)
    return found


@pytest.mark.parametrize("name", STANDALONE)
def test_model_modules_import_only_keras_and_numpy(name):
    imports = _module_level_imports(MODEL_DIR / name)
    assert imports, "no import statement found"
    for module, level in imports:
        if level:  # relative: only among the standalone modules
            assert level == 1 and f"{module}.py" in STANDALONE, (module, level)
        else:
            assert module.split(".")[0] in {"__future__", "typing", "keras", "numpy"}, module  # typing: stdlib
    assert "tensorflow" not in {m.split(".")[0] for m, _ in imports}


_PROBE = r"""
import builtins, importlib, json, sys, types
from pathlib import Path

BLOCKED = {"geopandas", "pandas", "xarray", "shapely", "pyarrow", "dask", "zarr", "tqdm"}


class Block:  # geos2vec's dependencies, absent where the model must train (keras + torch/jax + numpy only)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"blocked: {name}", name=name)


import keras  # the backend itself may import what it likes

root = Path(sys.argv[1])
for name in ("geos2vec", "geos2vec.model"):
    pkg = types.ModuleType(name)
    pkg.__path__ = [str(root.joinpath(*name.split(".")))]
    sys.modules[name] = pkg

seen = []
real_import = builtins.__import__


def spy(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "")
    if importer in ("geos2vec.model.mae", "geos2vec.model.layers"):
        seen.append([importer, name, level])
    return real_import(name, globals, locals, fromlist, level)


builtins.__import__ = spy
sys.meta_path.insert(0, Block())
mae = importlib.import_module("geos2vec.model.mae")
sys.meta_path.pop(0)
builtins.__import__ = real_import
model = mae.MaskedAutoencoder(16, 3, embedding_dim=8, encoder_layers=1, decoder_dim=8, decoder_layers=1,
                              num_heads=2, seed=0)
model.build((None, 16, 3))
out = model(keras.random.normal((2, 16, 3)))
print(json.dumps({"seen": seen, "backend": keras.backend.backend(), "pred": list(out["pred"].shape),
                  "stub": not hasattr(sys.modules["geos2vec"], "__file__"),
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def _available(backend):
    return importlib.util.find_spec({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]) is not None


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_standalone_import_and_forward(backend, tmp_path):
    """In a fresh interpreter: stub packages, geopandas & co. blocked; the modules import only keras (+ .layers)."""
    if not _available(backend):
        pytest.skip(f"{backend} is not installed")
    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, str(probe), str(ROOT)], capture_output=True, text=True, timeout=300,
                         env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["backend"] == backend and res["stub"] and res["pred"] == [2, 16, 3]
    names = {(importer.rsplit(".", 1)[1], name.split(".")[0], level) for importer, name, level in res["seen"]}
    assert ("mae", "layers", 1) in names  # the spy saw the imports
    assert {n for _, n, lvl in names if lvl == 0} <= {"__future__", "typing", "keras", "numpy"}, names
    if backend != "tensorflow":
        assert not res["tensorflow"]


# --------------------------------------------------------------------------- forward pass / weights
def test_gather_tokens_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 9, 3)).astype(np.float32)
    ids = np.stack([rng.permutation(9)[:5] for _ in range(4)])
    np.testing.assert_array_equal(np_(gather_tokens(x, ids)), x[np.arange(4)[:, None], ids])


def test_weights_round_trip_and_reconstruct_is_deterministic(tmp_path):
    x, noise = fixed_inputs()
    a = mae.build_mae(CFG, P, F)
    out = a.reconstruct(x, noise)
    again = a.reconstruct(x, noise)  # training=False: no dropout, masks from the noise only
    np.testing.assert_array_equal(np_(again["pred"]), np_(out["pred"]))
    np.testing.assert_array_equal(np_(again["mask"]), np_(out["mask"]))
    weights = a.get_weights()
    np.savez(tmp_path / "w.npz", *weights)
    with np.load(tmp_path / "w.npz") as z:
        loaded = [z[f"arr_{i}"] for i in range(len(z.files))]
    b = mae.build_mae(CFG.replace(seed=5), P, F)  # another initialization
    assert [w.path for w in b.weights] == [w.path for w in a.weights]
    assert not np.allclose(np_(b.reconstruct(x, noise)["pred"]), np_(out["pred"]))
    b.set_weights(loaded)
    np.testing.assert_allclose(np_(b.reconstruct(x, noise)["pred"]), np_(out["pred"]), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np_(b.reconstruct(x, noise)["mask"]), np_(out["mask"]))
    np.testing.assert_allclose(np_(b.encode(x)), np_(a.encode(x)), rtol=0, atol=1e-6)


def test_reconstruct_matches_torch_and_jax_reference():
    x, noise = fixed_inputs()
    model = mae.build_mae(CFG, P, F)
    model.set_weights(fixed_weights(model))
    out = model.reconstruct(x, noise)
    pred, mask = np_(out["pred"]), np_(out["mask"])
    assert [np.flatnonzero(m).tolist() for m in mask] == REFERENCE["masked"]
    np.testing.assert_allclose(pred[0, :2], REFERENCE["pred_head"], rtol=0, atol=1e-5)
    assert float(pred.sum()) == pytest.approx(REFERENCE["pred_sum"], rel=1e-5)
    assert float(np.abs(pred).sum()) == pytest.approx(REFERENCE["pred_abs_sum"], rel=1e-5)
    assert float(np_(model.encode(x)).sum()) == pytest.approx(REFERENCE["encode_sum"], rel=1e-5)


# --------------------------------------------------------------------------- training
def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, P, F)).astype(np.float32)
    x[..., 0] += np.linspace(-2.0, 2.0, P, dtype=np.float32)  # a per-position signal to learn
    w = (rng.random((n, P)) < 0.7).astype(np.float32)
    return x, w


def test_compute_loss_is_masked_mse_of_the_batch_dict():
    x, w = _data(4)
    for ignore in (False, True):
        model = mae.build_mae(CFG.replace(ignore_unobserved=ignore), P, F)
        out = model({"x": x, "w": w}, training=False)
        loss = float(np_(model.compute_loss(x={"x": x, "w": w}, y_pred=out)))
        expected = float(np_(mae.masked_mse(x, out["pred"], out["mask"], w if ignore else None)))
        assert loss == pytest.approx(expected, rel=1e-6)
        alone = float(np_(model.compute_loss(x=x, y_pred=out)))  # the features alone: no weight
        assert alone == pytest.approx(float(np_(mae.masked_mse(x, out["pred"], out["mask"]))), rel=1e-6)
    assert ignore and loss != pytest.approx(alone)  # w did change the loss


def test_fit_numpy_dict_on_the_active_backend():
    """``fit({"x": X, "w": W})`` through Keras' own trainer of the backend (no hand-written train_step)."""
    assert "train_step" not in vars(mae.MaskedAutoencoder) and "test_step" not in vars(mae.MaskedAutoencoder)
    x, w = _data()
    keras.utils.set_random_seed(0)
    model = mae.build_mae(CFG.replace(dropout=0.0, ignore_unobserved=True), P, F)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=3e-3))
    hist = model.fit({"x": x, "w": w}, batch_size=8, epochs=3, verbose=0, validation_data=({"x": x, "w": w},))
    loss = hist.history["loss"]
    assert set(hist.history) == {"loss", "val_loss"} and np.isfinite(loss + hist.history["val_loss"]).all()
    assert loss[-1] < loss[0]
    res = model.evaluate({"x": x, "w": w}, batch_size=8, verbose=0, return_dict=True)
    assert set(res) == {"loss"} and np.isfinite(res["loss"])


def test_masked_mse_per_value_weights():
    """(batch, length, features) weights: the mean over the weighted values of masked patches (NumPy)."""
    from geos2vec.model.mae import masked_mse

    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 6, 4)).astype("float32")
    pred = rng.standard_normal((3, 6, 4)).astype("float32")
    mask = (rng.random((3, 6)) < 0.5).astype("float32")
    w = (rng.random((3, 6, 4)) < 0.6).astype("float32")
    wv = w * mask[..., None]
    ref = ((pred - x) ** 2 * wv).sum() / wv.sum()
    np.testing.assert_allclose(float(masked_mse(x, pred, mask, w)), ref, rtol=1e-5)
    # all-ones per-value weights = the per-patch form with all-ones patch weights
    ones = np.ones_like(w)
    np.testing.assert_allclose(float(masked_mse(x, pred, mask, ones)),
                               float(masked_mse(x, pred, mask, np.ones((3, 6), "float32"))), rtol=1e-5)
