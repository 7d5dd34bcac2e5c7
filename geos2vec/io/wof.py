"""Who's On First venues: SimpleGeo-classified US venues as POIs for :func:`geos2vec.count_features`.

The venue files (``us-<state>.parquet``, one row per venue with ``wof_id``,
``name``, ``lon``, ``lat``, ``sg_type``, ``sg_category``, ``sg_subcategory``,
``is_current``) carry SimpleGeo categories, not OSM tags. The packaged
crosswalk ``geos2vec/data/crosswalk_simplegeo_v1.csv`` maps each
(category, subcategory) to the OSM tag it corresponds to and to that tag's
channel of ontology v1; classes without a channel (offices, trades, wholesale,
manufacturing, ...) are dropped and reported, never forced into a channel.
``docs/data.md`` documents the choices. Data from Who's On First (CC0).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._stacklevel import warn
from ..errors import Geos2VecWarning, InvalidInputError, InvalidTypeError
from .crosswalk import CROSSWALK_COLUMNS, load_crosswalk

if TYPE_CHECKING:
    from collections.abc import Iterable

    import geopandas as gpd

    from .._typing import StrPath

__all__ = ["read_wof", "load_crosswalk", "REQUIRED_COLUMNS", "CROSSWALK_COLUMNS"]

#: Columns every venue file must have.
REQUIRED_COLUMNS = ("wof_id", "lon", "lat", "sg_category", "sg_subcategory")
#: Read when present (``name`` -> "" , ``sg_type`` -> missing, ``is_current`` -> unknown otherwise).
OPTIONAL_COLUMNS = ("name", "sg_type", "is_current")
#: Columns by which a frame is recognised as :func:`read_wof` output when its ``attrs`` were lost.
_VENUE_COLUMNS = ("wof_id", "sg_category")
_FILE_RE = re.compile(r"^us-([a-z]{2})\.parquet$", re.IGNORECASE)
_TOP = 20
_SEP = " / "


# --------------------------------------------------------------------------- files
def _state_of(path: Path) -> str:
    m = _FILE_RE.match(path.name)
    return m.group(1).lower() if m else path.stem


def _find_files(path_or_dir, states):
    if isinstance(path_or_dir, (str, os.PathLike)):
        items = [path_or_dir]
    elif isinstance(path_or_dir, (list, tuple)):
        items = list(path_or_dir)
        if not items:
            raise InvalidInputError(
                "read_wof got an empty list of files; pass us-<state>.parquet files or their directory")
    else:
        raise InvalidTypeError(
            f"path_or_dir must be a path, a list of paths or a directory, got {type(path_or_dir).__name__}")
    files = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise InvalidTypeError(f"read_wof paths must be str or path-like, got {type(item).__name__} ({item!r})")
        p = Path(item).expanduser()  # "~/wof" is the home folder's
        if p.is_dir():
            found = sorted(q for q in p.glob("*.parquet") if q.is_file())
            if not found:
                raise InvalidInputError(f"no .parquet files in directory {os.fspath(p)!r}; expected Who's On First "
                                        "venue files named us-<state>.parquet (e.g. us-ri.parquet)")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no Who's On First venue file or directory at {os.fspath(p)!r}")
    # one file named twice (a relative and an absolute path, a link, a directory and a file in it) is read once:
    # read twice, every venue counted twice (and stacks of min_stack/2 dropped)
    unique: dict = {}
    for f in files:
        unique.setdefault(os.path.normcase(os.path.realpath(f)), f)
    files = list(unique.values())
    if states is not None:
        if isinstance(states, str):
            states = [states]
        try:
            wanted = [str(s).strip().lower().removeprefix("us-") for s in states]
        except TypeError:
            raise InvalidTypeError(f"states must be a state code or a list of them (e.g. ['ks', 'ia']), got "
                                   f"{states!r}") from None
        if not wanted:  # an empty selection read nothing and returned an empty frame, silently
            raise InvalidInputError("states is empty: it selects no venue file; pass state codes (e.g. ['ks', 'ia']) "
                                    "or states=None for every file")
        available = {_state_of(f): f for f in files}
        absent = [s for s in wanted if s not in available]
        if absent and any(len(s) != 2 or not s.isalpha() for s in absent):  # "California": no file, as if missing
            raise InvalidInputError(f"states takes two-letter state codes (e.g. 'ks' for Kansas, 'us-ks' also "
                                    f"works), got {absent}; available: {sorted(available)}")
        if absent:
            raise FileNotFoundError(f"no venue file for state(s) {absent}; available: {sorted(available)}")
        files = [f for f in files if _state_of(f) in set(wanted)]
    return files


_NUMERIC = {"wof_id": "int64", "lon": "float64", "lat": "float64", "is_current": "float64"}
_STRINGS = ("name", "sg_type", "sg_category", "sg_subcategory")


def _read_one(path: Path):
    """One venue file: ({column: pyarrow ChunkedArray}, number of rows).

    Numeric columns are cast, ``name`` becomes large_string, the SimpleGeo columns stay as stored (usually
    dictionaries); absent optional columns are all-null.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for non-Parquet files
        raise InvalidInputError(f"could not read {os.fspath(path)!r} as Parquet ({exc}); expected a Who's On First "
                                "venue file us-<state>.parquet") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise InvalidInputError(
            f"{os.fspath(path)!r} lacks column(s) {missing}; a Who's On First venue file needs "
            f"{list(REQUIRED_COLUMNS)} "
            f"(wof_id int, lon/lat WGS84 degrees, SimpleGeo sg_category/sg_subcategory strings), optionally "
            f"{list(OPTIONAL_COLUMNS)}; it has {names}")
    cols = [c for c in (*_NUMERIC, *_STRINGS) if c in names]
    table = pq.read_table(path, columns=cols)
    arrays = {}
    for col in (*_NUMERIC, *_STRINGS):
        typ = pa.large_string() if col in _STRINGS else getattr(pa, _NUMERIC[col])()
        if col not in cols:
            arrays[col] = pa.chunked_array([pa.nulls(table.num_rows, typ)])
            continue
        arr = table.column(col)
        if col == "name" or (col in _STRINGS and not pa.types.is_dictionary(arr.type)) or col in _NUMERIC:
            try:
                arr = arr.cast(typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise InvalidInputError(f"{os.fspath(path)!r}: column {col!r} of type {arr.type} cannot be read as "
                                        f"{typ} ({exc})") from exc
            if col == "wof_id" and arr.null_count:  # a missing id read as 0 (Null Island's id), silently
                raise InvalidInputError(f"{os.fspath(path)!r}: column 'wof_id' has {arr.null_count:,} missing "
                                        "value(s); every Who's On First venue needs its id: drop or fill those rows")
        arrays[col] = arr
    return arrays, table.num_rows


def _clean(value) -> str:
    value = value.strip() if isinstance(value, str) else ("" if value is None else str(value))
    return "" if value == "None" else value  # the venue files spell some missing subcategories "None"


def _codes(columns):
    """Integer codes of cleaned strings ("" for missing/blank/"None") over the chunks of several columns.

    Works on the Arrow dictionaries (a few hundred values), never on a Python object per row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    lookup: dict = {}
    out = []
    for col in columns:
        for chunk in col.chunks:
            if not pa.types.is_dictionary(chunk.type):
                chunk = pc.dictionary_encode(chunk)
            idx = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            values = [_clean(v) for v in chunk.dictionary.to_pylist()] + [""]  # index -1 -> ""
            codes = np.array([lookup.setdefault(v, len(lookup)) for v in values], dtype=np.int64)
            out.append(codes[idx])
    lookup.setdefault("", len(lookup))
    uniq = np.empty(len(lookup), dtype=object)
    for v, c in lookup.items():
        uniq[c] = v
    return (np.concatenate(out) if out else np.empty(0, dtype=np.int64)), uniq


def _strings(codes, uniques):
    """A pandas string Series from codes into ``uniques`` ("" -> missing), decoded in Arrow."""
    import pyarrow as pa

    values = pa.array([None if u == "" else u for u in uniques], type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int64()), values).cast(pa.string()).to_pandas()


def _distinct(codes, space):
    """Sorted distinct values of non-negative int codes below ``space`` and their counts (dense when small)."""
    if space <= 1 << 22:
        counts = np.bincount(codes, minlength=space)
        values = np.flatnonzero(counts)
        return values, counts[values]
    return np.unique(codes, return_counts=True)


def _stack_sizes(lon, lat, idx, min_stack):
    """Exact-coordinate groups among venues ``idx`` (valid coordinates) that may form stacks.

    A 24-bit hash of the coordinate bits finds the candidates (hash buckets holding >= min_stack venues) in
    one pass; exact lon/lat are compared among those only. Returns (candidate positions into ``idx``, their
    location ids, venues per location id).
    """
    x, y = lon[idx] + 0.0, lat[idx] + 0.0  # -0.0 -> 0.0: equal coordinates, equal bits
    h = (x.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (y.view(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
    # ~2 buckets a venue, at most 2^24 (a 128 MiB count for any input before); the candidates hold every stack
    bits = min(24, max(10, int(idx.size).bit_length() + 1))
    bucket = (h >> np.uint64(64 - bits)).astype(np.int64)
    cand = np.flatnonzero(np.bincount(bucket, minlength=1 << bits)[bucket] >= min_stack)
    loc, _ = pd.factorize(x[cand] + 1j * y[cand])
    size = np.bincount(loc)
    return cand, loc, size


# --------------------------------------------------------------------------- reader
def read_wof(path_or_dir: StrPath | list[StrPath] | tuple[StrPath, ...], *, min_stack: int | None = 50,
             crosswalk: StrPath | pd.DataFrame = "default", states: str | Iterable[str] | None = None,
             drop_unknown_status: bool = False) -> gpd.GeoDataFrame:
    """Who's On First venues as POIs for :func:`geos2vec.count_features`.

    Parameters
    ----------
    path_or_dir : path, list of paths, or directory
        ``us-<state>.parquet`` file(s), or a directory holding them (every
        ``*.parquet`` in it is read). A file named twice (another spelling, a link) is read once.
    min_stack : int or None, default 50
        Venues sharing one exact lon/lat with at least ``min_stack - 1``
        others are fallback geocodes (a town or ZIP centroid), not places:
        dropped and reported. ``None`` keeps them.
    crosswalk : "default", path or DataFrame
        SimpleGeo class -> ontology channel, see :func:`load_crosswalk`.
    states : str or list of str, optional
        Only these state codes (``["ks", "ia"]``), matched on the file names; an empty list raises.
    drop_unknown_status : bool, default False
        Who's On First's ``is_current`` is 1 (current), 0 (not current:
        closed, ceased or superseded) or -1 (unknown); missing is unknown too.
        Venues with 0 are always dropped; with True those with -1 as well.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326 Points, one row per kept venue: ``wof_id``, ``name``,
        ``state``, ``sg_type``, ``sg_category``, ``sg_subcategory`` (missing
        where the source has none or spells it "None"), ``osm_key`` and
        ``fclass`` (the OSM tag of the venue's class, which count_features maps
        to its channel). Only venues with a channel are returned, in file
        order. ``result.attrs["wof_report"]`` is a dict: ``files``,
        ``n_read``, ``n_returned``, ``dropped`` ({reason: count} for
        ``invalid_coordinates``, ``stacked``, ``not_current``,
        ``status_unknown`` (only with ``drop_unknown_status``), ``duplicate_id``
        (a venue read before from another file: same ``wof_id`` and lon/lat;
        only when some),
        ``uncategorised``, ``unmapped_category``; each venue counted once, in
        that order), ``n_status_unknown_kept``, ``stacks`` (number of stack
        locations, the largest), ``n_categorised`` / ``n_mapped`` /
        ``share_mapped`` (venues reaching the category step: those with a
        category, those with a channel, and their ratio), ``top_unmapped``
        ({"type / category / subcategory": count}, most frequent first, then by label),
        ``not_in_crosswalk`` (categories without any crosswalk row),
        ``per_state`` ({state: [read, returned]}), ``min_stack``,
        ``crosswalk``. ``result.attrs["source_tags"]``: every OSM tag
        (``key=value``) the crosswalk can give a venue, i.e. every category
        this source can record at all; :func:`geos2vec.count_features` with
        ``coverage`` records the ontology's other POI channels (pubs, benches,
        fire hydrants, ... which SimpleGeo does not distinguish) as *missing*
        there, not zero (see :mod:`geos2vec.coverage`). ``pandas.concat`` of
        several results drops ``attrs``; ``count_features`` then recognises the
        venues by their ``wof_id`` and ``sg_category`` columns and takes the
        packaged crosswalk's tags (plus the tags the rows hold).

    Raises
    ------
    FileNotFoundError
        A path, or a requested state's file, does not exist.
    ValueError
        A directory without .parquet files, an unreadable file, missing
        columns (named) or ``wof_id`` values, a bad ``min_stack`` or crosswalk,
        an empty ``states`` (:class:`geos2vec.errors.InvalidInputError`).
    TypeError
        Paths or states of the wrong type (:class:`geos2vec.errors.InvalidTypeError`).

    Warns
    -----
    Geos2VecWarning
        (a ``UserWarning``) One warning summarising what was dropped (details in the report), naming the
        line of the user's call (also when ``read_wof`` runs inside another geos2vec function).

    Examples
    --------
    >>> from geos2vec.io import read_wof
    >>> pois = read_wof("../shared/data/wof", states=["ri"])            # doctest: +SKIP
    >>> pois.attrs["wof_report"]["share_mapped"]                         # doctest: +SKIP
    """
    import geopandas as gpd
    import pyarrow as pa
    import pyarrow.compute as pc
    import shapely

    if min_stack is not None:
        if isinstance(min_stack, bool) or not isinstance(min_stack, (int, np.integer)) or min_stack < 2:
            raise InvalidInputError(
                f"min_stack must be an integer >= 2 (venues at one coordinate) or None, got {min_stack!r}")
    table = load_crosswalk(crosswalk)
    files = _find_files(path_or_dir, states)
    parts = [_read_one(f) for f in files]
    sizes = [m for _, m in parts]
    n = int(sum(sizes))
    file_states = [_state_of(f) for f in files]
    state_uniq = np.array(sorted(set(file_states)), dtype=object)
    state_code = np.repeat(np.searchsorted(state_uniq, np.array(file_states, dtype=object)), sizes).astype(np.int64)

    def numbers(col, fill):
        chunks = [c for arrays, _ in parts for c in arrays[col].chunks]
        if not chunks:
            return np.empty(0, dtype=np.int64 if col == "wof_id" else np.float64)
        return np.concatenate([pc.fill_null(c, fill).to_numpy(zero_copy_only=False) for c in chunks])

    lon, lat, status = (numbers(c, np.nan).astype(np.float64) for c in ("lon", "lat", "is_current"))
    with np.errstate(invalid="ignore"):
        valid = (np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
                 & ~((lon == 0) & (lat == 0)))
    reasons = ["invalid_coordinates", "stacked", "not_current", "status_unknown", "uncategorised", "unmapped_category",
               "duplicate_id"]
    reason = np.zeros(n, dtype=np.int8)  # 0 = kept so far, k = reasons[k - 1]
    reason[~valid] = 1
    ids = numbers("wof_id", 0)
    # a venue in two files (two states' repositories hold some border venues; a copy of a file) is returned once:
    # its later rows (same wof_id, same lon/lat) were counted again, in the cells and in the stacks
    inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)[1:]
    again = np.flatnonzero(counts[inverse.ravel()] > 1)
    repeat = np.zeros(n, dtype=bool)
    if again.size:  # the copy kept: a current one first (then unknown status, then closed), else the first read
        rank = np.select([status[again] == 1, status[again] == -1, status[again] == 0], [0, 1, 2], 3)
        rows = pd.DataFrame({"id": ids[again], "lon": lon[again] + 0.0, "lat": lat[again] + 0.0, "rank": rank,
                             "pos": again}).sort_values(["rank", "pos"], kind="stable")
        repeat[rows["pos"].to_numpy()[rows.duplicated(subset=["id", "lon", "lat"]).to_numpy()]] = True
    del inverse, counts, again  # (n,) arrays: not held while the rest runs

    stacks = {"n_locations": 0, "largest": []}
    if min_stack is not None and valid.any():
        idx = np.flatnonzero(valid & ~repeat)
        cand, loc, size = _stack_sizes(lon, lat, idx, min_stack)
        stacked = size[loc] >= min_stack
        reason[idx[cand[stacked]]] = 2
        if stacked.any():
            big = np.flatnonzero(size >= min_stack)
            where = np.empty(size.size, dtype=np.int64)
            where[loc] = idx[cand]  # a venue of each location (all share its lon/lat)
            order = big[np.lexsort((lat[where[big]], lon[where[big]], -size[big]))]  # ties by place, not file order
            stacks = {"n_locations": int(big.size),
                      "largest": [{"lon": float(lon[where[g]]), "lat": float(lat[where[g]]), "n_venues": int(size[g])}
                                  for g in order[:5]]}

    reason[(reason == 0) & (status == 0)] = 3
    unknown = (reason == 0) & (status == -1)
    del status
    if drop_unknown_status:
        reason[unknown] = 4
    reason[(reason == 0) & repeat] = 7  # before the category step: a venue is categorised (and mapped) once

    cat, cat_u = _codes([arrays["sg_category"] for arrays, _ in parts])
    sub, sub_u = _codes([arrays["sg_subcategory"] for arrays, _ in parts])
    typ, typ_u = _codes([arrays["sg_type"] for arrays, _ in parts])
    reason[(reason == 0) & (cat == int(np.flatnonzero(cat_u == "")[0]))] = 5
    at_cat = reason == 0
    # crosswalk row of each (category, subcategory) pair: subcategory row, else the category row, else -1
    exact = {(c, s): i for i, (c, s) in enumerate(zip(table["sg_category"], table["sg_subcategory"]))}
    default = {c: i for (c, s), i in exact.items() if s == ""}
    pair = cat * len(sub_u) + sub
    pairs, _ = _distinct(pair[at_cat], len(cat_u) * len(sub_u))
    lut = np.array([exact.get((cat_u[p // len(sub_u)], sub_u[p % len(sub_u)]), default.get(cat_u[p // len(sub_u)], -1))
                    for p in pairs], dtype=np.int64)
    row = np.full(n, -1, dtype=np.int64)
    if pairs.size:
        row[at_cat] = lut[np.searchsorted(pairs, pair[at_cat])]
    del pair
    channel = table["channel"].to_numpy(dtype=object)
    has_channel = row >= 0
    has_channel[has_channel] = channel[row[has_channel]] != ""
    unmapped = at_cat & ~has_channel
    reason[unmapped] = 6
    keep = reason == 0

    # report
    triple = (typ * len(cat_u) + cat) * len(sub_u) + sub
    t_uniq, t_count = _distinct(triple[unmapped], len(typ_u) * len(cat_u) * len(sub_u))
    del triple
    labels = []
    for t in t_uniq:
        ty, rest = divmod(int(t), len(cat_u) * len(sub_u))
        ca, su = divmod(rest, len(sub_u))
        labels.append(_SEP.join(x for x in (typ_u[ty] or "(no type)", cat_u[ca], sub_u[su]) if x))
    # most frequent first, equal counts by label (not by the order the files and their values came in)
    top_unmapped = dict(sorted(zip(labels, t_count.tolist()), key=lambda lc: (-lc[1], lc[0]))[:_TOP])
    not_in = sorted({str(cat_u[p // len(sub_u)]) for p, i in zip(pairs, lut) if i < 0})
    count = {name: int(np.count_nonzero(reason == k + 1)) for k, name in enumerate(reasons)}
    # in the order checked; status_unknown only with the option, duplicate_id only when some venue repeats
    dropped = {name: count[name] for name in ("invalid_coordinates", "stacked", "not_current", "status_unknown",
                                              "duplicate_id", "uncategorised", "unmapped_category")
               if (name != "status_unknown" or drop_unknown_status) and (name != "duplicate_id" or count[name])}
    n_cat, n_mapped = int(np.count_nonzero(at_cat)), int(np.count_nonzero(keep))
    read_per = np.bincount(state_code, minlength=state_uniq.size)
    kept_per = np.bincount(state_code[keep], minlength=state_uniq.size)
    report = {
        "files": [f.name for f in files], "n_read": int(n), "n_returned": n_mapped, "dropped": dropped,
        "n_status_unknown_kept": 0 if drop_unknown_status else int(np.count_nonzero(unknown & keep)),
        "stacks": stacks, "n_categorised": n_cat, "n_mapped": n_mapped,
        "share_mapped": (n_mapped / n_cat) if n_cat else float("nan"), "top_unmapped": top_unmapped,
        "not_in_crosswalk": not_in,
        "per_state": {str(s): [int(read_per[i]), int(kept_per[i])] for i, s in enumerate(state_uniq)},
        "min_stack": min_stack, "crosswalk": table.attrs.get("name", "custom"),
    }

    k = np.flatnonzero(keep)
    r = row[k]
    names = pc.fill_null(pa.chunked_array([c for arrays, _ in parts for c in arrays["name"].chunks],
                                          type=pa.large_string()).take(pa.array(k)), "").to_pandas()
    key_codes, key_u = pd.factorize(table["osm_key"].to_numpy(dtype=object))  # over crosswalk rows
    val_codes, val_u = pd.factorize(table["osm_value"].to_numpy(dtype=object))
    out = gpd.GeoDataFrame(
        {"wof_id": ids[k], "name": names,
         "state": _strings(state_code[k], state_uniq), "sg_type": _strings(typ[k], typ_u),
         "sg_category": _strings(cat[k], cat_u), "sg_subcategory": _strings(sub[k], sub_u),
         "osm_key": _strings(key_codes[r], np.asarray(key_u, dtype=object)),
         "fclass": _strings(val_codes[r], np.asarray(val_u, dtype=object))},
        geometry=gpd.GeoSeries(shapely.points(lon[k], lat[k]), crs="EPSG:4326"), crs="EPSG:4326")
    out.attrs["wof_report"] = report
    out.attrs["source_tags"] = _crosswalk_tags(table)
    _warn(report)
    return out


def _crosswalk_tags(table: pd.DataFrame) -> list[str]:
    """Every ``key=value`` tag a crosswalk can give a venue (its rows with a channel), sorted."""
    has = table["channel"].to_numpy(dtype=object) != ""
    return sorted({f"{k}={v}" for k, v in zip(table["osm_key"].to_numpy(dtype=object)[has],
                                              table["osm_value"].to_numpy(dtype=object)[has])})


@functools.lru_cache(maxsize=1)
def _default_tags() -> tuple[str, ...]:
    return tuple(_crosswalk_tags(load_crosswalk("default")))


def _venue_source_tags(frame) -> list[str] | None:
    """The tags a Who's On First venue frame can record, for one whose ``attrs["source_tags"]`` was lost.

    ``pandas.concat`` drops ``attrs`` that differ between its inputs (every state has its own ``wof_report``),
    so a frame with :func:`read_wof`'s columns (``wof_id``, ``sg_category``) but no ``source_tags`` is taken as
    venues of the packaged crosswalk: its tags, plus the ``osm_key=fclass`` tags the rows hold (a custom
    crosswalk's), so that the channels SimpleGeo cannot record stay missing rather than becoming zeros.
    ``None`` for any other frame.
    """
    columns = getattr(frame, "columns", ())
    if not all(c in columns for c in _VENUE_COLUMNS):
        return None
    tags = set(_default_tags())
    if isinstance(frame, pd.DataFrame) and {"osm_key", "fclass"} <= set(columns):
        pairs = frame[["osm_key", "fclass"]].dropna().drop_duplicates().to_numpy(dtype=object)
        tags |= {f"{k}={v}" for k, v in pairs if isinstance(k, str) and isinstance(v, str) and k and v}
    return sorted(tags)


def _warn(report):
    d = report["dropped"]
    parts = []
    if d["invalid_coordinates"]:
        parts.append(f"{d['invalid_coordinates']:,} with missing/invalid coordinates")
    if d["stacked"]:
        parts.append(f"{d['stacked']:,} in {report['stacks']['n_locations']:,} coordinate stack(s) of "
                     f">= {report['min_stack']} venues (fallback geocodes)")
    if d["not_current"]:
        parts.append(f"{d['not_current']:,} not current (is_current=0: closed)")
    if d.get("status_unknown"):
        parts.append(f"{d['status_unknown']:,} with unknown status (is_current=-1)")
    if d.get("duplicate_id"):
        parts.append(f"{d['duplicate_id']:,} read before (same wof_id and lon/lat, in another file)")
    if d["uncategorised"]:
        parts.append(f"{d['uncategorised']:,} without a category")
    if d["unmapped_category"]:
        top = list(report["top_unmapped"].items())[:3]
        parts.append(f"{d['unmapped_category']:,} whose category has no ontology channel "
                     f"({report['share_mapped']:.1%} of categorised venues mapped; most frequent: {top})")
    if parts:
        warn(f"read_wof kept {report['n_returned']:,} of {report['n_read']:,} venues; dropped " + "; ".join(parts)
             + ". Details: result.attrs['wof_report']", Geos2VecWarning)
