"""Who's On First through geos2vec, audited against plain pandas + s2sphere on the raw venue files.

Reference: venues kept by the documented rules (valid coordinates, stacks of >= min_stack at one exact lon/lat,
is_current != 0, a category, a crosswalk row with a channel: the subcategory's row, else the category's default
row, read row by row from the CSV), counted per level-12 cell (s2sphere) and channel; the coverage is each state's
convex hull without the venues that have fewer than 5 others in their level-8 cell and its 8 neighbours.
"""

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec

s2sphere = pytest.importorskip("s2sphere")

WOF = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wof"
CROSSWALK = Path(geos2vec.__file__).parent / "data" / "crosswalk_simplegeo_v1.csv"
pytestmark = pytest.mark.skipif(not (WOF / "us-de.parquet").is_file(), reason="shared WOF data not available")


def _clean(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    v = str(v).strip()
    return "" if v == "None" else v


def _reference(frame, min_stack=50):
    """(reason per row: "" = kept, channel per row, osm tag per row) by the documented rules."""
    cw = pd.read_csv(CROSSWALK, comment="#", dtype=str, keep_default_na=False)
    rows = {(r.sg_category, r.sg_subcategory): r for r in cw.itertuples()}
    df = frame.reset_index(drop=True)
    valid = (np.isfinite(df.lon) & np.isfinite(df.lat) & (df.lat.abs() <= 90) & (df.lon.abs() <= 180)
             & ~((df.lon == 0) & (df.lat == 0)))
    reason = pd.Series("", index=df.index, dtype=object)
    reason[~valid] = "invalid_coordinates"
    size = df[valid].groupby(["lon", "lat"]).wof_id.transform("size")
    reason[size.index[size >= min_stack]] = "stacked"
    reason[(reason == "") & (df.is_current == 0)] = "not_current"
    cat, sub = df.sg_category.map(_clean), df.sg_subcategory.map(_clean)
    reason[(reason == "") & (cat == "")] = "uncategorised"
    chan, tag = [], []
    for c, s in zip(cat, sub):
        r = rows.get((c, s)) or rows.get((c, ""))  # subcategory row, else the category's default
        chan.append(r.channel if r is not None else "")
        tag.append(r.osm_tag if r is not None else "")
    chan, tag = pd.Series(chan, index=df.index), pd.Series(tag, index=df.index)
    reason[(reason == "") & (chan == "")] = "unmapped_category"
    return df, reason, chan, tag


def _cell(lat, lon, level):
    return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lon)).parent(level)


def _read(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return geos2vec.io.read_wof(*args, **kw)


def test_delaware_numbers_match_reference_however_the_file_is_named():
    raw = pd.read_parquet(WOF / "us-de.parquet")
    df, reason, chan, tag = _reference(raw)
    kept = reason == ""
    # the directory and the same file by its absolute path (a user adding "one more state"): read once
    rel = os.path.relpath(WOF, os.getcwd())
    for venues in (_read(WOF / "us-de.parquet"), _read([rel, str((WOF / "us-de.parquet").resolve())], states="de")):
        rep = venues.attrs["wof_report"]
        assert rep["n_read"] == len(raw) == 38172
        assert rep["dropped"] == {k: int((reason == k).sum()) for k in
                                  ("invalid_coordinates", "stacked", "not_current", "uncategorised",
                                   "unmapped_category")}
        assert rep["dropped"]["stacked"] == 2421 and rep["n_returned"] == int(kept.sum()) == 12640
        assert rep["n_returned"] + sum(rep["dropped"].values()) == rep["n_read"]
        assert rep["per_state"] == {"de": [38172, 12640]} and rep["files"] == ["us-de.parquet"]
        assert rep["n_categorised"] == int(reason.isin(["", "unmapped_category"]).sum())
        assert rep["share_mapped"] == pytest.approx(12640 / rep["n_categorised"])
        assert rep["n_status_unknown_kept"] == int((kept & (df.is_current == -1)).sum())
        assert rep["not_in_crosswalk"] == []
        assert venues["wof_id"].tolist() == df.loc[kept, "wof_id"].tolist()  # same venues, file order
        assert (venues["osm_key"] + "=" + venues["fclass"]).tolist() == tag[kept].tolist()

    # per level-12 cell per channel, against s2sphere
    cells = [_cell(a, b, 12).id() for a, b in zip(df.lat[kept], df.lon[kept])]
    ref = pd.crosstab(np.array(cells, dtype=np.uint64), chan[kept].to_numpy())
    table = geos2vec.count_features(pois=venues)
    assert sorted(table.index.tolist()) == sorted(ref.index.tolist()) and len(table) == 663
    assert (table.loc[ref.index, ref.columns].to_numpy() == ref.to_numpy()).all()
    assert table.drop(columns=[*ref.columns, "road"]).to_numpy().sum() == 0

    # coverage: the hull of the venues that have >= 5 others in their level-8 cell and the 8 around it
    lon, lat = venues.geometry.x.to_numpy(), venues.geometry.y.to_numpy()
    c8 = [_cell(a, b, 8) for a, b in zip(lat, lon)]
    per = Counter(c.id() for c in c8)
    around = {c: sum(per.get(x, 0) for x in {c} | {n.id() for n in s2sphere.CellId(c).get_all_neighbors(8)})
              for c in per}
    isolated = np.array([around[c.id()] - 1 < 5 for c in c8])
    assert isolated.sum() == 1 and (geos2vec.io.isolated_venues(venues) == isolated).all()
    hull = shapely.MultiPoint(np.column_stack([lon[~isolated], lat[~isolated]])).convex_hull
    cov = geos2vec.io.venue_coverage(venues)
    assert shapely.equals(cov, hull)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        covered_table = geos2vec.count_features(pois=venues, coverage=cov)
    geom, channels = geos2vec.coverage.get_coverage(covered_table)
    assert channels["road"].is_empty and len(channels) == 36  # road + the 35 channels SimpleGeo lacks
    assert not set(channels) & set(ref.columns)  # no channel holding venues is recorded as missing


def test_a_venue_in_two_files_is_counted_once(tmp_path):
    raw = pd.read_parquet(WOF / "us-ri.parquet")
    df, reason, chan, _ = _reference(raw)
    kept = raw[(reason == "").to_numpy()].head(300)
    a = kept.iloc[:200]
    b = pd.concat([kept.iloc[150:300]])  # rows 150..199 in both files (as border venues in us-id and us-wy)
    a.to_parquet(tmp_path / "us-aa.parquet")
    b.to_parquet(tmp_path / "us-bb.parquet")
    venues = _read(tmp_path)
    rep = venues.attrs["wof_report"]
    assert rep["n_read"] == 350 and rep["n_returned"] == 300
    assert rep["dropped"]["duplicate_id"] == 50 and list(rep["dropped"])[-3] == "duplicate_id"
    assert rep["n_returned"] + sum(rep["dropped"].values()) == rep["n_read"]
    assert venues["wof_id"].is_unique and sorted(venues["wof_id"]) == sorted(kept["wof_id"])
    assert rep["per_state"] == {"aa": [200, 200], "bb": [150, 100]}
    table = geos2vec.count_features(pois=venues)
    assert int(table.drop(columns="road").to_numpy().sum()) == 300
    cells = Counter(_cell(y, x, 12).id() for x, y in zip(kept.lon, kept.lat))
    assert table.drop(columns="road").sum(axis=1).to_dict() == dict(cells)
    # one file: no key (the report of the shipped states is unchanged)
    assert "duplicate_id" not in _read(tmp_path / "us-aa.parquet").attrs["wof_report"]["dropped"]


def test_load_crosswalk_from_geos2vec_io_rows_as_in_the_csv():
    from geos2vec.io import load_crosswalk  # docs/data.md names it; only geos2vec.io.wof had it

    table = load_crosswalk()
    csv = pd.read_csv(CROSSWALK, comment="#", dtype=str, keep_default_na=False)
    assert len(table) == len(csv) == 442
    assert (table["sg_category"] + "/" + table["sg_subcategory"]).tolist() == \
        (csv["sg_category"] + "/" + csv["sg_subcategory"]).tolist()
    assert table["channel"].tolist() == csv["channel"].tolist()
    mapped = csv["channel"] != ""
    assert (table.loc[mapped, "osm_key"] + "=" + table.loc[mapped, "osm_value"]).tolist() == \
        csv.loc[mapped, "osm_tag"].tolist()
    # the documented precedence: Food & Drink / Bakery -> cafe, Retail Goods / Food & Beverages / Bakery -> bakery
    rows = {(r.sg_category, r.sg_subcategory): r.channel for r in table.itertuples()}
    assert rows[("Bakery", "")] == "cafe" and rows[("Food & Beverages", "Bakery")] == "bakery"
