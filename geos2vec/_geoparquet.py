"""Reading GeoParquet, and what to say about a plain Parquet file whose geometries are WKB bytes.

A Parquet file written by pandas (``df.to_parquet`` of a frame with a column of ``shapely.to_wkb`` bytes, or by
a database export) has no GeoParquet ``geo`` metadata: GeoPandas refuses it with "Missing geo metadata ... Use
pandas.read_parquet/read_feather() instead", advice that gives a column of bytes. Such a file does not say which
coordinate reference system its coordinates are in, and geos2vec refuses a missing CRS rather than guess one
(projected metres read as degrees land elsewhere), so it is not read: the error names the columns that hold
bytes (or lon/lat) and the conversion to GeoParquet.
"""

from __future__ import annotations

import os

from .errors import InvalidInputError

_LONLAT = (("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("x", "y"))


def read_geoparquet(path, columns=None):
    """``geopandas.read_parquet(path, columns=columns)``; a file without ``geo`` metadata: :func:`no_geo_error`."""
    import geopandas as gpd

    try:
        return gpd.read_parquet(path, columns=columns)
    except ValueError as exc:
        if "geo metadata" not in str(exc):
            raise
        raise no_geo_error(path) from None


def _columns(path):
    """``(names of its binary columns, its lon/lat column pair or None, {lower-case name: name})`` of a file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(os.fspath(path))
    binary = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    names = {f.name.lower(): f.name for f in schema}
    return binary, next(((names[x], names[y]) for x, y in _LONLAT if x in names and y in names), None), names


def only_wkb_places(path) -> bool:
    """Whether a Parquet file without ``geo`` metadata places its rows only by bytes (WKB) columns.

    Bytes columns, and no lon/lat columns or cell ids (``cell_id``, ``token``) that a plain table of labels or
    embeddings places its rows by.
    """
    binary, lonlat, names = _columns(path)
    return bool(binary) and lonlat is None and not {"cell_id", "token"} & set(names)


def no_geo_error(path, what: str = "") -> InvalidInputError:
    """The error for a Parquet file without GeoParquet metadata: its WKB or lon/lat columns, and how to convert it.

    Parameters
    ----------
    path : str or path-like
        The file.
    what : str, optional
        What it was given as (e.g. ``"--holdout-polygon"``), put before the path.

    Returns
    -------
    InvalidInputError
        To raise.
    """
    path = os.fspath(path)
    binary, lonlat, names = _columns(path)
    head = (f"{what} {path}" if what else path) + (
        " is a plain Parquet file: it has no GeoParquet 'geo' metadata, which names the geometry column and its "
        "coordinate reference system (CRS), and geos2vec does not guess a CRS")
    crs = "crs='EPSG:4326'"
    if binary:
        col = "geometry" if "geometry" in binary else binary[0]
        listed = f"column {binary[0]!r} holds" if len(binary) == 1 else f"columns {binary} hold"
        fix = (f"its {listed} bytes (WKB geometries?). Convert it to GeoParquet once: df = pd.read_parquet(path); "
               f"gdf = gpd.GeoDataFrame(df.drop(columns={col!r}), geometry=gpd.GeoSeries.from_wkb(df[{col!r}]), "
               f"{crs}); gdf.to_parquet(path) (with the CRS its coordinates are in)")
    elif lonlat:
        fix = (f"it has {lonlat[0]}/{lonlat[1]} columns: convert it to GeoParquet once: df = pd.read_parquet(path); "
               f"gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df[{lonlat[0]!r}], df[{lonlat[1]!r}]), "
               f"{crs}); gdf.to_parquet(path) (with the CRS its coordinates are in)")
    else:
        fix = (f"none of its columns ({list(names.values())[:10]}) holds WKB bytes or lon/lat; write it "
               "with GeoPandas (gdf.to_parquet) or as GeoPackage/GeoJSON")
    return InvalidInputError(f"{head}; {fix}")


def read_geofeather(path, columns=None):
    """``geopandas.read_feather(path, columns=columns)``; a file without ``geo`` metadata: an ``InvalidInputError``.

    GDAL as pyogrio's wheels build it has no Arrow driver, so ``geopandas.read_file`` said only "not recognized
    as being in a supported file format" of a Feather file that ``gdf.to_feather`` wrote.
    """
    import geopandas as gpd

    try:
        return gpd.read_feather(path, columns=columns)
    except ValueError as exc:
        if "geo metadata" not in str(exc):
            raise
        raise InvalidInputError(
            f"{os.fspath(path)} is a plain Feather (Arrow IPC) file: it has no GeoParquet 'geo' metadata, which names "
            "the geometry column and its coordinate reference system (CRS), and geos2vec does not guess a CRS; "
            "write it with GeoPandas (gdf.to_feather(path) or gdf.to_parquet(path))") from None
