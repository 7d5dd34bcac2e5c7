"""Training images for a coverage-aware S2Vec model, packed for a machine without geos2vec's stack.

Sources (``../shared/data``, read ``SOURCES.md``):

* Who's On First venues of the 22 states (``geos2vec.io.read_wof``; no roads: the ``road`` channel is
  *unavailable* there, not zero), coverage = the convex hull of each state's venues without its isolated,
  mis-geocoded ones (``geos2vec.io.venue_coverage``);
* the OSM cities (POI/road GeoParquet; coverage = their POI box) and every ``.osm.pbf`` extract (coverage = the
  file's header box, else the extent of what it holds). An extract filtered to roads
  (``pois.attrs["looks_filtered"]``, six of the sixteen) is counted from its roads only: its POI channels are
  *missing* there, not zero (before 2026-11-29 they counted as zeros; the bundled model was trained so).

Everything is counted with the default ontology at level 12 and rasterized into level-8 images. Training
views are 16x16 windows at stride 8 on the level-12 grid (``geos2vec.raster.windows``) of every source but the
held-out ones; validation views are the plain level-8 images of the held-out states and city.

Per pixel the file records whether the source has data there (``covered``) and, for each group of channels
that some source lacks, whether the pixel's source has them (``avail``; roads, and the POI categories SimpleGeo
does not distinguish, are missing in Who's On First states; ``road_ok`` is the road channel's group, kept for
older readers): the loss of ``scripts/train_gpu.py`` counts covered pixels and available channels only, so the
model is no longer taught that places end where a data box ends, nor that Kentucky has no pubs. The
normalization statistics leave unavailable values out too (``FeatureStats.fit`` of a table with coverage).

    python scripts/prepare_training_data.py --out gpu/data.npz [--holdout-states ky,nm --holdout-city san_jose]

The output is sparse (non-zero counts only) and small enough to carry to a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _pbf_box(path, osm):
    """The extract's header box; the extent of its data where the header has none, or a placeholder.

    ``heidelberg.test.pbf``'s header box is (0, 0, 180, 90), a quarter of the globe: as coverage it made every
    empty cell of that quarter known-empty (0.56 % of the training pixels, half of the road channel's loss
    pixels). A header box that the data fill less than 1 % of is not taken (``count_features`` warns of it).
    """
    import osmium
    import shapely

    bounds = np.vstack([g.total_bounds for g in (osm.pois, osm.roads) if len(g)])
    data = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
    try:
        box = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING).header().box()
        if box.valid():
            head = (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)
            head_box = shapely.box(*head)
            if head_box.area and shapely.box(*data).intersection(head_box).area >= 0.01 * head_box.area:
                return head
    except Exception:  # noqa: BLE001 - a header without a box: use what the file holds
        pass
    return data


def sources(data: Path):
    """``{name: (count table, coverage polygon)}`` for every source (the channels it lacks are in the table's
    coverage, ``geos2vec.coverage.get_coverage``)."""
    import geopandas as gpd
    import shapely

    from geos2vec.evaluate.tasks import CITY_BOXES
    from geos2vec.features import count_features
    from geos2vec.io import read_osm, read_wof, venue_coverage

    out, roads_only = {}, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # drop reports stay in attrs
        venues = read_wof(data / "wof")
        for state, g in venues.groupby("state"):
            hull = venue_coverage(g)  # without mis-geocoded venues (Delaware's hull was 46x the state)
            out[f"wof:{state}"] = (count_features(pois=g, coverage=hull), hull)
        for city, box in CITY_BOXES.items():
            pois = gpd.read_parquet(data / "pois" / f"{city}.parquet")
            roads = gpd.read_parquet(data / "roads" / f"{city}.parquet")
            out[f"osm:{city}"] = (count_features(pois, roads, coverage=shapely.box(*box)), shapely.box(*box))
        for path in sorted((data / "osm").glob("*.pbf")):
            osm = read_osm(path)
            name = path.name.split(".")[0]
            box = shapely.box(*_pbf_box(path, osm))
            # an extract filtered to roads: its POIs are not all the place holds, so its POI channels are
            # missing (pois=None), not zero; its roads are observed
            pois = None if osm.pois.attrs.get("looks_filtered") else osm.pois
            if pois is None:
                roads_only.append(name)
            out[f"pbf:{name}"] = (count_features(pois, osm.roads, coverage=box), box)
    if roads_only:
        print(f"roads only (filtered extracts, POI channels missing): {', '.join(roads_only)}")
    return out


def pixel_masks(cell_ids: np.ndarray, srcs: dict, groups: list):
    """``covered`` (bool, the shape of ``cell_ids``) and, for each channel group of :func:`channel_groups`, where
    a source that has those channels covers the pixel (``(len(groups),) + cell_ids.shape``)."""
    import shapely

    from geos2vec import cell_to_latlng

    flat = cell_ids.ravel()
    lat, lng = cell_to_latlng(flat)
    covered = np.zeros(flat.shape, bool)
    avail = np.zeros((len(groups), flat.size), bool)
    for name, (_, cov) in srcs.items():
        shapely.prepare(cov)
        inside = shapely.contains_xy(cov, lng, lat)
        covered |= inside
        for g, (lacking, _) in enumerate(groups):
            if name not in lacking:
                avail[g] |= inside
    return covered.reshape(cell_ids.shape), avail.reshape((len(groups),) + cell_ids.shape)


def channel_groups(srcs: dict, channels: list) -> list:
    """``[(sources lacking them, channels)]``: the channels some source lacks, grouped by the sources that lack
    them (sorted, deterministic)."""
    from geos2vec.coverage import get_coverage

    lacks = {k: set(get_coverage(t)[1]) for k, (t, _) in srcs.items()}  # parsed once per source
    groups = {}
    for c in channels:
        lacking = tuple(k for k in srcs if c in lacks[k])
        if lacking:
            groups.setdefault(lacking, []).append(c)
    return sorted(groups.items())


def pack(values: np.ndarray):
    """Non-zero counts of a (views, pixels, channels) array: flat index and value."""
    flat = values.reshape(-1)
    nz = np.flatnonzero(flat)
    return nz.astype(np.int64), flat[nz].astype(np.float32)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "gpu" / "data.npz")
    ap.add_argument("--holdout-states", default="ky,nm")
    ap.add_argument("--holdout-city", default="san_jose")
    ap.add_argument("--stride", type=int, default=8)
    args = ap.parse_args(argv)

    from geos2vec import FeatureStats
    from geos2vec.features import combine_counts
    from geos2vec.model import load_model
    from geos2vec.raster import rasterize, windows

    t0 = time.perf_counter()
    srcs = sources(args.data)
    held = {f"wof:{s}" for s in args.holdout_states.split(",")} | {f"osm:{args.holdout_city}"}
    channels = list(load_model("default").channels)  # the ontology's 115 POI channels + road
    train_table = combine_counts([t for k, (t, _) in srcs.items() if k not in held]).reindex(
        columns=channels, fill_value=0)
    val_table = combine_counts([t for k, (t, _) in srcs.items() if k in held]).reindex(
        columns=channels, fill_value=0)
    stats = FeatureStats.fit(train_table, log1p=True)  # unavailable values left out (the tables' coverage)
    groups = channel_groups(srcs, channels)
    train_win = windows(rasterize(train_table), size=16, stride=args.stride)
    val_img = rasterize(val_table)
    packed = {}
    for name, da, cells in (("train", train_win, train_win["cell_id"].values),
                            ("val", val_img, val_img["cell_id"].values)):
        values = np.asarray(da.values, dtype=np.float32).reshape(da.shape[0], -1, da.shape[-1])
        cov, avail = pixel_masks(cells.reshape(da.shape[0], -1), srcs, groups)
        road = avail[next(g for g, (_, chans) in enumerate(groups) if "road" in chans)]
        idx, val = pack(values)
        packed.update({f"{name}_idx": idx, f"{name}_val": val, f"{name}_shape": np.array(values.shape),
                       f"{name}_covered": cov, f"{name}_avail": avail, f"{name}_road_ok": road})
        print(f"{name}: {values.shape[0]} views, {cov.mean():.1%} covered pixels, {road.mean():.1%} with roads, "
              f"{(values.sum(-1) > 0).mean():.1%} pixels with a feature")
    meta = {"channels": channels, "stats": stats.to_dict(), "mean": np.asarray(stats.mean).tolist(),
            "std": np.asarray(stats.std).tolist(), "holdout": sorted(held), "avail_groups": [chans for _, chans in groups],
            "sources": {k: int(len(t)) for k, (t, _) in srcs.items()}, "stride": args.stride}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **packed)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
