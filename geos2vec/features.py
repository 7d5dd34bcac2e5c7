"""Built-environment features: per-cell histograms of POI categories and roads.

:func:`count_features` turns POIs (points with a category) and roads (lines)
into the S2Vec feature table: one row per S2 cell (level 12 by default), one
integer column per POI channel of the ontology, then ``road`` (the number of
distinct roads crossing the cell), then any user ``extra`` channels. The table
is the contract every later stage (rasterization, normalization, the model)
uses:

* a :class:`pandas.DataFrame` indexed by ``uint64`` cell ids, index named
  ``cell_id``, sorted ascending;
* columns: ``ontology.channels`` (int64), ``road`` (int64), extras;
* ``df.attrs["report"]``: what was counted and what was dropped (unknown or
  missing categories, non-road highway values, coerced geometries). Anything
  dropped also raises a :class:`~geos2vec.errors.Geos2VecWarning` (a ``UserWarning``): nothing is lost silently.

Binning is numba: a hash table maps cell ids to dense rows in one pass and a
scatter-add fills the count matrix; there is no pandas ``groupby`` on the hot
path. Roads are covered exactly in S2's geometry, see :mod:`geos2vec._cover`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import _cover, _s2, _value_sums
from . import cells as _cells
from ._stacklevel import find_stack_level, warn as _warn
from .errors import Geos2VecWarning, InvalidInputError, InvalidTypeError, foreign_frame
from ._feature_inputs import (MAX_EXTRA_CATEGORIES, _categories, _check_antipodal, _check_coords,  # noqa: F401
                              _check_labels, _check_unique_columns, _count_tables, _NUMERIC_AGGS, _non_road_highways,
                              _parse_extra, _point_coords, _road_lines, _unread_tags, _unrecordable,
                              _columns_differ, _missing_column, _whole_number_names)
from .ontology import _category_values, load_ontology
from ._category_order import sorted_categories
from .provenance import provenance

if TYPE_CHECKING:
    from collections.abc import Iterable

    import dask.dataframe as dd
    import geopandas as gpd

    from ._typing import CoverageLike, OntologyLike

__all__ = ["count_features", "combine_counts", "CATEGORY_COLUMNS", "ROAD_COLUMNS"]

CATEGORY_COLUMNS = ("fclass", "category", "osm_value")
ROAD_COLUMNS = ("highway", "fclass")
_TOP = 20


# --------------------------------------------------------------------------- public API
def count_features(pois: pd.DataFrame | dd.DataFrame | None = None,
                   roads: gpd.GeoDataFrame | gpd.GeoSeries | dd.DataFrame | dd.Series | None = None, *,
                   level: int = 12,
                   ontology: OntologyLike = "default", category_column: str | None = None,
                   key_column: str | None = None,
                   extra: str | list[str] | tuple[str, ...] | dict[str, str] | None = None,
                   road_column: str | None = "auto", errors: str = "raise",
                   coverage: CoverageLike | None = None) -> pd.DataFrame:
    """Per-cell feature histogram: POI counts per category, road count, user channels.

    Parameters
    ----------
    pois : GeoDataFrame, DataFrame or a dask(-geopandas) frame, optional
        Points of interest, with a category column (a bare GeoSeries has none: it is a ``TypeError``
        that says how to wrap it). Points count in the cell containing them; other
        geometries (counted in ``report["non_point_pois"]``) at their representative point: lines halfway
        along their length (in EPSG:4326), polygons ``shapely.point_on_surface``. A plain DataFrame needs
        ``lon``/``lat`` columns in WGS84 degrees. A projected CRS is
        transformed; a missing CRS is an error. dask frames (of POIs or
        roads) are counted partition by partition and summed in a tree
        (:func:`geos2vec.partitioned.count_features_dask`): the same table.
    roads : GeoDataFrame or GeoSeries of (Multi)LineStrings, optional
        Each road counts once in every cell its line crosses (S2 geodesic
        edges; see ``docs/features.md``).
    level : int, default 12
        S2 level of the cells.
    ontology : "default", "v1", Ontology, dict or list
        Category -> channel mapping (:func:`geos2vec.ontology.load_ontology`):
        a packaged version, ``{tag: channel}`` with tags ``"key=value"``,
        ``"key=*"`` or bare values, or a list of channels that are the category
        values themselves.
    category_column : str, optional
        Column of ``pois`` with the category (OSM tag value, or ``key=value``; surrounding spaces are
        stripped, case is kept). Default: the first of ``fclass``, ``category``, ``osm_value`` present.
    key_column : str, optional
        Column with the OSM key of each category value (e.g. ``osm_key``, as
        :func:`geos2vec.io.read_osm` returns). Default: ``osm_key`` if present.
    extra : str, list or dict, optional
        User channels from columns of ``pois``, placed after ``road``. A list
        entry (or a dict value ``"categories"``) counts each value of a
        categorical column as channel ``"<column>=<value>"`` (values sorted, numbers by value, "9" before "10";
        the whole numbers of a float column are named like ints, ``k=1`` for
        1.0 as for 1, so a column of ints read as float because of a NaN
        gives the same channels);
        a dict value ``"sum"``, ``"mean"``, ``"min"``, ``"max"`` or ``"count"``
        aggregates a numeric column per cell into a float64 channel named
        like the column (NaN skipped; a cell with no values gets 0 for sum and
        count, NaN for mean/min/max).
    road_column : "auto", str or None
        Column of ``roads`` with the ``highway`` class; lines whose class is not
        a road class of the ontology (e.g. ``proposed``, ``corridor``) are
        dropped and reported. ``"auto"`` uses ``highway`` when present;
        ``None`` counts every line.
    errors : {"raise", "coerce"}
        Missing/empty geometries (or NaN lon/lat) raise, or with ``"coerce"``
        are skipped and counted in the report.
    coverage : polygon, box, GeoSeries/GeoDataFrame, WKT, ``.osm.pbf`` path or "infer", optional
        Where the source has data (see :mod:`geos2vec.coverage`): cells in it
        without a row are known to be empty, cells outside it are unknown.
        ``"infer"`` takes the convex hull of the input. Stored in
        ``df.attrs["coverage"]``; the ``road`` channel is recorded as missing
        when ``roads`` is None (and the POI channels when ``pois`` is None), or
        a layer its reader did not read (``attrs["not_read"]``, as
        :func:`geos2vec.io.read_osm` marks the layer it was told to skip), and
        so is every POI channel that ``pois`` cannot hold when it declares what
        it can: ``pois.attrs["source_tags"]``, a list of ``key=value`` tags
        (:func:`geos2vec.io.read_wof` sets it from its crosswalk; Who's On First
        venues whose ``attrs`` were lost, e.g. in ``pd.concat``, are recognised
        by their ``wof_id`` and ``sg_category`` columns).
        Default None: coverage unknown (v0.1 behaviour).

    Returns
    -------
    pandas.DataFrame
        Index ``cell_id`` (uint64, sorted): every cell holding at least one
        input POI (of any category, also dropped ones) or road. Columns: the
        ontology's POI channels and ``road`` (int64), then ``extra`` channels.
        ``df.attrs["report"]`` is a dict: ``n_pois``, ``n_pois_counted``,
        ``dropped_categories`` ({value: count}, most frequent first),
        ``n_missing_category``, ``non_point_pois``, ``n_roads``,
        ``n_roads_counted``, ``dropped_roads`` ({highway value: count}),
        ``coerced_pois``, ``coerced_roads``, ``level``, ``ontology``.

    Raises
    ------
    InvalidInputError (a ValueError)
        Missing CRS, NaN/out-of-range coordinates (index labels named), missing
        geometries with ``errors="raise"``, non-line roads, no category column,
        unknown extra columns, duplicate column names, channel name clashes.
    InvalidTypeError (a TypeError)
        Wrong input types; non-numeric columns for numeric aggregations.
    CoverageError (a ValueError)
        A ``coverage`` that is not a usable area (see :func:`geos2vec.coverage.as_coverage`).

    Warns
    -----
    Geos2VecWarning
        (a ``UserWarning``) When POIs or roads were dropped (unknown/missing category, non-road
        highway class); details in ``df.attrs["report"]``.
    CoverageWarning
        When more than half of the input coordinates (POIs and road vertices)
        lie outside the given ``coverage`` (a coverage in another CRS, or with
        longitude and latitude swapped), or when it is empty (covers nothing).

    Examples
    --------
    >>> import geopandas as gpd, geos2vec
    >>> pois = gpd.read_parquet("../shared/data/pois/nyc.parquet")      # doctest: +SKIP
    >>> roads = gpd.read_parquet("../shared/data/roads/nyc.parquet")    # doctest: +SKIP
    >>> table = geos2vec.count_features(pois, roads)                    # doctest: +SKIP
    >>> table.attrs["report"]["dropped_categories"]                     # doctest: +SKIP
    """
    from .partitioned import is_dask

    partitioned = is_dask(pois) or is_dask(roads)
    if partitioned:  # partition by partition, summed in a tree: the same table
        from .partitioned import count_features_dask

        out = count_features_dask(pois, roads, level=level, ontology=ontology, category_column=category_column,
                                  key_column=key_column, extra=extra, road_column=road_column, errors=errors,
                                  coverage=coverage)
    else:
        out = _count_features(pois, roads, level=level, ontology=ontology, category_column=category_column,
                              key_column=key_column, extra=extra, road_column=road_column, errors=errors,
                              coverage=coverage)
        _warn_dropped(out.attrs["report"])
        if pois is not None and extra is not None:  # k=1 for the whole number 1.0 of a float column, as for 1
            out = _whole_number_names(out, pois, extra, len(load_ontology(ontology).all_channels))  # dask: done
    out.attrs["geos2vec"] = provenance(stage="features", level=level, partitioned=partitioned or None,
                                       ontology=ontology if isinstance(ontology, str) else "custom")
    return out


def _count_features(pois, roads, *, level, ontology, category_column, key_column, extra, road_column, errors,
                    coverage) -> pd.DataFrame:
    """count_features of in-memory frames, without the warning (the dask path warns once for all parts)."""
    if errors not in ("raise", "coerce"):
        raise InvalidInputError(f"errors must be 'raise' or 'coerce', got {errors!r}")
    level = _cells._check_level(level)
    onto = load_ontology(ontology)
    if pois is None and roads is None:
        raise InvalidInputError("count_features needs pois and/or roads")
    report = {"level": level, "ontology": onto.name, "n_pois": 0, "n_pois_counted": 0,
              "dropped_categories": {}, "n_missing_category": 0, "non_point_pois": 0, "coerced_pois": 0,
              "n_roads": 0, "n_roads_counted": 0, "dropped_roads": {}, "coerced_roads": 0,
              "category_column": None, "road_column": None}

    n_poi_ch = len(onto.channels)
    cell_parts, chan_parts = [], []
    frame = pois if isinstance(pois, pd.DataFrame) else None
    if pois is not None and frame is None:
        raise InvalidTypeError(
            f"pois must be a GeoDataFrame (or a DataFrame with lon/lat columns) with a category column, got "
            f"{type(pois).__name__}{foreign_frame(pois)}"
            + (isinstance(pois, str) or hasattr(pois, "__fspath__")) * " (a path: geos2vec.io.read_pois(path) reads it)"
            + "; for a bare GeoSeries use geopandas.GeoDataFrame({'category': ...}, geometry=series)")
    _check_labels(category_column=category_column, key_column=key_column, road_column=road_column)
    _check_unique_columns(frame, "pois")
    _check_unique_columns(roads, "roads")
    extras = _parse_extra(extra, frame)
    kept = None
    poi_cells = np.empty(0, dtype=np.uint64)
    input_xy = []  # (lng, lat) of the POIs and road vertices, to check them against the coverage
    if pois is not None:
        lat, lng, kept, report["non_point_pois"], report["coerced_pois"] = _point_coords(pois, errors)
        input_xy.append((lng, lat))
        report["n_pois"] = int(kept.size)
        _check_coords(lat, lng, getattr(pois, "index", None), kept, "pois")
        poi_cells = _cells.latlng_to_cell(lat, lng, level) if lat.size else np.empty(0, dtype=np.uint64)
        column = category_column
        if column is None:
            column = next((c for c in CATEGORY_COLUMNS if c in frame.columns), None)
            if column is None:
                raise InvalidInputError(f"pois has no category column (looked for {list(CATEGORY_COLUMNS)}; columns "
                                        f"are {list(frame.columns)}); name it: count_features(pois, category_column="
                                        "...), and give embed that table (CLI: --category)")
        elif column not in frame.columns:
            raise _missing_column("category_column", column, frame, listed=True)
        if key_column is None and "osm_key" in frame.columns and column != "osm_key":
            key_column = "osm_key"
        elif key_column is not None and key_column not in frame.columns:
            raise _missing_column("key_column", key_column, frame)
        report["category_column"] = column
        unread = _unread_tags(frame, onto)
        if unread:
            report["unread_tags"] = unread
        chan, report["dropped_categories"], report["n_missing_category"] = _categories(
            frame, kept, column, key_column, onto)
        report["n_pois_counted"] = int(np.count_nonzero(chan >= 0))
        cell_parts.append(poi_cells)
        chan_parts.append(chan)

    road_line_cells = np.empty(0, dtype=np.uint64)
    if roads is not None:
        lines, rkept, report["dropped_roads"], report["coerced_roads"], report["road_column"] = _road_lines(
            roads, errors, road_column, onto)
        report["n_roads"] = int(rkept.size)
        other = _non_road_highways(roads, rkept, road_column, onto)
        if other:
            report["non_road_highways"] = other
        report["n_roads_counted"] = int(lines.size)
        if lines.size:
            lat_r, lng_r, part_start, part_line = _cover.line_arrays(lines)
            _check_coords(lat_r, lng_r, None, np.ones(lat_r.size, dtype=bool), "roads")
            input_xy.append((lng_r, lat_r))
            _check_antipodal(lat_r, lng_r, part_start)
            _, road_line_cells = _cover.cover_lines_kernel(lat_r, lng_r, part_start, part_line, lines.size,
                                                           level, _s2.LOOKUP_POS)
        cell_parts.append(road_line_cells)
        chan_parts.append(np.full(road_line_cells.size, n_poi_ch, dtype=np.int32))

    # ------------------------------------------------------------ extra channels (pois rows)
    extra_cat_names, extra_cat_codes, numeric = [], [], []
    order_spec = []  # ("cat", names) or ("num", name) in user order
    for col, how in extras:
        values = frame[col]
        if kept is not None and not kept.all():
            values = values[kept]
        if how == "categories":  # sorted by value (a categorical dtype's category order too, as the dask path)
            values = values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values
            values = _category_values(values)  # "café", "café " and a decomposed "café": one channel
            codes, uniques = sorted_categories(values)  # numbers by value, also as text (dask's strings)
            names = [f"{col}={u}" for u in uniques]  # k=1.0 of a float column: count_features renames it k=1
            extra_cat_codes.append((codes.astype(np.int32), len(extra_cat_names)))
            extra_cat_names.extend(names)
            order_spec.append(("cat", names))
            n_na = int(np.count_nonzero(codes < 0))
            if n_na:
                report.setdefault("extra_missing", {})[col] = n_na
        else:
            vals = pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.nan)
            numeric.append((col, _NUMERIC_AGGS[how], _s2.writable_view(vals)))  # one compiled signature
            if how in ("mean", "min", "max"):
                report.setdefault("non_additive", []).append(col)
            order_spec.append(("num", col))

    default_cols = onto.all_channels
    all_names = default_cols + extra_cat_names + [c for c, _, _ in numeric]
    dup = sorted({c for c in all_names if all_names.count(c) > 1})
    if dup:
        raise InvalidInputError(f"channel names clash: {dup}; rename the extra columns")

    # ------------------------------------------------------------ binning
    all_cells = np.concatenate(cell_parts) if cell_parts else np.empty(0, dtype=np.uint64)
    rows, uniq = _cover.dense_rows_kernel(all_cells)
    order = np.argsort(uniq, kind="stable")
    remap = np.empty(uniq.size, dtype=np.int64)
    remap[order] = np.arange(uniq.size)
    sorted_cells = uniq[order]
    n_cells = sorted_cells.size
    n_int = len(default_cols) + len(extra_cat_names)
    counts = np.zeros((n_cells, n_int), dtype=np.int64)
    start = 0
    for part_cells, part_chan in zip(cell_parts, chan_parts):
        stop = start + part_cells.size
        _cover.scatter_count_kernel(rows[start:stop], remap, part_chan, 0, counts)
        start = stop
    poi_rows = rows[:poi_cells.size]
    for codes, offset in extra_cat_codes:
        _cover.scatter_count_kernel(poi_rows, remap, codes, len(default_cols) + offset, counts)

    index = pd.Index(sorted_cells, dtype=np.uint64, name="cell_id")
    out = pd.DataFrame(counts, index=index, columns=default_cols + extra_cat_names, copy=False)
    if numeric:
        num_cols = {}
        for col, how, vals in numeric:  # sum/mean: each cell's values added by value, not in the rows' order
            num_cols[col] = (_value_sums.cell_sums(remap[poi_rows], vals, n_cells, mean=how == 1) if how in (0, 1)
                             else _cover.reduce_numeric_kernel(poi_rows, remap, vals, n_cells, how)[0])  # same bits
        ordered = list(default_cols)
        for kind, spec in order_spec:
            ordered.extend(spec if kind == "cat" else [spec])
        out = pd.concat([out, pd.DataFrame(num_cols, index=index)], axis=1)[ordered]
    out.columns.name = "feature"
    out.attrs["report"] = report
    if coverage is not None:
        from .coverage import _warn_loose_header, _warn_outside, as_coverage, infer_coverage, set_coverage

        if isinstance(coverage, str) and coverage == "infer":
            geom = infer_coverage(pois, roads)
        else:
            geom = as_coverage(coverage)
            # their warnings point at the user's call: one frame below this one, in coverage.py
            _warn_outside(geom, input_xy, source=coverage, stacklevel=find_stack_level() + 1)
            _warn_loose_header(coverage, geom, input_xy, stacklevel=find_stack_level() + 1)
        set_coverage(out, geom, missing_channels=_missing_channels(pois, roads, onto, out))
    return out


def _missing_channels(pois, roads, onto, table=None) -> list:
    """The channels the sources cannot record: a layer not given or not read, and unrecordable POI channels.

    With ``table`` (the counts), a ``source_tags`` declaration that misses a channel holding counts does not
    describe the counted column and is ignored (see :func:`geos2vec._feature_inputs._unrecordable`).
    """
    from ._coverage_layers import MissingChannels
    from .coverage import _not_read

    cols, n_poi = list(onto.all_channels), len(onto.channels)
    missing = cols[n_poi:] if roads is None or _not_read(roads) else []
    if pois is None or _not_read(pois):
        return MissingChannels(missing + cols[:n_poi])
    out = MissingChannels(missing + _unrecordable(pois, onto, cols[:n_poi], table))
    if not missing and table is not None:  # both layers: outside the coverage a row has only its own layer's
        out.layers = [[str(c) for c in table.columns if c not in cols[n_poi:]], [str(c) for c in cols[n_poi:]]]
    return out


def _warn_dropped(report):
    msgs = []
    n_unknown = sum(report["dropped_categories"].values())
    if n_unknown:
        top = list(report["dropped_categories"].items())[:5]
        msgs.append(f"{n_unknown} POIs with {len(report['dropped_categories'])} categories outside the ontology "
                    f"(most frequent: {top})")
    if report["n_missing_category"]:
        msgs.append(f"{report['n_missing_category']} POIs with a missing/blank category")
    n_roads = sum(report["dropped_roads"].values())
    if n_roads:
        msgs.append(f"{n_roads} lines whose {report['road_column']} is not a road class "
                    f"({list(report['dropped_roads'].items())[:5]})")
    for key, what in (("coerced_pois", "POIs"), ("coerced_roads", "roads")):
        if report[key]:
            msgs.append(f"{report[key]} {what} without geometry skipped (errors='coerce')")
    if msgs:
        _warn("count_features counted these in no channel: " + "; ".join(msgs)
              + ". Details: result.attrs['report']", Geos2VecWarning)
    other = report.get("non_road_highways")
    if other:
        _warn(f"count_features counted {sum(other.values())} lines as roads whose highway value is not a road "
              f"class of the default ontology ({list(other.items())[:5]}): ontology {report['ontology']!r} "
              "has no road classes, so every line counts. To count only roads, build it with "
              "Ontology.from_mapping(..., road_values='default') (or from_channels); to keep them, pass "
              "road_column=None. Details: result.attrs['report']['non_road_highways']", Geos2VecWarning)
    unread = report.get("unread_tags")
    if unread:
        _warn(f"count_features: these POIs were read by read_osm with an ontology that does not select "
              f"{len(unread)} tag(s) of the one counted with (e.g. {unread[:5]}): POIs with those tags were "
              "never read, so their channels hold only POIs that carry another selected tag. Read the file "
              "with read_osm(path, ontology=<the ontology you count with>). Details: "
              "result.attrs['report']['unread_tags']", Geos2VecWarning)


def combine_counts(tables: Iterable[pd.DataFrame], *, assume_additive: bool = False) -> pd.DataFrame:
    """Sum feature tables with the same columns (e.g. of dask partitions or map tiles).

    Cells present in several tables are added up; the result is sorted by
    cell id. Only additive channels can be combined (counts, ``sum``,
    ``count``); ``mean``/``min``/``max`` extras cannot and raise. Float
    channels of a table without its ``count_features`` report (``attrs``)
    raise unless ``assume_additive=True``: a lost report must not turn
    means into sums. Coverage
    (:mod:`geos2vec.coverage`) is the union of the parts', channel by
    channel; unknown when any part's is unknown (with a ``CoverageWarning``
    when some parts have one).

    Parameters
    ----------
    tables : iterable of pandas.DataFrame
        ``count_features`` tables of one level, with the same columns in the
        same order, indexed by uint64 cell ids.
    assume_additive : bool, default False
        Treat float channels of tables without a ``count_features`` report as
        sums.

    Returns
    -------
    pandas.DataFrame
        Index ``cell_id`` (uint64, sorted, unique); the columns of the tables,
        each in the dtype that holds every part's values (e.g. int64, or
        float64 where some part is float; booleans are added up as int64). ``attrs["report"]`` is
        ``{"combined_from": len(tables), "non_additive": []}`` and
        ``attrs["coverage"]`` the combined coverage when every part has one.

    Raises
    ------
    InvalidInputError (a ValueError)
        No tables, different or duplicate columns, cells of different levels,
        non-additive channels, or float channels of unknown kind (see
        ``assume_additive``), or a table whose index is not of cell ids.
    InvalidTypeError (a TypeError)
        ``tables`` is one DataFrame (pass ``[table]``) or holds something else than
        DataFrames, or a table has non-numeric columns.

    Warns
    -----
    CoverageWarning
        When some, but not all, parts have a coverage.
    """
    tables = _count_tables(tables)
    cols = list(tables[0].columns)
    for t in tables[1:]:
        if list(t.columns) != cols:
            raise _columns_differ(cols, list(t.columns))
    levels = set()
    for t in tables:
        if len(t):
            levels |= set(np.unique(_cells.get_level(t.index.to_numpy(dtype=np.uint64))).tolist())
    if len(levels) > 1:
        raise InvalidInputError(f"combine_counts needs tables of one level, got levels {sorted(levels)}")
    for t in tables:
        rep = t.attrs.get("report")
        if rep and rep.get("non_additive"):
            raise InvalidInputError(f"columns {rep['non_additive']} are not additive (mean/min/max)")
        floats = [c for c in cols if t[c].dtype.kind == "f"]
        if rep is None and floats and not assume_additive:
            # integer columns are counts; a float column may be a mean whose "non-additive" mark was lost
            raise InvalidInputError(
                f"cannot tell whether the float channel(s) {floats[:5]} are additive (sums, counts) or not "
                "(mean/min/max extras, which must not be summed): the table has no count_features report in "
                "its attrs. Pass assume_additive=True if they are sums")
    cells = np.concatenate([t.index.to_numpy(dtype=np.uint64) for t in tables])
    # each column in the type that holds every part exactly (int + float -> float: 0.5 stays 0.5)
    col_types = [np.result_type(*[t[c].dtype if isinstance(t[c].dtype, np.dtype) else t[c].to_numpy().dtype
                                  for t in tables]) for c in cols]
    col_types = [np.dtype(np.int64) if dt.kind == "b" else dt for dt in col_types]  # True + True is 2, not True
    values = np.empty((cells.size, len(cols)), dtype=np.result_type(*col_types))  # one table's conversion at a time
    for t, a in zip(tables, np.cumsum([0] + [len(t) for t in tables])):
        values[a:a + len(t)] = t.to_numpy(dtype=values.dtype)
    rows, uniq = _cover.dense_rows_kernel(cells)
    order = np.argsort(uniq, kind="stable")
    remap = np.empty(uniq.size, dtype=np.int64)
    remap[order] = np.arange(uniq.size)
    # floats added by value per cell, not in the tables' order (any order: the same bits)
    acc = _value_sums.add_rows(remap[rows], values, uniq.size, np.array([dt.kind == "f" for dt in col_types], bool))
    out = pd.DataFrame(acc, index=pd.Index(uniq[order], dtype=np.uint64, name="cell_id"), columns=cols, copy=False)
    for c, dt in zip(cols, col_types):
        if out[c].dtype != dt:  # the others stay in one block
            out[c] = out[c].astype(dt)
    out.columns.name = tables[0].columns.name
    out.attrs["report"] = {"combined_from": len(tables), "non_additive": []}  # a sum of sums: additive
    from .coverage import combine_coverage, has_coverage

    cov = combine_coverage(tables)
    if cov is not None:
        out.attrs["coverage"] = cov
    elif any(has_coverage(t) for t in tables):
        from .errors import CoverageWarning

        _warn(f"combine_counts: {sum(not has_coverage(t) for t in tables)} of {len(tables)} tables have "
              "no coverage, so the combined table's coverage is unknown; pass coverage= to "
              "count_features for every part", CoverageWarning)
    return out
