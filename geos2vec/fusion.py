"""Fusion of embedding tables as Keras layers: concatenation, weighted addition, projection-then-addition.

The downstream MLP of :mod:`geos2vec.evaluate` fuses several embedding blocks
(e.g. S2Vec and a location encoding, "S2Vec-Loc") with one of these layers:

* :class:`Concat` - ``[x_1, ..., x_k]`` concatenated on the feature axis (no weights);
* :class:`WeightedAdd` - ``sum_i w_i x_i`` with one learnable scalar per input
  (initialised to ``1/k``); all inputs must have the same number of features;
* :class:`ProjectAdd` - ``sum_i (x_i W_i) + b``: each input projected by its own
  learnable matrix to ``units`` features, then added (each ``W_i`` drawn on its own, seeded
  ``seed + i`` with ``seed=``).

Every layer takes a list of 2-d tensors ``(batch, d_i)``. With ``heads=M`` the
layer holds ``M`` independent copies of its weights, each initialised as the
single layer's (used by the evaluation harness to train many MLPs at once):
inputs may be ``(batch, d_i)`` (shared) or ``(M, batch, d_i)`` and the output
is ``(M, batch, d)`` (:class:`Concat` keeps shared inputs shared).

The classes live in :mod:`geos2vec.fusion_layers` (module level, with ``get_config``) and are imported from
there on first access, so that ``import geos2vec.fusion`` does not import Keras or TensorFlow.
:func:`fusion_layer` builds one by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

__all__ = ["fusion_layer", "KINDS"]

KINDS = ("concat", "weighted", "project")
_KERAS = {}


def _classes(what: str = "geos2vec.fusion.fusion_layer"):
    if not _KERAS:
        from ._optional import require

        require("keras", what=what)  # an ImportError naming the extra, not a bare "No module named 'keras'"
        from . import fusion_layers as fl

        _KERAS.update(Concat=fl.Concat, WeightedAdd=fl.WeightedAdd, ProjectAdd=fl.ProjectAdd)
    return _KERAS


def fusion_layer(kind: str = "concat", *, units: int | None = None, heads: int | None = None,
                 seed: int | None = None, **kwargs: Any) -> keras.layers.Layer:
    """Build a fusion layer by name.

    Parameters
    ----------
    kind : {"concat", "weighted", "project"}
        Concatenation, learnable weighted addition (equal dims), or
        projection-then-addition (needs ``units``).
    units : int, optional
        Output features of ``"project"``.
    heads : int, optional
        Number of independent weight copies (see the module docstring).
    seed : int, optional
        Seed of ``"project"``'s kernels (kernel ``i`` is drawn with ``seed + i``), so that a run is repeatable
        without ``keras.utils.set_random_seed``; the other kinds draw nothing at random and ignore it.
    **kwargs
        Further keyword arguments of the layer class (e.g. ``name``; ``kernel_initializer`` for
        ``"project"``).

    Returns
    -------
    keras.layers.Layer
        A :class:`Concat`, :class:`WeightedAdd` or :class:`ProjectAdd` (imports Keras).

    Raises
    ------
    ImportError
        Keras is not installed (the message names the ``model`` extra that brings it).
    InvalidInputError
        (a ``ValueError``) If ``kind`` is unknown, or ``"project"`` is asked for without ``units`` (or with
        ``units`` or ``heads`` that is not a positive integer).
    """
    from .errors import InvalidInputError

    if kind not in KINDS:
        raise InvalidInputError(f"unknown fusion {kind!r}; choose one of {list(KINDS)}")
    classes = _classes()
    if kind == "concat":
        return classes["Concat"](heads=heads, **kwargs)
    if kind == "weighted":
        return classes["WeightedAdd"](heads=heads, **kwargs)
    if units is None:
        raise InvalidInputError("fusion='project' needs units=<number of output features>")
    return classes["ProjectAdd"](units, heads=heads, seed=seed, **kwargs)


def __getattr__(name):
    if name in ("Concat", "WeightedAdd", "ProjectAdd"):
        return _classes(f"geos2vec.fusion.{name}")[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
