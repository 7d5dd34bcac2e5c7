"""What the probes see: a :class:`Method`'s tables, pooled to the samples and prepared per split.

A method's tables ("blocks") are pooled to the samples (a weighted mean over each sample's cells), then, per
split, standardized on the training samples (clipped at ±4 SD) and transformed (PCA fitted on the training
samples, or a seeded random projection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._reprs import method_repr
from ..errors import InvalidInputError, InvalidTypeError, foreign_frame
from ._columns import canonical_order
from .baselines import _check_table
from .probes import standardize

__all__ = ["Method"]


@dataclass
class Method:
    """A method to evaluate: cell-indexed tables (blocks) and what is fitted on them per split.

    Parameters
    ----------
    blocks : list of DataFrame
        Indexed by uint64 ``cell_id``, float columns. Several blocks are concatenated (ridge) or fused
        (MLP, ``fusion=``).
    transform : {None, "pca", "random projection"}
        ``"pca"``: PCA of the standardized blocks fitted on the training samples of each split,
        ``n_components`` kept. ``"random projection"``: a seeded Gaussian projection to ``n_components``.
    n_components : int, default 256
        Components kept by ``transform``.
    scale : list of bool, optional
        Per block: standardize (and clip) it (default), or only centre it (one-hot blocks).
    seed : int, default 0
        Seed of the random projection (the fifth positional argument, after ``scale``).
    """

    blocks: list
    transform: str | None = None
    n_components: int = 256
    scale: list | None = None
    seed: int = 0
    __repr__ = method_repr  # blocks by shape: the dataclass repr printed whole DataFrames

    def __post_init__(self):
        if not isinstance(self.blocks, (pd.DataFrame, list, tuple)) and not foreign_frame(self.blocks):
            # a model, an array, a path: "'S2VecModel' object is not iterable" (list(...)) or its rows as tables
            raise InvalidTypeError(
                f"a method is a DataFrame indexed by cell_id (e.g. cell_embeddings(features, model=...)), a list of "
                f"them or a Method; got {type(self.blocks).__name__}"
                + (" (series.to_frame() makes it a one-column DataFrame)" * isinstance(self.blocks, pd.Series)))
        self.blocks = ([self.blocks] if isinstance(self.blocks, pd.DataFrame) or foreign_frame(self.blocks)  # one table
                       else list(self.blocks))
        if not self.blocks:
            raise InvalidInputError("a Method needs at least one table")
        if self.transform not in (None, "pca", "random projection"):
            raise InvalidInputError(f"transform must be None, 'pca' or 'random projection', got {self.transform!r}")
        self.scale = [True] * len(self.blocks) if self.scale is None else [bool(v) for v in self.scale]
        if len(self.scale) != len(self.blocks):
            raise InvalidInputError("scale needs one entry per block")


def _as_method(spec, name) -> Method:
    method = spec if isinstance(spec, Method) else Method(spec)
    method.blocks = [_check_table(b, f"method {name!r} block {i}") for i, b in enumerate(method.blocks)]
    if method.transform == "random projection":  # projected by column name, not position (another order: another draw)
        method.blocks = [b.iloc[:, canonical_order(b.columns)] for b in method.blocks]
    return method


def _pool(table: pd.DataFrame, pool_sample, pool_cell, pool_weight, n_samples):
    """Weighted mean of ``table`` rows over each sample's cells, and the known share of its weight."""
    pos = table.index.get_indexer(pool_cell)
    ok = pos >= 0
    w = pool_weight * ok
    x = np.zeros((n_samples, table.shape[1]))
    np.add.at(x, pool_sample[ok], table.to_numpy()[pos[ok]] * w[ok, None])
    known = np.bincount(pool_sample, weights=w, minlength=n_samples)
    total = np.bincount(pool_sample, weights=pool_weight, minlength=n_samples)
    with np.errstate(invalid="ignore", divide="ignore"):
        return x / known[:, None], known / total


def _features(method: Method, blocks_x, train, seed):
    """The per-split inputs of one method: standardized (train-only) blocks, then its transform."""
    xs = [standardize(x, train, scale=sc) for x, sc in zip(blocks_x, method.scale)]
    if method.transform is None:
        return xs
    z = np.hstack(xs)
    if method.transform == "pca":
        z = z - z[train].mean(axis=0)  # centred again on the training rows: the ±4 SD clip moved their mean
        _, _, vt = np.linalg.svd(z[train], full_matrices=False)
        width = int(min(method.n_components, z.shape[1]))  # the same for every split: zero columns past the rank
        out = np.zeros((len(z), width))
        k = min(width, len(vt))
        out[:, :k] = z @ vt[:k].T
        return [out]
    g = np.random.default_rng(method.seed).standard_normal((z.shape[1], method.n_components))
    return [z @ g / np.sqrt(method.n_components)]


def _check_seed(seed) -> int:
    """``seed`` as an int, or an :class:`InvalidInputError` naming it (as ``--seed`` and ``S2VecConfig.seed``).

    ``seed=None`` raised "object of type 'NoneType' has no len()" from the splits, a negative seed NumPy's
    "expected non-negative integer", a float "seed must be integer": none said which argument.
    """
    import numbers

    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer (it seeds the splits and the probes), got "
                                f"{seed!r}")
    return int(seed)
