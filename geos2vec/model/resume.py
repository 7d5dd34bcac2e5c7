"""Resuming an interrupted ``fit`` safely: only the same run, and "best" stays the best.

``S2VecModel.fit(..., checkpoint_dir=D)`` keeps Keras' ``BackupAndRestore`` backup in ``D/backup``, so an
interrupted fit resumes at the epoch where it stopped. Three things Keras does not check are kept here:

* ``D/run.json`` records what was being trained (the configuration, channels, grid, normalization and a
  fingerprint of the training images). A fit that finds a backup of *another* run refuses to resume it
  (:func:`guard_resume`) instead of continuing from weights trained on other data or settings;
* ``D/best.json`` records the best monitored loss so far (:class:`BestSoFar`), and a resumed fit starts its
  best-checkpoint comparison from it, so ``best.weights.h5`` is never replaced by a worse epoch after a resume;
* ``D/state.json`` records, after every epoch, what Keras' backup leaves out (:class:`TrainingState`): the
  states of the model's random generators (masking and dropout) and ``EarlyStopping``'s counters. A resumed fit
  restores them, and :func:`skip_epochs` advances the shuffle to the resumed epoch, so an interrupted and
  resumed fit ends with the same weights and losses as an uninterrupted one (on one device; tested).

The files are written atomically (a temporary file, then a rename), Keras' checkpoints and backup weights too
(:class:`AtomicCheckpoint`, :class:`AtomicBackup`): Keras writes them in place, and a write cut short (a full
disk) left a file that loaded in part, so a resumed fit went on with some of the weights or a fresh optimizer.

The callbacks (:class:`BestSoFar`, :class:`TrainingState`, :class:`BackupSeal`, :class:`AtomicCheckpoint`,
:class:`AtomicBackup`) are in :mod:`geos2vec.model._resume_callbacks`, and importable from here.
"""

from __future__ import annotations

import contextlib  # noqa: F401 - importable from here, as before the split
import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._jsonfile import atomic_path as atomic_path  # importable from here, as before the split
from .._jsonfile import read_json, read_json_object, write_text_atomic
from .._stacklevel import warn
from ..errors import Geos2VecWarning, InvalidInputError
from .io import _sha256
from ._resume_callbacks import AtomicBackup, AtomicCheckpoint, BackupSeal, BestSoFar, TrainingState
# re-exported: importable from here, as before the split
from ._resume_callbacks import _atomic_weights as _atomic_weights, _keras_callback as _keras_callback
from ._resume_callbacks import _seed_states as _seed_states
from ._resume_callbacks import _state_record

if TYPE_CHECKING:
    import xarray as xr

    from .._typing import StrPath

__all__ = ["run_fingerprint", "guard_resume", "best_so_far", "BestSoFar", "resume_epoch", "skip_epochs",
           "stopped_at", "TrainingState", "BackupSeal", "AtomicCheckpoint", "AtomicBackup"]


def run_fingerprint(model: Any, da: xr.DataArray, train_idx: np.ndarray) -> dict[str, Any]:
    """What a resumable run trains: configuration (without ``epochs``), channels, grid, statistics, images.

    Parameters
    ----------
    model : S2VecModel
        The model about to be fitted (built).
    da : xarray.DataArray
        The training images.
    train_idx : numpy.ndarray
        The positions of the images it trains on.

    Returns
    -------
    dict
        JSON-serializable; two runs with equal fingerprints may resume each other's backup. The images enter
        as a SHA-256 of their ids and shape (not their values: lazy stores are not read for it).
    """
    config = {k: v for k, v in model.config.to_dict().items() if k != "epochs"}  # more epochs may resume
    images = np.asarray(da["image"].values, dtype=np.uint64)[np.asarray(train_idx)] if "image" in da.coords \
        else np.asarray(train_idx)
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes() + repr(tuple(da.shape)).encode()).hexdigest()
    stats = hashlib.sha256(json.dumps(model.stats.to_dict(), sort_keys=True).encode()).hexdigest()
    return {"config": config, "channels": list(model.channels), "grid": list(model.grid), "stats_sha256": stats,
            "images_sha256": digest}


def guard_resume(checkpoint_dir: StrPath, fingerprint: dict[str, Any]) -> bool:
    """Refuse to resume another run's backup; record this run's fingerprint.

    Parameters
    ----------
    checkpoint_dir : path
        The fit's ``checkpoint_dir``.
    fingerprint : dict
        :func:`run_fingerprint` of the fit about to start.

    Returns
    -------
    bool
        Whether a backup of this same run is there (the fit resumes it).

    Raises
    ------
    InvalidInputError
        A backup of a run with another fingerprint (other settings, channels, statistics or images), naming
        what differs and how to start afresh; or a backup an interrupted write left damaged.
    """
    d = Path(checkpoint_dir).expanduser()
    record, backup = d / "run.json", d / "backup"
    resuming = backup.exists() and any(backup.iterdir())
    if resuming:
        _check_backup(backup)
    if resuming and record.exists():
        try:
            old = read_json_object(record)  # a list or null run.json raised a bare AttributeError / TypeError
        except ValueError:  # unreadable: nothing matches, so the backup is refused
            old = {}
        differ = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
        if "config" in differ:
            cfg_old, cfg_new = old.get("config") or {}, fingerprint["config"]
            differ.remove("config")
            differ += [f"config.{k}" for k in sorted(set(cfg_old) | set(cfg_new)) if cfg_old.get(k) != cfg_new.get(k)]
        if differ:
            raise InvalidInputError(
                f"{d} holds the backup of an interrupted fit of another run (it differs in {differ}); resuming it "
                "would continue from weights trained on other settings or data. Fit with the same model, images "
                f"and settings to resume, or delete {backup} (or use another checkpoint_dir) to start afresh")
    if not resuming:
        (d / "best.json").unlink(missing_ok=True)  # a fresh run: no best loss yet
    write_text_atomic(record, json.dumps(fingerprint, indent=1))
    return resuming


def _check_backup(backup: Path) -> None:
    """Refuse a backup a killed run left half-written (Keras writes it in place) with a message that says so."""
    bad = []
    meta = backup / "training_metadata.json"
    if (backup / "latest.weights.h5").exists() and not meta.exists():
        bad.append("latest.weights.h5 without training_metadata.json")  # Keras would resume at epoch 0
    if meta.exists():
        try:
            epoch = read_json_object(meta).get("epoch")
            ok = isinstance(epoch, int) and not isinstance(epoch, bool)  # JSON true is no epoch (Python: 1)
        except ValueError:
            ok = False
        if not ok:
            bad.append(meta.name)
    for weights in backup.glob("[!.]*.weights.h5"):  # not the temporary file of a killed write
        try:
            import h5py

            with h5py.File(weights, "r"):
                pass
        except ImportError:  # pragma: no cover - h5py comes with keras
            break
        except OSError:
            bad.append(weights.name)
    if bad:
        raise InvalidInputError(f"the backup in {backup} is damaged ({', '.join(bad)}: an interrupted write), so the "
                                f"fit cannot resume from it; delete {backup} to start afresh (best.weights.h5 and "
                                "last.weights.h5 next to it are kept)")
    _reconcile_seal(backup)


def _reconcile_seal(backup: Path) -> None:
    """Catch Keras' backup weights rewritten after its metadata: a kill between its two writes of an epoch.

    ``seal.json`` (:class:`BackupSeal`) holds the epoch and SHA-256 of the weights of the last complete backup.
    Weights that no longer match it while the metadata still names that epoch are the next epoch's (Keras
    writes the weights first); the metadata is moved on to that epoch, with a warning, instead of running the
    epoch again from weights that already include it.
    """
    seal, meta, weights = backup / "seal.json", backup / "training_metadata.json", backup / "latest.weights.h5"
    if not (seal.exists() and meta.exists() and weights.exists()):
        return
    try:
        sealed, epoch = read_json_object(seal), read_json_object(meta).get("epoch")
    except ValueError:
        return
    if sealed.get("epoch") != epoch or sealed.get("sha256") == _sha256(weights):
        return
    write_text_atomic(meta, json.dumps({"epoch": epoch + 1, "batch": 0}))
    warn(f"the weights in {backup} are newer than its metadata (the fit was interrupted between the two writes "
         f"of epoch {epoch + 1}'s backup): resuming after that epoch", Geos2VecWarning)


def best_so_far(checkpoint_dir: StrPath) -> float | None:
    """The best monitored loss recorded in ``checkpoint_dir/best.json``.

    Parameters
    ----------
    checkpoint_dir : path
        The fit's ``checkpoint_dir``.

    Returns
    -------
    float or None
        The value, or None when there is none (or the file is unreadable).
    """
    path = Path(checkpoint_dir).expanduser() / "best.json"
    if not path.exists():
        return None
    try:
        value = read_json(path)["best"]
        if isinstance(value, bool):  # JSON true is no loss (float(True) is 1.0)
            return None
        value = float(value)
    except (ValueError, KeyError, TypeError):
        return None
    return value if math.isfinite(value) else None


def resume_epoch(checkpoint_dir: StrPath | None) -> int:
    """The epoch a fit with this ``checkpoint_dir`` resumes at: 0 without a backup.

    Parameters
    ----------
    checkpoint_dir : path, optional
        The fit's ``checkpoint_dir``.

    Returns
    -------
    int
        The ``epoch`` of Keras' backup metadata (the first epoch not yet done), or 0.
    """
    if checkpoint_dir is None:
        return 0
    meta = Path(checkpoint_dir).expanduser() / "backup" / "training_metadata.json"
    try:
        epoch = read_json_object(meta).get("epoch") if meta.exists() else 0
    except ValueError:
        return 0
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > 0 else 0


def skip_epochs(dataset: Any, epochs: int) -> None:
    """Advance a reshuffling ``tf.data`` dataset by ``epochs`` epochs, without reading it.

    A shuffle with ``reshuffle_each_iteration`` draws a new order each time an iterator is made, and Keras makes
    one per pass (``S2VecModel.fit`` repeats the pipeline, one pass per epoch); making ``epochs`` iterators first
    gives a resumed fit the order the uninterrupted fit used.

    Parameters
    ----------
    dataset : tf.data.Dataset
        The training dataset, before ``fit`` sees it.
    epochs : int
        Epochs already done.
    """
    for _ in range(int(epochs)):
        iter(dataset)


def stopped_at(checkpoint_dir: StrPath, epoch: int) -> bool:
    """Whether the fit whose backup resumes at ``epoch`` had already stopped there (early stopping).

    A fit killed after its last epoch, before Keras deleted the backup, would otherwise train one more epoch.

    Parameters
    ----------
    checkpoint_dir : path
        The fit's ``checkpoint_dir``.
    epoch : int
        :func:`resume_epoch`.

    Returns
    -------
    bool
        True when ``state.json``'s record of ``epoch`` says training stopped after it.
    """
    record = _state_record(Path(checkpoint_dir).expanduser() / "state.json", epoch) if epoch else None
    return record is not None and record.get("stopped") is True
