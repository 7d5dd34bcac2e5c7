"""FeatureStats against NumPy reference computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geos2vec.normalize import FeatureStats


def table(rng, n=50, f=4):
    return pd.DataFrame(rng.poisson(3.0, size=(n, f)), columns=[f"c{i}" for i in range(f)])


def test_fit_matches_numpy():
    df = table(np.random.default_rng(0))
    s = FeatureStats.fit(df)
    np.testing.assert_allclose(s.mean, df.to_numpy().mean(axis=0))
    np.testing.assert_allclose(s.var, df.to_numpy().var(axis=0))
    assert s.channels == list(df.columns) and s.count == 50


@settings(max_examples=50, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(2, 40), st.just(3)), elements=st.integers(0, 1000)),
       st.integers(1, 39))
def test_merge_equals_one_pass(values, cut):
    cut = min(cut, len(values) - 1)
    whole = FeatureStats.fit(values)
    merged = FeatureStats.fit(values[:cut]).merge(FeatureStats.fit(values[cut:]))
    assert merged.count == whole.count
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(merged.var, whole.var, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("rows", [0, 5])
def test_merge_keeps_eps_and_meta_of_self(rows):
    """Also when neither part has rows (that early return dropped ``meta``)."""
    values = np.random.default_rng(2).poisson(3.0, size=(rows, 2))
    a, b = FeatureStats.fit(values), FeatureStats.fit(values[:0])
    a.meta = {"source": "a"}
    b.meta = {"source": "b"}
    merged = a.merge(b)
    assert merged.meta == {"source": "a"} and merged.meta is not a.meta and merged.eps == a.eps
    np.testing.assert_array_equal(merged.count, a.count)


def test_combine_many_parts_and_empty_part():
    values = np.random.default_rng(1).normal(5, 2, size=(1000, 2))
    parts = [FeatureStats.fit(c) for c in np.array_split(values, 7)] + [FeatureStats.fit(values[:0])]
    s = FeatureStats.combine(parts)
    np.testing.assert_allclose(s.var, values.var(axis=0))


def test_transform_inverse_and_zero_variance():
    df = table(np.random.default_rng(2))
    df["const"] = 4
    s = FeatureStats.fit(df)
    z = s.transform(df)
    assert z.index.equals(df.index) and list(z.columns) == list(df.columns)
    np.testing.assert_allclose(z.mean().to_numpy(), 0, atol=1e-12)
    np.testing.assert_allclose(z["c0"].std(ddof=0), 1.0)
    assert (z["const"] == 0).all()  # constant channel: centred, scaled by 1
    np.testing.assert_allclose(s.inverse_transform(z).to_numpy(), df.to_numpy())
    arr = s.transform(df.to_numpy()[None])  # any leading shape
    np.testing.assert_allclose(arr[0], z.to_numpy())


def test_dataarray_uses_observed_pixels_only():
    vals = np.arange(2 * 2 * 2 * 3, dtype=float).reshape(2, 2, 2, 3)
    observed = np.array([[[True, False], [True, True]], [[False, False], [True, False]]])
    da = xr.DataArray(vals, dims=("image", "row", "col", "feature"),
                      coords={"feature": ["a", "b", "c"], "observed": (("image", "row", "col"), observed)})
    s = FeatureStats.fit(da)
    np.testing.assert_allclose(s.mean, vals[observed].mean(axis=0))
    assert s.channels == ["a", "b", "c"] and s.count == 4


def test_save_load_round_trip(tmp_path):
    s = FeatureStats.fit(table(np.random.default_rng(3)))
    s.eps, s.meta = 1e-3, {"source": "osm", "n_files": 2}
    path = s.save(tmp_path / "stats.json")
    back = FeatureStats.load(path)
    assert back == s and back.eps == 1e-3 and back.meta == s.meta
    other = FeatureStats.fit(table(np.random.default_rng(3)))
    assert other != s  # another eps (the std floor) normalizes differently
    other.eps = s.eps
    assert other == s


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        FeatureStats.fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(TypeError, match="numeric"):
        FeatureStats.fit(pd.DataFrame({"a": ["x", "y"]}))
    s = FeatureStats.fit(pd.DataFrame({"a": [1, 2], "b": [3, 4]}))
    with pytest.raises(ValueError, match="channels"):
        s.transform(pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="2 channels"):
        s.transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="different channels"):
        s.merge(FeatureStats.fit(pd.DataFrame({"x": [1]})))
    with pytest.raises(ValueError, match="not a FeatureStats"):
        FeatureStats.from_dict({"channels": []})


def test_log1p_statistics_and_round_trip(tmp_path):
    df = pd.DataFrame({"a": [0, 1, 3, 100], "b": [2, 2, 5, 0]})
    s = FeatureStats.fit(df, log1p=True)
    logs = np.log1p(df.to_numpy(float))
    np.testing.assert_allclose(s.mean, logs.mean(axis=0))
    np.testing.assert_allclose(s.var, logs.var(axis=0))
    z = s.transform(df)
    np.testing.assert_allclose(z.to_numpy(), (logs - logs.mean(0)) / logs.std(0))
    np.testing.assert_allclose(s.inverse_transform(z).to_numpy(), df.to_numpy(), atol=1e-9)
    assert FeatureStats.load(s.save(tmp_path / "s.json")).log1p
    with pytest.raises(ValueError, match="log1p"):
        s.merge(FeatureStats.fit(df))
    with pytest.raises(ValueError, match="> -1"):
        FeatureStats.fit(np.array([[-2.0]]), log1p=True)


def test_statistics_of_no_rows_are_not_saved_as_a_file_that_would_not_load(tmp_path):
    import pandas as pd

    empty = FeatureStats.fit(pd.DataFrame({"a": [], "b": []}, dtype=float))
    assert empty.count == 0
    with pytest.raises(ValueError, match="no rows"):
        empty.save(tmp_path / "stats.json")
    assert not (tmp_path / "stats.json").exists()
    one = FeatureStats.fit(pd.DataFrame({"a": [1.0], "b": [2.0]}))
    assert FeatureStats.load(one.save(tmp_path / "stats.json")).count == 1


def _venues_and_osm():
    """A venue source without roads or pubs (declared, as read_wof does) and an OSM box with everything."""
    import warnings

    import geopandas as gpd

    from geos2vec.features import combine_counts, count_features

    rng = np.random.default_rng(7)

    def pois(n, box, cats):
        x, y = rng.uniform(box[0], box[2], n), rng.uniform(box[1], box[3], n)
        return gpd.GeoDataFrame({"fclass": rng.choice(cats, n)}, geometry=gpd.points_from_xy(x, y), crs=4326)

    a, b = (-74.05, 40.60, -73.85, 40.80), (-73.80, 40.60, -73.70, 40.70)
    venues = pois(3000, a, ["restaurant", "bar"])
    venues.attrs["source_tags"] = ["amenity=restaurant", "amenity=bar"]
    osm = pois(800, b, ["restaurant", "bar", "pub"])
    roads = gpd.GeoDataFrame({"highway": ["primary"] * 20}, crs=4326, geometry=gpd.GeoSeries.from_xy(
        rng.uniform(b[0], b[2], 20), rng.uniform(b[1], b[3], 20)).buffer(0.01).boundary)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return combine_counts([count_features(pois=venues, coverage=a), count_features(osm, roads, coverage=b)])


def test_channels_a_source_lacks_are_left_out_of_the_statistics():
    from geos2vec.coverage import covered_mask
    from geos2vec.raster import rasterize

    both = _venues_and_osm()
    cols = ["restaurant", "bar", "pub", "road"]
    stats = FeatureStats.fit(both, cols, log1p=True)
    _, avail = covered_mask(both.index.to_numpy(np.uint64), both, cols)
    road_only = both.drop(columns="road").to_numpy().sum(axis=1) == 0  # rings reaching beyond b: POIs unknown there
    assert 0 < avail[:, 2].sum() < len(both) and avail[~road_only, 0].all() and not avail[:, 0].all()
    ref = np.log1p(both[cols].where(avail))  # pandas: unavailable values as NaN, skipped
    np.testing.assert_allclose(stats.mean, ref.mean().to_numpy())
    np.testing.assert_allclose(stats.var, ref.var(ddof=0).to_numpy())
    np.testing.assert_array_equal(stats.count, ref.count().to_numpy())
    # the venue cells' zeros would have pulled the mean of pubs and roads down (no data there, not none)
    old = FeatureStats.fit(pd.DataFrame(both[cols].to_numpy(), columns=cols), log1p=True)  # no coverage
    assert (stats.mean[2:] > old.mean[2:]).all() and (old.count == len(both))
    known = FeatureStats.fit(pd.DataFrame(both[cols].to_numpy()[avail[:, 0]], columns=cols), log1p=True)
    np.testing.assert_allclose(stats.std[:2], known.std[:2])
    # images: the same statistics from the observed pixels' available values
    da = rasterize(both)
    from_images = FeatureStats.fit(da.sel(feature=cols), log1p=True)
    np.testing.assert_allclose(from_images.mean, stats.mean)
    np.testing.assert_array_equal(from_images.count, stats.count)


def test_per_channel_counts_merge_and_round_trip(tmp_path):
    both = _venues_and_osm()
    cols = ["restaurant", "pub", "road"]
    whole = FeatureStats.fit(both, cols, log1p=True)
    half = len(both) // 2
    first, second = both.iloc[:half].copy(), both.iloc[half:].copy()
    first.attrs, second.attrs = both.attrs, both.attrs
    merged = FeatureStats.fit(first, cols, log1p=True).merge(FeatureStats.fit(second, cols, log1p=True))
    np.testing.assert_array_equal(merged.count, whole.count)
    np.testing.assert_allclose(merged.mean, whole.mean)
    np.testing.assert_allclose(merged.m2, whole.m2)
    back = FeatureStats.load(whole.save(tmp_path / "stats.json"))
    assert back == whole and isinstance(back.count, np.ndarray)
    d = whole.to_dict()
    d["count"] = d["count"][:2]
    with pytest.raises(ValueError, match="count"):
        FeatureStats.from_dict(d)
    bad = both[cols].copy()
    bad.index = [f"cell{i}" for i in range(len(bad))]
    with pytest.raises(ValueError, match="cell_id index"):
        FeatureStats.fit(bad, log1p=True)
    reset = both[cols].reset_index(drop=True)  # attrs kept, the cells gone: 0, 1, 2, ... are no cells of a level
    assert reset.attrs.get("coverage")
    with pytest.raises(ValueError, match="cell_id index"):
        FeatureStats.fit(reset, log1p=True)


def test_affine_to_moves_values_between_units():
    rng = np.random.default_rng(3)
    a = FeatureStats.fit(table(rng), log1p=True)
    b = FeatureStats.fit(table(rng, n=80) * 3, log1p=True)
    x = rng.poisson(4.0, size=(10, 4)).astype(float)
    scale, shift = a.affine_to(b)
    np.testing.assert_allclose(a.transform(x) * scale + shift, b.transform(x))
    with pytest.raises(ValueError, match="channels"):
        a.affine_to(FeatureStats.fit(table(rng, f=3), log1p=True))
    with pytest.raises(ValueError, match="log1p"):
        a.affine_to(FeatureStats.fit(table(rng)))


def test_channel_names_must_match_the_width_of_the_data():
    from geos2vec.errors import InvalidInputError, InvalidTypeError

    values = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 50.0]])
    with pytest.raises(InvalidInputError, match="1 channel names .* 2 channels"):
        FeatureStats.fit(values, channels=["a"])
    with pytest.raises(InvalidInputError, match="duplicate channel names"):
        FeatureStats.fit(values, channels=["a", "a"])
    with pytest.raises(InvalidTypeError, match="string"):
        FeatureStats.fit(values, channels="ab")
    assert FeatureStats.fit(values, channels=["a", "b"]).channels == ["a", "b"]
    # a DataArray without a feature coordinate: names as for arrays, checked the same way
    bare = xr.DataArray(values, dims=("cell", "feature"))
    s = FeatureStats.fit(bare)
    assert s.channels == ["f0", "f1"] and s.count == 3
    np.testing.assert_allclose(s.mean, [2.0, 30.0])
    np.testing.assert_allclose(s.var, [8 / 3, 800 / 3])
    assert FeatureStats.from_dict(s.to_dict()) == s
    assert FeatureStats.fit(bare, channels=["x", "y"]).channels == ["x", "y"]
    with pytest.raises(InvalidInputError, match="1 channel names"):
        FeatureStats.fit(bare, channels=["x"])
    # with a feature coordinate, channels= must agree with it instead of being ignored
    named = bare.assign_coords(feature=["a", "b"])
    assert FeatureStats.fit(named, channels=["a", "b"]).channels == ["a", "b"]
    with pytest.raises(InvalidInputError, match="differ from the DataArray's feature coordinate"):
        FeatureStats.fit(named, channels=["b"])


def test_duplicate_columns_are_a_clear_error():
    from geos2vec.errors import InvalidInputError

    df = pd.DataFrame([[1, 2, 3]], columns=["cafe", "road", "cafe"])
    with pytest.raises(InvalidInputError, match=r"duplicate channel columns \['cafe'\]"):
        FeatureStats.fit(df)
    assert FeatureStats.fit(df, channels=["road"]).mean.tolist() == [2.0]  # the duplicates not used


def test_nan_in_a_table_is_missing_and_left_out_of_the_statistics():
    """count_features gives NaN for a mean extra in a cell without values: missing, not 0."""
    import warnings

    import geopandas as gpd

    from geos2vec.errors import InvalidInputError
    from geos2vec.features import count_features

    pois = gpd.GeoDataFrame({"fclass": ["restaurant", "cafe", "bank", "cafe"], "rating": [4.5, 4.0, np.nan, 3.0]},
                            geometry=gpd.points_from_xy([-74.0, -74.01, -73.9, -74.0], [40.7, 40.71, 40.8, 40.7]),
                            crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = count_features(pois, extra={"rating": "mean"})
    assert t["rating"].isna().sum() == 1  # the bank's cell has no rating
    cols = ["cafe", "bank", "rating"]
    for log1p in (False, True):
        s = FeatureStats.fit(t, cols, log1p=log1p)
        ref = t[cols].astype(float)
        ref = np.log1p(ref) if log1p else ref
        np.testing.assert_allclose(s.mean, ref.mean().to_numpy())  # pandas skips NaN
        np.testing.assert_allclose(s.var, ref.var(ddof=0).to_numpy())
        np.testing.assert_array_equal(s.count, [3, 3, 2])
    assert s.mean[2] == pytest.approx(np.mean(np.log1p([3.75, 4.0])))  # the two rated cells by hand
    z = s.transform(t[cols])
    assert np.isnan(z["rating"]).sum() == 1 and np.isfinite(z[["cafe", "bank"]]).all().all()
    # infinite values, and NaN in arrays or images (the model cannot read NaN), still raise
    with pytest.raises(InvalidInputError, match="infinite"):
        FeatureStats.fit(pd.DataFrame({"a": [1.0, np.inf]}))
    with pytest.raises(InvalidInputError, match="NaN") as info:
        FeatureStats.fit(np.array([[1.0], [np.nan]]))
    assert "counts: 0" not in str(info.value) and "fill them" not in str(info.value)  # no "missing -> 0"
    with pytest.raises(InvalidInputError, match=r"NaN value\(s\) in channel\(s\) \['b'\]"):
        FeatureStats.fit(xr.DataArray([[1.0, np.nan]], dims=("cell", "feature"), coords={"feature": ["a", "b"]}))


@pytest.mark.parametrize("change, match", [
    ({"log1p": "false"}, "log1p must be true or false"),
    ({"log1p": 1}, "log1p must be true or false"),
    ({"eps": float("nan")}, "eps must be a finite number >= 0"),
    ({"eps": -1.0}, "eps must be a finite number >= 0"),
    ({"eps": "1e-6"}, "eps must be"),
    ({"channels": "ab"}, "channels must be a list of strings"),
    ({"channels": ["a", "a"]}, r"duplicates \['a'\]"),
    ({"count": 2.9}, "count must be an integer"),
    ({"count": True}, "count must be an integer"),
    ({"mean": ["1", "2"]}, "mean must be a list of numbers"),
    ({"meta": []}, "meta must be an object"),
])
def test_from_dict_checks_types(change, match):
    from geos2vec.errors import InvalidInputError

    d = FeatureStats.fit(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 5.0]}), log1p=True).to_dict()
    assert FeatureStats.from_dict(d).log1p is True
    with pytest.raises(InvalidInputError, match=match):
        FeatureStats.from_dict({**d, **change})


def test_interrupted_save_leaves_the_previous_file(tmp_path, monkeypatch):
    """A save cut off half-way (disk full) must not destroy the file it replaces (FeatureStats and S2VecConfig)."""
    from pathlib import Path

    from geos2vec.errors import InvalidInputError
    from geos2vec.model.config import S2VecConfig

    old = FeatureStats.fit(table(np.random.default_rng(4)))
    path = old.save(tmp_path / "stats.json")
    before = path.read_bytes()
    cfg_path = S2VecConfig(embedding_dim=64).save(tmp_path / "config.json")
    cfg_before = cfg_path.read_bytes()
    real = Path.write_text

    def half_then_fail(self, data, *a, **k):
        real(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    new = FeatureStats.fit(table(np.random.default_rng(5), n=80))
    with pytest.raises(OSError, match="No space"):
        new.save(path)
    with pytest.raises(OSError, match="No space"):
        S2VecConfig(embedding_dim=128).save(cfg_path)
    monkeypatch.setattr(Path, "write_text", real)
    assert path.read_bytes() == before and FeatureStats.load(path) == old
    assert cfg_path.read_bytes() == cfg_before and S2VecConfig.load(cfg_path).embedding_dim == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "stats.json"]  # no temporary left
    assert FeatureStats.load(new.save(path)) == new  # an uninterrupted save replaces it
    # a file that is not JSON: a geos2vec error naming it
    (tmp_path / "bad.json").write_text('{"channels": ["a"')
    with pytest.raises(InvalidInputError, match="bad.json"):
        FeatureStats.load(tmp_path / "bad.json")


def test_booleans_count_as_zero_and_one_in_every_input_form():
    """A flag channel (``has_wifi``) is 0/1 whether it arrives as a table, a DataArray or an array (the array
    form refused what the other two took)."""
    import xarray as xr

    flags = np.array([[True, False], [False, False], [True, True], [True, False]])
    ref = FeatureStats.fit(flags.astype(np.float64), channels=["a", "b"])
    forms = [pd.DataFrame(flags, columns=["a", "b"]), xr.DataArray(flags, dims=("cell", "feature")),
             flags]
    for form in forms:
        got = FeatureStats.fit(form, channels=None if isinstance(form, pd.DataFrame) else ["a", "b"])
        np.testing.assert_array_equal(got.mean, [0.75, 0.25])              # hand-checked: 3 of 4, 1 of 4
        np.testing.assert_allclose(got.var, ref.var)
        np.testing.assert_allclose(got.var, flags.var(axis=0))             # NumPy's population variance
        np.testing.assert_allclose(got.transform(flags), ref.transform(flags.astype(np.float64)))


def test_statistics_that_overflow_float64_are_refused():
    """Values near 1e200 gave an infinite variance (and a standard deviation of inf) without a word."""
    from geos2vec.errors import InvalidInputError

    values = np.array([[1e200, 1.0], [-1e200, 2.0], [0.0, 3.0]])
    with pytest.raises(InvalidInputError, match=r"channel\(s\) \['a'\] overflow float64.*log1p=True"):
        FeatureStats.fit(values, channels=["a", "b"])
    with pytest.raises(InvalidInputError, match="overflow"):
        FeatureStats.fit(pd.DataFrame(values, columns=["a", "b"]).assign(a=lambda d: d["a"].where(d["b"] < 3)))
    ok = FeatureStats.fit(values / 1e60, channels=["a", "b"])           # large but representable: NumPy's var
    np.testing.assert_allclose(ok.var, (values / 1e60).var(axis=0))
    assert FeatureStats.fit(np.zeros((0, 2)), channels=["a", "b"]).count == 0
