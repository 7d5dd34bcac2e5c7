"""Global options, set in the xarray manner: ``geos2vec.set_options(progress=False)`` or as a context manager.

``progress``
    Show tqdm progress bars in long work (embedding, evaluation), and Keras' progress output in training
    (``S2VecModel.fit(verbose="auto")``, the default, prints nothing when it is False). Default True. A
    function's own ``verbose=`` / ``progress=`` argument, when given, wins; it takes True, False (or 1, 0) and
    None (the option), and refuses anything else as ``set_options`` does.
``threads``
    BLAS threads for geos2vec's NumPy inference (the bundled model's encoder). Default 1: on a machine whose
    cores other processes share, a multi-threaded BLAS oversubscribes them and the encoder slows down 10-30x
    (``benchmarks/RESULTS.md``); one thread loses little on an idle machine. ``None`` leaves the BLAS library's
    own setting.

Options are process-wide, as in xarray: a ``with set_options(...)`` block in one thread applies to every thread
while it runs. Blocks in several threads that overlap in time leave the options as they were before the first
began once all have ended, whatever order they end in.
"""

from __future__ import annotations

import contextlib
import itertools
import numbers
import os
import threading
import weakref

import numpy as np

from .errors import InvalidInputError

__all__ = ["set_options", "get_options"]

OPTIONS: dict = {"progress": True, "threads": 1}
_LOCK = threading.RLock()
_ORDER = itertools.count()
_LAST = [-1]  # the order of the latest set_options applied (a stored object entered after another set re-applies)
_ACTIVE: weakref.WeakSet = weakref.WeakSet()  # set_options objects alive and not exited (plain calls die at once)


def _check(name, value):
    """The value to store: NumPy scalars (``np.True_``, ``np.int64(4)``) as the Python bool or int they equal."""
    if name == "progress":
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidInputError(f"progress must be True or False, got {value!r}")
        return bool(value)
    if name == "threads":
        if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)
                                  or value < 1):
            raise InvalidInputError(f"threads must be a positive integer or None, got {value!r}")
        return None if value is None else int(value)
    raise InvalidInputError(f"unknown option {name!r}; options are {sorted(OPTIONS)}")


class set_options:  # noqa: N801 - named like xarray.set_options
    """Set options globally, or for a ``with`` block (restored on exit).

    Parameters
    ----------
    **kwargs
        Option values: ``progress`` (bool), ``threads`` (a positive int, or None); see the module docstring.
        NumPy scalars (``np.int64(2)``, ``np.True_``) are stored as the Python int or bool they equal. The
        previous values are kept in the ``old`` attribute.

    Notes
    -----
    The options are set when the object is made, so a plain call sets them for the session. A stored object
    used in several ``with`` blocks (``quiet = set_options(progress=False)``, then ``with quiet:`` in a
    notebook cell run twice) sets them again each time a block begins, and each block's end restores what was
    there when it began.

    Raises
    ------
    InvalidInputError
        If an option is unknown or a value is invalid (nothing is changed then).

    Examples
    --------
    >>> import geos2vec
    >>> geos2vec.set_options(progress=False)  # doctest: +ELLIPSIS
    <set_options: progress=False (was ...)>
    >>> with geos2vec.set_options(threads=2):
    ...     geos2vec.get_options()["threads"]
    2
    >>> geos2vec.set_options(progress=True).old["progress"]
    False
    """

    def __init__(self, **kwargs: bool | int | None) -> None:
        self._values = {name: _check(name, value) for name, value in kwargs.items()}
        self._open = False
        self._apply()

    def _apply(self) -> None:
        with _LOCK:
            self._order = _LAST[0] = next(_ORDER)
            self.old = {name: OPTIONS[name] for name in self._values}
            OPTIONS.update(self._values)
            _ACTIVE.add(self)  # from here, not __enter__: another thread's block may end in between
            self._open = True
            self._pid = os.getpid()

    def __enter__(self) -> set_options:
        # a block run again (a notebook cell re-run), an object made before this process was forked from its
        # maker (a worker of a forked pool inherits it as made, "open"), or a stored object entered after another
        # set_options (``quiet = set_options(...)``, ``set_options(progress=True)``, ``with quiet:``: it set
        # nothing): set the options again, not only restore
        with _LOCK:
            stale = not self._open or self._pid != os.getpid() or self._order != _LAST[0]
        if stale:
            self._apply()
        return self

    def __exit__(self, *exc: object) -> None:
        with _LOCK:
            if not self._open:
                return
            self._open = False
            _ACTIVE.discard(self)
            for name, value in self.old.items():
                # a later block (another thread's) that set this option and is still open restores our old value
                # when it ends; restoring now would undo its setting, and its own old value is ours
                later = [c for c in _ACTIVE if c._order > self._order and name in c.old]
                if later:
                    min(later, key=lambda c: c._order).old[name] = value
                else:
                    OPTIONS[name] = value

    def __getstate__(self) -> dict:
        # an unpickled object (a worker process, a deepcopy) is a block that has not begun: its ``with`` sets the
        # options there. Pickled open, its ``with`` set nothing and its end restored this process's old values
        return {"_values": dict(self._values), "old": dict(self.old), "_open": False}

    def __repr__(self) -> str:
        changes = ", ".join(f"{name}={value!r} (was {self.old[name]!r})" for name, value in self._values.items())
        return f"<set_options: {changes or 'no change'}>"


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
        A function's own ``progress=`` / ``verbose=`` argument; None defers to the ``progress`` option.

    Returns
    -------
    bool

    Raises
    ------
    InvalidInputError
        ``verbose`` is not True, False, 0, 1 or None: ``progress="no"`` (a true string) showed the bars, where
        ``set_options(progress="no")`` is refused.
    """
    return OPTIONS["progress"] if check_progress(verbose) is None else bool(verbose)


def check_progress(value, name: str = "progress"):
    """``value`` if it is a function's valid ``progress=`` argument (None, a bool or 0/1), else an error."""
    if value is None or isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral)
                                                                and int(value) in (0, 1)):
        return value
    raise InvalidInputError(f"{name} must be True, False or None (None follows geos2vec.set_options(progress=...)), "
                            f"got {value!r}")


_BLAS = {"users": 0, "limits": None}  # blas_threads blocks open in any thread, and the limits the first one set


def _release_openblas():
    """Let the calling thread set OpenBLAS' limits.

    Recent threadpoolctl ignores every thread but the first one that set them (its "controlling thread") until
    that one ends or lets go, so the thread that ends the last block could not restore a limit another set.
    """
    import threadpoolctl

    clear = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


def _loaded_libraries_key():
    """A value that changes whenever a shared library is loaded or unloaded; None where none is known.

    Linux (glibc, musl): ``dl_iterate_phdr``'s load and unload counters (``dlpi_adds``, ``dlpi_subs``), read from
    its first entry, a few microseconds against the milliseconds of a scan. Elsewhere None (a scan every time).
    """
    if _LIBS["read"] is None:
        _LIBS["read"] = _key_reader()
    return _LIBS["read"]() if _LIBS["read"] else None


def _key_reader():
    import ctypes
    import sys

    try:
        # PyDLL: the call keeps the GIL. With it released (CDLL), dl_iterate_phdr would hold the loader's lock while
        # its callback waits for the GIL, and a thread holding the GIL and loading a library waits for that lock
        libc = ctypes.PyDLL(None)
        if sys.platform.startswith("linux") and hasattr(libc, "dl_iterate_phdr"):
            class Info(ctypes.Structure):
                _fields_ = [("addr", ctypes.c_void_p), ("name", ctypes.c_char_p), ("phdr", ctypes.c_void_p),
                            ("phnum", ctypes.c_uint16), ("adds", ctypes.c_ulonglong), ("subs", ctypes.c_ulonglong)]

            callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Info), ctypes.c_size_t, ctypes.c_void_p)
            iterate = libc.dl_iterate_phdr
            iterate.argtypes, iterate.restype = [callback_type, ctypes.c_void_p], ctypes.c_int
            seen = []

            def first(info, size, _data):
                # an older C library's struct may end before the counters: then no key (size is its length)
                seen.append((info.contents.adds, info.contents.subs) if size >= ctypes.sizeof(Info) else None)
                return 1  # stop after the first entry: the counters are global

            callback = callback_type(first)

            def read():
                seen.clear()
                iterate(callback, None)
                return seen[0] if seen else None

            return read if read() is not None else False
    except (OSError, AttributeError, TypeError, ValueError):  # no C library to ask (Windows): scan on every call
        pass
    return False


_LIBS: dict = {"read": None, "key": None, "controller": None}


def _controller():
    """The threadpoolctl controller of the loaded libraries, scanned again only when a library was (un)loaded.

    ``ThreadpoolController()`` scans every loaded library (~1-8 ms, a quarter of a small patch-mode embed);
    call with ``_LOCK`` held.
    """
    from threadpoolctl import ThreadpoolController

    key = _loaded_libraries_key()
    if key is None or _LIBS["controller"] is None or key != _LIBS["key"]:
        _LIBS["controller"] = ThreadpoolController()
        _LIBS["key"] = key
    return _LIBS["controller"]


@contextlib.contextmanager
def _shared_blas_limit(n: int):
    with _LOCK:
        if _BLAS["users"] == 0:
            _release_openblas()
            # what threadpool_limits(limits=n, user_api="blas") does, without scanning the libraries again
            _BLAS["limits"] = _controller().limit(limits=n, user_api="blas")
        # else: the BLAS is already limited by another thread's block; the last block to end restores it
        _BLAS["users"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _BLAS["users"] -= 1
            if _BLAS["users"] == 0:
                _release_openblas()
                _BLAS.pop("limits").restore_original_limits()
                _BLAS["limits"] = None
                _release_openblas()


def blas_threads():
    """A context that limits BLAS threads to the ``threads`` option (a no-op for ``None``).

    threadpoolctl's limits are process-wide: blocks in several threads at once (dask's threaded scheduler
    embedding partitions) share one limit, and the last block to end restores the BLAS library's own setting.
    Separate ``threadpool_limits`` blocks would each restore what they found, so overlapping blocks left the
    BLAS at one thread for the rest of the session.

    Returns
    -------
    contextlib.AbstractContextManager
        A context that holds the limit while open, or ``contextlib.nullcontext()`` when the option is None.
    """
    n = OPTIONS["threads"]
    if n is None:
        return contextlib.nullcontext()
    return _shared_blas_limit(n)
