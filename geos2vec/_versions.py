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

    Parameters
    ----------
    file : file-like, optional
        Where to print (default ``sys.stdout``).
    """
    file = sys.stdout if file is None else file
    for name, value in versions().items():
        print(f"{name:>15}: {value}", file=file)
