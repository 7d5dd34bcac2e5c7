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

__all__ = ["block_share", "seam_table"]


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
    ids = np.asarray(embeddings.index, dtype=np.uint64)
    if ids.size < 2:
        raise ValueError("block_share needs at least two cells")
    x = embeddings.to_numpy(np.float64)
    if not np.isfinite(x).all():
        raise ValueError("embeddings hold NaN or inf; drop those rows first")
    face, r, c, level = _face_rowcol(ids)
    if level < image_level:
        raise ValueError(f"cells of level {level} are coarser than image_level {image_level}")
    n = 1 << (level - image_level)
    key = pd.MultiIndex.from_arrays([face, (r + shift) // n, (c + shift) // n])
    group = pd.factorize(key)[0]
    centred = x - x.mean(axis=0)
    total = float((centred ** 2).sum())
    if total == 0:
        return 0.0
    means = pd.DataFrame(centred).groupby(group).transform("mean").to_numpy()
    return float((means ** 2).sum() / total)


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
        One row per embedding (index: its name); columns ``cells``, ``share_0``, then ``share_<s>`` and
        ``ratio_<s>`` for each shift (``inf`` where the shifted share is 0).
    """
    rows = {}
    for name, emb in embeddings.items():
        ids = np.asarray(emb.index, dtype=np.uint64)
        level = int(_cells.get_level(ids[:1])[0])
        n = 1 << (level - image_level)
        sh = (n // 2, n // 4) if shifts is None else tuple(shifts)
        row = {"cells": len(emb), "share_0": block_share(emb, image_level=image_level)}
        for s in sh:
            row[f"share_{s}"] = block_share(emb, image_level=image_level, shift=s)
            row[f"ratio_{s}"] = row["share_0"] / row[f"share_{s}"] if row[f"share_{s}"] > 0 else np.inf
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
