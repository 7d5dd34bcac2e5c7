"""``S2VecModel``: configure, train (any ``tf.distribute`` strategy), embed, save and load.

The methods' long bodies are functions of their own modules: ``fit`` in :mod:`geos2vec.model._fit_run`,
``evaluate`` in :mod:`geos2vec.model._evaluate_run`, ``embed`` in :mod:`geos2vec.model.embed`, ``save`` and
``load`` in :mod:`geos2vec.model.io`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from .._fork import check_tf_usable, tf_forked
from .._optional import needs, require
from ..errors import InvalidTypeError
from .config import S2VecConfig
from .data import check_images, image_levels, match_channels
from .io import read_model, save_model
from .data import as_images as as_images, make_dataset as make_dataset  # importable here before the split
from .data import split_images as split_images

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import keras
    import pandas as pd
    import tensorflow as tf
    import xarray as xr

    from .._typing import StrPath
    from ..normalize import FeatureStats
    from .mae import MaskedAutoencoder

__all__ = ["S2VecModel"]


class S2VecModel:
    """The S2Vec masked autoencoder with its normalization and metadata.

    Parameters
    ----------
    config : S2VecConfig, optional
        Hyper-parameters (default: the paper's Table 1).
    **overrides
        Fields of the config to change, e.g. ``S2VecModel(epochs=5)``.

    Examples
    --------
    >>> model = S2VecModel(encoder_layers=2, embedding_dim=32, epochs=3)  # doctest: +SKIP
    >>> model.fit(images)                      # images: geos2vec.raster.rasterize(features)  # doctest: +SKIP
    >>> emb = model.embed(images)              # DataArray (cell, dim)  # doctest: +SKIP
    >>> model.save("my_model.zip"); S2VecModel.load("my_model.zip")  # doctest: +SKIP
    """

    def __init__(self, config: S2VecConfig | None = None, **overrides: Any) -> None:
        config = S2VecConfig() if config is None else config
        if not isinstance(config, S2VecConfig):
            raise InvalidTypeError(f"config must be an S2VecConfig, got {type(config).__name__}; pass single fields "
                                   "as keywords: S2VecModel(epochs=5)")
        self.config = config.replace(**overrides) if overrides else config
        self.keras_model = None
        self.source = None  # where it was loaded from ("default" or a path); None: built in this session
        self.stats = None
        self.channels: list[str] | None = None
        self.grid: tuple[int, int] | None = None
        self.image_level: int | None = None
        self.patch_level: int | None = None
        self.history = None
        self._strategy = None
        # weights of a model loaded from the compact (NumPy) format; the Keras model is built from them
        # only when needed (fit, evaluate, save), so embedding never imports TensorFlow
        self.numpy_weights: dict | None = None

    # ------------------------------------------------------------------ properties
    @property
    def embedding_dim(self) -> int:
        """Length of the embedding vectors."""
        return self.config.embedding_dim

    @property
    def built(self) -> bool:
        """Whether the model has weights (trained or loaded)."""
        return self.keras_model is not None or self.numpy_weights is not None

    def count_params(self) -> int:
        """Number of weights of the masked autoencoder.

        Returns
        -------
        int
            The Keras model's parameter count, or for a model loaded in compact form the size of its NumPy
            weights; 0 for an unbuilt model.
        """
        if self.keras_model is None and self.numpy_weights is not None:
            return int(sum(v.size for k, v in self.numpy_weights.items() if k != "encoder_layers"))
        return 0 if self.keras_model is None else int(self.keras_model.count_params())

    @needs("keras", "tensorflow")
    def ensure_keras(self, strategy: tf.distribute.Strategy | str | None = None) -> MaskedAutoencoder | None:
        """The Keras model, built from NumPy weights first if the model was loaded in compact form.

        Parameters
        ----------
        strategy : tf.distribute.Strategy or str, optional
            The strategy under which a Keras model built here is created (see :meth:`fit`); default: the
            current one.

        Returns
        -------
        MaskedAutoencoder or None
            ``self.keras_model``; ``None`` for a model that is neither built nor loaded. A Keras model built
            under another strategy or before ``self.config`` was replaced is rebuilt with its weights
            (:func:`~geos2vec.model.train.keras_outdated`; architecture changes raise ``InvalidInputError``).
        """
        from .train import keras_outdated

        if self.keras_model is None and self.numpy_weights is not None:
            from .numpy_encoder import weights_to_keras

            km = self._build_keras(strategy)
            weights_to_keras(self.numpy_weights, km)
        elif self.keras_model is not None and keras_outdated(self.keras_model, self.config, strategy, self._strategy):
            self._build_keras(self._strategy if strategy is None else strategy, weights=self.keras_model.get_weights())
        return self.keras_model

    def __getstate__(self) -> dict:
        """The state ``pickle`` and ``copy.deepcopy`` carry: the Keras model as its weights, not the object.

        A Keras model (its weak references, its ``tf.distribute`` strategy) cannot be pickled: a model built or
        trained in this session raised ``TypeError: cannot pickle 'weakref.ReferenceType' object`` in
        ``multiprocessing``, joblib and dask's process schedulers. The weights travel as arrays and the Keras model
        is rebuilt from them on unpickling (under the default strategy; the optimizer's state is not kept).
        """
        state = dict(self.__dict__)
        km = state.pop("keras_model", None)
        state.update(keras_model=None, _strategy=None)
        if km is not None:
            from .numpy_encoder import weights_from_keras

            state["_keras_weights"] = weights_from_keras(km)  # every weight, by name (float32)
        hist = state.get("history")
        if hist is not None and getattr(hist, "model", None) is not None:  # a keras History holds the Keras model
            light = type(hist)()
            light.history, light.params = dict(hist.history), dict(hist.params or {})
            light.epoch = list(getattr(hist, "epoch", []))
            state["history"] = light
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        weights = state.pop("_keras_weights", None)
        self.__dict__.update(state)
        if weights is None:
            return
        if tf_forked():  # a worker forked after TensorFlow ran, where it would hang: a compact model's NumPy weights
            from .config import architecture

            self.numpy_weights, self.weights_architecture = weights, architecture(self.config)
            return
        require("keras", "tensorflow", what="unpickling an S2VecModel with a Keras model (save it with "
                "compact=True and load that to embed without TensorFlow)")
        from .numpy_encoder import weights_to_keras

        weights_to_keras(weights, self._build_keras(None))

    def __copy__(self) -> "S2VecModel":  # a shallow copy shares the Keras model, as before __getstate__
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __repr__(self):
        state = "unbuilt" if not self.built else (  # a compact (NumPy) model is built too
            f"{len(self.channels)} channels, {self.grid[0]}x{self.grid[1]} images, {self.count_params():,} params")
        return f"S2VecModel({state}, embedding_dim={self.embedding_dim})"

    # ------------------------------------------------------------------ building
    @needs("keras", "tensorflow")
    def build(self, data: xr.DataArray, stats: FeatureStats | None = None,
              strategy: tf.distribute.Strategy | str | None = None) -> "S2VecModel":
        """Create the Keras model for the shape and channels of ``data`` (an image DataArray).

        ``stats`` (a :class:`~geos2vec.normalize.FeatureStats`) defaults to
        statistics fitted on the observed pixels of ``data``.

        Parameters
        ----------
        data : xarray.DataArray
            Images (:func:`geos2vec.raster.rasterize`); they fix the grid, the channels and the levels.
        stats : FeatureStats, optional
            The normalization; its channels become the model's (``data`` must have them). Default: fitted on
            ``data`` (``log1p`` with ``config.log_counts``).
        strategy : tf.distribute.Strategy or str, optional
            The strategy under which the Keras model is created (see :meth:`fit`).

        Returns
        -------
        S2VecModel
            ``self``, with new random weights.

        Raises
        ------
        TypeError
            ``stats`` is not a ``FeatureStats``, or ``data`` is not a valid image DataArray.
        ValueError
            Invalid images, or images lacking channels of ``stats``.
        """
        from geos2vec.normalize import FeatureStats

        check_tf_usable("S2VecModel.build")
        da = check_images(data)
        channels = [str(c) for c in da["feature"].values]
        if stats is None:
            stats = FeatureStats.fit(da, log1p=self.config.log_counts)
        else:
            if not isinstance(stats, FeatureStats):
                raise InvalidTypeError(f"stats must be a FeatureStats, got {type(stats).__name__}")
            da = match_channels(da, stats.channels)
            channels = list(stats.channels)
        self.stats, self.channels = stats, channels
        self.grid = (int(da.sizes["row"]), int(da.sizes["col"]))
        self.image_level, self.patch_level = image_levels(da)
        self._build_keras(strategy)
        return self

    def _build_keras(self, strategy=None, weights=None):
        from .distribute import strategy_scope
        from .mae import build_mae
        from .train import resolve_precision, resolve_strategy

        strategy = resolve_strategy(strategy)
        policy = resolve_precision(self.config, strategy)
        with strategy_scope(strategy):
            km = build_mae(self.config, self.grid[0] * self.grid[1], len(self.channels), dtype=policy)
            if weights is not None:
                km.set_weights(weights)
        self.keras_model, self._strategy = km, strategy
        return km

    # ------------------------------------------------------------------ training
    @needs("keras", "tensorflow")
    def fit(self, data: xr.DataArray | StrPath, *, validation_data: xr.DataArray | None = None,
            strategy: tf.distribute.Strategy | str | None = None, epochs: int | None = None,
            callbacks: Sequence[keras.callbacks.Callback] | None = None, checkpoint_dir: StrPath | None = None,
            log_dir: StrPath | None = None, tensorboard: bool = False, verbose: Literal["auto", 0, 1, 2] = "auto",
            run_eagerly: bool | Literal["auto"] = "auto") -> keras.callbacks.History:
        """Train on an image DataArray (or zarr store path).

        Parameters
        ----------
        data : xarray.DataArray or path
            Images from :func:`geos2vec.raster.rasterize` (in memory or lazy).
        validation_data : xarray.DataArray or path, optional
            Held-out images (as ``data``); default: ``config.validation_split`` of ``data``
            (a seeded split by image). Images with no pixel the loss counts (none covered, or with
            ``ignore_unobserved`` none observed) are left out of training and validation: each would add a
            zero to the per-image mean of ``loss`` / ``val_loss``.
        strategy : tf.distribute.Strategy or str, optional
            Default: the current (default) strategy; ``"mirrored"`` for all GPUs.
        epochs : int, optional
            Overrides ``config.epochs``.
        callbacks : list of keras.callbacks.Callback, optional
            Run before the ones ``fit`` adds (early stopping, checkpoints, logs). Callbacks that set the learning
            rate (``LearningRateScheduler``, ``ReduceLROnPlateau``) raise: it follows the config's schedule.
        checkpoint_dir : path, optional
            Best/last weights each epoch, and a backup from which an interrupted ``fit`` with the same arguments
            resumes (another run's, with other settings or data, is refused: :mod:`geos2vec.model.resume`).
        log_dir : path, optional
            ``training.csv`` (and TensorBoard logs with ``tensorboard=True``).
        tensorboard : bool
            Also write TensorBoard logs to ``log_dir / "tensorboard"`` (needs ``log_dir``: raises without it).
        verbose : "auto", 0, 1 or 2
            Keras' progress output (``"auto"``: a bar on a terminal or in a notebook, one line per epoch
            elsewhere (a log file, a cron job), 0 under ``set_options(progress=False)``; 0: silent, 1: bar, 2: one
            line per epoch; other values raise).
        run_eagerly : bool or "auto"
            Keras' ``run_eagerly``. ``"auto"`` (default): eager for runs of at most
            :data:`geos2vec.model.train.EAGER_MAX_STEPS` optimizer steps on one CPU replica, where tracing
            the graphs costs more than it saves; graph mode otherwise. A second ``fit`` of the same model with the
            same settings reuses the traced graphs (see :func:`geos2vec.model.train.compile_for_fit`).

        Returns
        -------
        keras.callbacks.History
            Also kept as ``self.history``; ``history.params["replicas"]`` is the number of replicas.

        Raises
        ------
        InvalidInputError
            ``epochs`` that is not a positive integer, ``verbose`` not one of the four, ``tensorboard=True`` without
            ``log_dir``, ``model.config`` changed in an architecture field after the build, a callback that sets
            the learning rate, no training image with a pixel to learn from, a ``checkpoint_dir`` another fit is
            using (:mod:`geos2vec.model.lock`), or a run whose loss became NaN or infinite (training stops at that
            batch; the weights are not usable).
            (:class:`~geos2vec.errors.InvalidTypeError`: ``data`` of a type that is neither images nor a path.)
        """
        from ._fit_run import fit_model
        from .train import _auto_verbose

        return fit_model(self, data, validation_data=validation_data, strategy=strategy, epochs=epochs,
                         callbacks=callbacks, checkpoint_dir=checkpoint_dir, log_dir=log_dir, tensorboard=tensorboard,
                         verbose=_auto_verbose(verbose), run_eagerly=run_eagerly)

    @needs("keras", "tensorflow")
    def evaluate(self, data: xr.DataArray, *, seed: int | None = 0, n_masks: int = 20, batch_size: int | None = None,
                 baseline: bool | None = None, stats: FeatureStats | None = None,
                 by: str | tuple[str, str] = "predictor", progress: bool | None = None
                 ) -> pd.DataFrame | float | tuple[float, float] | tuple[pd.DataFrame, pd.DataFrame]:
        """Masked-patch reconstruction loss on ``data``, next to parameter-free predictors (normalized units).

        Every image is evaluated under ``n_masks`` masks (the model's ``mask_ratio``); mask ``k`` comes from
        ``numpy.random.default_rng([seed, k])``, so the masks are the same on every call, for every predictor
        and whatever ``batch_size`` (dropout is off). Predictors of a masked patch (see
        :mod:`geos2vec.model.reconstruction`): ``model`` (the reconstruction), ``zero`` (the training mean),
        ``empty`` (the normalized value of a cell with zero counts), ``visible_mean`` (the mean of the
        image's visible covered patches) and ``local_mean`` (visible covered patches of the 5 x 5
        neighbourhood, shrunk toward ``visible_mean``).

        Parameters
        ----------
        data : xarray.DataArray or path
            Images (as for :meth:`fit`).
        seed : int or None
            Seed of the masks; ``None`` draws a fresh one (kept in ``result.attrs["seed"]``).
        n_masks : int
            Masks per image; the losses are pooled over all of them.
        batch_size : int, optional
            Images per forward pass (default ``config.batch_size``); several masks of a small batch share one
            pass.
        baseline : bool, optional
            Legacy interface: return the model's loss as a float, or with ``True`` the tuple
            ``(model loss, zero-predictor loss)``, on the loss the model trains on (observed masked patches
            with ``ignore_unobserved``, else the covered ones: all masked patches when the images carry no
            coverage).
        stats : FeatureStats, optional
            Score in the normalized units of these statistics instead of the model's own (the same channels
            and ``log1p``): the model's reconstruction and the images are mapped into them (an affine map per
            channel), and the predictors are computed there. Use it to compare models normalized differently
            on one scale, e.g. one whose statistics counted unavailable values as zeros against statistics
            that leave them out (:meth:`FeatureStats.fit`).
        by : {"predictor", "channel", ("predictor", "channel")}
            ``"channel"``: instead of the table below, one row per channel with each predictor's loss on its
            masked, covered, available values (:meth:`~geos2vec.model.reconstruction.LossAccumulator.channel_table`:
            ``values``, ``loss_<predictor>``, ``ratio_to_visible_mean``, ``share`` of the model's
            ``loss_covered``): which channels the model predicts better than the image's mean, and which carry
            the loss. ``("predictor", "channel")``: both tables from one pass, as a tuple.
        progress : bool, optional
            A progress bar over the images (every image is encoded ``n_masks`` times: minutes on a state's
            images); default: the ``progress`` option, :func:`geos2vec.set_options`.

        Returns
        -------
        pandas.DataFrame
            Index ``predictor`` (``model``, ``zero``, ``empty``, ``visible_mean``, ``local_mean``); columns
            ``loss_observed`` (masked patches that are observed cells), ``loss_all`` (all masked patches),
            ``loss_covered`` (masked patches the source covers, and of them only the channels the source has
            when the images carry an ``available`` coordinate; ``loss_all`` when the images carry no coverage),
            their standard deviations across masks (``*_sd``) and ``ratio_{observed,all,covered}_to_visible_mean``.
            ``attrs``: ``seed``, ``n_masks``, ``n_images``, ``mask_ratio`` and the masked patches per mask
            (``masked_observed_per_mask``: with per-channel availability, the available values / channels;
            ``masked_per_mask``) and ``stats`` (``"model"`` or ``"given"``). With ``baseline`` given: a float, or
            the tuple of two floats, instead.

        Raises
        ------
        ValueError
            ``n_masks``, ``seed`` or ``batch_size`` not an integer in range, an unbuilt model, images whose
            channels do not match the model's, ``stats`` of other channels or another ``log1p``, or ``by`` not one
            of the two, or given with ``baseline``.
        """
        from ..options import check_progress
        from ._evaluate_run import evaluate_model

        check_progress(progress)  # before the images are prepared, not when the image loop starts
        return evaluate_model(self, data, seed=seed, n_masks=n_masks, batch_size=batch_size, baseline=baseline,
                              stats=stats, by=by, progress=progress)

    # ------------------------------------------------------------------ embedding
    def embed(self, data: xr.DataArray | pd.DataFrame, mode: str = "contextual",
              **kwargs: Any) -> xr.DataArray | pd.DataFrame:
        """Embeddings of cells (or images); see :func:`geos2vec.model.embed.embed` for the options.

        Parameters
        ----------
        data : xarray.DataArray or pandas.DataFrame
            Images, or (``mode="patch"``) a cell-indexed feature table.
        mode : {"contextual", "tiled", "patch", "image"}
            How the vectors are made.
        **kwargs
            ``batch_size``, ``cells``, ``context``, ``block``, ``as_frame``, ``verbose`` of
            :func:`~geos2vec.model.embed.embed`; ``verbose`` also as ``progress``, the name ``evaluate`` and
            :func:`geos2vec.embed` give the progress bar (it was a TypeError "unexpected keyword argument").

        Returns
        -------
        xarray.DataArray or pandas.DataFrame
            Dims ``("cell", "dim")`` (a DataFrame with ``as_frame=True``).
        """
        from .embed import embed

        if "progress" in kwargs:
            if "verbose" in kwargs:
                raise InvalidTypeError("embed() takes progress= or its older name verbose=, not both")
            kwargs["verbose"] = kwargs.pop("progress")
        return embed(self, data, mode, **kwargs)

    # ------------------------------------------------------------------ persistence
    def save(self, path: StrPath, compact: bool = False) -> Path:
        """Save to a directory or a ``.zip`` (see :func:`geos2vec.model.io.save_model`).

        ``compact=True`` writes float16 NumPy weights instead of a ``.keras`` file (loads without
        TensorFlow; the bundled model's format).

        Parameters
        ----------
        path : str or path-like
            A directory, or a file name ending in ``.zip``.
        compact : bool
            Write ``weights.npz`` instead of ``model.keras``.

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        ValueError
            The model is not built.
        """
        return save_model(self, path, compact=compact)  # builds the Keras model first where it needs one

    @classmethod
    def load(cls, path: StrPath, channels: Sequence[str] | None = None) -> "S2VecModel":
        """Load a model saved with :meth:`save` (a directory, a ``.zip``, or ``"default"``).

        Parameters
        ----------
        path : str or path-like
            Where the model was saved; ``"default"`` is the model bundled with geos2vec.
        channels : list of str, optional
            The channels the data will have; a mismatch raises ``ValueError`` naming the differences.

        Returns
        -------
        S2VecModel
        """
        return read_model(path, cls, channels)
