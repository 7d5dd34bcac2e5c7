"""Optional dependencies: imported when a feature needs them, or an ``ImportError`` naming the extra to install.

A minimal install (``pip install geos2vec``) counts features and embeds with the bundled NumPy encoder; training,
saving and loading Keras models need the ``model`` extra (Keras 3 and TensorFlow), zarr stores the ``dask`` extra.
Without them the import of the missing package failed deep inside geos2vec with a bare ``No module named
'keras'``; :func:`require` (and the :func:`needs` decorator) say instead which call needed what, and how to get it.
The error is an ``ImportError`` whose ``name`` is the missing module (as pandas' ``import_optional_dependency``).
"""

from __future__ import annotations

import functools
import importlib

__all__ = ["EXTRAS", "install_hint", "require", "needs"]

#: the extra of pyproject.toml's optional-dependencies that installs each optional module
EXTRAS = {"keras": "model", "tensorflow": "model", "zarr": "dask", "dask": "dask", "dask_geopandas": "dask",
          "distributed": "dask", "osmium": "osm"}

_WHAT = {"model": "TensorFlow and Keras 3; 'geos2vec[model-cpu]' takes TensorFlow's CPU-only wheel",
         "dask": "dask, dask-geopandas, distributed and zarr", "osm": "pyosmium"}


def install_hint(module: str) -> str:
    """How to install the optional ``module``: ``"pip install 'geos2vec[model]' (TensorFlow and Keras 3; ...)"``.

    Parameters
    ----------
    module : str
        A top-level module name, a key of :data:`EXTRAS`.

    Returns
    -------
    str
    """
    extra = EXTRAS[module]
    return f"pip install 'geos2vec[{extra}]' ({_WHAT[extra]})"


def require(*modules: str, what: str) -> None:
    """Import ``modules`` in order; one that is not installed raises an ``ImportError`` naming its extra.

    Parameters
    ----------
    *modules : str
        Top-level module names, keys of :data:`EXTRAS` (e.g. ``"keras", "tensorflow"``).
    what : str
        What needs them, for the message (e.g. ``"S2VecModel.fit"``).

    Raises
    ------
    ImportError
        A module (or an optional module it imports, e.g. TensorFlow under Keras) is missing: the message names
        ``what``, the module and the ``pip install 'geos2vec[...]'`` that brings it; ``name`` is the module. Other
        import failures (a broken installation) propagate unchanged.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing not in EXTRAS:
                raise
            raise ImportError(f"{what} needs {missing}, which is not installed: {install_hint(missing)}",
                              name=missing) from exc


def needs(*modules: str, what: str | None = None):
    """Decorator: :func:`require` ``modules`` before each call, naming the function in the message.

    Parameters
    ----------
    *modules : str
        Top-level module names, keys of :data:`EXTRAS`.
    what : str, optional
        The name in the message; default the function's qualified name (``S2VecModel.fit``).

    Returns
    -------
    callable
        The decorator.
    """
    def decorate(fn):
        name = what or fn.__qualname__

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            require(*modules, what=name)
            return fn(*args, **kwargs)
        return wrapper
    return decorate
