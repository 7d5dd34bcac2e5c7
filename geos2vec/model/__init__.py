"""The S2Vec masked autoencoder (Keras 3, TensorFlow backend).

``import geos2vec.model`` is cheap: TensorFlow is imported only when a model
is built, trained, embedded, saved or loaded.

* :class:`S2VecConfig` - hyper-parameters (paper's Table 1 defaults),
* :class:`S2VecModel` - ``build``, ``fit(data, strategy=...)``, ``embed(da, mode=...)``, ``save``, ``load``,
* :func:`load_model` - load a saved model (directory or ``.zip``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import S2VecConfig
from .s2vec import S2VecModel

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    import xarray as xr

    from .._typing import StrPath

__all__ = ["S2VecConfig", "S2VecModel", "load_model", "embeddings_to_frame"]


def load_model(path: StrPath = "default", channels: Sequence[str] | None = None) -> S2VecModel:
    """Load a model saved by :meth:`S2VecModel.save`, or ``"default"`` (the bundled model).

    Parameters
    ----------
    path : str or path-like, default "default"
        A model directory, a ``.zip``, or ``"default"`` (as :func:`geos2vec.load_model`: ``load_model()`` raised
        "missing 1 required positional argument" here).
    channels : list of str, optional
        The channels the data will have; a mismatch raises ``ValueError`` naming the differences.

    Returns
    -------
    S2VecModel
    """
    return S2VecModel.load(path, channels=channels)


def embeddings_to_frame(emb: xr.DataArray) -> pd.DataFrame:
    """A ``(cell, dim)`` embedding DataArray as a ``cell_id``-indexed DataFrame ``s2vec_0 ...``.

    Parameters
    ----------
    emb : xarray.DataArray
        Embeddings with dims ``("cell", "dim")`` (in any order) and a ``cell`` coordinate of cell ids, as
        :meth:`S2VecModel.embed` returns them.

    Returns
    -------
    pandas.DataFrame
        One row per cell, index ``cell_id`` (uint64), columns ``s2vec_0 ... s2vec_<dim-1>``; see
        :func:`geos2vec.model.embed.embeddings_to_frame`.
    """
    from .embed import embeddings_to_frame as _f

    return _f(emb)
