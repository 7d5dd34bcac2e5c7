"""Save / load an :class:`~geos2vec.model.S2VecModel` as one directory or ``.zip``.

Layout (the same inside a zip)::

    model.keras          the Keras model (architecture + weights)
    config.json          S2VecConfig
    feature_stats.json   FeatureStats (normalization)
    metadata.json        format, geos2vec version, channels, levels, image grid, library versions, and the
                         SHA-256 of the other files (a file from another save, or edited, is refused)

The compact layout (``save_model(..., compact=True)``, used for the bundled model) has ``weights.npz``
(every weight, float16 by default) instead of ``model.keras``: half the size, and loading it needs no
TensorFlow — embeddings then run in NumPy (:mod:`geos2vec.model.numpy_encoder`), and the Keras model is
rebuilt from the weights only for ``fit``/``evaluate``/``save``.

``read_model("default", S2VecModel)`` reads the model shipped in ``geos2vec/pretrained/``.

Loading is one-way, as in keras-hub: this module knows the file layout and never imports
:mod:`geos2vec.model.s2vec`; :meth:`S2VecModel.load <geos2vec.model.S2VecModel.load>` and
:func:`geos2vec.load_model` pass the model class to :func:`read_model`, and ``S2VecModel.save`` calls
:func:`save_model`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .._jsonfile import _remove_stale, atomic_path, read_json, temporary_name
from .._optional import require
from ..errors import InvalidInputError, InvalidTypeError, ModelFormatError
from ._metadata import FORMAT, FORMAT_VERSION, check_metadata, newer_release_hint
from ._zipread import extract_model_zip

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import DTypeLike

    from .._typing import StrPath
    from . import S2VecModel  # annotations only: at run time io never imports the model class (see above)
    from .config import S2VecConfig

__all__ = ["save_model", "read_model", "default_model_path", "expected_shapes", "FORMAT", "FORMAT_VERSION"]

_FILES = ("model.keras", "config.json", "feature_stats.json", "metadata.json")
_COMPACT_FILES = ("weights.npz", "config.json", "feature_stats.json", "metadata.json")
_EXTRA_FILES = ("MODEL_CARD.md", "training_report.json", "training_curve.png")

_Model = TypeVar("_Model", bound="S2VecModel")


def default_model_path() -> Path:
    """Directory of the model bundled with geos2vec.

    Returns
    -------
    pathlib.Path
        ``geos2vec/pretrained`` inside the installed package (it may lack the model files when they were
        not installed).
    """
    return Path(__file__).resolve().parents[1] / "pretrained"


def save_model(model: S2VecModel, path: StrPath, compact: bool = False, dtype: DTypeLike = "float16") -> Path:
    """Write ``model`` to directory ``path`` (created) or, if it ends in ``.zip``, to one zip file.

    ``compact=True`` stores the weights as ``weights.npz`` in ``dtype`` (float16: half the size of
    float32 weights, embeddings change by ~1e-3 relative) instead of a ``.keras`` file.

    The files are written to a temporary folder next to ``path`` and then moved into place, so an
    interrupted save leaves no half-written model. An existing model folder at ``path`` is replaced; in a
    folder that also holds other files, only the model files are replaced.

    Parameters
    ----------
    model : S2VecModel
        A built model, or one loaded in compact form (``compact=True`` then needs no Keras).
    path : str or path-like
        A directory, or a file name ending in ``.zip``.
    compact : bool
        Write ``weights.npz`` instead of ``model.keras``.
    dtype : str or numpy.dtype
        Floating-point type of the weights in ``weights.npz`` (``compact=True`` only): float16, float32 or
        float64 (float32 and float64 keep the weights exactly).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InvalidInputError
        (a ``ValueError``) The model is unbuilt, ``dtype`` is none of the three, or a compact-loaded model's
        ``config`` was replaced by one of another architecture.
    FileExistsError
        ``path`` (not a ``.zip``) exists and is not a directory, or ``path`` ends in ``.zip`` and is a folder.
    """
    import sys

    import numpy as np

    import geos2vec

    numpy_only = compact and model.keras_model is None and getattr(model, "numpy_weights", None) is not None
    if numpy_only:  # loaded in compact form: saved from its NumPy weights, without Keras (was: Keras required)
        from .config import check_architecture  # a replaced config must still describe these weights

        check_architecture(model.config, getattr(model, "weights_architecture", None) or {})
    elif model.keras_model is None and getattr(model, "numpy_weights", None) is None:
        raise InvalidInputError("cannot save an unbuilt model: call fit() or build() first")
    else:
        require("keras", "tensorflow", what="saving a model with compact=False (compact=True needs neither)")
        model.ensure_keras()  # NumPy weights into a Keras model for model.keras
    try:  # int8 truncated every weight to an integer; bfloat16 wrote a file that load_model refused
        ok = np.dtype(dtype) in (np.float16, np.float32, np.float64)
    except TypeError:
        ok = False
    if compact and not ok:
        raise InvalidInputError(f"dtype={dtype!r}: compact weights are stored as 'float16', 'float32' or 'float64'")
    path = check_save_path(path)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "geos2vec_version": geos2vec.__version__,
            "keras_version": getattr(sys.modules.get("keras"), "__version__", None),
            "tensorflow_version": getattr(sys.modules.get("tensorflow"), "__version__", None),
            "channels": list(model.channels), "image_level": model.image_level, "patch_level": model.patch_level,
            "grid": list(model.grid), "embedding_dim": model.embedding_dim,
            "history": _jsonable(getattr(model.history, "history", None))}
    files = _COMPACT_FILES if compact else _FILES
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if compact:
            from .numpy_encoder import save_weights, weights_from_keras

            meta["weights_dtype"] = str(np.dtype(dtype))
            weights = model.numpy_weights if numpy_only else weights_from_keras(model.keras_model)
            save_weights(weights, tmp / "weights.npz", dtype=np.dtype(dtype))
        else:
            model.keras_model.save(tmp / "model.keras")
        model.config.save(tmp / "config.json")
        model.stats.save(tmp / "feature_stats.json")
        meta["config_sha256"] = _sha256(tmp / "config.json")  # load_model refuses an edited config
        # ... and weights or statistics from another save (files copied between model folders)
        meta["files_sha256"] = {name: _sha256(tmp / name) for name in files if name not in ("metadata.json",
                                                                                         "config.json")}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=1))
        # write next to the target, then rename: an interrupted save never leaves a half-written model, and a
        # folder never mixes the files of two saves (e.g. an old model.keras next to a new weights.npz)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".zip":
            with atomic_path(path, suffix=".zip") as part, zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as zf:
                for name in files:
                    zf.write(tmp / name, name)
        else:
            part = temporary_name(path, ".partial")  # hidden, never loads; removed once its process has ended
            part.mkdir()
            try:
                for name in files:
                    shutil.copy2(tmp / name, part / name)
                _replace_dir(part, path)
            except BaseException:  # interrupted, or refused: nothing half-written stays behind
                shutil.rmtree(part, ignore_errors=True)
                raise
            _remove_stale(path, ".partial")
            _remove_stale(path, ".old")
    return path


def check_save_path(path: StrPath) -> Path:
    """``path`` as a :class:`~pathlib.Path` if a model can be saved there (``geos2vec train`` checks before training).

    Parameters
    ----------
    path : str or path-like
        A directory, or a file name ending in ``.zip``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileExistsError
        ``path`` ends in ``.zip`` and is a folder, or does not and is an existing file.
    """
    path = Path(path).expanduser()  # "~/models/x": was a folder named "~" in the working directory
    if path.suffix == ".zip" and path.is_dir():  # os.replace would fail with a raw IsADirectoryError, at the end
        raise FileExistsError(f"{path} is a folder: save the zip under another name, or into that folder by a "
                              "path without .zip")
    if path.suffix != ".zip" and path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; choose another path (or one ending in .zip)")
    return path


def _sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks of 1 MiB (model files and training backups)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _replace_dir(new: Path, path: Path) -> None:
    """Move directory ``new`` to ``path``; an existing model folder there is replaced as a whole.

    Another process's save that lands at ``path`` in between is replaced in turn (the last save wins whole).
    """
    for _ in range(8):
        if not path.exists():
            try:
                os.replace(new, path)
                return
            except OSError as err:  # another save made path in between: replace that one
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                continue
        if not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a directory; choose another path")
        known = set(_FILES) | set(_COMPACT_FILES) | set(_EXTRA_FILES)
        if any(p.name not in known for p in path.iterdir()):  # not (only) a model folder: keep the user's files
            for name in set(_FILES) | set(_COMPACT_FILES):
                (path / name).unlink(missing_ok=True)
            for item in new.iterdir():
                os.replace(item, path / item.name)
            new.rmdir()
            return
        old = temporary_name(path, ".old")
        try:
            os.replace(path, old)
        except FileNotFoundError:  # another save moved it away in between
            continue
        try:
            os.replace(new, path)
        except BaseException as err:
            if isinstance(err, OSError) and err.errno in (errno.ENOTEMPTY, errno.EEXIST):  # another save landed
                shutil.rmtree(old, ignore_errors=True)                                  # in between: replace it
                continue
            with contextlib.suppress(OSError):  # put the previous model back (a kill leaves it where load names it)
                os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(f"could not replace {path}: other processes keep saving models to it; save to another path")


def _jsonable(history):
    if not history:
        return None
    return {k: [float(v) for v in vals] for k, vals in history.items()}


def read_model(path: StrPath, cls: type[_Model], channels: Sequence[str] | None = None) -> _Model:
    """Read a model saved by :func:`save_model` (directory or ``.zip``) into a new ``cls``.

    Parameters
    ----------
    path : str or path-like
        A model directory, a ``.zip``, or ``"default"`` (the bundled model).
    cls : type
        The model class, constructed as ``cls(config)`` (:class:`~geos2vec.model.S2VecModel`).
    channels : list of str, optional
        The channels the data will have; a mismatch with the model's channels raises ``ValueError`` naming
        the differences.

    Returns
    -------
    cls
        The model, with its normalization, channels and weights.

    Raises
    ------
    InvalidTypeError
        ``channels`` is a string or not iterable.
    """
    if channels is not None:  # "road" was taken as the channels ["r", "o", "a", "d"]
        try:
            names = None if isinstance(channels, (str, bytes)) else list(channels)
        except TypeError:
            names = None
        if names is None:
            raise InvalidTypeError("channels must be a list of channel names (e.g. model.channels or "
                                   f"list(table.columns)), got {channels!r}")
        channels = names
    if isinstance(path, str) and path == "default":
        path = default_model_path()
        if not (path / "metadata.json").exists():
            raise FileNotFoundError(f"the bundled model is missing from {path}; reinstall geos2vec")
    path = Path(path).expanduser()
    if not path.exists():
        left = sorted(p for p in path.parent.glob(f".{path.name}.*") if p.name.endswith(".old") or
                      p.name.startswith(f".{path.name}.old-")) if path.parent.is_dir() else []
        hint = (f"; a save over it was interrupted and left the previous model in {left[-1]}: rename that "
                f"folder to {path.name}") if left else ""
        raise FileNotFoundError(f"no saved model at {path}{hint}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ModelFormatError(f"{path} is neither a model directory nor a .zip saved by S2VecModel.save")
        with tempfile.TemporaryDirectory() as tmp:
            extract_model_zip(path, Path(tmp), _FILES, _COMPACT_FILES, _check_meta)  # sizes bounded (zip bombs)
            try:
                model = _load_dir(Path(tmp), channels, cls)
            except ModelFormatError as exc:  # name the zip, not the temporary folder
                raise ModelFormatError(str(exc).replace(str(tmp), str(path))) from None
    else:
        model = _load_dir(path, channels, cls)
    # where the user's model came from (provenance): the zip, not the temporary folder it was read from
    model.source = "default" if path == default_model_path() else str(path)
    return model


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


def expected_shapes(config: S2VecConfig, n_features: int, n_patches: int) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of every array of a compact model's ``weights.npz`` (see ``numpy_encoder``).

    Parameters
    ----------
    config : S2VecConfig
        The model's hyper-parameters.
    n_features : int
        Number of channels.
    n_patches : int
        Pixels per image (``rows * cols``).

    Returns
    -------
    dict of str to tuple of int
        Array name (e.g. ``"encoder_block_0/attn/qkv/kernel"``) to shape; ``"encoder_layers"`` is a scalar
        (shape ``()``), ``"missing_embed"`` is present only with ``config.missing_token``.
    """
    d, dd, f = config.embedding_dim, config.decoder_dim, n_features
    out = {"pos_embed": (1, n_patches, d), "decoder_pos_embed": (1, n_patches, dd), "mask_token": (1, 1, dd),
           "encoder_layers": ()}
    if getattr(config, "missing_token", False):
        out["missing_embed"] = (1, 1, d)

    def dense(name, a, b):
        out[f"{name}/kernel"], out[f"{name}/bias"] = (a, b), (b,)

    def norm(name, a):
        out[f"{name}/gamma"], out[f"{name}/beta"] = (a,), (a,)

    def block(prefix, dim):
        hidden = int(round(dim * config.mlp_ratio))
        norm(prefix + "/norm1", dim)
        dense(prefix + "/attn/qkv", dim, 3 * dim)
        dense(prefix + "/attn/proj", dim, dim)
        norm(prefix + "/norm2", dim)
        dense(prefix + "/fc1", dim, hidden)
        dense(prefix + "/fc2", hidden, dim)

    dense("patch_embed", f, d)
    for i in range(config.encoder_layers):
        block(f"encoder_block_{i}", d)
    norm("encoder_norm", d)
    dense("decoder_embed", d, dd)
    for i in range(config.decoder_layers):
        block(f"decoder_block_{i}", dd)
    norm("decoder_norm", dd)
    dense("decoder_pred", dd, f)
    return out


def _check_weight_shapes(npz: Path, config, n_features: int, n_patches: int) -> None:
    """Compare every array's shape (read from the file's headers, nothing decompressed) with the config's."""
    import numpy as np

    want = expected_shapes(config, n_features, n_patches)
    try:
        with zipfile.ZipFile(npz) as zf:
            have = {}
            for info in zf.infolist():
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(fh)
                if dtype.kind not in "fiu":
                    raise ModelFormatError(f"{npz}: array {info.filename} has dtype {dtype}")
                have[info.filename.removesuffix(".npy")] = tuple(shape)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        if isinstance(exc, ModelFormatError):
            raise
        raise ModelFormatError(f"{npz} is damaged: not a readable weights file ({exc})") from None
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if missing or extra or wrong:
        detail = "; ".join(filter(None, [
            f"missing {missing[:3]}" if missing else "", f"unexpected {extra[:3]}" if extra else "",
            ", ".join(f"{k} is {have[k]}, config says {want[k]}" for k in wrong[:3])]))
        raise ModelFormatError(f"{npz} does not match config.json / metadata.json: {detail}")
