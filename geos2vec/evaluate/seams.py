"""Seams: how much of an embedding's variance a partition of the cells into blocks explains.

An embedding whose vectors jump at level-8 image borders carries the image as a region code. The measure:
group the cells into ``n x n`` blocks of the face grid (``n = 2**(level - image_level)``; offset 0 are the
level-8 images themselves), and take the share of the embedding's total variance (summed over dimensions)
that the block means explain, i.e. the R² of a block one-hot. The same partition shifted by ``n / 2`` cells is
the control: blocks of the same size whose borders are not image borders. A seamless embedding scores about
the same on both; a seamed one much more at offset 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence

from .. import cells as _cells
from ..errors import InvalidInputError

__all__ = ["block_share", "border_step", "seam_table"]


def _face_rowcol(cells: np.ndarray):
    if not _cells.is_valid_cell(cells).all():
        raise InvalidInputError("the embeddings' index holds values that are not valid S2 cell ids")
    levels = np.unique(_cells.get_level(cells))
    if levels.size != 1:
        raise InvalidInputError(f"the embeddings' cells have levels {levels.tolist()}; block_share compares cells "
                                "of one level (select one, e.g. embeddings[get_level(index) == 12])")
    level = int(levels[0])
    face, i, j = _cells.cell_to_face_ij(cells)
    r, c = _cells._rowcol_from_ij(np.asarray(face), np.asarray(i), np.asarray(j), 1 << level)
    return np.asarray(face, np.int64), np.asarray(r, np.int64), np.asarray(c, np.int64), level


def _grid_values(embeddings: pd.DataFrame, image_level: int):
    """The checks and grid positions :func:`block_share` and :func:`border_step` share.

    Returns ``(x, face, row, col, level, n)``: the finite float64 vectors, each cell's face-grid position,
    the cells' level and the pixels per image side.
    """
    x = embeddings.to_numpy(np.float64)
    if not np.isfinite(x).all():
        raise InvalidInputError("embeddings hold NaN or inf; drop those rows first")
    face, r, c, level = _face_rowcol(np.asarray(embeddings.index, dtype=np.uint64))
    if level < image_level:
        raise InvalidInputError(f"cells of level {level} are coarser than image_level {image_level}")
    return x, face, r, c, level, 1 << (level - image_level)


def block_share(embeddings: pd.DataFrame, *, image_level: int = 8, shift: int = 0) -> float:
    """Share of variance of ``embeddings`` (rows indexed by cell id, one level) explained by block means.

    Blocks are the level-``image_level`` images' pixel squares shifted by ``shift`` cells on the face grid
    (``shift=0``: the images themselves): the cell at face-grid row ``r``, column ``c`` falls in block
    ``((r + shift) // n, (c + shift) // n)`` of its face, so block borders lie at rows and columns
    ``k * n - shift``.

    Parameters
    ----------
    embeddings : pandas.DataFrame
        One row per cell (index: uint64 cell ids, all of one level),
        numeric and finite.
    image_level : int
        Level of the images whose pixel squares are the blocks (at most the cells' level).
    shift : int
        Offset of the blocks, in cells.

    Returns
    -------
    float
        Between-block sum of squares over the total sum of squares (summed over dimensions), in [0, 1];
        0 for embeddings without variance.

    Raises
    ------
    ValueError
        Fewer than two cells, NaN or inf values, invalid cell ids, cells of several levels, or cells
        coarser than ``image_level`` (:class:`geos2vec.errors.InvalidInputError`).
    """
    if len(embeddings) < 2:
        raise ValueError("block_share needs at least two cells")
    x, face, r, c, level, n = _grid_values(embeddings, image_level)
    key = pd.MultiIndex.from_arrays([face, (r + shift) // n, (c + shift) // n])
    group = pd.factorize(key)[0]
    centred = x - x.mean(axis=0)
    total = float((centred ** 2).sum())
    if total == 0:
        return 0.0
    means = pd.DataFrame(centred).groupby(group).transform("mean").to_numpy()
    return float((means ** 2).sum() / total)


def border_step(embeddings: pd.DataFrame, *, image_level: int = 8) -> float:
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
    image_level : int
        Level of the images (at most the cells' level).

    Returns
    -------
    float
        Mean squared step across image borders over the mean squared step inside images (``inf`` when the
        inside steps are all 0 and the border steps are not; ``nan`` when both are 0).

    Raises
    ------
    InvalidInputError
        NaN or inf values, invalid cell ids, cells of several levels or coarser than ``image_level``, or
        no pair of adjacent cells across a border or inside an image.
    """
    x, face, r, c, level, n = _grid_values(embeddings, image_level)
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


def seam_table(embeddings: dict[str, pd.DataFrame], *, image_level: int = 8,
               shifts: Sequence[int] | None = None) -> pd.DataFrame:
    """:func:`block_share` of each named embedding at offset 0 and at the control offsets.

    ``shifts`` defaults to ``(n/2, n/4)``: half an image (the issue's control) and a quarter (block borders
    that are not borders of the ``"centred"`` windows' central squares either). Columns ``share_0``,
    ``share_<s>`` and ``ratio_<s>`` (offset-0 share over the shifted share).

    Parameters
    ----------
    embeddings : dict of str to pandas.DataFrame
        Named embeddings, each as for :func:`block_share`.
    image_level : int
        Level of the images.
    shifts : sequence of int, optional
        The control offsets in cells; default ``(n // 2, n // 4)`` with ``n = 2**(level - image_level)``
        (per embedding, from the level of its first cell).

    Returns
    -------
    pandas.DataFrame
        One row per embedding (index: its name); columns ``cells``, ``share_0``, ``border_step``
        (:func:`border_step`; NaN without adjacent pairs on both sides), then ``share_<s>`` and
        ``ratio_<s>`` for each shift (``inf`` where the shifted share is 0).
    """
    rows = {}
    for name, emb in embeddings.items():
        ids = np.asarray(emb.index, dtype=np.uint64)
        level = int(_cells.get_level(ids[:1])[0])
        n = 1 << (level - image_level)
        sh = (n // 2, n // 4) if shifts is None else tuple(shifts)
        row = {"cells": len(emb), "share_0": block_share(emb, image_level=image_level)}
        try:
            row["border_step"] = border_step(emb, image_level=image_level)
        except InvalidInputError:  # no adjacent pair across a border (or inside an image)
            row["border_step"] = np.nan
        for s in sh:
            row[f"share_{s}"] = block_share(emb, image_level=image_level, shift=s)
            row[f"ratio_{s}"] = row["share_0"] / row[f"share_{s}"] if row[f"share_{s}"] > 0 else np.inf
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
