"""Fixes from a review of the 2026-11-29 commits: each test failed on the code before them."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import geos2vec.evaluate as ev


@pytest.mark.parametrize("one", [1.0, np.float64(1.0), "1.0", 1, np.bool_(True), True, " TRUE "])
def test_verdict_reads_a_float_or_text_one_test_set_as_true(one):
    """A paired.csv whose one_test_set column came back as floats (1.0) or text "1.0" read as False."""
    row = SimpleNamespace(wins=20, losses=0, n_splits=20, one_test_set=one, split="region:ky")
    assert ev.verdict(row) == "A ahead on one test set"


@pytest.mark.parametrize("one", [0.0, "0.0", "False", 0, np.bool_(False)])
def test_verdict_reads_a_float_or_text_false_as_false(one):
    row = SimpleNamespace(wins=20, losses=0, n_splits=20, one_test_set=one, split="region:ky")
    assert ev.verdict(row) == "A beats B"


def test_verdict_of_unreadable_text_follows_the_split():
    for split, expected in (("holdout", "A ahead on one test set"), ("blocked", "A beats B")):
        assert ev.verdict(SimpleNamespace(wins=20, losses=0, n_splits=20, one_test_set="?", split=split)) == expected


def _counts():
    from geos2vec.features import count_features

    rng = np.random.default_rng(5)
    pois = gpd.GeoDataFrame({"fclass": rng.choice(["cafe", "bank", "school"], 300)},
                            geometry=gpd.points_from_xy(rng.uniform(-74.0, -73.95, 300), rng.uniform(40.7, 40.75, 300)),
                            crs="EPSG:4326")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return count_features(pois, level=12)


def test_suite_cache_serves_the_fine_tuned_models_embeddings_not_the_loaded_ones(tmp_path):
    """After load_model + training, numpy_weights stay set but embed uses the Keras model; the cache key read the
    NumPy weights, so the suite served the embeddings of the model before training."""
    pytest.importorskip("keras")
    from geos2vec.evaluate.suite import _embeddings
    from geos2vec.model import load_model

    counts = _counts()
    cells = np.asarray(counts.index[:6], dtype=np.uint64)
    model = load_model("default")
    model.ensure_keras()
    before = _embeddings(cells, counts, model, ("patch",), "S2Vec", tmp_path)["S2Vec (patch)"]
    km = model.keras_model
    km.set_weights([w * 0.5 for w in km.get_weights()])  # what a fine-tuning fit does: new Keras weights
    assert model.numpy_weights is not None
    fresh = ev.model_embeddings(cells, counts, model, ("patch",), name="S2Vec")["S2Vec (patch)"]
    cached = _embeddings(cells, counts, model, ("patch",), "S2Vec", tmp_path)["S2Vec (patch)"]
    assert not np.allclose(fresh.to_numpy(), before.to_numpy())  # the weights change the vectors
    np.testing.assert_allclose(cached.to_numpy(), fresh.to_numpy(), rtol=1e-6, atol=1e-6)
    assert len(list(tmp_path.glob("embeddings-*.parquet"))) == 2


def test_suite_cache_dir_with_a_tilde_is_the_home_folder(tmp_path, monkeypatch):
    """run_suite(cache_dir="~/x") made a folder named "~" in the working directory."""
    pytest.importorskip("keras")
    from geos2vec.evaluate.suite import _embeddings
    from geos2vec.model import load_model

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    counts = _counts()
    _embeddings(np.asarray(counts.index[:3], dtype=np.uint64), counts, load_model("default"), ("patch",), "S2Vec",
                "~/emb-cache")
    assert list((home / "emb-cache").glob("embeddings-*.parquet"))
    assert not (work / "~").exists()
    assert isinstance(counts, pd.DataFrame)


def test_evaluate_records_a_geopandas_holdout_as_the_wkt_of_the_area_used():
    """config["holdout"]["polygon"] of a GeoSeries was str(GeoSeries): a repr in its own CRS, not the area."""
    import shapely

    from geos2vec import latlng_to_cell

    lng, lat = np.meshgrid(np.arange(176.05, 184.0, 0.25), np.arange(-19.0, -15.0, 0.25))
    cells = np.unique(latlng_to_cell(lat.ravel(), ((lng.ravel() + 180) % 360) - 180, 12))
    rng = np.random.default_rng(0)
    target = pd.Series(rng.normal(size=cells.size), index=pd.Index(cells, dtype=np.uint64), name="y")
    feats = pd.DataFrame(rng.normal(size=(cells.size, 3)), index=target.index)
    halves = [shapely.box(178.0, -19.5, 180.0, -14.5), shapely.box(-180.0, -19.5, -178.0, -14.5)]
    # in Fiji's own CRS, densified first so that its edges stay the degree lines: one area across ±180
    fiji = gpd.GeoSeries(shapely.segmentize(halves, 0.01), crs=4326).to_crs(3460)
    res = ev.evaluate(target, {"f": feats}, split="holdout", holdout={"polygon": fiji}, probes="ridge",
                      n_splits=1, progress=False)
    recorded = shapely.from_wkt(res.config["holdout"]["polygon"])
    assert shapely.hausdorff_distance(recorded, shapely.union_all(halves)) < 1e-6


@pytest.mark.parametrize("lon", [[180.0, -179.0, -179.0], [180.0, -179.0, -179.0, 179.5, 179.5],
                                 [-180.0, -179.0, -179.0, 179.5, 179.5]])
def test_infer_coverage_with_a_point_on_the_antimeridian_is_polygonal(lon):
    """A point exactly on 180 made the hull across ±180 a GeometryCollection (an area plus a point)."""
    import shapely

    from geos2vec.coverage import infer_coverage

    lon = np.array(lon)
    lat = np.array([0.0, 1.0, -1.0, 0.5, -0.5])[:lon.size]
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = infer_coverage(pts)
    assert got.geom_type in ("Polygon", "MultiPolygon")
    # reference: the hull in [0, 360) longitudes by hand, cut at 180, the western part moved back
    hull = shapely.convex_hull(shapely.multipoints(np.c_[np.where(lon < 0, lon + 360, lon), lat]))
    ref = shapely.union_all([shapely.clip_by_rect(hull, 0, -90, 180, 90),
                             shapely.affinity.translate(shapely.clip_by_rect(hull, 180, -90, 360, 90), -360)])
    assert shapely.symmetric_difference(got, ref).area < 1e-9
    assert got.area == pytest.approx(hull.area)


@pytest.mark.parametrize("west", [-71.5, 179.9])
def test_dask_coverage_infer_warns_of_isolated_coordinates_as_in_memory(west):
    """count_features on a dask frame with coverage="infer" never warned that isolated coordinates stretch the hull
    (the partitions sent only their hull vertices); the in-memory path did. Same message, same hull, now."""
    dask_geopandas = pytest.importorskip("dask_geopandas")
    from geos2vec.features import count_features

    rng = np.random.default_rng(1)
    n = 300
    lon = np.r_[west + rng.uniform(0, 0.2, n), -100.0, -100.1, -100.05]
    lon = np.where(lon > 180, lon - 360, lon)  # across ±180 for the second case
    lat = np.r_[rng.uniform(41.7, 41.9, n), 35.0, 35.05, 35.1]
    order = rng.permutation(lon.size)  # isolated points and each cell's points spread over the partitions
    pois = gpd.GeoDataFrame({"fclass": ["cafe"] * lon.size}, geometry=gpd.points_from_xy(lon[order], lat[order]),
                            crs=4326)

    def run(frame):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = count_features(frame, level=12, coverage="infer")
            table = table.compute() if hasattr(table, "compute") else table
        return table, [str(w.message) for w in caught if "isolated" in str(w.message)]

    mem, mem_warned = run(pois)
    lazy, lazy_warned = run(dask_geopandas.from_geopandas(pois, npartitions=4))
    assert len(mem_warned) == 1 and "3 isolated coordinates" in mem_warned[0]
    assert lazy_warned == mem_warned
    assert mem.attrs["coverage"] == lazy.attrs["coverage"]


def test_dask_coverage_infer_is_quiet_without_isolated_coordinates():
    dask_geopandas = pytest.importorskip("dask_geopandas")
    from geos2vec.features import count_features

    rng = np.random.default_rng(2)
    pois = gpd.GeoDataFrame({"fclass": ["cafe"] * 200},
                            geometry=gpd.points_from_xy(rng.uniform(-71.5, -71.3, 200), rng.uniform(41.7, 41.9, 200)),
                            crs=4326)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        count_features(dask_geopandas.from_geopandas(pois, npartitions=3), level=12, coverage="infer")
    assert not [w for w in caught if "isolated" in str(w.message)]


@pytest.mark.parametrize("module, names", [
    ("geos2vec.coverage", ["CoverageWarning"]),
    ("geos2vec.evaluate.protocol", ["summary_table", "standardize", "canonical_order"]),
    ("geos2vec.evaluate.report", ["corrected_resampled_ttest"]),
    ("geos2vec.model.s2vec", ["as_images", "make_dataset", "split_images"]),
    ("geos2vec.model.io", ["check_metadata", "newer_release_hint", "read_json"]),
    ("geos2vec.partitioned", ["_merge_reports", "_add_dicts", "_SUM_KEYS"]),
    ("geos2vec.evaluate.baselines", ["_known", "_repeats", "_same_level"]),
])
def test_names_importable_before_the_module_splits_still_are(module, names):
    """The 2026-11-29 splits moved these; a user's `from geos2vec.coverage import CoverageWarning` broke."""
    import importlib

    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module} lost {missing}"
    if module == "geos2vec.coverage":
        from geos2vec.errors import CoverageWarning

        assert mod.CoverageWarning is CoverageWarning


def _fiji_cells():
    """Level-12 cells on a grid from 177 E to 177 W, and their s2sphere centres."""
    import s2sphere

    from geos2vec import latlng_to_cell

    lng, lat = np.meshgrid(np.arange(177.05, 183.0, 0.3), np.arange(-18.9, -15.0, 0.3))
    cells = np.unique(latlng_to_cell(lat.ravel(), ((lng.ravel() + 180) % 360) - 180, 12))
    ll = [s2sphere.CellId(int(c)).to_lat_lng() for c in cells]
    return cells, np.array([p.lat().degrees for p in ll]), np.array([p.lng().degrees for p in ll])


@pytest.mark.parametrize("box", [(178, -18, 182, -16), (178.0, -18.0, 182.0, -16.0), (-182, -18, -178, -16)])
def test_a_box_past_180_holds_out_and_covers_both_sides_of_the_antimeridian(box):
    """holdout_mask(bbox=(178, -18, 182, -16)) lost the half west of ±180; covered_mask read the int box as cell
    ids ("invalid S2 cell id(s)"); as_coverage refused it. Reference: s2sphere centres in the two halves."""
    import shapely

    from geos2vec.coverage import as_coverage
    from geos2vec.evaluate import covered_mask, holdout_mask

    cells, lat, lng = _fiji_cells()
    x0, y0, x1, y1 = box
    shift = 360 if x0 < -180 else 0
    x0, x1 = x0 + shift, x1 + shift  # both written as 178..182
    ref = (lat >= y0) & (lat <= y1) & (((lng >= x0) & (lng <= 180)) | ((lng >= -180) & (lng <= x1 - 360)))
    assert (ref & (lng > 0)).any() and (ref & (lng < 0)).any() and (~ref).any()
    np.testing.assert_array_equal(holdout_mask(cells, bbox=box), ref)
    np.testing.assert_array_equal(covered_mask(cells, box), ref)
    np.testing.assert_array_equal(covered_mask(cells, [box, box]), ref)
    np.testing.assert_array_equal(shapely.contains_xy(as_coverage(box), lng, lat), ref)
    np.testing.assert_array_equal(shapely.contains_xy(as_coverage(shapely.box(*box)), lng, lat), ref)


@pytest.mark.parametrize("box", [(0, 0, 1000, 10), (-100, 0, 300, 10), (10, 80, 20, 95)])
def test_boxes_that_are_not_degrees_are_refused(box):
    from geos2vec.errors import InvalidInputError
    from geos2vec.evaluate import covered_mask, holdout_mask

    cells, _, _ = _fiji_cells()
    with pytest.raises(InvalidInputError, match="min_lon, min_lat, max_lon, max_lat"):
        holdout_mask(cells, bbox=box)
    with pytest.raises(InvalidInputError):
        covered_mask(cells, box)


def test_a_geoseries_of_points_is_refused_as_a_holdout_or_coverage_area():
    """Points cover no area: every cell came out outside, and evaluate failed later with "0 test cells"."""
    from geos2vec.errors import InvalidInputError
    from geos2vec.evaluate import covered_mask, holdout_mask

    cells, lat, lng = _fiji_cells()
    pts = gpd.GeoSeries(gpd.points_from_xy(lng[:3], lat[:3]), crs=4326, index=["a", "b", "c"])
    with pytest.raises(InvalidInputError, match="must be polygons.*Point.*'a'"):
        holdout_mask(cells, polygon=pts)
    with pytest.raises(InvalidInputError, match="must be polygons"):
        covered_mask(cells, pts)


def test_feature_stats_transform_of_a_dataarray_comes_back_labelled():
    """transform(da.sel(feature=[another order])) came back as bare NumPy in the fitted order: da.copy(data=...)
    put each channel's values under another's name, and a feature-first array came back feature-last."""
    import xarray as xr

    from geos2vec.normalize import FeatureStats

    rng = np.random.default_rng(0)
    da = xr.DataArray(rng.poisson(3.0, (2, 4, 4, 3)).astype(np.float32), dims=("image", "row", "col", "feature"),
                      coords={"feature": ["a", "b", "c"], "image": [10, 11]}, attrs={"channel_dtypes": ["int64"] * 3})
    stats = FeatureStats.fit(da)
    sub = da.sel(feature=["c", "b", "a"]).transpose("feature", "image", "row", "col")
    got = stats.transform(sub)
    assert isinstance(got, xr.DataArray) and got.dims == sub.dims and not got.attrs
    assert list(got["feature"].values) == ["a", "b", "c"] and list(got["image"].values) == [10, 11]
    for ch, k in (("a", 0), ("b", 1), ("c", 2)):  # reference: each channel with its own mean and std
        ref = (np.log1p(da.sel(feature=ch).values) - stats.mean[k]) / stats.std[k] if stats.log1p else \
            (da.sel(feature=ch).values - stats.mean[k]) / stats.std[k]
        np.testing.assert_allclose(got.sel(feature=ch).values, ref, rtol=1e-5, atol=1e-5)
    back = stats.inverse_transform(got)
    assert isinstance(back, xr.DataArray) and back.dims == sub.dims
    np.testing.assert_allclose(back.transpose(*da.dims).values, da.values, rtol=1e-4, atol=1e-4)
    assert isinstance(stats.transform(da.values), np.ndarray)  # arrays stay arrays


def test_a_holdout_series_of_python_bools_with_nan_is_read_as_booleans():
    """split.map({"test": True, "train": False}) with an unmapped value is an object Series of True/False/NaN:
    refused by the first dtype check (it had worked)."""
    from geos2vec.evaluate.protocol import _holdout_flags

    s = pd.Series(["test", "train", "other", "test"]).map({"test": True, "train": False})
    assert s.dtype == object
    got = _holdout_flags(s)
    assert got.dtype == bool and got.tolist() == [True, False, False, True]
    with pytest.raises(ev_errors().InvalidTypeError):
        _holdout_flags(pd.Series(["True", "False"], dtype=object))


def ev_errors():
    import geos2vec.errors as errors

    return errors


def test_lon_lat_columns_come_by_priority_each_name_in_any_case():
    """Columns Longitude, Latitude, y (y a row number): the exact "y" beat "Latitude", and the POIs landed at
    latitude 3; join_labels picks Longitude/Latitude. Reference: the frame with the columns renamed lon/lat."""
    import geos2vec

    df = pd.DataFrame({"Longitude": [-73.99, -73.98], "Latitude": [40.71, 40.72], "y": [3.0, 4.0],
                       "fclass": ["cafe", "bank"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = geos2vec.count_features(df)
        ref = geos2vec.count_features(df.drop(columns="y").rename(columns={"Longitude": "lon", "Latitude": "lat"}))
    pd.testing.assert_frame_equal(got, ref)


@pytest.mark.parametrize("how", ["holdout_mask", "covered_mask"])
def test_a_geometry_collection_area_keeps_its_polygons(how):
    """GeoSeries.make_valid() of a polygon with a spike is a GeometryCollection: refused since ae8dea5 (it had
    worked); its polygonal parts are the area, as as_coverage keeps them. A collection without a polygon is refused."""
    import shapely

    from geos2vec.errors import InvalidInputError
    from geos2vec.evaluate import covered_mask, holdout_mask

    cells, lat, lng = _fiji_cells()
    area = shapely.box(177.5, -18.0, 179.5, -16.0)
    gc = shapely.GeometryCollection([area, shapely.LineString([(179.5, -17.0), (179.9, -17.0)])])
    ref = shapely.contains_xy(area, lng, lat)
    assert ref.any() and (~ref).any()
    call = (lambda g: holdout_mask(cells, polygon=g)) if how == "holdout_mask" else (lambda g: covered_mask(cells, g))
    np.testing.assert_array_equal(call(gpd.GeoSeries([gc], crs=4326)), ref)
    with pytest.raises(InvalidInputError, match="must be polygons"):
        call(gpd.GeoSeries([shapely.GeometryCollection([shapely.Point(178, -17)])], crs=4326))


def test_cli_within_a_box_past_180_keeps_labels_on_both_sides(tmp_path, capsys):
    from geos2vec.cli import main

    rng = np.random.default_rng(0)
    n = 80
    lon = rng.uniform(178.5, 181.5, n)
    lon = np.where(lon > 180, lon - 360, lon)
    pd.DataFrame({"lat": rng.uniform(-17.9, -16.1, n), "lon": lon, "y": rng.normal(size=n)}).to_csv(
        tmp_path / "fiji.csv", index=False)
    args = ["evaluate", "--labels", str(tmp_path / "fiji.csv"), "--target", "y", "--model", "none", "--probes",
            "ridge", "--n-splits", "2", "--splits", "random", "--quiet", "--out", str(tmp_path / "out")]
    import json

    import s2sphere

    assert main(args + ["--within", "178,-18,182,-16"]) == 0, capsys.readouterr().err
    assert main(args[:-1] + [str(tmp_path / "out2"), "--within", "-182,-18,-178,-16"]) == 0
    frame = pd.read_csv(tmp_path / "fiji.csv")
    cells = {s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b)).parent(12).id()
             for a, b in zip(frame.lat, frame.lon)}  # every label lies in the box, on both sides of ±180
    for out in ("out", "out2"):
        assert json.loads((tmp_path / out / "config.json").read_text())["n_samples"] == len(cells)
