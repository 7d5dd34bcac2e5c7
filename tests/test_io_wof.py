"""read_wof: Who's On First venues -> POIs via the SimpleGeo crosswalk (synthetic files, errors, real data)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geos2vec.features import count_features
from geos2vec.io import read_wof
from geos2vec.io.wof import load_crosswalk
from geos2vec.ontology import load_ontology
from conftest import load_script  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CROSSWALK_CSV = ROOT / "geos2vec" / "data" / "crosswalk_simplegeo_v1.csv"


# --------------------------------------------------------------------------- synthetic data
def _venues(rows):
    """Frame in the layout of the shared us-<state>.parquet files from (n, lon, lat, type, cat, sub, is_current)."""
    recs = []
    for n, lon, lat, typ, cat, sub, cur in rows:
        for _ in range(n):
            recs.append({"name": f"v{len(recs)}", "lon": lon, "lat": lat, "sg_type": typ, "sg_category": cat,
                         "sg_subcategory": sub, "tags": None, "mz_categories": None, "is_current": cur})
    df = pd.DataFrame(recs)
    df.insert(0, "wof_id", np.arange(1000, 1000 + len(df), dtype=np.int64))
    df["sg_type"] = df["sg_type"].astype("category")  # as in the real files
    return df


# Hand-checked expectations for SYNTH (min_stack=50):
#   60 restaurants at one point -> a stack, dropped; 49 at another point -> kept (49 < 50)
#   3 closed (is_current=0) dropped; 2 banks with unknown status (-1) kept
#   3 invalid coordinates (NaN, lat 95, 0/0), 2 without a category,
#   5 + 3 + 1 unmapped (lawyers, beer wholesale, a category the crosswalk lacks)
#   "None" subcategory -> the category row (Donuts -> cafe); subcategory rows override category rows
SYNTH = [
    (60, -71.40, 41.82, "Food & Drink", "Restaurant", None, np.nan),
    (49, -71.30, 41.70, "Food & Drink", "Restaurant", None, 1.0),
    (3, -71.31, 41.71, "Food & Drink", "Coffee & Tea", None, 0.0),
    (2, -71.32, 41.72, "Services", "Banks & Credit Unions", "Bank", -1.0),
    (1, np.nan, 41.73, "Food & Drink", "Restaurant", None, np.nan),
    (1, -71.33, 95.00, "Food & Drink", "Restaurant", None, np.nan),
    (1, 0.0, 0.0, "Food & Drink", "Restaurant", None, np.nan),
    (2, -71.34, 41.74, None, None, None, np.nan),
    (5, -71.35, 41.75, "Services", "Professional", "Lawyer & Legal Services", np.nan),
    (3, -71.36, 41.76, "Manufacturing & Wholesale Goods", "Wholesale", "Beer", np.nan),
    (1, -71.37, 41.77, "Public Place", "Space Port", None, np.nan),
    (2, -71.38, 41.78, "Food & Drink", "Donuts", "None", np.nan),
    (2, -71.39, 41.79, "Retail Goods", "Food & Beverages", "Bakery", np.nan),
    (1, -71.41, 41.80, "Food & Drink", "Bakery", None, np.nan),
    (4, -71.42, 41.81, "Retail Goods", "Shopping", "Pharmacy", 1.0),
]
EXPECTED_CHANNELS = {"restaurant": 49, "cafe": 2 + 1, "bank": 2, "bakery": 2, "pharmacy": 4}


@pytest.fixture
def synth_file(tmp_path):
    path = tmp_path / "us-zz.parquet"
    _venues(SYNTH).to_parquet(path)
    return path


def _read(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_wof(*args, **kwargs)


def _count(pois):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # every returned venue must land in a channel
        return count_features(pois=pois)


def test_synthetic_drops_and_report(synth_file):
    with pytest.warns(UserWarning, match="coordinate stack") as rec:
        pois = read_wof(synth_file)
    assert len(rec) == 1 and rec[0].filename == __file__  # one warning, pointing at the caller
    msg = str(rec[0].message)
    assert "60 in 1 coordinate stack" in msg and "3 not current" in msg and "9 whose category" in msg
    rep = pois.attrs["wof_report"]
    n_total = sum(r[0] for r in SYNTH)
    assert rep["n_read"] == n_total and rep["n_returned"] == len(pois) == sum(EXPECTED_CHANNELS.values())
    assert rep["dropped"] == {"invalid_coordinates": 3, "stacked": 60, "not_current": 3, "uncategorised": 2,
                              "unmapped_category": 9}
    assert rep["n_read"] == rep["n_returned"] + sum(rep["dropped"].values())
    assert rep["stacks"] == {"n_locations": 1, "largest": [{"lon": -71.40, "lat": 41.82, "n_venues": 60}]}
    assert rep["n_status_unknown_kept"] == 2
    assert rep["top_unmapped"] == {"Services / Professional / Lawyer & Legal Services": 5,
                                   "Manufacturing & Wholesale Goods / Wholesale / Beer": 3,
                                   "Public Place / Space Port": 1}
    assert rep["not_in_crosswalk"] == ["Space Port"]
    n_cat = sum(EXPECTED_CHANNELS.values()) + 9
    assert rep["n_categorised"] == n_cat and rep["share_mapped"] == pytest.approx(len(pois) / n_cat)
    assert rep["per_state"] == {"zz": [n_total, len(pois)]}

    assert pois.crs.to_epsg() == 4326 and (pois.geom_type == "Point").all()
    assert list(pois.columns) == ["wof_id", "name", "state", "sg_type", "sg_category", "sg_subcategory",
                                  "osm_key", "fclass", "geometry"]
    assert (pois["state"] == "zz").all()
    assert pois["sg_subcategory"].isna().sum() == 49 + 2 + 1  # missing, and the literal "None", come back missing
    donuts = pois[pois["sg_category"] == "Donuts"]
    assert list(zip(donuts["osm_key"], donuts["fclass"])) == [("amenity", "cafe")] * 2
    # subcategory row (Retail Goods / Food & Beverages / Bakery) vs category row (Food & Drink / Bakery)
    assert set(pois.loc[pois["sg_category"] == "Food & Beverages", "fclass"]) == {"bakery"}
    assert set(pois.loc[pois["sg_category"] == "Bakery", "fclass"]) == {"cafe"}

    table = _count(pois)
    totals = table.sum()
    assert {c: int(v) for c, v in totals.items() if v} == EXPECTED_CHANNELS
    # the same by an independent pandas pass over the file, with the crosswalk read as plain CSV
    raw = pd.read_parquet(synth_file)
    size = raw.groupby(["lon", "lat"])["wof_id"].transform("size")
    ok = raw["lon"].between(-180, 180) & raw["lat"].between(-90, 90) & ~((raw["lon"] == 0) & (raw["lat"] == 0))
    ok &= (size < 50) & (raw["is_current"] != 0)
    ok &= raw["sg_category"].notna()
    assert _pandas_channels(raw[ok]) == EXPECTED_CHANNELS
    assert table.attrs["report"]["n_pois_counted"] == len(pois)


def _pandas_channels(venues: pd.DataFrame) -> dict:
    """Channel totals of venues via the crosswalk CSV: subcategory row, else the category row."""
    cw = pd.read_csv(CROSSWALK_CSV, comment="#", dtype=str, keep_default_na=False)
    v = venues[["sg_category", "sg_subcategory"]].astype(object).fillna("").replace("None", "")
    by_sub = v.merge(cw[["sg_category", "sg_subcategory", "channel"]], how="left", on=["sg_category", "sg_subcategory"])
    by_cat = v.merge(cw.loc[cw["sg_subcategory"] == "", ["sg_category", "channel"]], how="left", on="sg_category")
    channel = by_sub["channel"].where(by_sub["channel"].notna(), by_cat["channel"]).fillna("")
    counts = channel[channel != ""].value_counts()
    return {str(k): int(n) for k, n in counts.items()}


def test_synthetic_options(synth_file):
    strict = _read(synth_file, drop_unknown_status=True)
    rep = strict.attrs["wof_report"]
    assert rep["dropped"]["status_unknown"] == 2 and "bank" not in set(strict["fclass"])
    loose = _read(synth_file, min_stack=None)
    assert loose.attrs["wof_report"]["dropped"]["stacked"] == 0
    assert (loose["sg_category"] == "Restaurant").sum() == 49 + 60
    small = _read(synth_file, min_stack=49)  # the 49 are a stack now too (>= min_stack)
    assert small.attrs["wof_report"]["stacks"]["n_locations"] == 2
    assert (small["sg_category"] == "Restaurant").sum() == 0
    # a custom crosswalk; osm_tag left out: the channel's first ontology tag is used
    custom = pd.DataFrame({"sg_category": ["Restaurant", "Professional"], "sg_subcategory": ["", ""],
                           "channel": ["fast_food", ""]})
    pois = _read(synth_file, crosswalk=custom)
    assert set(zip(pois["osm_key"], pois["fclass"])) == {("amenity", "fast_food")} and len(pois) == 49
    assert pois.attrs["wof_report"]["crosswalk"] == "custom"
    assert int(_count(pois)["fast_food"].sum()) == 49
    # the source can record fast food and nothing else: with coverage, every other POI channel is missing
    assert pois.attrs["source_tags"] == ["amenity=fast_food"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = count_features(pois=pois, coverage="infer")
    from geos2vec.coverage import get_coverage

    assert set(get_coverage(table)[1]) == (set(load_ontology().all_channels) - {"fast_food"})


def test_files_directories_and_states(tmp_path, synth_file):
    d = tmp_path / "wof"
    d.mkdir()
    _venues([(3, -96.0, 39.0, "Food & Drink", "Restaurant", None, 1.0)]).to_parquet(d / "us-ks.parquet")
    _venues([(2, -93.0, 42.0, "Retail Goods", "Shopping", "Pharmacy", 1.0)]).to_parquet(d / "us-ia.parquet")
    both = read_wof(d)  # nothing dropped: no warning
    assert sorted(both["state"]) == ["ia"] * 2 + ["ks"] * 3
    assert both.attrs["wof_report"]["files"] == ["us-ia.parquet", "us-ks.parquet"]
    only = read_wof(d, states=["KS"])
    assert set(only["state"]) == {"ks"} and len(only) == 3
    assert len(read_wof(d, states="ia")) == 2
    listed = _read([d / "us-ks.parquet", synth_file])
    assert listed.attrs["wof_report"]["per_state"]["ks"] == [3, 3] and set(listed["state"]) == {"ks", "zz"}
    with pytest.raises(FileNotFoundError, match=r"state\(s\) \['nd'\].*available: \['ia', 'ks'\]"):
        read_wof(d, states=["ks", "nd"])


def test_errors(tmp_path, synth_file):
    with pytest.raises(FileNotFoundError, match="no Who's On First venue file"):
        read_wof(tmp_path / "missing.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no \.parquet files .* us-<state>\.parquet"):
        read_wof(tmp_path / "empty")
    with pytest.raises(ValueError, match="empty list"):
        read_wof([])
    with pytest.raises(TypeError, match="path_or_dir"):
        read_wof(42)
    with pytest.raises(TypeError, match="str or path-like"):
        read_wof([synth_file, 3])
    bad = tmp_path / "us-xx.parquet"
    _venues(SYNTH).drop(columns=["lat", "sg_subcategory"]).to_parquet(bad)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['lat', 'sg_subcategory'\].*needs \['wof_id', 'lon'"):
        read_wof(bad)
    junk = tmp_path / "us-yy.parquet"
    junk.write_text("not parquet")
    with pytest.raises(ValueError, match="could not read .* as Parquet"):
        read_wof(junk)
    for bad_stack in (1, 2.5, True):
        with pytest.raises(ValueError, match="min_stack"):
            read_wof(synth_file, min_stack=bad_stack)
    # crosswalks
    with pytest.raises(FileNotFoundError, match="no crosswalk file"):
        read_wof(synth_file, crosswalk=tmp_path / "nope.csv")
    with pytest.raises(TypeError, match="crosswalk must be"):
        read_wof(synth_file, crosswalk=3)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['channel'\]"):
        load_crosswalk(pd.DataFrame({"sg_category": ["Restaurant"], "sg_subcategory": [""]}))
    with pytest.raises(ValueError, match=r"channel\(s\) \['eatery'\]"):
        load_crosswalk(pd.DataFrame({"sg_category": ["Restaurant"], "sg_subcategory": [""], "channel": ["eatery"]}))
    with pytest.raises(ValueError, match="'road' counts roads"):
        load_crosswalk(pd.DataFrame({"sg_category": ["Restaurant"], "sg_subcategory": [""], "channel": ["road"]}))
    with pytest.raises(ValueError, match="duplicate"):
        load_crosswalk(pd.DataFrame({"sg_category": ["Restaurant"] * 2, "sg_subcategory": ["", ""],
                                     "channel": ["restaurant", "cafe"]}))
    with pytest.raises(ValueError, match="maps to channel 'cafe'.*not to 'restaurant'"):
        load_crosswalk(pd.DataFrame({"sg_category": ["Restaurant"], "sg_subcategory": [""],
                                     "channel": ["restaurant"], "osm_tag": ["amenity=cafe"]}))


def test_packaged_crosswalk():
    cw = load_crosswalk()  # checks every row against the ontology
    raw = pd.read_csv(CROSSWALK_CSV, comment="#", dtype=str, keep_default_na=False)
    assert list(raw.columns) == ["sg_type", "sg_category", "sg_subcategory", "osm_tag", "channel", "n_venues", "note"]
    assert len(cw) == len(raw) and not raw.duplicated(["sg_category", "sg_subcategory"]).any()
    onto = load_ontology()
    mapped = cw[cw["channel"] != ""]
    codes = onto.lookup(mapped["osm_value"].tolist(), keys=mapped["osm_key"].tolist())
    assert [onto.channels[c] for c in codes] == mapped["channel"].tolist()
    assert set(raw.loc[raw["sg_subcategory"] == "", "sg_category"]) == set(raw["sg_category"])  # a default per category
    assert raw["n_venues"].astype(int).sum() == 1_660_678  # categorised venues of the 22 states (SOURCES.md)
    # no forcing: offices, trades, wholesale and manufacturing stay out of every channel
    for typ in ("Manufacturing & Wholesale Goods",):
        assert (raw.loc[raw["sg_type"] == typ, "channel"] == "").all()
    for cat in ("Professional", "Insurance", "Real Estate", "Building & Trades"):
        assert (raw.loc[raw["sg_category"] == cat, "channel"] == "").all()
    pairs = {(c, s): ch for c, s, ch in zip(raw["sg_category"], raw["sg_subcategory"], raw["channel"])}
    # what SimpleGeo cannot tell apart (pubs from bars, benches, hydrants...) is missing in its venues, not zero
    recorded = set(mapped["channel"])
    assert {"restaurant", "cafe", "bar", "hotel"} <= recorded
    assert not {"pub", "bench", "fire_hydrant", "charging_station"} & recorded
    assert pairs[("Restaurant", "")] == "restaurant" and pairs[("Coffee & Tea", "")] == "cafe"
    assert pairs[("Shopping", "Pharmacy")] == "pharmacy" and pairs[("Banks & Credit Unions", "Bank")] == "bank"


# --------------------------------------------------------------------------- real data
def test_real_rhode_island(shared_data):
    path = shared_data / "wof" / "us-ri.parquet"
    with pytest.warns(UserWarning, match="read_wof kept"):
        pois = read_wof(path)
    rep = pois.attrs["wof_report"]
    raw = pd.read_parquet(path)
    assert rep["n_read"] == len(raw) == 54_975
    assert rep["n_read"] == rep["n_returned"] + sum(rep["dropped"].values())
    assert 0.2 < rep["share_mapped"] < 0.8 and rep["n_mapped"] == len(pois)

    # independent pandas pass: valid coordinates, no stack of >= 50, not closed, with a category
    valid = raw["lon"].between(-180, 180) & raw["lat"].between(-90, 90) & ~((raw["lon"] == 0) & (raw["lat"] == 0))
    size = raw[valid].groupby(["lon", "lat"])["wof_id"].transform("size").reindex(raw.index, fill_value=0)
    stacked = valid & (size >= 50)
    closed = valid & ~stacked & (raw["is_current"] == 0)
    kept = valid & ~stacked & ~closed
    categorised = kept & raw["sg_category"].notna()
    assert rep["dropped"]["stacked"] == int(stacked.sum()) > 0
    assert rep["dropped"]["not_current"] == int(closed.sum())
    assert rep["dropped"]["uncategorised"] == int((kept & raw["sg_category"].isna()).sum())
    expected = _pandas_channels(raw[categorised])
    assert rep["n_categorised"] == int(categorised.sum())
    assert rep["share_mapped"] == pytest.approx(sum(expected.values()) / int(categorised.sum()))

    table = _count(pois)
    got = {c: int(v) for c, v in table.sum().items() if v}
    assert got == expected
    assert table["road"].sum() == 0  # no roads in Who's On First (the channel is missing, not zero: see docs)
    assert set(got) <= set(load_ontology().channels)


def test_crosswalk_counts_are_current(shared_data):
    """scripts/build_wof_crosswalk.py --check: n_venues match the 22 states and every class has a reviewed row."""
    mod = load_script("build_wof_crosswalk")
    assert mod.main(["--check", "--data", str(shared_data / "wof")]) == 0


def test_concat_of_states_keeps_the_missing_channels(shared_data):
    """pd.concat drops attrs (each state has its own report); the venues are recognised by their columns."""
    from geos2vec.coverage import get_coverage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        de = read_wof(shared_data / "wof", states=["de"])
        ri = read_wof(shared_data / "wof", states=["ri"])
        together = read_wof(shared_data / "wof", states=["de", "ri"])
        both = pd.concat([de, ri])
        assert "source_tags" not in both.attrs  # what pandas does: the reason for the fallback
        t_concat = count_features(both, coverage="infer")
        t_together = count_features(together, coverage="infer")
    assert t_concat.equals(t_together)
    assert t_concat.attrs["coverage"] == t_together.attrs["coverage"]
    missing = set(get_coverage(t_concat)[1])
    # road plus the POI channels no crosswalk tag reaches: computed from the crosswalk, not from the code
    cw = load_crosswalk()
    onto = load_ontology()
    has = cw["channel"] != ""
    reached = {onto.channels[c] for c in onto.lookup(cw.loc[has, "osm_value"].tolist(),
                                                     keys=cw.loc[has, "osm_key"].tolist())}
    assert missing == {"road"} | (set(onto.channels) - reached)
    assert len(missing) == 36 and {"pub", "bench"} <= missing
    # a frame of other POIs with no source_tags still records every channel
    plain = both.drop(columns=["wof_id"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert set(get_coverage(count_features(plain, coverage="infer"))[1]) == {"road"}
