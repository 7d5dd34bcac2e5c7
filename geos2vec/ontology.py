"""Feature channels: which OpenStreetMap tags count in which histogram channel.

The default ontology (``"default"`` = ``"v1"``, shipped as
``geos2vec/data/ontology_v1.csv``) has 115 POI channels and the ``road``
channel, following the S2Vec paper's 115 POI categories + roads. It is built
from the Geofabrik "layered GIS" standard (11 POI groups: public, education,
health, leisure, catering, accommodation, shopping, money, tourism, miscpoi,
place of worship) plus the amenity values that OSM data actually holds in
numbers (parking, fuel, bicycle parking, ...); rare tags are merged into a
related channel. ``docs/features.md`` documents every choice.

An ontology maps OSM ``key=value`` tags to channels. Data often holds only the
tag *value* (e.g. the ``fclass`` column of Geofabrik shapefiles), so values
are also matched on their own as long as a value maps to a single channel.
"""

from __future__ import annotations

import copy
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import InvalidInputError, InvalidTypeError, check_ordered

from collections.abc import Iterable

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._typing import OntologyLike

__all__ = ["Ontology", "load_ontology", "ROAD_CHANNEL", "DEFAULT_VERSION"]

ROAD_CHANNEL = "road"
DEFAULT_VERSION = "v1"
_VERSIONS = {"v1": "ontology_v1.csv"}


@dataclass(frozen=True, eq=False)
class Ontology:
    """A mapping from OSM tags (or plain category values) to feature channels.

    Build one with :func:`load_ontology`, :meth:`from_mapping` or
    :meth:`from_channels`; most users pass ``ontology="default"`` (or a dict /
    list) to :func:`geos2vec.features.count_features` directly.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per tag: ``channel``, ``group``, ``osm_key`` (``None`` for a
        bare value), ``osm_value`` (``"*"`` = any value of the key).
    channels : list of str
        POI channels in output order (without ``road``).
    road_values : frozenset of str or None
        ``highway=*`` values that count as roads; ``None`` counts every line.
    name : str
    """

    table: pd.DataFrame
    channels: list
    road_values: frozenset | None = None
    name: str = "custom"
    _by_kv: dict = field(default_factory=dict, repr=False)
    _by_key: dict = field(default_factory=dict, repr=False)
    _by_value: dict = field(default_factory=dict, repr=False)
    _ambiguous: dict = field(default_factory=dict, repr=False)
    _keys: set = field(default_factory=set, repr=False)

    def __post_init__(self):
        index = {c: k for k, c in enumerate(self.channels)}
        for row in self.table.itertuples(index=False):
            code = index[row.channel]
            key, value = _nfc(row.osm_key), _nfc(row.osm_value)  # "café" typed NFC matches a value stored NFD
            if key is not None:
                self._keys.add(key)
            if key is not None and value == "*":
                self._by_key[key] = code
                continue
            if key is not None:
                self._by_kv[(key, value)] = code
            prev = self._by_value.get(value)
            if prev is not None and prev != code:
                self._ambiguous.setdefault(value, {self.channels[prev]}).add(row.channel)
            self._by_value.setdefault(value, code)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_mapping(cls, mapping: dict[str, str], name: str = "custom",
                     road_values: str | Iterable[str] | None = None) -> "Ontology":
        """Ontology from ``{tag: channel}``.

        A tag is ``"key=value"``, ``"key=*"`` (any value of the key) or a bare
        value (matched on values alone). Channels are ordered by first
        appearance.

        Parameters
        ----------
        mapping : dict of str to str
            Non-empty ``{tag: channel}``.
        name : str, default "custom"
            Name of the ontology.
        road_values : None, "default", "v1" or iterable of str, default None
            ``highway`` values that count as roads: ``None`` counts every line, ``"default"`` (or a packaged
            version) takes that ontology's road classes (``proposed``, ``construction``, ... dropped and
            reported, as with the default ontology).

        Returns
        -------
        Ontology
            With the given ``road_values`` (default None: every line counts as a road).

        Raises
        ------
        TypeError
            If ``mapping`` is not a non-empty dict of non-empty strings.
        ValueError
            If a tag is malformed (``"=value"``, ``"key="``, blank) or a channel is named ``"road"``, is blank
            or starts or ends with spaces. Spaces around a tag's key and value are dropped.

        Examples
        --------
        >>> onto = Ontology.from_mapping({"amenity=restaurant": "food", "cafe": "food", "shop=*": "shop"})
        >>> onto.channels
        ['food', 'shop']
        """
        if not isinstance(mapping, dict) or not mapping:
            raise InvalidTypeError("an ontology mapping must be a non-empty dict {tag: channel}")
        rows = []
        for tag, channel in mapping.items():
            if not isinstance(tag, str) or not isinstance(channel, str) or not tag or not channel:
                raise InvalidTypeError(f"ontology tags and channels must be non-empty strings, got {tag!r}: "
                                       f"{channel!r}")
            if not channel.strip():
                raise InvalidInputError(f"the channel of tag {tag!r} is blank ({channel!r}); name the channel")
            if channel != channel.strip():
                raise InvalidInputError(f"channel name {channel!r} (of tag {tag!r}) starts or ends with spaces; "
                                        f"write {channel.strip()!r}")
            key, value = _split_tag(tag)
            rows.append((channel, "custom", key, value))
        return cls._from_rows(rows, name=name, road_values=_road_values(road_values))

    @classmethod
    def from_channels(cls, channels: Iterable[str], name: str = "custom",
                      road_values: str | Iterable[str] | None = None) -> "Ontology":
        """Ontology for a categorical column whose values are the channels themselves.

        Parameters
        ----------
        channels : iterable of str
            Distinct, non-empty channel names; each is matched as a bare value, or, when written as a tag
            (``"amenity=cafe"``), as that tag (and its bare value).
        name : str, default "custom"
            Name of the ontology.
        road_values : None, "default", "v1" or iterable of str, default None
            As in :meth:`from_mapping`: ``None`` counts every line as a road, ``"default"`` only the default
            ontology's road classes.

        Returns
        -------
        Ontology
            Channels in the given order, with the given ``road_values``.

        Raises
        ------
        TypeError
            If ``channels`` is a single string (not split into letters), a set (its order changes from one
            process to the next), not iterable, empty, or holds something other than non-empty strings.
        ValueError
            If a channel is repeated, named ``"road"``, or a malformed tag (``"amenity="``).
        """
        if isinstance(channels, str) or not isinstance(channels, Iterable):  # a string would be split into letters
            raise InvalidTypeError(f"channels must be a list of channel names, got {type(channels).__name__} "
                                   f"{channels!r:.60}; for one channel pass [name]")
        check_ordered(channels, "channels")  # a set's order (the table's columns) changed with PYTHONHASHSEED
        channels = list(channels)
        if not channels or not all(isinstance(c, str) and c for c in channels):
            raise InvalidTypeError("channels must be a non-empty list of non-empty strings")
        dup = sorted({c for c in channels if channels.count(c) > 1})
        if dup:
            raise InvalidInputError(f"duplicate channels: {dup}")
        # a channel named like a tag ("amenity=cafe") matches that tag: values with "=" are looked up as key=value
        return cls._from_rows([(c, "custom", *_split_tag(c)) if "=" in c else (c, "custom", None, c)
                               for c in channels], name=name, road_values=_road_values(road_values))

    @classmethod
    def _from_rows(cls, rows, name, road_values=None):
        if not isinstance(name, str) or not name.strip():
            raise InvalidTypeError(f"an ontology's name must be a non-empty string, got {name!r}")
        table = pd.DataFrame(rows, columns=["channel", "group", "osm_key", "osm_value"], dtype=object)
        channels = list(dict.fromkeys(table["channel"]))
        _check_canonical(channels)
        if ROAD_CHANNEL in channels:
            raise InvalidInputError(
                f"{ROAD_CHANNEL!r} is reserved for the road count; name the POI channel differently"
            )
        return cls(table=table, channels=channels, road_values=road_values, name=name)

    # ------------------------------------------------------------------ lookup
    @property
    def all_channels(self) -> list[str]:
        """POI channels then ``road``: the default columns of a feature table."""
        return list(self.channels) + [ROAD_CHANNEL]

    @property
    def groups(self) -> pd.Series:
        """Group of each POI channel (e.g. ``catering``), indexed by channel."""
        first = self.table.drop_duplicates("channel").set_index("channel")["group"]
        return first.reindex(self.channels)

    def lookup(self, values: ArrayLike, keys: ArrayLike | None = None) -> np.ndarray:
        """Channel number of each tag, ``-1`` where no channel matches.

        Parameters
        ----------
        values : array_like of str
            Tag values (``"restaurant"``) or full tags (``"amenity=restaurant"``), matched after stripping
            surrounding spaces (as ``count_features`` does), case kept (OSM tags are case-sensitive), in
            Unicode normal form C (a decomposed ``"café"``, as macOS file names hold it, is the composed one).
            Missing values (None/NaN) give ``-1``.
        keys : array_like of str, optional
            The OSM key of each value. With a key, ``key=value`` then ``key=*``
            are tried; without one, the value alone.

        Returns
        -------
        numpy.ndarray of int64, shape (n,)
            Position of each tag's channel in :attr:`channels` (input flattened).

        Raises
        ------
        ValueError
            If a bare value maps to several channels (give its key), or ``keys``
            and ``values`` differ in length.
        """
        values = np.asarray(values, dtype=object).ravel()
        keys = None if keys is None else np.asarray(keys, dtype=object).ravel()
        if keys is not None and keys.shape != values.shape:
            raise InvalidInputError(f"keys and values differ in length: {keys.size} vs {values.size}")
        out = np.full(values.size, -1, dtype=np.int64)
        for n, v in enumerate(values):
            if not isinstance(v, str):
                continue
            v = _nfc(v.strip())  # " restaurant" was -1 while "amenity= restaurant" matched
            k = keys[n] if keys is not None else None
            k = _nfc(k.strip()) if isinstance(k, str) else None
            if k is None and "=" in v:
                k, v = _split_tag(v)
            if k is not None:
                code = self._by_kv.get((k, v), self._by_key.get(k, -1))
                if code < 0 and k not in self._keys and v in self._by_value and v not in self._ambiguous:
                    code = self._by_value[v]  # a key the ontology does not use: match the value
                out[n] = code
                continue
            if v in self._ambiguous:
                raise InvalidInputError(
                    f"category value {v!r} maps to several channels {sorted(self._ambiguous[v])}; "
                    "give its key (a key column, or 'key=value' strings)"
                )
            out[n] = self._by_value.get(v, -1)
        return out

    def to_frame(self) -> pd.DataFrame:
        """The tag table (a copy).

        Returns
        -------
        pandas.DataFrame
            A copy of :attr:`table`: one row per tag, with columns ``channel``, ``group``, ``osm_key``
            and ``osm_value`` (the packaged ontologies also hold a ``source`` column and the road classes,
            as rows of channel ``road``).
        """
        return self.table.copy()

    def __repr__(self):
        roads = "all lines" if self.road_values is None else f"{len(self.road_values)} highway values"
        return f"Ontology({self.name!r}, {len(self.channels)} POI channels + {ROAD_CHANNEL!r}, roads: {roads})"


def _road_values(road_values) -> frozenset | None:
    """``road_values`` of a custom ontology: None (every line), a packaged version's road classes, or the given."""
    if road_values is None:
        return None
    if isinstance(road_values, str):
        if road_values != "default" and road_values not in _VERSIONS:
            raise InvalidInputError(f"road_values={road_values!r}: pass None (every line is a road), 'default' (or "
                                    f"one of {list(_VERSIONS)}) for that ontology's road classes, or a list of "
                                    "highway values")
        return load_ontology(road_values).road_values
    if not isinstance(road_values, Iterable):
        raise InvalidTypeError(f"road_values must be None, 'default' or a list of highway values, got "
                               f"{type(road_values).__name__}")
    values = list(road_values)
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise InvalidTypeError(f"road_values must be a non-empty list of highway values (strings), got {values!r:.80}")
    return frozenset(v.strip() for v in values)


def _nfc(text):
    """``text`` in Unicode normal form C (composed ``é``); anything else as it is."""
    return unicodedata.normalize("NFC", text) if isinstance(text, str) else text


def _category_values(values: pd.Series) -> pd.Series:
    """``values`` as category values: strings without surrounding spaces, in Unicode normal form C, blanks missing.

    A decomposed ``café`` and a composed one, or ``"café "`` and ``"café"``, are one value (they gave channels
    that printed alike), and ``""`` / ``" "`` are missing (they gave channels ``col=`` and ``col= ``), as
    category values of the ontology are. Only the distinct values are looked at; ``values`` itself is
    returned when none changes.
    """
    codes, uniq = pd.factorize(values, use_na_sentinel=True)
    norm = [(_nfc(u.strip()) or None) if isinstance(u, str) else u for u in uniq]
    if all(a is b or a == b for a, b in zip(norm, uniq)):
        return values
    out = np.asarray(norm + [None], dtype=object)[codes]  # code -1 (missing) -> None
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


def _check_canonical(channels: list) -> None:
    """Refuse channels that are one name in two Unicode forms (they print alike, and match the same values)."""
    seen: dict = {}
    for c in channels:
        other = seen.setdefault(_nfc(c), c)
        if other != c:
            raise InvalidInputError(
                f"channels {other!r} ({ascii(other)}) and {c!r} ({ascii(c)}) are the same name in two Unicode "
                "normal forms (composed and decomposed accents); they match the same category values: name the "
                "channel once (e.g. unicodedata.normalize('NFC', name))")


def _split_tag(tag: str):
    if "=" in tag:
        key, value = tag.split("=", 1)
        key, value = key.strip(), value.strip()
        if not key or not value:
            raise InvalidInputError(f"malformed tag {tag!r}; use 'key=value', 'key=*' or a bare value")
        return key, value
    if not tag.strip():  # spaces around a bare value are dropped, as around a key and value
        raise InvalidInputError(f"malformed tag {tag!r} (blank); use 'key=value', 'key=*' or a bare value")
    return None, tag.strip()


def load_ontology(name: OntologyLike = "default") -> Ontology:
    """The packaged ontology ``name`` (``"default"`` is the newest, ``"v1"``), or pass-through.

    Parameters
    ----------
    name : str, Ontology, dict or list
        A packaged version name, an :class:`Ontology`, a ``{tag: channel}``
        mapping (:meth:`Ontology.from_mapping`) or a list of channels whose
        names are the category values (:meth:`Ontology.from_channels`).

    Returns
    -------
    Ontology
        The packaged ontology (read once, then cached: each call returns its own copy, so editing its
        ``channels`` or ``table`` changes no later call), ``name`` itself if it is an Ontology, or one
        built from the mapping or list.

    Raises
    ------
    ValueError
        If ``name`` is not a packaged version.
    TypeError
        If ``name`` is of another type.

    Examples
    --------
    >>> onto = load_ontology()
    >>> len(onto.channels), onto.all_channels[-1]
    (115, 'road')
    >>> onto.channels[int(onto.lookup(["restaurant"])[0])]
    'restaurant'
    """
    if isinstance(name, Ontology):
        return name
    if isinstance(name, dict):
        return Ontology.from_mapping(name)
    if isinstance(name, (list, tuple, pd.Index, np.ndarray)):
        return Ontology.from_channels(name)
    if hasattr(name, "__fspath__"):  # a pathlib.Path as its str: "unknown", with how to read a file (a TypeError)
        name = str(name.__fspath__())
    if not isinstance(name, str):
        raise InvalidTypeError(f"ontology must be a name, Ontology, dict or list, got {type(name).__name__}")
    version = DEFAULT_VERSION if name == "default" else name
    if version not in _VERSIONS:
        raise InvalidInputError(  # a CSV's path was "unknown", with no word of how to give one's own categories
            f"unknown ontology {name!r}; packaged versions: {['default', *_VERSIONS]}; your own is a dict "
            "{tag: channel} (e.g. {'amenity=cafe': 'food', 'shop=*': 'shops'}) or a list of channels named as the "
            "category values" + ("; for a file: dict(zip(df['tag'], df['channel'])) of the table read with pandas"
                                 if name.lower().endswith((".csv", ".tsv", ".json", ".parquet")) else ""))
    # a copy of the cached one: load_ontology().channels.sort() reordered the cache's channels, so every later
    # count_features labelled its counts with other channels' names
    cached = _load_packaged(version)
    out = copy.copy(cached)
    object.__setattr__(out, "channels", list(cached.channels))
    object.__setattr__(out, "table", cached.table.copy())
    return out


_CACHE: dict = {}


def _load_packaged(version: str) -> Ontology:
    if version not in _CACHE:
        path = resources.files("geos2vec") / "data" / _VERSIONS[version]
        with resources.as_file(path) as p:
            table = pd.read_csv(p, comment="#", dtype=str, keep_default_na=False)
        roads = table["channel"] == ROAD_CHANNEL
        road_values = frozenset(table.loc[roads, "osm_value"])
        pois = table.loc[~roads, ["channel", "group", "osm_key", "osm_value"]].astype(object)
        onto = Ontology._from_rows(list(pois.itertuples(index=False, name=None)), name=version,
                                   road_values=road_values)
        object.__setattr__(onto, "table", table.astype(object))
        _CACHE[version] = onto
    return _CACHE[version]
