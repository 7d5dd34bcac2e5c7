"""The body of :meth:`S2VecModel.fit <geos2vec.model.S2VecModel.fit>`: split, datasets, compile, Keras' fit.

The seeding, optimizer and compile are in :mod:`geos2vec.model._fit_setup` (through :mod:`geos2vec.model.train`),
the callbacks in :mod:`geos2vec.model.train`, resuming from a checkpoint folder in :mod:`geos2vec.model.resume`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._fork import check_tf_usable
from ..errors import InvalidInputError
from .data import as_images, check_levels, make_dataset, match_channels, scorable_images, split_images


def fit_model(model, data, *, validation_data, strategy, epochs, callbacks, checkpoint_dir, log_dir, tensorboard,
              verbose, run_eagerly):
    """Train ``model`` (an ``S2VecModel``) on ``data``; the arguments and result of :meth:`S2VecModel.fit`."""
    from .train import check_verbose, compile_for_fit, make_callbacks, resolve_run_eagerly, resolve_strategy
    from .train import set_random_seed, steps_for

    check_tf_usable("S2VecModel.fit")  # a process forked after TensorFlow ran would hang in it
    cfg = model.config
    # "~/runs/x" is the home folder's (a folder named "~" in the working directory before)
    checkpoint_dir, log_dir = (None if d is None else Path(d).expanduser() for d in (checkpoint_dir, log_dir))
    epochs = cfg.epochs if epochs is None else cfg.replace(epochs=epochs).epochs  # checked: 1.5 was cut to 1
    verbose, da = check_verbose(verbose), as_images(data)  # verbose="x" reached Keras unchecked
    set_random_seed(cfg.seed)  # keras.utils.set_random_seed, keeping TensorFlow's kernel cache when it can
    if validation_data is None:
        train_idx, val_idx = split_images(da.sizes["image"], cfg.validation_split, cfg.seed)
        val_da = da if len(val_idx) else None
    else:
        train_idx, val_idx = np.arange(da.sizes["image"]), None
        val_da = as_images(validation_data, "validation_data")
    # a built model's levels, as embed and evaluate check them: it trained on level-14 cells without a word
    for images in (da, val_da):
        if images is not None:
            check_levels(images, model)
    strategy = resolve_strategy(strategy)
    model.ensure_keras(strategy)  # variables must live under the strategy's scope (a rebuild with the weights)
    if model.keras_model is None:
        model.build(da.isel(image=train_idx), strategy=strategy)
        if val_da is not None:  # validation images of another level than the training images'
            check_levels(val_da, model)
    else:
        da = match_channels(da, model.channels)
        if val_da is not None:
            val_da = match_channels(val_da, model.channels)
    km = model.keras_model
    # images with no pixel the loss counts would each add a zero to Keras' per-image mean of the loss
    train_idx = scorable_images(da, train_idx, cfg.ignore_unobserved)
    if val_da is not None:
        val_idx = scorable_images(val_da, np.arange(val_da.sizes["image"]) if val_idx is None else val_idx,
                                  cfg.ignore_unobserved)
        val_da = val_da if len(val_idx) else None
    if not len(train_idx):
        raise InvalidInputError("no training image has a pixel to learn from (every pixel is outside the "
                                "coverage" + (", or no cell is observed" if cfg.ignore_unobserved else "")
                                + "); check the images' covered/observed coordinates")
    replicas = strategy.num_replicas_in_sync
    batch = cfg.batch_size
    train_ds = make_dataset(da, model.stats, train_idx, batch_size=batch, shuffle_buffer=cfg.shuffle_buffer,
                            seed=cfg.seed)
    val_ds = None if val_da is None else make_dataset(val_da, model.stats, val_idx, batch_size=batch)
    steps = steps_for(len(train_idx), batch)
    eager = resolve_run_eagerly(run_eagerly, steps * epochs, strategy)
    compile_for_fit(km, cfg, steps, epochs, strategy, run_eagerly=eager)
    from .lock import checkpoint_lock
    from .resume import run_fingerprint

    with checkpoint_lock(checkpoint_dir):  # two fits writing one folder would mix their checkpoints
        cbs = make_callbacks(cfg, has_validation=val_ds is not None, checkpoint_dir=checkpoint_dir,
                             log_dir=log_dir, tensorboard=tensorboard, callbacks=callbacks,
                             fingerprint=None if checkpoint_dir is None else run_fingerprint(model, da, train_idx))
        if checkpoint_dir is not None:  # a resumed fit: the shuffle of its epoch; no epoch after a stop
            from .resume import resume_epoch, skip_epochs, stopped_at

            start = resume_epoch(checkpoint_dir)
            if cfg.shuffle_buffer > 1:
                skip_epochs(train_ds, start)
            if stopped_at(checkpoint_dir, start):  # killed after early stopping's last epoch: only the ending
                epochs = start
        km._initial_epoch = None  # a resumed fit's BackupAndRestore left its epoch: the next fit skipped epochs
        # one iterator over the repeated pipeline (epoch e is its e-th pass): given a finite dataset, Keras made
        # two iterators per epoch, so the shuffle order of an epoch depended on Keras' internals
        model.history = km.fit(train_ds.repeat(), steps_per_epoch=steps, validation_data=val_ds, epochs=epochs,
                               callbacks=cbs, verbose=verbose, shuffle=False)  # the pipeline shuffles
    losses = np.asarray(model.history.history.get("loss", []), dtype=float)
    if losses.size and not np.isfinite(losses).all():
        raise InvalidInputError(f"training diverged: the loss became {losses[~np.isfinite(losses)][0]} in epoch "
                                f"{int(np.flatnonzero(~np.isfinite(losses))[0]) + 1}, so the weights are not "
                                "usable; lower config.learning_rate (or check the images for extreme values)")
    # the number of replicas is metadata, not a per-epoch series: pd.DataFrame(history.history) must work
    model.history.params = {**(getattr(model.history, "params", None) or {}), "replicas": replicas}
    return model.history
