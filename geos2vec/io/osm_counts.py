"""The count table of an area's OpenStreetMap data: its extract downloaded, and the context around it read.

:func:`osm_features` downloads (or re-uses) the smallest extract that covers an area
(:func:`geos2vec.io.download_osm`), reads the area and the cells of context a contextual embedding reads around
it (:func:`context_box`), and records the region read as the table's coverage. Both are importable from
:mod:`geos2vec.io.download` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely

from ..errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from .._typing import AreaLike, OntologyLike, StrPath

__all__ = ["context_box", "osm_features"]


def context_box(bounds: tuple[float, float, float, float], level: int = 12, k: int = 16) -> shapely.Polygon:
    """The lon/lat box holding the ``k`` cells of ``level`` around every cell of a lon/lat bounding box.

    What a contextual embedding of the box's cells reads: at 60° N sixteen level-12 cells reach 0.73° east and
    west but only 0.42° north and south. Found from the cells themselves (their ``grid_disk`` squares along the
    box's edges and their vertices), clipped to ±180° / ±90°.

    Parameters
    ----------
    bounds : (min_lon, min_lat, max_lon, max_lat)
        Degrees.
    level : int, default 12
        The cells' level.
    k : int, default 16
        Cells of context on each side.

    Returns
    -------
    shapely.Polygon
    """
    from .. import cells as _cells

    x0, y0, x1, y1 = (float(v) for v in bounds)
    t = np.linspace(0.0, 1.0, 33)
    lng = np.concatenate([x0 + (x1 - x0) * t, x0 + (x1 - x0) * t, np.full(33, x0), np.full(33, x1)])
    lat = np.concatenate([np.full(33, y0), np.full(33, y1), y0 + (y1 - y0) * t, y0 + (y1 - y0) * t])
    edge = np.unique(_cells.latlng_to_cell(lat, lng, level))
    around = np.unique(_cells.grid_disk(edge, k + 1))  # + 1: a cell the samples missed is next to one they hit
    verts = _cells.cell_to_boundary(around)  # (n, 4, 2) lat, lng
    vlat, vlng = verts[..., 0], verts[..., 1]
    if np.ptp(vlng) > 180:  # the cells reach across the antimeridian (or round a pole): every longitude
        lo, hi = -180.0, 180.0
    else:
        lo, hi = min(x0, vlng.min()), max(x1, vlng.max())
    return shapely.box(max(lo, -180.0), max(min(y0, vlat.min()), -90.0), min(hi, 180.0), min(max(y1, vlat.max()), 90.0))


def osm_features(area: AreaLike, *, level: int = 12, margin: float | None = None, ontology: OntologyLike = "default",
                 cache_dir: StrPath | None = None, index_url: str | None = None, progress: bool | None = None,
                 refresh: bool = False, retries: int = 3, backoff: float = 1.0, timeout: float = 60.0) -> pd.DataFrame:
    """Count table (:func:`geos2vec.features.count_features`) of the OpenStreetMap data around ``area``.

    Downloads (or re-uses) the smallest extract covering ``area`` (:func:`download_osm`), reads what lies in
    ``area``'s bounding box widened by ``margin`` degrees (default: 16 cells of ``level``, the context a
    contextual embedding reads) and within the extract's boundary, and records that region as the table's
    coverage: cells beyond the extract are unknown, not empty. ``refresh``, ``retries``, ``backoff`` and
    ``timeout`` are :func:`download_osm`'s.

    Parameters
    ----------
    area : GeoDataFrame, GeoSeries, shapely geometry or (min_lon, min_lat, max_lon, max_lat)
        The area of interest (any CRS for frames; degrees otherwise).
    level : int, default 12
        S2 level of the table's cells.
    margin : float, optional
        Degrees added around ``area``'s bounding box (default: the box that holds the ``16`` cells of ``level``
        around every cell of the bounding box, :func:`context_box`; wider in longitude away from the equator).
    ontology : str, Ontology, dict or list, default "default"
        As in :func:`geos2vec.features.count_features`; also selects the POIs read.
    cache_dir, index_url, progress, refresh, retries, backoff, timeout
        As in :func:`download_osm`.

    Returns
    -------
    pandas.DataFrame
        The ``count_features`` table (index ``cell_id``), with ``attrs["coverage"]`` the region read and
        ``attrs["source"]`` a dict with the extract's ``osm_extract`` id, its ``url`` and the local ``path``.

    Raises
    ------
    NoExtractError
        No extract covers the whole area.
    DownloadError, ChecksumError
        As in :func:`download_osm`.
    """
    from .._cells_core import _check_level
    from .._optional import require
    from ..features import count_features
    from ..options import progress as _progress
    from .download import _area, _get_extract, _retry_kw  # at call time: geos2vec.io.download imports this module
    from .osm import read_osm
    require("osmium", what="geos2vec.io.osm_features")  # before any download: the extract is read with pyosmium
    geom = _area(area)
    level = _check_level(level)  # before any download
    _progress(progress)  # progress="no" was taken as True (a bar), after the download
    if margin is not None and not (isinstance(margin, (int, float, np.number)) and 0 <= margin < np.inf):
        raise InvalidInputError(f"margin is the degrees read around the area (>= 0), got {margin!r}")
    # one index read and one extract choice, shared by the download and the coverage
    extract, path = _get_extract(geom, cache_dir=cache_dir, index_url=index_url, refresh=refresh, progress=progress,
                                 **_retry_kw(retries, backoff, timeout))
    x0, y0, x1, y1 = shapely.bounds(geom)
    if margin is None:  # 16 cells of context: the cells' own extent (a fixed degree pad fell short east-west)
        box = context_box((x0, y0, x1, y1), level)
    else:
        pad = float(margin)
        box = shapely.box(max(x0 - pad, -180), max(y0 - pad, -90), min(x1 + pad, 180), min(y1 + pad, 90))
    region = shapely.intersection(box, extract["geometry"])
    if shapely.area(region) <= 0:
        raise InvalidInputError(f"the area with margin={margin!r} has no surface (a point or a line): pass a "
                                "margin > 0 (degrees), or leave it out for the default")
    pois, roads = read_osm(path, ontology=ontology, area=region, progress=_progress(progress))
    # an extract has roads: an area without any has zero roads (covered), not a missing road channel
    table = count_features(pois, roads, level=level, ontology=ontology, coverage=region)
    table.attrs["source"] = {"osm_extract": extract["id"], "url": extract["pbf"], "path": str(path)}
    return table
