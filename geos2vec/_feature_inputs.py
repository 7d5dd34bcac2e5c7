"""Reading and checking the inputs of :func:`geos2vec.count_features`.

POI coordinates, categories, roads and extra channels (private helpers; every error names the rows and says
how to fix them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable

import numpy as np
import pandas as pd

from . import _geo, cells as _cells
from ._textfile import column_hint, columns_differ as _columns_differ  # noqa: F401 (features)
from .errors import Geos2VecError, InvalidInputError, InvalidTypeError, foreign_frame
from .ontology import Ontology

_LON_COLUMNS = ("lon", "lng", "longitude", "x")
_LAT_COLUMNS = ("lat", "latitude", "y")
_NUMERIC_AGGS = {"sum": 0, "mean": 1, "min": 2, "max": 3, "count": 4}

# --------------------------------------------------------------------------- input helpers
@contextlib.contextmanager
def _input_errors():
    """Raise what the geometry blocks below raise as :mod:`geos2vec.errors` classes.

    :mod:`geos2vec._geo`'s checks raise those classes themselves; a plain ValueError/TypeError from the
    libraries they call (pandas, GeoPandas) is re-raised as InvalidInputError/InvalidTypeError, same message.
    """
    try:
        yield
    except Geos2VecError:
        raise
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc
    except TypeError as exc:
        raise InvalidTypeError(str(exc)) from exc


def _positions_of(frame_index, mask):
    return _geo.describe_labels(frame_index, mask)


def _point_coords(pois, errors):
    """lat, lng, kept-row mask, number of non-point geometries, number coerced away."""
    import shapely

    gpd = _gpd()
    if isinstance(pois, (gpd.GeoDataFrame, gpd.GeoSeries)):
        with _input_errors():
            geoms = _nan_points_as_missing(_geo.as_geoseries(pois, "pois"))
            geoms = _geo.to_wgs84(geoms, "pois")
            missing = _geo.check_missing(geoms, errors, "pois", coerce="leave those rows out of the counts")
        arr = np.asarray(geoms.values)
        kept = ~missing
        types = shapely.get_type_id(arr[kept]) if kept.any() else np.empty(0, dtype=np.int32)
        n_non_point = int(np.count_nonzero(types != 0))
        if n_non_point == 0:
            lng = shapely.get_x(arr[kept])
            lat = shapely.get_y(arr[kept])
        else:
            with _input_errors():
                lng_all, lat_all = _geo.representative_lnglat(geoms)
            lng, lat = lng_all[kept], lat_all[kept]
        return lat, lng, kept, n_non_point, int(np.count_nonzero(missing))
    if isinstance(pois, pd.DataFrame):
        lon_col, lat_col = _lnglat_columns(pois)
        if lon_col is None or lat_col is None:  # pd.DataFrame(gdf), pd.concat: a column of geometries, no lon/lat
            geo = [c for _, (c, col) in zip(range(50), pois.items()) if col.dtype.name == "geometry" or (
                col.dtype == object and isinstance(col.dropna().iloc[0] if col.notna().any() else 0, shapely.Geometry))]
            raise InvalidInputError(
                "pois is a plain DataFrame without longitude/latitude columns (looked for, in any case, "
                f"{_LON_COLUMNS} and {_LAT_COLUMNS}); pass a GeoDataFrame, or name the columns 'lon' and 'lat' "
                "(degrees, WGS84)" + (f"; its column {geo[0]!r} holds geometries: geopandas.GeoDataFrame(df, geometry="
                                      f"{geo[0]!r}, crs=<their CRS, e.g. 'EPSG:4326'>)" if geo else ""))
        fix = "flatten the columns, or label the degrees ('lon', '') / ('lat', '') (pandas selects those by 'lon')"
        lat_s, lon_s = _column(pois, lat_col, "pois column", fix), _column(pois, lon_col, "pois column", fix)
        lat = pd.to_numeric(lat_s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        lng = pd.to_numeric(lon_s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(lat) | np.isnan(lng)
        if missing.any() and errors == "raise":
            raise InvalidInputError(
                f"pois has {int(missing.sum())} rows with missing or non-numeric {lat_col}/{lon_col} at index "
                f"{_positions_of(pois.index, missing)}; drop them or pass errors='coerce' to skip them (reported)"
            )
        kept = ~missing
        return lat[kept], lng[kept], kept, 0, int(np.count_nonzero(missing))
    raise InvalidTypeError(
        f"pois must be a GeoDataFrame, GeoSeries or a DataFrame with lon/lat columns, got {type(pois).__name__}"
        f"{foreign_frame(pois)}"
    )


def _lnglat_columns(frame: pd.DataFrame):
    """``(longitude column, latitude column)`` of a plain DataFrame (``None`` where it has none).

    The first of :data:`_LON_COLUMNS` / :data:`_LAT_COLUMNS` it has, else the first whose name matches one
    whatever its case (``LON``/``Latitude``, as ``join_labels`` finds them): how ``count_features`` and
    ``infer_coverage`` find them.
    """
    lowered = {}
    for c in frame.columns:
        if isinstance(c, str):
            lowered.setdefault(c.lower(), c)

    def find(names):  # by priority; each name exactly, else in another case ("Latitude" before a "y" column)
        return next((c if c in frame.columns else lowered[c] for c in names if c in frame.columns or c in lowered),
                    None)

    return find(_LON_COLUMNS), find(_LAT_COLUMNS)


def _nan_points_as_missing(geoms):
    """``geoms`` with its NaN points set to None (a missing location).

    ``points_from_xy`` makes ``POINT (NaN NaN)`` of a missing lon/lat; as missing geometries, they raise, or with
    ``errors="coerce"`` are skipped, like NaN ``lon``/``lat`` columns of a plain DataFrame.
    """
    import shapely

    arr = np.asarray(geoms.values)
    point = (shapely.get_type_id(arr) == 0) & ~shapely.is_empty(arr)
    nan = np.zeros(arr.size, dtype=bool)
    if point.any():
        nan[point] = np.isnan(shapely.get_x(arr[point])) | np.isnan(shapely.get_y(arr[point]))
    if not nan.any():
        return geoms
    out = geoms.copy()
    out[nan] = None
    return out


def _gpd():
    import geopandas

    return geopandas


def _missing_column(what, name, frame, listed=False) -> InvalidInputError:
    """The error for a column ``name`` that ``frame`` (the POIs) lacks, saying when one prints the same."""
    cols = [] if frame is None else list(frame.columns)
    return InvalidInputError(f"{what} {name!r} is not a column of pois" + (f" ({cols})" if listed else "")
                             + column_hint(name, cols))


def _column(frame, name, what, fix=None):
    """``frame[name]`` as a Series; raise when ``name`` selects several columns of MultiIndex columns.

    pandas selects every column under a first-level label (``frame["fclass"]`` of columns ``("fclass", "en")``
    and ``("fclass", "de")`` is a DataFrame), which no count can use.
    """
    col = frame[name]
    if isinstance(col, pd.DataFrame):
        full = [name + (c if isinstance(c, tuple) else (c,)) if isinstance(name, tuple) else
                (name, *(c if isinstance(c, tuple) else (c,))) for c in col.columns]
        raise InvalidInputError(
            f"{what} {name!r} is not one column but selects the MultiIndex column(s) {full[:5]}; "
            + (fix or f"pass the full label of one, e.g. {what}={full[0]!r}"))
    return col


def _check_labels(**labels):
    """Raise for a column-name option (``category_column=``, ...) that is not a single label (e.g. a list)."""
    for name, label in labels.items():
        if label is not None and not isinstance(label, Hashable):
            raise InvalidTypeError(f"{name} must be one column label (a string, or a tuple for MultiIndex columns), "
                                   f"got {type(label).__name__} {label!r}")


def _check_unique_columns(frame, name):
    """Raise for a frame with duplicate column names (pandas would return a frame where a column is expected)."""
    if not isinstance(frame, pd.DataFrame):
        return
    dup = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if dup:
        raise InvalidInputError(f"{name} has duplicate column names {dup}; rename or drop them (e.g. "
                                f"{name}.loc[:, ~{name}.columns.duplicated()]) so that each name is one column")


def _check_coords(lat, lng, index, kept, name):
    with _input_errors():
        if index is not None:
            _geo.check_lnglat(lng, lat, pd.Index(index[np.flatnonzero(kept)]), name)
        else:
            _geo.check_lnglat(lng, lat, pd.RangeIndex(len(lat)), name, where="vertex positions ")


def _check_antipodal(lat, lng, part_start):
    """Raise for a road segment between (nearly) antipodal points: no unique great circle joins them."""
    xyz = _cells._xyz(lat, lng)
    dot = (xyz[:-1] * xyz[1:]).sum(axis=1)
    same_part = np.ones(dot.size, bool)
    same_part[part_start[1:-1] - 1] = False  # the step from one part's last vertex to the next part's first
    bad = np.flatnonzero(same_part & (dot < -1 + 1e-12))
    if bad.size:
        k = int(bad[0])
        raise InvalidInputError(f"roads have {bad.size} segment(s) between antipodal points, e.g. ({lng[k]}, "
                                f"{lat[k]}) -> ({lng[k + 1]}, {lat[k + 1]}): no unique great circle joins them; add "
                                "an intermediate vertex to say which way the road goes")


def _categories(frame, kept, column, key_column, ontology: Ontology):
    """Channel code per kept row (-1 = none) and the dropped-category summary."""
    values = _column(frame, column, "category_column")
    if kept is not None and not kept.all():
        values = values[kept]
    if key_column is not None:
        keys = _column(frame, key_column, "key_column")
        if kept is not None and not kept.all():
            keys = keys[kept]
        # "key=value" per distinct (key, value) pair in order of first appearance (per row: 0.5 GB for 1.9 M POIs); no
        # key (missing, blank): the bare value (all-None osm_key keeps fclass); a blank value: "key=", reported below
        (kc, ku), (vc, vu) = pd.factorize(keys.astype("string")), pd.factorize(values.astype("string"))
        pair, pairs = pd.factorize((kc + 1) * (len(vu) + 1) + (vc + 1))
        keys = pd.Series(pd.array(ku, dtype="string").take(pairs // (len(vu) + 1) - 1, allow_fill=True)).str.strip()
        values = pd.Series(pd.array(vu, dtype="string").take(pairs % (len(vu) + 1) - 1, allow_fill=True))
        has_key = keys.notna().to_numpy() & (keys.fillna("") != "").to_numpy(dtype=bool)
        codes, uniques = pd.factorize(keys.str.cat(values, sep="=").where(has_key, values))
        codes = codes[pair]  # per row
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniq = np.asarray(uniques, dtype=object)
    not_str = [u for u in uniq if not isinstance(u, str)]
    if not_str:
        raise InvalidTypeError(
            f"category column {column!r} must hold strings (OSM tag values such as 'restaurant'), but holds "
            f"{len(not_str)} non-string value(s), e.g. {not_str[:3]} ({type(not_str[0]).__name__}); map codes to "
            f"their OSM values, or pass category_column= naming the column that holds them"
        )
    # surrounding spaces are no part of a value (" restaurant" is restaurant), as in keys and key=value tags
    uniq = np.array([u.strip() for u in uniq], dtype=object)
    blank = np.array([_blank_category(u) for u in uniq], dtype=bool)
    lut = ontology.lookup(np.where(blank, None, uniq))
    lut = np.append(lut, -1).astype(np.int32)  # code -1 (missing) -> last entry
    chan = lut[codes]
    per_value = np.bincount(codes[codes >= 0], minlength=uniq.size)
    unknown = (~blank) & (lut[:-1] < 0) & (per_value > 0)
    dropped = pd.Series(per_value[unknown], index=uniq[unknown], dtype=np.int64).groupby(level=0, sort=False).sum()
    dropped = most_frequent_first(dropped.items())
    n_missing = int(np.count_nonzero(codes < 0) + per_value[blank].sum())
    return chan, dropped, n_missing


def _blank_category(value) -> bool:
    """A blank category: ``""``, spaces, or a tag without a value (``"amenity="``, ``"amenity=<NA>"``)."""
    if not isinstance(value, str) or not value.strip():
        return True
    if "=" in value:
        tag_value = value.split("=", 1)[1].strip()
        return not tag_value or tag_value == "<NA>"
    return False


def _road_lines(roads, errors, road_column, ontology):
    import shapely

    with _input_errors():
        geoms = _geo.to_wgs84(_geo.as_geoseries(roads, "roads"), "roads")
        missing = _geo.check_missing(geoms, errors, "roads", coerce="leave those rows out of the counts")
    arr = np.asarray(geoms.values)
    types = np.full(arr.size, -1)
    types[~missing] = shapely.get_type_id(arr[~missing])
    bad = ~missing & ~np.isin(types, (1, 2, 5))
    if bad.any():
        names = sorted(set(shapely.get_type_id(arr[bad]).tolist()))
        kinds = [["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
                  "MultiPolygon", "GeometryCollection"][t] for t in names]
        raise InvalidInputError(
            f"roads must be LineStrings or MultiLineStrings; {int(bad.sum())} rows are {kinds} at index "
            f"{_geo.describe_labels(geoms.index, bad)}. Drop them, or convert polygons with .boundary"
        )
    kept = ~missing
    dropped = {}
    column = None
    if road_column == "auto":
        if ontology.road_values is not None and isinstance(roads, pd.DataFrame):
            column = "highway" if "highway" in roads.columns else None
    elif road_column is not None:
        if not isinstance(roads, pd.DataFrame) or road_column not in roads.columns:
            raise InvalidInputError(f"road_column {road_column!r} is not a column of roads" + (
                column_hint(road_column, roads.columns) if isinstance(roads, pd.DataFrame) else ""))
        if ontology.road_values is None:
            raise InvalidInputError("road_column needs an ontology with road classes (road_values); "
                                    "pass road_column=None to count every line")
        column = road_column
    if column is not None:
        hw = _column(roads, column, "road_column").to_numpy(dtype=object)
        is_road = np.array([isinstance(v, str) and v.strip() in ontology.road_values for v in hw], dtype=bool)
        drop = kept & ~is_road
        if drop.any():
            dropped = most_frequent_first(pd.Series(hw[drop]).fillna("<missing>").value_counts().items())
        kept &= is_road
    return arr[kept], kept, dropped, int(np.count_nonzero(missing)), column


def _non_road_highways(roads, kept, road_column, ontology) -> dict:
    """``{highway value: lines}`` a custom ontology without road classes counted that the default does not.

    ``Ontology.from_mapping`` / ``from_channels`` count every line as a road (``road_values=None``); OSM roads
    with a ``highway`` column then count ``proposed``, ``construction``, ``corridor``, ... as well, which the
    default ontology drops. Empty unless that is the case.
    """
    if ontology.road_values is not None or road_column != "auto" or not isinstance(roads, pd.DataFrame) \
            or "highway" not in roads.columns:
        return {}
    from .ontology import load_ontology

    hw = pd.Series(_column(roads, "highway", "road_column").to_numpy(dtype=object)[kept])
    classes = load_ontology().road_values  # once: load_ontology returns a copy of the packaged one
    other = hw[hw.map(lambda v: isinstance(v, str) and v.strip() not in classes)]
    return most_frequent_first(other.value_counts().items())


def most_frequent_first(counts) -> dict:
    """``{str(value): count}`` from ``(value, count)`` pairs, most frequent first, ties by value.

    Not by the rows' order: a report (and the warning listing its first five) is the same for shuffled input.
    """
    return dict(sorted(((str(k), int(v)) for k, v in counts), key=lambda kv: (-kv[1], kv[0])))


def _parse_extra(extra, frame):
    """[(column, how)], how in 'categories' or a numeric aggregation."""
    if extra is None:
        return []
    if isinstance(extra, str):
        extra = [extra]
    if isinstance(extra, pd.Series):  # list-likes as pandas takes them: a Series maps column -> aggregation
        extra = extra.to_dict()
    elif isinstance(extra, (pd.Index, np.ndarray)):
        extra = extra.tolist()
    if isinstance(extra, dict):
        items = list(extra.items())
    elif isinstance(extra, (list, tuple)):
        items = [(c, "categories") for c in extra]
    else:
        raise InvalidTypeError("extra must be a column name, a list of category columns or a dict "
                               "{column: aggregation}")
    out = []
    for col, how in items:
        if not isinstance(col, Hashable) or not isinstance(how, str):
            raise InvalidTypeError(f"extra takes column names and aggregation names (strings), got {col!r}: {how!r}")
        if frame is None or col not in frame.columns:
            raise _missing_column("extra column", col, frame)
        if how not in _NUMERIC_AGGS and how != "categories":
            raise InvalidInputError(f"unknown aggregation {how!r} for extra column {col!r}; use one of "
                                    f"{['categories', *_NUMERIC_AGGS]}")
        values = _column(frame, col, "extra column", "name one with its full label (a tuple) in extra")
        if how != "categories" and not (pd.api.types.is_numeric_dtype(values)
                                        or pd.api.types.is_bool_dtype(values)):
            raise InvalidTypeError(f"extra column {col!r} must be numeric for {how!r}, got dtype {values.dtype}; "
                                   "use 'categories' to count its values")
        if how == "categories":
            if isinstance(frame, _gpd().GeoDataFrame) and col == frame.geometry.name \
                    or str(values.dtype) == "geometry":
                raise InvalidInputError(f"extra column {col!r} is a geometry column; it cannot be counted as "
                                        "categories")
            n_values = int(values.nunique(dropna=True))
            if n_values > MAX_EXTRA_CATEGORIES:
                raise InvalidInputError(
                    f"extra column {col!r} has {n_values:,} distinct values: counting them as categories would "
                    f"make {n_values:,} channels (limit {MAX_EXTRA_CATEGORIES:,}); is it an identifier? Bin it "
                    "first, or aggregate a numeric column with extra={col: 'sum'|'mean'|...}")
        out.append((col, how))
    return out


def _is_float_column(dtype) -> bool:
    """A column whose values are all floats: float32/64, nullable ``Float64``, or a category dtype of floats."""
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    return pd.api.types.is_float_dtype(dtype)


def _whole_number_names(table: pd.DataFrame, pois, extra, first: int) -> pd.DataFrame:
    """``table`` with the channels of a float category column's whole numbers named as ints (``k=1``).

    ``count_features`` names a category channel ``f"{column}={value}"``, so the codes 1, 2 of a float column
    (an int column with a NaN) gave ``k=1.0``, ``k=2.0`` and those of an int column ``k=1``, ``k=2``. A float
    column only holds floats, so its channel names are read back: a whole number below 2**63 loses its ``.0``.
    The same strings in ``attrs["coverage"]`` (its per-layer channel lists) are renamed too. ``first``: the
    position of the first extra channel.
    """
    if pois is None or extra is None:
        return table
    meta = pois._meta if hasattr(pois, "_meta") else pois
    cols = [col for col, how in _parse_extra(extra, meta) if how == "categories" and _is_float_column(meta[col].dtype)]
    rename = {}
    for name in table.columns[first:]:
        col = next((c for c in cols if isinstance(name, str) and name.startswith(f"{c}=")), None)
        if col is None:
            continue
        try:
            value = float(name[len(f"{col}="):])
        except ValueError:
            continue
        if np.isfinite(value) and value.is_integer() and abs(value) < 2.0**63:
            rename[name] = f"{col}={int(value)}"
    if not rename:
        return table
    out = table.rename(columns=rename)
    out.attrs = {**table.attrs, **({"coverage": _renamed(table.attrs["coverage"], rename)}
                                   if "coverage" in table.attrs else {})}
    return out


def _renamed(obj, rename: dict):
    """``obj`` (nested dicts/lists of a coverage) with every string that is a key of ``rename`` renamed."""
    if isinstance(obj, dict):
        return {k: _renamed(v, rename) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_renamed(v, rename) for v in obj)
    return rename.get(obj, obj) if isinstance(obj, str) else obj


def _count_tables(tables) -> list:
    """The tables of :func:`geos2vec.features.combine_counts` as a list, checked (types, columns, index)."""
    if isinstance(tables, (pd.DataFrame, str)):  # iterating would give its column names / letters
        raise InvalidTypeError(f"tables must be a list of DataFrames, got one {type(tables).__name__}; pass [table]")
    tables = list(tables)
    if not tables:
        raise InvalidInputError("combine_counts needs at least one table")
    for k, t in enumerate(tables):
        if not isinstance(t, pd.DataFrame):
            raise InvalidTypeError(f"tables[{k}] is a {type(t).__name__}, not a count_features DataFrame")
        _check_unique_columns(t, f"tables[{k}]")
        bad = [str(c) for c in t.columns if not (pd.api.types.is_numeric_dtype(t[c]) or t[c].dtype == bool)]
        if bad:
            raise InvalidTypeError(f"tables[{k}] has non-numeric channel column(s) {bad[:5]}; counts must be numbers")
        if t.index.dtype.kind not in "iu":
            raise InvalidInputError(f"tables[{k}] is not indexed by S2 cell ids (uint64), its index has dtype "
                                    f"{t.index.dtype}; keep the cell_id index count_features gives it")
        if t.index.hasnans:
            raise InvalidInputError(f"tables[{k}]'s cell_id index has {int(t.index.isna().sum())} missing (<NA>) "
                                    "value(s); drop those rows (table[table.index.notna()])")
    return tables


def _unrecordable(pois, onto, poi_channels, table=None) -> list:
    """POI channels a source can never record; ``[]`` when it does not say what it records.

    A source declares it in ``pois.attrs["source_tags"]``: every ``key=value`` tag it can give a POI (e.g.
    :func:`geos2vec.io.read_wof`, from its crosswalk). A frame of Who's On First venues without it (``attrs``
    lost in ``pd.concat``) is recognised by its columns. The tags describe the POIs' tag column (``fclass`` with
    ``osm_key``); when ``table`` (the counts) has POIs in a channel none of them reaches, another column was
    counted (e.g. ``category_column="sg_category"`` with a custom ontology): the declaration is ignored, with a
    ``CoverageWarning``, rather than recording counted channels as missing.
    """
    attrs = getattr(pois, "attrs", None)
    if attrs is None:  # a dask frame: its meta carries the pandas attrs
        attrs = getattr(getattr(pois, "_meta", None), "attrs", {})
    tags = attrs.get("source_tags")
    if tags is None:  # Who's On First venues whose attrs were lost (pd.concat of two states) still declare it
        from .io.wof import _venue_source_tags

        tags = _venue_source_tags(pois)
    if tags is None:
        return []
    if isinstance(tags, str) or not all(isinstance(t, str) and "=" in t for t in tags):
        raise InvalidTypeError(f"pois.attrs['source_tags'] must be a list of 'key=value' strings, got {tags!r}")
    if not tags:  # a source that can record nothing
        return list(poi_channels)
    keys, values = zip(*(t.split("=", 1) for t in tags))
    have = {onto.channels[c] for c in onto.lookup(list(values), keys=list(keys)) if c >= 0}
    counted = [] if table is None else [c for c in poi_channels if c not in have and table[c].to_numpy().any()]
    if counted:
        from ._stacklevel import warn as _warn
        from .errors import CoverageWarning

        _warn(f"count_features counted POIs in channel(s) {counted[:5]} that none of pois.attrs"
              "['source_tags'] reaches: those tags do not describe the counted category column, so no POI "
              "channel is recorded as missing; declare the tags of that column in pois.attrs['source_tags'] "
              "(or delete it)", CoverageWarning)
        return []
    return [c for c in poi_channels if c not in have]


def _unread_tags(pois, onto) -> list:
    """Tags of ``onto`` that the reader of ``pois`` did not select POIs by (``[]`` when it does not say).

    :func:`geos2vec.io.read_osm` records in ``attrs["selected_tags"]`` the tags (``key=value``, ``key=*``) that
    made an object a POI; objects with only other tags were never read, so counting them with another ontology
    gives zeros for its other tags' channels.
    """
    selected = getattr(pois, "attrs", {}).get("selected_tags")
    if not isinstance(selected, (list, tuple)):
        return []
    selected = set(selected)
    unread = []
    for channel, key, value in zip(onto.table["channel"], onto.table["osm_key"], onto.table["osm_value"]):
        if channel == "road" or not isinstance(key, str) or not key:  # a bare value: any key could hold it
            continue
        if f"{key}=*" not in selected and f"{key}={value}" not in selected:
            unread.append(f"{key}={value}")
    return unread


MAX_EXTRA_CATEGORIES = 1024
