"""Save / load an :class:`~geos2vec.model.S2VecModel` as one directory or ``.zip``.

Layout (the same inside a zip)::

    model.keras          the Keras model (architecture + weights)
    config.json          S2VecConfig
    feature_stats.json   FeatureStats (normalization)
    metadata.json        format, geos2vec version, channels, levels, image grid, library versions
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


def save_model(model, path) -> Path:
    """Write ``model`` to directory ``path`` (created) or, if it ends in ``.zip``, to one zip file."""
    import keras
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
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model.keras_model.save(tmp / "model.keras")
        model.config.save(tmp / "config.json")
        model.stats.save(tmp / "feature_stats.json")
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=1))
        if path.suffix == ".zip":
            path.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for name in _FILES:
                    zf.write(tmp / name, name)
        else:
            path.mkdir(parents=True, exist_ok=True)
            for name in _FILES:
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
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved model at {path}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is neither a model directory nor a .zip saved by S2VecModel.save")
        with tempfile.TemporaryDirectory() as tmp:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                missing = [f for f in _FILES if f not in names]
                if missing:
                    raise ValueError(f"{path} is not a saved S2Vec model: missing {missing}")
                for name in _FILES:
                    zf.extract(name, tmp)
            return _load_dir(Path(tmp), channels)
    return _load_dir(path, channels)


def _load_dir(path: Path, channels):
    import keras

    from geos2vec.normalize import FeatureStats

    from . import layers as _layers  # noqa: F401  (registers the custom layers)
    from .config import S2VecConfig
    from .data import match_channels
    from .mae import MaskedAutoencoder
    from .s2vec import S2VecModel

    missing = [f for f in _FILES if not (path / f).exists()]
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
    model.keras_model = keras.saving.load_model(path / "model.keras",
                                                custom_objects={"MaskedAutoencoder": MaskedAutoencoder})
    model.metadata = meta
    if channels is not None:
        import xarray as xr

        match_channels(xr.DataArray(list(channels), dims="feature", coords={"feature": list(channels)}),
                       model.channels)
    return model
