"""S2 cells: vectorized, bit-exact with the S2 reference.

Functions are named like h3-py's so that users of one know the other. Every function takes and returns NumPy
arrays (any shape; scalars give scalars) and runs a numba kernel underneath, with no Python loop per element,
except the token conversions (``cell_to_token``, ``token_to_cell``: a Python loop over the strings) and
``cell_polygons`` (shapely geometries).
Cell ids are ``uint64``; signed 64-bit input (as stored by databases without unsigned integers) is
reinterpreted bit for bit.

Coordinates are degrees on WGS84 (EPSG:4326), latitude first, like h3-py.

Image rows and columns
----------------------
S2Vec rasterizes the children of a coarse "image" cell as a square grid, row by row from the top-left to the
bottom-right. S2 faces are rotated against each other, so :func:`cell_to_rowcol` fixes one convention in each
face's own (i, j) frame:

* faces 0, 1, 2 (S2 does not swap axes on them): ``col = i`` and ``row = n - 1 - j`` (``n`` cells per side),
* faces 3, 4, 5 (S2 swaps i and j): ``col = j`` and ``row = i``.

On the four equatorial faces (0, 1, 3, 4) this is north up and east to the right, as on a map. On the polar
faces 2 and 5 there is no north; the frame there is the continuation of the face's own axes. See
``docs/cells.md``.
"""

from __future__ import annotations

from ._cells_core import (  # noqa: F401 - private helpers used across the package
    MAX_LEVEL,
    _as_cells,
    _check_level,
    _latlng,
    _positions,
    _shape_out,
    _xyz,
    cell_to_boundary,
    cell_to_children,
    cell_to_latlng,
    cell_to_parent,
    cell_to_token,
    check_latlng,
    get_level,
    is_valid_cell,
    latlng_to_cell,
    token_to_cell,
)
from .cell_neighbours import _EDGE_NBR, grid_disk  # noqa: F401
from .cell_polygons import cell_polygons
from .cell_rowcol import _rowcol_from_ij, cell_to_face_ij, cell_to_rowcol, face_ij_to_cell, rowcol_to_cell  # noqa: F401

__all__ = [
    "MAX_LEVEL",
    "latlng_to_cell",
    "cell_to_latlng",
    "cell_to_boundary",
    "cell_polygons",
    "cell_to_parent",
    "cell_to_children",
    "get_level",
    "is_valid_cell",
    "cell_to_token",
    "token_to_cell",
    "cell_to_face_ij",
    "face_ij_to_cell",
    "cell_to_rowcol",
    "rowcol_to_cell",
    "grid_disk",
]
