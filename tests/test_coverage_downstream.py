"""Missing is not empty downstream of ``count_features(pois, roads, coverage=...)``: dask rasterize, the
evaluation baselines and ``geos2vec-evaluate --features`` keep the coverage the table records."""

from __future__ import annotations

import warnings

import dask.dataframe as dd
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

import geos2vec.cli_evaluate as C
from geos2vec.cells import cell_polygons, cell_to_latlng, grid_disk
from geos2vec.evaluate import log1p_counts, smoothed_counts, standard_methods
from geos2vec.features import count_features
from geos2vec.raster import rasterize


@pytest.fixture(scope="module")
def la(shared_data):
    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")
    roads = gpd.read_parquet(shared_data / "roads" / "los_angeles.parquet")
    box = tuple(float(v) for v in pois.total_bounds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(pois, roads, coverage=box)
    return pois, roads, box, table


def _inside(cells, box):
    lat, lng = cell_to_latlng(cells)
    return shapely.contains_xy(shapely.box(*box), lng, lat)


def test_dask_rasterize_has_the_layer_availability_of_in_memory(la):
    _, _, box, table = la
    ref = rasterize(table, image_level=8)
    got = rasterize(dd.from_pandas(table, npartitions=3), image_level=8).compute()
    assert "available" in ref.coords and "available" in got.coords
    xr.testing.assert_identical(ref, got)
    # a road-only row whose cell lies wholly beyond the POI box: the road channel, no POI channel
    poi_cols = [c for c in table.columns if c != "road"]
    idx = table.index.to_numpy(np.uint64)
    road_only = idx[(table[poi_cols].to_numpy() == 0).all(axis=1) & (table["road"].to_numpy() > 0)]
    far = road_only[~shapely.intersects(shapely.box(*box), np.asarray(cell_polygons(road_only).values))]
    assert far.size
    avail = got["available"].stack(px=("image", "row", "col")).transpose("px", "feature")
    cells = got["cell_id"].stack(px=("image", "row", "col")).to_numpy()
    at = avail.to_numpy()[np.isin(cells, far)]
    feats = list(got["feature"].values)
    assert at[:, feats.index("road")].all() and not at[:, feats.index("restaurant")].any()


def _reference_mean(table, poi_known, road_known, cell, channel, k):
    """Mean of log1p(count) over the (2k+1)^2 square around ``cell``, over the neighbours known for ``channel``."""
    nb = np.unique(grid_disk(np.array([cell], np.uint64), k)[0])
    known = road_known(nb) if channel == "road" else poi_known(nb)
    vals = [np.log1p(float(table[channel].get(n, 0.0))) for n in nb[known]]
    return float(np.mean(vals)) if vals else 0.0


def _count_features_known(table, box):
    """Neighbours known per layer for a ``count_features(pois, roads, coverage=box)`` table (docs/coverage)."""
    idx = table.index.to_numpy(np.uint64)
    poi_cols = [c for c in table.columns if c != "road"]
    has_poi = set(idx[(table[poi_cols].to_numpy() != 0).any(axis=1)])
    geom = shapely.box(*box)

    def road_known(nb):
        return _inside(nb, box) | np.isin(nb, idx)

    def poi_known(nb):
        inside, row = _inside(nb, box), np.isin(nb, idx)
        far = ~shapely.intersects(geom, np.asarray(cell_polygons(nb).values))
        return inside | (row & ~far) | np.isin(nb, list(has_poi))

    return poi_known, road_known


def test_smoothed_counts_default_to_the_tables_own_coverage(la):
    _, _, box, table = la
    poi_known, road_known = _count_features_known(table, box)
    got = smoothed_counts(table)
    methods = standard_methods(table.index.to_numpy(), table)["smoothed counts"]
    for cell in table.index.to_numpy(np.uint64)[::3]:
        for channel in ("restaurant", "parking", "road"):
            for k in (1, 2):
                ref = _reference_mean(table, poi_known, road_known, cell, channel, k)
                col = f"{channel}@{2 * k + 1}x{2 * k + 1}"
                assert got.loc[cell, col] == pytest.approx(ref, abs=1e-12), (cell, col)
                assert methods.loc[cell, col] == pytest.approx(ref, abs=1e-12), (cell, col)


def test_log1p_counts_drops_unknown_cells_by_the_tables_coverage(la):
    _, _, box, table = la
    idx = table.index.to_numpy(np.uint64)
    ring = np.unique(grid_disk(idx, 2).ravel())
    got = log1p_counts(table, ring)
    keep = np.sort(ring[_inside(ring, box) | np.isin(ring, idx)])
    assert np.array_equal(got.index.to_numpy(np.uint64), keep) and keep.size < ring.size
    ref = np.log1p(table.reindex(keep, fill_value=0).to_numpy(float))
    np.testing.assert_allclose(got.to_numpy(), ref)


def test_cli_features_files_keep_their_coverage_and_lacking_channels(la, tmp_path):
    pois, roads, box, table = la
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tp = count_features(pois, coverage=box).drop(columns=["road"])   # a POI file without a road column
        tr = count_features(roads=roads, coverage=box)[["road"]]          # a road file of its channel only
    tr.attrs["coverage"] = {"geometry": shapely.box(*box).wkt, "channels": {}}
    tp.to_parquet(tmp_path / "pois.parquet")
    tr.to_parquet(tmp_path / "roads.parquet")
    out = C._load_counts([tmp_path / "pois.parquet", tmp_path / "roads.parquet"], None)
    ref = pd.concat([tp, tr]).fillna(0.0).groupby(level=0).sum()
    assert list(out.columns) == list(ref.columns)
    np.testing.assert_array_equal(out.index.to_numpy(np.uint64), ref.index.to_numpy(np.uint64))
    np.testing.assert_array_equal(out.to_numpy(float), ref.to_numpy(float))
    assert "coverage" in out.attrs
    # a POI channel is known in the box and at the POI file's rows (not at the road-only rows beyond the box);
    # the road channel in the box and at every row (combine_coverage: summed rows cannot tell their part)
    p_idx, o_idx = tp.index.to_numpy(np.uint64), out.index.to_numpy(np.uint64)

    def poi_known(nb):
        return _inside(nb, box) | np.isin(nb, p_idx)

    def road_known(nb):
        return _inside(nb, box) | np.isin(nb, o_idx)

    got = standard_methods(out.index.to_numpy(), out)["smoothed counts"]
    for cell in out.index.to_numpy(np.uint64)[::3]:
        for channel in ("restaurant", "road"):
            ref_v = _reference_mean(out, poi_known, road_known, cell, channel, 2)
            assert got.loc[cell, f"{channel}@5x5"] == pytest.approx(ref_v, abs=1e-12), (cell, channel)
