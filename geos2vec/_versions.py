"""``geos2vec.show_versions()``: what a bug report needs (in the manner of ``xarray.show_versions``)."""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TextIO

_PACKAGES = ("geos2vec", "numpy", "pandas", "geopandas", "shapely", "pyproj", "numba", "xarray", "pyarrow",
             "threadpoolctl", "tqdm", "matplotlib", "keras", "tensorflow", "tensorflow-cpu", "jax", "torch",
             "osmium", "dask", "dask-geopandas", "distributed", "zarr", "scipy")

# the lower bounds of pyproject.toml (dependencies and the model, osm and dask extras; tests/test_user_lower_bounds.py
# keeps the two in step): show_versions marks an installed version below its bound
MINIMUM = {"numpy": "1.26", "pandas": "2.1", "geopandas": "1.0", "shapely": "2.0", "pyproj": "3.6", "numba": "0.59",
           "xarray": "2024.1", "pyarrow": "14", "matplotlib": "3.8", "tqdm": "4.66", "threadpoolctl": "3.1",
           "keras": "3.7", "tensorflow": "2.16", "tensorflow-cpu": "2.16", "osmium": "4.0", "dask": "2024.1",
           "dask-geopandas": "0.4", "distributed": "2024.1", "zarr": "2.17"}


def _release(version: str) -> tuple[int, ...]:
    """The leading numeric release of a version string: ``"3.7.0rc1"`` -> ``(3, 7, 0)``."""
    import re

    m = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(p) for p in m.group(0).split(".")) if m else ()


def below_minimum(found: dict | None = None) -> dict:
    """``{name: (installed, minimum)}`` for the installed packages older than geos2vec supports.

    Parameters
    ----------
    found : dict, optional
        ``{name: version or None}`` as :func:`versions` gives (default: the installed ones).

    Returns
    -------
    dict
        Empty when every installed dependency meets its lower bound (``MINIMUM``).
    """
    found = versions() if found is None else found
    return {name: (found[name], MINIMUM[name]) for name in MINIMUM
            if found.get(name) and _release(found[name]) < _release(MINIMUM[name])}


def versions() -> dict:
    """``{name: version or None}`` for Python, the platform and geos2vec's (optional) dependencies.

    geos2vec's own entry is the imported package's ``__version__``; the others come from the installed
    packages' metadata.
    """
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    # the code that runs, not the installed metadata: an editable install or a source tree on sys.path keeps the
    # version of its last `pip install` (0.1.0 here after the version moved on)
    from . import __version__

    out["geos2vec"] = __version__
    return out


def show_versions(file: TextIO | None = None) -> None:
    """Print the versions of Python, the platform and geos2vec's dependencies (``None``: not installed).

    A version older than geos2vec supports is marked ``(older than the supported >=X: upgrade it)``.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default ``sys.stdout``).
    """
    file = sys.stdout if file is None else file
    found = versions()
    old = below_minimum(found)
    for name, value in found.items():
        note = f"  (older than the supported >={old[name][1]}: upgrade it)" if name in old else ""
        print(f"{name:>15}: {value}{note}", file=file)
