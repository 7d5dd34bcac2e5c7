"""Global options, set in the xarray manner: ``geos2vec.set_options(progress=False)`` or as a context manager.

``progress``
    Show tqdm progress bars in long work (embedding, evaluation). Default True. A function's own ``verbose=``
    argument, when given, wins.
``threads``
    BLAS threads for geos2vec's NumPy inference (the bundled model's encoder). Default 1: on a machine whose
    cores other processes share, a multi-threaded BLAS oversubscribes them and the encoder slows down 10-30x
    (``benchmarks/RESULTS.md``); one thread loses little on an idle machine. ``None`` leaves the BLAS library's
    own setting.
"""

from __future__ import annotations

import contextlib

from .errors import InvalidInputError

__all__ = ["set_options", "get_options"]

OPTIONS: dict = {"progress": True, "threads": 1}


def _check(name, value):
    if name == "progress":
        if not isinstance(value, bool):
            raise InvalidInputError(f"progress must be True or False, got {value!r}")
    elif name == "threads":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidInputError(f"threads must be a positive integer or None, got {value!r}")
    else:
        raise InvalidInputError(f"unknown option {name!r}; options are {sorted(OPTIONS)}")


class set_options:  # noqa: N801 - named like xarray.set_options
    """Set options globally, or for a ``with`` block (restored on exit).

    Parameters
    ----------
    **kwargs
        Option values: ``progress`` (bool), ``threads`` (a positive int, or None); see the module docstring.
        The previous values are kept in the ``old`` attribute.

    Raises
    ------
    InvalidInputError
        If an option is unknown or a value is invalid (nothing is changed then).

    Examples
    --------
    >>> import geos2vec
    >>> geos2vec.set_options(progress=False)      # doctest: +ELLIPSIS
    <geos2vec.options.set_options object at ...>
    >>> with geos2vec.set_options(threads=2):
    ...     geos2vec.get_options()["threads"]
    2
    >>> geos2vec.set_options(progress=True).old["progress"]
    False
    """

    def __init__(self, **kwargs: bool | int | None) -> None:
        for name, value in kwargs.items():
            _check(name, value)
        self.old = {name: OPTIONS[name] for name in kwargs}
        OPTIONS.update(kwargs)

    def __enter__(self) -> set_options:
        return self

    def __exit__(self, *exc: object) -> None:
        OPTIONS.update(self.old)


def get_options() -> dict:
    """A copy of the current options.

    Returns
    -------
    dict
        ``{"progress": bool, "threads": int or None}``; changing it changes no option.
    """
    return dict(OPTIONS)


def progress(verbose=None) -> bool:
    """Whether to show a progress bar: ``verbose`` when given, else the global option.

    Parameters
    ----------
    verbose : bool, optional
        A function's own ``verbose=`` argument; None defers to the ``progress`` option.

    Returns
    -------
    bool
    """
    return OPTIONS["progress"] if verbose is None else bool(verbose)


def blas_threads():
    """A context that limits BLAS threads to the ``threads`` option (a no-op for ``None``).

    Returns
    -------
    contextlib.AbstractContextManager
        A ``threadpoolctl.threadpool_limits`` context, or ``contextlib.nullcontext()`` when the option is None.
    """
    n = OPTIONS["threads"]
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")
