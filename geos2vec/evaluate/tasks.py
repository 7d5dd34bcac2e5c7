"""Named downstream tasks: label sets in ``../shared/data/labels`` turned into samples, with their feature source.

=======================  ==============================================  ==========================  =========
task                     samples                                         features (coverage)         regions
=======================  ==============================================  ==========================  =========
``ca-housing[:col]``     California housing block groups -> level-12     OSM San José + Los Angeles  the two
                         cells (median), default ``median_house_value``  (the POI boxes)             cities
``ca-tracts:<col>``      California tract internal points -> cells       same                        same
``zcta:<col>``           ZIP areas (ZCTA centroids) -> cells, in the     Who's On First venues of    east/west
                         states the venues cover                         22 states (whole states)    of -100°
``nyc-tracts:<col>``     NYC tract polygons, area-pooled over cells      OSM New York (POI box)      2 halves
``chicago-tracts:<col>`` Chicago tract polygons, area-pooled             OSM Chicago (POI box)       N / S
=======================  ==============================================  ==========================  =========

Only samples where the feature source has data are kept (missing is not empty): point labels inside the
source's coverage, ZCTAs of the covered states, tracts whose area lies mostly inside the coverage.
``housing_unit_density`` and ``total_pop`` are log-transformed (``log1p``); every other target is used as is, except
that a rate of a tract without population (NYC's ``UNEMP_RATE``, written 0 there) is missing, not 0 %.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cells import cell_to_latlng
from ..errors import InvalidInputError, InvalidTypeError
from .baselines import covered_mask
from .labels import join_labels, polygon_pooling

if TYPE_CHECKING:
    from collections.abc import Iterable

    import shapely

    from .._typing import StrPath

__all__ = ["Task", "TASKS", "load_task", "load_features", "list_tasks", "data_dir"]

# the POI boxes of the shared OSM city files (SOURCES.md), where their features are known
CITY_BOXES = {
    "nyc": (-74.257, 40.503, -73.700, 40.916),
    "chicago": (-87.898, 41.720, -87.544, 42.147),
    "san_jose": (-122.080, 37.250, -121.840, 37.428),
    "los_angeles": (-118.536, 34.043, -118.183, 34.221),
}
STATE_FIPS = {
    "ak": 2, "al": 1, "ar": 5, "de": 10, "ia": 19, "id": 16, "ks": 20, "ky": 21, "me": 23, "ms": 28, "mt": 30,
    "nd": 38, "nh": 33, "nm": 35, "nv": 32, "ok": 40, "ri": 44, "sc": 45, "sd": 46, "vt": 50, "wv": 54, "wy": 56,
}
LOG_TARGETS = {"housing_unit_density", "total_pop"}
# rates of a population that the source writes as 0 where the tract has no population (0/0): undefined, not 0 %
POPULATION_RATES = {"nyc_tracts_acs2012.parquet": ("poptot", {"UNEMP_RATE"})}


@dataclass
class Task:
    """A downstream task: the target per sample and how samples map to level-12 cells.

    Attributes
    ----------
    name : str
        e.g. ``"zcta:per_capita_income"``.
    target : pandas.Series
        One label per sample. Point tasks: indexed by uint64 cell id. Polygon tasks: by tract id.
    pooling : DataFrame or None
        Polygon tasks: ``sample, cell_id, weight`` (area weights).
    regions : pandas.Series
        A region label per sample, for ``region`` splits.
    block_level : int
        Level of the parent cells that make the blocks of ``blocked`` splits.
    features : str
        The feature source (:func:`load_features`): ``"osm:<city>,<city>"`` or ``"wof"``.
    description : str
    """

    name: str
    target: pd.Series
    pooling: pd.DataFrame | None
    regions: pd.Series
    block_level: int
    features: str
    description: str = ""

    @property
    def cells(self) -> np.ndarray:
        """Every level-12 cell the samples use (sorted, unique)."""
        if self.pooling is None:
            return np.unique(self.target.index.to_numpy(np.uint64))
        return np.unique(self.pooling["cell_id"].to_numpy(np.uint64))

    def __repr__(self):
        kind = "polygons" if self.pooling is not None else "cells"
        return f"Task({self.name!r}, {len(self.target)} {kind}, features={self.features!r})"


def data_dir(path: StrPath | None = None) -> Path:
    """The shared data folder: ``path``, else ``$GEOS2VEC_DATA``, else ``../shared/data`` from here.

    Parameters
    ----------
    path : str or path-like, optional
        The folder; default ``$GEOS2VEC_DATA``, else ``../shared/data`` relative to the current working
        directory.

    Returns
    -------
    pathlib.Path
        The folder (as given, not resolved).

    Raises
    ------
    FileNotFoundError
        The folder has no ``labels/`` subfolder.
    """
    path = Path(path or os.environ.get("GEOS2VEC_DATA") or Path("..") / "shared" / "data").expanduser()
    if not (path / "labels").is_dir():
        raise FileNotFoundError(
            f"no labels/ folder in the data folder {str(path)!r}; pass data_dir= (CLI: --data-dir) or set "
            "GEOS2VEC_DATA to the folder holding labels/, pois/, roads/ and wof/"
        )
    return path


def _split_name(name: str, default: str | None):
    family, _, column = str(name).partition(":")
    if family not in TASKS:
        raise InvalidInputError(f"unknown task {name!r}; known task families: {sorted(TASKS)} "
                                "(e.g. 'zcta:per_capita_income')")
    column = column or default or TASKS[family][1]
    if not column:
        raise InvalidInputError(f"task {family!r} needs a column: '{family}:<column>'")
    return family, column


def _box_regions(cells, boxes: dict) -> pd.Series:
    out = pd.Series(None, index=pd.Index(cells, name="cell_id"), dtype=object)
    for name, box in boxes.items():
        out[covered_mask(cells, box)] = name
    return out


def _target(frame, column, what):
    if column not in frame.columns:
        raise InvalidInputError(f"{what} has no column {column!r}; columns are {list(frame.columns)}")
    if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
        # before, coerced to NaN: a task of 0 samples, refused only later as "only 0 samples have a target"
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        raise InvalidTypeError(f"{what}: column {column!r} is not numeric (dtype {frame[column].dtype}), so it "
                               f"cannot be a regression target; numeric columns: {numeric}")
    y = frame[column].astype(float)
    return np.log1p(y) if column in LOG_TARGETS else y


def _ca(path, column, d):
    labels = pd.read_csv(d / "labels" / path)
    labels = labels.assign(_y=_target(labels, column, path))
    joined = join_labels(labels, "_y")
    boxes = {c: CITY_BOXES[c] for c in ("san_jose", "los_angeles")}
    regions = _box_regions(joined.index.to_numpy(), boxes)
    joined = joined[regions.notna().to_numpy()]
    return dict(target=joined["_y"], pooling=None, regions=regions.dropna(), block_level=10,
                features="osm:san_jose,los_angeles")


def _load_ca_housing(column, d):
    return _ca("housing.csv", column, d)


def _load_ca_tracts(column, d):
    return _ca("ca_tracts_acs.csv", column, d)


def _load_zcta(column, d, states=None):
    z = pd.read_csv(d / "labels" / "us_zcta_acs2018.csv", dtype={"zcta": str})
    if isinstance(states, str):  # "ks" or "ks,ia" (iterated, it was the letters: "no venues for states ['k', 's']")
        states = states.split(",")
    unordered = isinstance(states, (set, frozenset))  # its order (task.features "wof:ks,ia") followed PYTHONHASHSEED
    states = sorted(STATE_FIPS) if states is None else [str(s).strip().lower() for s in states]
    states = sorted(states) if unordered else states
    if not states:  # said "labels is empty"
        raise InvalidInputError(f"states= is empty; give some of {sorted(STATE_FIPS)} (or None for all of them)")
    unknown = [s for s in states if s not in STATE_FIPS]
    if unknown:
        raise InvalidInputError(f"no Who's On First venues for states {unknown}; known: {sorted(STATE_FIPS)}")
    z = z[z["state_fips"].isin([STATE_FIPS[s] for s in states])]
    z = z.assign(_y=_target(z, column, "us_zcta_acs2018.csv"))
    joined = join_labels(z, "_y")
    _, lng = cell_to_latlng(joined.index.to_numpy())
    regions = pd.Series(np.where(lng < -100.0, "west", "east"), index=joined.index)
    return dict(target=joined["_y"], pooling=None, regions=regions, block_level=6,
                features="wof:" + ",".join(states))


def _load_tracts(file, column, d, city, region_of):
    import geopandas as gpd

    tracts = gpd.read_parquet(d / "labels" / file)
    y = _target(tracts, column, file)
    pop, rates = POPULATION_RATES.get(file, (None, ()))
    if column in rates:  # 40 NYC parks/airports/cemeteries had UNEMP_RATE 0.0 (0/0) and were samples of 0 %
        y = y.where(tracts[pop].to_numpy() > 0)
    tracts = tracts[np.isfinite(y.to_numpy(float))]
    pooling = polygon_pooling(tracts)
    inside = covered_mask(pooling["cell_id"].to_numpy(np.uint64), CITY_BOXES[city])
    share = pd.Series(pooling["weight"].to_numpy() * inside).groupby(pooling["sample"].to_numpy()).sum()
    keep = share.index[share.to_numpy() >= 0.5]
    pooling = pooling[pooling["sample"].isin(keep)].reset_index(drop=True)
    target = y.loc[keep].astype(float)
    target.index.name = "sample"
    regions = region_of(tracts.loc[keep])
    return dict(target=target, pooling=pooling, regions=regions, block_level=10, features=f"osm:{city}")


def _load_nyc(column, d):
    def regions(t):
        north = t["boroname"].isin(["Manhattan", "Bronx"])
        return pd.Series(np.where(north, "manhattan-bronx", "brooklyn-queens-staten"), index=t.index)

    return _load_tracts("nyc_tracts_acs2012.parquet", column, d, "nyc", regions)


def _load_chicago(column, d):
    def regions(t):
        lat = t.geometry.representative_point().y.to_numpy()
        return pd.Series(np.where(lat >= 41.8781, "north", "south"), index=t.index)  # Madison Street

    return _load_tracts("chicago_tracts_sdoh.parquet", column, d, "chicago", regions)


# family -> (loader(column, data_dir), default column, description)
TASKS = {
    "ca-housing": (_load_ca_housing, "median_house_value", "California housing block groups (San José, Los Angeles)"),
    "ca-tracts": (_load_ca_tracts, "med_household_income", "California census tracts (San José, Los Angeles)"),
    "zcta": (_load_zcta, "per_capita_income", "US ZIP code areas (ACS 2018) in 22 Who's On First states"),
    "nyc-tracts": (_load_nyc, "medianinco", "New York City census tract polygons (ACS 2008-12)"),
    "chicago-tracts": (_load_chicago, "EP_PCI", "Chicago census tract polygons (SDOH)"),
}


def list_tasks() -> list[str]:
    """The task families, each usable as ``"<family>:<column>"`` (or alone, with its default column).

    Returns
    -------
    list of str
        The family names of :data:`TASKS`, sorted.
    """
    return sorted(TASKS)


def load_task(name: str, data_dir_: StrPath | None = None, *, states: Iterable[str] | None = None) -> Task:
    """Load a named task from the shared data folder (:func:`data_dir`).

    ``states`` restricts ``zcta`` tasks to some Who's On First states (e.g. ``["ks", "ia"]``).

    Parameters
    ----------
    name : str
        ``"<family>:<column>"``, or a family alone (its default column); see :func:`list_tasks`.
    data_dir_ : str or path-like, optional
        The shared data folder (:func:`data_dir`).
    states : list of str or str, optional
        Two-letter state codes (``zcta`` only; default all of them); a string is split at commas (``"ks,ia"``).
        A set is sorted (``task.features`` names the states in that order).

    Returns
    -------
    Task
        Named ``"<family>:<column>"``; its target Series is named after the column.

    Raises
    ------
    ValueError
        An unknown family, column or state, or an empty ``states``.
    TypeError
        A column that is not numeric (:class:`~geos2vec.errors.InvalidTypeError`).
    FileNotFoundError
        No data folder (:func:`data_dir`).
    """
    family, column = _split_name(name, None)
    d = data_dir(data_dir_)
    loader, _, description = TASKS[family]
    parts = loader(column, d, states) if family == "zcta" else loader(column, d)
    target = parts.pop("target").rename(column)
    return Task(name=f"{family}:{column}", target=target, description=description, **parts)


def load_features(source: str, data_dir_: StrPath | None = None) -> tuple[pd.DataFrame, np.ndarray | shapely.Geometry]:
    """The count table of a task's feature source and where it has data: ``(counts, coverage)``.

    ``"osm:<city>,..."``: :func:`geos2vec.count_features` of the shared OSM POIs and roads of the cities;
    coverage their POI boxes. ``"wof:<state>,..."``: the Who's On First venues of the states
    (:func:`geos2vec.io.read_wof`, no roads: the ``road`` channel is 0 and unknown, see ``docs/data.md``);
    coverage the convex hull of each state's venues without the isolated, mis-geocoded ones
    (:func:`geos2vec.io.venue_coverage`).

    Parameters
    ----------
    source : str
        ``"osm:<city>,..."`` (cities of :data:`CITY_BOXES`) or ``"wof:<state>,..."`` (two-letter codes;
        ``"wof:"`` alone: every state), as in :attr:`Task.features`.
    data_dir_ : str or path-like, optional
        The shared data folder (:func:`data_dir`).

    Returns
    -------
    counts : pandas.DataFrame
        Cell x channel counts (:func:`geos2vec.count_features`), indexed by ``cell_id``.
    coverage : numpy.ndarray or shapely geometry
        ``"osm"``: the ``(n_cities, 4)`` array of POI boxes; ``"wof"``: the union of the states' hulls
        (:func:`geos2vec.io.venue_coverage`).
        Either is a ``coverage`` for :func:`~geos2vec.evaluate.baselines.covered_mask`.

    Raises
    ------
    ValueError
        An unknown source kind.
    FileNotFoundError
        No data folder.
    """
    import geopandas as gpd

    from ..features import count_features

    kind, _, names = str(source).partition(":")
    d = data_dir(data_dir_)
    if kind == "osm":
        tables, boxes = [], []
        for city in names.split(","):
            pois = gpd.read_parquet(d / "pois" / f"{city}.parquet")
            roads = gpd.read_parquet(d / "roads" / f"{city}.parquet")
            tables.append(count_features(pois=pois, roads=roads))
            boxes.append(CITY_BOXES[city])
        counts = pd.concat(tables)
        counts = counts.groupby(level=0).sum()
        counts.index = pd.Index(counts.index.to_numpy(np.uint64), name="cell_id")
        return counts, np.asarray(boxes)
    if kind == "wof":
        from ..io import read_wof, venue_coverage

        states = names.split(",") if names else sorted(STATE_FIPS)
        venues = read_wof(d / "wof", states=states)
        counts = count_features(pois=venues)
        return counts, venue_coverage(venues)  # each state's hull without its mis-geocoded venues
    raise InvalidInputError(f"unknown feature source {source!r}; use 'osm:<city>,...' or 'wof:<state>,...'")
