"""What ``geos2vec evaluate --labels`` reads: tables, count files, embedding files and labels.

The command itself (options, the run) is :mod:`geos2vec.cli_evaluate`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ._cells_core import _cell_id_index, token_to_cell
from ._geo import as_geoseries, check_missing, representative_lnglat, to_wgs84
from ._textfile import column_hint, read_csv_utf8
from .errors import InvalidInputError, InvalidTypeError
from .evaluate import count_table_from_points, join_labels
from .evaluate.labels import _LAT_NAMES, _LNG_NAMES, _find_column, _numeric, _polygon_samples, _warn_binary


def _parse_floats(text, what="the option", kind=float):
    try:
        return [kind(v) for v in str(text).split(",") if v.strip()]
    except ValueError:  # said "could not convert string to float: 'abc'", naming no option
        raise InvalidInputError(f"{what} takes comma-separated {'integers' if kind is int else 'numbers'}, "
                                f"got {text!r}") from None


def _parse_ints(text, what="the option"):
    return _parse_floats(text, what, int)


def _read_table(path):
    path = Path(path).expanduser()  # --labels=~/x.csv: the shell leaves a "~" after "=" alone
    if not path.exists():
        raise InvalidInputError(f"file not found: {path}")
    import geopandas as gpd

    suffix = path.suffix.lower()  # DATA.CSV is a CSV too (GDAL would read it as text columns)
    try:  # a file of another format raised pyogrio's DataSourceError with a traceback, or a bare codec error
        if suffix in (".parquet", ".pq", ".geoparquet"):
            try:
                return gpd.read_parquet(path)
            except (ValueError, KeyError):
                from ._geoparquet import no_geo_error, only_wkb_places

                if only_wkb_places(path):  # a plain Parquet file of WKB geometries: how to convert it
                    raise no_geo_error(path) from None
                return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".tsv", ".tab"):  # GDAL read a .tsv as text columns
            try:  # a .csv of Excel in Germany or Brazil is ';'-separated with decimal commas: read as such
                return read_csv_utf8(path, None, table_ok=False, **({"sep": "\t"} if suffix in (".tsv", ".tab")
                                                                     else {}))
            except InvalidInputError as exc:  # not UTF-8: the line and how to convert it
                raise InvalidInputError(f"cannot read {path}: {exc} ({_GIVE})") from None
        return gpd.read_file(path)
    except InvalidInputError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise InvalidInputError(f"cannot read {path}: {(str(exc) or type(exc).__name__).splitlines()[0]} "
                                f"({_GIVE})") from None


_GIVE = "give a CSV/TSV, Parquet/GeoParquet, GeoJSON or another file GDAL reads"


# the columns that name a table's cells: cell_id, else the token column of a cell_embeddings table; its s2_cell
# column holds the same cells and is no feature either (a `geos2vec embed` output has s2_cell alone: one row per
# input row, a polygon's vector pooled over its cells, so it is no table of cells)
_ID_COLUMNS = ("cell_id", "token")


def _as_cell_table(df, name):
    """The numeric columns of a table of cells, indexed by uint64 ``cell_id``.

    The cells are a ``cell_id`` column or index of S2 cell ids or of tokens (``"89c25"``, as
    :func:`geos2vec.cell_to_token` writes them), else the ``token`` column of a :func:`geos2vec.cell_embeddings`
    table; the id columns (and its ``s2_cell``) are no features. Before, tokens were refused ("strings are
    tokens (see token_to_cell)", an advice for Python on the command line).
    """
    key = next((c for c in _ID_COLUMNS if c in df.columns), None)
    if key is not None:
        df = df.set_index(key)
    elif df.index.name not in _ID_COLUMNS:
        raise InvalidInputError(
            f"{name} needs a cell_id column or index (uint64 level-12 cell ids or their tokens, e.g. 89c25), or the "
            "token column of a cell_embeddings table" + (
                "; its s2_cell column looks like a `geos2vec embed` output, one row per input row, not a table of "
                "cells" if "s2_cell" in df.columns else ""))
    ids = df.index
    df = df.drop(columns=[c for c in (*_ID_COLUMNS, "s2_cell") if c in df.columns]).select_dtypes("number")
    df.index = _cell_index(ids, name)
    return df


def _cell_index(ids, name):
    """``ids`` (S2 cell ids, or tokens where some value is text) as a uint64 ``cell_id`` index."""
    values = ids.to_numpy(dtype=object)
    if not any(isinstance(v, str) for v in values):
        return _cell_id_index(ids, f"{name}: its cell_id values are not S2 cell ids")
    try:  # surrounding spaces of a hand-written CSV are no part of a token
        cells = token_to_cell(np.array([v.strip() if isinstance(v, str) else v for v in values], dtype=object))
    except (InvalidInputError, InvalidTypeError) as exc:
        raise type(exc)(f"{name}: its cell_id values are text but not all S2 tokens: {exc}") from None
    return pd.Index(np.asarray(cells, dtype=np.uint64), name="cell_id")


def _load_counts(paths, category):
    import geopandas as gpd

    tables = []
    for path in paths:
        df = _read_table(path)
        if isinstance(df, gpd.GeoDataFrame):
            lines = bool(df.geom_type.isin(["LineString", "MultiLineString"]).all())
            try:
                from .features import count_features
            except ImportError:  # the features stage is missing: a plain crosstab of the categories
                if lines:
                    raise InvalidInputError(f"{path}: counting roads needs geos2vec.features") from None
                tables.append(count_table_from_points(df, category or "fclass"))
                continue
            tables.append(_count_file(count_features, df, path, lines, category))
        else:
            tables.append(_as_cell_table(df, str(path)))
    if len(tables) == 1:  # as read (its coverage in attrs): nothing to add up but repeated cells
        table = tables[0].fillna(0.0)
        return table.groupby(level=0).sum().__finalize__(table)
    return _combine_tables(tables)


def _count_file(count_features, df, path, lines, category):
    """Counts of a POI or road file covering the convex hull of its coordinates (was everywhere: beyond, empty)."""
    from .errors import CoverageError

    kwargs = {"roads": df} if lines else {"pois": df, "category_column": category}
    try:
        return count_features(**kwargs, coverage="infer")
    except CoverageError:  # fewer than 3 coordinates: no area to infer
        print(f"note: {path}: too few coordinates to infer the area it covers; its counts are taken as covering "
              "everywhere (a cell without a row is empty)", file=sys.stderr)
        return count_features(**kwargs)


def _combine_tables(tables):
    """The sum of the ``--features`` tables, their coverage kept channel by channel (``combine_counts``).

    A channel a file lacks is missing there, not zero: it gets zeros and, where the file records its coverage
    (``count_features(..., coverage=...)``), an empty coverage (``pd.concat(...).fillna(0)`` made it zero
    and dropped every coverage, so that the baselines took cells with no data for empty ones).
    """
    from .features import combine_counts

    cols = list(dict.fromkeys(str(c) for t in tables for c in t.columns))
    aligned = []
    for t in tables:
        cov = t.attrs.get("coverage")
        u = t.rename(columns=str).fillna(0.0).reindex(columns=cols, fill_value=0)
        u.attrs = {k: v for k, v in t.attrs.items() if k != "coverage"}
        if isinstance(cov, dict):
            own = {str(c) for c in t.columns}
            lacking = {c: "POLYGON EMPTY" for c in cols if c not in own}
            u.attrs["coverage"] = {**cov, "channels": {**cov.get("channels", {}), **lacking}}
        aligned.append(u)
    return combine_counts(aligned, assume_additive=True)


def _geo_labels(labels, args) -> bool:
    """Labels located by their geometries: a GeoDataFrame without ``--lat`` / ``--lon``."""
    import geopandas as gpd

    return isinstance(labels, gpd.GeoDataFrame) and args.lat is None and args.lon is None


def _label_lnglat(labels, args):
    """Longitude and latitude of each label row (degrees): its geometry's (any CRS), else its columns.

    ``--within`` read the lat/lon columns even of a GeoDataFrame, so a GeoParquet of points in a projected CRS
    (no such columns) failed with "no latitude column found".
    """
    if _geo_labels(labels, args):
        return representative_lnglat(to_wgs84(as_geoseries(labels, "--labels"), "--labels"))
    lat_col = _find_column(labels.columns, args.lat, _LAT_NAMES, "latitude")
    lng_col = _find_column(labels.columns, args.lon, _LNG_NAMES, "longitude")
    return _numeric(labels[lng_col], lng_col), _numeric(labels[lat_col], lat_col)


def _samples(labels, args):
    """``(target, pooling)`` of the labels: point labels as cells, polygon labels pooled over cells.

    Points: the median per cell (``pooling`` None). Polygons: each distinct geometry pooled over the cells it
    covers with area weights, as the tract tasks are (rows with the same geometry are one sample, their median
    target, as points in one cell are). Before, a polygon was reduced to one point without a word.
    """
    if not (_geo_labels(labels, args) and len(labels) and not labels.geom_type.dropna().eq("Point").all()):
        joined = join_labels(labels, args.target, lat=args.lat, lng=args.lon)
        _note_missing_targets(joined.attrs["n_missing_target"], len(labels))
        return joined[args.target], None
    if args.target not in labels.columns:
        raise InvalidInputError(f"target column {args.target!r} not found; columns are {list(labels.columns)}"
                                + column_hint(args.target, labels.columns))
    if not pd.api.types.is_numeric_dtype(labels[args.target]):
        raise InvalidTypeError(f"target column {args.target!r} must be numeric, got dtype {labels[args.target].dtype}")
    _warn_binary(labels[args.target], f"target column {args.target!r}")
    y = labels[args.target].astype(float).to_numpy()
    finite = np.isfinite(y)
    _note_missing_targets(int((~finite).sum()), len(labels))
    # inf is missing, as for points (a median with an inf row was inf); a row without target or geometry raised
    keep = finite | ~(labels.geometry.isna() | labels.geometry.is_empty).to_numpy()
    labels, y = labels[keep], np.where(finite, y, np.nan)[keep]
    geoms = to_wgs84(as_geoseries(labels, "--labels"), "--labels")
    check_missing(geoms, "raise", "--labels", coerce=None)
    target, pooling = _polygon_samples(geoms, y)
    print(f"note: {len(labels)} polygon labels, {len(target)} distinct geometries: each a sample pooled over the "
          "level-12 cells it covers with area weights (as the tract tasks)", file=sys.stderr)
    return target.rename(args.target), pooling


def _note_missing_targets(n_missing, n_rows):
    if n_missing:
        print(f"note: {n_missing} of {n_rows} label rows have no finite target (NaN or inf) and are left out",
              file=sys.stderr)


def _bbox(text):
    vals = _parse_floats(text, "a bbox")
    if len(vals) != 4:
        raise InvalidInputError(f"a bbox needs 4 numbers MINLON,MINLAT,MAXLON,MAXLAT, got {text!r}")
    return vals
