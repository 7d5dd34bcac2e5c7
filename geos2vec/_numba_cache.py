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


def _user_cache() -> Path | None:
    try:
        from numba.misc.appdirs import AppDirs

        return Path(AppDirs("numba", appauthor=False).user_cache_dir)
    except Exception:  # noqa: BLE001 - no HOME, or an appdirs failure: treat as not writable
        return None


_CHECKED = False


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

    Returns the folder it chose, or None when numba's own choice works (or ``NUMBA_CACHE_DIR`` is set).
    """
    from numba.core import config

    if config.CACHE_DIR:
        return None
    package_dir = Path(__file__).resolve().parent if package_dir is None else Path(package_dir)
    if _writable(package_dir / "__pycache__"):
        return None
    user = _user_cache()
    if user is not None and _writable(user):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = Path(tempfile.gettempdir()) / f"geos2vec-numba-cache-{uid}"
    if not _writable(folder):
        warnings.warn("geos2vec: no writable location for numba's cache (package folder, user cache, temporary "
                      "folder); set NUMBA_CACHE_DIR to a writable folder", RuntimeWarning, stacklevel=3)
        return None
    config.CACHE_DIR = str(folder)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    warnings.warn(f"geos2vec: the package folder and the user cache are read-only; compiled kernels are cached "
                  f"in {folder} (set NUMBA_CACHE_DIR to choose another folder)", RuntimeWarning, stacklevel=3)
    return folder
