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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._jsonfile import atomic_path, read_json, read_json_object, write_text_atomic
from .._stacklevel import warn
from ..errors import Geos2VecWarning, InvalidInputError
from .io import _sha256

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


def _keras_callback(name: str = "Callback"):
    """``keras.callbacks.<name>``, the base class of one of this module's callbacks."""
    import keras

    return getattr(keras.callbacks, name)


class BestSoFar(_keras_callback()):
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
        self.path, self.monitor = Path(checkpoint_dir).expanduser() / "best.json", monitor
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


def _state_record(path: Path, epoch: int) -> dict[str, Any] | None:
    """The record of ``epoch`` in a ``state.json`` (:class:`TrainingState`), as written; None without one."""
    try:
        records = read_json_object(path).get("records") if path.exists() else None
    except ValueError:
        return None
    if not isinstance(records, list):
        return None
    return next((r for r in records if isinstance(r, dict) and r.get("epoch") == epoch), None)


def _seed_states(model: Any) -> list[Any]:
    """The state variables of a Keras model's random generators (``keras.random.SeedGenerator``), in order."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


class TrainingState(_keras_callback()):
    """Keras callback: keep what Keras' backup leaves out in ``checkpoint_dir/state.json``, and restore it.

    After every epoch it records the epoch count, the states of the model's random generators and the
    counters of ``early_stopping``; ``state.json`` holds the records of the last two
    epochs. At the start of a fit that resumes at ``start_epoch`` it restores the record of that epoch and gives
    ``early_stopping`` the best weights so far (from ``best.weights.h5``), as if the fit had not been
    interrupted. Without a usable record (a backup of an older version, a damaged file, another model) it
    warns and the fit resumes with fresh draws, as before.

    ``make_callbacks`` places it after every callback that writes a file at an epoch's end and right before
    ``BackupAndRestore``, whose write is then the last: a fit killed before it repeats that epoch, from the
    record of the epoch before, with the same draws. At the start it loads ``best.weights.h5`` into the model
    to read the best weights; the backup's weights and optimizer state are loaded after.

    Parameters
    ----------
    checkpoint_dir : path
        The fit's ``checkpoint_dir``.
    start_epoch : int
        The epoch the fit resumes at (:func:`resume_epoch`; 0 for a fresh fit).
    early_stopping : keras.callbacks.EarlyStopping, optional
        The fit's early stopping, whose ``wait``, ``best`` and ``best_epoch`` are kept.
    """

    def __init__(self, checkpoint_dir: StrPath, start_epoch: int, early_stopping: Any | None = None) -> None:
        super().__init__()
        self.dir = Path(checkpoint_dir).expanduser()
        self.start_epoch, self.early_stopping = int(start_epoch), early_stopping
        self.path = self.dir / "state.json"
        self._last: dict[str, Any] | None = None

    def _record(self, epoch: int) -> dict[str, Any] | None:
        """The record of ``epoch`` in ``state.json``, checked against this model (None: none usable)."""
        record = _state_record(self.path, epoch)
        if record is None:
            return None
        try:
            # the same generators in the same order: run.json guarantees the same configuration (their paths
            # carry Keras' global name counters, which differ between two models of one process)
            states = record["seed_states"]
            if len(states) != len(_seed_states(self.model)):
                return None
            record["seed_states"] = [np.asarray(v, dtype=np.int64).reshape(2) for v in states]
            es = record.get("early_stopping")
            if es is not None:
                record["early_stopping"] = {"wait": int(es["wait"]), "best_epoch": int(es["best_epoch"]),
                                            "best": None if es["best"] is None else float(es["best"])}
        except (ValueError, TypeError, KeyError):
            return None
        return record

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Restore the record of the resumed epoch, if any.

        Parameters
        ----------
        logs : dict, optional
            Not used.
        """
        self._last = None
        if not self.start_epoch:
            return
        record = self._record(self.start_epoch)
        if record is None:
            warn(f"{self.path} has no usable record of epoch {self.start_epoch}, where this fit resumes: masks, "
                 "dropout and early stopping's patience do not continue from the interrupted run, so the resumed "
                 "run will differ from an uninterrupted one", Geos2VecWarning)
            return
        for var, value in zip(_seed_states(self.model), record["seed_states"]):
            var.assign(value.astype(var.dtype))
        self._last = {**record, "seed_states": [v.tolist() for v in record["seed_states"]]}
        es, counters = self.early_stopping, record.get("early_stopping")
        if es is None or counters is None:
            return
        es.wait, es.best_epoch, es.best = counters["wait"], counters["best_epoch"], counters["best"]
        best = self.dir / "best.weights.h5"
        if es.restore_best_weights and es.best is not None:
            try:
                self.model.load_weights(best)  # the backup's weights (and optimizer) are loaded after this
            except (OSError, ValueError) as exc:
                warn(f"{best} could not be read ({type(exc).__name__}: {exc}): early stopping restores the best "
                     "weights since the resume only", Geos2VecWarning)
            else:
                es.best_weights = self.model.get_weights()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Record the state after ``epoch``.

        Parameters
        ----------
        epoch : int
            The epoch that ended.
        logs : dict, optional
            Not used.
        """
        states = _seed_states(self.model)
        record: dict[str, Any] = {"epoch": epoch + 1, "seed_states": [v.numpy().tolist() for v in states],
                                  "stopped": bool(getattr(self.model, "stop_training", False))}
        es = self.early_stopping
        if es is not None:
            best = None if es.best is None else float(es.best)
            record["early_stopping"] = {"wait": int(es.wait), "best": best, "best_epoch": int(es.best_epoch)}
        previous = [self._last] if self._last is not None and self._last.get("epoch") == epoch else []
        write_text_atomic(self.path, json.dumps({"records": previous + [record]}))
        self._last = record


class BackupSeal(_keras_callback()):
    """Keras callback, after ``BackupAndRestore``: seal each epoch's backup with the SHA-256 of its weights.

    Writes ``backup/seal.json`` (``{"epoch", "sha256"}``, atomically) after Keras' backup of every epoch, so that
    weights rewritten after the metadata (a kill between Keras' two writes) are recognized at the next
    resume (:func:`guard_resume`).

    Parameters
    ----------
    backup_dir : path
        ``BackupAndRestore``'s folder.
    """

    def __init__(self, backup_dir: StrPath) -> None:
        super().__init__()
        self.dir = Path(backup_dir).expanduser()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Seal the backup of ``epoch``.

        Parameters
        ----------
        epoch : int
            The epoch that ended (its backup was just written).
        logs : dict, optional
            Not used.
        """
        weights = self.dir / "latest.weights.h5"
        if weights.exists():
            write_text_atomic(self.dir / "seal.json", json.dumps({"epoch": epoch + 1, "sha256": _sha256(weights)}))


@contextlib.contextmanager
def _atomic_weights(model: Any):
    """Within the block, ``model.save_weights(path)`` writes a temporary file beside ``path``, then renames it."""
    save = model.save_weights

    def save_weights(filepath, *args, **kwargs):
        with atomic_path(filepath, suffix=".weights.h5") as tmp:  # Keras wants the suffix
            save(tmp, *args, **kwargs)

    object.__setattr__(model, "save_weights", save_weights)  # past Keras' attribute tracking
    try:
        yield
    finally:
        object.__delattr__(model, "save_weights")


class AtomicCheckpoint(_keras_callback("ModelCheckpoint")):
    """``keras.callbacks.ModelCheckpoint`` (weights only) whose file is replaced whole: never left half-written."""

    def _save_model(self, *args, **kwargs):
        with _atomic_weights(self.model):
            return super()._save_model(*args, **kwargs)


class AtomicBackup(_keras_callback("BackupAndRestore")):
    """``keras.callbacks.BackupAndRestore`` whose weights file is replaced whole: never left half-written.

    Its metadata is written after the weights, as Keras does; :class:`BackupSeal` recognizes a kill between the two.
    """

    def _save_model(self, *args, **kwargs):
        with _atomic_weights(self.model):
            return super()._save_model(*args, **kwargs)
