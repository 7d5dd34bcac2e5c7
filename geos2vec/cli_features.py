"""``geos2vec features``: OSM extracts or POI/road files -> a cell x channel count table (Parquet).

    geos2vec features city.osm.pbf --coverage header --out table.parquet
    geos2vec features pois.parquet roads.parquet --coverage infer --out table.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _read_geo(path: Path):
    import geopandas as gpd

    if not path.exists():
        raise FileNotFoundError(f"no file at {path}")
    if path.suffix.lower() in (".parquet", ".geoparquet", ".pq"):  # X.PARQUET too (GDAL cannot read it)
        return gpd.read_parquet(path)
    return gpd.read_file(path)


def _write_geo(gdf, path: Path) -> None:
    """GeoParquet for .parquet, else whatever GeoPandas writes for the suffix; written, then renamed."""
    tmp = path.with_name(f".{path.name}.partial")
    if path.suffix in (".parquet", ".geoparquet"):
        gdf.to_parquet(tmp)
    else:  # GDAL formats have no unsigned 64-bit integers: cell ids are written as decimal strings
        gdf = gdf.copy()
        for col in gdf.columns:
            if str(gdf[col].dtype) in ("uint64", "UInt64"):
                gdf[col] = gdf[col].astype("string")
        gdf.to_file(tmp, driver="GeoJSON" if path.suffix in (".geojson", ".json") else None)
    tmp.replace(path)


def _coverage(text, inputs):
    if text is None:
        return None
    if text == "infer":
        return "infer"
    if text == "header":
        pbfs = [p for p in inputs if str(p).endswith(".pbf")]
        if len(pbfs) != 1:
            raise ValueError("--coverage header needs exactly one .osm.pbf input")
        return str(pbfs[0])
    parts = text.split(",")
    if len(parts) == 4:
        return tuple(float(v) for v in parts)
    path = Path(text)
    if path.exists():
        return _read_geo(path)
    raise ValueError(f"--coverage must be 'infer', 'header', min_lon,min_lat,max_lon,max_lat or a polygon "
                     f"file, got {text!r}")


def count_inputs(inputs, *, level=12, coverage=None, category=None):
    """The feature table of OSM extracts and/or POI (points) and road (lines) files."""
    import shapely

    from .features import combine_counts, count_features

    tables = []
    for path in inputs:
        path = Path(path)
        if str(path).endswith(".pbf") or str(path).endswith(".osm"):
            from .io import read_osm

            osm = read_osm(path)
            cov = str(path) if coverage == "header" else coverage
            tables.append(count_features(osm.pois, osm.roads, level=level, coverage=cov))
            continue
        gdf = _read_geo(path)
        kind = shapely.get_type_id(gdf.geometry.values)
        lines = bool(len(gdf)) and bool(((kind == 1) | (kind == 5)).all())
        if lines:
            tables.append(count_features(roads=gdf, level=level, coverage=coverage))
        else:
            tables.append(count_features(pois=gdf, level=level, category_column=category, coverage=coverage))
    return tables[0] if len(tables) == 1 else combine_counts(tables)


def add_parser(subparsers):
    """The ``features`` subcommand's parser."""
    f = subparsers.add_parser(
        "features", help="count POIs and roads per S2 cell (OSM .pbf or POI/road files -> Parquet)",
        description="Count POIs (points) and roads (lines) per S2 cell with the default ontology; several "
                    "inputs are summed. Writes a Parquet table indexed by cell_id.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    f.add_argument("inputs", nargs="+", help=".osm.pbf files, or GeoParquet/GeoJSON files of POIs or roads")
    f.add_argument("--out", required=True, help="output Parquet file")
    f.add_argument("--level", type=int, default=12, help="S2 level of the cells")
    f.add_argument("--coverage", default=None,
                   help="where the inputs have data: 'infer' (convex hull), 'header' (the .osm.pbf header box), "
                        "min_lon,min_lat,max_lon,max_lat, or a polygon file; default: unknown")
    f.add_argument("--category", default=None,
                   help="category column of POI files (default: the first of fclass, category, osm_value)")
    f.set_defaults(func=run_features)

    return f


def run_features(args) -> int:
    """Run ``geos2vec features``; the exit status."""
    out = Path(args.out)
    table = count_inputs(args.inputs, level=args.level, coverage=_coverage(args.coverage, args.inputs),
                         category=args.category)
    tmp = out.with_name(f".{out.name}.partial")
    table.to_parquet(tmp)
    tmp.replace(out)
    print(f"{len(table):,} cells x {table.shape[1]} channels -> {out}")
    return 0
