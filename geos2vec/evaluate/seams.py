"""Seams: how much of an embedding's variance a partition of the cells into blocks explains.

An embedding whose vectors jump at level-8 image borders carries the image as a region code. The measure:
group the cells into ``n x n`` blocks of the face grid (``n = 2**(level - image_level)``; offset 0 are the
level-8 images themselves), and take the share of the embedding's total variance (summed over dimensions)
that the block means explain, i.e. the R² of a block one-hot. The same partition shifted by ``n / 2`` cells is
the control: blocks of the same size whose borders are not image borders. A seamless embedding scores about
the same on both; a seamed one much more at offset 0. With a few images per city one shifted partition is a
noisy control, so :func:`seam_pvalue` compares the images with *every* offset of the blocks (``n x n`` of them):
the share of offsets that explain at least as much as the images, about ``1 / n**2`` for a seam that stands out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence

from .. import cells as _cells
from ..errors import InvalidInputError, InvalidTypeError

__all__ = ["block_share", "border_step", "seam_pvalue", "seam_table"]


def _face_rowcol(cells: np.ndarray):
    if not _cells.is_valid_cell(cells).all():
        raise InvalidInputError("the embeddings' index holds values that are not valid S2 cell ids")
    levels = np.unique(_cells.get_level(cells))
    if levels.size != 1:
        raise InvalidInputError(f"the embeddings' cells have levels {levels.tolist()}; the seam measures compare "
                                "cells of one level (select one, e.g. embeddings[get_level(index) == 12])")
    level = int(levels[0])
    face, i, j = _cells.cell_to_face_ij(cells)
    r, c = _cells._rowcol_from_ij(np.asarray(face), np.asarray(i), np.asarray(j), 1 << level)
    return np.asarray(face, np.int64), np.asarray(r, np.int64), np.asarray(c, np.int64), level


def _grid_values(embeddings: pd.DataFrame, image_level: int | None):
    """The checks and grid positions :func:`block_share` and :func:`border_step` share.

    Returns ``(x, face, row, col, level, n)``: the finite float64 vectors, each cell's face-grid position,
    the cells' level and the pixels per image side. ``image_level=None``: the cells' level - 4, S2Vec's 16 x 16
    images (level-8 blocks of level-14 cells were measured as if they were the images of a level-14 model).
    """
    if image_level is not None and (isinstance(image_level, (bool, np.bool_)) or not isinstance(
            image_level, (int, np.integer)) or not 0 <= image_level <= 30):
        raise InvalidInputError(f"image_level must be an S2 level, an int in 0-30 (8: the images), got {image_level!r}")
    try:
        x = embeddings.to_numpy(np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("embeddings must be numeric; drop or encode the non-numeric columns "
                                f"{[c for c, d in embeddings.dtypes.items() if d.kind not in 'biuf']}") from None
    if x.shape[0] == 0:
        raise InvalidInputError("embeddings is empty: no cells to compare")
    if not np.isfinite(x).all():
        raise InvalidInputError("embeddings hold NaN or inf; drop those rows first")
    ids = np.asarray(embeddings.index, dtype=np.uint64)
    if pd.api.types.is_integer_dtype(embeddings.index.dtype):  # one summation order whatever the rows' order
        order = np.argsort(ids, kind="stable")
        x, ids = x[order], ids[order]
    face, r, c, level = _face_rowcol(ids)
    image_level = max(level - 4, 0) if image_level is None else image_level
    if level < image_level:
        raise InvalidInputError(f"cells of level {level} are coarser than image_level {image_level}")
    return x, face, r, c, level, 1 << (level - image_level)


def _offsets(shift) -> tuple[int, int]:
    if isinstance(shift, (int, np.integer)):
        return int(shift), int(shift)
    try:
        dr, dc = (int(v) for v in shift)
    except (TypeError, ValueError):
        raise InvalidInputError(f"shift must be an int or a (row, col) pair of ints, got {shift!r}") from None
    return dr, dc


# total variance at most this share of the sum of squares is rounding noise: no variance (``x - x.mean()``
# of a constant column leaves about |x| * eps per value)
_NO_VARIANCE = (1024 * np.finfo(np.float64).eps) ** 2


def _checked(embeddings, image_level: int, caller: str):
    """:func:`_grid_values` of a cell-indexed frame of at least two cells, after every check."""
    if not isinstance(embeddings, pd.DataFrame):
        raise InvalidTypeError(f"{caller} needs a pandas DataFrame of embeddings indexed by cell id, got "
                               f"{type(embeddings).__name__}")
    if len(embeddings) < 2:
        raise InvalidInputError(f"{caller} needs at least two cells, got {len(embeddings)}")
    _one_row_per_cell(embeddings, caller)
    return _grid_values(embeddings, image_level)


def _one_row_per_cell(embeddings: pd.DataFrame, caller: str) -> None:
    if embeddings.index.has_duplicates:  # e.g. per-row embeddings: a cell's repeats would weigh it several times
        raise InvalidInputError(f"{caller} needs one row per cell; the index repeats "
                                f"{int(embeddings.index.duplicated().sum())} cell id(s). Keep one row per cell "
                                "(embeddings[~embeddings.index.duplicated()], or cell_embeddings)")


def _centred(embeddings: pd.DataFrame, image_level: int, caller: str):
    """``(centred vectors, total sum of squares, (face, row, col, n))``, after the checks.

    The total is 0.0 for embeddings without variance, within float rounding (:data:`_NO_VARIANCE`).
    """
    x, face, r, c, _, n = _checked(embeddings, image_level, caller)
    return (*_centre(x), (face, r, c, n))


def _centre(x: np.ndarray) -> tuple[np.ndarray, float]:
    """``(centred vectors, total sum of squares)`` of checked vectors ``x`` (see :func:`_centred`)."""
    centred = x - x.mean(axis=0)
    total = float((centred ** 2).sum())
    if total <= _NO_VARIANCE * float((x ** 2).sum()):
        total = 0.0
    return centred, total


def _between_share(centred: np.ndarray, total: float, face, r, c, n: int, shift) -> tuple[float, int]:
    """``(share, blocks)``: between-block sum of squares over ``total``, blocks ``((r + dr) // n, (c + dc) // n)``.

    Blocks are per face; ``blocks`` is how many hold a cell.
    """
    dr, dc = _offsets(shift)
    key = pd.MultiIndex.from_arrays([face, (r + dr) // n, (c + dc) // n])
    group = pd.factorize(key)[0]
    sums = np.zeros((int(group.max()) + 1, centred.shape[1]))
    np.add.at(sums, group, centred)
    counts = np.bincount(group).astype(np.float64)
    return float(((sums ** 2).sum(axis=1) / counts).sum() / total), counts.size


def block_share(embeddings: pd.DataFrame, *, image_level: int | None = None,
                shift: int | tuple[int, int] = 0) -> float:
    """Share of variance of ``embeddings`` (rows indexed by cell id, one level) explained by block means.

    Blocks are the level-``image_level`` images' pixel squares shifted by ``shift`` cells on the face grid
    (``shift=0``: the images themselves): the cell at face-grid row ``r``, column ``c`` falls in block
    ``((r + shift) // n, (c + shift) // n)`` of its face, so block borders lie at rows and columns
    ``k * n - shift``. A ``(row, col)`` pair shifts rows and columns by different amounts.

    Parameters
    ----------
    embeddings : pandas.DataFrame
        One row per cell (index: uint64 cell ids, all of one level),
        numeric and finite.
    image_level : int, optional
        Level of the images whose pixel squares are the blocks (at most the cells' level); default the cells'
        level - 4 (16 x 16 cells: 8 for level-12 cells, the bundled model's images).
    shift : int or (int, int)
        Offset of the blocks, in cells (the same on both axes, or ``(rows, columns)``).

    Returns
    -------
    float
        Between-block sum of squares over the total sum of squares (summed over dimensions), in [0, 1];
        0 for embeddings without variance (constant vectors, e.g. a collapsed model: a total sum of squares
        within float rounding of 0, at most ``(1024 eps)**2`` times the sum of squared values, counts as none).

    Raises
    ------
    ValueError
        Fewer than two cells, non-numeric columns, NaN or inf values, invalid cell ids, cells of several
        levels, cells coarser than ``image_level``, or ``image_level`` not an int in 0-30
        (:class:`geos2vec.errors.InvalidInputError`).
    TypeError
        ``embeddings`` not a DataFrame (:class:`geos2vec.errors.InvalidTypeError`).
    """
    return _block_share(*_centred(embeddings, image_level, "block_share"), shift)


def _block_share(centred: np.ndarray, total: float, grid: tuple, shift) -> float:
    """:func:`block_share` of :func:`_centred`'s output."""
    return 0.0 if total == 0 else _between_share(centred, total, *grid, shift)[0]


def seam_pvalue(embeddings: pd.DataFrame, *, image_level: int | None = None) -> float:
    """How unusual the level-``image_level`` images are among all block partitions of the same size.

    :func:`block_share` at every offset ``(dr, dc)`` with ``0 <= dr, dc < n`` (``n x n`` partitions into
    blocks the size of an image; ``(0, 0)`` are the images), each adjusted for its number of blocks ``g`` as
    an adjusted R² (``1 - (1 - share) * (cells - 1) / (cells - g)``: an offset that cuts the cells into more
    blocks explains more of pure noise, about ``(g - 1) / (cells - 1)``, and the images are often the offset
    with the fewest blocks); the result is the fraction of offsets whose adjusted share is at least the
    images' (``(0, 0)`` itself counted). Embeddings whose vectors jump at image borders give about
    ``1 / n**2`` (no other offset explains as much); seamless ones a fraction spread over ``(0, 1]``, whatever
    the geography. It is an empirical p-value of a permutation test over offsets, not over cells: the
    offsets' shares are correlated, so read it as a rank.

    Parameters
    ----------
    embeddings : pandas.DataFrame
        As for :func:`block_share`.
    image_level : int, optional
        Level of the images; default the cells' level - 4, as :func:`block_share`.

    Returns
    -------
    float
        In ``[1 / n**2, 1]``; 1.0 for embeddings without variance (as for :func:`block_share`).

    Raises
    ------
    ValueError
        As :func:`block_share`.
    """
    return _seam_pvalue(*_centred(embeddings, image_level, "seam_pvalue"))


def _seam_pvalue(centred: np.ndarray, total: float, grid: tuple) -> float:
    """:func:`seam_pvalue` of :func:`_centred`'s output."""
    if total == 0:
        return 1.0
    cells, n = len(centred), grid[-1]
    shares = []
    for dr in range(n):
        for dc in range(n):
            share, blocks = _between_share(centred, total, *grid, (dr, dc))
            shares.append(1 - (1 - share) * (cells - 1) / (cells - blocks) if cells > blocks else -np.inf)
    shares = np.asarray(shares)
    return float((shares >= shares[0] - 1e-12).mean())


def border_step(embeddings: pd.DataFrame, *, image_level: int | None = None) -> float:
    """How much more embeddings change across image borders than inside images, between adjacent cells.

    For every pair of cells of ``embeddings`` that are grid neighbours on their face (one row or one column
    apart), the squared Euclidean distance of their vectors; the ratio of its mean over pairs that lie in
    two different level-``image_level`` images to its mean over pairs inside one image. A seam (a jump at
    image borders) gives a ratio above 1; embeddings that vary as smoothly across borders as inside
    images give about 1. Unlike :func:`block_share` it compares neighbours only, so a city whose
    dense and sparse parts happen to fall in different images does not look like a seam.

    Parameters
    ----------
    embeddings : pandas.DataFrame
        One row per cell (index: uint64 cell ids, all of one level), numeric and finite.
    image_level : int, optional
        Level of the images (at most the cells' level); default the cells' level - 4, as :func:`block_share`.

    Returns
    -------
    float
        Mean squared step across image borders over the mean squared step inside images (``inf`` when the
        inside steps are all 0 and the border steps are not; ``nan`` when both are 0).

    Raises
    ------
    InvalidInputError
        As :func:`block_share`, or no pair of adjacent cells across a border
        or inside an image.
    InvalidTypeError
        ``embeddings`` not a DataFrame.
    """
    if not isinstance(embeddings, pd.DataFrame):
        raise InvalidTypeError(f"border_step needs a pandas DataFrame of embeddings indexed by cell id, got "
                               f"{type(embeddings).__name__}")
    _one_row_per_cell(embeddings, "border_step")
    return _border_step(*_grid_values(embeddings, image_level), image_level)


def _border_step(x, face, r, c, level: int, n: int, image_level: int) -> float:
    """:func:`border_step` of :func:`_grid_values`'s output."""
    image_level = level - (int(n).bit_length() - 1)  # the resolved level (None: the cells' level - 4)
    side = np.int64(1) << level
    key = (face * side + r) * side + c
    order = np.argsort(key)
    skey = key[order]
    steps, cross = [], []
    for dr, dc in ((0, 1), (1, 0)):
        r2, c2 = r + dr, c + dc
        inside_face = (r2 < side) & (c2 < side)
        k2 = (face * side + r2) * side + c2
        pos = np.searchsorted(skey, k2).clip(0, skey.size - 1)
        found = inside_face & (skey[pos] == k2)
        i, j = np.flatnonzero(found), order[pos[found]]
        steps.append(((x[i] - x[j]) ** 2).sum(axis=1))
        cross.append((r[i] // n != r2[i] // n) | (c[i] // n != c2[i] // n))
    steps, cross = np.concatenate(steps), np.concatenate(cross)
    if not cross.any() or cross.all():
        raise InvalidInputError(f"border_step needs adjacent cells both across level-{image_level} image borders "
                                f"and inside images; got {int(cross.sum())} across and {int((~cross).sum())} "
                                "inside")
    across, inside = float(steps[cross].mean()), float(steps[~cross].mean())
    if inside == 0:
        return float("nan") if across == 0 else float("inf")
    return across / inside


def seam_table(embeddings: dict[str, pd.DataFrame], *, image_level: int | None = None,
               shifts: Sequence[int] | None = None) -> pd.DataFrame:
    """:func:`block_share` of each named embedding at offset 0 and at the control offsets.

    ``shifts`` defaults to ``(n/2, n/4)``: half an image (the issue's control) and a quarter (block borders
    that are not borders of the ``"centred"`` windows' central squares either). Columns ``share_0``,
    ``share_<s>`` and ``ratio_<s>`` (offset-0 share over the shifted share).

    Parameters
    ----------
    embeddings : dict of str to pandas.DataFrame
        Named embeddings, each as for :func:`block_share`.
    image_level : int, optional
        Level of the images; default the cells' level - 4, as :func:`block_share`.
    shifts : sequence of int, optional
        The control offsets in cells; default ``(n // 2, n // 4)`` with ``n = 2**(level - image_level)``
        (per embedding, from the level of its first cell).

    Returns
    -------
    pandas.DataFrame
        One row per embedding (index: its name); columns ``cells``, ``share_0``, ``border_step``
        (:func:`border_step`; NaN without adjacent pairs on both sides), ``seam_p``
        (:func:`seam_pvalue`: the share of all ``n x n`` block offsets that explain at least as much as
        the images), then ``share_<s>`` and ``ratio_<s>`` for each shift (NaN where the shifted share is
        0: embeddings without variance, whose shares are all 0, have no ratio).

    Raises
    ------
    InvalidInputError, InvalidTypeError
        As :func:`block_share`, naming the embedding: fewer than two cells, NaN or inf values, invalid cell
        ids, cells of several levels or coarser than ``image_level``; ``embeddings`` not a dict of
        DataFrames.
    """
    from collections.abc import Mapping

    if not isinstance(embeddings, Mapping):
        raise InvalidTypeError(f"seam_table needs a dict of name to embedding DataFrame, got "
                               f"{type(embeddings).__name__}")
    rows = {}
    for name, emb in embeddings.items():
        try:
            values = _checked(emb, image_level, "seam_table")  # the checks and grid, once per embedding
        except (InvalidInputError, InvalidTypeError) as exc:
            raise type(exc)(f"embedding {name!r}: {exc}") from None
        x, face, r, c, _, n = values
        centred, total = _centre(x)
        grid = (face, r, c, n)
        if shifts is not None and not np.iterable(shifts):
            raise InvalidTypeError(f"shifts must be a sequence of ints (offsets in cells), got {shifts!r}; "
                                   f"write [{shifts!r}] for one")
        sh = (n // 2, n // 4) if shifts is None else tuple(shifts)
        row = {"cells": len(emb), "share_0": _block_share(centred, total, grid, 0)}
        try:
            row["border_step"] = _border_step(*values, image_level)
        except InvalidInputError:  # no adjacent pair across a border (or inside an image)
            row["border_step"] = np.nan
        row["seam_p"] = _seam_pvalue(centred, total, grid)
        for s in sh:
            row[f"share_{s}"] = _block_share(centred, total, grid, s)
            # no variance at the shift (embeddings without variance: 0 / 0) has no ratio
            row[f"ratio_{s}"] = row["share_0"] / row[f"share_{s}"] if row[f"share_{s}"] > 0 else np.nan
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
