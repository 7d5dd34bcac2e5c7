"""Where numba keeps geos2vec's compiled kernels, on installs whose own folder is read-only.

geos2vec's kernels use ``@numba.njit(cache=True)``. numba stores the cache next to the source
(``__pycache__``) or in the user's cache folder (``~/.cache/numba``); when neither is writable (a read-only
site-packages without a writable ``HOME``, as in many containers and shared servers) decorating a kernel
fails with ``RuntimeError: cannot cache function ...: no locator available`` and ``import geos2vec`` breaks.
:func:`ensure_cache_location` runs before any kernel is defined and, in that case only, points numba at a
private folder in the system temporary directory, with one warning.

numba reads its cache files (pickles) unguarded: a truncated or otherwise damaged ``.nbi`` / ``.nbc`` file (a
disk that filled up, a copy cut short, a broken wheel) made every call of that kernel fail with
``UnpicklingError`` until the file was deleted by hand. :func:`recover_damaged_caches` makes geos2vec's kernels
(and only them) compile anew instead, replacing the file, with one warning per process.
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
        recover_damaged_caches()


_DAMAGED: list = []  # the first damaged cache file met in this process (it is warned about once)


def _damaged(where: str, exc: BaseException) -> None:
    if not _DAMAGED:
        _DAMAGED.append(where)
        warnings.warn(f"geos2vec: a damaged numba cache file was skipped ({where}: {type(exc).__name__}: {exc}); the "
                      "kernel is compiled again and the file replaced", RuntimeWarning, stacklevel=2)


_UNSAVED: list = []  # the first cache folder that could not be written in this process (warned about once)


def _unsaved(where: str, exc: OSError) -> None:
    if not _UNSAVED:
        _UNSAVED.append(where)
        warnings.warn(f"numba could not write a compiled kernel of geos2vec to its cache in {where} ({exc}); the "
                      "kernel runs, but is compiled again in every process until there is room (free some space "
                      "there, or set NUMBA_CACHE_DIR to another folder)", RuntimeWarning, stacklevel=2)


def _with_zip_locator(impl, caching):
    """``impl`` (numba's cache implementation) that caches kernels imported from a zip in ``NUMBA_CACHE_DIR``.

    numba's own locators for a zip member (Spark's ``--py-files geos2vec.zip``) take only the user cache folder
    (``~/.cache/numba``): ``NUMBA_CACHE_DIR``, and the private temporary folder :func:`ensure_cache_location`
    chooses when the user cache is read-only, were passed over, and the first kernel call stopped with
    ``OSError: Read-only file system: '~/.cache'``. Tried first, for geos2vec's functions only; without
    ``NUMBA_CACHE_DIR`` (or for a file on disk) numba's own locators, as before.
    """
    import hashlib
    import sys

    from numba.core import config

    class ZipInCacheDir(caching._CacheLocator):
        def __init__(self, py_func, py_file):
            self._lineno = py_func.__code__.co_firstlineno
            loader = sys.modules[py_func.__module__].__loader__  # zipimport's: reads the member from the archive
            self._stamp = hashlib.sha256(loader.get_data(py_file)).hexdigest()
            self._cache_path = os.path.join(config.CACHE_DIR, self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self):
            return self._cache_path

        def get_source_stamp(self):
            return self._stamp

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            if not config.CACHE_DIR or ".zip" not in py_file or os.path.exists(py_file):
                return None
            try:
                self = cls(py_func, py_file)
                self.ensure_cache_path()
            except Exception:  # noqa: BLE001 - not a member numba's loaders can read, or no writable folder
                return None
            return self

    return type(impl.__name__, (impl,), {"_locator_classes": [ZipInCacheDir, *impl._locator_classes]})


def recover_damaged_caches() -> None:
    """Compile geos2vec's kernels anew, with one warning, when their numba cache files are damaged.

    numba's ``FunctionCache`` (as ``numba.core.dispatcher`` and ``numba.np.ufunc.ufuncbuilder`` name it) is
    replaced by a subclass that, for functions of geos2vec's modules only, treats a cache index or data file
    that cannot be read (a truncated pickle, a damaged object file) as a cache miss: numba compiles the kernel
    and writes the file again. Every other function gets numba's own ``FunctionCache``, unchanged.
    """
    from numba.core import caching, dispatcher
    from numba.np.ufunc import ufuncbuilder

    base = dispatcher.FunctionCache
    if getattr(base, "_geos2vec_recovers", False):
        return

    class _IndexFile(caching.IndexDataCacheFile):
        def _load_index(self):
            try:
                return super()._load_index()
            except Exception as exc:  # noqa: BLE001 - any unreadable index: start it anew (save rewrites it)
                _damaged(self._index_path, exc)
                return {}

    class RecoveringFunctionCache(base):
        _geos2vec_recovers = True
        _impl_class = _with_zip_locator(base._impl_class, caching)

        def __new__(cls, py_func):
            module = getattr(py_func, "__module__", None) or ""
            if module != "geos2vec" and not module.startswith("geos2vec."):
                return base(py_func)  # not ours: numba's own cache, as it was
            return super().__new__(cls)

        def __init__(self, py_func):
            super().__init__(py_func)
            self._cache_file.__class__ = _IndexFile

        def load_overload(self, sig, target_context):
            try:
                return super().load_overload(sig, target_context)
            except Exception as exc:  # noqa: BLE001 - a damaged data file: compile, and save_overload replaces it
                _damaged(f"kernel {self._py_func.__module__}.{self._py_func.__qualname__} in {self._cache_path}", exc)
                return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except OSError as exc:  # a full disk, a quota: the command stopped ("[Errno 28]") after the compile
                _unsaved(self._cache_path, exc)

    dispatcher.FunctionCache = ufuncbuilder.FunctionCache = RecoveringFunctionCache


def _temporary_folder() -> Path | None:
    """The user's private folder for numba's cache in the system temporary directory, or None."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    try:
        folder = Path(tempfile.gettempdir()) / f"geos2vec-numba-cache-{uid}"
        if not _private(folder):  # another user's folder (or a link) would feed us their pickled cache files
            folder = Path(tempfile.mkdtemp(prefix="geos2vec-numba-cache-"))
    except OSError:  # no usable temporary folder at all (tempfile raises FileNotFoundError)
        return None
    return folder if _writable(folder) else None


def _kernel_folders() -> dict[str, Path]:
    """The cache sub-folder name numba gives each of geos2vec's package folders (in NUMBA_CACHE_DIR, user cache)."""
    from numba.core.caching import _CacheLocator

    package = Path(os.path.abspath(__file__)).parent  # as numba names the kernels' folders (not resolved)
    return {_CacheLocator.get_suitable_cache_subpath(str(f)): f.parent for f in package.rglob("__init__.py")}


def _copy_files(pairs: list[tuple[Path, Path]], target: Path) -> bool:
    """Copy compiled kernels, ``(file, path inside target)`` pairs, that ``target`` lacks.

    A kernel is its index file (``<name>.nbi``) and the data files it names (``<name>.<n>.nbc``): one whose
    index the target has is kept (numba's own stamps void a stale one), else its data files are copied (over
    any left without an index, which the new index would name) before its index; whole files only, as another
    process may be reading the target.
    """
    import shutil

    try:
        for index, rel in pairs:
            if index.suffix != ".nbi" or (target / rel).exists():
                continue
            data = [(f, r) for f, r in pairs if r.parent == rel.parent and r.name.startswith(f"{rel.stem}.")
                    and r.suffix == ".nbc"]
            for f, r in data + [(index, rel)]:
                dest = target / r
                dest.parent.mkdir(parents=True, exist_ok=True)
                part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
                shutil.copyfile(f, part)
                os.replace(part, dest)
    except OSError:
        return False
    return True


def _copy_of(source: Path) -> Path | None:
    """A private, writable copy of a read-only numba cache folder that holds compiled kernels, or None.

    numba uses a cache folder only if it can write to it: a ``NUMBA_CACHE_DIR`` filled by ``geos2vec
    precompile`` as root when a container image was built, and read-only for the user the programs run as,
    was passed over and every kernel compiled again at each start.
    """
    import hashlib

    try:  # geos2vec's kernels only: NUMBA_CACHE_DIR may hold every other package's too
        pairs = [(f, Path(sub, f.name)) for sub in _kernel_folders() for f in (source / sub).glob("*.nb[ci]")
                 if f.is_file()]
    except OSError:
        return None
    base = _temporary_folder() if pairs else None
    if base is None:
        return None
    target = base / f"copy-{hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]}"
    return target if _private(target) and _copy_files(pairs, target) else None


def _shipped_kernels() -> list[tuple[Path, Path]]:
    """The kernels a wheel shipped in package ``__pycache__`` folders that this user cannot write.

    numba passes such a folder over (it uses a cache only where it can write): a package installed by root
    (a container image, ``sudo pip install``) and run by another user compiled every kernel again. As
    ``(file, path in a cache folder)`` pairs, for :func:`_copy_files` into the folder numba uses instead.
    """
    try:
        return [(f, Path(sub, f.name)) for sub, folder in _kernel_folders().items()
                if (folder / "__pycache__").is_dir() and not _writable(folder / "__pycache__")
                for f in (folder / "__pycache__").glob("*.nb[ci]") if f.is_file()]
    except OSError:
        return []


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
        copy = _copy_of(Path(chosen))
        if copy is not None:
            config.CACHE_DIR = str(copy)
            os.environ["NUMBA_CACHE_DIR"] = str(copy)
            warnings.warn(f"geos2vec: NUMBA_CACHE_DIR={chosen!r} is read-only for this user and numba uses a cache "
                          f"only in a folder it can write: its compiled kernels were copied to {copy}, which numba "
                          "uses instead (make NUMBA_CACHE_DIR writable for this user, e.g. chown it to the user the "
                          "programs run as, to use it directly)", RuntimeWarning, stacklevel=3)
            return copy
        warnings.warn(f"geos2vec: NUMBA_CACHE_DIR={chosen!r} is not a writable folder; numba caches compiled "
                      f"kernels elsewhere (set NUMBA_CACHE_DIR to a writable folder)", RuntimeWarning, stacklevel=3)
    package_dir = Path(__file__).resolve().parent if package_dir is None else Path(package_dir)
    if _writable(package_dir / "__pycache__"):
        return None
    shipped = _shipped_kernels()  # the wheel's compiled kernels, copied to where numba looks instead
    user = _user_cache()
    if user is not None and _writable(user):
        _copy_files(shipped, user)
        return None
    folder = _temporary_folder()
    if folder is None:
        warnings.warn("geos2vec: no writable location for numba's cache (package folder, user cache, temporary "
                      "folder); set NUMBA_CACHE_DIR to a writable folder", RuntimeWarning, stacklevel=3)
        return None
    _copy_files(shipped, folder)
    config.CACHE_DIR = str(folder)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    warnings.warn(f"geos2vec: the package folder and the user cache are read-only; compiled kernels are cached "
                  f"in {folder} (set NUMBA_CACHE_DIR to choose another folder)", RuntimeWarning, stacklevel=3)
    return folder


def _source_bytes(module) -> bytes:
    """The bytes of a module's source file, from disk or from the zip file it was imported from."""
    get_data = getattr(getattr(module, "__loader__", None), "get_data", None)
    if get_data is not None:
        return get_data(module.__file__)
    return Path(module.__file__).read_bytes()


def key_on_sources(namespace: dict, *modules) -> None:
    """Key the cached kernels of a module (its ``globals()``) also on the source files of ``modules``.

    numba keys a cached kernel on its own source file only, but the jitted helpers it calls from other modules
    are compiled into it: a kernel of ``_cover.py`` cached with an older ``_s2.py`` (an upgrade that changed only
    ``_s2.py``, in a user cache, ``NUMBA_CACHE_DIR`` or a source checkout's ``__pycache__``) would be loaded with
    the old helpers' arithmetic. Folding their sources' digest into the index's source stamp makes it compile anew.
    """
    import hashlib

    from numba.core.dispatcher import Dispatcher

    # through the module's loader: a file on disk, or a member of a zip on sys.path (Spark's --py-files), which
    # numba caches too (its ZipCacheLocator) but which no path on disk can read
    digest = hashlib.sha256(b"".join(_source_bytes(m) for m in modules)).hexdigest()
    for obj in list(namespace.values()):
        for kernel in (obj, getattr(obj, "serial", None), getattr(obj, "parallel", None)):  # SizedKernel twins
            if not isinstance(kernel, Dispatcher) or kernel.py_func.__module__ != namespace.get("__name__"):
                continue  # (the other modules' kernels it imported keep their own key)
            index = getattr(getattr(kernel, "_cache", None), "_cache_file", None)
            if index is not None and not isinstance(index._source_stamp, tuple):
                index._source_stamp = (index._source_stamp, digest)
