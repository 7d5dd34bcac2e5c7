"""Reading a saved model's folder (:func:`geos2vec.model.io.read_model`): every file checked, then loaded.

The zip of a model is extracted (:mod:`geos2vec.model._zipread`) and read here too. Like
:mod:`geos2vec.model.io`, this module never imports :mod:`geos2vec.model.s2vec`: it is given the model class.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from .._jsonfile import read_json
from .._optional import require
from ..errors import InvalidInputError, ModelFormatError
from ._layout import _COMPACT_FILES, _FILES, _check_weight_shapes, _sha256
from ._metadata import check_metadata, newer_release_hint


def _check_meta(read, path: Path) -> tuple[dict, tuple[int, int] | None]:
    """The metadata ``read()`` gives and its grid, checked (:func:`check_metadata`), else ``ModelFormatError``."""
    try:
        meta = read()
    except InvalidInputError as exc:  # read_json's message names the file
        raise ModelFormatError(str(exc)) from None
    except (ValueError, zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise ModelFormatError(f"{path}: metadata.json is not valid JSON ({exc})") from None
    return meta, check_metadata(meta, path)[1]


def _load_dir(path: Path, channels, cls):
    from geos2vec.normalize import FeatureStats

    from .config import S2VecConfig
    from .data import match_channels

    meta = grid = None
    if (path / "metadata.json").exists():  # first: a newer format (other files) is refused as such
        meta, grid = _check_meta(lambda: read_json(path / "metadata.json"), path)
    odd = [n for n in set(_FILES) | set(_COMPACT_FILES) if (path / n).exists() and not (path / n).is_file()]
    if odd:  # a folder, or a link to /dev/zero or a pipe: read for ever
        raise ModelFormatError(f"{path}: {', '.join(sorted(odd))} is not a regular file (a folder, device or pipe?); "
                               "copy the model again")
    has_keras, has_npz = (path / "model.keras").exists(), (path / "weights.npz").exists()
    if has_keras and has_npz:
        raise ModelFormatError(f"{path} holds both model.keras and weights.npz (files of two saves?); keep "
                               "the one you mean and remove the other")
    compact = has_npz
    missing = [f for f in (_COMPACT_FILES if compact else _FILES) if not (path / f).exists()]
    if missing:
        need = "weights.npz (compact) or model.keras" if not (has_keras or has_npz) else ", ".join(missing)
        raise ModelFormatError(f"{path} is not a complete saved S2Vec model: missing {need}")
    if "config_sha256" in meta and _sha256(path / "config.json") != meta["config_sha256"]:
        raise ModelFormatError(f"{path / 'config.json'} was changed after the model was saved (its checksum does "
                               "not match metadata.json): the architecture would not match the weights. Restore "
                               "it, or retrain and save again")
    try:
        config = S2VecConfig.load(path / "config.json", strict=True)
        model = cls(config)
        model.stats = FeatureStats.load(path / "feature_stats.json")
    except ValueError as exc:  # e.g. a config field of a newer geos2vec: say so
        raise ModelFormatError(f"{path}: {exc}{newer_release_hint(meta)}") from None
    model.channels = list(meta["channels"])
    if list(model.stats.channels) != model.channels:
        raise ModelFormatError(f"{path}: feature_stats.json and metadata.json disagree on the channels")
    model.grid = grid
    model.image_level, model.patch_level = meta.get("image_level"), meta.get("patch_level")
    if compact:
        from .numpy_encoder import load_weights

        try:  # arrays a newer geos2vec added (with the same format version) name that version
            _check_weight_shapes(path / "weights.npz", config, len(model.channels), int(model.grid[0] * model.grid[1]))
        except ModelFormatError as exc:
            raise ModelFormatError(f"{exc}{newer_release_hint(meta)}") from None
        from .config import architecture  # what embed checks a replaced config against (num_heads shows in no shape)

        model.weights_architecture = architecture(config)
        try:
            model.numpy_weights = load_weights(path / "weights.npz")
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
            raise ModelFormatError(f"{path / 'weights.npz'} is damaged ({type(exc).__name__}: {exc}); save the "
                                   "model again or copy it anew") from None
    else:
        require("keras", what=f"loading {path / 'model.keras'} (a model saved with compact=False; compact saves load "
                "without Keras)")
        import keras

        from . import layers as _layers  # noqa: F401  (registers the custom layers)
        from .mae import MaskedAutoencoder
        from .optimizer import FusedAdamW  # a fitted model's model.keras names its optimizer

        if not zipfile.is_zipfile(path / "model.keras"):  # a .keras file is a zip archive
            raise ModelFormatError(f"{path / 'model.keras'} is not a readable Keras file (truncated or damaged?); "
                                   "save the model again")
        try:
            model.keras_model = keras.saving.load_model(path / "model.keras",
                                                        custom_objects={"MaskedAutoencoder": MaskedAutoencoder,
                                                                        "FusedAdamW": FusedAdamW})
        except (ValueError, TypeError, OSError, KeyError, zipfile.BadZipFile) as exc:
            raise ModelFormatError(f"{path / 'model.keras'} could not be loaded ({type(exc).__name__}: {exc})"
                                   f"{newer_release_hint(meta)}") from None
    # readable, but from the same save? (saves before 0.3 recorded the config's checksum only)
    sums = meta.get("files_sha256") or {}
    mine = [n for n in set(_FILES) | set(_COMPACT_FILES) if n in sums and (path / n).exists()]  # regular (above)
    changed = sorted(n for n in mine if _sha256(path / n) != sums[n])  # another name may link to /dev/zero
    if changed:
        raise ModelFormatError(f"{path}: {', '.join(changed)} differ(s) from the file(s) saved with this model (the "
                               "checksums in metadata.json): files of another save, or edited. Restore them, or "
                               "save the model again")
    model.metadata = meta
    if channels is not None:
        import xarray as xr

        match_channels(xr.DataArray(list(channels), dims="feature", coords={"feature": list(channels)}),
                       model.channels)
    return model
