"""A user who reuses inputs: what they pass in stays as it was, and outputs are not views into inputs or caches.

Every input is deep-copied before the call and compared after it (pandas with ``check_exact``, ``numpy.array_equal``
with dtypes and the writeable flag, xarray ``identical``, attrs by value). Outputs are then edited, values and
nested attrs, and the inputs (or the packaged objects a later call reads) compared again.
"""

from __future__ import annotations

from copy import deepcopy

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geos2vec as g
from geos2vec import cells as C
from geos2vec import coverage as CV
from geos2vec import features as F
from geos2vec import raster as R
from geos2vec.model import embeddings_to_frame

pytestmark = pytest.mark.filterwarnings("ignore::geos2vec.errors.Geos2VecWarning")  # dropped categories
BOX = shapely.box(-118.6, 34.0, -118.1, 34.3)


def _snap(x):
    if isinstance(x, (pd.DataFrame, pd.Series, xr.DataArray)):
        return x.copy(deep=True), deepcopy(dict(x.attrs)), getattr(x, "crs", None)
    if isinstance(x, np.ndarray):
        return x.copy(), x.flags.writeable
    return deepcopy(x)


def _assert_same(x, snap):
    if isinstance(x, pd.DataFrame):
        pd.testing.assert_frame_equal(x, snap[0], check_exact=True)
    elif isinstance(x, pd.Series):
        pd.testing.assert_series_equal(x, snap[0], check_exact=True)
    elif isinstance(x, xr.DataArray):
        assert x.identical(snap[0])
    elif isinstance(x, np.ndarray):
        assert x.dtype == snap[0].dtype and np.array_equal(x, snap[0]) and x.flags.writeable == snap[1]
        return
    else:
        assert x == snap
        return
    assert repr(dict(x.attrs)) == repr(snap[1])  # nested attrs by value (a dict edited in place shows here)
    assert getattr(x, "crs", None) == snap[2]


def _mutate_nested(obj):
    """Edit every dict and list inside ``obj`` in place (what a user appending to ``out.attrs[...]`` does)."""
    if isinstance(obj, dict):
        for v in list(obj.values()):
            _mutate_nested(v)
        obj["__edited__"] = 1
    elif isinstance(obj, list):
        for v in obj:
            _mutate_nested(v)
        obj.append("__edited__")


@pytest.fixture(scope="module")
def sample():
    pois, roads = g.demo.load_sample()
    pois.attrs["mine"] = {"note": ["kept"]}
    return pois, roads


@pytest.fixture(scope="module")
def table(sample):
    pois, roads = sample
    return F.count_features(pois, roads, coverage=BOX)


# ------------------------------------------------------------------ bugs fixed


def test_editing_the_packaged_ontology_changes_no_later_count(sample):
    # load_ontology() returned the cached object: sorting its channel list (a plain list, as documented)
    # reordered the cache, and every later count_features labelled its counts with other channels' names
    # (restaurant: 144 in the LA sample before, 37 after); editing its table edited the cache's table
    pois, _ = sample
    expected = int((pois["fclass"] == "restaurant").sum())
    onto = g.load_ontology()
    first = list(onto.channels)
    table0 = onto.table.copy()
    onto.channels.sort(reverse=True)
    onto.table.loc[onto.table.index[0], "channel"] = "edited"
    again = g.load_ontology("default")
    assert again.channels == first and again.channels[0] == "police"
    pd.testing.assert_frame_equal(again.table, table0)
    counted = F.count_features(pois)
    assert list(counted.columns[:3]) == first[:3]
    assert int(counted["restaurant"].sum()) == expected == 144


def test_embeddings_to_frame_does_not_share_memory_with_the_dataarray():
    # the frame took the DataArray's array (copy=False): frame.iloc[0, 0] = 99 wrote into emb
    emb = xr.DataArray(np.arange(6, dtype=np.float32).reshape(3, 2), dims=("cell", "dim"),
                       coords={"cell": np.array([5, 7, 9], np.uint64)})
    snap = _snap(emb)
    frame = embeddings_to_frame(emb)
    assert frame.to_numpy().tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    frame.iloc[0, 0] = 99.0
    frame.loc[7, "s2vec_1"] = -1.0
    _assert_same(emb, snap)
    emb.values[2, 0] = 55.0  # and the other way round
    assert frame.loc[9, "s2vec_0"] == 4.0


def test_feature_stats_dicts_do_not_alias_meta():
    # to_dict returned self.meta itself, from_dict and merge shallow copies of it: editing the dict (or the
    # merged statistics' meta) edited the statistics it came from
    stats = g.FeatureStats.fit(pd.DataFrame({"cafe": [0, 2, 4], "road": [1, 1, 3]}))
    stats.meta["source"] = {"cities": ["LA"]}
    d = stats.to_dict()
    d["meta"]["source"]["cities"].append("NYC")
    d["meta"]["other"] = 1
    assert stats.meta == {"source": {"cities": ["LA"]}}
    back = g.FeatureStats.from_dict(stats.to_dict())
    merged = stats.merge(back)
    d2 = stats.to_dict()
    loaded = g.FeatureStats.from_dict(d2)
    d2["meta"]["source"]["cities"].append("SF")
    merged.meta["source"]["cities"].append("SJ")
    assert loaded.meta == stats.meta == back.meta == {"source": {"cities": ["LA"]}}
    assert merged.mean.tolist() == [2.0, 5 / 3]  # the merge itself: the rows twice


def test_embed_output_attrs_are_not_the_input_attrs(sample, table):
    # {**gdf.attrs, ...} copied the top level only: out.attrs["mine"]["note"].append(...) edited the user's frame
    # (pandas' own copy/assign/concat deep-copy attrs)
    pois, _ = sample
    homes = pois.iloc[:15][["name", "geometry"]].copy()
    homes.attrs["mine"] = {"note": ["kept"]}
    snap = _snap(homes)
    for out in (g.embed(homes, features=table, progress=False),
                homes.s2vec.embed(features=table, progress=False)):
        assert out.attrs["mine"] == {"note": ["kept"]} and out.attrs["geos2vec"]["stage"] == "embed"
        _mutate_nested(out.attrs)
        _assert_same(homes, snap)


def test_combined_coverage_layers_are_not_the_parts(sample):
    # combine_coverage (and combine_counts) put the first part's attrs["coverage"]["layers"] list in the result
    pois, roads = sample
    a = F.count_features(pois.iloc[:900], roads, coverage=BOX)
    b = F.count_features(pois.iloc[900:], roads.iloc[:0], coverage=BOX)
    assert a.attrs["coverage"]["layers"]  # POI channels, then road
    snaps = [_snap(a), _snap(b)]
    out = F.combine_counts([a, b])
    assert out.attrs["coverage"]["layers"] == a.attrs["coverage"]["layers"]
    _mutate_nested(out.attrs)
    _mutate_nested(CV.combine_coverage([a, b]))
    for t, s in zip((a, b), snaps):
        _assert_same(t, s)


# ------------------------------------------------------------------ found fine


def test_counting_leaves_every_input_as_it_was(sample):
    pois, roads = sample
    pois3857 = pois.to_crs(3857)
    mapping = {"restaurant": "food", "cafe": "food", "shop=*": "shop"}
    onto = g.Ontology.from_mapping({"restaurant": "food", "bank": "money"})
    cov = gpd.GeoDataFrame(geometry=[BOX], crs=4326).to_crs(3857)
    valued = pois.assign(v=np.arange(len(pois), dtype=float))
    extra = {"v": "sum"}
    args = [pois, roads, pois3857, mapping, cov, valued, extra]
    snaps = [_snap(a) for a in args]
    onto_snap = (onto.table.copy(), list(onto.channels))
    F.count_features(pois, roads)
    F.count_features(pois3857, roads, ontology=mapping, coverage=cov)
    F.count_features(pois, ontology=onto)
    out = F.count_features(valued, roads, extra=extra)
    for a, s in zip(args, snaps):
        _assert_same(a, s)
    pd.testing.assert_frame_equal(onto.table, onto_snap[0])
    assert onto.channels == onto_snap[1]
    # editing the table's report leaves the next count's report as it was
    _mutate_nested(out.attrs)
    assert "__edited__" not in F.count_features(valued, roads, extra=extra).attrs["report"]


def test_raster_views_and_statistics_leave_inputs_and_do_not_alias(table):
    snap_t = _snap(table)
    da = R.rasterize(table)
    snap_da = _snap(da)
    back = g.to_frame(da)
    back.iloc[0, 0] = 10_000
    _mutate_nested(back.attrs)
    for view in (R.windows(da, size=16, stride=16), R.augment(da, transforms=[0, 5])):
        view.values[...] = -1
    stats = g.FeatureStats.fit(table)
    z = stats.transform(table)
    z.iloc[:, :] = 0.0
    stats.transform(da)
    g.FeatureStats.fit(da)
    _assert_same(table, snap_t)
    _assert_same(da, snap_da)
    x = table.to_numpy(np.float64)
    x.flags.writeable = False
    y = stats.transform(x)
    y[...] = 1.0
    assert not x.flags.writeable and np.array_equal(x, table.to_numpy(np.float64))


def test_embedding_leaves_features_cells_and_model_as_they_were(sample, table):
    pois, _ = sample
    homes = pois.iloc[:20][["name", "geometry"]]
    cells = table.index.to_numpy()[:7].copy()
    cells.flags.writeable = False
    model = g.load_model()
    stats_before, channels_before = model.stats.to_dict(), list(model.channels)
    weights = {k: np.array(v) for k, v in model.numpy_weights.items()}
    snaps = [_snap(a) for a in (homes, table, cells)]
    g.embed(homes, features=table, model=model, progress=False)
    g.embed_cells(cells, table, model=model, progress=False)
    g.cell_embeddings(table, model=model, progress=False)
    da = R.rasterize(table)
    snap_da = _snap(da)
    model.embed(da, cells=cells)
    model.embed(table, mode="patch")
    for a, s in zip((homes, table, cells), snaps):
        _assert_same(a, s)
    _assert_same(da, snap_da)
    assert model.stats.to_dict() == stats_before and model.channels == channels_before
    assert all(np.array_equal(weights[k], v) for k, v in model.numpy_weights.items())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lat=st.lists(st.floats(-89.9, 89.9), min_size=1, max_size=6),
       lng=st.floats(-179.9, 179.9), level=st.integers(2, 20), as_series=st.booleans())
def test_cell_functions_leave_read_only_arrays_and_series(lat, lng, level, as_series):
    lat_a = np.asarray(lat, dtype=np.float64)
    lng_a = np.full(lat_a.shape, lng)
    for a in (lat_a, lng_a):
        a.flags.writeable = False
    ids = C.latlng_to_cell(lat_a, lng_a, level)
    assert not lat_a.flags.writeable and not lng_a.flags.writeable
    ids.flags.writeable = False
    inp = pd.Series(ids, index=pd.RangeIndex(10, 10 + ids.size), name="c") if as_series else ids
    snap = _snap(inp)
    C.cell_to_parent(inp, level - 1)
    same = np.asarray(C.cell_to_parent(inp, level))  # its own level: the ids again, not a view of them
    assert np.array_equal(same, ids)
    if same.flags.writeable:
        same[...] = 0
    C.cell_to_children(inp, level + 1)
    C.cell_to_latlng(inp)
    C.cell_to_boundary(inp)
    C.cell_to_token(inp)
    C.grid_disk(inp, 1)
    C.get_level(inp)
    C.is_valid_cell(inp)
    C.cell_to_rowcol(inp, max(level - 4, 0))
    _assert_same(inp, snap)


@settings(max_examples=30, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64, np.int64]), log1p=st.booleans(), rows=st.integers(1, 40),
       form=st.sampled_from(["array", "frame", "dataarray"]), seed=st.integers(0, 2**16))
def test_feature_stats_leave_float_inputs_and_return_their_own_arrays(dtype, log1p, rows, form, seed):
    # transform and inverse_transform of float inputs (the paths that may write into a new array in place):
    # the input keeps its values, and the result shares no memory with it
    x = np.random.default_rng(seed).poisson(3.0, (rows, 3)).astype(dtype)
    if form == "frame":
        data = pd.DataFrame(x, columns=["a", "b", "c"])
    elif form == "dataarray":
        data = xr.DataArray(x, dims=("cell", "feature"), coords={"feature": ["a", "b", "c"]})
    else:
        data = x
    snap = _snap(data)
    stats = g.FeatureStats.fit(pd.DataFrame(x, columns=["a", "b", "c"]), log1p=log1p)
    z = stats.transform(data)
    back = stats.inverse_transform(z)
    _assert_same(data, snap)
    ref = ((np.log1p(x.astype(np.float64)) if log1p else x.astype(np.float64)) - stats.mean) / stats.std
    np.testing.assert_allclose(np.asarray(z, dtype=np.float64), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(back, dtype=np.float64), x, rtol=1e-4, atol=1e-4)
    for out in (z, back):
        assert not np.shares_memory(np.asarray(out), np.asarray(data))
