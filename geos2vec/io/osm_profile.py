"""Whether an OpenStreetMap file looks filtered to roads, so that its POIs are not all the place holds.

Routing engines ship test extracts filtered to what they route on (``osmium tags-filter``, ``osmosis``): roads,
public transport, a few transport POIs such as parking. Nothing in such a file's header says so (its writing
program, replication fields and sort order are those of a complete extract), but its ways do: a complete
extract of an inhabited place maps buildings, land use, water and natural areas, a road filter drops them all.
Measured on the 16 extracts of ``../shared/data/osm`` (docs/data.md, "Filtered extracts"): the share of ways
with a ``building``, ``landuse``, ``natural`` or ``waterway`` tag is 0.000-0.019 in the six filtered to roads
(oslo-east-filtered, rnv_mannheim, porto_portugal, heidelberg.test, portland_small, milan_italy_small) and
0.059-0.71 in the other ten. Read as complete, a filtered file's header box says every cell in it is observed,
and its missing POIs become zeros.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Container

__all__ = ["LAND_KEYS", "MIN_WAYS", "MAX_LAND_SHARE", "is_land_way", "looks_filtered", "filtered_message"]

#: Way keys of a complete extract that road filters remove: buildings, land use, water and natural areas.
LAND_KEYS = ("building", "landuse", "natural", "waterway")
#: Files with fewer ways are not judged (a tiny extract may hold only a road).
MIN_WAYS = 1000
#: At most this share of land ways (``LAND_KEYS``) among all ways: the file looks filtered to roads.
MAX_LAND_SHARE = 0.03


def is_land_way(tags: Container[str]) -> bool:
    """Whether a way's tags hold one of :data:`LAND_KEYS`.

    Parameters
    ----------
    tags : mapping or osmium TagList
        The way's tags (``key in tags`` is all that is used).

    Returns
    -------
    bool
    """
    return any(key in tags for key in LAND_KEYS)


def looks_filtered(n_ways: int, n_land: int) -> bool:
    """Whether a file of ``n_ways`` ways, ``n_land`` of them land ways, looks filtered to roads.

    Parameters
    ----------
    n_ways : int
        Ways in the file.
    n_land : int
        Ways with a key of :data:`LAND_KEYS`.

    Returns
    -------
    bool
        True when the file holds at least :data:`MIN_WAYS` ways and at most :data:`MAX_LAND_SHARE` of them are
        land ways.

    Examples
    --------
    >>> looks_filtered(14893, 1), looks_filtered(4590, 270), looks_filtered(200, 0)
    (True, False, False)
    """
    return n_ways >= MIN_WAYS and n_land <= MAX_LAND_SHARE * n_ways


def filtered_message(name: str, n_ways: int, n_land: int, n_pois: int) -> str:
    """The warning :func:`geos2vec.io.read_osm` gives for a file that looks filtered to roads.

    Parameters
    ----------
    name : str
        The file's name.
    n_ways, n_land : int
        Ways in the file, and those with a key of :data:`LAND_KEYS`.
    n_pois : int
        POIs read from it.

    Returns
    -------
    str
    """
    return (f"read_osm: {name} looks filtered to roads: {n_land:,} of its {n_ways:,} ways "
            f"({n_land / n_ways:.2%}) are buildings, land use, water or natural areas (other test extracts: 6-71 %; "
            f"routing test files filtered to roads: under 2 %). A filter drops POIs too ({n_pois:,} read), and a "
            "coverage from the file's header box would count the missing ones as zero. Read it with pois=False "
            "(the POI channels are then missing, not zero), or declare the tags the filter kept, e.g. those read: "
            "pois.attrs['source_tags'] = sorted(set(pois['osm_key'] + '=' + pois['fclass'])) (the other POI "
            "channels are then missing); if the file is complete (a place where only roads are mapped), ignore "
            "this warning. pois.attrs['looks_filtered'] records the verdict")
