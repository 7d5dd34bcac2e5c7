"""The core of :mod:`geos2vec.cells`: ids, tokens, hierarchy, lat/lng and boundaries, and input checks.

Private: import from :mod:`geos2vec.cells`, which also re-exports the neighbour, polygon and row/column
functions. Those live in their own modules and build on this one, which imports none of them (no cycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

from .errors import InvalidInputError, InvalidTypeError
from ._numba_cache import ensure_once as _ensure_numba_cache

_ensure_numba_cache()  # before any @njit(cache=True): read-only installs use a temporary folder

from . import _h3_ids, _s2  # noqa: E402 - after the numba cache set-up

# the public names, and their list (__all__), are in geos2vec.cells

MAX_LEVEL = _s2.MAX_LEVEL
_MAX_REPORTED = 10
_HEX = frozenset("0123456789abcdefABCDEF")


# --------------------------------------------------------------------------- validation
def _positions(mask: np.ndarray) -> str:
    """Human-readable list of the first offending positions of a boolean mask."""
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:_MAX_REPORTED])
    more = f" and {idx.size - _MAX_REPORTED} more" if idx.size > _MAX_REPORTED else ""
    return f"[{shown}{more}]"


def _check_level(level, name: str = "level") -> int:
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, np.integer)):
        raise InvalidTypeError(f"{name} must be an integer between 0 and {MAX_LEVEL}, got {level!r}")
    level = int(level)
    if not 0 <= level <= MAX_LEVEL:
        raise InvalidInputError(f"{name} must be between 0 and {MAX_LEVEL}, got {level}")
    return level


def _as_float(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidTypeError(f"{name} must be numeric (degrees), got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise InvalidTypeError(f"{name} must be real-valued degrees, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64, order="C")


def check_latlng(lat, lng) -> tuple[np.ndarray, np.ndarray]:
    """Validate latitude/longitude arrays in degrees and return them as float64.

    Parameters
    ----------
    lat, lng : array_like
        Degrees (WGS84), same shape.

    Returns
    -------
    lat, lng : numpy.ndarray of float64

    Raises
    ------
    TypeError
        If either input is not numeric.
    ValueError
        If the shapes differ, a value is NaN or infinite, a latitude lies outside [-90, 90] or a longitude
        outside [-180, 180]. The message names the offending positions.
    """
    lat = _as_float(lat, "lat")
    lng = _as_float(lng, "lng")
    if lat.shape != lng.shape:
        raise InvalidInputError(f"lat and lng must have the same shape, got {lat.shape} and {lng.shape}")
    flat_lat, flat_lng = lat.ravel(), lng.ravel()
    bad = ~(np.isfinite(flat_lat) & np.isfinite(flat_lng))
    if bad.any():
        raise InvalidInputError(
            f"{int(bad.sum())} coordinate(s) are NaN or infinite at positions {_positions(bad)}; "
            "drop or fill them before assigning cells"
        )
    bad = np.abs(flat_lat) > 90.0
    if bad.any():
        raise InvalidInputError(
            f"{int(bad.sum())} latitude(s) outside [-90, 90] at positions {_positions(bad)}; "
            "are latitude and longitude swapped, or is the data projected (not degrees)?"
        )
    bad = np.abs(flat_lng) > 180.0
    if bad.any():
        raise InvalidInputError(
            f"{int(bad.sum())} longitude(s) outside [-180, 180] at positions {_positions(bad)}; "
            "wrap them with ((lng + 180) % 360) - 180, or check that the data is not projected"
        )
    return lat, lng


def _missing(flat: np.ndarray) -> np.ndarray:
    """Where a flat object array holds None, NaN or ``pd.NA``."""
    import pandas as pd

    return np.asarray(pd.isna(flat), dtype=bool)


def _refuse_missing(missing: np.ndarray) -> None:
    if missing.any():
        raise InvalidInputError(
            f"{int(missing.sum())} cell id(s) are missing (None/NaN/<NA>) at positions {_positions(missing)}; "
            "drop them first (e.g. series.dropna())"
        )


def _decimal_text_hint(flat) -> str:
    """A hint for ids written as decimal text ("9278181935585165312", e.g. an index read from CSV as strings).

    More than 16 digits: no token is that long (at most 16 hex digits).
    """
    digits = [v.strip().lstrip("-") if isinstance(v, str) else "" for v in flat]
    if len(flat) and all(d.isdigit() and len(d) > 16 for d in digits):
        return ("; these strings are decimal numbers, not tokens: convert them exactly with "
                "np.asarray(ids).astype(np.uint64) (an index: index.astype('uint64'); 'int64' for signed ones)")
    return ""


def _as_cells(cells, *, validate: bool = True) -> np.ndarray:
    if "pandas" in type(cells).__module__ and hasattr(cells, "columns"):  # its values (counts) were read as cell ids
        raise InvalidTypeError(
            f"cell ids must be an array, Series or Index of ids, got a DataFrame (columns {list(cells.columns)[:5]}"
            f"{' ...' if cells.shape[1] > 5 else ''}); pass its cell ids (df.index or df['cell_id']); a function that "
            "takes a feature table too takes it after them: embed_cells(cell_ids, features)")
    if "pandas" in type(cells).__module__ and hasattr(cells, "isna"):
        # nullable UInt64/Int64 columns: np.asarray turns <NA> into a float NaN (and the ids into floats)
        _refuse_missing(np.asarray(cells.isna(), dtype=bool).ravel())
    arr = np.asarray(cells)
    if isinstance(cells, (list, tuple)) and arr.dtype.kind == "f":  # ints of both signs in one list: NumPy floats
        ints = np.asarray(cells, dtype=object)
        if ints.size and all(isinstance(v, int) and not isinstance(v, bool) for v in ints.ravel()):
            arr = ints
    if arr.size == 0 and arr.dtype.kind in "fO":  # [] is float64 to NumPy: no value to lose
        arr = arr.astype(np.uint64)
    if arr.dtype == object:
        flat = arr.ravel()
        _refuse_missing(_missing(flat))
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in flat):
            raise InvalidTypeError("cell ids must be integers (uint64), got an object array with other values "
                                   "(floats cannot hold 64-bit ids exactly); use token_to_cell for tokens"
                                   + _decimal_text_hint(flat))
        values = [int(v) for v in flat]  # each on its own: uint64, or int64 storage of the same bits (negative)
        if any(not -(1 << 63) <= v < (1 << 64) for v in values):
            raise InvalidInputError("cell ids must fit in 64 bits (uint64, or int64 storage of the same "
                                    "bits); some are larger or too negative")
        arr = np.array([v & 0xFFFFFFFFFFFFFFFF for v in values], dtype=np.uint64).reshape(arr.shape)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InvalidTypeError(
            f"cell ids must be an integer array (uint64), got dtype {arr.dtype}; "
            "floats cannot hold 64-bit ids exactly, and strings are tokens (see token_to_cell)"
            + (_decimal_text_hint(arr.ravel()) if arr.dtype.kind == "U" else "")
        )
    if arr.dtype != np.uint64:
        if arr.dtype.itemsize == 8:
            arr = arr.view(np.uint64)  # signed 64-bit storage of the same bits
        else:
            if (arr < 0).any():
                raise InvalidInputError("cell ids cannot be negative unless stored as 64-bit integers")
            arr = arr.astype(np.uint64)
    arr = np.asarray(arr, order="C")
    if validate and arr.size:
        ok = np.empty(arr.size, dtype=np.bool_)
        _s2.is_valid_kernel(arr.ravel(), ok)
        if not ok.all():
            raise InvalidInputError(f"invalid S2 cell id(s) at positions {_positions(~ok)}"
                                    f"{_h3_ids.invalid_hint(arr.ravel()[~ok])}")
        _h3_ids.check_not_h3(arr)  # H3 indexes read as S2 leaves in the Atlantic
    return arr


def _cell_id_index(index, context: str):
    """A table's index as a uint64 ``cell_id`` index, or the error of :func:`_as_cells` after ``context``.

    ``context`` says whose ids they are (e.g. ``"table.parquet: its cell_id values are not S2 cell ids"``). A
    plain ``astype(uint64)`` turned NaN into 9223372036854775808 and -5 into 18446744073709551611, ids of no cell
    the table meant.
    """
    import pandas as pd

    if isinstance(index, pd.MultiIndex):  # its tuples were "an object array with other values"
        raise InvalidTypeError(f"{context}: got a MultiIndex {list(index.names)}; keep the cell id level alone "
                               "(.droplevel(...))")
    try:
        ids = _as_cells(np.asarray(index))
    except (InvalidInputError, InvalidTypeError) as exc:
        raise type(exc)(f"{context}: {exc}") from None
    return pd.Index(ids, name="cell_id")


def _shape_out(result: np.ndarray, like: np.ndarray):
    """Return a scalar for 0-d input, else an array of the input's shape."""
    result = result.reshape(like.shape + result.shape[1:])
    if like.ndim == 0 and result.ndim == 0:
        return result[()]
    return result


# --------------------------------------------------------------------------- public API
def latlng_to_cell(lat: ArrayLike, lng: ArrayLike, level: int = 12) -> np.ndarray | np.uint64:
    """Cell ids at ``level`` containing the given points.

    Parameters
    ----------
    lat, lng : array_like
        Latitude and longitude in degrees (WGS84), same shape.
    level : int, default 12
        S2 level, 0 (faces) to 30 (leaves, about 1 cm).

    Returns
    -------
    numpy.ndarray of uint64
        Same shape as the input (a ``numpy.uint64`` for scalar input).

    Raises
    ------
    ValueError
        NaN/inf coordinates, latitudes beyond ±90 or longitudes beyond ±180
        (positions are named), or a level outside 0-30.

    Examples
    --------
    >>> from geos2vec.cells import latlng_to_cell, cell_to_token
    >>> cell_to_token(latlng_to_cell(40.7484, -73.9857, 12))
    '89c259b'
    """
    level = _check_level(level)
    lat, lng = check_latlng(lat, lng)
    out = np.empty(lat.size, dtype=np.uint64)
    _s2.latlng_to_cell_kernel(lat.ravel(), lng.ravel(), level, _s2.LOOKUP_POS, out)
    return _shape_out(out, lat)


def cell_to_latlng(cells: ArrayLike) -> tuple[np.ndarray | np.float64, np.ndarray | np.float64]:
    """Centers of cells as ``(lat, lng)`` in degrees (S2CellId::ToLatLng).

    Parameters
    ----------
    cells : array_like of uint64

    Returns
    -------
    lat, lng : numpy.ndarray of float64, the shape of ``cells``
    """
    cells = _as_cells(cells)
    flat = cells.ravel()
    lat = np.empty(flat.size)
    lng = np.empty(flat.size)
    _s2.center_kernel(flat, _s2.LOOKUP_IJ, lat, lng)
    return _shape_out(lat, cells), _shape_out(lng, cells)


def cell_to_boundary(cells: ArrayLike) -> np.ndarray:
    """Cell vertices as an array of shape ``cells.shape + (4, 2)`` holding (lat, lng).

    Vertices are in S2's counter-clockwise order (S2Cell::GetVertex, k = 0..3): for faces 0-2 lower-left,
    lower-right, upper-right, upper-left in (u, v). Edges are geodesics on the sphere; the straight lines
    between the vertices in degrees differ from them by under a metre at level 12 below about 80° latitude
    (up to ~60 m next to the poles; :func:`~geos2vec.cells.cell_polygons` densifies such edges).

    Parameters
    ----------
    cells : array_like of uint64

    Returns
    -------
    numpy.ndarray of float64, shape ``cells.shape + (4, 2)``
    """
    cells = _as_cells(cells)
    flat = cells.ravel()
    lat = np.empty((flat.size, 4))
    lng = np.empty((flat.size, 4))
    _s2.vertices_kernel(flat, _s2.LOOKUP_IJ, lat, lng)
    return np.stack([lat, lng], axis=-1).reshape(cells.shape + (4, 2))


def _xyz(lat, lng):
    la, lo = np.radians(lat), np.radians(lng)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _latlng(xyz):
    """Latitude and longitude in degrees of points ``xyz`` (any length), exact near the poles too.

    ``arcsin(z)`` loses about half the digits where ``|z|`` is near 1 (a point a metre from a pole reads as
    the pole); ``arctan2(z, hypot(x, y))`` does not.
    """
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))


def cell_to_parent(cells: ArrayLike, level: int) -> np.ndarray | np.uint64:
    """Ancestors of ``cells`` at ``level`` (which must not be finer than any cell).

    Parameters
    ----------
    cells : array_like of uint64
    level : int

    Returns
    -------
    numpy.ndarray of uint64, the shape of ``cells``
    """
    level = _check_level(level)
    cells = _as_cells(cells)
    flat = cells.ravel()
    if flat.size:
        levels = np.empty(flat.size, dtype=np.int64)
        _s2.level_kernel(flat, levels)
        bad = levels < level
        if bad.any():
            raise InvalidInputError(
                f"level {level} is finer than the cells at positions {_positions(bad)} "
                f"(their level: {int(levels[bad][0])}); a parent must be coarser"
            )
    out = np.empty(flat.size, dtype=np.uint64)
    _s2.parent_kernel(flat, level, out)
    return _shape_out(out, cells)


def cell_to_children(cells: ArrayLike, level: int) -> np.ndarray:
    """Descendants of each cell at ``level``, in S2 (Hilbert) order.

    Parameters
    ----------
    cells : array_like of uint64
    level : int
        At most 12 levels finer than the cells.

    Returns
    -------
    numpy.ndarray of uint64, shape ``cells.shape + (4 ** (level - cell_level),)``
        All input cells must share one level.
    """
    level = _check_level(level)
    cells = np.asarray(_as_cells(cells))
    flat = cells.ravel()
    if flat.size == 0:
        return np.empty(cells.shape + (0,), dtype=np.uint64)
    levels = get_level(flat)
    if (levels != levels[0]).any():
        raise InvalidInputError("cell_to_children needs cells of one level; group them by get_level first")
    gap = level - int(levels[0])
    if gap < 0:
        raise InvalidInputError(f"level {level} is coarser than the cells (level {int(levels[0])})")
    if gap > 12:
        raise InvalidInputError(f"{4 ** gap} children per cell is too many; ask for at most 12 levels down")
    out = np.empty((flat.size, 4**gap), dtype=np.uint64)
    _s2.children_kernel(flat, level, out)
    return out.reshape(cells.shape + (4**gap,))


def get_level(cells: ArrayLike) -> np.ndarray | np.int64:
    """Level (0-30) of each cell, as int64.

    Parameters
    ----------
    cells : array_like of uint64

    Returns
    -------
    numpy.ndarray of int64, the shape of ``cells``
    """
    cells = _as_cells(cells)
    out = np.empty(cells.size, dtype=np.int64)
    _s2.level_kernel(cells.ravel(), out)
    return _shape_out(out, cells)


def is_valid_cell(cells: ArrayLike) -> np.ndarray | np.bool_:
    """Whether each value is a valid S2 cell id (never raises for 64-bit integer input).

    Parameters
    ----------
    cells : array_like of int

    Returns
    -------
    numpy.ndarray of bool, the shape of ``cells``
    """
    cells = _as_cells(cells, validate=False)
    out = np.empty(cells.size, dtype=np.bool_)
    _s2.is_valid_kernel(cells.ravel(), out)
    return _shape_out(out, cells)


def cell_to_token(cells: ArrayLike) -> np.ndarray | str:
    """Compact hex tokens (S2CellId::ToToken), as an object array of str.

    Parameters
    ----------
    cells : array_like of uint64

    Returns
    -------
    numpy.ndarray of object (str), the shape of ``cells``
    """
    cells = _as_cells(cells)
    out = np.array([format(int(c), "016x").rstrip("0") or "X" for c in cells.ravel()], dtype=object)
    return _shape_out(out, cells)


def token_to_cell(tokens: str | ArrayLike) -> np.ndarray | np.uint64:
    """Cell ids from hex tokens (S2CellId::FromToken); invalid tokens raise ValueError.

    Parameters
    ----------
    tokens : str or array_like of str

    Returns
    -------
    numpy.ndarray of uint64, the shape of ``tokens``
    """
    arr = np.asarray(tokens, dtype=object)
    flat = arr.ravel()
    out = np.empty(flat.size, dtype=np.uint64)
    bad = np.zeros(flat.size, dtype=bool)
    for n, tok in enumerate(flat):
        # only hex digits, as S2CellId::FromToken: int(..., 16) also took "0x", "_", "+" and spaces, each
        # shifting the digits after it by 4 bits (another cell, silently)
        if not isinstance(tok, str) or not 1 <= len(tok) <= 16 or not _HEX.issuperset(tok):
            bad[n] = True
            continue
        out[n] = int(tok.ljust(16, "0"), 16)
    if bad.any():
        raise InvalidInputError(
            f"not S2 tokens (1-16 hex digits, no '0x' prefix, sign or spaces) at positions {_positions(bad)}, "
            f"e.g. {flat[np.flatnonzero(bad)[0]]!r}; strip spaces (.str.strip()) and drop missing tokens first"
        )
    _h3_ids.check_tokens_not_h3(flat)  # H3's strings read as S2 tokens of other cells
    _as_cells(out)  # raises on tokens that decode to invalid ids
    return _shape_out(out, arr)
