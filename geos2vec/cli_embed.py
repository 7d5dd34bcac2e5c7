"""``geos2vec embed``: a file of points/lines/polygons -> the same rows with S2Vec embedding columns.

    geos2vec embed homes.parquet --features table.parquet --out homes_s2vec.parquet
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._cli_help import DefaultsHelpFormatter
from .cli_features import _FEATHER, _PARQUET, _out_driver, _read_geo, _write_geo, check_out, count_inputs
from .errors import InvalidInputError


def add_parser(subparsers):
    """The ``embed`` subcommand's parser."""
    e = subparsers.add_parser(
        "embed", help="add S2Vec embedding columns to a file of points/lines/polygons",
        description="Embed every row of a GeoParquet/GeoJSON file (any CRS) with an S2Vec model and write the "
                    "same rows, in the same order, with s2_cell and s2vec_0 ... columns.",
        formatter_class=DefaultsHelpFormatter)
    e.add_argument("rows", help="GeoParquet, Feather, GeoPackage or GeoJSON file of the rows to embed (any CRS), or "
                   "a CSV with lon/lat columns in degrees")
    e.add_argument("--features", required=True, nargs="+",
                   help="a table from `geos2vec features` (.parquet, or .csv/.feather, with cell_id), or inputs "
                        "to count "
                        "(.osm.pbf, POI/road files)")
    e.add_argument("--out", required=True,
                   help="output file; its suffix picks the format: .parquet (GeoParquet), .gpkg, .geojson, .csv "
                        "(geometry as WKT; rows in EPSG:4326)")
    e.add_argument("--model", default="default", help="'default' (bundled) or a saved model path")
    e.add_argument("--mode", default="contextual", choices=["contextual", "tiled", "patch", "image"],
                   help="contextual: a window around each cell; tiled: its own level-8 image; patch: the cell "
                        "alone; image: one vector per level-8 image")
    e.add_argument("--context", default="blend", choices=["blend", "centred"],
                   help="contextual mode: blend the 4 windows that hold each cell, or take the window whose central "
                        "8x8 block holds it")
    e.add_argument("--how", default="auto", choices=["auto", "weighted", "point"],
                   help="lines/polygons: the length/area-weighted mean over their cells (auto, weighted), or "
                        "the cell of their representative point")
    e.add_argument("--outside", default="nan", choices=["nan", "embed"],
                   help="cells without features: NaN, or the model's vector of an empty cell")
    e.add_argument("--level", type=int, default=12, help="S2 level of the cells (the model's: 12)")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=run_embed)
    return e


def _load_features(paths, level):
    import pandas as pd

    paths = [Path(p).expanduser() for p in paths]  # --features=~/x: the shell leaves a "~" after "=" alone
    missing = [p for p in paths if not p.exists()]
    if missing:  # a missing table said only "geos2vec: error: table.parquet"
        raise InvalidInputError(f"--features: no file at {', '.join(map(str, missing))}")
    suffix = paths[0].suffix.lower()
    if len(paths) == 1 and suffix in (*_PARQUET, *_FEATHER, ".csv"):  # table.PQ too
        # a table saved as CSV or Feather (table.to_csv, table.reset_index().to_feather) was read as a file of
        # POIs: "a CSV file needs lon/lat columns", "a plain Feather file has no 'geo' metadata"
        if suffix == ".csv":
            from ._textfile import read_csv_utf8

            df = read_csv_utf8(paths[0], "--features")
        else:
            df = pd.read_parquet(paths[0]) if suffix in _PARQUET else pd.read_feather(paths[0])
        if df.index.name == "cell_id" or "cell_id" in df.columns:
            if "cell_id" in df.columns:
                df = df.set_index("cell_id")
            from ._cells_core import _cell_id_index

            df.index = _cell_id_index(df.index, f"{paths[0]}: its cell_id values are not S2 cell ids")
            return df
    return count_inputs(paths, level=level)


def _check_index_names(rows, driver, out) -> None:
    """Refuse, before the work, an index that a GDAL format cannot write next to the columns.

    GDAL formats have no index: geopandas writes a named (or non-integer) index as columns, and an index level
    named like a column of the rows, like ``s2_cell`` or ``s2vec_<k>``, or like another level failed only after
    the embedding with pandas' "cannot insert name, already exists".
    """
    import re

    import pandas as pd

    index = rows.index
    if driver is None or (list(index.names) == [None] and pd.api.types.is_integer_dtype(index.dtype)):
        return  # GeoParquet keeps the index apart; geopandas does not write an unnamed integer index
    named = [n for n in index.names if n is not None]
    clash = [n for k, n in enumerate(named) if n in rows.columns or n == "s2_cell" or n in named[:k]
             or (isinstance(n, str) and re.fullmatch(r"s2vec_\d+", n))]
    if clash:
        raise InvalidInputError(
            f"--out {out}: the rows' index level(s) {clash} would be written as column(s) of the {driver} file, "
            "which has a column of that name already (its own, s2_cell or s2vec_*); write .parquet (GeoParquet "
            "keeps the index apart), or rename the index levels in the input (df.rename_axis([...]))")


def _check_not_embedded(rows, path) -> None:
    """Refuse rows that already have the columns ``geos2vec embed`` adds (an earlier output), with what to do here.

    ``embed``'s own error told to "pass another prefix=" and to drop columns of "gdf": the command has no --prefix.
    """
    import re

    done = [c for c in rows.columns if c == "s2_cell" or (isinstance(c, str) and re.fullmatch(r"s2vec_\d+", c))]
    if done:
        raise InvalidInputError(
            f"{path} already has column(s) {done[:3]}{' ...' if len(done) > 3 else ''} that geos2vec embed adds (is it "
            "the output of an earlier geos2vec embed?); embed the original rows, or drop those columns from the file "
            "first (the command line adds one embedding per file; in Python, gdf.s2vec.embed(..., prefix=...) adds a "
            "second one beside the first)")


def _check_csv_crs(rows, driver, out) -> None:
    """Refuse, before the work, rows that the GDAL format of ``--out`` cannot hold.

    A CSV file records no CRS: the WKT of rows in a CRS other than EPSG:4326 was written in their own coordinates
    (metres of EPSG:3857, feet of a State Plane) with no word of it, and read back as degrees, or not at all. A
    GDAL file holds one geometry column: rows with others failed after the work ("supports only a single
    geometry column").
    """
    others = [c for c in rows.columns if c != rows.geometry.name and str(rows[c].dtype) == "geometry"]
    if driver is not None and others:  # to_file failed after the work: "supports only a single geometry column"
        raise InvalidInputError(
            f"--out {out}: the rows have geometry columns {others} besides {rows.geometry.name!r}, and a {driver} "
            "file holds one; write .parquet (GeoParquet keeps them all), or drop them or make them WKT text first")
    if driver != "CSV" or rows.crs is None or rows.crs.equals("EPSG:4326", ignore_axis_order=True):
        return
    raise InvalidInputError(
        f"--out {out}: a CSV file records no coordinate reference system (CRS), and the rows are in "
        f"{rows.crs.to_string()} ({rows.crs.name}), not EPSG:4326 longitude/latitude: their WKT would be read as "
        "degrees; write .gpkg, .geojson or .parquet, which keep the CRS, or reproject the rows to EPSG:4326 first "
        "(gdf.to_crs(4326).to_parquet(path))")


def _check_other_layers(out: Path, driver) -> None:
    """Refuse, before the work, an existing GeoPackage ``--out`` that holds layers other than the one written.

    The output replaces the whole file, so ``--out city.gpkg`` of a GeoPackage of parcels and schools left only
    the layer ``city``: the others were deleted without a word. A file holding only that layer (an earlier run's)
    is replaced as before.
    """
    if driver != "GPKG" or not out.is_file():
        return
    import pyogrio

    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(out)]
    except Exception:  # not a GeoPackage GDAL can open: replaced, as any other file
        return
    others = [name for name in layers if name != out.stem]
    if others:
        raise InvalidInputError(
            f"--out {out} is a GeoPackage that holds layer(s) {others[:10]}, which writing it would delete (the "
            f"output replaces the file, as one layer {out.stem!r}); give a new file name, or move those layers out")


def run_embed(args) -> int:
    """Run ``geos2vec embed``; the exit status."""
    import warnings

    from .embedding import embed as embed_rows
    from .options import set_options

    if args.quiet:
        set_options(progress=False)
    driver = _out_driver(check_out(args.out))  # a folder, a missing folder or an unknown format: before the work
    _check_other_layers(Path(args.out).expanduser(), driver)
    rows = _read_geo(Path(args.rows))
    _check_not_embedded(rows, args.rows)
    _check_index_names(rows, driver, args.out)
    _check_csv_crs(rows, driver, args.out)
    table = _load_features(args.features, args.level)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = embed_rows(rows, table, level=args.level, model=args.model, mode=args.mode, how=args.how,
                           outside=args.outside, context=args.context)
    for w in caught:
        print(f"geos2vec: warning: {w.message}", file=sys.stderr)
    _write_geo(out, Path(args.out).expanduser())
    n = int(out["s2vec_0"].notna().sum())
    print(f"{len(out):,} rows ({n:,} embedded) -> {args.out}")
    return 0
