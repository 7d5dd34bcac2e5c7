"""Who's On First through geos2vec, audited against plain pandas + s2sphere on the raw venue files.

Reference: venues kept by the documented rules (valid coordinates, stacks of >= min_stack at one exact lon/lat,
is_current != 0, a category, a crosswalk row with a channel: the subcategory's row, else the category's default
row, read row by row from the CSV), counted per level-12 cell (s2sphere) and channel; the coverage is each state's
convex hull without the venues that have fewer than 5 others in their level-8 cell and its 8 neighbours.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
