"""Where numba keeps geos2vec's compiled kernels, on installs whose own folder is read-only.

geos2vec's kernels use ``@numba.njit(cache=True)``. numba stores the cache next to the source
(``__pycache__``) or in the user's cache folder (``~/.cache/numba``); when neither is writable (a read-only
site-packages without a writable ``HOME``, as in many containers and shared servers) decorating a kernel
fails with ``RuntimeError: cannot cache function ...: no locator available`` and ``import geos2vec`` breaks.
:func:`ensure_cache_location` runs before any kernel is defined and, in that case only, points numba at a
private folder in the system temporary directory, with one warning.
"""

from __future__ import annotations

import os
import stat
import tempfile
import warnings
from pathlib import Path


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _private(folder: Path) -> bool:
    """Whether ``folder`` is (now) a real folder of this user's that no one else can write to.

    numba's cache index files are pickles: a folder in the shared temporary directory that another user made
    (or can write to) could run their code in this process.
    """
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = folder.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):  # POSIX owner and modes
        return False
    return _writable(folder)


def _user_cache() -> Path | None:
    try:
        from numba.misc.appdirs import AppDirs

        return Path(AppDirs("numba", appauthor=False).user_cache_dir)
    except Exception:  # noqa: BLE001 - no HOME, or an appdirs failure: treat as not writable
        return None


_CHECKED = False
REJECTED: str | None = None  # a NUMBA_CACHE_DIR passed over because it cannot be written (``geos2vec precompile``)


def ensure_once() -> None:
    """:func:`ensure_cache_location` for the installed package, once per process.

    Called by every module that defines cached kernels, before its first ``@njit(cache=True)``.
    """
    global _CHECKED
    if not _CHECKED:
        _CHECKED = True
        ensure_cache_location()


def ensure_cache_location(package_dir: Path | None = None) -> Path | None:
    """Point numba's cache at a temporary folder when neither default location is writable.

    Returns the folder it chose, or None when numba's own choice works (or ``NUMBA_CACHE_DIR`` is set to a
    writable folder). A ``NUMBA_CACHE_DIR`` that cannot be written is passed over with a warning, as numba
    does, and the other locations are tried; when none is writable either, numba would stop the import with
    "cannot cache function ...: no locator available".
    """
    from numba.core import config

    chosen = config.CACHE_DIR
    if chosen and _writable(Path(chosen)):
        return None
    if chosen:
        global REJECTED
        REJECTED = chosen
        warnings.warn(f"geos2vec: NUMBA_CACHE_DIR={chosen!r} is not a writable folder; numba caches compiled "
                      f"kernels elsewhere (set NUMBA_CACHE_DIR to a writable folder)", RuntimeWarning, stacklevel=3)
    package_dir = Path(__file__).resolve().parent if package_dir is None else Path(package_dir)
    if _writable(package_dir / "__pycache__"):
        return None
    user = _user_cache()
    if user is not None and _writable(user):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    try:
        folder = Path(tempfile.gettempdir()) / f"geos2vec-numba-cache-{uid}"
        if not _private(folder):  # another user's folder (or a link) would feed us their pickled cache files
            folder = Path(tempfile.mkdtemp(prefix="geos2vec-numba-cache-"))
    except OSError:  # no usable temporary folder at all (tempfile raises FileNotFoundError)
        folder = None
    if folder is None or not _writable(folder):
        warnings.warn("geos2vec: no writable location for numba's cache (package folder, user cache, temporary "
                      "folder); set NUMBA_CACHE_DIR to a writable folder", RuntimeWarning, stacklevel=3)
        return None
    config.CACHE_DIR = str(folder)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    warnings.warn(f"geos2vec: the package folder and the user cache are read-only; compiled kernels are cached "
                  f"in {folder} (set NUMBA_CACHE_DIR to choose another folder)", RuntimeWarning, stacklevel=3)
    return folder


def key_on_sources(namespace: dict, *modules) -> None:
    """Key the cached kernels of a module (its ``globals()``) also on the source files of ``modules``.

    numba keys a cached kernel on its own source file only, but the jitted helpers it calls from other modules
    are compiled into it: a kernel of ``_cover.py`` cached with an older ``_s2.py`` (an upgrade that changed only
    ``_s2.py``, in a user cache, ``NUMBA_CACHE_DIR`` or a source checkout's ``__pycache__``) would be loaded with
    the old helpers' arithmetic. Folding their sources' digest into the index's source stamp makes it compile anew.
    """
    import hashlib

    from numba.core.dispatcher import Dispatcher

    digest = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in modules)).hexdigest()
    for obj in list(namespace.values()):
        for kernel in (obj, getattr(obj, "serial", None), getattr(obj, "parallel", None)):  # SizedKernel twins
            if not isinstance(kernel, Dispatcher) or kernel.py_func.__module__ != namespace.get("__name__"):
                continue  # (the other modules' kernels it imported keep their own key)
            index = getattr(getattr(kernel, "_cache", None), "_cache_file", None)
            if index is not None and not isinstance(index._source_stamp, tuple):
                index._source_stamp = (index._source_stamp, digest)
