"""Training machinery: distribution strategy, precision, optimizer, callbacks.

The seeding, the optimizer and the compile for one ``fit`` (:func:`set_random_seed`, :func:`make_optimizer`,
:func:`compile_for_fit`) are in :mod:`geos2vec.model._fit_setup`, and importable from here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ._fit_setup import _optimizer_key as _optimizer_key  # re-exported: importable from here, as before the split
from ._fit_setup import compile_for_fit, make_optimizer, set_random_seed

if TYPE_CHECKING:
    from collections.abc import Iterable

    import keras
    import tensorflow as tf

    from .._typing import StrPath
    from .config import S2VecConfig

__all__ = ["set_random_seed", "resolve_strategy", "resolve_precision", "make_optimizer", "compile_for_fit",
           "resolve_run_eagerly", "check_verbose", "keras_outdated", "make_callbacks"]

#: Eager execution pays off up to this many optimizer steps in one ``fit`` call (``run_eagerly="auto"``).
#: Measured on a 2-core CPU with the paper-size model (benchmarks/RESULTS.md): tracing and optimizing the
#: train and test graphs cost ~9 s, an eager step ~1.6 s more than a graph step (batch 64).
EAGER_MAX_STEPS = 4


def resolve_strategy(strategy: tf.distribute.Strategy | str | None = None) -> tf.distribute.Strategy:
    """A ``tf.distribute.Strategy`` from ``None`` (the current/default one), a strategy, or a name.

    Names: ``"default"``, ``"mirrored"`` (all visible GPUs, else the CPU),
    ``"cpu"`` (a one-device strategy on the CPU).

    Parameters
    ----------
    strategy : tf.distribute.Strategy, str or None
        A strategy (returned as it is), one of the names above, or ``None`` (same as ``"default"``).

    Returns
    -------
    tf.distribute.Strategy

    Raises
    ------
    InvalidInputError
        (a ``ValueError``) An unknown name.
    InvalidTypeError
        (a ``TypeError``) Neither a strategy, a name nor ``None``.
    """
    import tensorflow as tf

    from ..errors import InvalidInputError, InvalidTypeError

    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy is not None and not isinstance(strategy, str):
        raise InvalidTypeError(f"strategy must be a tf.distribute.Strategy, 'default', 'mirrored', 'cpu' or None, "
                               f"got {type(strategy).__name__}")
    if strategy is None or strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([d.name for d in gpus] or ["/cpu:0"])
    if strategy == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    raise InvalidInputError(f"unknown strategy {strategy!r}: pass a tf.distribute.Strategy, 'default', 'mirrored' "
                            "or 'cpu'")


def strategy_uses_gpu(strategy) -> bool:
    try:
        devices = strategy.extended.worker_devices
    except Exception:  # pragma: no cover - exotic strategies
        devices = ()
    if any("GPU" in str(d).upper() for d in devices):
        return True
    import tensorflow as tf

    # the default strategy places ops on the first GPU when there is one
    return type(strategy).__name__ == "_DefaultDistributionStrategy" and bool(tf.config.list_logical_devices("GPU"))


def resolve_precision(config: S2VecConfig, strategy: tf.distribute.Strategy) -> str:
    """The Keras dtype policy name: ``"auto"`` -> bfloat16 mixed precision on GPUs, float32 on CPUs.

    Parameters
    ----------
    config : S2VecConfig
        Its ``mixed_precision`` field: a policy name, or ``"auto"``.
    strategy : tf.distribute.Strategy
        The training strategy; with ``"auto"``, whether it places work on a GPU decides.

    Returns
    -------
    str
        ``config.mixed_precision`` unless it is ``"auto"``; then ``"mixed_bfloat16"`` when the strategy
        uses a GPU, else ``"float32"``.
    """
    if config.mixed_precision != "auto":
        return config.mixed_precision
    return "mixed_bfloat16" if strategy_uses_gpu(strategy) else "float32"


def resolve_run_eagerly(run_eagerly: bool | Literal["auto"], total_steps: int,
                        strategy: tf.distribute.Strategy) -> bool:
    """Whether ``fit`` runs its steps eagerly: ``"auto"`` chooses eager for short CPU runs.

    Parameters
    ----------
    run_eagerly : bool or "auto"
        ``True``/``False`` are returned as they are. ``"auto"``: eager when the run has at most
        :data:`EAGER_MAX_STEPS` optimizer steps and the strategy has one replica and places no work on a GPU
        (there, tracing the train and test graphs costs more than the steps; on a GPU eager steps are slow).
        Two replicas or more always take graph mode: an eager fit under one ``MirroredStrategy`` and a traced
        one under another, in one process, clashed in TensorFlow's collective ops ("Shape mismatch in the
        collective instance 100").
    total_steps : int
        Optimizer steps of the run (``steps_per_epoch * epochs``).
    strategy : tf.distribute.Strategy
        The training strategy.

    Returns
    -------
    bool

    Raises
    ------
    InvalidInputError
        ``run_eagerly`` is not a bool or ``"auto"``.
    """
    from ..errors import InvalidInputError

    if isinstance(run_eagerly, bool):
        return run_eagerly
    if not (isinstance(run_eagerly, str) and run_eagerly == "auto"):
        raise InvalidInputError(f"run_eagerly must be True, False or 'auto', got {run_eagerly!r}")
    return (int(total_steps) <= EAGER_MAX_STEPS and strategy.num_replicas_in_sync == 1
            and not strategy_uses_gpu(strategy))


def check_verbose(verbose: Literal["auto", 0, 1, 2] | bool) -> Literal["auto", 0, 1, 2]:
    """``fit``'s ``verbose``, checked before Keras sees it (Keras took ``"x"``, 3 or ``None`` as they were).

    Parameters
    ----------
    verbose : "auto", 0, 1, 2 or bool
        Keras' progress output: ``"auto"`` (a bar on a terminal or in a notebook, else one line per epoch; 0 under
        ``set_options(progress=False)``), 0 (silent), 1 (bar), 2 (one line per epoch); ``False``/``True``: 0/1.

    Returns
    -------
    "auto", 0, 1 or 2

    Raises
    ------
    InvalidInputError
        Any other value.
    """
    import numbers

    from ..errors import InvalidInputError
    from ..options import progress

    if isinstance(verbose, str) and verbose == "auto":  # the progress option turns Keras' bar off too
        return "auto" if progress() else 0
    if isinstance(verbose, numbers.Integral) and int(verbose) in (0, 1, 2):  # bools and NumPy integers too
        return int(verbose)
    raise InvalidInputError(f"verbose must be 'auto', 0 (silent), 1 (progress bar) or 2 (one line per epoch), "
                            f"got {verbose!r}")


def _auto_verbose(verbose):
    """``fit``'s ``"auto"`` as Keras should take it: 1 (a bar) on a terminal or in a notebook, else 2.

    Keras 3 takes ``"auto"`` as 1 everywhere, and its bar redraws itself with backspaces and colour codes every
    50 ms whether standard output is a terminal or not (it counts any POSIX system as a dynamic display): a
    script's log file, a cron job's mail or a batch job's output got a screen of control characters per epoch
    instead of the one line per epoch the documentation promised. Other values (and ``"auto"`` under
    ``set_options(progress=False)``, which :func:`check_verbose` makes 0) are returned as given.
    """
    import sys

    from ..options import progress

    if not (isinstance(verbose, str) and verbose == "auto") or not progress():
        return verbose
    stdout = sys.stdout
    terminal = bool(getattr(stdout, "isatty", None) and stdout.isatty())
    return 1 if terminal or "ipykernel" in sys.modules else 2


#: settings of the Keras model that a new ``model.config`` changes by a rebuild with the same weights
_SETTINGS = ("dropout", "mask_ratio", "ignore_unobserved", "activity_weight", "nonempty_weight", "seed")


def keras_outdated(model: keras.Model, config: S2VecConfig, strategy: tf.distribute.Strategy | None,
                   current: tf.distribute.Strategy | None) -> bool:
    """Whether a built Keras model must be rebuilt (with its weights) for ``config`` and ``strategy``.

    ``S2VecModel.config`` may be replaced after the Keras model was built (``model.config =
    model.config.replace(mask_ratio=0.5)``, as for fine-tuning): the loss and masking settings then come from
    the new config, as do the dtype policy (``mixed_precision``) and the strategy's scope. Fields that shape the
    weights cannot change.

    Parameters
    ----------
    model : MaskedAutoencoder
        The built Keras model.
    config : S2VecConfig
        The configuration it should follow.
    strategy : tf.distribute.Strategy, optional
        The strategy of the coming work; ``None``: ``current`` (or the default strategy).
    current : tf.distribute.Strategy, optional
        The strategy ``model`` was built under (``None``: unknown, e.g. a loaded model).

    Returns
    -------
    bool
        True when a setting of ``_SETTINGS`` or the dtype policy differ, or ``strategy`` is given and is not
        ``current``.

    Raises
    ------
    InvalidInputError
        ``config`` differs from the weights in an architecture field (``embedding_dim``, ``encoder_layers``,
        ``decoder_dim``, ``decoder_layers``, ``num_heads``, ``mlp_ratio``) or in ``missing_token``.
    """
    from .config import architecture, check_architecture

    check_architecture(config, architecture(model))
    target = resolve_strategy(strategy if strategy is not None else current)
    return ((strategy is not None and target is not current)
            or any(getattr(model, f) != getattr(config, f) for f in _SETTINGS)
            or model.dtype_policy.name != resolve_precision(config, target))


def make_callbacks(config: S2VecConfig, *, has_validation: bool, checkpoint_dir: StrPath | None = None,
                   log_dir: StrPath | None = None, tensorboard: bool = False,
                   callbacks: Iterable[keras.callbacks.Callback] | None = None,
                   fingerprint: dict | None = None) -> list[keras.callbacks.Callback]:
    """Keras callbacks: early stopping, checkpoints + backup (resume), CSV / TensorBoard logs.

    Parameters
    ----------
    config : S2VecConfig
        ``early_stopping_patience``: ``EarlyStopping`` (restoring the best weights) unless ``None``.
    has_validation : bool
        Monitor ``val_loss`` (else ``loss``) for early stopping and the best checkpoint.
    checkpoint_dir : str or path-like, optional
        Created if needed; gets ``backup/`` (``BackupAndRestore``: an interrupted fit resumes),
        ``best.weights.h5`` and ``last.weights.h5``, each weights file replaced whole (never half-written).
    log_dir : str or path-like, optional
        Created if needed; gets ``training.csv`` (appended to; a resumed fit first drops the rows of the epochs it
        repeats) and, with ``tensorboard``, ``tensorboard/``.
    tensorboard : bool
        Add a ``TensorBoard`` callback (needs ``log_dir``).
    callbacks : list of keras.callbacks.Callback, optional
        The user's callbacks, placed first.
    fingerprint : dict, optional
        :func:`geos2vec.model.resume.run_fingerprint` of the fit: with ``checkpoint_dir``, a backup of another
        run is refused (:func:`~geos2vec.model.resume.guard_resume`), a resumed run's best checkpoint
        starts from the best loss recorded before the interruption (``best.json``), and the random generators'
        states and early stopping's counters are kept and restored (``state.json``,
        :class:`~geos2vec.model.resume.TrainingState`).

    Returns
    -------
    list of keras.callbacks.Callback

    Raises
    ------
    InvalidTypeError
        ``callbacks`` is not a list (or tuple) of Keras callbacks.
    InvalidInputError
        ``tensorboard=True`` without ``log_dir``; a callback that sets the learning rate (``LearningRateScheduler``,
        ``ReduceLROnPlateau``: the config's schedule sets it).
    ImportError
        ``tensorboard=True`` without the ``tensorboard`` package installed.
    """
    import keras

    from ..errors import InvalidInputError, InvalidTypeError

    # a bare callback (callbacks=cb) raised a bare TypeError; a list holding other things failed inside Keras
    if callbacks is not None and (not isinstance(callbacks, (list, tuple))
                                  or not all(isinstance(c, keras.callbacks.Callback) for c in callbacks)):
        seq = isinstance(callbacks, (list, tuple))
        got = [type(c).__name__ for c in callbacks] if seq else type(callbacks).__name__
        raise InvalidTypeError(f"callbacks must be a list of keras.callbacks.Callback (callbacks=[cb]), got {got}")
    # the optimizer follows a schedule: Keras raised a bare TypeError at the first change, epochs in
    setters = [type(c).__name__ for c in callbacks or () if isinstance(c, (keras.callbacks.LearningRateScheduler,
                                                                          keras.callbacks.ReduceLROnPlateau))]
    if setters:
        raise InvalidInputError(f"callbacks {setters} set the learning rate, which fit takes from the config's "
                                "cosine schedule (learning_rate, cosine_alpha, warmup_epochs): change those, or "
                                "compile model.keras_model with your own optimizer and fit it on "
                                "geos2vec.model.data.make_dataset(images, model.stats, ...)")
    out = list(callbacks or [])
    if tensorboard and log_dir is None:
        raise InvalidInputError("tensorboard=True writes its logs to log_dir / 'tensorboard': pass log_dir too")
    if tensorboard and not _tensorboard_installed():  # was a TBNotInstalledError after the first step
        raise ImportError("tensorboard=True needs the tensorboard package: pip install tensorboard")
    out.append(keras.callbacks.TerminateOnNaN())  # a diverged run stops at once (fit then raises)
    monitor = "val_loss" if has_validation else "loss"
    early = None
    if config.early_stopping_patience is not None:
        early = keras.callbacks.EarlyStopping(monitor=monitor, patience=config.early_stopping_patience,
                                              restore_best_weights=True)
        out.append(early)
    state = None
    start = 0
    if checkpoint_dir is not None:
        # Keras writes its checkpoints and backup in place: these replace each file whole (never half-written)
        from .resume import AtomicBackup, AtomicCheckpoint

        checkpoint_dir = Path(checkpoint_dir).expanduser()
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        best = None
        if fingerprint is not None:
            from .resume import BackupSeal, BestSoFar, TrainingState, best_so_far, guard_resume, resume_epoch

            if guard_resume(checkpoint_dir, fingerprint):
                best, start = best_so_far(checkpoint_dir), resume_epoch(checkpoint_dir)
        # the best checkpoint before best.json: a kill between the two leaves best.json behind the file, so the
        # repeated epoch writes the file again (the other way round, the file would keep an older epoch)
        out.append(AtomicCheckpoint(str(checkpoint_dir / "best.weights.h5"), monitor=monitor,
                                    save_best_only=True, save_weights_only=True, initial_value_threshold=best))
        if fingerprint is not None:
            out.append(BestSoFar(checkpoint_dir, monitor, best))
            state = TrainingState(checkpoint_dir, start, early)
        out.append(AtomicCheckpoint(str(checkpoint_dir / "last.weights.h5"), save_weights_only=True))
    if log_dir is not None:
        log_dir = Path(log_dir).expanduser()
        log_dir.mkdir(parents=True, exist_ok=True)
        if start:  # a resumed fit: the rows of epochs it repeats go (a kill before the backup left them)
            _trim_log(log_dir / "training.csv", start)
        out.append(keras.callbacks.CSVLogger(str(log_dir / "training.csv"), append=True))
        if tensorboard:
            out.append(keras.callbacks.TensorBoard(str(log_dir / "tensorboard")))
    if checkpoint_dir is not None:
        # last at an epoch's end: the record of the epoch, then Keras' backup (an interrupted fit resumes at the
        # epoch where it stopped); a fit killed before the backup's write repeats that epoch with the same draws.
        # At the start, TrainingState reads the best weights before the backup is loaded.
        if state is not None:
            out.append(state)
        out.append(AtomicBackup(str(checkpoint_dir / "backup")))
        if fingerprint is not None:
            out.append(BackupSeal(checkpoint_dir / "backup"))  # weights rewritten after the metadata are caught
    return out


def _trim_log(path: Path, start: int) -> None:
    """Drop the last rows of ``training.csv`` from epoch ``start`` on (or cut short): each epoch gets one row."""
    import csv
    import io

    from .._jsonfile import atomic_path

    if not path.is_file():
        return
    rows = list(csv.reader(io.StringIO(path.read_text(errors="replace"))))
    if not rows or not rows[0] or rows[0][0] != "epoch":
        return  # not a log of CSVLogger: left as it is
    end = len(rows)  # only the last rows, of this run: a log that earlier fits appended to keeps theirs
    while end > 1 and not (len(rows[end - 1]) == len(rows[0]) and rows[end - 1][0].isdigit()
                           and int(rows[end - 1][0]) < start):
        end -= 1
    if end == len(rows):
        return
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(rows[:end])


def _tensorboard_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def steps_for(n_images: int, batch_size: int) -> int:
    return max(math.ceil(n_images / batch_size), 1)
