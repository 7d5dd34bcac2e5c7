"""The Keras callbacks of a resumable ``fit`` (:mod:`geos2vec.model.resume`), and what they read back.

:class:`BestSoFar` keeps the best monitored loss in ``best.json``, :class:`TrainingState` what Keras' backup
leaves out in ``state.json`` (read back by :func:`_state_record`), :class:`BackupSeal` the SHA-256 of each
epoch's backup weights in ``backup/seal.json``; :class:`AtomicCheckpoint` and :class:`AtomicBackup` are Keras'
``ModelCheckpoint`` and ``BackupAndRestore`` whose weights files are replaced whole. Defining the classes imports
Keras (importing this module does). Everything here is importable from :mod:`geos2vec.model.resume`.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._jsonfile import atomic_path, read_json_object, write_text_atomic
from .._stacklevel import warn
from ..errors import Geos2VecWarning
from ._layout import _sha256

if TYPE_CHECKING:
    from .._typing import StrPath


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
        The epoch the fit resumes at (:func:`~geos2vec.model.resume.resume_epoch`; 0 for a fresh fit).
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
    resume (:func:`~geos2vec.model.resume.guard_resume`).

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


def _check_room(path: Path, model: Any) -> None:
    """``OSError(ENOSPC)`` when the folder of ``path`` cannot hold the weights file: HDF5 must not find out itself.

    h5py writing into a disk that fills up crashed the process (a segmentation fault, exit 139, after "Can't
    decrement id ref count ... No space left on device") and left its lock and temporary file behind. The size is
    that of the file it replaces (or 1.5 times that of the model's and its optimizer's variables), plus 1 MiB.
    """
    import errno
    import shutil

    try:
        need = path.stat().st_size
    except OSError:
        variables = list(getattr(model, "weights", [])) + list(getattr(getattr(model, "optimizer", None),
                                                                       "variables", None) or [])
        need = sum(int(np.prod(v.shape)) * np.dtype(getattr(v, "dtype", "float32")).itemsize for v in variables)
        need += need // 2  # HDF5's own records: a 568 kB model and optimizer took 709 kB
    try:
        usage = shutil.disk_usage(path.parent)
    except OSError:  # cannot tell: let the write say
        return
    if usage.total == 0:  # some FUSE / network mounts report no sizes at all (0 of 0 free): cannot tell either
        return
    free = usage.free
    if free < need + 2**20:
        raise OSError(errno.ENOSPC, f"No space left on device ({free:,} bytes free, the weights need about "
                                    f"{need:,})")


@contextlib.contextmanager
def _atomic_weights(model: Any):
    """Within the block, ``model.save_weights(path)`` writes a temporary file beside ``path``, then renames it."""
    save = model.save_weights

    def save_weights(filepath, *args, **kwargs):
        with atomic_path(filepath, suffix=".weights.h5") as tmp:  # Keras wants the suffix
            _check_room(Path(filepath), model)
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
