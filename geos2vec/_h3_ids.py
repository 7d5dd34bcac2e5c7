"""H3 cell indexes given where S2 cell ids are wanted: both are 64-bit integers, and most H3 indexes are valid S2 ids.

An H3 cell index (``h3.str_to_int(h3.latlng_to_cell(...))``, DuckDB's and BigQuery's H3 functions) is laid out as
bit 63 = 0, mode 1 (cell) in bits 59-62, 0 in bits 56-58, the resolution ``r`` (0-15) in bits 52-55, the base
cell (0-121) in bits 45-51, then 15 digits of 3 bits: digits 1..r in 0-6, the unused ones all 7. Below resolution
15 its lowest bit is 1, which S2 reads as a leaf (level-30) cell on face 0: a point in the Atlantic far from where
the H3 cell is, and no error.

An S2 leaf has the same top byte only at points in one patch of face 0 (0-9.8° N, 22.6-45° W, open ocean), and
there its lower bits follow H3's layout only by chance: the resolution field matches (4 bits) and the unused
digits are all 7 (``3 * (15 - r) - 1`` bits beyond the leaf's own lowest bit). :func:`check_not_h3` raises when
that chance, over every distinct id given, is below 2**-20 (one id of resolution 0-9, or several ids), and warns
when the evidence is weaker (one id of resolution 10-14): refusing those could refuse a real leaf in that patch.
"""

from __future__ import annotations

import numpy as np

from .errors import Geos2VecWarning, InvalidInputError

_RAISE_BITS = 20  # chance below 2**-20 (~1e-6) that genuine S2 leaves in the patch look like this

HOW_TO_CONVERT = (
    "geos2vec works with S2 cell ids. Convert them through their centers, e.g. with h3-py: "
    "lat, lng = np.array([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in ids]).T, then "
    "geos2vec.latlng_to_cell(lat, lng, level=12) (S2 level 12, ~5 km², is about H3 resolution 7), or take "
    "their polygons from h3.cell_to_boundary")


def h3_resolutions(ids: np.ndarray) -> np.ndarray:
    """The H3 resolution (0-15) of each uint64 id laid out as an H3 cell index, -1 where it is not one."""
    ids = np.asarray(ids, dtype=np.uint64)
    res = ((ids >> np.uint64(52)) & np.uint64(15)).astype(np.int64)
    ok = ((ids >> np.uint64(56)) == 8) & (((ids >> np.uint64(45)) & np.uint64(127)) < 122)
    for k in range(1, 16):  # digit k: bits 3 * (15 - k) .. + 2
        digit = (ids >> np.uint64(3 * (15 - k))) & np.uint64(7)
        ok &= np.where(k <= res, digit != 7, digit == 7)
    return np.where(ok, res, -1)


def _describe(ids: np.ndarray, res: np.ndarray) -> str:
    first = int(ids[0])
    levels = np.unique(res)
    shown = f"resolution {levels[0]}" if levels.size == 1 else f"resolutions {levels.min()}-{levels.max()}"
    return f"H3 cell indexes ({shown}; e.g. {first} is H3 cell '{first:x}')"


def invalid_hint(bad: np.ndarray) -> str:
    """The H3 hint for an error about the invalid S2 ids ``bad``: ``""`` unless they all look like H3 cells.

    Raised anyway, so any resolution counts (15 too), with no chance to weigh.
    """
    res = h3_resolutions(bad)
    if bad.size == 0 or (res < 0).any():
        return ""
    return f"; they look like {_describe(bad, res)}. {HOW_TO_CONVERT}"


def check_not_h3(ids: np.ndarray) -> None:
    """Raise (or warn, on weak evidence) when every one of the valid S2 ids ``ids`` looks like an H3 cell index."""
    flat = ids.ravel()
    if flat.size == 0 or int(flat[0]) >> 56 != 8 or not int(flat[0]) & 1:  # the usual case: one comparison
        return
    uniq = np.unique(flat)
    res = h3_resolutions(uniq)
    if ((res < 0) | (res > 14)).any():  # resolution 15: an H3 cell whose last digit is 0-6, not always a leaf
        return
    bits = 4 + int(np.sum(3 * (15 - res) - 1))
    message = (f"these cell ids look like {_describe(uniq, res)}, not S2 cell ids: as S2 ids they are "
               f"level-30 cells in the Atlantic (0-10° N, 23-45° W). {HOW_TO_CONVERT}")
    if bits >= _RAISE_BITS:
        raise InvalidInputError(message)
    from ._stacklevel import warn

    warn(message + " (a warning, not an error: so few ids could also be S2 leaves there)", Geos2VecWarning)


def check_tokens_not_h3(tokens) -> None:
    """Raise when every one of the S2 tokens ``tokens`` (hex strings) looks like an H3 cell index's string.

    H3's strings are 15 hex digits (``'892a1072d6bffff'``); as an S2 token such a string is a level-27/28 cell
    on face 4 (0-45° N, 45-135° W), with no error. Only strong evidence raises (as for ids), and weak evidence does not
    warn: a 15-digit S2 token is a cell of a few centimetres, real in data of that kind.
    """
    if not len(tokens) or any(not isinstance(t, str) or len(t) != 15 or t[0] != "8" for t in tokens):
        return
    uniq = sorted(set(tokens))
    res = h3_resolutions(np.array([int(t, 16) for t in uniq], dtype=np.uint64))
    if ((res < 0) | (res > 14)).any() or 4 + int(np.sum(3 * (15 - res) - 1)) < _RAISE_BITS:
        return
    levels = np.unique(res)
    shown = f"resolution {levels[0]}" if levels.size == 1 else f"resolutions {levels.min()}-{levels.max()}"
    raise InvalidInputError(
        f"these tokens look like H3 cell indexes ({shown}; e.g. {uniq[0]!r}), not S2 tokens: as S2 tokens they are "
        "cells of a few centimetres somewhere in 0-45° N, 45-135° W. geos2vec works with S2 cells. Convert "
        "them through their centers, e.g. with h3-py: lat, lng = np.array([h3.cell_to_latlng(t) for t in tokens]).T, "
        "then geos2vec.latlng_to_cell(lat, lng, level=12)")
