"""OpenStreetMap readers: ``.osm.pbf`` via pyosmium, GeoParquet / GeoDataFrames via GeoPandas."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from .. import _geo
from ..errors import InvalidInputError, InvalidTypeError
from ..ontology import ROAD_CHANNEL, load_ontology

if TYPE_CHECKING:
    from collections.abc import Sequence

    import geopandas as gpd

    from .._typing import AreaLike, OntologyLike, StrPath

__all__ = ["OSMData", "read_osm", "read_pois", "read_roads", "POI_KEYS"]

#: Keys whose every value makes an object a POI (values outside the ontology are kept and later
#: reported by count_features as unknown categories).
POI_KEYS = ("amenity", "shop", "tourism", "leisure", "historic", "office", "craft", "healthcare")


class OSMData(NamedTuple):
    """What :func:`read_osm` returns: ``pois`` and ``roads`` GeoDataFrames (EPSG:4326).

    A layer that was not read (``pois=False`` or ``roads=False``) is an empty frame marked
    ``attrs["not_read"] = True``: :func:`geos2vec.count_features` records its channels as missing, not zero.
    """

    pois: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame

    def __repr__(self) -> str:  # the tuple repr printed both frames
        def one(frame):
            return "not read" if frame.attrs.get("not_read") else f"{len(frame):,} rows x {frame.shape[1]} columns"

        return f"OSMData(pois: {one(self.pois)}, roads: {one(self.roads)})"


def _import_osmium():
    try:
        import osmium
        import osmium.geom  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("read_osm needs pyosmium: pip install 'geos2vec[osm]' (or pip install osmium)") from exc
    return osmium


def _classify(tags, onto, key_order):
    """(key, value) of the tag that makes the object a POI, or None."""
    for key in key_order:
        value = tags.get(key)
        if value is None:
            continue
        if (key, value) in onto._by_kv or key in onto._by_key:
            return key, value
    for key in POI_KEYS:
        value = tags.get(key)
        if value is not None:
            return key, value
    return None


def read_osm(path: StrPath, *, ontology: OntologyLike = "default", pois: bool = True, roads: bool = True,
             areas: bool = True, all_highways: bool = False, progress: bool = False,
             area: AreaLike | None = None) -> OSMData:
    """Read POIs and roads from an OpenStreetMap file (``.osm.pbf``, ``.osm``, ``.osm.bz2``).

    Parameters
    ----------
    path : str or path-like
    ontology : default "default"
        Decides which tags make a POI (any tag of the ontology, or any value
        of the keys in :data:`POI_KEYS`) and which ``highway`` values are roads.
    pois, roads : bool
        Which layers to build. A layer not built comes back as an empty frame marked
        ``attrs["not_read"] = True``, so that ``count_features(osm.pois, osm.roads, coverage=...)`` records
        its channels as missing there (unknown), not as zero.
    areas : bool, default True
        Also take POIs from tagged areas (closed ways, multipolygon
        relations) at their representative point (``shapely.point_on_surface``).
        Open ways with POI tags are not POIs.
    all_highways : bool, default False
        Keep every ``highway=*`` way, not just the ontology's road classes
        (count_features then reports the others as dropped).
    progress : bool
        Show a tqdm counter of OSM objects read.
    area : GeoDataFrame, GeoSeries, shapely geometry or (min_lon, min_lat, max_lon, max_lat), optional
        Keep only what lies in this area: POIs inside it (boundary included) and the parts of roads inside
        it (roads are cut at its boundary, so no road counts in a cell outside it). Pass the same area as
        ``count_features(..., coverage=...)``. It must be polygonal and, unless it carries a CRS, in
        longitude/latitude degrees; it is checked before the file is read.

    Returns
    -------
    OSMData
        ``pois``: GeoDataFrame with ``osm_type`` (node/way/relation),
        ``osm_id``, ``osm_key``, ``fclass`` (the tag value), ``name`` and Point
        geometry; ``roads``: ``osm_id``, ``highway``, ``name`` and LineString
        geometry (MultiLineString where ``area`` or the extract's boundary cuts a road into pieces).
        Both in EPSG:4326, ordered as in the file (nodes, then areas). What the file holds but could not
        become a feature is counted in ``attrs["skipped"]``: ``pois.attrs["skipped"]["broken_areas"]`` (tagged
        multipolygons whose rings do not close, e.g. cut by an extract), ``roads.attrs["skipped"]`` with
        ``roads_missing_nodes`` (ways of which the file holds no two consecutive nodes) and ``roads_one_node``.
        A way cut by the extract's boundary keeps the parts the file holds (runs of 2 or more nodes), so the
        cells inside the box count it; ``roads.attrs["cut"]`` says how many ways were kept so.
        ``pois.attrs["selected_tags"]``: the tags that made an object a POI (``key=value``, ``key=*``);
        ``count_features`` warns when it counts with an ontology whose tags are not among them (read the
        file with that ontology: POIs of the other tags were never read).
        When an object has several POI tags the first ontology tag wins, in
        the order of the ontology's keys.

    Raises
    ------
    FileNotFoundError, ImportError (pyosmium missing), ValueError (not an OSM file; an ``area`` that is not a
    polygonal area in degrees, :class:`geos2vec.errors.InvalidInputError`).
    """
    import geopandas as gpd
    import shapely

    osmium = _import_osmium()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no OSM file at {path!r}")
    if area is not None:
        area = _check_area(area)  # before reading: a bad area would only show as an empty result
    onto = load_ontology(ontology)
    key_order = list(dict.fromkeys(k for k in onto.table["osm_key"] if isinstance(k, str) and k != "highway"))
    key_order = [k for k in key_order] + ["highway"]
    road_values = None if (all_highways or onto.road_values is None) else onto.road_values

    p_type, p_id, p_key, p_val, p_name, p_x, p_y, p_wkb = [], [], [], [], [], [], [], []
    r_id, r_hw, r_name, r_coords = [], [], [], []
    wkb = osmium.geom.WKBFactory()
    fp = osmium.FileProcessor(_osm_file(path)).with_locations()
    if pois and areas:
        fp = fp.with_areas()
    it = fp
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(fp, unit=" objects", desc=os.path.basename(path))
    seen = {"node": 0, "way": 0, "relation": 0}
    skipped = {"broken_areas": 0, "roads_missing_nodes": 0, "roads_one_node": 0}  # objects that make no feature
    cut = 0  # roads with a node the file lacks, kept as the parts it holds
    try:
        for obj in it:
            if obj.is_node():
                seen["node"] += 1
            elif obj.is_way():
                seen["way"] += 1
            elif obj.is_relation():
                seen["relation"] += 1
            if obj.is_node():
                if not pois or not len(obj.tags):
                    continue
                hit = _classify(obj.tags, onto, key_order)
                if hit is None or not obj.location.valid():
                    continue
                p_type.append("node")
                p_id.append(obj.id)
                p_key.append(hit[0])
                p_val.append(hit[1])
                p_name.append(obj.tags.get("name", ""))
                p_x.append(obj.location.lon)
                p_y.append(obj.location.lat)
                p_wkb.append(None)
            elif obj.is_way():
                if not roads:
                    continue
                hw = obj.tags.get("highway")
                if hw is None or (road_values is not None and hw not in road_values):
                    continue
                try:
                    coords = [(n.lon, n.lat) for n in obj.nodes]
                except osmium.InvalidLocationError:  # a node the file does not hold (cut by an extract)
                    coords = _known_runs(obj.nodes)  # keep the parts the file holds (inside its box)
                    if not coords:
                        skipped["roads_missing_nodes"] += 1
                        continue
                    cut += 1
                if len(coords) < 2:
                    skipped["roads_one_node"] += 1
                    continue
                r_id.append(obj.id)
                r_hw.append(hw)
                r_name.append(obj.tags.get("name", ""))
                r_coords.append(coords)
            elif obj.is_area():
                if not pois:
                    continue
                hit = _classify(obj.tags, onto, key_order)
                if hit is None or hit[0] == "highway":
                    continue
                try:
                    geom = wkb.create_multipolygon(obj)
                except RuntimeError:  # broken multipolygon geometry in the source
                    skipped["broken_areas"] += 1
                    continue
                p_type.append("way" if obj.from_way() else "relation")
                p_id.append(obj.orig_id())
                p_key.append(hit[0])
                p_val.append(hit[1])
                p_name.append(obj.tags.get("name", ""))
                p_x.append(np.nan)
                p_y.append(np.nan)
                p_wkb.append(bytes.fromhex(geom) if isinstance(geom, str) else geom)
    except RuntimeError as exc:
        if "out of order" in str(exc) and pois and areas:
            warnings.warn(f"{os.path.basename(path)} is not sorted by id ({exc}), so areas cannot be assembled; "
                          "reading POI nodes and roads only. Sort it with `osmium sort` to get area POIs.",
                          UserWarning, stacklevel=2)
            return read_osm(path, ontology=ontology, pois=pois, roads=roads, areas=False,
                            all_highways=all_highways, progress=progress, area=area)
        if "detect file format" in str(exc):  # the name's ending, not the content
            raise InvalidInputError(f"could not tell the format of {path!r} from its name: name it .osm.pbf (or "
                                    f".osm, .osm.bz2, .osm.gz, .o5m, .opl)") from exc
        raise InvalidInputError(f"could not read {path!r} as an OpenStreetMap file: {exc}. Is it cut short or "
                                "not an OSM file (e.g. an error page)? Download it again") from exc

    if seen["node"] > 1000 and seen["way"] == 0 and seen["relation"] == 0:
        warnings.warn(f"{os.path.basename(path)} holds {seen['node']:,} nodes but no way and no relation: the file "
                      "looks cut short (an interrupted download?). Nodes come first in an OSM file; roads and "
                      "area POIs would be missing. Download it again.", UserWarning, stacklevel=2)
    pts = shapely.points(np.asarray(p_x, dtype=np.float64), np.asarray(p_y, dtype=np.float64))
    is_area = np.array([w is not None for w in p_wkb], dtype=bool)
    if is_area.any():
        polys = shapely.from_wkb(np.array([w for w in p_wkb if w is not None], dtype=object))
        pts[is_area] = shapely.point_on_surface(polys)
    poi_frame = gpd.GeoDataFrame(
        {"osm_type": pd.Series(p_type, dtype=object), "osm_id": np.asarray(p_id, dtype=np.int64),
         "osm_key": pd.Series(p_key, dtype=object), "fclass": pd.Series(p_val, dtype=object),
         "name": pd.Series(p_name, dtype=object)},
        geometry=gpd.GeoSeries(pts, crs="EPSG:4326"), crs="EPSG:4326")
    lines = _road_lines(r_coords)
    road_frame = gpd.GeoDataFrame(
        {"osm_id": np.asarray(r_id, dtype=np.int64), "highway": pd.Series(r_hw, dtype=object),
         "name": pd.Series(r_name, dtype=object)},
        geometry=gpd.GeoSeries(lines, crs="EPSG:4326"), crs="EPSG:4326")
    if area is not None:
        had = len(poi_frame) + len(road_frame)
        extent = poi_frame.total_bounds if len(poi_frame) else road_frame.total_bounds
        poi_frame, road_frame = _clip(poi_frame, road_frame, area)
        if had and not len(poi_frame) and not len(road_frame):  # an area beside the data kept nothing, silently
            warnings.warn(f"read_osm: none of the {had:,} POIs and roads of {os.path.basename(path)} lie in the area "
                          f"{tuple(round(float(v), 6) for v in area.bounds)}; the file's data spans about "
                          f"{tuple(round(float(v), 6) for v in extent)}. Is the area in (min_lon, min_lat, max_lon, "
                          "max_lat) order and degrees?", UserWarning, stacklevel=2)
    poi_frame.attrs["skipped"] = {"broken_areas": skipped["broken_areas"]}
    road_frame.attrs["skipped"] = {k: skipped[k] for k in ("roads_missing_nodes", "roads_one_node")}
    road_frame.attrs["cut"] = cut
    poi_frame.attrs["selected_tags"] = _selected_tags(onto)
    for frame, read in ((poi_frame, pois), (road_frame, roads)):
        if not read:  # empty because it was not read, not because the file has none
            frame.attrs["not_read"] = True
    return OSMData(poi_frame, road_frame)


def _osm_file(path):
    """``path``, or an ``osmium.io.File`` naming its format where only the case of its ending hides it (X.OSM.PBF)."""
    import osmium

    path = os.fspath(path)
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


def _selected_tags(onto) -> tuple[str, ...]:
    """The ``key=value`` / ``key=*`` tags that make an object a POI for :func:`read_osm` with ontology ``onto``.

    ``count_features`` compares them with the ontology it counts with: a tag read_osm did not select was never
    read, so its channel would be zero without a word.
    """
    tags = {f"{k}=*" for k in POI_KEYS}
    for channel, key, value in zip(onto.table["channel"], onto.table["osm_key"], onto.table["osm_value"]):
        if channel != ROAD_CHANNEL and isinstance(key, str) and key and f"{key}=*" not in tags:
            tags.add(f"{key}={value}")
    return tuple(sorted(tags))


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
            parts = [g for g in shapely.get_parts(geom) if shapely.get_type_id(g) in (3, 6)]
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


def _read_frame(data, name, columns=None):
    import geopandas as gpd

    if isinstance(data, gpd.GeoDataFrame):
        frame = data
    elif isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no {name} file at {path!r}")
        parquet = path.lower().endswith((".parquet", ".geoparquet", ".pq"))  # DATA.PARQUET too (not for GDAL)
        try:
            if parquet:
                frame = gpd.read_parquet(path, columns=_with_geometry(path, columns))
            else:
                frame = gpd.read_file(path, columns=columns)
        except Exception as exc:  # pyarrow / pyogrio errors of a file that is not what its name says
            raise InvalidInputError(f"could not read {path!r} as a {'GeoParquet' if parquet else 'GeoPandas'} "
                                    f"file of {name} ({type(exc).__name__}: {exc})") from exc
    else:
        raise InvalidTypeError(f"{name} must be a path or a GeoDataFrame, got {type(data).__name__}")
    geoms = _geo.to_wgs84(_geo.as_geoseries(frame, name), name)
    if geoms is not frame.geometry:
        frame = frame.set_geometry(geoms)
    return frame


def _with_geometry(path, columns):
    """``columns`` plus the file's geometry column (as ``read_file`` adds it), read from its GeoParquet metadata."""
    if columns is None:
        return None
    import json

    import pyarrow.parquet as pq

    columns = list(columns)
    meta = pq.read_schema(path).metadata or {}
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
    columns : list of str, optional
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
        If the category column is missing, the CRS is missing, or the file cannot be read
        (:class:`geos2vec.errors.InvalidInputError`).
    """
    frame = _read_frame(data, "pois", columns)
    if category_column is not None and category_column not in frame.columns:
        raise InvalidInputError(f"pois have no {category_column!r} column (columns: {list(frame.columns)}); "
                                "pass category_column=... naming the category column")
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
    columns : list of str, optional
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
        (:class:`geos2vec.errors.InvalidInputError`).
    """
    import shapely

    frame = _read_frame(data, "roads", columns)
    arr = np.asarray(frame.geometry.values)
    ok = _geo.missing_mask(frame.geometry) | np.isin(shapely.get_type_id(arr), (1, 2, 5))
    if not ok.all():
        raise InvalidInputError(f"roads must be LineStrings or MultiLineStrings; not at index "
                                f"{_geo.describe_labels(frame.index, ~ok)}")
    return frame
