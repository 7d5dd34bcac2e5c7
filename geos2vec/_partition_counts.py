"""The pieces of :func:`geos2vec.partitioned.count_features_dask`: one table per partition, and their sum.

Each partition of the POIs and of the roads is counted on its own (:func:`_count_part`); the tables are summed
in a tree (:func:`_combine`), their reports merged into the one ``count_features`` gives for the whole input.
Categorical ``extra`` columns get their column order from every partition's values (:func:`_extra_plan`,
:func:`_kept_values`, :func:`_final_columns`); coverage is checked from what each partition sends: its counts
outside a given coverage (:func:`_outside_part`) or its hull vertices for ``coverage="infer"`` (:func:`_hull`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InvalidInputError
from .ontology import _category_values

_SUM_KEYS = ("n_pois", "n_pois_counted", "n_missing_category", "non_point_pois", "coerced_pois", "n_roads",
             "n_roads_counted", "coerced_roads")


def _add_dicts(dicts) -> dict:
    from ._feature_inputs import most_frequent_first

    out: dict = {}
    for d in dicts:
        for k, v in (d or {}).items():
            out[k] = out.get(k, 0) + int(v)
    return most_frequent_first(out.items())


def _merge_reports(reports: list[dict]) -> dict:
    """The report ``count_features`` gives for the whole input, from those of its parts."""
    out = dict(reports[0])
    for key in _SUM_KEYS:
        out[key] = int(sum(r.get(key, 0) for r in reports))
    for key in ("dropped_categories", "dropped_roads"):
        out[key] = _add_dicts(r.get(key) for r in reports)
    for key in ("extra_missing", "non_road_highways"):
        if any(key in r for r in reports):
            out[key] = _add_dicts(r.get(key) for r in reports)
    if any(r.get("unread_tags") for r in reports):  # the same list wherever the reader said what it selected
        out["unread_tags"] = next(r["unread_tags"] for r in reports if r.get("unread_tags"))
    for key in ("category_column", "road_column"):
        out[key] = next((r[key] for r in reports if r.get(key) is not None), None)
    return out


def _count_part(pois, roads, kwargs, columns):
    """One partition's table (no warning: the merged report warns once), aligned to ``columns``."""
    from .features import _count_features

    t = _count_features(pois, roads, **kwargs)
    report = t.attrs["report"]
    if columns is not None and list(t.columns) != columns:
        t = t.reindex(columns=columns, fill_value=0)
    t.attrs["report"] = report
    return t


def _reindexed(t, cols):
    """``t`` with the columns ``cols`` (absent ones 0), its attrs (report, coverage) kept."""
    out = t.reindex(columns=cols, fill_value=0)
    out.attrs = dict(t.attrs)
    return out


def _combine(tables):
    """``combine_counts`` of some partition tables, keeping their merged report."""
    from .features import combine_counts

    tables = [t for t in tables]
    report = _merge_reports([t.attrs["report"] for t in tables])
    cols = list(dict.fromkeys(c for t in tables for c in t.columns))  # categorical extras differ per partition
    if any(list(t.columns) != cols for t in tables):
        tables = [t if list(t.columns) == cols else _reindexed(t, cols) for t in tables]
    out = combine_counts(tables) if len(tables) > 1 else tables[0].copy()
    out.attrs["report"] = report
    return out


def _extra_plan(pois, extra, ontology):
    """``(parsed extra specs, column order or None)`` for ``extra``, from the POIs' meta (no data read).

    The order is known up front when ``extra`` has no categorical column; otherwise each partition's category
    values are collected in the counting pass (:func:`_kept_values`) and the order is set at the end
    (:func:`_final_columns`), so the POIs are read once.
    """
    from .features import _parse_extra

    meta = pois._meta if hasattr(pois, "_meta") else pois
    specs = _parse_extra(extra, meta)
    if not specs:
        return specs, None
    for col, how in specs:
        if how in ("mean", "min", "max"):
            raise InvalidInputError(
                f"extra column {col!r} asks for {how!r}, which cannot be computed partition by partition "
                "and summed; use 'sum' and 'count' (mean = sum / count), or compute() the POIs first")
    if any(how == "categories" for _, how in specs):
        return specs, None
    from .ontology import load_ontology

    return specs, list(load_ontology(ontology).all_channels) + [col for col, _ in specs]


def _final_columns(specs, ontology, values):
    """The column order ``count_features`` gives in memory, from every partition's category values.

    The ontology's channels, then the extra columns in the user's order, each categorical one as its values
    sorted over all partitions (``values``: per partition, ``{column: its kept values}``).
    """
    from ._category_order import sorted_categories
    from ._feature_inputs import MAX_EXTRA_CATEGORIES
    from .ontology import load_ontology

    ordered = list(load_ontology(ontology).all_channels)
    for col, how in specs:
        if how != "categories":
            ordered.append(col)
            continue
        parts = [np.asarray(v[col]) for v in values]
        allv = np.concatenate(parts) if parts else np.empty(0, dtype=object)
        _, uniques = sorted_categories(pd.Series(allv))  # as count_features sorts them in memory
        if len(uniques) > MAX_EXTRA_CATEGORIES:
            raise InvalidInputError(
                f"extra column {col!r} has {len(uniques):,} distinct values over all partitions: counting them as "
                f"categories would make {len(uniques):,} channels (limit {MAX_EXTRA_CATEGORIES:,}); is it an "
                "identifier? Bin it first, or aggregate a numeric column with extra={col: 'sum'|'mean'|...}")
        ordered += [f"{col}={u}" for u in uniques]
    return ordered


def _kept_values(part, cols, errors):
    """``{col: distinct values of part[col]}`` on the rows ``count_features`` counts (not those it skips)."""
    keep = None
    if errors == "coerce":  # rows without coordinates are skipped, their categories give no column
        from ._feature_inputs import _point_coords

        keep = _point_coords(part, errors)[2]
    out = {}
    for col in cols:
        values = part[col] if keep is None else part[col][keep]
        values = values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values
        out[col] = _category_values(values).dropna().unique()  # named as count_features names them
    return out


def _outside_part(frame, geom):
    """``((coordinates, outside geom), bounding-box corners)`` of one partition, read as ``count_features`` does.

    The corners are ``(2, 2)`` lon/lat, or ``(0, 2)`` without finite coordinates.
    """
    from ._coverage_input import _lnglat_of
    from ._coverage_layers import outside_counts as _outside_counts

    xy = _lnglat_of(frame)
    ok = xy[np.isfinite(xy).all(axis=1)]
    return _outside_counts(geom, xy[:, 0], xy[:, 1]), (np.stack([ok.min(0), ok.max(0)]) if len(ok) else ok)


def _hull(frame):
    """One partition's share of ``coverage="infer"``: ``(xy, xy_cells, cells, counts)``.

    ``cells`` the level-8 cells its finite coordinates lie in (sorted) and ``counts`` how many in each; ``xy`` the
    coordinates that are hull vertices of their cell's coordinates in plain or [0, 360) longitudes, ``xy_cells``
    their cells. The hull of all of them is the hull of every coordinate, and the counts tell which cells are
    isolated (the check :func:`geos2vec.coverage.infer_coverage` makes in memory).
    """
    import shapely

    from ._coverage_input import _lnglat_of
    from ._lnglat_hull import east_longitudes
    from .cells import latlng_to_cell
    from .io.wof_coverage import NEIGHBOURHOOD_LEVEL

    xy = _lnglat_of(frame)  # the one reader infer_coverage uses
    xy = xy[np.isfinite(xy).all(axis=1)]
    cell = latlng_to_cell(xy[:, 1], xy[:, 0], NEIGHBOURHOOD_LEVEL)
    cells, group, counts = np.unique(cell, return_inverse=True, return_counts=True)
    group = group.ravel()
    keep = np.zeros(len(xy), bool)
    if len(xy):
        for lon in (xy[:, 0], east_longitudes(xy[:, 0])):  # the input's own values returned
            order = np.argsort(group, kind="stable")  # shapely wants the points of each hull together
            pts = np.column_stack([lon, xy[:, 1]])[order]
            hulls = shapely.convex_hull(shapely.multipoints(pts, indices=group[order]))  # one per level-8 cell
            corners = shapely.get_coordinates(hulls)
            # the vertices (a coordinate equal to another cell's vertex too: one more input point, same hulls)
            keep |= np.isin(lon + 1j * xy[:, 1], corners[:, 0] + 1j * corners[:, 1])
    return xy[keep], cell[keep], cells, counts


def _inferred(hull_parts):
    """``coverage="infer"`` from the partitions' :func:`_hull` shares.

    The hull of every coordinate, with the in-memory warning about isolated coordinates (the cells' counts
    summed over partitions).
    """
    from ._lnglat_hull import hull_and_flat
    from .coverage import infer_coverage
    from .io.wof_coverage import _warn_stretched_cells

    xy = np.concatenate([h[0] for h in hull_parts])
    xy_cells = np.concatenate([h[1] for h in hull_parts])
    cells, where = np.unique(np.concatenate([h[2] for h in hull_parts]), return_inverse=True)
    counts = np.zeros(cells.size, np.int64)
    np.add.at(counts, where.ravel(), np.concatenate([h[3] for h in hull_parts]))
    if len(xy) < 3:  # its error
        return infer_coverage(pd.DataFrame(xy, columns=["lon", "lat"]), check_isolated=False)
    geom, flat = hull_and_flat(xy)  # what infer_coverage returns for these coordinates
    if not flat:  # a line's hull is a hair wide: no area to compare
        _warn_stretched_cells(xy, xy_cells, cells, counts, geom)
    return geom
