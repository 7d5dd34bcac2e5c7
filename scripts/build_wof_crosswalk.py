"""Refresh the n_venues column of the SimpleGeo -> ontology crosswalk and check its coverage.

The mapping decisions (osm_tag, channel, note) live in ``geos2vec/data/crosswalk_simplegeo_v1.csv`` and are
edited by hand; this script never changes them. It counts, over every ``us-<state>.parquet`` venue file of
Who's On First (all venues with a category, whatever their status or coordinates), how many venues each row
resolves (a subcategory row; otherwise the category's default row), writes those counts to ``n_venues`` and
checks that

* every category in the data has a default row (else its venues would be "not in crosswalk"),
* every (category, subcategory) in the data has its own row (reviewed, not just defaulted),
* every row names a channel of ontology v1 and an osm_tag mapping to it (``geos2vec.io.wof.load_crosswalk``).

Usage::

    python scripts/build_wof_crosswalk.py [--data ../shared/data/wof] [--check]

``--check`` writes nothing and exits 1 when a count is stale or coverage has a gap. Data from Who's On First (CC0).
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "geos2vec" / "data" / "crosswalk_simplegeo_v1.csv"


def observed_counts(data_dir) -> pd.DataFrame:
    """Venues per (sg_type, sg_category, sg_subcategory) over all venue files; '' for a missing subcategory."""
    files = sorted(glob.glob(os.path.join(data_dir, "*.parquet")))
    if not files:
        raise SystemExit(f"no .parquet files in {data_dir}")
    cols = ["sg_type", "sg_category", "sg_subcategory"]
    df = pd.concat([pd.read_parquet(f, columns=cols) for f in files], ignore_index=True)
    for c in cols:
        df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str).str.strip()
    df.loc[df["sg_subcategory"] == "None", "sg_subcategory"] = ""  # spelled "None" in some files
    df = df[df["sg_category"] != ""]
    out = df.groupby(cols, as_index=False).size().rename(columns={"size": "n"})
    print(f"{len(files)} files, {len(df):,} categorised venues, {out['sg_category'].nunique()} categories, "
          f"{len(out)} (type, category, subcategory) classes")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "wof"))
    ap.add_argument("--csv", default=str(CSV))
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 on stale counts or gaps")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from geos2vec.io.wof import load_crosswalk

    with open(args.csv, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    header = [ln for ln in lines if ln.startswith("#")]
    table = pd.read_csv(args.csv, comment="#", dtype=str, keep_default_na=False)
    load_crosswalk(table)  # raises on unknown channels, duplicates, osm_tag/channel mismatches

    obs = observed_counts(args.data)
    rows = {(c, s): i for i, (c, s) in enumerate(zip(table["sg_category"], table["sg_subcategory"]))}
    counts = [0] * len(table)
    problems = []
    for r in obs.itertuples(index=False):
        i = rows.get((r.sg_category, r.sg_subcategory))
        if i is None and r.sg_subcategory:
            problems.append(f"no row of its own for {r.sg_category} / {r.sg_subcategory} ({r.n} venues)")
            i = rows.get((r.sg_category, ""))
        if i is None:
            problems.append(f"no row at all for category {r.sg_category!r} ({r.n} venues)")
            continue
        counts[i] += int(r.n)
    types = obs.drop_duplicates("sg_category").set_index("sg_category")["sg_type"]
    for i, (c, t) in enumerate(zip(table["sg_category"], table.get("sg_type", [""] * len(table)))):
        if c in types.index and t and types[c] != t:
            problems.append(f"row {i}: {c} has sg_type {t!r} in the crosswalk, {types[c]!r} in the data")
    unseen = [f"{c} / {s}" for (c, s), i in rows.items() if s and counts[i] == 0]

    old = pd.to_numeric(table["n_venues"], errors="coerce").fillna(-1).astype(int).tolist() \
        if "n_venues" in table.columns else [-1] * len(table)
    stale = sum(a != b for a, b in zip(old, counts))
    mapped = sum(n for n, ch in zip(counts, table["channel"]) if ch)
    total = sum(counts)
    print(f"{len(table)} rows; {mapped:,} of {total:,} categorised venues ({mapped / total:.1%}) map to a channel; "
          f"{table.loc[table['channel'] != '', 'channel'].nunique()} channels used")
    by_channel = pd.Series(counts, index=table["channel"].replace("", "(none)")).groupby(level=0).sum()
    print("venues per channel (top 15):", by_channel.sort_values(ascending=False).head(15).to_dict())
    if unseen:
        print(f"{len(unseen)} subcategory rows not seen in the data: {unseen[:10]}")
    for p in problems:
        print("GAP:", p)
    if args.check:
        if stale:
            print(f"{stale} n_venues value(s) are stale; run without --check to refresh")
        return 1 if (stale or problems) else 0

    table["n_venues"] = counts
    with open(args.csv, "w", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(header) + "\n")
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(list(table.columns))
        w.writerows(table.itertuples(index=False, name=None))
    print(f"wrote {args.csv} ({stale} count(s) changed)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
