"""Where Who's On First venue files have data: each state's venue hull, without its mis-geocoded venues.

A state's file holds a few venues geocoded far outside the state (a head office's address, a same-named town in
another state: Delaware's file has one in Los Angeles). The convex hull of *every* venue then spans half the
continent (Delaware's 79 times the state's area, Kentucky's 14 times), and every empty cell in it would count as
known-empty ("missing is not empty", :mod:`geos2vec.coverage`). :func:`venue_coverage` takes the hull of each
state's venues without the isolated ones: 0.8-1.4 times each of the 22 shared states' areas (``docs/data.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._lnglat_hull import lnglat_hull as _hull
from .._stacklevel import warn
from ..errors import CoverageError, CoverageWarning, InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    import shapely

__all__ = ["isolated_venues", "venue_coverage"]

#: The S2 level whose cell and its eight neighbours make a venue's neighbourhood (level 8: about 30-40 km
#: cells in the US, so a neighbourhood about 100 km across).
NEIGHBOURHOOD_LEVEL = 8


def _lnglat(venues) -> np.ndarray:
    import geopandas as gpd

    if not isinstance(venues, pd.DataFrame):
        raise InvalidTypeError(f"venues must be a GeoDataFrame (read_wof's result) or a DataFrame with lon/lat "
                               f"columns, got {type(venues).__name__}")
    if isinstance(venues, gpd.GeoDataFrame):
        g = venues.geometry
        if g.crs is not None and not g.crs.equals("EPSG:4326"):
            g = g.to_crs(4326)
        import shapely

        values = np.asarray(g.values)
        out = np.full((len(values), 2), np.nan)
        point = (shapely.get_type_id(values) == 0) & ~shapely.is_empty(values)  # others have no coordinate
        out[point, 0], out[point, 1] = shapely.get_x(values[point]), shapely.get_y(values[point])
        return out
    if not {"lon", "lat"} <= set(venues.columns):
        raise InvalidInputError(f"venues without a geometry need 'lon' and 'lat' columns; columns are "
                                f"{list(venues.columns)}")
    return np.column_stack([pd.to_numeric(venues[c], errors="coerce").to_numpy(np.float64) for c in ("lon", "lat")])


def _groups(venues, by) -> tuple[np.ndarray, np.ndarray]:
    """Group code of each row (a missing name is a group of its own, -1) and the group names."""
    if by is None:
        return np.zeros(len(venues), dtype=np.int64), np.array(["all venues"], dtype=object)
    if by not in venues.columns:
        raise InvalidInputError(f"venues have no column {by!r} to group by (read_wof's result has 'state'); "
                                "pass by=None to treat all venues as one source")
    codes, names = pd.factorize(venues[by], use_na_sentinel=True)
    return codes, np.asarray(names, dtype=object)


def _valid(lnglat: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(lnglat).all(axis=1) & (np.abs(lnglat[:, 1]) <= 90) & (np.abs(lnglat[:, 0]) <= 180)


def _check_min_neighbours(min_neighbours) -> int:
    if isinstance(min_neighbours, bool) or not isinstance(min_neighbours, (int, np.integer)) or min_neighbours < 0:
        raise InvalidInputError(f"min_neighbours must be an integer >= 0, got {min_neighbours!r}")
    return int(min_neighbours)


def _neighbourhood_counts(lnglat: np.ndarray) -> np.ndarray:
    """For each (finite) coordinate, the number of coordinates in its level-8 cell and the eight around it."""
    from ..cells import latlng_to_cell

    cells = latlng_to_cell(lnglat[:, 1], lnglat[:, 0], NEIGHBOURHOOD_LEVEL)
    uniq, inverse, count = np.unique(cells, return_inverse=True, return_counts=True)
    return _cell_neighbourhood(uniq, count)[inverse.ravel()]


def _cell_neighbourhood(uniq: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per sorted unique level-8 cell ``uniq`` (``count`` coordinates in each): the coordinates in it and around it."""
    from ..cells import grid_disk

    disk = np.sort(grid_disk(uniq, 1), axis=1)
    repeat = np.zeros(disk.shape, dtype=bool)  # near a cube corner a square names one cell twice
    repeat[:, 1:] = disk[:, 1:] == disk[:, :-1]
    pos = np.minimum(np.searchsorted(uniq, disk), len(uniq) - 1)
    hit = (uniq[pos] == disk) & ~repeat
    return np.where(hit, count[pos], 0).sum(axis=1)


def isolated_venues(venues: pd.DataFrame, *, min_neighbours: int = 5, by: str | None = "state") -> np.ndarray:
    """Which venues lie far from the rest of their state's venues (likely geocoded in the wrong place).

    A venue is isolated when fewer than ``min_neighbours`` other venues of its group lie in its level-8 S2 cell
    and the eight cells around it (about 100 km across in the US). Venues with missing or invalid coordinates
    are not isolated (they are not places at all; :func:`~geos2vec.io.read_wof` drops them).

    Parameters
    ----------
    venues : GeoDataFrame or DataFrame
        :func:`~geos2vec.io.read_wof`'s result (any CRS), or a DataFrame with ``lon``/``lat`` degrees.
    min_neighbours : int, default 5
        Venues of the same group needed around a venue; 0 marks none isolated.
    by : str or None, default "state"
        The column naming each venue's source file (state); ``None``: all venues are one group.

    Returns
    -------
    numpy.ndarray of bool
        One entry per row of ``venues``, in row order.

    Examples
    --------
    >>> import pandas as pd
    >>> venues = pd.DataFrame({"lon": [-75.5] * 6 + [-118.2], "lat": [39.2] * 6 + [34.0]})
    >>> isolated_venues(venues, by=None).tolist()
    [False, False, False, False, False, False, True]
    """
    k = _check_min_neighbours(min_neighbours)
    lnglat = _lnglat(venues)
    group, _ = _groups(venues, by)
    ok = _valid(lnglat)
    out = np.zeros(len(venues), dtype=bool)
    if k == 0:
        return out
    for g in np.unique(group[ok]):
        rows = np.flatnonzero(ok & (group == g))
        out[rows] = _neighbourhood_counts(lnglat[rows]) - 1 < k
    return out


def venue_coverage(venues: pd.DataFrame, *, min_neighbours: int = 5, by: str | None = "state") -> shapely.Geometry:
    """Where venue files have data: the union of each state's convex hull of its venues, isolated ones left out.

    The coverage to pass to :func:`geos2vec.count_features` (``coverage=``) for Who's On First venues: empty
    cells inside it count as known-empty, cells outside as unknown. Venues left out of the hull
    (:func:`isolated_venues`) keep their counts; only the hull ignores them. A convex hull still holds some
    neighbouring land of a concave state; pass the states' real boundaries when you have them.

    Parameters
    ----------
    venues : GeoDataFrame or DataFrame
        :func:`~geos2vec.io.read_wof`'s result (any CRS), or a DataFrame with ``lon``/``lat`` degrees.
    min_neighbours : int, default 5
        See :func:`isolated_venues`; 0 takes the hull of every venue.
    by : str or None, default "state"
        One hull per value of this column; ``None``: one hull of all venues.

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        In EPSG:4326 longitude/latitude. A group whose venues lie on both sides of the antimeridian (±180°
        longitude: Fiji, the western Aleutians) gets its hull across it, in two parts that meet at ±180°
        (in plain longitudes its hull spanned the globe's whole width).

    Raises
    ------
    CoverageError
        If a group has fewer than 3 venues with valid coordinates that are not isolated.
    """
    import shapely

    isolated = isolated_venues(venues, min_neighbours=min_neighbours, by=by)
    lnglat = _lnglat(venues)
    group, names = _groups(venues, by)
    ok = _valid(lnglat)
    hulls = []
    for g in np.unique(group[ok]):
        xy = lnglat[ok & ~isolated & (group == g)]
        if len(xy) < 3:
            name = names[g] if g >= 0 else None
            raise CoverageError(f"venue_coverage: group {name!r} has {len(xy)} venue(s) with valid coordinates "
                                f"that are not isolated (min_neighbours={min_neighbours}); 3 are needed for a hull. "
                                "Lower min_neighbours, or pass the area the source covers explicitly")
        hulls.append(_hull(xy))
    if not hulls:
        raise CoverageError("venue_coverage: no venues with valid coordinates")
    return shapely.union_all(hulls)


def _warn_stretched(xy: np.ndarray, hull) -> None:
    """Warn when a few isolated coordinates (mis-geocoded) make the hull far larger than the hull of the rest."""
    if len(xy) < 20:
        return
    isolated = _neighbourhood_counts(xy) - 1 < 5  # as geos2vec.io.isolated_venues: < 5 others within ~100 km
    _warn_if_stretched(int(isolated.sum()), int((~isolated).sum()), xy[~isolated], hull)


def _warn_stretched_cells(xy: np.ndarray, xy_cells: np.ndarray, cells: np.ndarray, counts: np.ndarray, hull) -> None:
    """:func:`_warn_stretched` from level-8 cell counts and each cell's hull vertices (what dask partitions send).

    ``cells`` (sorted, unique) hold ``counts`` coordinates in all; ``xy`` are the hull vertices of each cell's
    coordinates, ``xy_cells`` their cells. Isolation is a cell's (every coordinate of a cell has the same
    neighbours), and the hull of the vertices of the cells that are not isolated is the hull of their coordinates.
    """
    n = int(counts.sum())
    if n < 20:
        return
    isolated = _cell_neighbourhood(cells, counts) - 1 < 5
    n_isolated = int(counts[isolated].sum())
    keep = ~isolated[np.searchsorted(cells, xy_cells)]
    _warn_if_stretched(n_isolated, n - n_isolated, xy[keep], hull)


def _warn_if_stretched(n_isolated: int, n_core: int, core_xy: np.ndarray, hull) -> None:
    if not n_isolated or n_core < 3:
        return
    core = _hull(core_xy)  # across ±180 too, as the hull it is compared with
    if hull.area > 2 * core.area:
        warn(f"coverage='infer': {n_isolated:,} isolated coordinates (fewer than 5 others within about 100 "
             f"km; often mis-geocoded) stretch the convex hull to {hull.area / max(core.area, 1e-300):.1f} times the "
             "hull of the rest, and every empty cell in it counts as known-empty. Pass the real area, or for Who's On "
             "First venues coverage=geos2vec.io.venue_coverage(venues)", CoverageWarning)
