"""The numba kernel of :mod:`geos2vec.raster`, in a module that imports only numba and NumPy.

Kept apart from :mod:`geos2vec.raster._common` so that :mod:`geos2vec._precompile` can compile it where
pandas and xarray are not installed (the build environment of a wheel).
"""

from __future__ import annotations

import numba
import numpy as np  # noqa: F401 - numba types the arrays it is given

from .._numba_cache import ensure_once as _ensure_numba_cache

_ensure_numba_cache()  # before any @njit(cache=True): read-only installs use a temporary folder


@numba.njit(cache=True, nogil=True)
def scatter_rows(out2d, pix, vals):  # pragma: no cover - numba
    """out2d[pix[i], :] = vals[i, :] in row blocks (cache friendly for C or F ``vals``)."""
    n, f = vals.shape
    block = 256
    for start in range(0, n, block):
        stop = min(start + block, n)
        for k in range(f):
            for i in range(start, stop):
                out2d[pix[i], k] = vals[i, k]
