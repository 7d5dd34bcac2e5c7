"""Provenance of geos2vec outputs: which geos2vec, model, mode and level made them.

Every output carries it: tables and GeoDataFrames in ``df.attrs["geos2vec"]`` (a dict; pandas and geopandas
write ``attrs`` into Parquet / GeoParquet metadata, so it travels with the file), DataArrays in flat
``attrs`` (``geos2vec_version``, ``geos2vec_model``, ...; flat so that zarr and netCDF can store them).
What the bundled model makes also names the data it was trained on and their licences (``model_data``).

Examples
--------
>>> p = provenance(stage="features", level=12)
>>> sorted(p)
['geos2vec_version', 'level', 'stage']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import S2VecModel

__all__ = ["provenance", "model_name", "flat_attrs", "record_from_attrs", "DEFAULT_MODEL_DATA"]

#: What the bundled model (``load_model("default")``) was trained on, with the licences and credits
#: (DATA_NOTICE.md, its model card): recorded as ``model_data`` with everything it makes, so that an embedding
#: written to a file still says which data, under which licence, went into it.
DEFAULT_MODEL_DATA = ("OpenStreetMap POIs and roads (ODbL-1.0, credit: (c) OpenStreetMap contributors); "
                      "Who's On First venues (CC0-1.0, credit: Data from Who's On First)")


def model_name(model: S2VecModel | None) -> str | None:
    """A short name of the model an output came from.

    Parameters
    ----------
    model : S2VecModel or None
        A model loaded with :func:`geos2vec.load_model` (its path, or ``"default"`` for the bundled one), or
        one built in this session (``"in-memory"``).

    Returns
    -------
    str or None
        ``None`` for ``None``.
    """
    if model is None:
        return None
    return getattr(model, "source", None) or "in-memory"


def provenance(**fields) -> dict:
    """The provenance record of an output.

    Parameters
    ----------
    **fields
        What made it (``stage``, ``model``, ``mode``, ``level``, ...); ``None`` values are left out.

    Returns
    -------
    dict
        ``geos2vec_version`` and the given fields, and for ``model="default"`` (the bundled model)
        ``model_data``: the data it was trained on and their licences (:data:`DEFAULT_MODEL_DATA`). JSON-safe
        (NumPy scalars become the Python number, bool or str they equal; other values that are not str, int,
        float or bool their ``str``). No timestamp: the same inputs give identical outputs, attrs included.
    """
    from . import __version__

    out = {"geos2vec_version": __version__}
    out.update({k: _json_value(v) for k, v in fields.items() if v is not None})
    if out.get("model") == "default":  # the licences of its training data go with what it makes
        out.setdefault("model_data", DEFAULT_MODEL_DATA)
    return out


def _json_value(value):
    """``value`` as a JSON value: NumPy scalars as the Python number, bool or str they equal, others as ``str``.

    ``level=np.int64(12)`` (a level read from a frame) was recorded as the string ``"12"``.
    """
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def flat_attrs(record: dict) -> dict:
    """A provenance record as flat DataArray attrs: each key prefixed ``geos2vec_`` once.

    Parameters
    ----------
    record : dict
        From :func:`provenance`.

    Returns
    -------
    dict
        ``{"geos2vec_version": ..., "geos2vec_<field>": ...}``.
    """
    return {(k if k.startswith("geos2vec_") else f"geos2vec_{k}"): v for k, v in record.items()}


def record_from_attrs(attrs: dict) -> dict:
    """The provenance record in flat DataArray attrs: the inverse of :func:`flat_attrs`.

    Parameters
    ----------
    attrs : dict
        A DataArray's attrs (other keys are ignored).

    Returns
    -------
    dict
        ``{"geos2vec_version": ..., "<field>": ...}``; empty when the attrs carry no provenance.
    """
    return {(k if k == "geos2vec_version" else k.removeprefix("geos2vec_")): v for k, v in attrs.items()
            if k.startswith("geos2vec_")}
