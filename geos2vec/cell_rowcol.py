"""Face (i, j) and image row/column of S2 cells (re-exported by :mod:`geos2vec.cells`; see its docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import _s2
from ._cells_core import _as_cells, _check_level, _positions, _shape_out, get_level
from .errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["cell_to_face_ij", "face_ij_to_cell", "cell_to_rowcol", "rowcol_to_cell"]


def cell_to_face_ij(cells: ArrayLike) -> tuple[np.ndarray | np.int64, np.ndarray | np.int64, np.ndarray | np.int64]:
    """Face (0-5) and the cell's (i, j) on the face grid of its own level.

    Parameters
    ----------
    cells : array_like of uint64

    Returns
    -------
    face, i, j : numpy.ndarray of int64, the shape of ``cells``
    """
    cells = _as_cells(cells)
    flat = cells.ravel()
    face = np.empty(flat.size, dtype=np.int64)
    i = np.empty(flat.size, dtype=np.int64)
    j = np.empty(flat.size, dtype=np.int64)
    _s2.face_ij_kernel(flat, _s2.LOOKUP_IJ, face, i, j)
    return _shape_out(face, cells), _shape_out(i, cells), _shape_out(j, cells)


def face_ij_to_cell(face: ArrayLike, i: ArrayLike, j: ArrayLike, level: int) -> np.ndarray | np.uint64:
    """Inverse of :func:`cell_to_face_ij` for cells of one ``level``.

    Parameters
    ----------
    face, i, j : array_like of int
        Broadcast together; ``0 <= face <= 5`` and ``0 <= i, j < 2**level``.
    level : int

    Returns
    -------
    numpy.ndarray of uint64, the broadcast shape

    Raises
    ------
    InvalidTypeError
        ``face``, ``i`` or ``j`` not numbers (strings, booleans).
    InvalidInputError
        Values that are not whole numbers (``0.5``, NaN: never truncated).
    ValueError
        Values out of range.
    """
    level = _check_level(level)
    face, i, j = np.broadcast_arrays(*(_as_int64(a, name) for a, name in ((face, "face"), (i, "i"), (j, "j"))))
    n = 1 << level
    bad = (face < 0) | (face > 5) | (i < 0) | (i >= n) | (j < 0) | (j >= n)
    if bad.any():
        raise InvalidInputError(f"face must be 0-5 and i, j in [0, {n}) at level {level}; "
                         f"out of range at positions {_positions(bad.ravel())}")
    out = np.empty(face.size, dtype=np.uint64)
    _s2.face_ij_to_cell_kernel(np.ascontiguousarray(face).ravel(), np.ascontiguousarray(i).ravel(),
                               np.ascontiguousarray(j).ravel(), level, _s2.LOOKUP_POS, out)
    return _shape_out(out, face)


def _as_int64(a, name: str) -> np.ndarray:
    """``a`` as int64, refusing what is not a whole number (``1.7`` or NaN is not truncated, ``"1"`` not parsed)."""
    arr = np.asarray(a)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):  # bool is neither
        raise InvalidTypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise InvalidInputError(f"{name} must be whole numbers; not at positions {_positions(bad.ravel())}")
    with np.errstate(invalid="ignore"):  # 1e20 -> INT64_MIN, refused as out of range by the caller
        return arr.astype(np.int64)


def _rowcol_from_ij(face, i_rel, j_rel, n):
    swapped = face >= 3
    row = np.where(swapped, i_rel, n - 1 - j_rel)
    col = np.where(swapped, j_rel, i_rel)
    return row, col


def cell_to_rowcol(cells: ArrayLike, image_level: int) -> tuple[np.ndarray | np.int64, np.ndarray | np.int64]:
    """Row and column of each cell inside its ancestor at ``image_level``.

    The ancestor is an image of ``2**(level - image_level)`` cells per side; row 0 / col 0 is its top-left
    pixel (see the module docstring for the convention on each face). All cells must be at least as fine as
    ``image_level``; they may have different levels.

    Parameters
    ----------
    cells : array_like of uint64
    image_level : int

    Returns
    -------
    row, col : numpy.ndarray of int64
    """
    image_level = _check_level(image_level, "image_level")
    cells = _as_cells(cells)
    face, i, j = cell_to_face_ij(cells)
    levels = get_level(cells)
    gap = np.asarray(levels) - image_level
    if np.any(gap < 0):
        raise InvalidInputError(f"image_level {image_level} is finer than some cells "
                                f"(positions {_positions(np.ravel(gap < 0))})")
    n = np.left_shift(1, gap)
    row, col = _rowcol_from_ij(np.asarray(face), np.asarray(i) & (n - 1), np.asarray(j) & (n - 1), n)
    return _shape_out(np.asarray(row).ravel(), cells), _shape_out(np.asarray(col).ravel(), cells)


def rowcol_to_cell(image_cells: ArrayLike, row: ArrayLike, col: ArrayLike, level: int) -> np.ndarray | np.uint64:
    """Inverse of :func:`cell_to_rowcol`: the cell at ``(row, col)`` of each image.

    Parameters
    ----------
    image_cells : array_like of uint64
        Image cells (one level), broadcast against ``row`` and ``col``.
    row, col : array_like of int
        Pixel positions, ``0 <= row, col < 2**(level - image_level)``.
    level : int
        Level of the pixels (for S2Vec: image level + 4).

    Returns
    -------
    numpy.ndarray of uint64, the broadcast shape

    Raises
    ------
    InvalidTypeError
        ``row`` or ``col`` not numbers (strings, booleans).
    InvalidInputError
        ``row`` or ``col`` not whole numbers (``1.7``, NaN: never truncated).
    ValueError
        Image cells of several levels, ``level`` coarser than them, or positions out of range.
    """
    level = _check_level(level)
    image_cells = _as_cells(image_cells)
    image_cells, row, col = np.broadcast_arrays(image_cells, _as_int64(row, "row"), _as_int64(col, "col"))
    if image_cells.size == 0:
        return np.empty(image_cells.shape, dtype=np.uint64)
    face, i0, j0 = cell_to_face_ij(np.asarray(image_cells, order="C"))
    ilev = np.asarray(get_level(np.asarray(image_cells, order="C")))
    if (ilev != ilev.flat[0]).any():
        raise InvalidInputError("rowcol_to_cell needs image cells of one level")
    gap = level - int(ilev.flat[0])
    if gap < 0:
        raise InvalidInputError(f"level {level} is coarser than the image cells (level {int(ilev.flat[0])})")
    n = 1 << gap
    bad = (row < 0) | (row >= n) | (col < 0) | (col >= n)
    if bad.any():
        raise InvalidInputError(f"row and col must lie in [0, {n}); out of range at positions "
                                f"{_positions(bad.ravel())}")
    face = np.asarray(face)
    swapped = face >= 3
    i_rel = np.where(swapped, row, col)
    j_rel = np.where(swapped, col, n - 1 - row)
    return face_ij_to_cell(face, (np.asarray(i0) << gap) + i_rel, (np.asarray(j0) << gap) + j_rel, level)

