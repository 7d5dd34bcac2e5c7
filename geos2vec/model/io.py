"""Save / load an :class:`~geos2vec.model.S2VecModel` as one directory or ``.zip``.

Layout (the same inside a zip)::

    model.keras          the Keras model (architecture + weights)
    config.json          S2VecConfig
    feature_stats.json   FeatureStats (normalization)
    metadata.json        format, geos2vec version, channels, levels, image grid, library versions

The compact layout (``save_model(..., compact=True)``, used for the bundled model) has ``weights.npz``
(every weight, float16 by default) instead of ``model.keras``: half the size, and loading it needs no
TensorFlow — embeddings then run in NumPy (:mod:`geos2vec.model.numpy_encoder`), and the Keras model is
rebuilt from the weights only for ``fit``/``evaluate``/``save``.

``load_model("default")`` loads the model shipped in ``geos2vec/pretrained/``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

__all__ = ["save_model", "load_model", "FORMAT", "FORMAT_VERSION"]

FORMAT = "geos2vec.s2vec"
FORMAT_VERSION = 1
_FILES = ("model.keras", "config.json", "feature_stats.json", "metadata.json")
_COMPACT_FILES = ("weights.npz", "config.json", "feature_stats.json", "metadata.json")
_EXTRA_FILES = ("MODEL_CARD.md", "training_report.json", "training_curve.png")


def default_model_path() -> Path:
    """Directory of the model bundled with geos2vec."""
    return Path(__file__).resolve().parents[1] / "pretrained"


def save_model(model, path, compact: bool = False, dtype="float16") -> Path:
    """Write ``model`` to directory ``path`` (created) or, if it ends in ``.zip``, to one zip file.

    ``compact=True`` stores the weights as ``weights.npz`` in ``dtype`` (float16: half the size of
    float32 weights, embeddings change by ~1e-3 relative) instead of a ``.keras`` file.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import geos2vec

    if model.keras_model is None:
        raise ValueError("cannot save an unbuilt model: call fit() or build() first")
    path = Path(path)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "geos2vec_version": geos2vec.__version__,
            "keras_version": keras.__version__, "tensorflow_version": tf.__version__,
            "channels": list(model.channels), "image_level": model.image_level, "patch_level": model.patch_level,
            "grid": list(model.grid), "embedding_dim": model.embedding_dim,
            "history": _jsonable(getattr(model.history, "history", None))}
    files = _COMPACT_FILES if compact else _FILES
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if compact:
            from .numpy_encoder import save_weights, weights_from_keras

            meta["weights_dtype"] = str(np.dtype(dtype))
            save_weights(weights_from_keras(model.keras_model), tmp / "weights.npz", dtype=np.dtype(dtype))
        else:
            model.keras_model.save(tmp / "model.keras")
        model.config.save(tmp / "config.json")
        model.stats.save(tmp / "feature_stats.json")
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=1))
        if path.suffix == ".zip":
            path.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for name in files:
                    zf.write(tmp / name, name)
        else:
            path.mkdir(parents=True, exist_ok=True)
            for name in files:
                shutil.copy2(tmp / name, path / name)
    return path


def _jsonable(history):
    if not history:
        return None
    return {k: [float(v) for v in vals] for k, vals in history.items()}


def load_model(path, channels=None):
    """Load a model saved by :func:`save_model` (directory or ``.zip``).

    ``channels``: optional channel list the data will have; a mismatch with the
    model's channels raises ``ValueError`` naming the differences.
    """
    if isinstance(path, str) and path == "default":
        path = default_model_path()
        if not (path / "metadata.json").exists():
            raise FileNotFoundError(f"the bundled model is missing from {path}; reinstall geos2vec")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved model at {path}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is neither a model directory nor a .zip saved by S2VecModel.save")
        with tempfile.TemporaryDirectory() as tmp:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                files = _COMPACT_FILES if "weights.npz" in names and "model.keras" not in names else _FILES
                missing = [f for f in files if f not in names]
                if missing:
                    raise ValueError(f"{path} is not a saved S2Vec model: missing {missing}")
                for name in files:
                    zf.extract(name, tmp)
            return _load_dir(Path(tmp), channels)
    return _load_dir(path, channels)


def _load_dir(path: Path, channels):
    from geos2vec.normalize import FeatureStats

    from .config import S2VecConfig
    from .data import match_channels
    from .s2vec import S2VecModel

    compact = (path / "weights.npz").exists() and not (path / "model.keras").exists()
    missing = [f for f in (_COMPACT_FILES if compact else _FILES) if not (path / f).exists()]
    if missing:
        raise ValueError(f"{path} is not a saved S2Vec model: missing {missing}")
    meta = json.loads((path / "metadata.json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown format {meta.get('format')!r} (expected {FORMAT!r})")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{path} was saved by a newer geos2vec ({meta.get('geos2vec_version')}); upgrade geos2vec")
    model = S2VecModel(S2VecConfig.load(path / "config.json"))
    model.stats = FeatureStats.load(path / "feature_stats.json")
    model.channels = list(meta["channels"])
    if list(model.stats.channels) != model.channels:
        raise ValueError(f"{path}: feature_stats.json and metadata.json disagree on the channels")
    model.grid = tuple(meta["grid"])
    model.image_level, model.patch_level = meta.get("image_level"), meta.get("patch_level")
    if compact:
        from .numpy_encoder import load_weights

        model.numpy_weights = load_weights(path / "weights.npz")
    else:
        import keras

        from . import layers as _layers  # noqa: F401  (registers the custom layers)
        from .mae import MaskedAutoencoder

        model.keras_model = keras.saving.load_model(path / "model.keras",
                                                    custom_objects={"MaskedAutoencoder": MaskedAutoencoder})
    model.metadata = meta
    if channels is not None:
        import xarray as xr

        match_channels(xr.DataArray(list(channels), dims="feature", coords={"feature": list(channels)}),
                       model.channels)
    return model
