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

from .._cells_core import _cell_id_index
from ..cells import _as_cells, cell_to_latlng, cell_to_parent, cell_to_token, get_level, latlng_to_cell
from ..errors import InvalidInputError, InvalidTypeError
from ._columns import canonical_order
from .labels import LEVEL

if TYPE_CHECKING:
    from collections.abc import Sequence

    import geopandas as gpd
    import shapely
    from numpy.typing import ArrayLike

    from ..model import S2VecModel

__all__ = [
    "count_table_from_points", "normalized_counts", "pca_embedding", "random_projection", "covered_mask",
    "log1p_counts", "smoothed_counts", "region_onehot", "untrained_model"
]


def _check_table(table, name):
    if not isinstance(table, pd.DataFrame):
        raise InvalidTypeError(f"{name} must be a pandas DataFrame indexed by cell_id, got {type(table).__name__}")
    if table.shape[1] == 0 or len(table) == 0:
        raise InvalidInputError(f"{name} is empty (shape {table.shape})")
    if not table.index.is_unique:
        raise InvalidInputError(f"{name} has duplicate cell ids in its index; give one row per cell (counts add up: "
                                "table.groupby(level=0).sum(); embedding vectors do not: .mean(), or one of them)")
    real = table.select_dtypes("number", exclude=["bool", "complex"]).shape[1] == table.shape[1]  # Int64, Float32 too
    values = table.to_numpy(np.float64, na_value=np.nan) if real else table.to_numpy()  # pd.NA: NaN, refused below
    if not np.issubdtype(values.dtype, np.number):
        raise InvalidTypeError(f"{name} must have numeric columns only, got dtypes {sorted(map(str, {*table.dtypes}))}")
    if not np.isfinite(values.astype(float)).all():
        raise InvalidInputError(f"{name} contains NaN or inf; fill or drop those cells first")
    # S2 cell ids (signed 64-bit storage of the same bits is read); a float index was truncated (1.5 -> 1) and
    # a RangeIndex taken for cells 0, 1, 2, ... silently
    index = _cell_id_index(table.index, f"{name} must be indexed by S2 cell ids (uint64)")
    out = pd.DataFrame(values.astype(np.float64), index=index, columns=[str(c) for c in table.columns])
    if isinstance(table.attrs.get("coverage"), dict):  # the source's coverage (channel names are str there too)
        out.attrs["coverage"] = table.attrs["coverage"]
    return out


def _components(n_components) -> int:
    """``n_components`` checked: 0 gave an empty embedding, 2.7 two dimensions and -3 a pandas shape error."""
    import numbers

    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or n_components < 1:
        raise InvalidInputError(f"n_components must be a positive integer, got {n_components!r}")
    return int(n_components)


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
        raise InvalidInputError(f"category column {category!r} not found; columns are {list(points.columns)}")
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
    return pd.DataFrame(np.asarray(z, dtype=np.float64), index=counts.index, columns=counts.columns)


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
    return pd.DataFrame(z, index=table.index, columns=[f"pc{i}" for i in range(k)])


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
    return pd.DataFrame(z, index=table.index, columns=[f"rp{i}" for i in range(n_components)])


def covered_mask(cells: ArrayLike, coverage: shapely.Geometry | ArrayLike | None = None) -> np.ndarray:
    """Which ``cells`` lie where the feature source has data.

    ``coverage`` is ``None`` (everywhere), a ``(min_lon, min_lat, max_lon, max_lat)`` box or a list of
    them (the cell centre inside any), a shapely (Multi)Polygon (the cell centre inside), or an array of
    cell ids (exactly those cells).

    Parameters
    ----------
    cells : array_like of uint64
        Cell ids (flattened).
    coverage : None, tuple, list of tuple, shapely geometry or integer array of cell ids
        Where the source has data, as above (boxes in degrees, bounds included). Cell ids may be uint64 or
        their signed 64-bit storage (an int64 array, a list of ints); integers beyond 180 cannot be degrees
        and are read as cell ids.

    Returns
    -------
    numpy.ndarray of bool
        One entry per cell.

    Raises
    ------
    InvalidInputError
        A ``coverage`` that is none of the above, boxes that are not ``(min_lon, min_lat, max_lon,
        max_lat)`` in degrees with min <= max, invalid cell ids, or a geometry whose bounds are not degrees
        (a ``ValueError``).
    """
    cells = _as_cells(cells).ravel()
    if coverage is None:
        return np.ones(len(cells), bool)
    if isinstance(coverage, str):
        raise InvalidInputError(f"coverage must be None, a bbox, a list of bboxes, a polygon or cell ids; got the "
                                f"string {coverage!r}")
    if isinstance(coverage, (pd.Series, pd.DataFrame)) and hasattr(coverage, "geom_type"):
        raise InvalidTypeError(f"coverage must be a shapely geometry, not a {type(coverage).__name__}; pass "
                               "coverage.to_crs(4326).union_all()")
    if hasattr(coverage, "geom_type"):
        import shapely

        bounds = np.asarray(coverage.bounds, dtype=float)
        if not coverage.is_empty and not (np.isfinite(bounds).all() and -180 <= bounds[0] and bounds[2] <= 180
                                          and -90 <= bounds[1] and bounds[3] <= 90):
            raise InvalidInputError(f"coverage bounds {tuple(bounds.tolist())} are not longitude/latitude degrees; "
                                    "a coverage geometry is taken as EPSG:4326 (lon, lat): transform it first")
        lat, lng = cell_to_latlng(cells)
        return shapely.contains_xy(coverage, lng, lat)
    arr = np.asarray(coverage.to_numpy() if isinstance(coverage, (pd.Series, pd.Index)) else coverage)
    is_int = arr.dtype.kind in "iu" or (arr.dtype == object and arr.size
                                          and all(isinstance(v, (int, np.integer)) for v in arr.ravel()))
    if arr.dtype == np.uint64 or (is_int and arr.size and np.abs(arr.astype(float)).max() > 180):
        # cell ids (an int64 array of them was read as boxes: every cell "uncovered", silently)
        try:
            ids = _as_cells(arr).ravel()
        except (InvalidInputError, InvalidTypeError) as exc:
            raise type(exc)(f"coverage as cell ids: {exc}") from None
        return np.isin(cells, ids)
    try:
        boxes = arr.astype(float)
    except (TypeError, ValueError):
        raise InvalidInputError(f"coverage must be None, a bbox, a list of bboxes, a polygon or cell ids; got "
                                f"{coverage!r}") from None
    boxes = boxes.reshape(-1, 4) if boxes.ndim == 1 and boxes.size % 4 == 0 else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InvalidInputError(f"coverage must be None, a bbox, a list of bboxes, a polygon or cell ids; got "
                                f"{coverage!r}")
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(boxes).all(axis=1) & (boxes[:, 0] <= boxes[:, 2]) & (boxes[:, 1] <= boxes[:, 3])
                & (boxes[:, 0] >= -180) & (boxes[:, 2] <= 180) & (boxes[:, 1] >= -90) & (boxes[:, 3] <= 90))
    if bad.any():  # a box with min > max, or (lat, lon) order, covered nothing, silently
        raise InvalidInputError(f"coverage boxes are (min_lon, min_lat, max_lon, max_lat) in degrees with min <= max; "
                                f"got {boxes[bad][:3].tolist()} (not finite, min > max, or latitude and longitude "
                                "swapped?)")
    lat, lng = cell_to_latlng(cells)
    out = np.zeros(len(cells), bool)
    for b in boxes:
        out |= (lng >= b[0]) & (lng <= b[2]) & (lat >= b[1]) & (lat <= b[3])
    return out


def _same_level(cells: np.ndarray, counts: pd.DataFrame) -> np.ndarray:
    """``cells``, after checking that they are of a level of the ``counts`` table's cells (else 0 everywhere)."""
    table_levels = np.unique(get_level(counts.index.to_numpy()))
    levels = np.unique(get_level(cells)) if cells.size else table_levels
    other = np.setdiff1d(levels, table_levels)
    if other.size:
        raise InvalidInputError(
            f"cells of level {other.tolist()} asked of a counts table of level {table_levels.tolist()}: a cell of "
            "another level is never in the table, so it would read as empty. Ask for cells of the table's level "
            "(geos2vec.cells.cell_to_parent / cell_to_children), or aggregate the table to theirs")
    return cells


def _known(cells: np.ndarray, counts: pd.DataFrame, coverage) -> tuple[np.ndarray, np.ndarray | None]:
    """Per cell: a row of ``counts`` or covered; and the ``(cells, channels)`` availability (None: alike).

    Without ``coverage``, from the table's own (:func:`geos2vec.coverage.covered_mask`, channel by channel).
    """
    from ..coverage import covered_mask as table_mask
    from ..coverage import has_coverage

    if coverage is None and has_coverage(counts):
        return table_mask(cells, counts)
    return np.isin(cells, counts.index.to_numpy()) | covered_mask(cells, coverage), None


def log1p_counts(counts: pd.DataFrame, cells: ArrayLike | None = None, *,
                 coverage: shapely.Geometry | ArrayLike | None = None) -> pd.DataFrame:
    """``log(1 + count)`` of ``cells`` (default: the table's cells).

    A cell absent from ``counts`` is a cell with no feature (zero counts) when it is covered
    (:func:`covered_mask`), and unknown otherwise: it gets no row.

    Parameters
    ----------
    counts : pandas.DataFrame
        Cell x channel counts (>= 0), indexed by uint64 cell id.
    cells : array_like of uint64, optional
        The cells wanted (sorted and deduplicated).
    coverage : optional
        Where the source has data (:func:`covered_mask`); default: the table's own coverage
        (``counts.attrs["coverage"]``, :func:`geos2vec.coverage.get_coverage`) when it records one, else
        everywhere.

    Returns
    -------
    pandas.DataFrame
        float64, index ``cell_id``: the known cells of ``cells`` (those in ``counts`` or covered), sorted
        when ``cells`` is given; the columns of ``counts``.

    Raises
    ------
    ValueError
        Negative counts, an invalid table (see :func:`normalized_counts`), or ``cells`` of a level the table
        has no cells of (:class:`geos2vec.errors.InvalidInputError`: they would all read as empty).
    """
    counts = _check_table(counts, "counts")
    if (counts.to_numpy() < 0).any():
        raise InvalidInputError("log1p_counts needs counts >= 0")
    cells = counts.index.to_numpy() if cells is None else _same_level(np.unique(_as_cells(cells).ravel()), counts)
    known, _ = _known(cells, counts, coverage)
    out = counts.reindex(pd.Index(cells[known], name="cell_id"), fill_value=0.0)
    return np.log1p(out)


def _repeats(disk: np.ndarray) -> np.ndarray:
    """True at the second and later copies of a cell in each row (a square next to a cube corner repeats cells)."""
    out = np.zeros(disk.shape, bool)
    srt = np.sort(disk, axis=1)
    for r in np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1)):
        _, first = np.unique(disk[r], return_index=True)
        out[r] = True
        out[r, first] = False
    return out


def smoothed_counts(counts: pd.DataFrame, cells: ArrayLike | None = None, *,
                    coverage: shapely.Geometry | ArrayLike | None = None,
                    rings: Sequence[int] = (1, 2)) -> pd.DataFrame:
    """Own ``log(1 + count)`` || its mean over the ``(2k+1) x (2k+1)`` square of cells around, per ``k``.

    The squares are on the cells' own level grid (:func:`geos2vec.cells.grid_disk`), across level-8
    borders and cube faces. Unknown neighbours (absent from ``counts`` and outside ``coverage``) are left
    out of the mean, not counted as empty; with the table's own coverage, channel by channel (a neighbour is
    left out of a channel its source lacks there: ``road`` of a venue source, POIs of a road-only cell beyond
    the POI coverage, ``attrs["coverage"]["layers"]``). Columns: ``<channel>``, then ``<channel>@3x3``,
    ``<channel>@5x5`` (for the default ``rings=(1, 2)``). Rows: ``cells`` (default the table's cells)
    whose own counts are known.

    Parameters
    ----------
    counts : pandas.DataFrame
        Cell x channel counts (>= 0), indexed by uint64 cell id.
    cells : array_like of uint64, optional
        The cells wanted (see :func:`log1p_counts`).
    coverage : optional
        Where the source has data (:func:`covered_mask`); default: the table's own coverage, per channel
        (``counts.attrs["coverage"]`` as ``count_features(..., coverage=...)`` records it) when it has one, else
        everywhere. A given ``coverage`` is used for every channel instead.
    rings : sequence of int
        The ``k`` of each square (positive).

    Returns
    -------
    pandas.DataFrame
        float64, the rows of :func:`log1p_counts`, ``(1 + len(rings)) x`` its columns as above.

    Raises
    ------
    ValueError
        A ring that is not positive, negative counts, an invalid table or ``cells`` of another level than
        the table's (see :func:`log1p_counts`).
    """
    from ..cells import grid_disk

    rings = tuple(int(k) for k in rings)
    if not rings or min(rings) < 1:
        raise InvalidInputError(f"rings must be positive integers, got {rings}")
    own = log1p_counts(counts, cells, coverage=coverage)
    checked = _check_table(counts, "counts")
    table = np.log1p(checked)
    index = table.index.to_numpy()
    order = np.argsort(index)
    sorted_ids = index[order]
    values = np.vstack([table.to_numpy()[order], np.zeros((1, table.shape[1]))])  # last row: a covered empty cell
    kmax = max(rings)
    side = 2 * kmax + 1
    di, dj = np.divmod(np.arange(side * side), side)
    di, dj = di - kmax, dj - kmax
    ids = own.index.to_numpy()
    out = [own.to_numpy()]
    sums = {k: np.zeros(own.shape) for k in rings}
    counts_n = {k: np.zeros(own.shape) for k in rings}  # per channel: their known neighbours may differ
    chunk = max(1, 2_000_000 // (side * side * max(1, table.shape[1])))
    for a in range(0, len(ids), chunk):
        disk = grid_disk(ids[a:a + chunk], kmax)  # (rows, side*side)
        flat = disk.ravel()
        pos = np.searchsorted(sorted_ids, flat)
        pos = np.minimum(pos, len(sorted_ids) - 1)
        hit = sorted_ids[pos] == flat
        known, avail = _known(flat, checked, coverage)
        pos = np.where(hit, pos, len(sorted_ids)).reshape(disk.shape)
        known = (known | hit).reshape(disk.shape)
        for k in rings:
            sel = (np.abs(di) <= k) & (np.abs(dj) <= k)
            w = (known[:, sel] & ~_repeats(disk[:, sel]))[:, :, None]  # (rows, n_sel, 1)
            if avail is not None:  # (rows, n_sel, channels): the channels known there
                w = w & avail.reshape(disk.shape + (-1,))[:, sel]
            w = w.astype(float)
            v = values[pos[:, sel]]  # (rows, n_sel, channels)
            sums[k][a:a + chunk] = np.einsum("rn,rnc->rc", w[:, :, 0], v) if avail is None else (w * v).sum(axis=1)
            counts_n[k][a:a + chunk] = w.sum(axis=1)
    cols = list(own.columns)
    names = list(cols)
    for k in rings:
        out.append(sums[k] / np.maximum(counts_n[k], 1.0))
        names += [f"{c}@{2 * k + 1}x{2 * k + 1}" for c in cols]
    return pd.DataFrame(np.hstack(out), index=own.index, columns=names)


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
    x = np.zeros((len(cells), len(uniq)))
    x[np.arange(len(cells)), inverse] = 1.0
    return pd.DataFrame(x, index=pd.Index(cells, name="cell_id"),
                        columns=[f"L{level}:{t}" for t in cell_to_token(uniq)])


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
