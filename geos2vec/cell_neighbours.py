"""Neighbours of S2 cells on the face grid: :func:`grid_disk` (re-exported by :mod:`geos2vec.cells`).

The (2k+1) x (2k+1) square of same-level cells around each cell, across cube-face edges, in numba; bit-exact
with s2sphere's ``CellId.get_all_neighbors`` for k = 1 (``tests/test_grid_disk.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba as nb
import numpy as np

from . import _numba_cache, _s2
from ._s2 import from_face_ij_level, sized_kernel, to_face_ij_orientation
from ._cells_core import _as_cells, _positions
from .errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["grid_disk"]


# --------------------------------------------------------------------------- neighbours
# Edge e of each face (0: i < 0, 1: i >= n, 2: j < 0, 3: j >= n, i.e. u = -1, u = +1,
# v = -1, v = +1) -> (face across it, which of that face's edges it is, whether the
# coordinate along the edge runs backwards there). Derived as S2CellId::FromFaceIJWrap
# does it: a point just beyond the edge, FaceUVtoXYZ on this face, XYZtoFaceUV onto the
# face it lands on; tests/test_grid_disk.py re-derives it from s2sphere. Neighbouring
# faces cut their common edge into the same 2**level cells, so crossing an edge is an
# exact isometry of the cell grids ("unfolding" the cube).
_EDGE_NBR = np.array([
    [[4, 3, 1], [1, 0, 0], [5, 3, 0], [2, 0, 1]],
    [[0, 1, 0], [3, 2, 1], [5, 1, 1], [2, 2, 0]],
    [[0, 3, 1], [3, 0, 0], [1, 3, 0], [4, 0, 1]],
    [[2, 1, 0], [5, 2, 1], [1, 1, 1], [4, 2, 0]],
    [[2, 3, 1], [5, 0, 0], [3, 3, 0], [0, 0, 1]],
    [[4, 1, 0], [1, 2, 1], [3, 1, 1], [0, 2, 0]],
], dtype=np.int64)


@nb.njit(cache=True, inline="always")
def _wrap_face_ij(face, i, j, n, edge_nbr):
    """Move a position (i, j) of an ``n`` x ``n`` face grid onto the face that holds it.

    The position may lie beyond the face's edges.

    A position beyond an i edge and a j edge at once (next to a cube corner) is
    moved across the edge it is further beyond first, the i edge on a tie. With
    ``-n <= i, j < 2n`` this takes at most two crossings.
    """
    for _ in range(4):
        over_i = -i if i < 0 else i - n + 1  # > 0: cells beyond an i edge
        over_j = -j if j < 0 else j - n + 1
        if over_i > 0 and over_i >= over_j:
            e, over, along = (0 if i < 0 else 1), over_i - 1, j
        elif over_j > 0:
            e, over, along = (2 if j < 0 else 3), over_j - 1, i
        else:
            break
        e2 = edge_nbr[face, e, 1]
        if edge_nbr[face, e, 2] != 0:
            along = n - 1 - along
        across = over if (e2 & 1) == 0 else n - 1 - over  # distance into the new face
        if e2 < 2:
            i, j = across, along
        else:
            i, j = along, across
        face = edge_nbr[face, e, 0]
    return face, i, j


@sized_kernel
def _grid_disk_kernel(cells, k, level, lookup_ij, lookup_pos, edge_nbr, out):
    n = 1 << level
    shift = _s2.MAX_LEVEL - level
    for c in nb.prange(cells.shape[0]):
        face_u, i, j, _ = to_face_ij_orientation(cells[c], lookup_ij)
        face = np.int64(face_u)
        i >>= shift
        j >>= shift
        inside = i >= k and j >= k and i + k < n and j + k < n
        col = 0
        for di in range(-k, k + 1):
            for dj in range(-k, k + 1):
                f, ii, jj = face, i + di, j + dj
                if not inside:
                    f, ii, jj = _wrap_face_ij(face, ii, jj, n, edge_nbr)
                out[c, col] = from_face_ij_level(f, ii << shift, jj << shift, level, lookup_pos)
                col += 1


def grid_disk(cells: ArrayLike, k: int = 1) -> np.ndarray:
    """The ``(2k+1) x (2k+1)`` square of same-level cells around each cell.

    The square lies in the face's own (i, j) grid (see :func:`cell_to_face_ij`):
    entry ``(di + k) * (2k + 1) + (dj + k)`` is the cell at ``(i + di, j + dj)``,
    row-major in ``di`` then ``dj`` from ``-k`` to ``k``, so the middle entry,
    ``(2k+1)**2 // 2``, is the cell itself. For ``k = 1`` the other eight are S2's
    ``GetAllNeighbors`` at the cell's level (as a set; bit-exact with current S2;
    ``s2sphere`` lacks its clamp in ``FromFaceIJWrap`` and is one cell off next to
    cube corners at levels 25-30).

    Across a cube-face edge the square continues on the neighbouring face, as
    ``S2CellId::FromFaceIJWrap`` finds it: adjacent faces share the cells along
    their common edge, so the square is still a grid there, only in the other
    face's (rotated) frame. Near a cube corner only three faces meet, so the
    square has a quarter too many: a position beyond two face edges at once is
    carried across the edge it is further beyond first (the ``i`` edge on a tie)
    and then across the other, onto a cell around the corner that is usually
    already in the square. Rows of cells within ``k`` of a cube corner therefore
    hold duplicates (for ``k = 1`` the corner cell of a face gets its 7
    neighbours and one of them twice, as ``GetAllNeighbors`` does). As a set,
    every row is exactly the cells within ``k`` steps of the centre through
    shared edges or vertices (``GetAllNeighbors`` applied ``k`` times), corners
    included.

    Parameters
    ----------
    cells : array_like of uint64
        Cell ids, all of one level.
    k : int, default 1
        Cells on each side of the centre, ``0 <= k <= 2**level`` (more would wrap
        the square around the cube).

    Returns
    -------
    numpy.ndarray of uint64, shape ``cells.shape + ((2k+1)**2,)``

    Raises
    ------
    ValueError
        Invalid cell ids or cells of more than one level (positions are named),
        ``k < 0`` or ``k > 2**level``.
    TypeError
        Non-integer ``k`` or cell ids.
    """
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise InvalidTypeError(f"k must be a non-negative integer, got {k!r}")
    k = int(k)
    if k < 0:
        raise InvalidInputError(f"k must be >= 0 (cells on each side of the centre), got {k}")
    cells = np.asarray(_as_cells(cells))
    flat = cells.ravel()
    width = (2 * k + 1) ** 2
    if flat.size == 0:
        return np.empty(cells.shape + (width,), dtype=np.uint64)
    levels = np.empty(flat.size, dtype=np.int64)
    _s2.level_kernel(flat, levels)
    bad = levels != levels[0]
    if bad.any():
        raise InvalidInputError(
            f"grid_disk needs cells of one level; the cells at positions {_positions(bad)} are not at "
            f"level {int(levels[0])} (the level of position 0); group them by get_level first"
        )
    level = int(levels[0])
    if k > 1 << level:
        raise InvalidInputError(
            f"k={k} is more than the {1 << level} cells along a face edge at level {level}; "
            "the square would wrap around the cube"
        )
    out = np.empty((flat.size, width), dtype=np.uint64)
    _grid_disk_kernel(flat, k, level, _s2.LOOKUP_IJ, _s2.LOOKUP_POS, _EDGE_NBR, out)
    return out.reshape(cells.shape + (width,))


_numba_cache.key_on_sources(globals(), _s2)  # kernels here compile _s2 helpers in
