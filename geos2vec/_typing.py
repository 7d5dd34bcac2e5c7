"""Type aliases of the public API's annotations.

Imported only under ``typing.TYPE_CHECKING`` (and by ``tests/test_typing.py``, which resolves the
annotations), so ``import geos2vec`` never imports this module.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .model import S2VecModel
from .ontology import Ontology

try:  # zarr 3
    from zarr.abc.store import Store as _ZarrStore
except ImportError:  # zarr 2 (its stores are MutableMappings) or no zarr
    _ZarrStore = MutableMapping

#: A file system path.
StrPath = str | os.PathLike[str]

#: What ``ontology=`` takes (:func:`geos2vec.ontology.load_ontology`): a packaged version name, an
#: :class:`~geos2vec.ontology.Ontology`, a ``{tag: channel}`` dict or a list of channels.
OntologyLike = str | Ontology | dict[str, str] | list[str] | tuple[str, ...] | pd.Index | np.ndarray

#: What ``coverage=`` takes (:func:`geos2vec.coverage.as_coverage`): a polygonal shapely geometry, a
#: GeoSeries/GeoDataFrame, a ``(min_lon, min_lat, max_lon, max_lat)`` box, WKT or an ``.osm.pbf`` path.
CoverageLike = shapely.Geometry | gpd.GeoSeries | gpd.GeoDataFrame | Sequence[float] | np.ndarray | StrPath

#: An area (:func:`geos2vec.io.download_osm`): a GeoDataFrame/GeoSeries, a shapely geometry or a
#: ``(min_lon, min_lat, max_lon, max_lat)`` box.
AreaLike = gpd.GeoDataFrame | gpd.GeoSeries | shapely.Geometry | Sequence[float] | np.ndarray

#: A zarr store (:func:`geos2vec.raster.to_zarr`): a path, a ``MutableMapping`` (zarr 2 stores, fsspec maps) or a
#: zarr 3 ``Store``.
ZarrStoreLike = StrPath | MutableMapping[str, Any] | _ZarrStore

#: What ``model=`` takes: ``"default"`` (the bundled model), the path of a saved model, or a loaded model.
ModelLike = str | os.PathLike[str] | S2VecModel

#: ``(train, val, test)`` integer index arrays, one tuple per repetition (:mod:`geos2vec.evaluate.splits`).
Splits = list[tuple[np.ndarray, np.ndarray, np.ndarray]]
