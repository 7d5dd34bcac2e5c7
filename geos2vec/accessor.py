"""The ``.s2vec`` accessor on GeoDataFrames and GeoSeries: a thin facade over the stages.

``import geos2vec`` registers it. Every method here only validates and
delegates to the public function of a stage module, so both spellings behave
identically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import _geo, cells as _cells
from .errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    import dask.dataframe as dd
    import dask_geopandas
    import xarray as xr
    from numpy.typing import ArrayLike

    from ._typing import AreaLike, ModelLike
    from .io.osm import OSMData

__all__ = ["S2VecAccessor", "DaskS2VecAccessor", "register_dask_accessor"]


class S2VecAccessor:
    """geos2vec methods on a GeoDataFrame or GeoSeries (``gdf.s2vec``)."""

    def __init__(self, obj: gpd.GeoDataFrame | gpd.GeoSeries) -> None:
        if not isinstance(obj, (gpd.GeoDataFrame, gpd.GeoSeries)):
            # AttributeError (pandas' convention for accessors that do not apply), so hasattr(df, "s2vec") is
            # False on plain frames, as for .dt / .str / .cat
            raise AttributeError(
                ".s2vec works on GeoDataFrames and GeoSeries, not on a plain "
                f"{type(obj).__name__}; convert it with geopandas.GeoDataFrame(df, geometry=..., crs=...)"
            )
        self._obj = obj

    def __repr__(self) -> str:  # was <geos2vec.accessor.S2VecAccessor object at 0x...>
        obj = self._obj
        try:
            geom = obj.name if isinstance(obj, gpd.GeoSeries) else obj.geometry.name
            where = (f"{'unnamed geometry' if geom is None else f'geometry {geom!r}'}, "
                     f"{obj.crs.to_string() if obj.crs is not None else 'no CRS'}")
        except AttributeError:  # a GeoDataFrame without an active geometry column
            where = "no active geometry column"
        return (f"<.s2vec on a {type(obj).__name__} of {len(obj):,} row{'s' * (len(obj) != 1)} ({where}): cell_ids, "
                "tokens, cells, count_features, rasterize, embed>")

    @property
    def _geoms(self) -> gpd.GeoSeries:
        return _geo.as_geoseries(self._obj)

    # ------------------------------------------------------------------ cells
    def cell_ids(self, level: int = 12, errors: str = "raise") -> pd.Series:
        """The S2 cell of each row at ``level``, on the frame's index.

        Points give the cell containing them; lines (LineString,
        MultiLineString) the cell of the point halfway along their length (in
        EPSG:4326, so the same in any CRS); polygons and other geometries the
        cell of their representative point (``shapely.point_on_surface``). Use
        :func:`geos2vec.features.count_features` for line/polygon coverings.

        Parameters
        ----------
        level : int, default 12
            S2 level of the cells, 0-30.
        errors : {"raise", "coerce"}
            Missing or empty geometries raise ``ValueError`` (naming their index
            labels) or, with ``"coerce"``, give ``<NA>`` in a nullable
            ``UInt64`` series.

        Returns
        -------
        pandas.Series
            dtype ``uint64`` (``UInt64`` when coerced values are missing), named
            ``s2_cell``.
        """
        level = _cells._check_level(level)
        geoms = _geo.to_wgs84(self._geoms)
        missing = _geo.check_missing(geoms, errors)
        lng, lat = _geo.representative_lnglat(geoms)
        ok = ~missing
        try:
            ids = _cells.latlng_to_cell(lat[ok], lng[ok], level)
        except ValueError as exc:  # keeps geos2vec's error class (a plain ValueError lost it)
            raise InvalidInputError(f"{exc} (positions count rows with a geometry, in order)") from None
        if missing.any():
            out = pd.array(np.zeros(len(geoms), dtype=np.uint64), dtype="UInt64")
            out[ok] = ids
            out[missing] = pd.NA
            return pd.Series(out, index=geoms.index, name="s2_cell")
        return pd.Series(ids, index=geoms.index, name="s2_cell", dtype=np.uint64)

    def tokens(self, level: int = 12, errors: str = "raise") -> pd.Series:
        """S2 tokens of :meth:`cell_ids` (missing where a coerced geometry is missing).

        Parameters
        ----------
        level : int, default 12
            S2 level of the cells, 0-30.
        errors : {"raise", "coerce"}
            As in :meth:`cell_ids`.

        Returns
        -------
        pandas.Series
            ``string`` dtype (``<NA>`` where a geometry is missing, as in :meth:`cell_ids`; empty frames too), on
            the frame's index, named ``s2_token``.
        """
        ids = self.cell_ids(level, errors=errors)
        ok = ids.notna().to_numpy()
        out = np.full(len(ids), None, dtype=object)
        out[ok] = _cells.cell_to_token(ids[ok].to_numpy(dtype=np.uint64))
        return pd.Series(out, index=ids.index, name="s2_token", dtype="string")

    def cells(self, level: int = 12, errors: str = "raise") -> gpd.GeoDataFrame:
        """Unique cells of the rows as polygons.

        A GeoDataFrame with ``cell_id``, ``token``, ``count`` (rows per cell) and geometry, sorted by cell id.

        Parameters
        ----------
        level : int, default 12
            S2 level of the cells, 0-30.
        errors : {"raise", "coerce"}
            Missing or empty geometries raise ``ValueError`` (naming their index labels) or, with
            ``"coerce"``, are left out (they are in no cell and in no ``count``).

        Returns
        -------
        geopandas.GeoDataFrame
            One row per distinct cell of :meth:`cell_ids` (default ``RangeIndex``): ``cell_id`` (uint64),
            ``token`` (str), ``count`` (int64) and the cell polygons (EPSG:4326).

        Raises
        ------
        ValueError
            If a geometry is missing or empty (``cell_ids`` with ``errors="raise"``).
        """
        ids = self.cell_ids(level, errors=errors).dropna().to_numpy(np.uint64)
        uniq, counts = np.unique(ids, return_counts=True)
        return gpd.GeoDataFrame(
            {"cell_id": uniq, "token": _cells.cell_to_token(uniq).astype(str), "count": counts},
            geometry=_cells.cell_polygons(uniq).values,
            crs="EPSG:4326",
        )

    # ------------------------------------------------------------------ features
    def count_features(self, roads: gpd.GeoDataFrame | gpd.GeoSeries | None = None, **kwargs: Any) -> pd.DataFrame:
        """Per-cell feature histogram of these POIs (and ``roads``).

        ``gdf.s2vec.count_features(roads, **kw)`` is
        ``geos2vec.features.count_features(gdf, roads, **kw)``: see there for
        ``level``, ``ontology``, ``category_column``, ``extra``, ``errors``.

        Parameters
        ----------
        roads : GeoDataFrame or GeoSeries of (Multi)LineStrings, optional
            Roads to count along with the POIs of this frame.
        **kwargs
            Keyword arguments of :func:`geos2vec.features.count_features`.

        Returns
        -------
        pandas.DataFrame
            Indexed by uint64 ``cell_id``; POI channels, ``road``, extras.
        """
        from .features import count_features

        _check_count_kwargs(kwargs, "count_features")
        return count_features(self._obj, roads, **kwargs)

    # ------------------------------------------------------------------ raster
    def rasterize(self, roads: gpd.GeoDataFrame | gpd.GeoSeries | None = None, *, image_level: int = 8,
                  fill: float = 0, images: ArrayLike | None = None,
                  area: AreaLike | None = None,
                  chunks: int | dict[str, int] | None = None, **kwargs: Any) -> xr.DataArray:
        """Count features per cell and rasterize them into images (S2Vec input).

        ``gdf.s2vec.rasterize(roads, **kw)`` is
        ``geos2vec.raster.rasterize(geos2vec.features.count_features(gdf, roads, **kw), ...)``:
        keyword arguments of :func:`geos2vec.features.count_features` (``level``,
        ``ontology``, ``category_column``, ``extra``, ...) go to it; ``image_level``,
        ``fill``, ``images``, ``area`` and ``chunks`` to
        :func:`geos2vec.raster.rasterize`.

        Parameters
        ----------
        roads : GeoDataFrame or GeoSeries of (Multi)LineStrings, optional
            Roads to count along with the POIs of this frame.
        image_level, fill, images, area, chunks
            See :func:`geos2vec.raster.rasterize`.
        **kwargs
            Keyword arguments of :func:`geos2vec.features.count_features`.

        Returns
        -------
        xarray.DataArray
            Dims ``("image", "row", "col", "feature")``.
        """
        from . import raster
        from .features import count_features

        _check_count_kwargs(kwargs, "rasterize", ["image_level", "fill", "images", "area", "chunks"])
        table = count_features(self._obj, roads, **kwargs)
        return raster.rasterize(table, image_level=image_level, fill=fill, images=images, area=area,
                                chunks=chunks)

    # ------------------------------------------------------------------ embeddings
    def embed(self, features: pd.DataFrame | dict[str, Any] | OSMData | str | None = None, *, level: int = 12,
              model: ModelLike = "default", mode: str = "contextual", how: str = "auto", outside: str = "nan",
              prefix: str = "s2vec_", context: str = "blend", progress: bool | None = None) -> gpd.GeoDataFrame:
        """A copy of the frame with S2Vec embedding columns ``s2vec_0 ... s2vec_255`` and ``s2_cell``.

        ``homes.s2vec.embed(features=osm)`` is :func:`geos2vec.embedding.embed` ``(homes, osm, ...)``: every row
        is kept in its order with its index; points take their level-12 cell's vector, lines and polygons
        the length/area-weighted mean over the cells they cover; rows whose cells have no features, or lie
        outside the coverage the features record, get NaN (with a warning that counts them).

        Parameters
        ----------
        features, level, model, mode, how, outside, prefix, context, progress
            See :func:`geos2vec.embedding.embed`.

        Returns
        -------
        geopandas.GeoDataFrame
            A copy of the frame (a GeoSeries becomes a GeoDataFrame) with ``s2_cell`` and the embedding
            columns ``prefix0 ... prefix{d-1}`` appended.
        """
        from .embedding import embed

        return embed(self._obj, features, level=level, model=model, mode=mode, how=how, outside=outside,
                     prefix=prefix, context=context, progress=progress)


class DaskS2VecAccessor:
    """``ddf.s2vec`` on dask-geopandas GeoDataFrames: ``embed`` and ``count_features``.

    Partition by partition (:mod:`geos2vec.partitioned`). Registered by ``import geos2vec`` when
    dask-geopandas is already imported, else by :func:`register_dask_accessor`.
    """

    def __init__(self, obj: dask_geopandas.GeoDataFrame) -> None:
        if not hasattr(obj, "geometry"):
            raise AttributeError(".s2vec works on dask-geopandas GeoDataFrames; convert the dask frame with "
                                 "dask_geopandas.from_dask_dataframe(ddf, geometry=...)")
        self._obj = obj

    def __repr__(self) -> str:  # was <geos2vec.accessor.DaskS2VecAccessor object at 0x...>
        return (f"<.s2vec on a dask {type(self._obj).__name__} of {self._obj.npartitions} partitions: embed, "
                "count_features>")

    def embed(self, features: pd.DataFrame | dd.DataFrame | dict[str, Any] | OSMData | None = None,
              **kwargs: Any) -> dask_geopandas.GeoDataFrame:
        """:func:`geos2vec.embedding.embed` of every partition; a dask-geopandas GeoDataFrame.

        Parameters
        ----------
        features : DataFrame, GeoDataFrame, dask frame, dict or None
            See :func:`geos2vec.partitioned.embed_dask`.
        **kwargs
            Keyword arguments of :func:`geos2vec.embedding.embed`.

        Returns
        -------
        dask-geopandas GeoDataFrame
            Lazy; the frame's rows with ``s2_cell`` and the embedding columns appended.
        """
        from .partitioned import embed_dask

        return embed_dask(self._obj, features, **kwargs)

    def count_features(self, roads: dask_geopandas.GeoDataFrame | gpd.GeoDataFrame | None = None,
                       **kwargs: Any) -> pd.DataFrame:
        """:func:`geos2vec.features.count_features` of these POIs (and ``roads``): an in-memory table.

        Parameters
        ----------
        roads : dask-geopandas GeoDataFrame or GeoDataFrame, optional
            Roads to count along with the POIs of this frame.
        **kwargs
            Keyword arguments of :func:`geos2vec.partitioned.count_features_dask`.

        Returns
        -------
        pandas.DataFrame
            Indexed by uint64 ``cell_id``; POI channels, ``road``, extras.
        """
        from .partitioned import count_features_dask

        return count_features_dask(self._obj, roads, **kwargs)


def register_dask_accessor() -> None:
    """Register ``.s2vec`` on dask DataFrames (for dask-geopandas frames). Imports dask.dataframe.

    Calling it again (a notebook cell run twice) registers it again without a warning.
    """
    from ._optional import require

    require("dask", what="register_dask_accessor")
    from dask.dataframe import DataFrame
    from dask.dataframe.extensions import register_dataframe_accessor

    _forget_own(DataFrame)
    register_dataframe_accessor("s2vec")(DaskS2VecAccessor)


def _forget_own(cls: type) -> None:
    """Remove ``cls.s2vec`` when geos2vec registered it (an earlier call, or before ``importlib.reload``).

    Registering again then does not warn that it "is overriding a preexisting attribute"; an ``s2vec`` attribute
    of another library is left, and pandas or dask warn about it as before.
    """
    accessor = getattr(cls.__dict__.get("s2vec"), "_accessor", None)
    if getattr(accessor, "__module__", None) == __name__:
        delattr(cls, "s2vec")


def _register():
    import sys

    for register, cls in ((pd.api.extensions.register_dataframe_accessor, pd.DataFrame),
                          (pd.api.extensions.register_series_accessor, pd.Series)):
        _forget_own(cls)
        register("s2vec")(S2VecAccessor)
    # already imported (an entry of None is a blocked import): no dask import for users who do not use it
    if sys.modules.get("dask_geopandas") is not None and sys.modules.get("dask") is not None:
        register_dask_accessor()


_register()


def _check_count_kwargs(kwargs: dict, method: str, own: list | None = None) -> None:
    """Refuse keywords :func:`geos2vec.features.count_features` lacks, naming the accessor's method.

    ``pois.s2vec.rasterize(roads, lvl=3)`` raised "count_features() got an unexpected keyword argument", a
    function the user did not call; ``roads.s2vec.count_features(pois=pois)`` "got multiple values for 'pois'".
    """
    import difflib
    import inspect

    from .features import count_features

    if "pois" in kwargs:
        raise InvalidTypeError(f".s2vec.{method} counts the POIs of the frame it is called on: call it on the POIs, "
                               f"pois.s2vec.{method}(roads), or use geos2vec.count_features(pois, roads)")
    known = [n for n in inspect.signature(count_features).parameters if n not in ("pois", "roads")] + (own or [])
    bad = [k for k in kwargs if k not in known]
    if bad:
        near = {k: difflib.get_close_matches(k, known, 1, 0.6) for k in bad}
        hint = "".join(f"; {k!r}: did you mean {m[0]!r}?" for k, m in near.items() if m)
        raise InvalidTypeError(f".s2vec.{method}() got unknown keyword(s) {bad}{hint}; it takes roads and "
                               f"{sorted(known)}")
