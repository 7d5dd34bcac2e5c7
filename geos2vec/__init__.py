"""geos2vec: S2Vec embeddings of the built environment for GeoPandas.

``import geos2vec`` registers the ``.s2vec`` accessor on GeoDataFrames and
GeoSeries. Each stage of the pipeline is a public module:

* :mod:`geos2vec.cells` - S2 cell ids (numba, bit-exact with S2),
* :mod:`geos2vec.features` - per-cell POI/road histograms (:mod:`geos2vec.ontology`, :mod:`geos2vec.io`),
* :mod:`geos2vec.normalize` - feature-wise normalization statistics.
* :mod:`geos2vec.raster` - cell features as xarray images (and back).
* :mod:`geos2vec.model` - the S2Vec masked autoencoder (Keras 3; imported lazily),
* :mod:`geos2vec.embedding` - embeddings joined back onto user rows (``gdf.s2vec.embed``).
* :mod:`geos2vec.partitioned` - dask(-geopandas) frames through the same functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import accessor as _accessor  # noqa: F401  (registers .s2vec)
from .accessor import register_dask_accessor
from . import cells
from .cells import (
    cell_polygons,
    cell_to_boundary,
    cell_to_children,
    cell_to_latlng,
    cell_to_parent,
    cell_to_rowcol,
    cell_to_token,
    get_level,
    grid_disk,
    is_valid_cell,
    latlng_to_cell,
    rowcol_to_cell,
    token_to_cell,
)
from .normalize import FeatureStats
from . import features, ontology
from .features import count_features
from .ontology import Ontology, load_ontology
from . import raster
from .raster import rasterize, to_frame
from .embedding import cell_embeddings, embed, embed_cells
from . import coverage, errors
from .options import get_options, set_options
from . import _fork as _fork  # noqa: F401  (notes a fork after TensorFlow ran: embed then avoids it)
from ._versions import show_versions
from . import demo  # geos2vec.demo.load_sample() (the bundled sample); cheap: numpy only at import

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._typing import StrPath
    from .model import S2VecModel

__all__ = [
    "cells", "features", "ontology", "raster", "coverage", "errors", "demo",
    "cell_polygons", "cell_to_boundary", "cell_to_children", "cell_to_latlng", "cell_to_parent",
    "cell_to_rowcol", "cell_to_token", "get_level", "grid_disk", "is_valid_cell", "latlng_to_cell",
    "rowcol_to_cell", "token_to_cell",
    "FeatureStats", "count_features", "Ontology", "load_ontology", "rasterize", "to_frame",
    "cell_embeddings", "embed", "embed_cells", "load_model", "register_dask_accessor",
    "get_options", "set_options", "show_versions", "__version__",
]


def load_model(path: StrPath = "default", channels: Sequence[str] | None = None) -> S2VecModel:
    """Load an S2Vec model: ``"default"`` (the bundled one), a directory or a ``.zip``.

    The bundled model loads without TensorFlow; see :func:`geos2vec.model.load_model`.

    Parameters
    ----------
    path : str or path-like, default "default"
        ``"default"``, a model directory or a ``.zip``.
    channels : list of str, optional
        The channels the data will have; a mismatch raises ``ValueError`` naming the differences.

    Returns
    -------
    geos2vec.model.S2VecModel
    """
    from .model import load_model as _load

    return _load(path, channels=channels)


#: sub-packages imported at their first use as an attribute (``geos2vec.model.S2VecModel`` after a plain
#: ``import geos2vec``), so that ``import geos2vec`` stays cheap
_LAZY_SUBMODULES = ("evaluate", "fusion", "io", "location", "model", "partitioned", "provenance")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))


__version__ = "0.3.0.dev0"
