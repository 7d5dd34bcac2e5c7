"""dask (and dask-geopandas) frames in, through dask's own schedulers: no scheduler of geos2vec's own.

* :func:`count_features_dask` - ``count_features`` of every partition of the POIs and of the roads, summed
  with :func:`geos2vec.features.combine_counts` in a tree (``split_every`` tables per node). The result is the
  in-memory table, exactly: same cells, counts, columns and report. ``count_features`` calls it for dask input.
* :func:`embed_dask` - ``embed`` partition by partition (``map_partitions``): each partition encodes only the
  level-8 images its rows need, with the context halo of the seamless mode, so no task holds every image.
  ``geos2vec.embed`` calls it for dask input; it returns a dask(-geopandas) frame.

Both run on whatever scheduler is active: threads (default), processes, ``distributed.LocalCluster`` or a
remote cluster (``with Client(...)``). Needs ``pip install 'geos2vec[dask]'``.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._partition_counts import _combine, _count_part, _extra_plan, _final_columns, _hull, _inferred, _kept_values
from ._partition_counts import _outside_part, _reindexed
from ._partition_counts import _SUM_KEYS as _SUM_KEYS, _add_dicts as _add_dicts, _merge_reports as _merge_reports
from .accessor import register_dask_accessor
from .errors import InvalidInputError

if TYPE_CHECKING:
    import dask.dataframe as dd
    import dask_geopandas
    import geopandas as gpd

    from ._typing import CoverageLike, OntologyLike

__all__ = ["is_dask", "count_features_dask", "embed_dask", "embed_cells_dask", "register_dask_accessor"]

def is_dask(obj: object) -> bool:
    """Whether ``obj`` is a dask DataFrame/Series (dask-geopandas' included), without importing dask.

    Parameters
    ----------
    obj : object
        Anything.

    Returns
    -------
    bool
        True when ``obj``'s class comes from ``dask``, ``dask_geopandas`` or ``dask_expr`` and it has
        ``npartitions`` and ``to_delayed``.
    """
    return type(obj).__module__.split(".")[0] in ("dask", "dask_geopandas", "dask_expr") and \
        hasattr(obj, "npartitions") and hasattr(obj, "to_delayed")


def _import_dask():
    """``dask``, or an ImportError naming the extra that brings it."""
    try:
        import dask
    except ImportError as exc:
        raise ImportError("dask frames need dask: pip install 'geos2vec[dask]' (dask, dask-geopandas, "
                          "distributed, zarr)") from exc
    return dask


def count_features_dask(pois: dd.DataFrame | pd.DataFrame | None = None,
                        roads: dd.DataFrame | dd.Series | gpd.GeoDataFrame | gpd.GeoSeries | None = None, *,
                        split_every: int = 8, coverage: CoverageLike | None = None, level: int = 12,
                        ontology: OntologyLike = "default", category_column: str | None = None,
                        key_column: str | None = None,
                        extra: str | list[str] | tuple[str, ...] | dict[str, str] | None = None,
                        road_column: str | None = "auto", errors: str = "raise") -> pd.DataFrame:
    """``count_features`` of dask frames (either may also be in memory): the in-memory result, exactly.

    Each partition of ``pois`` and of ``roads`` is counted on its own, and the tables are summed in a tree
    of ``split_every`` tables per node. ``coverage="infer"`` takes the convex hull of the partitions' hulls
    (the hull of everything). ``extra`` columns must be additive (``"sum"``, ``"count"``, categories).

    Parameters
    ----------
    pois, roads : dask(-geopandas) frame, GeoDataFrame, GeoSeries or DataFrame, optional
        POIs and roads, as for :func:`geos2vec.features.count_features`; at least one is needed.
    split_every : int, default 8
        Tables summed per node of the reduction tree (an integer, at least 2).
    coverage, level, ontology, category_column, key_column, extra, road_column, errors
        See :func:`geos2vec.features.count_features`.

    Returns
    -------
    pandas.DataFrame
        The in-memory table ``count_features`` gives (index ``cell_id``, uint64, sorted), with the
        merged ``attrs["report"]`` and, when ``coverage`` is given, ``attrs["coverage"]``.

    Raises
    ------
    InvalidInputError
        If neither ``pois`` nor ``roads`` is given, ``split_every`` is not an integer >= 2, or an ``extra``
        column asks for ``"mean"``, ``"min"`` or ``"max"``.

    Warns
    -----
    Geos2VecWarning
        (a ``UserWarning``) Once, for what the merged report shows was dropped (as ``count_features``).
    CoverageWarning
        As ``count_features``: most coordinates outside ``coverage``, or an ``.osm.pbf`` header box far
        larger than the input. Each warning names the line of the user's call.
    """
    dask = _import_dask()

    from .coverage import as_coverage, set_coverage
    from .features import _warn_dropped
    from .ontology import load_ontology

    if pois is None and roads is None:
        raise InvalidInputError("count_features needs pois and/or roads")
    if isinstance(split_every, bool) or not isinstance(split_every, numbers.Integral) or split_every < 2:
        raise InvalidInputError(f"split_every must be an integer of at least 2, got {split_every!r}")
    kwargs = {"level": level, "ontology": ontology, "category_column": category_column, "key_column": key_column,
              "extra": extra, "road_column": road_column, "errors": errors, "coverage": None}
    road_kwargs = {**kwargs, "extra": None}
    specs, columns = (_extra_plan(pois, extra, ontology) if pois is not None and extra is not None
                      else ([], None))
    cat_cols = [col for col, how in specs if how == "categories"]
    values = []  # each POI partition's kept category values, computed with its counts: the POIs are read once
    if cat_cols:
        kept = dask.delayed(_kept_values, pure=True)
        values = [kept(c, cat_cols, errors) for c in (pois.to_delayed() if is_dask(pois) else [pois])]
    count = dask.delayed(_count_part, pure=True)
    parts = []
    for frame, is_poi in ((pois, True), (roads, False)):
        if frame is None:
            continue
        chunks = frame.to_delayed() if is_dask(frame) else [dask.delayed(frame)]
        # roads carry no extra columns: they are counted without ``extra`` (0 in those channels once aligned)
        parts += [count(c, None, kwargs, columns) if is_poi else count(None, c, road_kwargs, columns) for c in chunks]
    hulls = []
    chunks_of = [c for frame in (pois, roads) if frame is not None
                 for c in (frame.to_delayed() if is_dask(frame) else [dask.delayed(frame)])]
    infer = isinstance(coverage, str) and coverage == "infer"
    given = None if coverage is None or infer else as_coverage(coverage)
    if infer:
        hulls = [dask.delayed(_hull, pure=True)(c) for c in chunks_of]
    elif given is not None:  # how many coordinates lie outside it (a wrong CRS), as count_features checks
        hulls = [dask.delayed(_outside_part, pure=True)(c, given) for c in chunks_of]
    combine = dask.delayed(_combine, pure=True)
    while len(parts) > 1:
        parts = [combine(parts[i:i + split_every]) for i in range(0, len(parts), split_every)]
    table, hull_parts, values = dask.compute(parts[0], hulls, values)
    if cat_cols:
        table = _reindexed(table, _final_columns(specs, ontology, values))
    if coverage is not None:
        if infer:
            geom = _inferred(hull_parts)
        else:
            from ._stacklevel import find_stack_level
            from .coverage import _warn_loose_header, _warn_outside

            geom = given
            # their warnings name the user's line (through the dask accessor too): one frame below this one
            _warn_outside(geom, counts=tuple(np.sum([h[0] for h in hull_parts], axis=0).astype(int))
                          if hull_parts else (0, 0), stacklevel=find_stack_level() + 1)
            corners = np.concatenate([h[1] for h in hull_parts]) if hull_parts else np.empty((0, 2))
            _warn_loose_header(coverage, geom, [(corners[:, 0], corners[:, 1])], stacklevel=find_stack_level() + 1)
        from .features import _missing_channels

        set_coverage(table, geom, missing_channels=_missing_channels(pois, roads, load_ontology(ontology), table))
    _warn_dropped(table.attrs["report"])
    if pois is not None and extra is not None:  # k=1 for the whole number 1.0 of a float column, as count_features
        from ._feature_inputs import _whole_number_names

        table = _whole_number_names(table, pois, extra, len(load_ontology(ontology).all_channels))
    return table


def embed_dask(ddf: dask_geopandas.GeoDataFrame,
               features: pd.DataFrame | dd.DataFrame | dict[str, Any] | None = None,
               **kwargs: Any) -> dask_geopandas.GeoDataFrame:
    """``embed`` of a dask(-geopandas) frame, partition by partition; returns a frame of the same kind.

    ``features`` may be a count table (it is shared by every task once), POIs/roads (GeoDataFrames or dask
    frames, counted first with :func:`count_features_dask`), or None (``ddf`` itself is the POI source).
    The index and order of every partition's rows are kept.

    Parameters
    ----------
    ddf : dask-geopandas GeoDataFrame
        The rows to embed.
    features : DataFrame, GeoDataFrame, dask frame, dict or None
        A ``count_features`` table (pandas, or dask indexed by ``cell_id``: computed once, then shared); a
        dask frame of POIs, or a dict ``{"pois", "roads"}`` holding a dask frame, counted first with
        :func:`count_features_dask` (at ``level``, default ontology); None to count ``ddf`` itself (its
        lines as roads, its other rows as POIs, as the in-memory ``embed``). In-memory POIs/roads
        (a GeoDataFrame, a dict of them, ``read_osm``'s result) are counted once, in the client.
        Strings (``"osm"``) are not supported.
    **kwargs
        Keyword arguments of :func:`geos2vec.embedding.embed` (``level``, ``model``, ``mode``, ``how``,
        ``outside``, ``prefix``, ``context``, ``progress``).

    Returns
    -------
    dask-geopandas GeoDataFrame
        Lazy: each partition is ``embed`` of the matching partition of ``ddf`` (``s2_cell`` and the
        embedding columns appended).

    Raises
    ------
    InvalidInputError
        If ``features`` is a string, or a dict with keys other than ``"pois"`` and ``"roads"``.
    ImportError
        If dask is not installed (``pip install 'geos2vec[dask]'``).
    """
    dask = _import_dask()

    from .embedding import embed

    kwargs, model, options, features = _task_arguments(kwargs, ddf if features is None else features)
    meta = embed(ddf._meta, features, model=model, **kwargs)  # the output's columns and dtypes, from no rows
    shared, shared_model = dask.delayed(features, pure=True), dask.delayed(model, pure=True)
    return ddf.map_partitions(_embed_part, shared, shared_model, kwargs, options, meta=meta)


def embed_cells_dask(cell_ids: Any, features: Any, **kwargs: Any) -> Any:
    """``embed_cells`` of a dask Series or 1-D dask array of cell ids, partition by partition.

    Each partition is :func:`geos2vec.embedding.embed_cells` of its ids: it encodes only the images (and,
    in the seamless mode, the neighbouring images) its cells need, so no task holds every image.

    Parameters
    ----------
    cell_ids : dask Series or dask array of uint64
        Level-``level`` cell ids.
    features : DataFrame, dask frame or dict
        A ``count_features`` table (shared by every task once; a dask one, indexed by ``cell_id``, is computed
        first), or POIs/roads as dask frames (counted first with :func:`count_features_dask`), or what
        :func:`geos2vec.embedding.embed_cells` takes.
    **kwargs
        Keyword arguments of :func:`geos2vec.embedding.embed_cells` (``level``, ``model``, ``mode``,
        ``outside``, ``prefix``, ``context``, ``progress``).

    Returns
    -------
    dask DataFrame
        Lazy; indexed by ``cell_id``, one row per input id in order (duplicates kept), columns
        ``prefix0 ... prefix{d-1}``; divisions unknown.

    Raises
    ------
    InvalidInputError
        If ``features`` is a string, or a dict with keys other than ``"pois"`` and ``"roads"``.
    ImportError
        If dask is not installed (``pip install 'geos2vec[dask]'``).
    """
    dask = _import_dask()
    import dask.dataframe as dd

    from .embedding import embed_cells

    series = cell_ids if hasattr(cell_ids, "map_partitions") else dd.from_dask_array(cell_ids)
    kwargs, model, options, features = _task_arguments(kwargs, features)
    meta = embed_cells(np.zeros(0, np.uint64), features, model=model, **kwargs)  # columns and dtypes, no cells
    shared, shared_model = dask.delayed(features, pure=True), dask.delayed(model, pure=True)
    # clear_divisions() rather than map_partitions(clear_divisions=True): dask < 2024.3 (before dask-expr) passes
    # that keyword on to the function
    return series.map_partitions(_embed_cells_part, shared, shared_model, kwargs, options,
                                 meta=meta).clear_divisions()


def _task_arguments(kwargs: dict, features) -> tuple[dict, Any, dict, pd.DataFrame]:
    """``(kwargs without model, the model loaded once, the options, the feature table)`` for every task.

    Dask POIs/roads are counted first (:func:`_shared_features`). The model is loaded here, in the client, and
    shared by the tasks like the count table: a worker does not load it again for every partition, and a path
    that only the client can read works on a remote cluster. In-memory POIs/roads are counted here once (not by
    every partition), and the table is checked here.
    ``geos2vec.set_options`` is process-wide, so a worker process would run with its own defaults: the
    client's options go with the tasks. Per-partition progress bars are off unless ``progress=True`` is given
    (they would interleave in threads, or spam the workers' logs).
    """
    from .embedding import _check_level, _feature_table, _resolve_model
    from .options import get_options

    features = _shared_features(features, kwargs.get("level", 12))
    kwargs = dict(kwargs)
    model = _resolve_model(kwargs.pop("model", "default"))
    table = _feature_table(features, _check_level(kwargs.get("level", 12), model), model)
    if kwargs.get("progress") is None:
        kwargs["progress"] = False
    return kwargs, model, get_options(), table


def _embed_cells_part(part, features, model, kwargs, options):
    from .embedding import embed_cells
    from .options import set_options

    with set_options(**options):
        return embed_cells(np.asarray(part, dtype=np.uint64), features, model=model, **kwargs)


def _shared_features(features, level: int):
    """What every partition's ``embed`` / ``embed_cells`` gets as its features.

    Dask POIs/roads (a frame, or a dict holding one) are counted first with :func:`count_features_dask`;
    anything else goes as it is. Strings (``"osm"``) are refused.
    """
    if isinstance(features, str):
        raise InvalidInputError(f"features={features!r} is not supported for dask input; build the count table "
                                "first (geos2vec.io.osm_features(area)) and pass it")
    if isinstance(features, dict) and any(is_dask(v) for v in features.values()):
        unknown = [k for k in features if k not in ("pois", "roads")]
        if unknown:  # as in memory: a typo ("road") would silently leave that source out of the counts
            raise InvalidInputError(f"features has unknown key(s) {unknown}; the dict takes 'pois' and/or "
                                    "'roads', e.g. {'pois': pois, 'roads': roads}")
        return count_features_dask(features.get("pois"), features.get("roads"), level=level)
    if is_dask(features) and _is_count_table(features):  # shared by every task: held in memory once
        return features.compute()
    if is_dask(features):
        return count_features_dask(*_split_kinds(features), level=level)
    return features


def _is_count_table(frame) -> bool:
    """Whether a dask frame is a ``count_features`` table (index ``cell_id``, no geometry), not POIs."""
    return getattr(frame.index, "name", None) == "cell_id" and not hasattr(frame, "geometry") and \
        "geometry" not in getattr(frame, "columns", ())


def _split_kinds(frame):
    """``(pois, roads)``: the point and line rows of each partition of a dask frame.

    As the in-memory ``embed`` splits one GeoDataFrame: lines count as roads, everything else as POIs.
    """
    if "geometry" not in getattr(frame, "columns", ()) and not hasattr(frame, "geometry"):
        return frame, None
    # meta: the frame's own (a subset of its rows); inferring it ran the function on dask's made-up rows, and
    # dask makes up no rows for some indexes (an IntervalIndex raised "Don't know how to handle index")
    return (frame.map_partitions(_rows_of_kind, False, meta=frame._meta),
            frame.map_partitions(_rows_of_kind, True, meta=frame._meta))


def _rows_of_kind(part, lines: bool):
    from . import _geo

    is_line = _geo.line_mask(part.geometry)
    known = ~np.asarray(_geo.missing_mask(part.geometry))  # rows without a geometry get NaN, as in memory
    return part[known & (is_line if lines else ~is_line)]


def _embed_part(part, features, model, kwargs, options):
    from .embedding import embed
    from .options import set_options

    with set_options(**options):
        return embed(part, features, model=model, **kwargs)
