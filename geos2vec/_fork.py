"""Whether this process was forked from one in which TensorFlow had started.

TensorFlow is not fork-safe: in a child forked (``multiprocessing``'s default start method on Linux before Python
3.14, ``ProcessPoolExecutor()``, joblib's ``multiprocessing`` backend, dask's process scheduler under ``fork``)
after the parent ran a TensorFlow op, ``tf.function`` and Keras layer calls wait forever on the parent's thread
pools; reading variables still works. Embedding with a Keras model there hung the worker. :func:`tf_forked` tells
geos2vec to run the encoder in NumPy from the Keras model's weights instead (the compact model's encoder), and
:func:`check_tf_usable` refuses training, evaluation and building there instead of hanging.
"""

from __future__ import annotations

import os
import sys

_STATE = {"tf_forked": False}


def _tf_started() -> bool:
    ctx = sys.modules.get("tensorflow.python.eager.context")
    if ctx is None:
        return False
    try:
        current = ctx._context  # None until TensorFlow's first op (an import alone leaves a child usable)
        return current is not None and bool(current._initialized)
    except AttributeError:  # another TensorFlow layout: assume it ran
        return True


def _after_fork_in_child() -> None:
    _STATE["tf_forked"] = _STATE["tf_forked"] or _tf_started()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def tf_forked() -> bool:
    """Whether TensorFlow had run in the process this one was forked from (it would hang here).

    Returns
    -------
    bool
    """
    return _STATE["tf_forked"]


def check_tf_usable(what: str) -> None:
    """Raise instead of hanging when ``what`` would run TensorFlow in a process forked after it ran.

    Parameters
    ----------
    what : str
        The call, for the message (``"S2VecModel.fit"``).

    Raises
    ------
    ForkedTensorFlowError
        This process was forked from one in which TensorFlow had run.
    """
    if tf_forked():
        from .errors import ForkedTensorFlowError

        raise ForkedTensorFlowError(
            f"{what} cannot run TensorFlow in this process: it was forked from one in which TensorFlow had run, and "
            "TensorFlow waits forever there. Start the worker processes with 'spawn' (ProcessPoolExecutor(mp_context="
            "multiprocessing.get_context('spawn')), or multiprocessing.set_start_method('spawn') first); embedding "
            "works in a forked worker (in NumPy)")
