"""Where a feature source has data. Missing is not empty.

A ``count_features`` table lists the cells that hold at least one POI or road. A cell without a row is either
a place with no POIs or a place the source does not cover (outside an OSM extract's box, outside a state whose
venues were read); the two must not be confused. Coverage records which:

* ``count_features(..., coverage=...)`` takes the polygon (or bbox, or ``.osm.pbf`` file whose header box is
  used, or ``"infer"``: the convex hull of the input) and stores it in ``table.attrs["coverage"]``, together
  with the channels the source lacks altogether (roads for Who's On First venues): those are *missing* there,
  not zero;
* :func:`geos2vec.features.combine_counts` unions the coverage of its parts, channel by channel;
* :func:`geos2vec.raster.rasterize` turns it into a ``covered(image, row, col)`` mask next to ``observed`` and,
  when channels differ, ``available(image, row, col, feature)``.

A cell is covered when its centre lies in the coverage polygon, or when it has a row in the table (a row whose
cell lies wholly outside the polygon has only the channels of the input layer that put it there: a road-only
row tells nothing of POIs, ``attrs["coverage"]["layers"]``). Coverage is
stored as WKT in EPSG:4326 longitude/latitude (JSON-safe, so it survives Parquet and zarr); an area across the
antimeridian is given as a MultiPolygon split at ±180 (as ``coverage="infer"`` and ``venue_coverage`` make it),
not as one polygon with longitudes past 180.

``table.attrs["coverage"]`` is a dict ``{"geometry": WKT, "channels": {channel: WKT}}``; ``channels`` lists
only the channels whose coverage differs from ``geometry`` (``"POLYGON EMPTY"`` for a channel the source lacks).
A table without the key has unknown coverage (every pixel of its images counts as covered, as in v0.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from . import cells as _cells
from ._coverage_input import _lnglat_of, _not_read as _not_read
from ._coverage_input import _warn_loose_header as _warn_loose_header, _warn_outside as _warn_outside
from ._coverage_layers import is_pbf as _is_pbf, lnglat_union as _lnglat_union, wrap_lnglat as _wrap_lnglat
from ._coverage_layers import polygon_parts as _polygon_parts, polygonal_series as _polygonal_series
from ._coverage_layers import outside_counts as _outside_counts  # noqa: F401 - geos2vec.partitioned's import
from ._lnglat_hull import hull_and_flat
from .errors import CoverageError
from .errors import CoverageWarning as CoverageWarning  # importable from here before the split

if TYPE_CHECKING:
    from collections.abc import Iterable

    import geopandas as gpd
    from numpy.typing import ArrayLike

    from ._typing import CoverageLike, StrPath

__all__ = ["as_coverage", "infer_coverage", "set_coverage", "get_coverage", "has_coverage", "covered_mask",
           "combine_coverage", "pbf_bounds"]

_EMPTY = "POLYGON EMPTY"


def pbf_bounds(path: StrPath) -> tuple[float, float, float, float]:
    """``(min_lon, min_lat, max_lon, max_lat)`` from an ``.osm.pbf`` file's header (needs ``osmium``).

    Parameters
    ----------
    path : str or path-like
        An OpenStreetMap file (``.osm.pbf``).

    Returns
    -------
    tuple of float
        ``(min_lon, min_lat, max_lon, max_lat)`` in degrees, the bounding box of the header.

    Raises
    ------
    ImportError
        If ``osmium`` is not installed.
    CoverageError
        If the header has no (valid) bounding box, or the file is not an OSM file.
    """
    try:
        import osmium

        from .io.osm import _osm_file
    except ImportError as err:  # pragma: no cover - osmium is in the osm extra
        raise ImportError("reading a .osm.pbf header needs osmium: pip install 'geos2vec[osm]'") from err
    try:
        box = osmium.io.Reader(_osm_file(path), osmium.osm.osm_entity_bits.NOTHING).header().box()
    except RuntimeError as err:  # libosmium's "PBF error: ...": not an OSM file (an error page saved as .pbf)
        raise CoverageError(f"could not read the header of {path} as an OpenStreetMap file ({err}); is it an error "
                            "page or a cut-off download? Download it again, or pass the area it covers") from err
    if not box.valid():
        raise CoverageError(f"{path} has no bounding box in its header; pass the area it covers as a "
                                "polygon or (min_lon, min_lat, max_lon, max_lat), or coverage='infer'")
    return (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)


def as_coverage(coverage: CoverageLike) -> shapely.Geometry:
    """A polygonal shapely geometry in EPSG:4326 from what a user may pass as coverage.

    Accepts a shapely (multi)polygon, a ``(min_lon, min_lat, max_lon, max_lat)`` box, a GeoSeries or
    GeoDataFrame of polygons (unioned; transformed to EPSG:4326), a WKT string, or the path of an ``.osm.pbf``
    file (its header box).

    Parameters
    ----------
    coverage : shapely geometry, tuple, GeoSeries, GeoDataFrame, str or path-like
        The area a source covers. Shapely geometries and WKT are taken as EPSG:4326 longitude/latitude;
        a box (and every geometry's bounds) must lie within [-360, 360] x [-90, 90], at most 360 degrees wide,
        a box with min < max; longitudes past ±180 are taken across the antimeridian (``(178, -18, 182, -16)``).
        Geometry collections keep their polygonal parts.

    Returns
    -------
    shapely geometry
        A Polygon or MultiPolygon in EPSG:4326, possibly empty; invalid geometries are repaired with
        ``shapely.make_valid``.

    Raises
    ------
    FileNotFoundError
        If a ``.pbf`` path does not exist.
    CoverageError
        If the input is of another type, a string is neither WKT nor a ``.pbf`` path, a GeoSeries has no
        CRS, a box is malformed, the geometry is not polygonal, or its bounds are not longitude/latitude
        degrees (e.g. metres of a projected CRS).
    """
    import geopandas as gpd

    if _is_pbf(coverage):  # also EXTRACT.OSM.PBF
        if not Path(coverage).expanduser().exists():  # "~/x.osm.pbf": the home folder's (pbf_bounds expands it)
            raise FileNotFoundError(f"no .osm.pbf file at {coverage}")
        return shapely.box(*pbf_bounds(coverage))
    if isinstance(coverage, str):
        try:
            geom = shapely.from_wkt(coverage)
        except shapely.errors.GEOSException as err:
            raise CoverageError(  # it named no way on: a polygon file's path is the likely mistake
                f"coverage string is not WKT nor a .osm.pbf path: {coverage[:200]!r}; pass WKT ('POLYGON ((lon "
                "lat, ...))'), the .osm.pbf the data came from, a (min_lon, min_lat, max_lon, max_lat) box, or a file "
                "of polygons read first: geopandas.read_file(path)") from err
    elif isinstance(coverage, (gpd.GeoSeries, gpd.GeoDataFrame)):
        gs = coverage.geometry if isinstance(coverage, gpd.GeoDataFrame) else coverage
        if gs.crs is None:
            raise CoverageError("the coverage GeoSeries has no CRS; set it (e.g. .set_crs(4326))")
        # points or lines among polygons were dropped unseen (evaluate's coverage= refused them)
        geom = _lnglat_union(_polygonal_series(gs, "the coverage GeoSeries"))  # densified, split at ±180
    elif isinstance(coverage, shapely.Geometry):
        geom = coverage
    elif isinstance(coverage, (tuple, list, np.ndarray)) and len(coverage) == 4:
        try:
            x0, y0, x1, y1 = (float(v) for v in coverage)
        except (TypeError, ValueError) as err:  # None, a string, a nested array
            raise CoverageError(f"a coverage box is (min_lon, min_lat, max_lon, max_lat), four numbers in degrees; "
                                f"got {coverage!r} ({err})") from None
        problems = []
        if not np.isfinite([x0, y0, x1, y1]).all():
            problems.append("a value is not finite")
        else:
            if not (x0 < x1 and y0 < y1):
                problems.append("min must be < max")
            if not (-360 <= x0 and x1 <= 360 and x1 - x0 <= 360):  # past ±180: across it (178, ..., 182, ...)
                problems.append("longitudes outside [-360, 360] or more than 360 degrees apart")
            if not (-90 <= y0 and y1 <= 90):
                problems.append("latitudes outside [-90, 90] (latitude and longitude swapped?)")
        if problems:
            raise CoverageError(f"a coverage box is (min_lon, min_lat, max_lon, max_lat) in degrees with "
                                f"min < max; got {(x0, y0, x1, y1)}: {'; '.join(problems)}")
        geom = shapely.box(x0, y0, x1, y1)
    else:
        raise CoverageError(
            "coverage must be a polygon, a (min_lon, min_lat, max_lon, max_lat) box, a GeoSeries/GeoDataFrame "
            f"of polygons, WKT, a .osm.pbf path or 'infer'; got {type(coverage).__name__}")
    if not geom.is_empty and shapely.get_type_id(geom) not in (3, 6, 7):
        raise CoverageError(f"coverage must be polygonal (the area the source covers), got a "
                                f"{geom.geom_type}")
    if shapely.get_type_id(geom) == 7:  # a collection: keep its polygons
        parts = _polygon_parts(geom)
        geom = shapely.union_all(parts) if parts else shapely.from_wkt(_EMPTY)
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if not geom.is_empty and not isinstance(coverage, (gpd.GeoSeries, gpd.GeoDataFrame)):
        x0, y0, x1, y1 = (float(v) for v in geom.bounds)
        if -360 <= x0 and x1 <= 360 and x1 - x0 <= 360 and -90 <= y0 and y1 <= 90:
            geom = _wrap_lnglat(geom)  # box(178, -18, 182, -16): across ±180 (Fiji), as a GeoSeries of it is
    if not geom.is_empty:
        bounds = tuple(float(v) for v in geom.bounds)
        x0, y0, x1, y1 = bounds
        if not (np.isfinite(bounds).all() and -180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90):
            raise CoverageError(
                f"coverage bounds {bounds} are not longitude/latitude degrees (longitude in [-180, 180], "
                "latitude in [-90, 90]); a coverage geometry is taken as EPSG:4326 in (lon, lat) order: transform "
                "it first (e.g. GeoSeries.to_crs(4326)), or pass a GeoSeries that carries its CRS")
    return geom


def infer_coverage(pois: pd.DataFrame | gpd.GeoSeries | None = None,
                   roads: pd.DataFrame | gpd.GeoSeries | None = None, *,
                   check_isolated: bool = True) -> shapely.Polygon | shapely.MultiPolygon:
    """The convex hull of every input coordinate: an approximation when the real area is not known.

    Empty places inside the hull count as covered (they are empty), places outside as unknown. Pass the
    real area (an extract's box, a state's boundary) when you have it.

    Parameters
    ----------
    pois, roads : GeoDataFrame, GeoSeries or DataFrame, optional
        Input frames; GeoPandas input is transformed to EPSG:4326 (a missing CRS is taken as EPSG:4326),
        a plain DataFrame contributes its longitude/latitude columns, found as ``count_features`` finds
        them (``lon``/``lng``/``longitude``/``x`` and ``lat``/``latitude``/``y``; other frames are
        ignored). NaN and infinite coordinates are skipped.
    check_isolated : bool, default True
        Warn (``CoverageWarning``) when coordinates with fewer than 5 others within about 100 km (a level-8 S2
        cell and its neighbours; often mis-geocoded) make the hull more than twice the hull of the rest.

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        The convex hull in EPSG:4326 longitude/latitude (collinear input: the hull buffered by 1e-6
        degrees). Input on both sides of the antimeridian (Fiji, the Aleutians; within 180 degrees of
        longitude of each other) gets the hull of the narrow area it lies in, split at ±180 into a
        MultiPolygon, not a band around the whole globe.

    Raises
    ------
    CoverageError
        If there are fewer than 3 finite input coordinates.
    """
    coords = [_lnglat_of(frame) for frame in (pois, roads) if frame is not None]
    xy = np.concatenate(coords) if coords else np.empty((0, 2))
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 3:
        raise CoverageError("coverage='infer' needs at least 3 input coordinates; pass the covered area "
                                "explicitly")
    from .io.wof_coverage import _warn_stretched

    hull, flat = hull_and_flat(xy)  # across ±180 where the input lies on both sides of it (was: the globe's width)
    if check_isolated and not flat:  # a line's hull is a hair wide: no area to compare
        _warn_stretched(xy, hull)
    return hull


def _wkt(geom) -> str:
    return _EMPTY if geom.is_empty else shapely.to_wkt(geom, rounding_precision=-1)


def set_coverage(table: pd.DataFrame, coverage: CoverageLike, *, missing_channels: Iterable[str] = ()) -> pd.DataFrame:
    """``table`` with ``attrs["coverage"]`` set (in place; also returned).

    ``missing_channels`` are channels of the table the source has no data for anywhere (they are missing
    in the whole coverage, not zero).

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table (``count_features`` output).
    coverage : polygon, box, GeoSeries/GeoDataFrame, WKT or ``.osm.pbf`` path
        Anything :func:`as_coverage` accepts.
    missing_channels : iterable of str, optional
        Columns of ``table`` the source lacks altogether (a single string is one channel name; a set is sorted).
        ``count_features`` passes one with ``layers`` (the channels of each input layer), stored as
        ``attrs["coverage"]["layers"]``.

    Returns
    -------
    pandas.DataFrame
        ``table`` itself, its ``attrs["coverage"]`` set to ``{"geometry": WKT, "channels": {channel:
        "POLYGON EMPTY"}}``.

    Raises
    ------
    CoverageError
        If ``coverage`` is not valid (see :func:`as_coverage`) or a missing channel is not a column.
    """
    geom = as_coverage(coverage)
    if isinstance(missing_channels, str):  # one name, not its letters
        missing_channels = [missing_channels]
    missing = [str(c) for c in missing_channels]
    if isinstance(missing_channels, (set, frozenset)):  # attrs (and the Parquet metadata) in one order, not the
        missing = sorted(missing)                       # process's string hashing
    unknown = [c for c in missing if c not in table.columns]
    if unknown:
        raise CoverageError(f"missing_channels {unknown} are not columns of the table")
    table.attrs["coverage"] = {"geometry": _wkt(geom), "channels": {c: _EMPTY for c in missing}}
    layers = getattr(missing_channels, "layers", None)  # count_features: the channels of each input layer
    if layers:
        table.attrs["coverage"]["layers"] = [[str(c) for c in chans] for chans in layers]
    return table


def has_coverage(table: object) -> bool:
    """Whether ``table`` records where its source has data.

    Parameters
    ----------
    table : pandas.DataFrame or any object
        A feature table; objects without ``attrs`` have no coverage.

    Returns
    -------
    bool
        True when ``table.attrs["coverage"]`` is a dict.
    """
    return isinstance(getattr(table, "attrs", {}).get("coverage"), dict)


def get_coverage(table: object) -> tuple[shapely.Geometry | None, dict[str, shapely.Geometry]]:
    """``(geometry, {channel: geometry})`` of a table, or ``(None, {})`` when its coverage is unknown.

    Parameters
    ----------
    table : pandas.DataFrame or any object
        A feature table with (or without) ``attrs["coverage"]``.

    Returns
    -------
    geometry : shapely geometry or None
        The coverage of the table's source in EPSG:4326, None when unknown.
    channels : dict of str to shapely geometry
        Coverage of the channels whose coverage differs from ``geometry`` (empty for a channel the
        source lacks).
    """
    cov = getattr(table, "attrs", {}).get("coverage")
    if not isinstance(cov, dict):
        return None, {}
    geom = shapely.from_wkt(cov["geometry"])
    return geom, {c: shapely.from_wkt(w) for c, w in cov.get("channels", {}).items()}


def combine_coverage(tables: Iterable[pd.DataFrame]) -> dict | None:
    """The coverage of a sum of tables: the union of their coverages, channel by channel.

    ``None`` (unknown) when any table's coverage is unknown.

    Parameters
    ----------
    tables : iterable of pandas.DataFrame
        Feature tables, with or without ``attrs["coverage"]``.

    Returns
    -------
    dict or None
        ``{"geometry": WKT, "channels": {channel: WKT}}`` (the ``attrs["coverage"]`` format; ``channels``
        lists only channels whose union differs from the union of the geometries), or None when
        ``tables`` is empty or some table's coverage is unknown.
    """
    tables = list(tables)
    parts = [get_coverage(t) for t in tables]
    if not parts or any(g is None for g, _ in parts):
        return None
    geom = shapely.union_all([g for g, _ in parts])
    names = sorted({c for _, ch in parts for c in ch})
    layers = next(([list(ch) for ch in t.attrs["coverage"]["layers"]] for t in tables  # a copy: not the part's
                   if t.attrs["coverage"].get("layers")), None)
    # a part's rows count as covered (and hold its channels) even where their centre is outside its geometry;
    # once parts are summed the rows cannot tell which part they came from, so those cells join its channels
    # (a row with a non-zero count has its channel anyway, see covered_mask: only zero rows are added)
    from ._coverage_layers import rows_outside, zero_rows

    rows = [rows_outside(t, base) for t, (base, _) in zip(tables, parts)] if names else []
    channels = {}
    for c in names:
        g = shapely.union_all([ch[c] if c in ch else shapely.union_all([base, *zero_rows(extra, c, layers)])
                               for (base, ch), extra in zip(parts, rows)])
        if not g.equals(geom):
            channels[c] = _wkt(g)
    return {"geometry": _wkt(geom), "channels": channels, **({"layers": layers} if layers else {})}


def covered_mask(cells: ArrayLike, table: pd.DataFrame,
                 features: Iterable[str] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Which ``cells`` the table's source covers, and which channels are available there.

    Parameters
    ----------
    cells : array_like of uint64
        Cells of the table's level (any shape); integers only (float ids are refused: they cannot hold
        64-bit ids exactly).
    table : DataFrame
        A feature table (``attrs["coverage"]`` as set by ``count_features(..., coverage=...)``).
    features : str or list, optional
        Channels to report availability for (default: the table's columns); a string is one channel.

    Returns
    -------
    covered : bool ndarray, the shape of ``cells``
        Centre inside the coverage, or a row in the table (all True when the coverage is unknown).
    available : bool ndarray ``cells.shape + (len(features),)`` or None
        Per-channel availability; ``None`` when every channel has the same coverage (= ``covered``). A row
        whose cell lies wholly outside the coverage has only the channels of the input layer (POIs or roads) it
        holds a count of.
    """
    cells = np.asarray(cells)
    # a float array was silently rounded to other cells; [] is a float array too
    cells = _cells._as_cells(cells, validate=False) if cells.size else cells.astype(np.uint64)
    # one name, not its letters (list("road") reported no channel of its own: available was None)
    features = list(table.columns) if features is None else [features] if isinstance(features, str) else list(features)
    geom, channels = get_coverage(table)
    if geom is None:
        return np.ones(cells.shape, bool), None
    flat = cells.ravel()
    if flat.size == 0:
        return np.zeros(cells.shape, bool), None
    lat, lng = _cells.cell_to_latlng(flat)
    has_row = np.isin(flat, np.asarray(table.index, dtype=np.uint64))

    def inside(g):
        if g.is_empty:
            return np.zeros(flat.size, bool)
        shapely.prepare(g)
        return shapely.contains_xy(g, lng, lat)

    in_geom = inside(geom)
    covered = in_geom | has_row
    available = None
    from ._coverage_layers import layer_gaps  # outside the coverage a row has the channels of its layer

    gaps = layer_gaps(flat, table, getattr(table, "attrs", {})["coverage"].get("layers"), has_row, in_geom,
                      features, geom)
    if gaps is not None or any(str(c) in channels for c in features):
        available = np.repeat(covered[:, None], len(features), axis=1) & (True if gaps is None else ~gaps)
        for k, c in enumerate(features):
            if str(c) in channels:
                available[:, k] = inside(channels[str(c)])
                if str(c) in table.columns:  # a cell with a non-zero count in this channel has it
                    col = np.nan_to_num(np.asarray(table[c].to_numpy(), dtype=np.float64)) != 0
                    # any of its rows (a reindex raised on a table with repeated cells)
                    available[:, k] |= np.isin(flat, np.asarray(table.index, dtype=np.uint64)[col])
        available = available.reshape(cells.shape + (len(features),))
    return covered.reshape(cells.shape), available
