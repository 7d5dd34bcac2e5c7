"""Label sets to samples: point labels aggregated to level-12 cells (median), the min-max scaled target."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cells import latlng_to_cell
from .._stacklevel import warn
from .._textfile import column_hint
from ..errors import Geos2VecWarning, InvalidInputError, InvalidTypeError, foreign_frame

if TYPE_CHECKING:
    import geopandas as gpd
    from numpy.typing import ArrayLike

__all__ = ["join_labels", "minmax_scale", "polygon_pooling", "LEVEL"]

LEVEL = 12
_LAT_NAMES = ("latitude", "lat")
_LNG_NAMES = ("longitude", "lon", "lng", "long")


def _find_column(columns, wanted, candidates, what):
    if wanted is not None:
        if wanted not in columns:
            raise InvalidInputError(f"{what} column {wanted!r} not found; columns are {list(columns)}"
                                    + column_hint(wanted, columns))
        return wanted
    lowered = {str(c).lower(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    raise InvalidInputError(f"no {what} column found (looked for {list(candidates)}); pass it explicitly")


def _numeric(column: pd.Series, name) -> np.ndarray:
    """A coordinate column as float64, or an :class:`InvalidInputError` naming the column and its first bad value."""
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna().to_numpy() & column.notna().to_numpy()
    if bad.any():  # pandas said "Unable to parse string 'x' at position 1", naming no column
        first = np.flatnonzero(bad)[0]
        label = column.index[first:first + 1].tolist()[0]  # a plain 5, not np.int64(5)
        raise InvalidInputError(f"coordinate column {name!r} holds {int(bad.sum())} value(s) that are not numbers, "
                                f"e.g. {column.iloc[first]!r} at index label {label!r}")
    return values.to_numpy(dtype=float)


def join_labels(labels: pd.DataFrame, target: str, *, lat: str | None = None, lng: str | None = None,
                lon: str | None = None, level: int = LEVEL) -> pd.DataFrame:
    """Aggregate point labels to S2 cells: the median label per cell.

    Parameters
    ----------
    labels : pandas.DataFrame or geopandas.GeoDataFrame
        One row per labelled point: either latitude/longitude columns (degrees;
        found by name - ``latitude``/``lat``, ``longitude``/``lon``/``lng`` -
        or given with ``lat=``/``lng=``) or point geometries (any CRS; a missing
        CRS raises).
    target : str
        Numeric column to aggregate.
    lat, lng : str, optional
        The latitude and longitude columns, when their names are not among those above (and to use them
        instead of a GeoDataFrame's geometries).
    lon : str, optional
        ``lng`` by the name ``geos2vec evaluate --lon`` and ``holdout_mask(lon=...)`` give it (it was a
        ``TypeError``); giving both is an :class:`~geos2vec.errors.InvalidInputError`.
    level : int
        Cell level (12, the S2Vec level, by default).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``cell_id`` (uint64, sorted), columns ``target`` (the median
        of the points in the cell) and ``n_points``. Rows whose target is
        missing (NaN or inf) are not used, and their coordinates not checked; their number is in
        ``result.attrs["n_missing_target"]``. A target of two values (boolean, 0/1) is aggregated and
        evaluated as a number, with a warning.

    Raises
    ------
    InvalidInputError
        Empty ``labels``, a column not found, coordinate columns with values that are not numbers (named),
        NaN or out-of-range coordinates, geometries with a missing CRS, or a ``target`` named ``"n_points"``
        (the count column's name).
    InvalidTypeError
        ``labels`` not a DataFrame, or a target column that is not numeric.
    """
    if lon is not None:
        if lng is not None:
            raise InvalidInputError(f"give the longitude column as lng= or lon=, not both (lng={lng!r}, lon={lon!r})")
        lng = lon
    if not isinstance(labels, pd.DataFrame):
        raise InvalidTypeError(f"labels must be a pandas DataFrame or GeoDataFrame, got {type(labels).__name__}"
                               f"{foreign_frame(labels)}")
    if len(labels) == 0:
        raise InvalidInputError("labels is empty")
    if target not in labels.columns:
        raise InvalidInputError(f"target column {target!r} not found; columns are {list(labels.columns)}"
                                + column_hint(target, labels.columns))
    if target == "n_points":  # {target: medians, "n_points": sizes} kept the sizes: the counts became the labels
        raise InvalidInputError("target column 'n_points' has the name of the count column join_labels adds (points "
                                "per cell); rename it first, e.g. labels.rename(columns={'n_points': 'y'}) (for "
                                "geos2vec evaluate --labels: in the file)")
    y = labels[target]
    if not (pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y)):  # bool[pyarrow] is not "numeric"
        raise InvalidTypeError(f"target column {target!r} must be numeric, got dtype {y.dtype}")
    _warn_binary(y, f"target column {target!r}")
    y = y.to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(y)
    # only the rows used are located: a row without a target may lack coordinates too (it raised)
    used = labels if ok.all() else labels[ok]
    try:
        import geopandas as gpd
    except ImportError:  # pragma: no cover
        gpd = None
    if gpd is not None and isinstance(labels, gpd.GeoDataFrame) and lat is None and lng is None:
        from .._geo import as_geoseries, check_missing, representative_lnglat, to_wgs84

        geoms = to_wgs84(as_geoseries(used, "labels"), "labels")
        check_missing(geoms, "raise", "labels", coerce=None)
        lngs, lats = representative_lnglat(geoms)
    else:
        lat_col = _find_column(labels.columns, lat, _LAT_NAMES, "latitude")
        lng_col = _find_column(labels.columns, lng, _LNG_NAMES, "longitude")
        lats, lngs = (_numeric(used[col], col) for col in (lat_col, lng_col))
    lats, lngs = _check_used_coords(lats, lngs, used.index)
    cells = latlng_to_cell(lats, lngs, level)
    frame = pd.DataFrame({"cell_id": cells, "y": y[ok]})
    agg = frame.groupby("cell_id", sort=True)["y"].agg(["median", "size"])
    out = pd.DataFrame(
        {target: agg["median"].to_numpy(), "n_points": agg["size"].to_numpy()},
        index=pd.Index(agg.index.to_numpy(dtype=np.uint64), name="cell_id"),
    )
    out.attrs["n_missing_target"] = int((~ok).sum())
    return out


def _check_used_coords(lats, lngs, index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """The float64 ``(lats, lngs)``; raise naming the index labels of rows with NaN/inf or out-of-range coordinates.

    ``check_latlng`` (then called after this) named positions among the rows with a target, which were not the
    frame's positions once a row without a target had been left out; ``geos2vec._geo.check_lnglat`` names labels
    but not which check failed (NaN, latitude or longitude), nor that rows without a target are not checked.
    """
    from .._geo import describe_labels

    lats, lngs = np.asarray(lats, dtype=float), np.asarray(lngs, dtype=float)
    nonfinite = ~(np.isfinite(lats) & np.isfinite(lngs))
    swap = " (latitude and longitude swapped, or projected data, not degrees?)"
    for bad, what in ((nonfinite, "coordinate(s) NaN or infinite"),
                      (~nonfinite & (np.abs(lats) > 90.0), "latitude(s) outside [-90, 90]" + swap),
                      (~nonfinite & (np.abs(lngs) > 180.0), "longitude(s) outside [-180, 180]" + swap)):
        if bad.any():
            raise InvalidInputError(f"labels has {int(bad.sum())} row(s) with a target and {what}, at index "
                                    f"{describe_labels(index, bad)}; drop or fix those rows (rows without a target "
                                    "are not checked)")
    return lats, lngs


def _warn_binary(y: pd.Series, what: str) -> None:
    """Warn that a target of two values (a boolean or 0/1 class) is evaluated as a regression, not a classification."""
    values = pd.unique(y.dropna().to_numpy())
    if pd.api.types.is_bool_dtype(y) or len(values) == 2:
        warn(f"{what} has two values ({', '.join(map(str, sorted(values)))}): it is evaluated as a regression (a "
             "linear probability model scored by R²; the median of several rows in one sample can fall between the "
             "two), not as a classification", Geos2VecWarning)


def minmax_scale(y: ArrayLike) -> tuple[np.ndarray, tuple[float, float]]:
    """``(y - min) / (max - min)`` and ``(min, max)``; a constant target raises.

    Parameters
    ----------
    y : array_like of float
        The target values.

    Returns
    -------
    scaled : numpy.ndarray of float64
        ``y`` mapped onto [0, 1].
    bounds : tuple of float
        ``(min, max)`` of ``y``, to map predictions back.

    Raises
    ------
    InvalidInputError
        ``y`` is empty or holds NaN or infinite values, or ``max`` is not greater than ``min`` (a constant
        target).
    """
    y = np.asarray(y, dtype=float)
    if y.size == 0:
        raise InvalidInputError("the target is empty; there is nothing to scale")
    bad = ~np.isfinite(y)
    if bad.any():
        raise InvalidInputError(f"the target holds {int(bad.sum())} NaN or infinite value(s) of {y.size}; drop those "
                                "samples first (labels missing for a place are unknown, not zero)")
    lo, hi = float(np.min(y)), float(np.max(y))
    if not hi > lo:
        raise InvalidInputError(f"the target is constant ({lo}); there is nothing to predict")
    return (y - lo) / (hi - lo), (lo, hi)



def polygon_pooling(polygons: gpd.GeoDataFrame | gpd.GeoSeries, level: int = LEVEL) -> pd.DataFrame:
    """The level-``level`` cells each polygon covers, with area weights summing to 1 per polygon.

    The pooling :func:`geos2vec.evaluate.evaluate` uses for polygon samples (the way ``gdf.s2vec.embed``
    pools lines and polygons: :func:`geos2vec.embedding.row_cells`).

    Parameters
    ----------
    polygons : geopandas.GeoDataFrame or geopandas.GeoSeries
        The polygons, with a CRS (any; converted to WGS 84) and no missing or empty geometry.
    level : int
        Cell level (12 by default).

    Returns
    -------
    pandas.DataFrame
        One row per (polygon, cell): columns ``sample`` (the polygon's index label), ``cell_id`` (uint64)
        and ``weight`` (the cell's share of the polygon's area).

    Raises
    ------
    ValueError
        A missing CRS or a missing or empty geometry.
    """
    from .._geo import as_geoseries, check_missing, to_wgs84
    from ..embedding import row_cells

    geoms = to_wgs84(as_geoseries(polygons, "polygons"), "polygons")
    check_missing(geoms, "raise", "polygons", coerce=None)
    row, cell, weight = row_cells(geoms, level, how="weighted")
    return pd.DataFrame({"sample": geoms.index.to_numpy()[row], "cell_id": cell, "weight": weight})


def _polygon_samples(geoms: gpd.GeoSeries, y: np.ndarray) -> tuple[pd.Series, pd.DataFrame]:
    """One sample per distinct geometry (the median of its rows' ``y``, NaN skipped) and its ``polygon_pooling``.

    The samples are numbered in the order of their heaviest cell (then of their WKB), as point samples are
    ordered by cell, never by the rows: shuffled rows gave other sample ids, hence other random splits and scores.
    """
    key = geoms.to_wkb().to_numpy()
    first = pd.Series(np.arange(len(geoms))).groupby(key, sort=True).first().to_numpy()
    target = pd.Series(y, dtype=float).groupby(key, sort=True).median().reset_index(drop=True)
    pooling = polygon_pooling(geoms.iloc[first].reset_index(drop=True))
    heavy = pooling.sort_values(["sample", "weight", "cell_id"], ascending=[True, False, True], kind="stable")
    heavy = heavy.drop_duplicates("sample").set_index("sample")["cell_id"].reindex(range(len(target)))
    order = np.lexsort((np.arange(len(target)), heavy.fillna(np.iinfo(np.uint64).max).to_numpy(np.uint64)))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    pooling = pooling.assign(sample=rank[pooling["sample"].to_numpy()])
    pooling = pooling.sort_values(["sample", "cell_id"], kind="stable").reset_index(drop=True)
    return target.iloc[order].reset_index(drop=True), pooling


def _level_note(tables, cells=None) -> str:
    """Why a table matches no sample, where its cells are of another level: " (its cells are level 10, ...)".

    ``cells``: the cells of the samples it lacks (default: level-12 samples). Before, the samples were taken to be
    level 12 whatever they were: level-14 samples and a level-12 table got no note, and a finer table was told to
    give each sample its parent's row.
    """
    from ..cells import get_level

    levels = sorted({int(v) for t in tables for v in np.unique(get_level(t.index.to_numpy(np.uint64)[:1000]))})
    wanted = sorted({int(v) for v in np.unique(get_level(np.asarray(cells, np.uint64)))}) if cells is not None \
        else [LEVEL]
    other = [v for v in wanted if v not in levels]
    if not levels or not other:
        return ""
    lv, sv = ", ".join(map(str, levels)), ", ".join(map(str, other))
    if max(levels) < min(other):  # a coarser table: each sample cell takes its parent's row
        fix = (f"give each level-{sv} cell its row, e.g. the row of its parent via geos2vec.cells.cell_to_parent: "
               f"table.reindex(cell_to_parent(cells, {levels[0]})).set_axis(cells)")
    else:  # a finer table: aggregate it to the samples' level (or label cells of its level)
        fix = (f"aggregate the table to level {other[0]}, e.g. table.groupby(cell_to_parent(table.index, "
               f"{other[0]})).mean(), or give the samples cells of level {lv}")
    return f" (its cells are level {lv}, the samples' level {sv}: {fix})"
