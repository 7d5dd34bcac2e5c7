"""Hyper-parameters of the S2Vec masked autoencoder (defaults: the paper's Table 1)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    from .._typing import StrPath

__all__ = ["S2VecConfig"]

_PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


ARCHITECTURE = ("embedding_dim", "encoder_layers", "decoder_dim", "decoder_layers", "num_heads", "mlp_ratio")


@dataclass
class S2VecConfig:
    """Every hyper-parameter of the model and its training, in one place.

    The defaults are Table 1 of the S2Vec paper (Choudhury et al., 2025): a ViT
    masked autoencoder with 8 heads, a 6-layer encoder of width 256 (= the
    embedding dimension), a 2-layer decoder of width 128, AdamW (weight decay
    1e-3, gradient clip-norm 1.0), initial learning rate 5e-4 with cosine decay
    to 10 %, batch 64, shuffle buffer 1000, 50 epochs, dropout 0.2.
    Fields not in the paper (mask ratio 0.75, MLP ratio 4, validation split,
    seed, ...) follow MAE (He et al., 2022).

    Examples
    --------
    >>> S2VecConfig().embedding_dim
    256
    >>> S2VecConfig(encoder_layers=2, embedding_dim=32).replace(epochs=3).epochs
    3
    """

    # architecture
    embedding_dim: int = 256          # encoder width = embedding dimension
    encoder_layers: int = 6
    decoder_dim: int = 128
    decoder_layers: int = 2
    num_heads: int = 8
    mlp_ratio: float = 4.0
    dropout: float = 0.2
    # masked autoencoding
    mask_ratio: float = 0.75
    ignore_unobserved: bool = False   # leave fill pixels out of the loss
    missing_token: bool = False       # uncovered pixels enter the encoder as a learned token, not as zeros
    activity_weight: float = 0.0      # + this x the masked MSE of each cell's mean over channels (its activity)
    nonempty_weight: float = 1.0      # masked cells with any count weigh this much in the per-channel loss (empty: 1)
    position_init: str = "normal"     # "sincos": position embeddings start as MAE's 2-D sine-cosine codes
    log_counts: bool = False          # normalize log(1 + count) instead of raw counts (FeatureStats.log1p)
    # optimisation
    learning_rate: float = 5e-4
    cosine_alpha: float = 0.1         # final lr = alpha * initial lr
    warmup_epochs: float = 0.0
    weight_decay: float = 1e-3
    clipnorm: float = 1.0
    batch_size: int = 64
    shuffle_buffer: int = 1000
    epochs: int = 50
    validation_split: float = 0.1     # fraction of images held out for the validation loss
    early_stopping_patience: int | None = None
    mixed_precision: str = "auto"     # "auto": bfloat16 on GPUs, float32 on CPUs
    seed: int = 0

    def __post_init__(self):
        import numpy as np

        for f in fields(self):  # NumPy scalars as Python numbers: np.int64(3) passed validation, then broke save()
            value = getattr(self, f.name)
            if isinstance(value, np.generic):
                setattr(self, f.name, value.item())
        self.validate()

    def validate(self) -> "S2VecConfig":
        """Raise ``ValueError`` for inconsistent values.

        Called by the constructor (and so by :meth:`replace` and :meth:`from_dict`).

        Returns
        -------
        S2VecConfig
            ``self``, unchanged.

        Raises
        ------
        ValueError
            A size (layers, widths, heads, ``batch_size``, ``epochs``) that is not a positive integer,
            ``embedding_dim`` or ``decoder_dim`` not divisible by ``num_heads``, ``mask_ratio``, ``dropout``,
            ``validation_split`` or ``cosine_alpha`` out of range, a non-positive ``learning_rate``,
            ``clipnorm`` or ``mlp_ratio``, a negative ``weight_decay`` or ``warmup_epochs``, a
            ``shuffle_buffer`` or ``early_stopping_patience`` that is not an integer >= 0 (or ``None`` for the
            patience), a flag (``ignore_unobserved``, ``missing_token``, ``log_counts``) that is not a bool, a
            NaN or infinite number, or an unknown ``position_init`` or ``mixed_precision``. NumPy scalars are
            taken as the Python numbers they hold.
        """
        import math
        import numbers

        for name in ("learning_rate", "weight_decay", "mask_ratio", "dropout", "validation_split", "cosine_alpha",
                     "mlp_ratio", "warmup_epochs", "activity_weight", "nonempty_weight", "clipnorm"):
            v = getattr(self, name)  # None: no clipping; for the others a raw TypeError of a comparison below
            if (v is not None or name != "clipnorm") and (isinstance(v, bool) or not isinstance(v, numbers.Real)
                                                          or not math.isfinite(v)):
                raise InvalidInputError(f"S2VecConfig.{name} must be a finite number"
                                        f"{' or None' if name == 'clipnorm' else ''}, got {v!r} (a NaN or inf "
                                        "learning rate trains a model whose weights are all NaN)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise InvalidInputError(f"S2VecConfig.seed must be a non-negative integer, got {self.seed!r}")
        for name in ("embedding_dim", "encoder_layers", "decoder_dim", "decoder_layers", "num_heads",
                     "batch_size", "epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"S2VecConfig.{name} must be a positive integer, got {v!r}")
        for name in ("shuffle_buffer", "early_stopping_patience"):  # 1.5, "a" or -1 were taken as they were
            v = getattr(self, name)
            if (v is not None or name == "shuffle_buffer") and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise InvalidInputError(f"S2VecConfig.{name} must be an integer >= 0"
                                        f"{' or None' if name != 'shuffle_buffer' else ''}, got {v!r}")
        for name in ("ignore_unobserved", "missing_token", "log_counts"):  # "no" would have counted as True
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"S2VecConfig.{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("embedding_dim", "decoder_dim"):
            if getattr(self, name) % self.num_heads:
                raise InvalidInputError(f"S2VecConfig.{name}={getattr(self, name)} is not divisible by "
                                 f"num_heads={self.num_heads}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise InvalidInputError(f"S2VecConfig.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidInputError(f"S2VecConfig.dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.validation_split < 1.0:
            raise InvalidInputError(f"S2VecConfig.validation_split must be in [0, 1), got {self.validation_split}")
        if not 0.0 <= self.cosine_alpha <= 1.0:
            raise InvalidInputError(f"S2VecConfig.cosine_alpha must be in [0, 1], got {self.cosine_alpha}")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.clipnorm is not None and self.clipnorm <= 0:
            raise InvalidInputError("learning_rate must be > 0, weight_decay >= 0 and clipnorm > 0 (or None)")
        if self.mlp_ratio <= 0 or self.warmup_epochs < 0:
            raise InvalidInputError("mlp_ratio must be > 0 and warmup_epochs >= 0")
        if self.activity_weight < 0 or not self.nonempty_weight > 0:
            raise InvalidInputError(f"S2VecConfig.activity_weight must be >= 0 and nonempty_weight > 0, got "
                             f"{self.activity_weight} and {self.nonempty_weight}")
        if self.position_init not in ("normal", "sincos"):
            raise InvalidInputError(f"S2VecConfig.position_init must be 'normal' or 'sincos', "
                                    f"got {self.position_init!r}")
        if self.mixed_precision not in _PRECISIONS:
            raise InvalidInputError(f"S2VecConfig.mixed_precision must be one of {_PRECISIONS}, "
                             f"got {self.mixed_precision!r}")
        return self

    def replace(self, **changes: Any) -> "S2VecConfig":
        """A copy with some fields changed (unknown names raise ``TypeError``).

        Parameters
        ----------
        **changes
            New values of fields, by name.

        Returns
        -------
        S2VecConfig
            A new, validated configuration; ``self`` is not modified.

        Raises
        ------
        TypeError
            A name that is not a field.
        ValueError
            The new values are inconsistent (:meth:`validate`).
        """
        d = asdict(self)
        unknown = set(changes) - set(d)
        if unknown:
            import difflib  # the message named neither the fields nor the one meant (embed_dim for embedding_dim)

            near = {u: difflib.get_close_matches(u, list(d), 1, 0.6) for u in sorted(unknown)}
            hint = "; ".join(f"{u!r}: did you mean {m[0]!r}?" for u, m in near.items() if m)
            raise InvalidTypeError(f"unknown S2VecConfig fields: {sorted(unknown)}{'; ' + hint if hint else ''}; "
                                   f"the fields are {sorted(d)}")
        d.update(changes)
        return S2VecConfig(**d)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-safe dict.

        Returns
        -------
        dict
            ``{field name: value}`` for every field, readable by :meth:`from_dict`.
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "S2VecConfig":
        """A configuration from :meth:`to_dict` output (unknown keys raise).

        Parameters
        ----------
        d : dict
            Field values by name; missing fields take their defaults.

        Returns
        -------
        S2VecConfig

        Raises
        ------
        ValueError
            A key that is not a field, or inconsistent values (:meth:`validate`).
        TypeError
            ``d`` is not a dict.
        """
        if not isinstance(d, dict):
            raise InvalidTypeError(f"S2VecConfig.from_dict takes a dict of field values, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InvalidInputError(f"unknown S2VecConfig fields {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def save(self, path: StrPath) -> Path:
        """Write the configuration as JSON to ``path``; returns the path.

        Parameters
        ----------
        path : str or path-like
            The file to write (overwritten).

        Returns
        -------
        pathlib.Path
            ``path``.

        Notes
        -----
        The file is written under a temporary name in the same folder, then renamed over ``path``: an
        interrupted save leaves the previous file as it was.
        """
        from .._jsonfile import write_text_atomic

        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: StrPath, strict: bool = False) -> "S2VecConfig":
        """Read a config written by :meth:`save`; ``strict`` requires every architecture field.

        Parameters
        ----------
        path : str or path-like
            A JSON file holding one object of field values.
        strict : bool
            Raise if any architecture field (``embedding_dim``, ``encoder_layers``, ``decoder_dim``,
            ``decoder_layers``, ``num_heads``, ``mlp_ratio``) is missing, instead of taking its default
            (which would not match saved weights).

        Returns
        -------
        S2VecConfig

        Raises
        ------
        ValueError
            A missing architecture field (with ``strict``), an unknown field or inconsistent values.
        """
        from .._jsonfile import read_json_object

        d = read_json_object(path)
        if strict:
            missing = [k for k in ARCHITECTURE if k not in d]
            if missing:
                raise InvalidInputError(f"{path} lacks the architecture field(s) {missing}: defaults would not match "
                                 "the saved weights")
        return cls.from_dict(d)



# what a model's trained weights fix: a config that differs from them here cannot use them
WEIGHT_FIELDS = (*ARCHITECTURE, "missing_token")


def architecture(obj) -> dict:
    """``{field: value}`` of :data:`WEIGHT_FIELDS` of a config or a built Keras model."""
    return {f: getattr(obj, f) for f in WEIGHT_FIELDS}


def check_architecture(config: S2VecConfig, trained: dict) -> None:
    """Refuse ``config`` where it differs from ``trained`` (:func:`architecture` of the weights' model or config).

    A replaced ``S2VecModel.config`` with another architecture than its weights' made ``embed`` fail with a NumPy
    broadcast error, or, for ``num_heads`` (which no weight's shape shows), embed with another attention split.
    """
    from ..errors import InvalidInputError

    changed = [f"{f}={getattr(config, f)!r} (the weights': {v!r})" for f, v in trained.items()
               if v != getattr(config, f)]
    if changed:
        raise InvalidInputError(f"model.config changed fields that shape the trained weights: {', '.join(changed)}; "
                                "set them back, or train a new S2VecModel with that architecture")
