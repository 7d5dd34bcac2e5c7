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

The files' names, checksums and the weights' shapes are in :mod:`geos2vec.model._layout`, the reading of a model
folder in :mod:`geos2vec.model._folderread`; their names stay importable from here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .._jsonfile import _remove_stale, atomic_path, temporary_name, write_error
from .._optional import require
from ..errors import InvalidInputError, InvalidTypeError, ModelFormatError
from ._folderread import _check_meta, _load_dir
from ._layout import _COMPACT_FILES, _EXTRA_FILES, _FILES, _sha256, expected_shapes
from ._layout import _check_weight_shapes as _check_weight_shapes  # re-exported: the tests check shapes through io
from ._metadata import FORMAT, FORMAT_VERSION
from ._zipread import extract_model_zip
from .._jsonfile import read_json as read_json  # importable from here before the split
from ._metadata import check_metadata as check_metadata, newer_release_hint as newer_release_hint

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import DTypeLike

    from .._typing import StrPath
    from . import S2VecModel  # annotations only: at run time io never imports the model class (see above)

__all__ = ["save_model", "read_model", "default_model_path", "expected_shapes", "FORMAT", "FORMAT_VERSION"]

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
            with atomic_path(path, suffix=".zip") as part, \
                    zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as zf:
                for name in files:  # dated 1980-01-01 (a 1970 mtime, clamped) and mode 644, not the time of the save
                    os.chmod(tmp / name, 0o644)  # and the umask: the same model gives the same bytes
                    os.utime(tmp / name, (0, 0))
                    zf.write(tmp / name, name)
        else:
            part = temporary_name(path, ".partial")  # hidden, never loads; removed once its process has ended
            existed = path.exists()
            try:
                part.mkdir()
                for name in files:
                    shutil.copy2(tmp / name, part / name)
                _replace_dir(part, path)
            except BaseException as exc:  # interrupted, or refused: nothing half-written stays behind
                shutil.rmtree(part, ignore_errors=True)
                if isinstance(exc, OSError) and (err := write_error(exc, path, existed)) is not None:
                    raise err from exc  # named the hidden folder and the system's temporary one, not path
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


def _read_bundled_from_archive(channels, cls):
    """The bundled model read through ``importlib.resources`` (a zip import has no folder on disk), or None."""
    from importlib import resources

    bundled = resources.files("geos2vec") / "pretrained"
    if isinstance(bundled, Path) or not bundled.joinpath("metadata.json").is_file():  # a folder: missing indeed
        return None
    with tempfile.TemporaryDirectory() as tmp:
        for name in dict.fromkeys(_COMPACT_FILES + _FILES):  # the files _load_dir reads
            if bundled.joinpath(name).is_file():
                Path(tmp, name).write_bytes(bundled.joinpath(name).read_bytes())
        model = _load_dir(Path(tmp), channels, cls)
    model.source = "default"
    return model


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
            model = _read_bundled_from_archive(channels, cls)  # geos2vec imported from a zip (Spark's --py-files)
            if model is None:
                raise FileNotFoundError(f"the bundled model is missing from {path}; reinstall geos2vec")
            return model
    if not isinstance(path, (str, os.PathLike)):  # Path(3): "expected str, bytes or os.PathLike object, not int"
        raise InvalidTypeError(f"path must be 'default' or the path of a saved model (a folder or .zip), got "
                               f"{type(path).__name__}; a loaded model is used as it is (embed(..., model=model))")
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
