"""Baselines: what an embedding has to beat.

* :func:`log1p_counts` - the cell's own counts, ``log(1 + count)``;
* :func:`smoothed_counts` - own counts || their mean over the 3x3 and 5x5 squares of level-12 cells around the
  cell (across level-8 borders): the cheap "neighbourhood" an image encoder sees;
* :func:`region_onehot` - the level-8 parent as a one-hot (no POI data at all: a pure "where" code);
* :func:`pca_embedding`, :func:`random_projection` - the paper's baselines;
* :func:`untrained_model` - the same encoder with random weights, embedded the same way (a control).

Missing is not empty: cells outside the feature source's ``coverage`` are unknown, not zero
(:func:`covered_mask`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cells import _as_cells, cell_to_parent, cell_to_token, latlng_to_cell
from .._textfile import column_hint
from ..errors import InvalidInputError
from ._columns import canonical_order
from ._count_baselines import log1p_counts, smoothed_counts
from ._count_baselines import _known as _known, _repeats as _repeats, _same_level as _same_level
from ._coverage_arg import covered_mask
from ._table_checks import _check_table, _components, frame
from .labels import LEVEL

if TYPE_CHECKING:
    import geopandas as gpd
    from numpy.typing import ArrayLike

    from ..model import S2VecModel

__all__ = [
    "count_table_from_points", "normalized_counts", "pca_embedding", "random_projection", "covered_mask",
    "log1p_counts", "smoothed_counts", "region_onehot", "untrained_model"
]


def count_table_from_points(points: gpd.GeoDataFrame, category: str = "fclass", level: int = LEVEL) -> pd.DataFrame:
    """Per-cell counts of each value of ``category`` of point geometries (a crosstab).

    A stop-gap for :func:`geos2vec.features.count_features` (used instead when
    that exists): POIs -> level-``level`` cells -> one count column per category.

    Parameters
    ----------
    points : geopandas.GeoDataFrame
        Point features with a CRS (any; converted to WGS 84); other geometries count at a representative
        point.
    category : str
        The column whose values become the count columns.
    level : int
        Cell level (12 by default).

    Returns
    -------
    pandas.DataFrame
        Index ``cell_id`` (uint64) of the cells holding at least one point, one float64 column per value
        of ``category`` (as str). Missing or empty geometries are left out.

    Raises
    ------
    TypeError
        ``points`` is not a GeoDataFrame.
    ValueError
        ``points`` has no CRS, or ``category`` is not one of its columns.
    """
    from .._geo import as_geoseries, representative_lnglat, to_wgs84

    geoms = to_wgs84(as_geoseries(points, "points"), "points")
    if category not in points.columns:
        raise InvalidInputError(f"category column {category!r} not found; columns are {list(points.columns)}"
                                + column_hint(category, points.columns))
    lng, lat = representative_lnglat(geoms)
    ok = np.isfinite(lat) & np.isfinite(lng)
    cells = latlng_to_cell(lat[ok], lng[ok], level)
    cats = points[category].astype(str).to_numpy()[ok]
    table = pd.crosstab(pd.Index(cells, name="cell_id"), pd.Index(cats, name=None)).astype(np.float64)
    table.index = pd.Index(table.index.to_numpy(dtype=np.uint64), name="cell_id")
    table.columns = [str(c) for c in table.columns]
    return table


def normalized_counts(counts: pd.DataFrame, log1p: bool = True) -> pd.DataFrame:
    """Counts standardized per channel with :class:`geos2vec.FeatureStats` (fit on the whole table).

    ``log1p=True`` (default) standardizes ``log(1 + count)``, the normalization the S2Vec model's input uses
    (``FeatureStats.fit(table, log1p=True)``, ``S2VecConfig.log_counts``); ``log1p=False`` z-scores the raw
    counts.

    Parameters
    ----------
    counts : pandas.DataFrame
        Cell x channel counts, indexed by uint64 cell id, numeric and finite.
    log1p : bool
        Standardize ``log(1 + count)`` instead of the counts.

    Returns
    -------
    pandas.DataFrame
        float64, with the index and columns of ``counts``.

    Raises
    ------
    TypeError, ValueError
        A table that is not a numeric, finite, cell-indexed DataFrame without duplicate cells, or negative
        counts with ``log1p=True``.
    """
    from ..normalize import FeatureStats

    counts = _check_table(counts, "counts")
    if log1p and (counts.to_numpy() < 0).any():
        raise InvalidInputError("log1p normalization needs counts >= 0; pass log1p=False for signed features")
    z = FeatureStats.fit(counts, log1p=bool(log1p)).transform(counts)
    return frame(np.asarray(z, dtype=np.float64), counts.index, counts.columns)  # z: a new frame of transform's


def pca_embedding(table: pd.DataFrame, n_components: int = 256) -> pd.DataFrame:
    """PCA (centred SVD) of ``table`` to ``min(n_components, n_rows, n_cols)`` dims.

    Parameters
    ----------
    table : pandas.DataFrame
        Cell-indexed numeric features (not standardized here).
    n_components : int
        Dimensions kept at most.

    Returns
    -------
    pandas.DataFrame
        The principal component scores (``U S``), columns ``pc0, pc1, ...``, with the index of ``table``
        (as uint64 ``cell_id``).
    """
    table = _check_table(table, "table")
    x = table.to_numpy()
    x = x - x.mean(axis=0)
    k = min(_components(n_components), x.shape[0], x.shape[1])
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    z = u[:, :k] * s[:k]
    return frame(z, table.index, [f"pc{i}" for i in range(k)])


def random_projection(table: pd.DataFrame, n_components: int = 256, seed: int = 0) -> pd.DataFrame:
    """Gaussian random projection ``x @ G / sqrt(n_components)``, ``G ~ N(0, 1)`` seeded.

    Parameters
    ----------
    table : pandas.DataFrame
        Cell-indexed numeric features ``x`` (not standardized here).
    n_components : int
        Dimensions of the projection.
    seed : int
        Seed of ``G``; its rows meet the columns by name (``count_features``' order, then the rest by name).

    Returns
    -------
    pandas.DataFrame
        Columns ``rp0, rp1, ...``, with the index of ``table`` (as uint64 ``cell_id``).
    """
    table = _check_table(table, "table")
    table = table.iloc[:, canonical_order(table.columns)]  # by column name, not position: the same draw in any order
    n_components = _components(n_components)
    g = np.random.default_rng(seed).standard_normal((table.shape[1], n_components))
    z = table.to_numpy() @ g / np.sqrt(n_components)
    return frame(z, table.index, [f"rp{i}" for i in range(n_components)])


def region_onehot(cells: ArrayLike, level: int = 8) -> pd.DataFrame:
    """One-hot of each cell's level-``level`` parent (columns: the parents' tokens, sorted).

    No feature data at all: how much a task rewards knowing *which region* a cell is in.

    Parameters
    ----------
    cells : array_like of uint64
        Cell ids (sorted and deduplicated), of level ``level`` or finer.
    level : int
        Level of the parent cells.

    Returns
    -------
    pandas.DataFrame
        float64 0/1, index ``cell_id`` (the sorted unique cells), columns ``L<level>:<parent token>``.
    """
    cells = np.unique(_as_cells(cells).ravel())
    parents = cell_to_parent(cells, level)
    uniq, inverse = np.unique(parents, return_inverse=True)
    x = np.zeros((len(cells), len(uniq)), order="F")  # laid out as the frame keeps it: no copy
    x[np.arange(len(cells)), inverse] = 1.0
    return frame(x, pd.Index(cells, name="cell_id"), [f"L{level}:{t}" for t in cell_to_token(uniq)])


def untrained_model(model: S2VecModel, seed: int = 0) -> S2VecModel:
    """A copy of ``model`` (same architecture, channels, normalization) with freshly initialised weights.

    Embedded the same way as the trained model, it says how much of an embedding's score comes from the
    architecture and the input alone. Needs TensorFlow (the ``model`` extra).

    Parameters
    ----------
    model : S2VecModel
        A trained or loaded model.
    seed : int
        Seed of the random weights (Keras' global seed is set to it, and it is the config's ``seed``).

    Returns
    -------
    S2VecModel
        A new model; compact (NumPy weights, no Keras model) when ``model`` is, else with a Keras model.
    """
    from ..model import S2VecModel
    from ..model.train import set_random_seed

    set_random_seed(int(seed))  # the same random weights in every run (keras.utils.set_random_seed's state)
    fresh = S2VecModel(model.config.replace(seed=int(seed)))
    fresh.stats, fresh.channels, fresh.grid = model.stats, list(model.channels), tuple(model.grid)
    fresh.image_level, fresh.patch_level = model.image_level, model.patch_level
    if model.keras_model is None and model.numpy_weights is not None:  # embed through the same NumPy encoder
        from ..model.numpy_encoder import weights_from_keras

        fresh.numpy_weights = weights_from_keras(fresh._build_keras())
        fresh.keras_model = None
    else:
        fresh._build_keras()
    return fresh
