"""Resuming an interrupted ``fit`` safely: only the same run, and "best" stays the best.

``S2VecModel.fit(..., checkpoint_dir=D)`` keeps Keras' ``BackupAndRestore`` backup in ``D/backup``, so an
interrupted fit resumes at the epoch where it stopped. Two things Keras does not check are kept here:

* ``D/run.json`` records what was being trained (the configuration, channels, grid, normalization and a
  fingerprint of the training images). A fit that finds a backup of *another* run refuses to resume it
  (:func:`guard_resume`) instead of continuing from weights trained on other data or settings;
* ``D/best.json`` records the best monitored loss so far (:class:`BestSoFar`), and a resumed fit starts its
  best-checkpoint comparison from it, so ``best.weights.h5`` is never replaced by a worse epoch after a resume.

Both files are written atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._jsonfile import read_json, read_json_object, write_text_atomic
from ..errors import InvalidInputError

if TYPE_CHECKING:
    import xarray as xr

    from .._typing import StrPath

__all__ = ["run_fingerprint", "guard_resume", "best_so_far", "BestSoFar"]


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
    d = Path(checkpoint_dir)
    record, backup = d / "run.json", d / "backup"
    resuming = backup.exists() and any(backup.iterdir())
    if resuming:
        _check_backup(backup)
    if resuming and record.exists():
        try:
            old = read_json(record)
        except ValueError:
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
    if meta.exists():
        try:
            ok = isinstance(read_json_object(meta).get("epoch"), int)
        except ValueError:
            ok = False
        if not ok:
            bad.append(meta.name)
    for weights in backup.glob("*.weights.h5"):
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
    path = Path(checkpoint_dir) / "best.json"
    if not path.exists():
        return None
    try:
        value = float(read_json(path)["best"])
    except (ValueError, KeyError, TypeError):
        return None
    return value if math.isfinite(value) else None


def _callback_base():
    import keras

    return keras.callbacks.Callback


class BestSoFar(_callback_base()):
    """Keras callback: keep the best value of ``monitor`` in ``checkpoint_dir/best.json`` after every epoch.

    Parameters
    ----------
    checkpoint_dir : path
        Where ``best.json`` goes.
    monitor : str
        The logged quantity (``"val_loss"`` or ``"loss"``; lower is better).
    best : float, optional
        The best value before this fit (a resumed run's).
    """

    def __init__(self, checkpoint_dir: StrPath, monitor: str, best: float | None = None) -> None:
        super().__init__()
        self.path, self.monitor = Path(checkpoint_dir) / "best.json", monitor
        self.best = math.inf if best is None else float(best)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Record ``logs[monitor]`` when it is the best so far.

        Parameters
        ----------
        epoch : int
            The epoch that ended.
        logs : dict, optional
            Keras' logs of the epoch.
        """
        value = (logs or {}).get(self.monitor)
        if value is not None and math.isfinite(float(value)) and float(value) < self.best:
            self.best = float(value)
            write_text_atomic(self.path, json.dumps({"monitor": self.monitor, "best": self.best, "epoch": epoch}))
