"""Training machinery: distribution strategy, precision, optimizer, callbacks."""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["resolve_strategy", "resolve_precision", "make_optimizer", "make_callbacks"]


def resolve_strategy(strategy=None):
    """A ``tf.distribute.Strategy`` from ``None`` (the current/default one), a strategy, or a name.

    Names: ``"default"``, ``"mirrored"`` (all visible GPUs, else the CPU),
    ``"cpu"`` (a one-device strategy on the CPU).
    """
    import tensorflow as tf

    if strategy is None or strategy == "default":
        return tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([d.name for d in gpus] or ["/cpu:0"])
    if strategy == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    raise ValueError(f"unknown strategy {strategy!r}: pass a tf.distribute.Strategy, 'default', 'mirrored' or 'cpu'")


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


def resolve_precision(config, strategy) -> str:
    """The Keras dtype policy name: ``"auto"`` -> bfloat16 mixed precision on GPUs, float32 on CPUs."""
    if config.mixed_precision != "auto":
        return config.mixed_precision
    return "mixed_bfloat16" if strategy_uses_gpu(strategy) else "float32"


def make_optimizer(config, steps_per_epoch: int, epochs: int):
    """AdamW (weight decay, clip-norm) with a cosine-decayed learning rate (optional linear warm-up)."""
    import keras

    total = max(int(steps_per_epoch) * int(epochs), 1)
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if warmup > 0:
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(total - warmup, 1), alpha=config.cosine_alpha,
            warmup_target=config.learning_rate, warmup_steps=warmup)
    else:
        lr = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=total,
                                                    alpha=config.cosine_alpha)
    return keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay, clipnorm=config.clipnorm)


def make_callbacks(config, *, has_validation: bool, checkpoint_dir=None, log_dir=None, tensorboard: bool = False,
                   callbacks=None):
    """Keras callbacks: early stopping, checkpoints + backup (resume), CSV / TensorBoard logs."""
    import keras

    out = list(callbacks or [])
    monitor = "val_loss" if has_validation else "loss"
    if config.early_stopping_patience is not None:
        out.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=config.early_stopping_patience,
                                                 restore_best_weights=True))
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        # BackupAndRestore makes an interrupted fit resume at the epoch where it stopped
        out.append(keras.callbacks.BackupAndRestore(str(checkpoint_dir / "backup")))
        out.append(keras.callbacks.ModelCheckpoint(str(checkpoint_dir / "best.weights.h5"), monitor=monitor,
                                                   save_best_only=True, save_weights_only=True))
        out.append(keras.callbacks.ModelCheckpoint(str(checkpoint_dir / "last.weights.h5"),
                                                   save_weights_only=True))
    if log_dir is not None:
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        out.append(keras.callbacks.CSVLogger(str(log_dir / "training.csv"), append=True))
        if tensorboard:
            out.append(keras.callbacks.TensorBoard(str(log_dir / "tensorboard")))
    return out


def steps_for(n_images: int, batch_size: int) -> int:
    return max(math.ceil(n_images / batch_size), 1)
