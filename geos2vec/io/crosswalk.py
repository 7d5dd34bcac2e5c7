"""The SimpleGeo -> ontology crosswalk of Who's On First venues (:func:`load_crosswalk`).

The packaged crosswalk ``geos2vec/data/crosswalk_simplegeo_v1.csv`` maps each SimpleGeo (category,
subcategory) to the OSM tag it corresponds to and to that tag's channel of ontology v1, with the venue counts
that justified each row; classes without a channel are left unmapped (reported by
:func:`geos2vec.io.read_wof`, never forced into a channel).
"""

from __future__ import annotations

import os
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._textfile import read_csv_utf8
from ..errors import InvalidInputError, InvalidTypeError
from ..ontology import ROAD_CHANNEL, load_ontology

if TYPE_CHECKING:
    from .._typing import OntologyLike, StrPath

__all__ = ["load_crosswalk", "CROSSWALK_COLUMNS"]

#: Columns a crosswalk must have (``osm_tag``, ``sg_type``, ``n_venues``, ``note`` are optional).
CROSSWALK_COLUMNS = ("sg_category", "sg_subcategory", "channel")
_CROSSWALKS = {"default": "crosswalk_simplegeo_v1.csv", "v1": "crosswalk_simplegeo_v1.csv"}


# --------------------------------------------------------------------------- crosswalk
def _blank_to_empty(values) -> pd.Series:
    """Strings with missing values, blanks and the literal "None" as "" (factorized: fast on 10^6 rows)."""
    codes, uniq = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    clean = np.array([v.strip() if isinstance(v, str) else str(v) for v in uniq] + [""], dtype=object)
    clean[clean == "None"] = ""  # the venue files spell some missing subcategories "None"
    return pd.Series(clean[codes], dtype=object)  # code -1 (missing) -> the appended ""


def load_crosswalk(crosswalk: StrPath | pd.DataFrame = "default", ontology: OntologyLike = "default") -> pd.DataFrame:
    """The SimpleGeo -> ontology crosswalk, checked against the ontology.

    Parameters
    ----------
    crosswalk : "default", "v1", path or DataFrame
        The packaged crosswalk, a CSV file (``#`` comment lines allowed) or a
        table with columns ``sg_category``, ``sg_subcategory`` (empty = the
        category's default row) and ``channel`` (empty = no channel). Optional
        ``osm_tag`` (``key=value``): the OSM tag the class corresponds to; it
        must map to ``channel`` in the ontology. Where it is empty, the
        channel's first tag in the ontology is used.
    ontology : default "default"
        The ontology whose channels the crosswalk names.

    Returns
    -------
    pandas.DataFrame
        One row per (sg_category, sg_subcategory) with the input columns plus
        ``osm_key`` and ``osm_value`` (empty where ``channel`` is empty).

    Raises
    ------
    FileNotFoundError, TypeError, ValueError
        Missing file; wrong type (:class:`geos2vec.errors.InvalidTypeError`); a file that is not UTF-8 text (a
        UTF-8 byte-order mark is fine), missing columns, duplicate rows,
        channels that the ontology lacks, or an ``osm_tag`` that maps elsewhere
        (:class:`geos2vec.errors.InvalidInputError`).
    """
    onto = load_ontology(ontology)
    if isinstance(crosswalk, str) and crosswalk in _CROSSWALKS:
        name = crosswalk
        with resources.as_file(resources.files("geos2vec") / "data" / _CROSSWALKS[crosswalk]) as p:
            table = pd.read_csv(p, comment="#", dtype=str, keep_default_na=False)
    elif isinstance(crosswalk, (str, os.PathLike)):
        name = os.fspath(crosswalk)
        if not os.path.isfile(name):
            raise FileNotFoundError(
                f"no crosswalk file at {name!r}; pass 'default' for the packaged SimpleGeo crosswalk, a CSV path or "
                f"a DataFrame with columns {list(CROSSWALK_COLUMNS)}")
        table = read_csv_utf8(name, "crosswalk", comment="#", dtype=str, keep_default_na=False)
    elif isinstance(crosswalk, pd.DataFrame):
        name = "custom"
        table = crosswalk.copy()
    else:
        raise InvalidTypeError(
            f"crosswalk must be 'default', a CSV path or a DataFrame, got {type(crosswalk).__name__}")
    missing = [c for c in CROSSWALK_COLUMNS if c not in table.columns]
    if missing:
        raise InvalidInputError(
            f"crosswalk {name!r} lacks column(s) {missing}; expected {list(CROSSWALK_COLUMNS)} (optional: osm_tag, "
            f"sg_type, n_venues, note), got {list(table.columns)}")
    table = table.reset_index(drop=True)
    for col in ("sg_category", "sg_subcategory", "channel", "osm_tag"):
        if col in table.columns:
            table[col] = _blank_to_empty(table[col]).to_numpy()
    if "osm_tag" not in table.columns:
        table["osm_tag"] = ""
    no_cat = table["sg_category"] == ""
    if no_cat.any():
        raise InvalidInputError(
            f"crosswalk {name!r} has rows without sg_category at rows {np.flatnonzero(no_cat)[:10].tolist()}")
    dup = table.duplicated(["sg_category", "sg_subcategory"], keep=False)
    if dup.any():
        pairs = sorted(set(zip(table.loc[dup, "sg_category"], table.loc[dup, "sg_subcategory"])))
        raise InvalidInputError(f"crosswalk {name!r} has duplicate (sg_category, sg_subcategory) rows: {pairs[:10]}")
    mapped = table["channel"] != ""
    unknown = sorted(set(table.loc[mapped, "channel"]) - set(onto.channels))
    if unknown:
        hint = f" ({ROAD_CHANNEL!r} counts roads, not POIs)" if ROAD_CHANNEL in unknown else ""
        raise InvalidInputError(
            f"crosswalk {name!r} names channel(s) {unknown} that ontology {onto.name!r} does not have"
            f"{hint}; use one of its POI channels or leave channel empty")
    first_tag = {}
    for row in onto.table.itertuples(index=False):
        if row.channel != ROAD_CHANNEL and isinstance(row.osm_key, str) and row.osm_value != "*":
            first_tag.setdefault(row.channel, (row.osm_key, row.osm_value))
    keys, values = [], []
    for tag, channel in zip(table["osm_tag"], table["channel"]):
        if not channel:
            keys.append("")
            values.append("")
            continue
        if tag:
            if "=" not in tag:
                raise InvalidInputError(f"crosswalk {name!r}: osm_tag {tag!r} is not 'key=value'")
            k, v = (part.strip() for part in tag.split("=", 1))
        elif channel in first_tag:
            k, v = first_tag[channel]
        else:
            raise InvalidInputError(f"crosswalk {name!r}: channel {channel!r} has no key=value tag in the ontology; "
                                    "give osm_tag")
        got = onto.lookup([v], keys=[k])[0]
        if got < 0 or onto.channels[got] != channel:
            where = "no channel" if got < 0 else f"channel {onto.channels[got]!r}"
            raise InvalidInputError(f"crosswalk {name!r}: osm_tag {k}={v} maps to {where} in ontology {onto.name!r}, "
                                    f"not to {channel!r}")
        keys.append(k)
        values.append(v)
    table["osm_key"] = keys
    table["osm_value"] = values
    table.attrs["name"] = name
    return table
