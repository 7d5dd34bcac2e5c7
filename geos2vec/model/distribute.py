"""``tf.distribute`` support for every Keras version ``geos2vec[model]`` accepts (keras>=3.7)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    import tensorflow as tf

__all__ = ["strategy_scope"]


@contextlib.contextmanager
def strategy_scope(strategy: tf.distribute.Strategy) -> Iterator[None]:
    """``strategy.scope()``, creating two kinds of Keras variables as Keras 3.10 and later create them.

    * Keras 3.7 creates the state of a ``keras.random.SeedGenerator`` (``uint32``: the random masking of
      :class:`~geos2vec.model.layers.RandomMasking`, dropout) with ``aggregation="mean"``, which
      ``tf.distribute`` refuses for a non-float variable: no model could be built under a ``MirroredStrategy``
      ("creating distributed tf.Variable with aggregation=MEAN and a non-floating dtype is not supported").
      A non-float variable asking for ``MEAN`` gets ``aggregation=NONE`` here (Keras 3.8+: each replica
      advances its own copy).
    * Keras 3.7 to 3.9 create metric variables (the ``loss`` tracker; non-trainable, ``aggregation="sum"``)
      mirrored: every replica's ``assign_add`` (``assign(self + value)``) was summed over the replicas, so from
      the second step on the logged ``loss`` / ``val_loss`` of a multi-replica fit were wrong (the running
      totals doubled with 2 replicas), and so were early stopping and the best checkpoint, which follow them.
      Such a variable is created ``ON_READ`` here (per-replica totals, summed when read; Keras 3.10+).

    Other variables are created as asked.

    Parameters
    ----------
    strategy : tf.distribute.Strategy
        The strategy whose scope is entered.

    Yields
    ------
    None
    """
    import tensorflow as tf

    def creator(next_creator, **kwargs):
        dtype, aggregation = kwargs.get("dtype"), kwargs.get("aggregation")
        if (dtype is not None and aggregation == tf.VariableAggregation.MEAN
                and not tf.as_dtype(dtype).is_floating):
            kwargs["aggregation"] = tf.VariableAggregation.NONE
        if (aggregation == tf.VariableAggregation.SUM and not kwargs.get("trainable", True)
                and kwargs.get("synchronization", tf.VariableSynchronization.AUTO) == tf.VariableSynchronization.AUTO):
            kwargs["synchronization"] = tf.VariableSynchronization.ON_READ
        return next_creator(**kwargs)

    with strategy.scope(), tf.variable_creator_scope(creator):
        yield
