"""Train / validation / test splits: random, spatially blocked, by region, and the geographic hold-out."""

from __future__ import annotations

import hashlib
import math
import numbers
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cells import _as_cells, cell_to_latlng
from .._stacklevel import warn
from ..errors import Geos2VecWarning, InvalidInputError, InvalidTypeError
from ._cell_draws import cell_codes, draw_validation, random_cell_splits

if TYPE_CHECKING:
    from collections.abc import Sequence

    import geopandas as gpd
    import shapely
    from numpy.typing import ArrayLike

    from .._typing import Splits

__all__ = ["random_splits", "holdout_mask", "holdout_splits", "blocked_splits", "region_splits", "purge_shared_cells",
           "split_ids", "check_test_sets"]

SPLITS = ("random", "blocked", "region")


def _check_n_splits(n_splits, seed=0) -> None:
    """A positive integer and a non-negative integer ``seed``, or an :class:`InvalidInputError`.

    ``n_splits=1.5`` raised NumPy's ``TypeError`` mid-way, ``seed=None`` "NoneType has no len()".
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral) or n_splits < 1:
        raise InvalidInputError(f"n_splits must be >= 1, got {n_splits!r}: an integer number of repetitions")
    from .inputs import _check_seed

    _check_seed(seed)


def random_splits(n: int, n_splits: int = 20, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0) -> Splits:
    """``n_splits`` random train/val/test partitions of ``range(n)``.

    Split ``k`` uses ``numpy.random.default_rng([seed, k])``.

    Parameters
    ----------
    n : int
        Number of samples.
    n_splits : int
        Number of partitions (>= 1).
    fractions : tuple of float
        Shares of train, validation and test: three positive numbers summing to 1 (train and validation
        sizes are rounded; test takes the rest).
    seed : int
        Base seed.

    Returns
    -------
    list of tuple of numpy.ndarray
        ``n_splits`` ``(train, val, test)`` sorted integer index arrays.

    Raises
    ------
    ValueError
        Invalid ``fractions`` or ``n_splits``, or ``n`` too small for at least 2 training, 1 validation and
        1 test sample.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or (fractions <= 0).any() or not math.isclose(fractions.sum(), 1.0):
        raise InvalidInputError(f"fractions must be three positive numbers summing to 1, got {fractions.tolist()}")
    _check_n_splits(n_splits, seed)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    if n_train < 2 or n_val < 1 or n - n_train - n_val < 1:
        raise InvalidInputError(f"{n} cells are too few for a {fractions.tolist()} split: it needs at least 2 "
                                "training, 1 validation and 1 test sample")
    out = []
    for k in range(n_splits):
        perm = np.random.default_rng([seed, k]).permutation(n)
        out.append((np.sort(perm[:n_train]), np.sort(perm[n_train : n_train + n_val]),
                    np.sort(perm[n_train + n_val :])))
    return out


def holdout_mask(cells: ArrayLike, *, bbox: Sequence[float] | None = None,
                 polygon: shapely.Polygon | shapely.MultiPolygon | gpd.GeoSeries | gpd.GeoDataFrame | None = None,
                 lon: float | None = None,
                 side: str = "east") -> np.ndarray:
    """Cells whose centroid lies in the hold-out region (the test region).

    Give exactly one of ``bbox``, ``polygon`` and ``lon``.

    Parameters
    ----------
    cells : array_like of uint64
        Cell ids (flattened).
    bbox : tuple of float, optional
        ``(min_lon, min_lat, max_lon, max_lat)`` in degrees, bounds included; longitudes past ±180 are taken
        across the antimeridian (``(178, -18, 182, -16)``: both sides of it).
    polygon : shapely.Polygon, MultiPolygon or GeometryCollection, GeoSeries or GeoDataFrame, optional
        A shapely polygon in EPSG:4326 lon/lat (longitudes past ±180 are taken across the antimeridian:
        ``box(178, -18, 182, -16)``), or GeoPandas polygons in any CRS (their union, split at ±180: an area
        across the antimeridian in a projected CRS such as EPSG:3832 is held out where it is, not round the
        rest of the globe).
    lon : float, optional
        A meridian, with ``side``.
    side : {"east", "west"}
        With ``lon``: test = centroid longitude ``>= lon`` ("east") or ``< lon`` ("west").

    Returns
    -------
    numpy.ndarray of bool
        One entry per cell, True in the hold-out region.

    Raises
    ------
    ValueError
        Not exactly one region, an invalid ``bbox``, an unknown ``side``, a shapely ``polygon`` whose bounds are
        not degrees or GeoPandas polygons without a CRS.
    TypeError
        ``polygon`` is not a shapely Polygon or MultiPolygon, GeoSeries or GeoDataFrame.
    """
    given = [v is not None for v in (bbox, polygon, lon)]
    if sum(given) != 1:
        raise InvalidInputError("give exactly one of bbox=, polygon=, lon= for the hold-out region")
    lat, lng = cell_to_latlng(_as_cells(cells).ravel())
    if bbox is not None:
        from ._coverage_arg import in_lnglat_boxes

        try:
            b = [float(v) for v in bbox]
        except (TypeError, ValueError):
            b = []
        if len(b) != 4 or b[0] > b[2] or b[1] > b[3]:
            raise InvalidInputError(f"bbox must be (min_lon, min_lat, max_lon, max_lat), got {bbox}")
        return in_lnglat_boxes(lng, lat, b, "bbox")  # (178, -18, 182, -16): both sides of ±180 (half was lost)
    if polygon is not None:
        import shapely

        from ._coverage_arg import lnglat_area, lnglat_geometry

        if isinstance(polygon, (pd.Series, pd.DataFrame)) and hasattr(polygon, "geom_type"):
            polygon = lnglat_area(polygon, "polygon")  # to_crs(4326).union_all() went round the globe across ±180
        elif isinstance(polygon, (shapely.Polygon, shapely.MultiPolygon, shapely.GeometryCollection)):
            polygon = lnglat_geometry(polygon, "polygon")  # a collection by its polygons, as coverage= takes it
        else:
            raise InvalidTypeError(f"polygon must be a shapely Polygon/MultiPolygon, got {type(polygon).__name__} "
                                   "(in degrees; polygons in another CRS: a GeoSeries / GeoDataFrame with its CRS)")
        return shapely.contains_xy(polygon, lng, lat)
    if side not in ("east", "west"):
        raise InvalidInputError(f"side must be 'east' or 'west', got {side!r}")
    return lng >= float(lon) if side == "east" else lng < float(lon)


def holdout_splits(test_mask: ArrayLike, n_splits: int = 20, val_fraction: float = 0.25, seed: int = 0, *,
                   cells: ArrayLike | None = None) -> Splits:
    """Geographic hold-out: test = ``test_mask``; the rest is split train/val at random (by cell with ``cells``).

    Parameters
    ----------
    test_mask : array_like of bool
        One entry per sample, True for test samples; read as ``evaluate(holdout=)`` reads a Series: booleans
        (missing: not a test sample) or 0/1 numbers (NaN: not a test sample); other values (the strings
        ``"True"``/``"False"``, a 2) are an :class:`~geos2vec.errors.InvalidTypeError`.
    n_splits : int
        Number of train/validation partitions.
    val_fraction : float
        Share of the non-test samples in validation (rounded); with ``cells``, of their cells.
    seed : int
        Split ``k`` uses ``numpy.random.default_rng([seed, k])``.
    cells : array_like, optional
        One cell per sample (``evaluate(pooling=)``: each sample's heaviest cell). Where samples share a cell,
        validation draws whole cells, so no validation sample shares its cell with a training sample (drawn by
        sample, rows of one cell were trained and validated on, and the penalty chosen on them memorised); one
        sample per cell gives the same splits as without.

    Returns
    -------
    list of tuple of numpy.ndarray
        ``n_splits`` ``(train, val, test)`` sorted integer index arrays (same test set,
        different validation sets and MLP initialisations).

    Raises
    ------
    ValueError
        No test sample, no validation sample, or fewer than 2 training samples.
    """
    _check_n_splits(n_splits, seed)
    from .protocol import _holdout_flags  # as evaluate(holdout=) reads it: bool() made NaN and "False" test samples

    series = test_mask if isinstance(test_mask, pd.Series) else pd.Series(np.asarray(test_mask))
    test_mask = _holdout_flags(series, "test_mask").to_numpy(dtype=bool)
    test = np.flatnonzero(test_mask)
    rest = np.flatnonzero(~test_mask)
    codes = cell_codes(rest, cells, len(test_mask))
    units = len(rest) if codes is None else int(codes.max()) + 1  # drawn: samples, or their cells
    n_val = int(round(val_fraction * units))
    if len(test) < 1 or n_val < 1 or units - n_val < 2:
        raise InvalidInputError(
            f"hold-out leaves {len(test)} test and {units} train/val cells ({n_val} for validation at "
            f"val_fraction={val_fraction}); it needs at least 1 test, 1 validation and 2 training cells"
        )
    return [(*draw_validation(np.random.default_rng([seed, k]), rest, n_val, codes), test) for k in range(n_splits)]



def _one_label_each(labels: ArrayLike, name: str, what: str) -> np.ndarray:
    """One label per sample: a 1-D array (a one-column frame too); a missing label (None/NaN/<NA>) is refused.

    ``blocked_splits`` made one block of every NaN group and a sample of its own of each ``<NA>`` (a nullable
    Series), and raised NumPy's ``TypeError`` on ``None`` among strings; a two-column array an ``IndexError``.
    """
    arr = np.asarray(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must hold one label per sample (1-D), got shape {arr.shape}")
    na = pd.isna(arr)
    if na.any():
        raise InvalidInputError(f"{name} has {int(na.sum())} missing label(s) at positions "
                                f"{np.flatnonzero(na).tolist()[:10]}; give every sample {what} (or drop those samples)")
    return arr


def blocked_splits(groups: ArrayLike, n_splits: int = 20, fractions: Sequence[float] = (0.6, 0.2, 0.2),
                   seed: int = 0) -> Splits:
    """Spatially blocked splits: whole groups (e.g. level-6 parents) go to train, validation or test.

    Parameters
    ----------
    groups : array_like
        One group label per sample (e.g. ``cell_to_parent(cells, 6)``).
    n_splits, fractions, seed
        As :func:`random_splits`: split ``k`` shuffles the groups with
        ``numpy.random.default_rng([seed, k])`` and fills train, then
        validation, until each holds its share of the *samples*; the remaining
        groups are the test set.

    Returns
    -------
    list of tuple of numpy.ndarray
        ``(train, val, test)`` sorted integer index arrays. No group is in
        two parts of one split, so the sizes vary a little from split to split.

    Raises
    ------
    ValueError
        Invalid ``fractions`` or ``n_splits``, fewer than 3 groups, or a missing group label (None, NaN,
        ``<NA>``): every sample needs a block.

    Warns
    -----
    UserWarning
        More than half of the samples are alone in their group: the blocks are too fine to separate them. Or
        a validation or test set holds less than a quarter or more than twice its share of the samples in some
        repetition: a few blocks hold most samples.
    """
    groups = _one_label_each(groups, "groups", "a block")
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or (fractions <= 0).any() or not math.isclose(fractions.sum(), 1.0):
        raise InvalidInputError(f"fractions must be three positive numbers summing to 1, got {fractions.tolist()}")
    _check_n_splits(n_splits, seed)
    uniq, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    if len(uniq) < 3:
        raise InvalidInputError(
            f"blocked splits need at least 3 blocks, the samples fall in {len(uniq)}; use a finer block level"
        )
    n = len(groups)
    alone = float(np.sum(sizes == 1)) / n
    if alone > 0.5:  # e.g. ZIP centroids of Kansas and Iowa in level-10 blocks: 87 % alone, the splits nearly random
        warn(f"blocked splits: {alone:.0%} of the {n} samples are alone in their block, so most test samples have "
             "neighbours in training and the splits are nearly random, not spatially separated; use coarser blocks "
             "(block_level=, --block-level; 6 for ZIP-level labels)", Geos2VecWarning)
    out = []
    for k in range(n_splits):
        order = np.random.default_rng([seed, k]).permutation(len(uniq))
        cum = np.cumsum(sizes[order])
        part = np.full(len(uniq), 2)
        # a block goes to train while the samples before it fill less than the train share, then to validation
        start = cum - sizes[order]
        part[order[start < fractions[0] * n]] = 0
        in_val = (start >= fractions[0] * n) & (start < (fractions[0] + fractions[1]) * n)
        part[order[in_val]] = 1
        _fill_empty_parts(part, order)
        p = part[inverse]
        out.append(tuple(np.flatnonzero(p == i) for i in range(3)))
    untested = int(np.sum(sizes[np.isin(np.arange(len(uniq)), inverse[np.concatenate([t for _, _, t in out])],
                                        invert=True)]))
    _warn_uneven(out, fractions, n, int(sizes.max()), untested)
    return out


def _warn_uneven(splits, fractions, n, largest, untested) -> None:
    """Warn where whole blocks make validation or test sets far from their share (a few blocks hold most samples).

    Nevada's ZIP codes in level-6 blocks (Las Vegas' holds 65 of 166): test sets of 1 to 65 samples and validation
    sets of 1 to 61, so some penalties were chosen on one sample and some R² came from one. Train fills first, so
    a block holding more than the test share is tested only when the shares leave test empty: its samples are
    (nearly) never scored.
    """
    parts = []
    for i, what in ((1, "validation"), (2, "test")):
        lens = [len(s[i]) for s in splits]
        want = fractions[i] * n
        if min(lens) < want / 4 or max(lens) > 2 * want:
            parts.append(f"{what} sets of {min(lens)} to {max(lens)} samples (share: {want:.0f})")
    if parts:
        never = (f", and {untested} samples are in no test set of the {len(splits)}"
                 if untested and len(splits) >= 5 else "")
        warn(f"blocked splits: {' and '.join(parts)}, because the largest block holds {largest} of the {n} "
             f"samples{never}; a score from a few samples weighs as much in the mean as the others (scores.csv: "
             "n_test). Use finer blocks (block_level=, --block-level) where a few blocks hold most samples",
             Geos2VecWarning)


def _fill_empty_parts(part: np.ndarray, order: np.ndarray) -> None:
    """Give validation, then test, a block where the shares left one empty (few or very unequal blocks).

    Validation takes the first test block (in the split's shuffled order) when test has two or more, else the
    last train block; test takes the last block of the order when its part keeps another, else the last block
    of a part that has two or more. Train, validation and test then each hold a block (there are >= 3).
    """
    def last_of(which):
        return order[np.flatnonzero(part[order] == which)[-1]]

    if not (part == 1).any():
        part[order[np.flatnonzero(part[order] == 2)[0]] if (part == 2).sum() >= 2 else last_of(0)] = 1
    if not (part == 2).any():
        counts = np.bincount(part, minlength=3)
        part[order[-1] if counts[part[order[-1]]] >= 2 else last_of(int(np.argmax(counts)))] = 2


def region_splits(regions: ArrayLike, n_splits: int = 20, val_fraction: float = 0.25,
                  seed: int = 0, *, cells: ArrayLike | None = None) -> dict[str, Splits]:
    """Train and validate on some regions, test on another: every region held out in turn.

    ``regions`` gives one label per sample. With two regions this is both
    directions (A -> B and B -> A).

    Parameters
    ----------
    regions : array_like
        One region label per sample (compared as str).
    n_splits, val_fraction, seed, cells
        As for :func:`holdout_splits` (``cells``: validation draws whole cells where samples share them).

    Returns
    -------
    dict of str to list
        ``{"A->B": splits, ...}`` keyed by ``"<train regions>-><test region>"`` (the train regions joined
        by ``+``, sorted); each value is :func:`holdout_splits` of that region (the same test set,
        ``n_splits`` random train/validation partitions of the other regions).

    Raises
    ------
    ValueError
        Fewer than two regions, or a region split :func:`holdout_splits` cannot make.
    """
    regions = pd.Series(_one_label_each(regions, "regions", "a region"), dtype=object).astype(str).to_numpy()
    names = sorted(set(regions))
    if len(names) < 2:
        raise InvalidInputError(f"region splits need at least 2 regions, got {names}")
    out = {}
    for name in names:
        others = "+".join(r for r in names if r != name)
        out[f"{others}->{name}"] = holdout_splits(regions == name, n_splits, val_fraction, seed=seed, cells=cells)
    return out


def purge_shared_cells(split_sets: dict[str, Splits], sample: ArrayLike, cell: ArrayLike
                       ) -> tuple[dict[str, Splits], dict[str, float]]:
    """Leave out of train and validation every sample that shares a cell with a test sample.

    For polygon samples pooled over cells: a sample goes to the block of its heaviest cell, so its other
    cells can lie in another part of the split. The test samples are kept as they are (paired comparisons).

    Parameters
    ----------
    split_sets : dict of str to list of (train, val, test)
        Splits by name (sample positions).
    sample, cell : array_like
        The pooling's rows: the sample position and the cell id of each.

    Returns
    -------
    splits : dict of str to list of (train, val, test)
        The same splits without those samples in train and validation.
    purged : dict of str to float
        Per split name, the samples left out, on average over the repetitions.

    Raises
    ------
    InvalidInputError
        A split left with fewer than 2 training or no validation samples.
    """
    sample, cell = np.asarray(sample), np.asarray(cell)
    out, purged = {}, {}
    for name, splits in split_sets.items():
        new, dropped = [], []
        for tr, va, te in splits:
            near = np.unique(sample[np.isin(cell, cell[np.isin(sample, te)])])
            tr2, va2 = np.setdiff1d(tr, near), np.setdiff1d(va, near)
            if len(tr2) < 2 or len(va2) < 1:
                raise InvalidInputError(f"{name} split: leaving out the {len(tr) + len(va) - len(tr2) - len(va2)} "
                                        "training/validation samples that share a cell with a test sample leaves "
                                        f"{len(tr2)} to train and {len(va2)} to validate; use coarser blocks "
                                        "(block_level) or purge=False")
            new.append((tr2, va2, te))
            dropped.append(len(tr) + len(va) - len(tr2) - len(va2))
        out[name], purged[name] = new, float(np.mean(dropped))
    return out, purged


def split_ids(split_sets: dict[str, Splits], sample_ids: ArrayLike) -> dict[str, list[str]]:
    """An id of each split: a hash of the sample ids in its train, validation and test parts (not their order).

    Scores carry it (``split_id``) so that :func:`~geos2vec.evaluate.report.paired_table` pairs only methods
    scored on the same splits (two runs with other seeds or other samples share repetition numbers, not splits).

    Parameters
    ----------
    split_sets : dict of str to list of (train, val, test)
        Splits by name (sample positions).
    sample_ids : array_like
        The id of each sample position.

    Returns
    -------
    dict of str to list of str
        Per split name, one id per repetition (``"s"`` and 16 hex digits).
    """
    h = pd.util.hash_array(np.asarray(sample_ids))
    out = {}
    for name, splits in split_sets.items():
        ids = []
        for parts in splits:
            digest = hashlib.sha1()
            for part in parts:
                digest.update(np.sort(h[part]).tobytes() + b"|")
            ids.append("s" + digest.hexdigest()[:16])  # never read back from a CSV file as a number
        out[name] = ids
    return out


def check_test_sets(y: ArrayLike, split_sets: dict[str, Splits]) -> None:
    """Refuse a constant target; warn where a test set has no R² (one sample, or one label value).

    Parameters
    ----------
    y : array_like of float
        The target of each sample position.
    split_sets : dict of str to list of (train, val, test)
        Splits by name (sample positions).

    Raises
    ------
    InvalidInputError
        Every sample has the same target value: there is nothing to predict, every R² would be NaN.
    """
    y = np.asarray(y, dtype=float)
    if y.size and np.ptp(y) == 0:
        raise InvalidInputError(f"the target is constant ({y[0]}) on all {y.size} samples; there is nothing to "
                                "predict (every R² would be undefined)")
    for name, splits in split_sets.items():
        bad = [k for k, (_, _, te) in enumerate(splits) if len(te) < 2 or np.ptp(y[te]) == 0]
        if bad:
            warn(f"{name} splits: R² is undefined on {len(bad)} of {len(splits)} repetitions (a test set of one "
                 f"sample or of one label value: repetitions {bad[:10]}); their R² is NaN, and the mean R² of the "
                 "summary covers the others only. " + ("Use a finer block level or more samples"
                 if name == "blocked" else "Use more samples or a larger test region"), Geos2VecWarning)


def _split_groups(kind, n, *, n_splits, seed, groups=None, regions=None, holdout_mask_=None, cells=None):
    """The splits of one kind, by name (``region:A->B`` per test region); :func:`~geos2vec.evaluate.evaluate`."""
    if kind == "random":
        return {"random": random_splits(n, n_splits, seed=seed) if cells is None
                else random_cell_splits(cells, n_splits, seed)}
    if kind == "blocked":
        return {"blocked": blocked_splits(groups, n_splits, seed=seed)}
    if kind == "region":
        if regions is None:
            raise InvalidInputError("split='region' needs regions= (one region label per sample)")
        return {f"region:{k}": v for k, v in region_splits(regions, n_splits, seed=seed, cells=cells).items()}
    if kind == "holdout":
        return {"holdout": holdout_splits(holdout_mask_, n_splits, seed=seed, cells=cells)}
    raise InvalidInputError(f"unknown split {kind!r}; choose from {list(SPLITS)}")
