"""The eight flips/rotations of a square grid (the dihedral group D4), with NumPy only.

One definition for :func:`geos2vec.raster.augment` (whole images) and
:class:`geos2vec.model.device_data.DeviceBatches` (pixel permutations gathered on the accelerator), which
must import neither xarray nor the rest of geos2vec.
"""

from __future__ import annotations

import numpy as np


def dihedral(arr: np.ndarray, t: int, axes=(1, 2)) -> np.ndarray:
    """Transform ``t`` in 0..7: ``t % 4`` quarter turns counter-clockwise, then a left-right flip if ``t >= 4``."""
    out = np.rot90(arr, t % 4, axes=axes)
    if t >= 4:
        out = np.flip(out, axis=axes[1])
    return out


def permutations(side: int) -> np.ndarray:
    """Pixel permutations of the eight transforms of a row-major ``side x side`` window.

    ``(8, side * side)`` int64: for transform ``t``, the source pixel of every output pixel, so that
    ``window.reshape(-1)[perm[t]]`` is ``dihedral(window, t)``.
    """
    grid = np.arange(side * side, dtype=np.int64).reshape(side, side)
    return np.stack([dihedral(grid, t, axes=(0, 1)).reshape(-1) for t in range(8)])
