"""The input's coordinates against its coverage: read as ``coverage="infer"`` reads them, and warned about.

``count_features(..., coverage=...)`` warns when most input coordinates lie outside the coverage (another CRS,
or (lat, lon) order) and when an ``.osm.pbf`` header box is far larger than the input (a placeholder header);
the dask path (:mod:`geos2vec.partitioned`) counts per partition and warns once. A layer its reader did not
read (``read_osm(roads=False)``) is told apart. Private helpers of :mod:`geos2vec.coverage`, importable from there.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import shapely

from ._coverage_layers import is_pbf as _is_pbf, outside_counts as _outside_counts
from .errors import CoverageWarning


def _lnglat_of(frame) -> np.ndarray:
    """``(n, 2)`` longitude/latitude of every coordinate of an input frame, as :func:`infer_coverage` reads them.

    GeoPandas input in EPSG:4326 (a missing CRS is taken as EPSG:4326); a plain DataFrame's longitude/latitude
    columns, found as ``count_features`` finds them; nothing for other objects.
    """
    import geopandas as gpd

    if isinstance(frame, (gpd.GeoDataFrame, gpd.GeoSeries)):
        g = frame.geometry if isinstance(frame, gpd.GeoDataFrame) else frame
        if g.crs is not None and not g.crs.equals("EPSG:4326"):
            g = g.to_crs(4326)
        return shapely.get_coordinates(np.asarray(g.values))
    if isinstance(frame, pd.DataFrame):
        from ._feature_inputs import _lnglat_columns

        lon, lat = _lnglat_columns(frame)
        if lon is not None and lat is not None:
            return np.column_stack([pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64)
                                    for c in (lon, lat)])
    return np.empty((0, 2))


def _warn_outside(geom, input_xy=None, counts=None, stacklevel=4, source=None):
    """Warn when most input coordinates lie outside the coverage: likely another CRS or (lat, lon) order.

    ``input_xy``: ``[(lng, lat), ...]`` arrays; or ``counts``: ``(coordinates, outside)`` already counted (the
    dask path sums them over partitions). ``source``: the coverage as given (an ``.osm.pbf``: its header box).
    An empty coverage (a GeoSeries of no rows, or of missing or empty geometries) is warned about instead: it made
    every cell without counts unknown with no word (or a "lie outside ... bounds (nan, ...)" one).
    """
    if geom.is_empty:
        from ._stacklevel import warn

        warn("count_features: the coverage is empty (no polygon: a GeoSeries of no rows, or of missing or empty "
             "geometries), so it records that the source covers nothing: every cell without counts is unknown "
             "(missing), none counts as empty land. Pass the area the source covers, "
             "coverage='infer', or coverage=None to record no coverage", CoverageWarning)
        return
    if counts is None:
        lng = np.concatenate([x for x, _ in input_xy]) if input_xy else np.empty(0)
        lat = np.concatenate([y for _, y in input_xy]) if input_xy else np.empty(0)
        counts = _outside_counts(geom, lng, lat)
    n, outside = counts
    if not (n and outside > n / 2):
        return
    what = f"{outside:,} of {n:,} input coordinates (POIs and road vertices) lie outside the"
    bounds = tuple(round(float(v), 6) for v in geom.bounds)
    if _is_pbf(source):  # a header box is in degrees: the file's data reaches past it
        msg = (f"header box of {os.path.basename(os.fspath(source))} (bounds {bounds}): the file holds data beyond "
               "the box its header names (ways completed past the extract's cut, or a header left from another "
               "extract), and as coverage that box calls those cells unknown. Pass the area the file covers as "
               "coverage= (the box it was extracted with, or coverage='infer')")
    else:
        msg = (f"coverage (bounds {bounds}); is the coverage in another CRS, or in (lat, lon) order? It must be "
               "EPSG:4326 (lon, lat) and hold the area the input was taken from")
    warnings.warn(f"count_features: {what} {msg}", CoverageWarning, stacklevel=stacklevel)


def _warn_loose_header(coverage, geom, input_xy, stacklevel=4):
    """Warn when an ``.osm.pbf`` header box is far larger than the input: a header that does not describe the file.

    Some writers put a placeholder in the header (``heidelberg.test.pbf``: (0, 0, 180, 90), a quarter of the
    world); taken as coverage it calls every empty cell of that quarter known-empty. Warns when the bounding box
    of the input coordinates fills less than 1 % of the header box.
    """
    if not _is_pbf(coverage) or geom.is_empty:
        return
    lng = np.concatenate([np.asarray(x, dtype=np.float64) for x, _ in input_xy]) if input_xy else np.empty(0)
    lat = np.concatenate([np.asarray(y, dtype=np.float64) for _, y in input_xy]) if input_xy else np.empty(0)
    ok = np.isfinite(lng) & np.isfinite(lat)
    if not ok.any() or not geom.area:
        return
    extent = shapely.box(lng[ok].min(), lat[ok].min(), lng[ok].max(), lat[ok].max())
    share = extent.intersection(geom).area / geom.area
    if share < 0.01:
        box = tuple(round(float(v), 6) for v in geom.bounds)
        warnings.warn(
            f"count_features: the header box of {os.fspath(coverage)} is {box}, but the input fills only "
            f"{share:.2%} of it (its coordinates span "
            f"{tuple(round(float(v), 6) for v in extent.bounds)}): a placeholder header, or input read from part of "
            "the file (read_osm(area=...)); as coverage it calls every empty cell of that box known-empty. Pass the "
            "area the input covers as coverage= (a polygon or box, e.g. read_osm's area), or coverage='infer'",
            CoverageWarning, stacklevel=stacklevel)


def _not_read(frame) -> bool:
    """Whether ``frame`` is a layer its reader did not read (``attrs["not_read"]``).

    E.g. ``read_osm(roads=False)``; a dask frame's meta carries the attrs.
    """
    frame = getattr(frame, "_meta", frame)
    return getattr(frame, "attrs", {}).get("not_read") is True
