"""What :func:`geos2vec.io.read_osm` does with geometry: file formats, parts of cut ways, road lines, the area kept."""

from __future__ import annotations

import os

import numpy as np

from ..errors import InvalidInputError, InvalidTypeError

__all__ = []  # helpers of read_osm (geos2vec.io.osm), nothing public


def _osm_file(path):
    """``path``, or an ``osmium.io.File`` naming its format where only the case of its ending hides it (X.OSM.PBF)."""
    import osmium

    path = os.path.expanduser(os.fspath(path))
    fmt = next((f for f in ("pbf", "osm.bz2", "osm.gz", "osm", "o5m", "opl") if path.lower().endswith("." + f)), None)
    return path if fmt is None or path.endswith("." + fmt) else osmium.io.File(path, fmt)


def _known_runs(nodes) -> list:
    """The runs of consecutive nodes with a location, 2 nodes or more: the parts of a way an extract holds.

    A way cut by an extract's boundary (``osmium extract --strategy simple``) lists nodes the file lacks; its
    parts inside the file are real roads of the cells they cross. Returns ``[]`` when no part has 2 nodes, one
    list of ``(lon, lat)`` for a single part, or a list of such lists (a road in pieces).
    """
    runs, run = [], []
    for node in nodes:
        loc = node.location
        if loc.valid():
            run.append((loc.lon, loc.lat))
            continue
        if len(run) >= 2:
            runs.append(run)
        run = []
    if len(run) >= 2:
        runs.append(run)
    return runs[0] if len(runs) == 1 else runs


def _road_lines(r_coords) -> np.ndarray:
    """LineStrings of ``r_coords`` (a list of ``(lon, lat)`` per road), MultiLineStrings of roads in pieces."""
    import shapely

    if not r_coords:
        return np.empty(0, dtype=object)
    pieces = [isinstance(c[0], list) for c in r_coords]
    parts = [p for c, multi in zip(r_coords, pieces) for p in (c if multi else [c])]
    lines = shapely.linestrings(np.concatenate(parts), indices=np.repeat(np.arange(len(parts)),
                                [len(p) for p in parts]))
    if not any(pieces):
        return lines
    out, k = np.empty(len(r_coords), dtype=object), 0
    for i, (c, multi) in enumerate(zip(r_coords, pieces)):
        n = len(c) if multi else 1
        out[i] = shapely.multilinestrings(lines[k:k + n]) if multi else lines[k]
        k += n
    return out


def _check_area(area):
    """``area`` as a polygonal shapely geometry in degrees, or an :class:`InvalidInputError` saying what is wrong.

    A polygon in metres (a projected CRS without a GeoPandas CRS to say so) or a line kept nothing, silently.
    """
    import shapely

    from .download import _area

    try:
        geom = _area(area)
    except (InvalidInputError, InvalidTypeError):
        raise
    except (TypeError, ValueError) as exc:  # float() of a box's values
        raise InvalidInputError(f"an area box is (min_lon, min_lat, max_lon, max_lat) in degrees; got {area!r} "
                                f"({exc})") from None
    if shapely.get_type_id(geom) not in (3, 6):
        if shapely.get_type_id(geom) == 7:  # a collection: its polygonal parts
            from .._coverage_layers import polygon_parts

            parts = polygon_parts(geom)
            geom = shapely.union_all(parts) if parts else geom
        if shapely.get_type_id(geom) not in (3, 6):
            raise InvalidInputError(f"area must be polygonal (the area to keep), got a {geom.geom_type}")
    x0, y0, x1, y1 = (float(v) for v in geom.bounds)
    if not (np.isfinite([x0, y0, x1, y1]).all() and -180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90):
        raise InvalidInputError(
            f"area bounds {(x0, y0, x1, y1)} are not longitude/latitude degrees (longitude in [-180, 180], latitude "
            "in [-90, 90]); a shapely area is taken as EPSG:4326 (lon, lat): transform it first, or pass a "
            "GeoSeries/GeoDataFrame that carries its CRS")
    return geom


def _clip(pois, roads, area):
    """POIs in ``area`` and the parts of roads in it (line parts only; rows whose part is empty dropped)."""
    import shapely

    from .download import _area

    geom = _area(area)
    shapely.prepare(geom)
    pois = pois[shapely.intersects(geom, np.asarray(pois.geometry.values))].reset_index(drop=True)
    lines = np.asarray(roads.geometry.values)
    inside = shapely.intersects(geom, lines)
    roads = roads[inside].reset_index(drop=True)
    cut = shapely.intersection(np.asarray(roads.geometry.values), geom)
    kind = shapely.get_type_id(cut)
    odd = ~np.isin(kind, (1, 5))  # points (touching the boundary) or collections: keep their line parts
    for k in np.flatnonzero(odd):
        parts = [p for p in shapely.get_parts(shapely.get_parts(cut[k])) if shapely.get_type_id(p) == 1]
        cut[k] = shapely.multilinestrings(parts) if parts else shapely.from_wkt("LINESTRING EMPTY")
    roads = roads.set_geometry(cut, crs=roads.crs)
    return pois, roads[~shapely.is_empty(cut)].reset_index(drop=True)
