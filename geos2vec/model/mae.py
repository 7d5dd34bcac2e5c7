"""The S2Vec masked autoencoder as a Keras 3 model (any Keras 3 backend: TensorFlow, JAX, PyTorch).

MAE (He et al., 2022) over images whose pixels are cells: every patch (one
cell's normalized feature vector) is linearly projected, a learned position
embedding is added, a random ``1 - mask_ratio`` share of the patches is kept
(a new draw every time an image is seen), the encoder sees only the kept
patches, and the decoder gets the encoded patches plus mask tokens and
reconstructs the feature vectors. The loss is the mean squared error over the
masked patches only (optionally only the observed ones).

Backend-neutral: the forward pass uses ``keras.ops`` only, and training goes through Keras' own trainer of
the active backend (:meth:`MaskedAutoencoder.compute_loss`; the backend's trainer takes the gradients and the
optimizer step). This module and :mod:`.layers` import only ``keras`` (TensorFlow only inside a function,
when it is the backend), so they load where TensorFlow and the rest of ``geos2vec``'s dependencies are
missing (see "Backends" in ``docs/model.md``).

The loss functions (:func:`masked_mse`, :func:`activity_mse`, :func:`per_replica_loss`) are in
:mod:`geos2vec.model._mae_losses` (which imports only ``keras`` too), and importable from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import layers, ops

from ._mae_losses import _keras_logs_returned_loss as _keras_logs_returned_loss  # importable here, as before
from ._mae_losses import activity_mse, masked_mse, per_replica_loss
from .layers import PositionEmbedding, RandomMasking, TransformerBlock, gather_tokens, sincos_2d

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .config import S2VecConfig

__all__ = ["MaskedAutoencoder", "build_mae", "masked_mse", "masks_from_noise", "per_replica_loss"]


def masks_from_noise(noise: Any, num_keep: int) -> tuple[Any, Any, Any]:
    """``(ids_keep, ids_restore, mask)`` of MAE masking from ``(batch, length)`` noise.

    The computation of :class:`~geos2vec.model.layers.RandomMasking` after its draw: the ``num_keep`` patches
    with the lowest noise are kept (``ids_keep``, in ascending-noise order), ``ids_restore`` undoes the shuffle
    after ``concat([kept, masked])``, and ``mask`` is float32, 1 where a patch is masked.

    Parameters
    ----------
    noise : tensor, shape (batch, length)
        One value per patch; give distinct values per row so that the argsort has no ties.
    num_keep : int
        Patches kept per row.

    Returns
    -------
    ids_keep : tensor of int, shape (batch, num_keep)
        Positions of the kept patches, lowest noise first.
    ids_restore : tensor of int, shape (batch, length)
        Rank of each patch's noise in its row: its position in ``concat([kept, masked])``.
    mask : tensor of float32, shape (batch, length)
        1 where a patch is masked (``ids_restore >= num_keep``), 0 where it is kept.
    """
    ids_shuffle = ops.argsort(noise, axis=1)
    ids_restore = ops.argsort(ids_shuffle, axis=1)
    ids_keep = ids_shuffle[:, :num_keep]
    mask = ops.cast(ids_restore >= num_keep, "float32")
    return ids_keep, ids_restore, mask


@keras.saving.register_keras_serializable(package="geos2vec")
class MaskedAutoencoder(keras.Model):
    """ViT masked autoencoder over sequences of ``num_patches`` feature vectors.

    ``call(x)`` (``x``: ``(batch, num_patches, num_features)`` normalized
    features) masks, encodes, decodes and returns ``{"pred", "mask"}``;
    :meth:`reconstruct` is the same pass with masks given from outside (noise);
    :meth:`encode` runs the encoder on the full, unmasked sequence (the
    contextual embeddings). Training data are dicts ``{"x": ..., "w": ...}``
    where ``w`` is the observed-pixel weight (used when ``ignore_unobserved``): a ``tf.data`` dataset of
    such dicts, or NumPy arrays, ``fit({"x": X, "w": W}, batch_size=...)``, on any backend. The loss is
    :meth:`compute_loss`; compile with an optimizer only (no ``loss``).
    """

    def __init__(self, num_patches: int, num_features: int, embedding_dim: int = 256, encoder_layers: int = 6,
                 decoder_dim: int = 128, decoder_layers: int = 2, num_heads: int = 8, mlp_ratio: float = 4.0,
                 dropout: float = 0.2, mask_ratio: float = 0.75, ignore_unobserved: bool = False,
                 seed: int | None = None, missing_token: bool = False, activity_weight: float = 0.0,
                 position_init: str = "normal", nonempty_weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_patches, self.num_features = int(num_patches), int(num_features)
        self.embedding_dim, self.encoder_layers = int(embedding_dim), int(encoder_layers)
        self.decoder_dim, self.decoder_layers = int(decoder_dim), int(decoder_layers)
        self.num_heads, self.mlp_ratio, self.dropout = int(num_heads), float(mlp_ratio), float(dropout)
        self.mask_ratio, self.ignore_unobserved, self.seed = float(mask_ratio), bool(ignore_unobserved), seed
        self.missing_token = bool(missing_token)
        self.activity_weight = float(activity_weight)
        self.nonempty_weight = float(nonempty_weight)
        if position_init not in ("normal", "sincos"):  # "sin-cos" silently gave the random ("normal") start
            raise ValueError(f"position_init must be 'normal' or 'sincos', got {position_init!r}")
        self.position_init = str(position_init)
        p = self.dtype_policy
        s = None if seed is None else int(seed)

        def sub(i):
            return None if s is None else s + 10 * (i + 1)

        self.patch_embed = layers.Dense(self.embedding_dim, name="patch_embed", dtype=p)
        self.pos_embed = PositionEmbedding(self.num_patches, name="pos_embed", dtype=p)
        self.masking = RandomMasking(self.num_patches, self.mask_ratio, seed=s, name="masking")
        self.encoder_blocks = [TransformerBlock(self.embedding_dim, self.num_heads, self.mlp_ratio, self.dropout,
                                                seed=sub(i), name=f"encoder_block_{i}", dtype=p)
                               for i in range(self.encoder_layers)]
        self.encoder_norm = layers.LayerNormalization(epsilon=1e-6, name="encoder_norm", dtype=p)
        self.decoder_embed = layers.Dense(self.decoder_dim, name="decoder_embed", dtype=p)
        self.decoder_pos_embed = PositionEmbedding(self.num_patches, name="decoder_pos_embed", dtype=p)
        self.decoder_blocks = [TransformerBlock(self.decoder_dim, self.num_heads, self.mlp_ratio, self.dropout,
                                                seed=sub(100 + i), name=f"decoder_block_{i}", dtype=p)
                               for i in range(self.decoder_layers)]
        self.decoder_norm = layers.LayerNormalization(epsilon=1e-6, name="decoder_norm", dtype=p)
        self.decoder_pred = layers.Dense(self.num_features, name="decoder_pred", dtype="float32")

    # ------------------------------------------------------------------ building
    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        n, f = self.num_patches, self.num_features
        self.patch_embed.build((None, n, f))
        self.pos_embed.build((None, n, self.embedding_dim))
        self.masking.build((None, n, self.embedding_dim))  # no weights (a seed generator); built, nothing is pending
        if self.missing_token:  # the input of an uncovered pixel (no data there), learned
            self.missing_embed = self.add_weight(name="missing_embed", shape=(1, 1, self.embedding_dim),
                                                 initializer=keras.initializers.TruncatedNormal(stddev=0.02))
        for blk in self.encoder_blocks:
            blk.build((None, None, self.embedding_dim))
        self.encoder_norm.build((None, None, self.embedding_dim))
        self.decoder_embed.build((None, None, self.embedding_dim))
        self.mask_token = self.add_weight(name="mask_token", shape=(1, 1, self.decoder_dim),
                                          initializer=keras.initializers.TruncatedNormal(stddev=0.02))
        self.decoder_pos_embed.build((None, n, self.decoder_dim))
        for blk in self.decoder_blocks:
            blk.build((None, n, self.decoder_dim))
        self.decoder_norm.build((None, n, self.decoder_dim))
        self.decoder_pred.build((None, n, self.decoder_dim))
        if self.position_init == "sincos":  # MAE's start: 2-D sine-cosine codes of a square grid, then learned
            side = int(round(n ** 0.5))
            if side * side != n:
                raise ValueError(f"position_init='sincos' needs a square grid of patches, got {n}")
            for emb, dim in ((self.pos_embed, self.embedding_dim), (self.decoder_pos_embed, self.decoder_dim)):
                emb.embedding.assign(sincos_2d(side, side, dim)[None])
        self.built = True

    # ------------------------------------------------------------------ forward
    def _check(self, x):
        if x.shape[-1] is not None and x.shape[-1] != self.num_features:
            raise ValueError(f"the model expects {self.num_features} features per patch, got {x.shape[-1]}")
        if x.shape[-2] is not None and x.shape[-2] != self.num_patches:
            raise ValueError(f"the model expects {self.num_patches} patches per image, got {x.shape[-2]}")

    def embed_patches(self, x: Any, covered: Any | None = None) -> Any:
        """Patch projection + position embedding: ``(b, n, f) -> (b, n, embedding_dim)``.

        With ``missing_token`` and ``covered`` ``(b, n)`` (1 where the source has data), uncovered pixels
        are the learned missing token instead of their (fill) projection.

        Parameters
        ----------
        x : tensor, shape (b, num_patches, num_features)
            Normalized features.
        covered : tensor, shape (b, num_patches), optional
            1 where the source has data; ignored by a model without ``missing_token``.

        Returns
        -------
        tensor, shape (b, num_patches, embedding_dim)

        Raises
        ------
        ValueError
            ``x`` has a statically known number of features or patches other than the model's.
        """
        self._check(x)
        h = self.patch_embed(x)
        if self.missing_token and covered is not None:
            c = ops.cast(ops.expand_dims(covered, -1), h.dtype)
            h = h * c + ops.cast(self.missing_embed, h.dtype) * (1 - c)
        return self.pos_embed(h)

    def encode(self, x: Any, training: bool = False, covered: Any | None = None) -> Any:
        """Encoder over the full, unmasked sequence: ``(b, n, f) -> (b, n, embedding_dim)`` (contextual).

        Parameters
        ----------
        x : tensor, shape (b, num_patches, num_features)
            Normalized features.
        training : bool
            Training mode (dropout on).
        covered : tensor, shape (b, num_patches), optional
            1 where the source has data (see :meth:`embed_patches`).

        Returns
        -------
        tensor, shape (b, num_patches, embedding_dim)
            The encoder's tokens after its final layer norm.
        """
        h = self.embed_patches(x, covered)
        for blk in self.encoder_blocks:
            h = blk(h, training=training)
        return self.encoder_norm(h)

    def draw_noise(self, batch_size: Any) -> Any:
        """The masking noise of one forward pass: ``(batch, num_patches)`` uniform draws.

        Drawn from the :class:`~geos2vec.model.layers.RandomMasking` layer's own seed generator (a new draw at
        every call, reproducible from the model's seed), exactly as that layer draws it.

        Parameters
        ----------
        batch_size : int or scalar tensor
            Number of rows.

        Returns
        -------
        tensor, shape (batch_size, num_patches)
            Uniform draws in [0, 1) (Keras' default float type).
        """
        return keras.random.uniform((batch_size, self.masking.length), seed=self.masking.seed_generator)

    def call(self, x: Any, training: bool | None = None) -> dict[str, Any]:
        covered = None
        if isinstance(x, dict):
            x, covered = x["x"], x.get("c")
        return self.reconstruct(x, self.draw_noise(ops.shape(x)[0]), training=training, covered=covered)

    def reconstruct(self, x: Any, noise: Any, training: bool | None = False,
                    covered: Any | None = None) -> dict[str, Any]:
        """The forward pass of :meth:`call` with the masks given by ``noise``.

        ``noise``: ``(batch, num_patches)``, e.g. uniform; the kept patches are
        ``argsort(noise, axis=1)[:, :num_keep]`` (the lowest noise), as in
        :class:`~geos2vec.model.layers.RandomMasking`. Give distinct values per row so that the argsort has no
        ties. ``call`` is this method with noise drawn by the masking layer.

        Parameters
        ----------
        x : tensor or dict
            Normalized features ``(batch, num_patches, num_features)``, or a batch dict ``{"x": ..., "c": ...}``
            (its ``"c"``, when present, replaces ``covered``).
        noise : tensor, shape (batch, num_patches)
            The masking noise.
        training : bool
            Training mode (dropout on).
        covered : tensor, shape (batch, num_patches), optional
            1 where the source has data (see :meth:`embed_patches`).

        Returns
        -------
        dict
            ``{"pred": (batch, num_patches, num_features), "mask": (batch, num_patches)}``: the reconstruction
            of every patch (float32) and the mask (float32, 1 where a patch was masked).
        """
        if isinstance(x, dict):
            x, covered = x["x"], x.get("c", covered)
        h = self.embed_patches(x, covered)
        ids_keep, ids_restore, mask = masks_from_noise(noise, self.masking.num_keep)
        h = gather_tokens(h, ids_keep)
        for blk in self.encoder_blocks:
            h = blk(h, training=training)
        h = self.decoder_embed(self.encoder_norm(h))
        b = ops.shape(h)[0]
        n_masked = self.num_patches - self.masking.num_keep
        tokens = ops.broadcast_to(ops.cast(self.mask_token, h.dtype), (b, n_masked, self.decoder_dim))
        h = gather_tokens(ops.concatenate([h, tokens], axis=1), ids_restore)
        h = self.decoder_pos_embed(h)
        for blk in self.decoder_blocks:
            h = blk(h, training=training)
        pred = self.decoder_pred(self.decoder_norm(h))
        return {"pred": pred, "mask": mask}

    # ------------------------------------------------------------------ training
    def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        # Keras' TensorFlow trainer (3.x) averages the first batch over the replicas of a tf.distribute strategy
        # (strategy.reduce("MEAN", batch)) only to build what is not built yet; a batch split unevenly (3 images
        # on 2 replicas) failed there with a raw AddN shape error. A built model with a built optimizer (as
        # S2VecModel.fit compiles it) has nothing left to build: as under the default strategy, skip the step.
        pending = [getattr(self, a, None) for a in ("_compile_metrics", "_compile_loss", "optimizer")]
        if self.built and all(layer.built for layer in self._flatten_layers()) and all(
                p is None or p.built for p in pending):
            return
        parent = getattr(super(), "_maybe_symbolic_build", None)
        if parent is not None:
            parent(iterator=iterator, data_batch=data_batch)

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: dict[str, Any] | None = None,
                     sample_weight: Any = None, training: bool = True) -> Any:
        """The masked MSE of a batch, for Keras' built-in ``train_step`` / ``test_step`` of every backend.

        ``x``: the batch given to ``fit`` / ``evaluate``, a dict ``{"x": ..., "w": ..., "c": ..., "v": ...}``
        or the array of features alone. The loss counts: observed pixels (``w``) with ``ignore_unobserved``;
        else the available channels of covered pixels (``v``, per value) or covered pixels (``c``) when the
        batch has them (all pixels otherwise). With ``nonempty_weight`` ≠ 1 and a batch key ``"e"``
        (``(batch, length)``, 1 where the cell has any count), a masked cell with counts weighs
        ``nonempty_weight`` in the per-channel term and an empty one 1 (a weighted mean; the activity term is
        not reweighted). ``y_pred``: this model's output on it
        (``{"pred", "mask"}``, drawn masks). ``y`` and ``sample_weight`` are not used. On TensorFlow the
        loss is divided by the number of replicas in sync (:func:`per_replica_loss`); Keras undoes that
        scaling for the logged ``loss``.

        Parameters
        ----------
        x : dict or tensor
            The batch, as above.
        y : None
            Not used.
        y_pred : dict
            The model's output on ``x``: ``{"pred": ..., "mask": ...}``.
        sample_weight : None
            Not used.
        training : bool
            Not used (Keras passes it).

        Returns
        -------
        tensor
            Scalar float32 loss: :func:`masked_mse`, plus ``activity_weight`` times the masked MSE of each
            patch's mean over its (available) channels when ``activity_weight`` is set, divided as above.
        """
        del y, sample_weight, training
        data = x if isinstance(x, dict) else {"x": x}
        if self.ignore_unobserved:
            weight = data.get("w")
            if weight is not None and data.get("v") is not None:  # observed cells, available channels only
                weight = ops.cast(weight, "float32")[..., None] * ops.cast(data["v"], "float32")
        else:
            weight = data.get("v", data.get("c"))
        main_weight = weight
        if self.nonempty_weight != 1.0 and data.get("e") is not None:
            # a masked cell with any count weighs nonempty_weight, an empty one 1 (their weighted mean)
            cell = 1.0 + (self.nonempty_weight - 1.0) * ops.cast(data["e"], "float32")
            if main_weight is None:
                main_weight = cell
            elif len(main_weight.shape) == 3:
                main_weight = ops.cast(main_weight, "float32") * cell[..., None]
            else:
                main_weight = ops.cast(main_weight, "float32") * cell
        loss = masked_mse(data["x"], y_pred["pred"], y_pred["mask"], main_weight)
        if self.activity_weight:
            loss = loss + self.activity_weight * activity_mse(data["x"], y_pred["pred"], y_pred["mask"], weight)
        return per_replica_loss(loss)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Keras' ``compile_from_config`` (loading a ``.keras`` file), with ``FusedAdamW`` registered first.

        ``S2VecModel.fit`` compiles with :class:`~geos2vec.model.optimizer.FusedAdamW`, so a ``.keras`` file of
        it (``keras_model.save``, a ``ModelCheckpoint``) names that class; importing this module is then enough
        to load the file with ``keras.saving.load_model`` (it raised "Could not locate class 'FusedAdamW'").

        Parameters
        ----------
        config : dict
            The compile configuration stored in the ``.keras`` file (optimizer, ...).
        """
        from .optimizer import FusedAdamW  # imports only keras

        with keras.saving.CustomObjectScope({"geos2vec>FusedAdamW": FusedAdamW}):
            super().compile_from_config(config)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_patches": self.num_patches, "num_features": self.num_features,
                "embedding_dim": self.embedding_dim, "encoder_layers": self.encoder_layers,
                "decoder_dim": self.decoder_dim, "decoder_layers": self.decoder_layers,
                "num_heads": self.num_heads, "mlp_ratio": self.mlp_ratio, "dropout": self.dropout,
                "mask_ratio": self.mask_ratio, "ignore_unobserved": self.ignore_unobserved, "seed": self.seed,
                "missing_token": self.missing_token, "activity_weight": self.activity_weight,
                "position_init": self.position_init, "nonempty_weight": self.nonempty_weight}


def build_mae(config: S2VecConfig, num_patches: int, num_features: int,
              dtype: str | keras.DTypePolicy | None = None) -> MaskedAutoencoder:
    """A built :class:`MaskedAutoencoder` from an :class:`~geos2vec.model.S2VecConfig`.

    Parameters
    ----------
    config : S2VecConfig
        Architecture, masking and loss options, and the seed.
    num_patches : int
        Pixels per image (``rows * cols``).
    num_features : int
        Channels per pixel.
    dtype : str or keras.DTypePolicy, optional
        Dtype policy of the model (e.g. ``"mixed_bfloat16"``); default: Keras' global policy.

    Returns
    -------
    MaskedAutoencoder
        Named ``"s2vec_mae"``, built (weights created) for ``(None, num_patches, num_features)`` inputs.
    """
    model = MaskedAutoencoder(
        num_patches, num_features, embedding_dim=config.embedding_dim, encoder_layers=config.encoder_layers,
        decoder_dim=config.decoder_dim, decoder_layers=config.decoder_layers, num_heads=config.num_heads,
        mlp_ratio=config.mlp_ratio, dropout=config.dropout, mask_ratio=config.mask_ratio,
        ignore_unobserved=config.ignore_unobserved, seed=config.seed, dtype=dtype, name="s2vec_mae",
        missing_token=getattr(config, "missing_token", False),
        activity_weight=getattr(config, "activity_weight", 0.0),
        position_init=getattr(config, "position_init", "normal"),
        nonempty_weight=getattr(config, "nonempty_weight", 1.0))
    model.build((None, num_patches, num_features))
    return model
