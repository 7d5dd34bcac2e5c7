"""``geos2vec features``: OSM extracts or POI/road files -> a cell x channel count table (Parquet).

    geos2vec features city.osm.pbf --coverage header --out table.parquet
    geos2vec features pois.parquet roads.parquet --coverage infer --out table.parquet
"""

from __future__ import annotations

import os
from pathlib import Path

from ._cli_help import DefaultsHelpFormatter
from .errors import InvalidInputError

_PARQUET = (".parquet", ".geoparquet", ".pq")
_FEATHER = (".feather", ".arrow", ".ipc")  # GeoPandas' to_feather (Arrow IPC with GeoParquet's 'geo' metadata)
# CSV columns read as longitude/latitude degrees (EPSG:4326), compared case-blind
_LONLAT = (("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"))
# GDAL drivers an output may be written with (by its suffix): tables with a geometry column
_GDAL_OUT = ("GPKG", "GeoJSON", "CSV")  # FlatGeobuf reorders the rows (its spatial index)


def check_out(path, option: str = "--out", *, folder: bool = False) -> Path:
    """Refuse an output that cannot be written, before any work is done.

    A missing folder, a folder where a file is wanted or a file where a folder is failed after the run,
    naming a temporary file.
    """
    path = Path(path).expanduser()  # --out=~/x: the shell leaves a "~" after "=" alone
    if folder:
        if path.exists() and not path.is_dir():
            raise InvalidInputError(f"{option} {path} is a file; give a folder (it is created if needed)")
        parent = path
        while not parent.exists() and parent != parent.parent:  # the nearest folder that exists
            parent = parent.parent
        if not parent.is_dir():
            raise InvalidInputError(f"{option} {path}: {parent} is a file, so no folder can be made there")
    else:
        if path.is_dir():
            raise InvalidInputError(f"{option} {path} is a folder; give a file name")
        parent = path.parent
        if not parent.is_dir():
            raise InvalidInputError(f"{option} {path}: the folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise InvalidInputError(f"{option} {path}: the folder {parent} is not writable")
    return path


def _read_geo(path: Path):
    import geopandas as gpd

    path = Path(path).expanduser()  # --rows=~/x.parquet: the shell leaves a "~" after "=" alone
    if not path.exists():
        raise FileNotFoundError(f"no file at {path}")
    suffix = path.suffix.lower()
    if suffix in _PARQUET:  # X.PARQUET too (GDAL cannot read it)
        from ._geoparquet import read_geoparquet

        return _with_crs(read_geoparquet(path), path)  # a plain Parquet file of WKB: how to convert it
    if suffix in _FEATHER:  # GDAL (of pyogrio's wheels) has no Arrow driver: "not recognized", a traceback
        from ._geoparquet import read_geofeather

        return _with_crs(read_geofeather(path), path)
    if suffix == ".csv":  # GDAL reads a CSV without a geometry; lon/lat columns make the points
        from ._textfile import read_csv_utf8

        df = read_csv_utf8(path, "CSV file", table_ok=False)
        names = {str(c).lower(): c for c in df.columns}
        for x, y in _LONLAT:
            if x in names and y in names:
                geometry = gpd.points_from_xy(df[names[x]], df[names[y]])
                return gpd.GeoDataFrame(df, geometry=geometry, crs="EPSG:4326")
        raise InvalidInputError(f"{path}: a CSV file needs lon/lat (or longitude/latitude) columns in degrees, "
                                f"got columns {list(df.columns)[:10]}; or convert it to GeoParquet/GeoPackage"
                                + _wkt_hint(df))
    gdf = _read_gdal(path)
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise InvalidInputError(f"{path} has no geometry column; write it as GeoParquet, GeoPackage or GeoJSON "
                                "with geometries (or as CSV with lon/lat columns)")
    return _with_crs(_feature_ids(gdf, path), path)


def _wkt_hint(df) -> str:
    """How to convert a CSV's column of WKT geometries (``geos2vec embed --out x.csv`` writes one), else ``""``."""
    import re

    for col in df.columns:
        values = df[col].dropna()
        if len(values) and values.map(lambda v: isinstance(v, str) and bool(
                re.match(r"\s*(MULTI)?(POINT|LINESTRING|POLYGON)|\s*GEOMETRYCOLLECTION", v, re.IGNORECASE))).all():
            return (f" (its column {col!r} holds WKT geometries, which record no CRS: once, with the CRS they are in, "
                    f"df = pd.read_csv(path); gpd.GeoDataFrame(df.drop(columns={col!r}), "
                    f"geometry=gpd.GeoSeries.from_wkt(df[{col!r}]), crs='EPSG:4326').to_parquet('rows.parquet'))")
    return ""


def _feature_ids(gdf, path: Path):
    """``gdf`` with a GeoJSON file's integer feature ids (each feature's top-level ``"id"``) as a first column ``id``.

    GDAL reads them as feature ids, not fields, and geopandas leaves those out: ``geos2vec embed`` wrote the rows
    without them. Ids that are the row numbers 0 ... n-1 (how GDAL numbers the features of a file without ids)
    are not added, nor any when the file has an ``id`` field (string ids are one).
    """
    if path.suffix.lower() not in (".geojson", ".json") or "id" in gdf.columns:
        return gdf
    import numpy as np
    import pyogrio

    # a read of the ids alone: read with the fields, a fid column that is also a field (negative GeoJSON ids, an
    # Esri JSON OBJECTID) came back as an index of tuples and the field was lost
    fids = pyogrio.read_dataframe(path, columns=[], read_geometry=False, fid_as_index=True).index.to_numpy()
    if len(fids) != len(gdf) or np.array_equal(fids, np.arange(len(gdf))):
        return gdf
    gdf = gdf.copy()
    gdf.insert(0, "id", fids)
    return gdf


def _one_layer(path: Path):
    """The file's one layer with geometries and rows (None: the default one); several are refused, naming them.

    The command line has no option to pick a layer: GDAL read the first, and another layer's rows were embedded or
    counted.
    """
    from .io.osm_frames import _layers_with_rows

    layers = _layers_with_rows(path)
    if layers and len(layers) > 1:
        raise InvalidInputError(
            f"{path} holds {len(layers)} layers with geometries {layers[:10]}, and geos2vec reads a file of one "
            f"layer: write the one you mean to its own file, e.g. `ogr2ogr {layers[0]}.gpkg {path} {layers[0]}` "
            f"or gpd.read_file(path, layer={layers[0]!r}).to_parquet('{layers[0]}.parquet')")
    return layers[0] if layers else None


def _with_crs(gdf, path: Path):
    """``gdf``; a file that records no CRS is refused naming it, and how to give it one.

    It said "gdf has no CRS ... call .set_crs('EPSG:4326')", naming neither the file nor a command-line fix.
    """
    if gdf.crs is not None:
        return gdf
    why = " (a shapefile keeps it in a .prj file next to it, which is missing)" if path.suffix.lower() == ".shp" else ""
    raise InvalidInputError(
        f"{path} records no coordinate reference system (CRS){why}, and geos2vec does not guess one; give it the "
        f"CRS its coordinates are in once, e.g. `ogr2ogr -a_srs EPSG:4326 fixed.gpkg {path}` or in Python "
        "gdf.set_crs('EPSG:4326').to_parquet('fixed.parquet') (EPSG:4326 for longitude/latitude degrees)")


def _read_gdal(path: Path):
    """``geopandas.read_file(path)``, its integer and boolean fields that have missing values in nullable dtypes.

    pyogrio reads such a field as float64: an id of over 2**53 (a 64-bit OSM or parcel id, a signed S2 cell id)
    came back rounded, a boolean as 1.0/0.0, and ``geos2vec embed`` wrote them so. Fields without missing values
    keep their numpy dtypes. A source in another encoding than UTF-8 (a legacy shapefile) is read without Arrow,
    which decodes its text (its integer fields with missing values stay float64 there).
    """
    import geopandas as gpd
    import pandas as pd
    import pyarrow as pa

    nullable = {getattr(pa, f"{t}{b}")(): pd.api.types.pandas_dtype(f"{name}{b}")
                for t, name in (("int", "Int"), ("uint", "UInt")) for b in (8, 16, 32, 64)}
    nullable[pa.bool_()] = pd.BooleanDtype()
    from pyogrio.errors import DataSourceError, DataLayerError

    import pyogrio

    layer = _one_layer(path)
    try:  # not a RuntimeError the command line catches: a traceback ended the command
        # pyogrio's Arrow path does not decode text of another encoding (a Latin-1 shapefile without .cpg): it
        # came back as raw bytes, written so or ending the command in "Wrapping Caf\ufffd failed"
        encoding = "UTF-8"  # GeoJSON, GeoPackage, FlatGeobuf: UTF-8 by their specifications (no second parse)
        if path.suffix.lower() not in (".geojson", ".json", ".gpkg", ".fgb", ".geojsonl", ".geojsons"):
            try:
                encoding = str(pyogrio.read_info(path, layer=layer).get("encoding") or "UTF-8")
            except Exception:  # noqa: BLE001 - GDAL cannot open it: read_file below says why
                pass
        arrow = encoding.upper().replace("-", "") == "UTF8"
        gdf = (gpd.read_file(path, layer=layer, use_arrow=True, arrow_to_pandas_kwargs={"types_mapper": nullable.get})
               if arrow else gpd.read_file(path, layer=layer))
    except (DataSourceError, DataLayerError) as exc:
        raise InvalidInputError(
            f"{path}: GDAL cannot read it as a table of geometries ({str(exc).split('; It might help')[0]}); is it "
            "cut off or another format? Give a GeoParquet (.parquet), GeoPackage (.gpkg), GeoJSON or shapefile, "
            "or a .csv with lon/lat columns") from exc
    for col in gdf.columns:
        dtype = gdf[col].dtype
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype in nullable.values() and not gdf[col].hasnans:
            gdf[col] = gdf[col].astype(dtype.numpy_dtype)
    return gdf


def _out_driver(path: Path):
    """The GDAL driver that writes ``path`` (None: GeoParquet); an unsupported suffix is refused."""
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return None
    from pyogrio.raw import detect_write_driver

    try:
        driver = "GeoJSON" if suffix in (".geojson", ".json") else detect_write_driver(str(path))
    except ValueError:
        driver = None
    if driver not in _GDAL_OUT:  # .txt picked GDAL's VDV driver, which failed with a raw GeometryError
        raise InvalidInputError(f"--out {path}: write .parquet (GeoParquet), .gpkg, .geojson or .csv"
                                + (" (a shapefile holds at most 255 columns of 10-character names)"
                                   if driver == "ESRI Shapefile" else
                                   (f" (geos2vec does not write {path.suffix} files)" if path.suffix else
                                    " (the suffix picks the format)")))
    return driver


def _write_geo(gdf, path: Path) -> None:
    """(Geo)Parquet for .parquet, else the GDAL format of the suffix; written to a temporary file, then renamed.

    The temporary name is the writer's own (:func:`~geos2vec._jsonfile.atomic_path`): two runs writing the same
    ``--out`` at once shared one, so one could rename the other's half-written file into place.
    """
    from ._jsonfile import atomic_path

    driver = _out_driver(path)
    try:
        with atomic_path(path, suffix=path.suffix) as tmp:  # the suffix stays: GDAL picks its driver by it
            if driver is None:
                gdf.to_parquet(tmp)
            else:  # GDAL formats have no unsigned 64-bit integers: cell ids are written as decimal strings
                import pandas as pd

                named = list(gdf.index.names) != [None] or not pd.api.types.is_integer_dtype(gdf.index.dtype)
                # an index geopandas writes (named, or not of integers) as columns now, converted as they are: a
                # named index of cell ids failed after the work with "OverflowError: Python int too large"
                gdf = gdf.reset_index() if named else gdf.copy()
                for col in gdf.columns:
                    if str(gdf[col].dtype) in ("uint64", "UInt64"):
                        gdf[col] = gdf[col].astype("string")
                    elif driver != "GPKG" and str(gdf[col].dtype) in ("float32", "Float32"):
                        # GDAL prints float32 with 8 significant digits (a float32 needs 9): as float64 (up to 17)
                        # every embedding value reads back exactly, where about 2 % were one float32 step off
                        gdf[col] = gdf[col].astype("float64")
                options = {"layer_options": {"GEOMETRY": "AS_WKT"}} if driver == "CSV" else {}
                if driver == "GPKG" and any(pd.api.types.infer_dtype(gdf[c]) == "date" for c in gdf.columns
                                            if gdf[c].dtype == object):
                    # a GDAL Date field reads (through Arrow) as datetime.date objects, which GDAL's writer of
                    # pandas frames made a TEXT field; through Arrow they are a Date field again
                    options["use_arrow"] = True
                # the layer is named after the output, not the temporary file. GDAL writes the temporary file
                # itself (through memory, the output took 3-4 times its size in RAM: 10^6 rows a dozen GB), then
                # it is checked whole: on a full disk GDAL's CSV and GeoJSON writers lost their last buffer at
                # close without an error (a CSV cut mid-row read back with NaNs, and replaced the previous file)
                try:
                    gdf.to_file(tmp, driver=driver, layer=path.stem, **options)
                except RuntimeError as exc:  # pyogrio's errors: a full disk was a raw "Cannot write feature"
                    _no_room(tmp, exc)
                    raise
                _check_whole(tmp, driver, gdf)
    except OSError as exc:  # named the temporary file
        raise InvalidInputError(f"--out {path}: could not write it ({exc})") from exc


def _no_room(tmp: Path, exc: Exception) -> None:
    """``OSError(ENOSPC)`` when GDAL's failure to write ``tmp`` came with the disk of ``tmp`` full."""
    import errno
    import shutil

    try:
        full = shutil.disk_usage(tmp.parent).free < 2**20
    except OSError:  # pragma: no cover - cannot tell: GDAL's error as it is
        return
    if full:
        raise OSError(errno.ENOSPC, f"No space left on device (GDAL: {exc})") from exc


def _check_whole(tmp: Path, driver: str, gdf) -> None:
    """An ``OSError`` when GDAL's CSV or GeoJSON file ``tmp`` of ``gdf`` is cut short (its writers lose it silently)."""
    if driver not in ("CSV", "GeoJSON"):  # GeoPackage (SQLite) reports its write errors
        return
    with open(tmp, "rb") as f:
        f.seek(max(0, f.seek(0, 2) - 64))
        tail = f.read()
    if driver == "GeoJSON":  # it ends with "]\n}\n"
        whole = tail.rstrip().endswith(b"}") and tail.rstrip()[:-1].rstrip().endswith(b"]")
    else:  # a cut inside a line loses its end, one at a line's end whole rows
        whole = tail.endswith(b"\n") and _csv_rows(tmp, gdf) == len(gdf)
    if not whole:
        import errno

        _no_room(tmp, OSError("the file came out cut short"))
        raise OSError(errno.EIO, "GDAL wrote it cut short (a full disk or quota?)")


def _csv_rows(tmp: Path, gdf) -> int:
    """The rows of GDAL's CSV file ``tmp`` of ``gdf``: its lines but the header.

    GDAL counts them (18 % of the write, the lines 1 %) when a text of ``gdf`` may hold a line break.
    """
    import pandas as pd

    texts = [gdf[c] for c in gdf.columns if gdf[c].dtype == object or isinstance(gdf[c].dtype, pd.StringDtype)]
    if any("\n" in str(c) or "\r" in str(c) for c in gdf.columns) or any(
            t.astype(str).str.contains("[\r\n]").any() for t in texts):
        import pyogrio

        return pyogrio.read_info(tmp, force_feature_count=True)["features"]
    lines = 0
    with open(tmp, "rb") as f:
        while block := f.read(2**20):
            lines += block.count(b"\n")
    return lines - 1


def _coverage(text, inputs):
    if text is None:
        return None
    if text == "infer":
        return "infer"
    if text == "header":
        pbfs = [p for p in inputs if str(p).endswith(".pbf")]
        if len(pbfs) != 1:
            raise InvalidInputError("--coverage header needs exactly one .osm.pbf input")
        return str(pbfs[0])
    parts = text.split(",")
    if len(parts) == 4:
        try:
            return tuple(float(v) for v in parts)
        except ValueError:  # said "could not convert string to float: 'a'", naming no option
            raise InvalidInputError(f"--coverage {text!r}: a box is four numbers min_lon,min_lat,max_lon,max_lat"
                                    ) from None
    path = Path(text).expanduser()
    if path.exists():
        return _read_geo(path)
    raise InvalidInputError(f"--coverage must be 'infer', 'header', min_lon,min_lat,max_lon,max_lat or a polygon "
                            f"file, got {text!r}")


def count_inputs(inputs, *, level=12, coverage=None, category=None):
    """The feature table of OSM extracts and/or POI (points) and road (lines) files (or files of both)."""
    from . import _geo
    from .features import combine_counts, count_features

    tables = []
    for path in inputs:
        path = Path(path).expanduser()
        if str(path).endswith(".pbf") or str(path).endswith(".osm"):
            from .io import read_osm

            osm = read_osm(path, progress=None)  # a counter of the objects read (minutes for a country), --quiet: none
            cov = str(path) if coverage == "header" else coverage
            tables.append(count_features(osm.pois, osm.roads, level=level, coverage=cov))
            continue
        gdf = _read_geo(path)
        if category is not None and category not in gdf.columns and category[:10] in gdf.columns:
            raise InvalidInputError(  # said "not a column of pois", listing the truncated name among the others
                f"--category {category}: {path} has no column {category!r}, but {category[:10]!r}: a shapefile "
                f"(dBASE) cuts column names to 10 characters; pass --category {category[:10]}")
        # split by geometry like gdf.s2vec.embed(features=gdf): lines are roads, the rest POIs (a file that mixes
        # them, e.g. an Overpass export, lost its roads as POIs of no category)
        lines = _geo.line_mask(gdf.geometry)
        if lines.all() and len(gdf):
            tables.append(count_features(roads=gdf, level=level, coverage=coverage))
        else:
            tables.append(count_features(pois=gdf[~lines], roads=gdf[lines] if lines.any() else None, level=level,
                                         category_column=category, coverage=coverage))
    return tables[0] if len(tables) == 1 else combine_counts(tables)


def add_parser(subparsers):
    """The ``features`` subcommand's parser."""
    f = subparsers.add_parser(
        "features", help="count POIs and roads per S2 cell (OSM .pbf or POI/road files -> Parquet)",
        description="Count POIs (points) and roads (lines) per S2 cell with the default ontology; several "
                    "inputs are summed. Writes a Parquet table indexed by cell_id.",
        formatter_class=DefaultsHelpFormatter)
    f.add_argument("inputs", nargs="+", help=".osm.pbf files, or GeoParquet/GeoJSON files of POIs or roads")
    f.add_argument("--out", required=True, help="output Parquet file")
    f.add_argument("--level", type=int, default=12, help="S2 level of the cells")
    f.add_argument("--coverage", default=None,
                   help="where the inputs have data: 'infer' (convex hull), 'header' (the .osm.pbf header box), "
                        "min_lon,min_lat,max_lon,max_lat, or a polygon file; default: unknown")
    f.add_argument("--category", default=None,
                   help="category column of POI files (default: the first of fclass, category, osm_value)")
    f.add_argument("--quiet", action="store_true", help="no progress bars (the .osm.pbf files' read counters)")
    f.set_defaults(func=run_features)

    return f


def run_features(args) -> int:
    """Run ``geos2vec features``; the exit status."""
    out = check_out(args.out)  # before counting, not after it
    if out.suffix.lower() not in _PARQUET:  # the table is Parquet whatever the name says
        raise InvalidInputError(f"--out {out}: the feature table is written as Parquet; name it .parquet")
    import contextlib

    from .options import set_options

    with set_options(progress=False) if getattr(args, "quiet", False) else contextlib.nullcontext():
        table = count_inputs(args.inputs, level=args.level, coverage=_coverage(args.coverage, args.inputs),
                             category=args.category)
    _write_geo(table, out)  # Parquet (checked above), through a temporary file
    print(f"{len(table):,} cells x {table.shape[1]} channels -> {out}")
    return 0
