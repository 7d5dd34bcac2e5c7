"""Where geos2vec's warnings point: the user's line that called into geos2vec, not a line inside the package.

``warnings.warn(message, category, stacklevel=find_stack_level())`` (as pandas' ``find_stack_level``) counts
the level when the warning is raised, by walking out of the geos2vec package. A warning then names the file
and line of the user's call (``gdf.s2vec.embed(...)``, ``count_features(...)``) whichever path it took inside
(the accessor, one stage calling another, a helper), and ``warnings.filterwarnings(..., module=...)`` matches
the user's module. Hand-counted levels pointed at the accessor or at the stage that called another one.
Frames of the standard library and of the libraries that call back into geos2vec (Keras, TensorFlow, dask,
xarray, pandas) on the way out are passed too when the user's frame lies beyond them: a warning of a callback
Keras calls inside ``S2VecModel.fit`` names the user's ``fit`` line. Another installed package that calls
geos2vec counts as the user.

:func:`warn` also keeps Python's "default" action (shown once per line of the user's code) across the
``warnings.catch_warnings()`` blocks of other libraries: GeoPandas enters one in every ``GeoSeries(...)``, and
each block made Python forget what it had shown, so a loop of 100 ``embed`` calls printed 100 identical warnings.
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["find_stack_level", "warn"]

_PACKAGE = __name__.partition(".")[0]  # "geos2vec"


def _in_package(frame) -> bool:
    g = frame.f_globals
    name = g.get("__name__")
    if name == "__main__":  # python -m geos2vec: the module runs as __main__
        name = getattr(g.get("__spec__"), "name", name)
    return isinstance(name, str) and (name == _PACKAGE or name.startswith(_PACKAGE + "."))


def _skipped(frame) -> bool:
    """Frames ``warnings.warn`` does not count in ``stacklevel`` (importlib's bootstrap, as in CPython)."""
    name = frame.f_code.co_filename
    return "importlib" in name and "_bootstrap" in name


def find_stack_level() -> int:
    """The ``stacklevel`` that makes a warning raised by the caller point at the user's frame (outside geos2vec).

    Call it in the ``warnings.warn(...)`` call itself (the level counts from the function that calls it).

    Returns
    -------
    int
        1 when the caller is outside geos2vec and the libraries that call back into it; else the level of the
        first frame outside both (the user's), of the first frame outside geos2vec where none lies further out
        (a worker thread), or of the outermost frame when every frame is inside (geos2vec's command line).
    """
    return _user_frame(sys._getframe(1))[1]


def _library_dirs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The folders of the standard library and of installed packages, each ending in a separator.

    A system Python's site-packages lies inside its standard library's folder.
    """
    global _LIBRARY_DIRS
    if _LIBRARY_DIRS is None:
        import site
        import sysconfig

        paths = sysconfig.get_paths()
        sites = [paths.get(k) for k in ("purelib", "platlib")]
        sites += list(getattr(site, "getsitepackages", list)()) + [getattr(site, "getusersitepackages", str)()]

        def norm(dirs):
            return tuple(sorted({os.path.join(os.path.normcase(form(d)), "") for d in filter(None, dirs)
                                 for form in (os.path.abspath, os.path.realpath)}))

        _LIBRARY_DIRS = norm([paths.get("stdlib"), paths.get("platstdlib")]), norm(sites)
    return _LIBRARY_DIRS


_LIBRARY_DIRS: tuple[tuple[str, ...], tuple[str, ...]] | None = None
# the libraries that call back into geos2vec (a Keras callback or layer, a dask task, ``xarray.DataArray.pipe``,
# ``DataFrame.pipe``): their frames are passed; another installed package that calls geos2vec is the "user", so
# ``filterwarnings(module="that_package")`` still matches its own calls
_CALLERS = frozenset({"keras", "tensorflow", "tf_keras", "jax", "optree", "absl", "dask", "distributed", "toolz",
                      "xarray", "pandas", "geopandas", "numpy"})


def _library(frame) -> bool:
    """Whether ``frame`` runs code of the standard library or of a library that calls back into geos2vec."""
    name = frame.f_code.co_filename
    if name.startswith("<frozen "):
        return True
    module = frame.f_globals.get("__name__")
    if isinstance(module, str) and module.partition(".")[0] in _CALLERS:
        return True
    stdlib, sites = _library_dirs()
    path = os.path.normcase(name)
    return path.startswith(stdlib) and not path.startswith(sites)


def _out(frame, level):
    """The next frame out of ``frame`` that ``warnings.warn`` counts, and its level (``None`` at the outermost)."""
    back = frame.f_back
    while back is not None and _skipped(back):
        back = back.f_back
    return back, level + 1


def _user_frame(frame):
    """The user's frame from ``frame`` outwards, and its ``stacklevel`` as seen from ``frame``.

    The first frame outside geos2vec, past libraries that geos2vec or the user called on the way in: Keras
    calling a geos2vec callback inside ``S2VecModel.fit``, or a Keras layer's ``__call__`` running its ``call``,
    point at the user's ``fit(...)`` or ``layer(x)`` line. Where no frame outside geos2vec and those libraries
    lies further out (a worker thread, geos2vec's command line), the first frame outside geos2vec
    (or the outermost frame when every frame is inside).
    """
    level, first = 1, None
    while True:
        inside = _in_package(frame)
        if not inside and first is None:
            first = (frame, level)
        if not inside and not _library(frame):
            return frame, level
        back, back_level = _out(frame, level)
        if back is None:
            return first or (frame, level)
        frame, level = back, back_level


def _matches(pattern, value) -> bool:
    return pattern is None or (pattern == value if isinstance(pattern, str) else bool(pattern.match(value)))


def _action(text: str, category: type, module: str, lineno: int) -> str:
    """The action of the first matching entry of ``warnings.filters`` (as ``warnings.warn_explicit`` finds it)."""
    for action, msg, cat, mod, line in warnings.filters:
        if _matches(msg, text) and issubclass(category, cat) and _matches(mod, module) and line in (0, lineno):
            return action
    return warnings.defaultaction


# (filename, lineno or None, text, category) -> True; "filters": the filters and display they were shown under
_shown: dict = {}


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` at the first frame outside geos2vec, shown once per place under "default"/"module".

    Python forgets what the "default" and "module" actions have shown whenever any code changes the warning
    filters, even a ``catch_warnings()`` block that puts them back as they were (GeoPandas' ``GeoSeries``
    constructor). Here what was shown is forgotten only when the filters differ from those it was shown under
    (``warnings.simplefilter(...)``, ``warnings.resetwarnings()``) or warnings go elsewhere (a new
    ``catch_warnings(record=True)`` block, as pytest's around each test), so a warning in a loop shows once.
    "always", "error", "once" and "ignore" behave as in ``warnings.warn``.

    Parameters
    ----------
    message : str
        The warning's text.
    category : type of Warning, default UserWarning
        Its class.
    """
    frame, level = _user_frame(sys._getframe(1))
    g = frame.f_globals
    lineno = frame.f_lineno
    action = _action(message, category, g.get("__name__", "<string>"), lineno)
    if action in ("default", "module"):
        state = (tuple(warnings.filters), warnings.defaultaction, warnings.showwarning,
                 getattr(warnings, "_showwarnmsg_impl", None))  # a recording block's list.append: a new one each
        if _shown.get("filters") != state or len(_shown) > 10_000:
            _shown.clear()
            _shown["filters"] = state
        key = (frame.f_code.co_filename, lineno if action == "default" else None, message, category)
        if key in _shown:
            return
        _shown[key] = True
    warnings.warn(message, category, stacklevel=level + 1)  # + 1: this function's frame
