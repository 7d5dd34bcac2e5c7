"""POI and road frames from GeoParquet, any file GeoPandas reads, or a GeoDataFrame: read and checked."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .. import _geo
from .._geoparquet import read_geofeather, read_geoparquet
from ..errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import geopandas as gpd

    from .._typing import StrPath

__all__ = ["read_pois", "read_roads"]


def _read_frame(data, name, columns=None):
    import geopandas as gpd

    columns = [columns] if isinstance(columns, str) else columns  # one name, not its letters ("n", "a", ...)
    if isinstance(data, gpd.GeoDataFrame):
        frame = data
    elif isinstance(data, (str, os.PathLike)):
        path = os.path.expanduser(os.fspath(data))  # "~/pois.parquet" is the home folder's
        if not os.path.exists(path):
            raise FileNotFoundError(f"no {name} file at {path!r}")
        parquet = path.lower().endswith((".parquet", ".geoparquet", ".pq"))  # DATA.PARQUET too (not for GDAL)
        feather = path.lower().endswith((".feather", ".arrow", ".ipc"))  # GDAL of pyogrio's wheels: no Arrow
        try:
            if parquet or feather:
                read = read_geoparquet if parquet else read_geofeather
                frame = read(path, columns=_with_geometry(path, columns, parquet))
            else:
                frame = gpd.read_file(path, columns=columns, layer=_one_layer(path, name))
        except InvalidInputError:  # a plain Parquet file: its WKB columns and how to convert them
            raise
        except Exception as exc:  # pyarrow / pyogrio errors of a file that is not what its name says
            kind = "GeoParquet" if parquet else "Feather" if feather else "GeoPandas"
            raise InvalidInputError(f"could not read {path!r} as a {kind} "
                                    f"file of {name} ({type(exc).__name__}: {exc})") from exc
    else:
        raise InvalidTypeError(f"{name} must be a path or a GeoDataFrame, got {type(data).__name__}")
    geoms = _geo.to_wgs84(_geo.as_geoseries(frame, name), name)
    if geoms is not frame.geometry:
        frame = frame.set_geometry(geoms)
    return frame


_ONE_LAYER = (".geojson", ".json", ".shp", ".fgb", ".geojsonl", ".geojsons")  # formats of one layer


def _layers_with_rows(path) -> list[str] | None:
    """The layers of the file at ``path`` that have geometries and rows; None: a format of one layer, or unreadable.

    Formats of one layer are not listed (that parsed a GeoJSON file once more); for a file GDAL cannot open,
    ``read_file`` says why.

    Tables without geometries (QGIS's ``layer_styles``) and empty layers (GDAL opens every GPX file as five:
    waypoints, routes, tracks, ...) are not layers of rows. The command line and ``read_pois`` / ``read_roads`` refuse
    a file of several: GDAL read the first, with only pyogrio's "Specify layer parameter" warning.
    """
    if str(path).lower().endswith(_ONE_LAYER):
        return None
    import pyogrio

    try:
        layers = [str(layer) for layer, geometry in pyogrio.list_layers(path) if geometry is not None]
        return [layer for layer in layers if len(layers) == 1
                or pyogrio.read_info(path, layer=layer, force_feature_count=True)["features"]]
    except Exception:  # noqa: BLE001 - a file GDAL cannot open: read_file says why
        return None


def _one_layer(path, name):
    """The file's one layer with geometries and rows (None: the default one); several are refused, naming them."""
    if path.lower().endswith((".pbf", ".osm", ".osm.bz2")):  # GDAL's five OSM layers, counted before refusing
        raise InvalidInputError(f"{path!r} is an OpenStreetMap file: read it with geos2vec.io.read_osm({path!r})"
                                f".{name}, which has the {name} with their OSM categories")
    layers = _layers_with_rows(path)
    if layers and len(layers) > 1:
        raise InvalidInputError(
            f"{path!r} holds {len(layers)} layers with geometries {layers[:10]}, and read_{name} reads a file of one "
            f"layer: read the one you mean and pass the GeoDataFrame, e.g. "
            f"read_{name}(geopandas.read_file({path!r}, layer={layers[0]!r}))")
    return layers[0] if layers else None


def _with_geometry(path, columns, parquet=True):
    """``columns`` plus the file's geometry column (as ``read_file`` adds it), read from its GeoParquet metadata."""
    if columns is None:
        return None
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(columns)
    schema = pq.read_schema(path) if parquet else pa.ipc.open_file(path).schema
    missing = [c for c in columns if c not in schema.names]
    if missing:  # pyarrow's "No match for FieldRef.Name(n) in osm_id: int64 ..." dumped the schema
        raise InvalidInputError(f"columns {missing} are not columns of {path!r}; its columns are {schema.names[:30]}")
    meta = schema.metadata or {}
    geometry = json.loads(meta.get(b"geo", b"{}")).get("primary_column")
    return columns + [geometry] if geometry and geometry not in columns else columns


def read_pois(data: StrPath | gpd.GeoDataFrame, *, category_column: str | None = "fclass",
              columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """POIs from GeoParquet (or any GeoPandas-readable file) or a GeoDataFrame, checked.

    Returns a GeoDataFrame in EPSG:4326 with the category column present
    (``ValueError`` naming the columns otherwise). A missing CRS raises; other
    CRSs are transformed.

    Parameters
    ----------
    data : str, path-like or GeoDataFrame
        A GeoParquet file (``.parquet``, ``.geoparquet``, ``.pq``), any other file
        :func:`geopandas.read_file` reads, or a GeoDataFrame.
    category_column : str or None, default "fclass"
        Column that must be present; None checks none.
    columns : str or list of str, optional
        Columns to read from a file (ignored for a GeoDataFrame); the geometry column is always read.

    Returns
    -------
    geopandas.GeoDataFrame
        The POIs, in EPSG:4326.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    TypeError
        If ``data`` is neither a path nor a GeoDataFrame.
    ValueError
        If the category column is missing, the CRS is missing, the file cannot be read or holds several layers
        with rows (:class:`geos2vec.errors.InvalidInputError`).
    """
    frame = _read_frame(data, "pois", columns)
    if category_column is not None and category_column not in frame.columns:
        short = category_column[:10] if isinstance(category_column, str) else None
        cut = (f" ({short!r} is that name cut to 10 characters, as a shapefile (dBASE) cuts column names: pass "
               f"category_column={short!r})") if short != category_column and short in frame.columns else ""
        raise InvalidInputError(f"pois have no {category_column!r} column (columns: {list(frame.columns)}); "
                                f"pass category_column=... naming the category column{cut}")
    return frame


def read_roads(data: StrPath | gpd.GeoDataFrame, *, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """Roads from GeoParquet (or any GeoPandas-readable file) or a GeoDataFrame, checked.

    Returns a GeoDataFrame in EPSG:4326; every non-missing geometry must be a
    (Multi)LineString (``ValueError`` naming the offending rows otherwise).

    Parameters
    ----------
    data : str, path-like or GeoDataFrame
        A GeoParquet file (``.parquet``, ``.geoparquet``, ``.pq``), any other file
        :func:`geopandas.read_file` reads, or a GeoDataFrame.
    columns : str or list of str, optional
        Columns to read from a file (ignored for a GeoDataFrame); the geometry column is always read.

    Returns
    -------
    geopandas.GeoDataFrame
        The roads, in EPSG:4326.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    TypeError
        If ``data`` is neither a path nor a GeoDataFrame.
    ValueError
        If a geometry is not a (Multi)LineString (or LinearRing), the CRS is missing, or the file cannot be read
        or holds several layers with rows (:class:`geos2vec.errors.InvalidInputError`).
    """
    import shapely

    frame = _read_frame(data, "roads", columns)
    arr = np.asarray(frame.geometry.values)
    ok = _geo.missing_mask(frame.geometry) | np.isin(shapely.get_type_id(arr), (1, 2, 5))
    if not ok.all():
        raise InvalidInputError(f"roads must be LineStrings or MultiLineStrings; not at index "
                                f"{_geo.describe_labels(frame.index, ~ok)}")
    return frame
