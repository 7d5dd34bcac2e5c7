"""Embeddings joined back onto user rows: ``gdf.s2vec.embed(...)``.

The pipeline for a user's frame:

1. the cells each row needs (points: their cell; lines and polygons: the cells they cover, with length or
   area weights),
2. the feature table (``count_features`` of the given POIs/roads, or a prebuilt table),
3. only the images (level-8 cells) that hold those cells are rasterized and encoded,
4. each row gets its cell's vector, or the weighted mean over its cells.

Cells without any feature (no POI and no road in the table) have no data to embed: their rows get NaN and a
warning that counts them (``outside="nan"``, the default), or, with ``outside="embed"``, the model's vector
for an empty cell in its surroundings. Cells outside the coverage a table records (``table.attrs["coverage"]``,
:mod:`geos2vec.coverage`) get NaN either way: the data there is unknown, not empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import _geo, cells as _cells
from ._stacklevel import warn as _warn
from .errors import Geos2VecWarning, InvalidInputError, InvalidTypeError, foreign_frame
from .geometry_cells import (MAX_POLYGON_CELLS, _check_how, _row_cells, check_vertices, row_cells,  # noqa: F401
                             weighted_means)
from .provenance import model_name, provenance

if TYPE_CHECKING:
    import dask.dataframe as dd
    import dask_geopandas
    from numpy.typing import ArrayLike

    from ._typing import ModelLike
    from .io.osm import OSMData

__all__ = ["embed", "embed_cells", "cell_embeddings", "row_cells"]


def _resolve_model(model):
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        from .model import load_model

        return load_model(model)
    if not (hasattr(model, "patch_level") and hasattr(model, "embed")):
        raise InvalidTypeError(f"model must be 'default', the path of a saved model, or a loaded model "
                               f"(geos2vec.load_model(...)); got {type(model).__name__}")
    if getattr(model, "built", True) is False:  # it said "this model embeds level-None cells only"
        raise InvalidInputError("the model is not built or trained yet: call fit() first, or pass a saved model "
                                "(model='default', a path, or geos2vec.load_model(...))")
    return model


def _check_options(mode, context, outside, prefix, progress=None) -> None:
    """Raise :class:`~geos2vec.errors.InvalidInputError` for a bad ``mode``, ``context``, ``outside``, ``progress``.

    Checked up front, so that a typo raises whether or not any cell reaches the encoder (``progress="no"`` of a dask
    frame raised at compute, in the tasks; of a GeoDataFrame after its features were counted). A ``prefix`` that is
    not a str is an :class:`~geos2vec.errors.InvalidTypeError` (``prefix=None`` named the columns ``None0``...).
    """
    from .options import check_progress

    check_progress(progress)
    if not isinstance(prefix, str):
        raise InvalidTypeError(f"prefix must be a str (the embedding columns are prefix0, prefix1, ...), got "
                               f"{prefix!r}; prefix='' names them '0', '1', ...")
    from .model.context import CONTEXTS
    from .model.embed import MODES

    for name, value, allowed in (("mode", mode, MODES), ("context", context, CONTEXTS),
                                 ("outside", outside, ("nan", "embed"))):
        if not isinstance(value, str) or value not in allowed:
            raise InvalidInputError(f"{name} must be one of {allowed}, got {value!r}")


def _feature_table(features, level: int, model) -> pd.DataFrame:
    """A cell-indexed feature table with the model's channels, in the model's order."""
    from .partitioned import _shared_features, is_dask

    if is_dask(features) or (isinstance(features, dict) and any(is_dask(v) for v in features.values())):
        features = _shared_features(features, level)  # dask POIs/roads counted, a dask count table computed
    if isinstance(features, gpd.GeoDataFrame):
        from .features import count_features

        lines = _geo.line_mask(features.geometry)
        pois = features[~lines]
        roads = features[lines] if lines.any() else None
        table = count_features(pois, roads, level=level)
    elif isinstance(features, tuple) and type(features).__name__ == "OSMData":  # read_osm's (pois, roads)
        from .features import count_features

        table = count_features(features.pois, features.roads, level=level)
    elif isinstance(features, dict):
        from .features import count_features

        unknown = [k for k in features if k not in ("pois", "roads")]
        if unknown:  # a typo ("road") would silently drop that source
            raise InvalidInputError(f"features has unknown key(s) {unknown}; the dict takes 'pois' and/or "
                                    "'roads', e.g. {'pois': pois, 'roads': roads}")
        table = count_features(features.get("pois"), features.get("roads"), level=level)
    elif isinstance(features, pd.DataFrame):
        table = features
    else:
        raise InvalidTypeError(
            "features must be a GeoDataFrame of POIs (points) and roads (lines), a dict "
            "{'pois': ..., 'roads': ...}, read_osm's result, a count_features table indexed by cell_id, or 'osm' "
            "(download the OpenStreetMap extract covering the rows); "
            f"got {type(features).__name__}{foreign_frame(features)}"
            + (isinstance(features, str) or hasattr(features, "__fspath__")) * (  # a file's path, str or pathlib
                " (a path: read it first: geos2vec.io.read_osm, read_pois, read_roads or pandas.read_parquet)"))
    channels = list(model.channels)
    missing = [c for c in channels if c not in table.columns]
    if len(missing) == len(channels) and isinstance(features, pd.DataFrame):
        from ._feature_inputs import _lnglat_columns

        if None not in _lnglat_columns(table):  # POIs with lon/lat columns, not counts
            raise InvalidInputError(
                "features is a plain DataFrame of POIs (lon/lat columns), not a count_features table: pass "
                "{'pois': features} (or a GeoDataFrame) to count them, or count_features(features)")
    if missing:
        raise InvalidInputError(
            f"the feature table lacks {len(missing)} channel(s) the model was trained on, e.g. "
            f"{missing[:5]}; build it with count_features(..., ontology=<the model's ontology>)"
        )
    dup = [c for c in channels if np.ndim(table[c]) > 1]
    if dup:
        raise InvalidInputError(f"the feature table has duplicate columns {dup[:5]}; keep one of each "
                                "(table.loc[:, ~table.columns.duplicated()])")
    idx = table.index
    if isinstance(idx, pd.MultiIndex):  # was pandas' NotImplementedError "isna is not defined for MultiIndex"
        raise InvalidTypeError(f"the feature table has a MultiIndex {list(idx.names)}; index it by cell_id alone "
                               "(table.droplevel(...)), summing the tables of several sources: table.groupby(level="
                               "'cell_id').sum()")
    if len(idx) and (not pd.api.types.is_integer_dtype(idx.dtype) or idx.hasnans):
        raise InvalidTypeError(f"the feature table must be indexed by uint64 cell ids (index named cell_id), got "
                               f"index dtype {idx.dtype}{' with missing values' if idx.hasnans else ''}; set it "
                               "with table.set_index('cell_id'), or convert S2 tokens with geos2vec.token_to_cell")
    ids = idx.to_numpy().astype(np.uint64)
    invalid = ~np.asarray(_cells.is_valid_cell(ids), bool) if len(idx) else np.zeros(0, bool)
    if invalid.any():
        raise InvalidInputError(f"the feature table's index has {int(invalid.sum())} value(s) that are not S2 cell "
                                f"ids, e.g. {list(idx[invalid][:5])}; index it by cell_id (count_features "
                                "tables are)")
    levels = _cells.get_level(ids) if len(idx) else np.array([level])
    if (levels != level).any():
        raise InvalidInputError(f"the feature table holds cells of level(s) {sorted(set(levels.tolist()))}, but "
                                f"embeddings are asked for at level {level}: count at level {level} (count_features("
                                f"..., level={level}), `geos2vec features --level {level}`) or sum finer cells")
    out = table[channels]
    # integer counts cannot hold NaN: check float and nullable columns only (no copy of a large count table)
    maybe = [k for k, c in enumerate(channels)
             if out[c].dtype.kind not in "iub" or pd.api.types.is_extension_array_dtype(out[c].dtype)]
    values = out.iloc[:, maybe].to_numpy(dtype=np.float64, na_value=np.nan) if maybe else np.zeros((0, 0))
    bad = np.zeros((len(out), len(channels)), bool) if maybe else np.zeros((0, 0), bool)
    if maybe:
        bad[:, maybe] = ~np.isfinite(values)
    if bad.any():  # one NaN would poison every window that reads its cell
        rows, cols = np.nonzero(bad)
        cells = _cells.cell_to_token(idx.to_numpy().astype(np.uint64)[np.unique(rows)[:3]])
        raise InvalidInputError(
            f"the feature table has {int(bad.sum())} NaN/inf value(s) in {np.unique(rows).size} cell(s) (e.g. "
            f"{list(cells)}) and channel(s) {[channels[c] for c in np.unique(cols)[:5]]}; counts must be finite: "
            "fill them (table.fillna(0)) or drop those rows")
    if getattr(model.stats, "log1p", False) and len(out):  # log(1 + count): a negative count is no count
        signed = [k for k, c in enumerate(channels) if out[c].dtype.kind not in "ub"]
        low = out.iloc[:, signed].min().to_numpy(np.float64) if signed else np.zeros(0)
        if (low < 0).any():
            neg = [channels[signed[k]] for k in np.flatnonzero(low < 0)]
            rows = np.flatnonzero((out[neg].to_numpy(np.float64) < 0).any(axis=1))
            raise InvalidInputError(
                f"the feature table has negative counts in {rows.size} cell(s) (e.g. "
                f"{list(_cells.cell_to_token(ids[rows[:3]]))}) and channel(s) {neg[:5]}; the model reads "
                "log(1 + count), so counts must be >= 0: fix or drop those rows")
    return out


def _outside_note(n_out: int) -> str:
    """The part of a NaN warning that counts rows or cells outside the features' recorded coverage."""
    return (f"{n_out} of them lie outside the coverage the features record (table.attrs['coverage']): the data "
            "there is unknown, not empty")


def _check_level(level: int, model) -> int:
    level = _cells._check_level(level)
    if level != model.patch_level:
        raise InvalidInputError(f"this model embeds level-{model.patch_level} cells only (images at level "
                                f"{model.image_level}); level {level} was asked for: count and embed at level "
                                f"{model.patch_level}, or train a model on level-{level} images (docs/model.md)")
    return level


def embed_cells(cell_ids: ArrayLike | dd.Series, features: pd.DataFrame | dict[str, Any] | OSMData, *, level: int = 12,
                model: ModelLike = "default", mode: str = "contextual",
                outside: str = "nan", prefix: str = "s2vec_", context: str = "blend",
                progress: bool | None = None) -> pd.DataFrame | dd.DataFrame:
    """Embeddings of the given cells, one row per input cell (order and duplicates kept).

    Parameters
    ----------
    cell_ids : array_like of uint64, or a dask Series / dask array
        Level-``level`` cells. Dask input is embedded partition by partition and a dask DataFrame is
        returned (:func:`geos2vec.partitioned.embed_cells_dask`).
    features : GeoDataFrame, dict, OSMData or DataFrame
        POIs/roads to count (a dict ``{"pois", "roads"}`` or :func:`geos2vec.io.read_osm`'s result), or a
        prebuilt ``count_features`` table.
    level : int, default 12
        Must be the model's patch level (12 for the bundled model).
    model : str, path or model, default "default"
        ``"default"`` is the model shipped with geos2vec.
    mode : {"contextual", "tiled", "patch", "image"}
        ``"contextual"`` (seamless: each cell in windows around it, reading the neighbouring level-8
        images' features too), ``"tiled"`` (v0.1's per-image contextual mode), ``"patch"`` or ``"image"``;
        see :func:`geos2vec.model.embed.embed`.
    outside : {"nan", "embed"}
        What cells without any feature get: NaN (with a warning) or the model's vector for an empty cell in
        its surroundings. Cells outside the coverage the table records (``table.attrs["coverage"]``, see
        :mod:`geos2vec.coverage`) get NaN either way: the data there is unknown, not empty. ``"embed"``
        embeds the covered cells without a row (known to be empty), in level-8 images that hold features.
    prefix : str, default "s2vec_"
        Prefix of the embedding columns.
    context : {"blend", "centred"}
        How ``"contextual"`` mode places its windows (:mod:`geos2vec.model.context`; default ``"blend"``).
    progress : bool, optional
        Progress bar; default ``geos2vec.get_options()["progress"]``.

    Returns
    -------
    pandas.DataFrame indexed by ``cell_id`` with columns ``prefix0 ... prefix{d-1}``
        (a dask DataFrame for dask input).
    """
    from .partitioned import is_dask

    _check_options(mode, context, outside, prefix, progress)
    if is_dask(cell_ids):  # partition by partition; a dask frame comes back
        from .partitioned import embed_cells_dask

        return embed_cells_dask(cell_ids, features, level=level, model=model, mode=mode, outside=outside,
                                prefix=prefix, context=context, progress=progress)
    model = _resolve_model(model)
    level = _check_level(level, model)
    if isinstance(cell_ids, (pd.Series, pd.Index)) and pd.api.types.is_extension_array_dtype(cell_ids.dtype):
        na = np.asarray(cell_ids.isna())
        if na.any():  # e.g. embed's own s2_cell column, <NA> for rows without a geometry
            labels = cell_ids.index if isinstance(cell_ids, pd.Series) else pd.RangeIndex(len(cell_ids))
            raise InvalidInputError(f"cell_ids has {int(na.sum())} missing (<NA>) value(s) at index "
                                    f"{_geo.describe_labels(labels, na)}; drop them first (cell_ids.dropna())")
        if pd.api.types.is_integer_dtype(cell_ids.dtype):
            cell_ids = cell_ids.to_numpy(dtype=np.uint64)
    cell_ids = np.atleast_1d(_cells._as_cells(cell_ids)).ravel()
    if cell_ids.size and ((lv := _cells.get_level(cell_ids)) != level).any():
        raise InvalidInputError(f"all cells must be level {level}: the model embeds level-{level} cells, got level(s) "
                                f"{np.unique(lv).tolist()}; embed finer cells' parents: cell_to_parent(cells, {level})")
    return _embed_table(cell_ids, _feature_table(features, level, model), level, model, mode, outside, prefix,
                        context, progress)


def _embed_table(cell_ids, table, level, model, mode, outside, prefix, context, progress, *, warn=True):
    """:func:`embed_cells` of checked input: level-``level`` uint64 ``cell_ids`` and a :func:`_feature_table`.

    The NaN warning points at the user's call (:func:`geos2vec._stacklevel.warn`); ``warn=False`` leaves it
    to the caller (:func:`embed` warns per row).
    """
    from .coverage import covered_mask
    from .raster import rasterize

    wanted = np.unique(cell_ids)
    images = np.unique(_cells.cell_to_parent(wanted, model.image_level)) if wanted.size else wanted
    observed = table.index.to_numpy().astype(np.uint64)
    covered = covered_mask(wanted, table, ())[0]  # all True when the table records no coverage
    observed_images = _cells.cell_to_parent(observed, model.image_level)
    images = images[np.isin(images, observed_images)]
    dim = model.embedding_dim
    columns = [f"{prefix}{k}" for k in range(dim)]
    vectors = pd.DataFrame(np.full((wanted.size, dim), np.nan, np.float32, order="F"), wanted, columns, copy=False)
    if images.size and mode in ("contextual", "tiled"):
        # exactly the cells asked for; seamless windows also read the neighbouring images that have data
        in_images = np.isin(_cells.cell_to_parent(wanted, model.image_level), images)
        targets = wanted[in_images & (np.isin(wanted, observed) if outside == "nan" else covered)]
        around = images
        if mode == "contextual":
            ring = np.unique(_cells.grid_disk(images, 1))
            # neighbours without features are known-empty (covered, unless the table's coverage says not):
            # a model with a missing token must see them as empty, not as missing data
            missing = getattr(model.config, "missing_token", False)
            around = np.union1d(images, ring if missing else ring[np.isin(ring, observed_images)])
        sub = table[np.isin(observed_images, around)]
        da = rasterize(sub, image_level=model.image_level, images=around)
        emb = model.embed(da, mode=mode, cells=targets, context=context, verbose=progress)
        vectors.loc[targets] = np.asarray(emb.values, dtype=np.float32)
    elif images.size:
        sub = table[np.isin(observed_images, images)]
        da = rasterize(sub, image_level=model.image_level, images=images)
        emb = model.embed(da, mode=mode, cells="observed" if outside == "nan" else "all", as_frame=True,
                          verbose=progress)
        emb.columns = columns
        if mode == "image":  # one vector per image: every cell takes its image's
            emb = emb.reindex(_cells.cell_to_parent(wanted, model.image_level))
            emb.index = wanted
        common = wanted[np.isin(wanted, emb.index.to_numpy().astype(np.uint64))]
        vectors.loc[common] = emb.loc[common].to_numpy(np.float32)
    without = ~np.isin(wanted, observed) if outside == "nan" else ~covered  # unknown is not empty
    if without.any():
        vectors.loc[wanted[without]] = np.nan
    vectors.index.name = "cell_id"
    out = vectors.reindex(cell_ids)
    n_missing = int(out.iloc[:, 0].isna().sum()) if len(out) else 0
    if n_missing and warn:
        n_out = int((~covered[np.searchsorted(wanted, cell_ids)]).sum())
        if outside == "nan":
            hint = f"pass outside='embed' to embed {'the covered ones' if n_out else 'them'} as empty cells in " \
                   "their surroundings"
        else:
            hint = (f"they lie {'outside the coverage or ' if n_out else ''}in level-{model.image_level} images "
                    "without any feature, so there is no surrounding data to embed them in")
        _warn(f"{n_missing} of {len(out)} cells have no features (no POI or road) and get NaN "
              f"embeddings{f' ({_outside_note(n_out)})' if n_out else ''}; {hint}", Geos2VecWarning)
    out.attrs["geos2vec"] = provenance(stage="embed", model=model_name(model), mode=mode, level=level, prefix=prefix,
                                       context=context if mode == "contextual" else None, outside=outside)
    return out


def cell_embeddings(features: pd.DataFrame | dict[str, Any] | OSMData, *, level: int = 12, model: ModelLike = "default",
                    mode: str = "contextual", prefix: str = "s2vec_", context: str = "blend",
                    progress: bool | None = None) -> gpd.GeoDataFrame:
    """Embedding table of every cell that has features, with cell polygons (join on ``s2_cell``).

    Parameters
    ----------
    features : GeoDataFrame, dict, OSMData or DataFrame
        POIs (points) and roads (lines), a dict ``{"pois", "roads"}``, :func:`geos2vec.io.read_osm`'s result, or
        a prebuilt ``count_features`` table.
    level, model, mode, prefix, context, progress
        See :func:`embed_cells`.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per cell of the feature table, in its order (``RangeIndex``): ``s2_cell`` (uint64), ``token``
        (str), ``prefix0 ... prefix{d-1}`` (float32) and the cell polygons (EPSG:4326).
    """
    _check_options(mode, context, "nan", prefix, progress)
    model = _resolve_model(model)
    level = _check_level(level, model)
    table = _feature_table(features, level, model)
    ids = table.index.to_numpy().astype(np.uint64)
    emb = _embed_table(ids, table, level, model, mode, "nan", prefix, context, progress)
    gdf = gpd.GeoDataFrame(emb.reset_index(drop=True), geometry=_cells.cell_polygons(ids).values, crs=4326)
    gdf.insert(0, "s2_cell", ids)
    gdf.insert(1, "token", _cells.cell_to_token(ids).astype(str))  # str when empty too
    return gdf


def embed(gdf: gpd.GeoDataFrame | gpd.GeoSeries | dask_geopandas.GeoDataFrame,
          features: pd.DataFrame | dd.DataFrame | dict[str, Any] | OSMData | str | None = None, *, level: int = 12,
          model: ModelLike = "default", mode: str = "contextual", how: str = "auto", outside: str = "nan",
          prefix: str = "s2vec_", context: str = "blend",
          progress: bool | None = None) -> gpd.GeoDataFrame | dask_geopandas.GeoDataFrame:
    """A copy of ``gdf`` with embedding columns ``prefix0 ... prefix{d-1}`` and ``s2_cell``.

    Every input row is kept, with its index and in its order. Points take the embedding of their cell;
    lines and polygons the length/area-weighted mean over the cells they cover (``how="auto"``), or the
    embedding of their representative point's cell (``how="point"``). ``s2_cell`` is the cell of each row's
    representative point.

    Parameters
    ----------
    gdf : GeoDataFrame or dask-geopandas GeoDataFrame
        The user's rows (any CRS; missing/empty geometries get NaN embeddings and ``<NA>`` cells). A dask
        frame is embedded partition by partition and a dask frame is returned
        (:func:`geos2vec.partitioned.embed_dask`).
    features : GeoDataFrame, dict, OSMData, DataFrame, "osm" or None
        POIs (points) and roads (lines) to build features from, a dict ``{"pois", "roads"}`` or
        :func:`geos2vec.io.read_osm`'s result (both counted without a coverage), a prebuilt
        ``count_features`` table, ``"osm"`` to download the OpenStreetMap extract covering ``gdf``
        (:func:`geos2vec.io.osm_features`: cached, verified, with the extract as coverage), or None to count
        ``gdf`` itself: its points and polygons as POIs, its lines as roads (its rows with a missing or empty
        geometry are left out of the counts and get NaN like any other).
    level : int
        Must be the model's patch level (12 for the bundled model).
    how : {"auto", "point", "weighted"}, default "auto"
        The cells of each row (see :func:`row_cells`): ``"point"`` takes the cell of the representative
        point; ``"auto"`` and ``"weighted"`` the length/area-weighted cells a line or polygon covers.
    model, mode, outside, prefix, context, progress
        See :func:`embed_cells`.

    Returns
    -------
    geopandas.GeoDataFrame or dask-geopandas GeoDataFrame
        A copy of ``gdf`` (a GeoSeries becomes a GeoDataFrame) with ``s2_cell`` (nullable ``UInt64``, ``<NA>``
        for missing geometries) and ``prefix0 ... prefix{d-1}`` (float32, NaN where no cell has features;
        counted in a :class:`~geos2vec.errors.Geos2VecWarning`, a ``UserWarning``) appended; a dask frame for dask
        input.

    Raises
    ------
    ValueError
        ``gdf`` already has an added column, or ``level`` is not the model's.
    InvalidInputError
        (a ``ValueError``) An unknown ``mode``, ``context``, ``how`` or ``outside``; a ``features`` dict with
        keys other than ``"pois"`` and ``"roads"``; a row with a vertex that is NaN/inf or outside
        lat [-90, 90] / lon [-180, 180] (anywhere in its geometry; the message names its index label).
        Invalid (self-intersecting) polygons are repaired with ``shapely.make_valid``, not refused
        (see :func:`row_cells`).
    InvalidTypeError
        (a ``TypeError``) ``prefix`` is not a str (``None`` named the columns ``None0``, ...).
    """
    from .coverage import covered_mask
    from .partitioned import is_dask

    _check_options(mode, context, outside, prefix, progress)
    _check_how(how)
    if is_dask(gdf):  # partition by partition; a dask frame comes back
        from .partitioned import embed_dask

        return embed_dask(gdf, features, level=level, model=model, mode=mode, how=how, outside=outside,
                          prefix=prefix, context=context, progress=False if progress is None else progress)
    geoms_all = _geo.to_wgs84(_geo.as_geoseries(gdf, "gdf"), "gdf")
    model = _resolve_model(model)
    level = _check_level(level, model)
    if isinstance(gdf, gpd.GeoSeries):
        gdf = _geo.series_frame(gdf)
    added = ["s2_cell"] + [f"{prefix}{k}" for k in range(model.embedding_dim)]
    clash = [c for c in added if c in gdf.columns]
    if clash:  # s2_cell takes no prefix: another prefix= does not help for it
        fix = "drop it first (gdf.drop(columns='s2_cell')); it is the same for every mode and prefix" \
            if clash == ["s2_cell"] else "drop them first (gdf.drop(columns=[...])), or pass another prefix= for " \
            "the embedding columns" + (" and drop 's2_cell'" if "s2_cell" in clash else "")
        raise InvalidInputError(
            f"gdf already has column(s) {clash[:5]}{' ...' if len(clash) > 5 else ''} that embed adds; {fix}")
    missing = _geo.missing_mask(geoms_all)
    ok_pos = np.flatnonzero(~missing)
    geoms = geoms_all.iloc[ok_pos]
    check_vertices(geoms, "gdf")  # every vertex, not only the representative point
    if isinstance(features, str) and features == "osm":
        from ._optional import require
        from .io.download import osm_features

        require("osmium", what='embed(features="osm")')  # before anything is downloaded

        features = osm_features(geoms_all, level=level, progress=progress)  # its download and read bars too
    # features=None: the rows themselves are the POIs; those without a geometry get NaN, like any other
    table = _feature_table(gdf.iloc[ok_pos] if features is None else features, level, model)
    rep_lng, rep_lat = _geo.representative_lnglat(geoms)  # in range: check_vertices checked every vertex
    row, cell, weight = _row_cells(geoms, level, how)
    dim = model.embedding_dim
    n_out = 0
    if cell.size:
        uniq, inv = np.unique(cell, return_inverse=True)
        # rows none of whose cells the features cover: unknown there (counted in the warning)
        outside_rows = np.bincount(row, weights=covered_mask(uniq, table, ())[0][inv], minlength=len(geoms)) == 0
        # embed warns per row below; no warnings.catch_warnings here: it swaps the process' filters, and
        # concurrent calls (threads, dask's threaded scheduler) left "ignore" set for the whole session
        emb = _embed_table(uniq, table, level, model, mode, outside, prefix, context, progress,
                           warn=False).to_numpy(np.float32)
    # the result is allocated after encoding, so the encoder's working memory and the result do not add up
    result = np.full((len(geoms_all), dim), np.nan, dtype=np.float32)
    if cell.size:
        # rows with one cell (points, small polygons): a plain gather of that cell's vector
        one = np.bincount(row, minlength=len(geoms))[row] == 1
        dest, src = ok_pos[row[one]], inv[one]
        for s in range(0, dest.size, 1 << 16):  # in chunks: no second (rows x dim) temporary array
            result[dest[s:s + (1 << 16)]] = emb[src[s:s + (1 << 16)]]
        if not one.all():  # the weighted mean over the cells that have data (float64 sums, in blocks of rows)
            rows, means = weighted_means(emb, row, inv, weight, np.flatnonzero(~one))
            result[ok_pos[rows]] = means
    n_nan = int(np.isnan(result[:, 0]).sum()) if dim else 0
    if n_nan and cell.size:
        n_out = int((outside_rows & np.isnan(result[ok_pos, 0])).sum())
    if n_nan:
        _warn(
            f"{n_nan} of {len(gdf)} rows got NaN embeddings: their cells have no features in the data given "
            f"({int(missing.sum())} of them have no geometry{'; ' + _outside_note(n_out) if n_out else ''})."
            + ((" Pass outside='embed' (CLI: --outside embed) to embed empty cells."
                if n_nan > int(missing.sum()) + n_out else "") if outside == "nan" else
               f" Their level-{model.image_level} images hold no feature at all"
               + (", or the features do not cover them." if n_out else ".")), Geos2VecWarning)  # at the user's line
    out = gdf.copy()
    s2 = pd.array(np.zeros(len(gdf), np.uint64), dtype="UInt64")
    if ok_pos.size:
        s2[ok_pos] = _cells.latlng_to_cell(rep_lat, rep_lng, level)
    s2[missing] = pd.NA
    names = ["s2_cell"] + [f"{prefix}{k}" for k in range(dim)]
    if isinstance(gdf.columns, pd.MultiIndex):  # as pandas' out[name] = ...: (name, "", ...), so the geometry stays
        names = pd.MultiIndex.from_tuples([(c,) + ("",) * (gdf.columns.nlevels - 1) for c in names])
    out[names[0]] = pd.Series(s2, index=gdf.index)  # a full-length key: a partial one is deprecated (pandas 3)
    names = names[1:]
    emb_frame = pd.DataFrame(result, index=gdf.index, columns=names, copy=False)
    joined = _geo.append_columns(out, emb_frame)
    joined.columns.names = gdf.columns.names  # as pandas' out[name] = ... keeps them; attrs: gdf.copy()'s deep copy
    joined.attrs = {**out.attrs, "geos2vec": provenance(stage="embed", model=model_name(model), mode=mode,
                                                        context=context if mode == "contextual" else None,
                                                        level=level, how=how, outside=outside, prefix=prefix)}
    return joined
