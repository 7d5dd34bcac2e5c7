"""OpenStreetMap readers: ``.osm.pbf`` via pyosmium, GeoParquet / GeoDataFrames via GeoPandas."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from .._stacklevel import warn as _warn
from ..errors import CoverageWarning, Geos2VecWarning, InvalidInputError, InvalidTypeError
from ..ontology import ROAD_CHANNEL, load_ontology
from ..options import progress as _show
from .osm_frames import read_pois, read_roads
from .osm_geometry import _check_area, _clip, _known_runs, _osm_file, _road_lines
from .osm_profile import filtered_message, is_land_way, looks_filtered

if TYPE_CHECKING:
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
             areas: bool = True, all_highways: bool = False, progress: bool | None = False,
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
    progress : bool or None, default False
        Show a tqdm counter of OSM objects read; None follows ``geos2vec.set_options(progress=...)`` (as
        ``embed``'s and ``download_osm``'s default does). Anything but True, False, 0, 1 or None is an
        :class:`~geos2vec.errors.InvalidInputError`.
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
        ``pois.attrs["looks_filtered"]``: whether the file looks filtered to roads (1,000 ways or more, at most
        3 % of them buildings, land use, water or natural areas; :mod:`geos2vec.io.osm_profile`), as routing
        engines' test extracts are. Its POIs are then not all the place holds: a
        :class:`geos2vec.errors.CoverageWarning` says so, and ``pois=False`` records the POI channels as
        missing instead of zero.

    Raises
    ------
    FileNotFoundError, ImportError (pyosmium missing), ValueError (not an OSM file; an ``area`` that is not a
    polygonal area in degrees, :class:`geos2vec.errors.InvalidInputError`).
    """
    import geopandas as gpd
    import shapely

    if not isinstance(path, (str, os.PathLike)):  # os.fspath's TypeError named neither the argument nor a way on
        raise InvalidTypeError(
            f"path must be the path of an OpenStreetMap file (.osm.pbf), got {type(path).__name__}; POIs and roads "
            "already in GeoDataFrames are counted by count_features(pois, roads) or embedded with "
            "embed(..., features={'pois': pois, 'roads': roads})")
    osmium = _import_osmium()
    path = os.path.expanduser(os.fspath(path))  # "~/x.osm.pbf" is the home folder's, as pandas reads it
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
    if _show(progress):
        from tqdm.auto import tqdm

        it = tqdm(fp, unit=" objects", desc=os.path.basename(path))
    seen = {"node": 0, "way": 0, "relation": 0}
    skipped = {"broken_areas": 0, "roads_missing_nodes": 0, "roads_one_node": 0}  # objects that make no feature
    cut = 0  # roads with a node the file lacks, kept as the parts it holds
    land = 0  # ways of buildings, land use, water, natural areas: none in a file filtered to roads
    try:
        for obj in it:
            if obj.is_node():
                seen["node"] += 1
            elif obj.is_way():
                seen["way"] += 1
                land += is_land_way(obj.tags)
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
            _warn(f"{os.path.basename(path)} is not sorted by id ({exc}), so areas cannot be assembled; reading "
                  "POI nodes and roads only. Sort it with `osmium sort` to get area POIs.", Geos2VecWarning)
            return read_osm(path, ontology=ontology, pois=pois, roads=roads, areas=False,
                            all_highways=all_highways, progress=progress, area=area)
        if "detect file format" in str(exc):  # the name's ending, not the content
            raise InvalidInputError(f"could not tell the format of {path!r} from its name: name it .osm.pbf (or "
                                    f".osm, .osm.bz2, .osm.gz, .o5m, .opl)") from exc
        raise InvalidInputError(f"could not read {path!r} as an OpenStreetMap file: {exc}. Is it cut short or "
                                "not an OSM file (e.g. an error page)? Download it again") from exc

    if seen["node"] > 1000 and seen["way"] == 0 and seen["relation"] == 0:
        _warn(f"{os.path.basename(path)} holds {seen['node']:,} nodes but no way and no relation: the file looks "
              "cut short (an interrupted download?). Nodes come first in an OSM file; roads and area POIs would "
              "be missing. Download it again.", Geos2VecWarning)
    filtered = looks_filtered(seen["way"], land)
    if filtered and pois:  # its header box would call every cell observed, the POIs the filter cut zero
        _warn(filtered_message(os.path.basename(path), seen["way"], land, len(p_type)), CoverageWarning)
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
            _warn(f"read_osm: none of the {had:,} POIs and roads of {os.path.basename(path)} lie in the area "
                  f"{tuple(round(float(v), 6) for v in area.bounds)}; the file's data spans about "
                  f"{tuple(round(float(v), 6) for v in extent)}. Is the area in (min_lon, min_lat, max_lon, "
                  "max_lat) order and degrees?", Geos2VecWarning)
    poi_frame.attrs["skipped"] = {"broken_areas": skipped["broken_areas"]}
    road_frame.attrs["skipped"] = {k: skipped[k] for k in ("roads_missing_nodes", "roads_one_node")}
    road_frame.attrs["cut"] = cut
    poi_frame.attrs["selected_tags"] = _selected_tags(onto)
    poi_frame.attrs["looks_filtered"] = filtered
    for frame, read in ((poi_frame, pois), (road_frame, roads)):
        if not read:  # empty because it was not read, not because the file has none
            frame.attrs["not_read"] = True
    return OSMData(poi_frame, road_frame)


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
