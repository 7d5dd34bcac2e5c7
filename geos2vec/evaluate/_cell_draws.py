"""Draws of whole cells where samples share cells (``pooling=``: rows of one cell, tracts of one heaviest cell).

Rows of one cell have (nearly) the same vector in every method: drawn one by one, a cell's rows were trained on
and tested (random splits) or trained on and validated on (the validation draw of ``region`` and ``holdout``
splits: the ridge penalty and the MLP's settings were then chosen on cells seen in training, so memorising
ones won). One sample per cell gives exactly the draws of before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidInputError


def random_cell_splits(cells, n_splits, seed):
    """:func:`~geos2vec.evaluate.splits.random_splits` of the samples' cells: a cell's samples go to one part."""
    from .splits import random_splits

    codes, uniq = pd.factorize(np.asarray(cells))  # cells numbered in sample order: all distinct, codes = range(n)
    splits = random_splits(len(uniq), n_splits, seed=seed)
    return splits if len(uniq) == len(codes) else [tuple(np.flatnonzero(np.isin(codes, p)) for p in s) for s in splits]


def cell_codes(rest: np.ndarray, cells, n: int) -> np.ndarray | None:
    """The cell number (0, 1, ... in sample order) of each sample of ``rest``; None where each has a cell of its own."""
    if cells is None:
        return None
    cells = np.asarray(cells)
    if cells.shape != (n,):
        raise InvalidInputError(f"cells must hold one cell per sample ({n}), got shape {cells.shape}")
    codes, uniq = pd.factorize(cells[rest])
    return None if len(uniq) == len(rest) else codes


def draw_validation(rng: np.random.Generator, rest: np.ndarray, n_val: int, codes: np.ndarray | None):
    """``(train, val)`` of the samples ``rest``: ``n_val`` samples (``codes`` None) or ``n_val`` whole cells."""
    if codes is None:
        perm = rng.permutation(rest)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    in_val = np.isin(codes, rng.permutation(int(codes.max()) + 1)[:n_val])
    return rest[~in_val], rest[in_val]
