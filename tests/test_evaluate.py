
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import shapely

from geos2vec import cell_to_children, cell_to_latlng, cell_to_parent, latlng_to_cell
from geos2vec import evaluate as E
from geos2vec.errors import InvalidInputError
from geos2vec.evaluate.tasks import CITY_BOXES

TINY = dict(probes=["mlp"], sweep={"lr": [1e-2], "hidden": [16], "dropout": [0.0]}, max_epochs=400, patience=40,
                                                                             progress=False)


def _grid_cells(n_side=12, lat0=37.3, lng0=-121.95, step=0.02):
    lat, lng = np.meshgrid(lat0 + step * np.arange(n_side), lng0 + step * np.arange(n_side), indexing="ij")
    return np.unique(latlng_to_cell(lat.ravel(), lng.ravel(), 12))


# ------------------------------------------------------------------ labels
def test_join_labels_median_matches_pandas():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"latitude": rng.uniform(37.3, 37.35, 300), "longitude": rng.uniform(-121.95, -121.9, 300),
                       "v": rng.normal(size=300)})
    df.loc[[3, 7], "v"] = np.nan
    out = E.join_labels(df, "v")
    ok = df.v.notna()
    cells = latlng_to_cell(df.latitude[ok].to_numpy(), df.longitude[ok].to_numpy(), 12)
    ref = df.v[ok].groupby(cells).median()
    assert out.index.name == "cell_id" and out.index.dtype == np.uint64
    np.testing.assert_array_equal(out.index.to_numpy(), ref.index.to_numpy().astype(np.uint64))
    np.testing.assert_allclose(out["v"].to_numpy(), ref.to_numpy())
    assert out["n_points"].sum() == 298
    assert out.attrs["n_missing_target"] == 2


def test_join_labels_even_count_median_and_geodataframe():
    # two points in one cell: the median is their mean
    df = pd.DataFrame({"lat": [37.30001, 37.30002], "lon": [-121.90001, -121.90002], "y": [1.0, 4.0]})
    out = E.join_labels(df, "y")
    assert len(out) == 1 and out["y"].iloc[0] == 2.5
    gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326").to_crs("EPSG:3857")
    out2 = E.join_labels(gdf.drop(columns=["lat", "lon"]), "y")
    assert list(out2.index) == list(out.index) and out2["y"].iloc[0] == 2.5
    with pytest.raises(ValueError, match="set_crs"):
        E.join_labels(gdf.drop(columns=["lat", "lon"]).set_crs(None, allow_override=True), "y")


def test_join_labels_errors():
    df = pd.DataFrame({"lat": [10.0], "lon": [200.0], "y": [1.0], "s": ["a"]})
    with pytest.raises(ValueError, match=r"longitude\(s\) outside \[-180, 180\]"):
        E.join_labels(df, "y")
    with pytest.raises(ValueError, match="not found"):
        E.join_labels(df, "nope")
    with pytest.raises(TypeError, match="numeric"):
        E.join_labels(df, "s")
    with pytest.raises(ValueError, match="latitude"):
        E.join_labels(pd.DataFrame({"a": [1.0], "y": [1.0]}), "y")
    with pytest.raises(ValueError, match="empty"):
        E.join_labels(df.iloc[:0], "y")


def test_minmax_scale():
    z, (lo, hi) = E.minmax_scale([2.0, 4.0, 3.0])
    np.testing.assert_allclose(z, [0.0, 1.0, 0.5])
    assert (lo, hi) == (2.0, 4.0)
    with pytest.raises(ValueError, match="constant"):
        E.minmax_scale([1.0, 1.0])
    from geos2vec.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="1 NaN or infinite value"):
        E.minmax_scale([1.0, np.nan, 3.0])  # not "constant (nan)"
    with pytest.raises(InvalidInputError, match="empty"):
        E.minmax_scale([])


# ------------------------------------------------------------------ splits
def test_random_splits_partition():
    splits = E.random_splits(101, 5, seed=3)
    assert len(splits) == 5
    for tr, va, te in splits:
        allidx = np.concatenate([tr, va, te])
        assert len(allidx) == 101 and len(np.unique(allidx)) == 101
        assert (len(tr), len(va)) == (61, 20)
    assert not np.array_equal(splits[0][2], splits[1][2])
    again = E.random_splits(101, 5, seed=3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(splits, again))
    with pytest.raises(ValueError, match=r"3 cells are too few for a \[0.6, 0.2, 0.2\] split"):
        E.random_splits(3, 2)
    with pytest.raises(ValueError, match="fractions"):
        E.random_splits(100, 2, fractions=(0.5, 0.5, 0.5))


def test_holdout_mask_and_splits():
    cells = _grid_cells(6)
    lat, lng = cell_to_latlng(cells)
    east = E.holdout_mask(cells, lon=-121.9)
    np.testing.assert_array_equal(east, lng >= -121.9)
    np.testing.assert_array_equal(E.holdout_mask(cells, lon=-121.9, side="west"), lng < -121.9)
    bbox = (-121.95, 37.3, -121.88, 37.36)
    inb = E.holdout_mask(cells, bbox=bbox)
    np.testing.assert_array_equal(inb, (lng >= bbox[0]) & (lng <= bbox[2]) & (lat >= bbox[1]) & (lat <= bbox[3]))
    poly = shapely.box(*bbox)
    np.testing.assert_array_equal(E.holdout_mask(cells, polygon=poly), shapely.contains_xy(poly, lng, lat))
    with pytest.raises(ValueError, match="exactly one"):
        E.holdout_mask(cells)
    splits = E.holdout_splits(east, 3, seed=0)
    for tr, va, te in splits:
        np.testing.assert_array_equal(te, np.flatnonzero(east))
        assert not east[tr].any() and not east[va].any()
        assert len(tr) + len(va) == (~east).sum()


# --------------------------------------------------------------- baselines
def test_normalized_pca_random_projection():
    rng = np.random.default_rng(0)
    cells = _grid_cells(5)
    counts = pd.DataFrame(rng.poisson(2.0, (len(cells), 6)).astype(float), index=pd.Index(cells, name="cell_id"),
                          columns=list("abcdef"))
    z = E.normalized_counts(counts, log1p=False)
    np.testing.assert_allclose(z.mean().to_numpy(), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(ddof=0).to_numpy(), 1, atol=1e-9)
    zl = E.normalized_counts(counts)  # default: log(1 + count), then standardized (the model's input)
    logc = np.log1p(counts.to_numpy())
    np.testing.assert_allclose(zl.to_numpy(), (logc - logc.mean(0)) / logc.std(0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="log1p"):
        E.normalized_counts(counts - 5)
    p = E.pca_embedding(z, 4)
    assert p.shape == (len(cells), 4)
    # component variances are the top eigenvalues of the covariance (numpy reference)
    eig = np.sort(np.linalg.eigvalsh(np.cov(z.to_numpy(), rowvar=False, bias=True)))[::-1][:4]
    np.testing.assert_allclose(p.var(ddof=0).to_numpy(), eig, rtol=1e-8)
    assert E.pca_embedding(z, 256).shape[1] == 6  # capped at the input dims
    r = E.random_projection(z, 8, seed=1)
    g = np.random.default_rng(1).standard_normal((6, 8))
    np.testing.assert_allclose(r.to_numpy(), z.to_numpy() @ g / np.sqrt(8))
    with pytest.raises(ValueError, match="NaN"):
        E.pca_embedding(counts.assign(a=np.nan), 2)


def test_count_table_from_points(shared_data):
    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")
    table = E.count_table_from_points(pois)
    assert table.index.name == "cell_id" and table.index.dtype == np.uint64
    assert table.to_numpy().sum() == len(pois)
    cells = latlng_to_cell(pois.geometry.y.to_numpy(), pois.geometry.x.to_numpy(), 12)
    one = cells[0]
    expect = pois.fclass[cells == one].value_counts()
    got = table.loc[one]
    for k, v in expect.items():
        assert got[k] == v


# ------------------------------------------------------------------ the MLP
def test_parallel_heads_equal_plain_keras_mlp():
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((9, 3)).astype("float32")
    x2 = rng.standard_normal((9, 2)).astype("float32")
    cls = E._parallel_mlp_class()
    par = cls([3, 2], 3, 5, [0.0, 0.0, 0.0], "concat", 4, seed=0)
    out = np.asarray(par([x1, x2]))
    assert out.shape == (3, 9)
    for m in range(3):
        model = E.build_mlp([3, 2], hidden=5)
        model.get_layer("hidden").set_weights([np.asarray(par.w1)[m], np.asarray(par.b1)[m, 0]])
        model.get_layer("out").set_weights([np.asarray(par.w2)[m], np.asarray(par.b2)[m, 0]])
        np.testing.assert_allclose(out[m], np.asarray(model([x1, x2]))[:, 0], rtol=1e-5, atol=1e-5)


def test_group_trainer_equals_keras_adamw_fit():
    """Full-batch epochs of the batched trainer = keras AdamW `fit` of each head's plain MLP."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype("float32")
    y = rng.uniform(size=40).astype("float32")
    tr = [np.arange(30), np.arange(10, 40)]
    va = [np.arange(30, 40), np.arange(10)]
    lrs = [1e-2, 3e-3]
    par = E._parallel_mlp_class()([3], 2, 5, [0.0, 0.0], "concat", 4, seed=0)
    par([x])
    init = [v.numpy() for v in par.trainable_variables]
    zeros = [np.zeros_like(w) for w in init]
    state = {"weights": init, "moments": zeros, "velocities": zeros, "best": init, "best_val": np.full(2, np.inf),
             "wait": np.zeros(2, np.int32), "best_epoch": np.zeros(2, np.int32)}
    trainer = E._GroupTrainer([tf.constant(x)], tf.constant(y), state, lrs=lrs, dropouts=[0.0, 0.0],
                              train_idx=np.stack(tr), val_idx=np.stack(va), hidden=5, fusion="concat",
                              fusion_units=4, patience=100, weight_decay=0.004, batch_size=64, seed=0, step=0,
                              epoch=0)
    assert int(trainer.run(tf.constant(3))) == 3
    got = trainer.state()
    for m in range(2):
        model = E.build_mlp([3], hidden=5)
        model.get_layer("hidden").set_weights([init[0][m], init[1][m, 0]])
        model.get_layer("out").set_weights([init[2][m], init[3][m, 0]])
        model.compile(optimizer=keras.optimizers.AdamW(lrs[m], weight_decay=0.004), loss="mse")
        vals = []
        for _ in range(3):
            model.fit(x[tr[m]], y[tr[m]], batch_size=30, epochs=1, shuffle=False, verbose=0)
            vals.append(float(np.mean((model.predict(x[va[m]], verbose=0)[:, 0] - y[va[m]]) ** 2)))
        kernel, bias = model.get_layer("hidden").get_weights()
        np.testing.assert_allclose(got["weights"][0][m], kernel, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got["weights"][1][m, 0], bias, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got["weights"][2][m], model.get_layer("out").get_weights()[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got["best_val"][m], min(vals), rtol=1e-4)
        assert got["best_epoch"][m] == int(np.argmin(vals)) + 1


def test_dropping_stopped_heads_changes_nothing():
    """Compaction (rebuilding the graph without stopped heads) gives the same heads as never compacting."""
    target, good, _ = _synthetic_task(6)
    y, _ = E.minmax_scale(target.to_numpy())
    x = good.to_numpy(np.float32)
    splits = E.random_splits(len(y), 3, seed=1)
    tr = np.repeat(np.stack([s[0] for s in splits]), 2, axis=0)
    va = np.repeat(np.stack([s[1] for s in splits]), 2, axis=0)
    kw = dict(lrs=np.tile([3e-2, 3e-3], 3), hidden=4, dropouts=np.zeros(6), fusion="concat", fusion_units=4,
              max_epochs=120, patience=5, weight_decay=0.004, seed=0, chunk=3)
    p0, v0, e0 = E._train_group([x], y, tr, va, compact=0.0, **kw)
    p1, v1, e1 = E._train_group([x], y, tr, va, compact=0.9, **kw)
    assert len(set(e0.tolist())) > 1  # heads stopped at different epochs, so compaction happened
    np.testing.assert_array_equal(e0, e1)
    np.testing.assert_allclose(v0, v1, rtol=1e-4)
    np.testing.assert_allclose(p0, p1, rtol=1e-4, atol=1e-5)
    # every head's best validation MSE is its own MSE on its validation cells
    for i in range(6):
        np.testing.assert_allclose(v1[i], np.mean((p1[i, va[i]] - y[va[i]]) ** 2), rtol=1e-4)


# --------------------------------------------------------------- protocol
def _synthetic_task(n_side=14):
    cells = _grid_cells(n_side)
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((len(cells), 4))
    y = 100 + 50 * signal[:, 0] - 30 * signal[:, 1] + 10 * signal[:, 0] * signal[:, 1]
    idx = pd.Index(cells, name="cell_id")
    target = pd.Series(y, index=idx, name="price")
    good = pd.DataFrame(signal, index=idx)
    noise = pd.DataFrame(rng.standard_normal((len(cells), 4)), index=idx)
    return target, good, noise


def test_evaluate_separates_signal_from_noise():
    target, good, noise = _synthetic_task()
    res = E.evaluate(target, {"signal": good, "noise": noise, "both": [good, noise]}, n_splits=2, seed=0, **TINY)
    s = res.summary().set_index("method")
    assert list(s.index) == ["signal", "noise", "both"]
    assert s.loc["signal", "r2_mean"] > 0.7
    assert s.loc["noise", "r2_mean"] < 0.2
    assert s.loc["both", "r2_mean"] > 0.5
    # metrics recomputed from the stored predictions (pandas/numpy reference)
    p = res.predictions[(res.predictions.method == "signal") & (res.predictions.rep == 1)]
    r2 = 1 - ((p.y_true - p.y_pred) ** 2).sum() / ((p.y_true - p.y_true.mean()) ** 2).sum()
    row = res.scores[(res.scores.method == "signal") & (res.scores.rep == 1)].iloc[0]
    np.testing.assert_allclose(row.r2, r2, rtol=1e-6)
    np.testing.assert_allclose(row.mae, (p.y_true - p.y_pred).abs().mean(), rtol=1e-6)
    np.testing.assert_allclose(s.loc["signal", "r2_mean"], res.scores[res.scores.method == "signal"].r2.mean())
    assert len(p) == len(E.random_splits(len(target), 2)[1][2])


def test_evaluate_common_cells_holdout_and_fusions():
    target, good, noise = _synthetic_task(8)
    partial = good.iloc[:-5]  # five cells lack this table: dropped for every method
    res = E.evaluate(target, {"a": partial, "both": [good, noise]}, n_splits=1,
                     holdout={"lon": float(np.median(cell_to_latlng(target.index.to_numpy())[1]))}, **TINY)
    assert res.config["n_dropped"] == 5 and res.n_cells == len(target) - 5
    lng = cell_to_latlng(res.predictions["sample"].to_numpy(np.uint64))[1]
    assert (lng >= res.config["holdout"]["lon"]).all()
    for fusion in ("weighted", "project"):
        r = E.evaluate(target, {"f": [good, noise]}, n_splits=1, fusion=fusion, fusion_units=8, **TINY)
        # the signal block is in the mix: a fusion that learns finds it (r2 ~0.96; untrained fusion weights ~0)
        assert (r.scores.r2 > 0.7).all() and r.config.get("fusion", fusion) == fusion
    with pytest.raises(ValueError, match="equal feature dims"):
        E.evaluate(target, {"f": [good, noise.iloc[:, :2]]}, n_splits=1, fusion="weighted", **TINY)
    with pytest.raises(TypeError, match="pandas Series"):
        E.evaluate(target.to_numpy(), {"a": good}, **TINY)
    with pytest.raises(ValueError, match="duplicate"):
        E.evaluate(target, {"a": pd.concat([good, good])}, **TINY)
    with pytest.raises(ValueError, match="probes"):
        E.evaluate(target, {"a": good}, probes=["lasso"])
    with pytest.raises(ValueError, match="unknown split"):
        E.evaluate(target, {"a": good}, split="diagonal", probes=["ridge"])


def test_minibatches_train_too():
    target, good, _ = _synthetic_task(12)
    res = E.evaluate(target, {"signal": good}, n_splits=1, batch_size=32, **TINY)
    assert res.scores.r2.iloc[0] > 0.7


def test_method_result_does_not_depend_on_the_other_methods():
    target, good, noise = _synthetic_task(8)
    alone = E.evaluate(target, {"a": good}, n_splits=1, **TINY).scores
    mixed = E.evaluate(target, {"noise": noise, "a": good}, n_splits=1, **TINY).scores
    np.testing.assert_allclose(alone.r2.to_numpy(), mixed[mixed.method == "a"].r2.to_numpy(), rtol=1e-6)


# ------------------------------------------------------------------ splits never leak
def _check_partition(splits, n):
    for tr, va, te in splits:
        assert len(tr) and len(va) and len(te)
        assert not set(tr) & set(va) and not set(tr) & set(te) and not set(va) & set(te)
        assert len(tr) + len(va) + len(te) == n


def test_blocked_splits_keep_blocks_whole():
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 40, 1000)
    splits = E.blocked_splits(groups, 20, seed=0)
    _check_partition(splits, 1000)
    for tr, va, te in splits:
        # no block in two parts of one split
        assert not set(groups[tr]) & set(groups[te]) and not set(groups[tr]) & set(groups[va])
        assert not set(groups[va]) & set(groups[te])
        assert 0.45 < len(tr) / 1000 < 0.75  # about the 60 % share, whole blocks
    assert len({tuple(te) for _, _, te in splits}) == 20  # repetitions differ
    with pytest.raises(ValueError, match="at least 3 blocks"):
        E.blocked_splits(np.zeros(50), 2)


def _old_blocked_assignment(sizes, seed, k, fractions=(0.6, 0.2, 0.2)):
    """Block parts as blocked_splits assigned them before empty parts were filled properly (None: invalid)."""
    order = np.random.default_rng([seed, k]).permutation(len(sizes))
    n, cum = sizes.sum(), np.cumsum(sizes[order])
    start = cum - sizes[order]
    part = np.full(len(sizes), 2)
    part[order[start < fractions[0] * n]] = 0
    part[order[(start >= fractions[0] * n) & (start < (fractions[0] + fractions[1]) * n)]] = 1
    if not (part == 1).any():
        if not (part == 2).any():
            return None
        part[order[np.flatnonzero(part[order] == 2)[0]]] = 1
    if not (part == 2).any():
        part[order[-1]] = 2
    return part if all((part == i).any() for i in range(3)) else None


@given(st.lists(st.integers(1, 60), min_size=3, max_size=9), st.integers(0, 50))
@settings(max_examples=200, deadline=None)
def test_blocked_splits_never_leave_a_part_empty(sizes, seed):
    # very unequal blocks used to give an empty validation set (scored with NaN validation error) or an
    # IndexError; splits that were valid before stay exactly the same
    sizes = np.array(sizes)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    (tr, va, te), = E.blocked_splits(groups, 1, seed=seed)
    _check_partition([(tr, va, te)], len(groups))
    assert not set(groups[tr]) & set(groups[va]) and not set(groups[va]) & set(groups[te])
    assert not set(groups[tr]) & set(groups[te])
    old = _old_blocked_assignment(sizes, seed, 0)
    if old is not None:
        np.testing.assert_array_equal(te, np.flatnonzero(old[groups] == 2))
        np.testing.assert_array_equal(va, np.flatnonzero(old[groups] == 1))


@given(st.floats(-50, 50), st.sampled_from([1, 2]))
@settings(max_examples=60, deadline=None)
def test_student_t_tail_matches_closed_forms(t, df):
    from geos2vec.evaluate.significance import student_t_sf

    # df 1 is the Cauchy distribution; df 2 has a closed form too
    exact = 0.5 - np.arctan(t) / np.pi if df == 1 else 0.5 - t / (2 * np.sqrt(t * t + 2))
    assert student_t_sf(t, df) == pytest.approx(exact, abs=1e-12)


def test_student_t_tail_matches_the_tables_and_the_corrected_test_by_hand():
    from geos2vec.evaluate.significance import student_t_sf

    # two-sided 5 % and 1 % critical values of printed t tables
    for t, df, p in ((2.093, 19, 0.05), (12.706, 1, 0.05), (3.169, 10, 0.01), (2.861, 19, 0.01)):
        assert 2 * student_t_sf(t, df) == pytest.approx(p, abs=2e-4)
    d = np.array([0.05, 0.02, 0.04, 0.01, 0.03])
    t, p = E.corrected_resampled_ttest(d, n_train=80, n_test=20)
    by_hand = d.mean() / np.sqrt((1 / 5 + 20 / 80) * d.var(ddof=1))   # Nadeau & Bengio (2003)
    assert t == pytest.approx(by_hand) and p == pytest.approx(2 * student_t_sf(by_hand, 4))
    naive = d.mean() / np.sqrt(d.var(ddof=1) / 5)
    assert t < naive                                                     # the overlap widens the interval
    assert E.corrected_resampled_ttest([0.1], 80, 20)[1] != E.corrected_resampled_ttest([0.1], 80, 20)[1]  # NaN
    assert E.corrected_resampled_ttest([0.25, 0.25, 0.25], 80, 20) == (np.inf, 0.0)
    for n_train, n_test in ((np.nan, np.nan), (0, 20), (-5, 20)):   # sizes unknown: unknown, not p = 1
        assert np.isnan(E.corrected_resampled_ttest(d, n_train, n_test)).all()


def test_holdout_and_region_splits_refuse_bad_input():
    with pytest.raises(InvalidInputError, match="n_splits"):
        E.holdout_splits(np.arange(10) < 3, n_splits=0)
    with pytest.raises(InvalidInputError, match="1 missing label"):
        E.region_splits(np.array(["a", None, "b", "a", "b", "a"], dtype=object), 2)


def test_verdicts_count_ties_for_neither_side_and_one_test_set_is_not_a_beat():
    reps = np.arange(20)
    a = np.linspace(0.1, 0.5, 20)
    tie_6 = np.where(reps < 6, a - 0.05, a)           # B better on 6 splits, tied on 14
    scores = pd.concat([
        pd.DataFrame({"task": "t", "split": split, "probe": "ridge", "method": m, "rep": reps, "r2": r})
        for split in ("blocked", "region:a->b") for m, r in (("A", a), ("same", a), ("B6", tie_6))])
    p = E.paired_table(scores).set_index(["split", "method_a", "method_b"])
    same = p.loc[("blocked", "A", "same")]
    assert (same.wins, same.losses, same.beats) == (0, 0, False)
    assert E.verdict(same) == "no clear winner"                 # was "B beats A": ties counted as losses
    six = p.loc[("blocked", "A", "B6")]
    assert (six.wins, six.losses) == (6, 0) and E.verdict(six) == "no clear winner"
    region = p.loc[("region:a->b", "A", "B6")]
    assert region.one_test_set and not p.loc[("blocked", "A", "B6")].one_test_set
    strong = pd.DataFrame({"task": "t", "split": ["blocked"] * 40 + ["holdout"] * 40, "probe": "ridge",
                           "method": (["X"] * 20 + ["Y"] * 20) * 2, "rep": np.tile(reps, 4),
                           "r2": np.tile(np.r_[a + 0.1, a], 2)})
    q = E.paired_table(strong).set_index(["split", "method_a"])
    assert q.loc[("blocked", "X")].beats and E.verdict(q.loc[("blocked", "X")]) == "A beats B"
    assert E.verdict(q.loc[("blocked", "Y")]) == "B beats A"
    # the same 20/20 on one shared test set is reported as ahead there, not as a beat
    assert not q.loc[("holdout", "X")].beats and E.verdict(q.loc[("holdout", "X")]) == "A ahead on one test set"
    assert np.isnan(q.loc[("holdout", "X")].p_corrected)    # no correction for repetitions of one test set
    assert E.verdict(q.loc[("holdout", "Y")]) == "B ahead on one test set"


def test_region_splits_both_directions():
    regions = np.array(["east"] * 30 + ["west"] * 20)
    out = E.region_splits(regions, 3, seed=0)
    assert set(out) == {"west->east", "east->west"}
    for name, splits in out.items():
        test_region = name.split("->")[1]
        _check_partition(splits, 50)
        for tr, va, te in splits:
            np.testing.assert_array_equal(te, np.flatnonzero(regions == test_region))
            assert (regions[tr] != test_region).all() and (regions[va] != test_region).all()


def test_evaluate_blocked_and_region_on_cells():
    target, good, noise = _synthetic_task(14)
    cells = target.index.to_numpy()
    res = E.evaluate(target, {"signal": good}, split="blocked", block_level=9, n_splits=5, probes=["ridge"],
                     progress=False)
    parents = cell_to_parent(cells, 9)
    block_of = pd.Series(parents, index=cells)
    for rep, g in res.predictions.groupby("rep"):
        test_blocks = set(block_of.loc[g["sample"].to_numpy(np.uint64)])
        assert test_blocks  # the test set is made of whole level-9 blocks: none of them has a cell outside it
        assert block_of[block_of.isin(test_blocks)].index.isin(g["sample"].to_numpy(np.uint64)).all()
    lng = cell_to_latlng(cells)[1]
    regions = pd.Series(np.where(lng < np.median(lng), "w", "e"), index=target.index)
    res = E.evaluate(target, {"signal": good}, split="region", regions=regions, n_splits=2, probes=["ridge"],
                     progress=False)
    assert set(res.scores.split) == {"region:e->w", "region:w->e"}
    assert (res.scores.r2 > 0.5).all()


# ------------------------------------------------------------------ probes
def test_standardize_uses_training_rows_only_and_clips():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    x[:, 2] = 7.0
    x[45:, 2] = 9.0  # constant on the training rows
    train = np.arange(40)
    z = E.standardize(x, train)
    ref = (x[:, :2] - x[train, :2].mean(0)) / x[train, :2].std(0)
    np.testing.assert_allclose(z[:, :2], np.clip(ref, -4, 4))
    assert (z[:, 2] == 0).all()
    x2 = x.copy()
    x2[40:] *= 100  # test rows change: the training rows' values do not
    np.testing.assert_allclose(E.standardize(x2, train)[:40], z[:40])
    assert np.abs(E.standardize(x2, train)).max() == 4.0
    np.testing.assert_allclose(E.standardize(x, train, scale=False), x - x[train].mean(0))


def test_ridge_probe_equals_normal_equations():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((120, 6))
    y = x @ rng.standard_normal(6) + 0.5 * rng.standard_normal(120) + 3.0
    tr, va, te = np.arange(70), np.arange(70, 95), np.arange(95, 120)
    z = E.standardize(x, tr, clip=None)
    pred, val_mse, alpha = E.ridge_probe(z, y, tr, va, te)
    mses = []
    for a in E.RIDGE_ALPHAS:
        beta = np.linalg.solve(z[tr].T @ z[tr] + a * np.eye(6), z[tr].T @ (y[tr] - y[tr].mean()))
        mses.append(np.mean((z[va] @ beta + y[tr].mean() - y[va]) ** 2))
    best = int(np.argmin(mses))
    assert alpha == E.RIDGE_ALPHAS[best]
    np.testing.assert_allclose(val_mse, mses[best], rtol=1e-8)
    beta = np.linalg.solve(z[tr].T @ z[tr] + alpha * np.eye(6), z[tr].T @ (y[tr] - y[tr].mean()))
    np.testing.assert_allclose(pred, z[te] @ beta + y[tr].mean(), rtol=1e-8)


def test_padded_rows_change_nothing():
    """Heads with fewer rows padded by weight-0 rows train exactly like the same heads without padding."""
    target, good, _ = _synthetic_task(6)
    y, _ = E.minmax_scale(target.to_numpy())
    x = good.to_numpy(np.float32)
    tr, va, te = E.random_splits(len(y), 1, seed=2)[0]
    kw = dict(lrs=[1e-2], hidden=4, dropouts=[0.0], fusion="concat", fusion_units=4, max_epochs=60, patience=10,
              weight_decay=0.004, seed=0)
    p0, v0, e0 = E._train_group([x], y, tr[None], va[None], **kw)
    pad_tr = np.concatenate([tr, tr[:7]])[None]
    pad_va = np.concatenate([va, va[:3]])[None]
    w_tr = np.r_[np.ones(len(tr)), np.zeros(7)][None]
    w_va = np.r_[np.ones(len(va)), np.zeros(3)][None]
    p1, v1, e1 = E._train_group([x], y, pad_tr, pad_va, train_w=w_tr, val_w=w_va, eval_idx=te[None], **kw)
    np.testing.assert_array_equal(e0, e1)
    np.testing.assert_allclose(v0, v1, rtol=1e-5)
    np.testing.assert_allclose(p0[:, te], p1, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ baselines
def _face_grid(n=7, level=12):
    from geos2vec.cells import face_ij_to_cell

    i, j = np.meshgrid(np.arange(n) + 1000, np.arange(n) + 2000, indexing="ij")
    return face_ij_to_cell(np.full(n * n, 4), i.ravel(), j.ravel(), level).reshape(n, n)


def test_smoothed_counts_equal_hand_computation():
    grid = _face_grid(7)
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(rng.poisson(2.0, (49, 2)).astype(float), index=pd.Index(grid.ravel(), name="cell_id"),
                          columns=["a", "b"])
    counts = counts.drop(grid[1, 1])  # a covered cell with no feature: empty, counted as 0
    centre = grid[3, 3]
    out = E.smoothed_counts(counts, [centre])  # coverage None: every absent cell is empty
    logc = np.log1p(counts.reindex(grid.ravel(), fill_value=0.0).to_numpy()).reshape(7, 7, 2)
    np.testing.assert_allclose(out.loc[centre, ["a", "b"]], logc[3, 3])
    np.testing.assert_allclose(out.loc[centre, ["a@3x3", "b@3x3"]], logc[2:5, 2:5].mean(axis=(0, 1)))
    np.testing.assert_allclose(out.loc[centre, ["a@5x5", "b@5x5"]], logc[1:6, 1:6].mean(axis=(0, 1)))
    # missing is not empty: with a coverage of only the cells in the table, the absent cell is left out
    known = counts.index.to_numpy(np.uint64)
    out2 = E.smoothed_counts(counts, [centre], coverage=known)
    sq = logc[1:6, 1:6].reshape(25, 2)
    keep = grid[1:6, 1:6].ravel() != grid[1, 1]
    np.testing.assert_allclose(out2.loc[centre, ["a@5x5", "b@5x5"]], sq[keep].mean(axis=0))
    # an uncovered cell without counts gets no row at all
    assert len(E.smoothed_counts(counts, [grid[1, 1]], coverage=known)) == 0


def test_region_onehot_and_pooling():
    grid = _face_grid(4, level=12)
    cells = grid.ravel()
    onehot = E.region_onehot(cells, 10)
    parents = cell_to_parent(cells, 10)
    assert onehot.shape == (16, len(np.unique(parents)))
    assert (onehot.sum(axis=1) == 1).all()
    for a, b in [(0, 1), (0, 15)]:
        assert (onehot.iloc[a] == onehot.iloc[b]).all() == (parents[a] == parents[b])
    # pooled samples: the weighted mean of their cells' rows
    table = pd.DataFrame({"v": np.arange(16.0)}, index=pd.Index(cells, name="cell_id"))
    pooling = pd.DataFrame({"sample": ["s1", "s1", "s2"] + [f"t{k}" for k in range(12)],
                            "cell_id": np.r_[cells[:3], cells[3:15]], "weight": np.r_[0.25, 0.75, 1.0, np.ones(12)]})
    target = pd.Series(np.arange(14.0), index=["s1", "s2"] + [f"t{k}" for k in range(12)])
    res = E.evaluate(target, {"v": table}, pooling=pooling, n_splits=2, probes=["ridge"], progress=False)
    assert res.n_cells == 14
    from geos2vec.evaluate.protocol import _pool

    x, share = _pool(table, np.array([0, 0, 1]), cells[:3], np.array([0.25, 0.75, 1.0]), 2)
    np.testing.assert_allclose(x[:, 0], [0.25 * 0 + 0.75 * 1, 2.0])
    np.testing.assert_allclose(share, [1.0, 1.0])


def test_purge_leaves_out_training_samples_that_share_a_cell_with_test():
    # sample positions 0..4; sample 1 shares cell 11 with test sample 4, sample 2 shares nothing
    sample = np.array([0, 1, 1, 2, 3, 4, 4])
    cell = np.array([10, 11, 12, 13, 14, 11, 15])
    splits = {"blocked": [(np.array([0, 1, 2]), np.array([3]), np.array([4]))]}
    out, purged = E.purge_shared_cells(splits, sample, cell)
    (tr, va, te), = out["blocked"]
    assert tr.tolist() == [0, 2] and va.tolist() == [3] and te.tolist() == [4] and purged == {"blocked": 1.0}
    with pytest.raises(InvalidInputError, match="purge=False"):
        E.purge_shared_cells({"b": [(np.array([1, 2]), np.array([3]), np.array([4]))]}, sample, np.r_[cell[:3],
                                                                                                       11, 14, 11, 15])


def test_blocked_evaluation_of_polygons_purges_shared_cells():
    grid = _face_grid(16, level=12)
    rng = np.random.default_rng(0)
    rows = []
    for k in range(120):  # "tracts" of two neighbouring cells each; many straddle level-10 blocks
        r, c = rng.integers(0, 16), rng.integers(0, 15)
        rows += [(f"s{k}", grid[r, c], 0.6), (f"s{k}", grid[r, c + 1], 0.4)]
    pooling = pd.DataFrame(rows, columns=["sample", "cell_id", "weight"])
    table = pd.DataFrame({"v": rng.normal(size=grid.size)}, index=pd.Index(grid.ravel(), name="cell_id"))
    target = pd.Series(rng.normal(size=120), index=[f"s{k}" for k in range(120)])
    kw = dict(split="blocked", block_level=10, n_splits=3, probes=["ridge"], progress=False)
    res = E.evaluate(target, {"v": table}, pooling=pooling, **kw)
    raw = E.evaluate(target, {"v": table}, pooling=pooling, purge=False, **kw)
    assert res.config["purged"]["blocked"] > 0 and raw.config["purged"] == {}
    sizes = res.config["split_sizes"]["blocked"]
    assert sizes[2] == raw.config["split_sizes"]["blocked"][2]          # test sets unchanged (paired)
    assert sizes[0] + sizes[1] < sum(raw.config["split_sizes"]["blocked"][:2])


def test_standard_methods_always_have_the_strong_baselines(tmp_path):
    target, good, _ = _synthetic_task(8)
    cells = target.index.to_numpy()
    counts = pd.DataFrame(np.random.default_rng(0).poisson(1.0, (len(cells) - 3, 5)).astype(float),
                          index=pd.Index(cells[3:], name="cell_id"), columns=list("abcde"))
    methods = E.standard_methods(cells, counts, {"S2Vec": good}, controls={"untrained encoder": good},
                                 location="sphereC", location_params={"frequency_num": 2})
    assert list(methods) == ["counts", "smoothed counts", "PCA", "random projection", "region one-hot",
                             "location-only", "counts-Loc", "S2Vec", "S2Vec-Loc", "S2Vec + smoothed counts",
                             "untrained encoder", "untrained encoder + smoothed counts"]
    full = counts.reindex(np.union1d(counts.index, cells), fill_value=0.0)
    pd.testing.assert_frame_equal(methods["counts"], np.log1p(full), check_names=False)
    assert methods["location-only"].shape == (len(cells), 6)
    # the combined methods hold their blocks: the embedding (or counts) and the location / smoothed counts
    for name, first, second in (("S2Vec-Loc", good, methods["location-only"]),
                                ("counts-Loc", methods["counts"], methods["location-only"]),
                                ("S2Vec + smoothed counts", good, methods["smoothed counts"])):
        assert isinstance(methods[name], list) and len(methods[name]) == 2, name
        pd.testing.assert_frame_equal(methods[name][0], first, check_names=False)
        pd.testing.assert_frame_equal(methods[name][1], second, check_names=False)
    bare = E.standard_methods(cells)
    assert list(bare) == ["region one-hot", "location-only"]
    res = E.evaluate(target, {k: methods[k] for k in ("counts", "PCA", "S2Vec-Loc", "region one-hot", "counts-Loc")},
                     n_splits=4, probes=["ridge", "mlp"], sweep=TINY["sweep"], max_epochs=50, progress=False)
    # PCA keeps every component of 5 channels: a rotation, which ridge does not see
    r = res.scores.set_index(["probe", "method", "rep"]).r2
    np.testing.assert_allclose(r.loc["ridge", "PCA"], r.loc["ridge", "counts"], rtol=1e-6)
    path = E.write_report(res, tmp_path / "rep")
    text = path.read_text()
    assert "| counts |" in text and "| S2Vec-Loc |" in text
    assert "| S2Vec-Loc | counts-Loc |" in text        # a -Loc method also faces counts with the same location
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert list(summary.columns) == ["task", "split", "method", "probe", "n_cells", "r2_mean", "r2_std",
                                     "mae_mean", "mae_std", "n_splits", "n_r2_nan"]
    assert len(summary) == 10 and (summary.n_splits == 4).all()
    paired = pd.read_csv(tmp_path / "rep" / "paired.csv")
    row = paired[(paired.method_a == "S2Vec-Loc") & (paired.method_b == "counts") & (paired.probe == "ridge")].iloc[0]
    a = res.scores[(res.scores.method == "S2Vec-Loc") & (res.scores.probe == "ridge")].r2.to_numpy()
    b = res.scores[(res.scores.method == "counts") & (res.scores.probe == "ridge")].r2.to_numpy()
    assert row.wins == int((a > b).sum()) and row.n_splits == 4
    n_test = res.scores[res.scores.probe == "ridge"].n_test.mean()
    t, p = E.corrected_resampled_ttest(a - b, res.n_cells - n_test, n_test)
    assert (row.t_corrected, row.p_corrected) == pytest.approx((t, p))
    np.testing.assert_allclose(row.delta_r2_mean, (a - b).mean())
    from scipy.stats import binomtest  # 4 splits: even 4 wins of 4 are p = 0.0625 under a sign test, no "beats"
    assert row.beats == (row.wins >= 3 and binomtest(row.wins, 4, alternative="greater").pvalue <= 0.05)
    assert not row.beats
    assert (tmp_path / "rep" / "r2_price.png").stat().st_size > 0


def test_named_task_suite_on_shared_data(shared_data, tmp_path):
    import warnings

    task = E.load_task("ca-housing", shared_data)
    assert task.block_level == 10 and set(task.regions) == {"san_jose", "los_angeles"}
    # every sample lies in a city box where the OSM features are known
    lat, lng = cell_to_latlng(task.target.index.to_numpy())
    inside = np.zeros(len(lat), bool)
    for b in CITY_BOXES.values():
        inside |= (lng >= b[0]) & (lng <= b[2]) & (lat >= b[1]) & (lat <= b[3])
    assert inside.all()
    # the target is the median median_house_value of the block groups in each cell (pandas reference), for
    # every cell of a city box
    h = pd.read_csv(shared_data / "labels" / "housing.csv")
    ref = h["median_house_value"].groupby(latlng_to_cell(h["latitude"].to_numpy(), h["longitude"].to_numpy(),
                                                         12)).median()
    rlat, rlng = cell_to_latlng(ref.index.to_numpy(np.uint64))
    keep = np.zeros(len(ref), bool)
    for b in (CITY_BOXES["san_jose"], CITY_BOXES["los_angeles"]):
        keep |= (rlng >= b[0]) & (rlng <= b[2]) & (rlat >= b[1]) & (rlat <= b[3])
    ref = ref[keep]
    assert len(ref) > 100
    np.testing.assert_array_equal(task.target.index.to_numpy(np.uint64), ref.index.to_numpy(np.uint64))
    np.testing.assert_allclose(task.target.to_numpy(), ref.to_numpy(), rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores, info = E.run_suite(["ca-housing"], probes=["ridge"], model=None, data_dir=shared_data, n_splits=3,
                                   progress=False, log=None)
    assert set(scores.split) == {"random", "blocked", "region:san_jose->los_angeles", "region:los_angeles->san_jose"}
    task = E.load_task("ca-housing", shared_data)
    assert info[task.name]["block_level"] == task.block_level and info[task.name]["dropped"] >= 0
    assert info[task.name]["samples"] + info[task.name]["dropped"] == len(task.target)
    for split, g in scores.groupby("split"):
        assert {"region one-hot", "location-only", "smoothed counts", "counts"} <= set(g.method)
    with pytest.raises(ValueError, match="unknown task"):
        E.load_task("housing-prices", shared_data)
    with pytest.raises(FileNotFoundError, match="GEOS2VEC_DATA"):
        E.load_task("ca-housing", tmp_path)


def test_cli_task_options_reach_the_suite_or_are_refused(tmp_path, monkeypatch, capsys):
    """--task runs passed --block-level, --fusion, --batch-size and the location encoder nowhere (the report's
    config said they had been used); options of the --labels path are refused with --task."""
    from geos2vec import cli_evaluate
    from geos2vec.cli import main

    seen = {}

    def fake_suite(tasks, **kw):
        seen.update(kw, tasks=tasks)
        scores = pd.DataFrame({"task": "t", "split": "blocked", "method": ["a", "b"], "probe": "ridge", "rep": 0,
                               "r2": [0.5, 0.4], "mae": [1.0, 1.1], "n_cells": 10})
        return scores, {"t": {"samples": 10, "dropped": 0}}

    monkeypatch.setattr(cli_evaluate, "run_suite", fake_suite)
    out = tmp_path / "rep"
    assert main(["evaluate", "--task", "ca-housing", "--model", "none", "--block-level", "6", "--fusion", "project",
                 "--batch-size", "64", "--location", "grid", "--location-scales", "4", "--out", str(out),
                 "--quiet"]) == 0
    assert (seen["block_level"], seen["fusion"], seen["batch_size"], seen["location"]) == (6, "project", 64, "grid")
    reproduce = (out / "report.md").read_text()                   # the report's command gives these scores again
    assert "--block-level 6" in reproduce and "--fusion project" in reproduce and "--location grid" in reproduce
    assert seen["location_params"]["frequency_num"] == 4 and seen["tasks"] == ["ca-housing"]
    for extra in (["--holdout-lon", "-118"], ["--within=-122,37,-121,38"], ["--target", "price"]):
        assert main(["evaluate", "--task", "ca-housing", "--model", "none", "--out", str(out), "--quiet", *extra]) == 1
        err = capsys.readouterr().err       # the command line's one error line (and the --debug hint)
        assert err.startswith("geos2vec: error: ") and "only apply with --labels" in err
    labels = tmp_path / "lab.csv"
    pd.DataFrame({"lat": [37.3, 37.31], "lon": [-121.9, -121.91], "v": [1.0, 2.0]}).to_csv(labels, index=False)
    with pytest.raises(InvalidInputError, match="region splits need a --task"):
        main(["evaluate", "--labels", str(labels), "--target", "v", "--model", "none", "--splits", "region",
              "--out", str(out), "--quiet", "--debug"])
    # and the --task options are refused with --labels instead of being ignored
    for extra, name in ((["--cache", str(tmp_path / "c")], "--cache"), (["--no-untrained"], "--no-untrained"),
                        (["--states", "ks"], "--states"), (["--data-dir", str(tmp_path)], "--data-dir")):
        with pytest.raises(InvalidInputError, match=f"{name} only apply with --task"):
            main(["evaluate", "--labels", str(labels), "--target", "v", "--model", "none", "--out", str(out),
                  "--quiet", "--debug", *extra])


def test_cli_on_shared_data(shared_data, tmp_path):
    import warnings

    from geos2vec.cli import main
    from geos2vec.embedding import embed_cells
    from geos2vec.features import count_features
    from geos2vec.model import S2VecModel
    from geos2vec.normalize import FeatureStats
    from geos2vec.raster import rasterize

    pois_path = shared_data / "pois" / "san_jose.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(pois=gpd.read_parquet(pois_path))
    tiny = S2VecModel(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2, epochs=1,
                      seed=3)
    tiny.build(rasterize(table), stats=FeatureStats.fit(table, log1p=True))
    tiny.save(tmp_path / "tiny", compact=True)
    out = tmp_path / "report"
    argv = [
        "evaluate", "--labels", str(shared_data / "labels" / "housing.csv"), "--target", "median_house_value",
        "--within=-122.080,37.250,-121.840,37.428", "--features", str(pois_path),
        "--model", str(tmp_path / "tiny"), "--modes", "patch", "--splits", "random,blocked", "--n-splits", "2",
        "--probes", "ridge,mlp",
        "--lr", "0.01", "--hidden", "8", "--dropout", "0", "--max-epochs", "40",
        "--patience", "5", "--location-scales", "4", "--out", str(out), "--quiet",
    ]
    assert main(argv) == 0
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores.method) == {"counts", "smoothed counts", "PCA", "random projection", "region one-hot",
                                  "location-only", "S2Vec (patch)", "S2Vec (patch)-Loc",
                                  "S2Vec (patch) + smoothed counts", "counts-Loc"}
    assert set(scores.split) == {"random", "blocked"} and set(scores.probe) == {"ridge", "mlp"}
    # the S2Vec method is the model's embedding of the labelled cells
    h = pd.read_csv(shared_data / "labels" / "housing.csv")
    inside = h[h.longitude.between(-122.080, -121.840) & h.latitude.between(37.250, 37.428)]
    cells = np.unique(latlng_to_cell(inside.latitude.to_numpy(), inside.longitude.to_numpy(), 12))
    emb = E.model_embeddings(cells, table, str(tmp_path / "tiny"), ["patch"])["S2Vec (patch)"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = embed_cells(cells, table, model=str(tmp_path / "tiny"), mode="patch", outside="embed")
    ok = np.isfinite(ref.to_numpy(np.float64)).all(axis=1)
    np.testing.assert_allclose(emb.loc[cells[ok]].to_numpy(), ref.to_numpy(np.float64)[ok], rtol=1e-6)
    # labels inside the bbox, one per cell, exactly the cells of the report
    assert scores.n_cells.max() <= len(cells) and scores.n_cells.min() >= 0.9 * len(cells)
    # rerun from the saved config reproduces the scores
    out2 = tmp_path / "again"
    assert main(["evaluate", "--config", str(out / "config.json"), "--out", str(out2), "--quiet"]) == 0
    pd.testing.assert_frame_equal(scores, pd.read_csv(out2 / "scores.csv"), rtol=1e-5)
    # without --out the saved --out is the earlier run's folder: refused before anything is written over
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(InvalidInputError, match="would write over that earlier report"):
        main(["evaluate", "--config", str(out / "config.json"), "--quiet", "--debug"])
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    with pytest.raises(InvalidInputError, match="--splits"):
        main(argv[:-1] + ["--splits", "diagonal", "--quiet", "--debug"])


def test_onehot_ridge_equals_general_ridge():
    rng = np.random.default_rng(5)
    groups = rng.integers(0, 12, 300)
    groups[groups == 11] = 10  # group 11 absent
    y = rng.standard_normal(300) + 0.5 * groups
    tr, va, te = np.arange(180), np.arange(180, 240), np.arange(240, 300)
    tr = tr[groups[tr] != 3]  # a group seen only in validation and test
    onehot = np.eye(12)[groups]
    z = E.standardize(onehot, tr, scale=False)
    p0, v0, a0 = E.ridge_probe(z, y, tr, va, te)
    p1, v1, a1 = E.ridge_onehot_probe(groups, y, tr, va, te)
    assert a0 == a1
    np.testing.assert_allclose(v1, v0, rtol=1e-8)
    np.testing.assert_allclose(p1, p0, rtol=1e-8, atol=1e-10)


def test_untrained_model_is_reproducible_and_untrained():
    import geos2vec

    model = geos2vec.load_model("default")
    a = E.untrained_model(model, seed=1)
    b = E.untrained_model(model, seed=1)
    assert a.channels == model.channels and a.grid == model.grid and a.stats is model.stats
    key = "patch_embed/kernel"
    np.testing.assert_array_equal(a.numpy_weights[key], b.numpy_weights[key])
    assert not np.allclose(a.numpy_weights[key], model.numpy_weights[key], atol=1e-3)


def test_mlp_probe_keeps_valid_configurations_when_one_diverges(monkeypatch):
    """A NaN validation loss (a diverged learning rate) must not hide the valid configurations of its width."""
    from geos2vec.evaluate import protocol
    from geos2vec.evaluate.methods import Method

    rng = np.random.default_rng(0)
    n = 40
    x = rng.normal(size=(n, 3))
    y = rng.normal(size=n)
    splits = [(np.arange(0, 20), np.arange(20, 30), np.arange(30, 40))]
    sweep = {"hidden": [8], "lr": [1e-3, 1e-1], "dropout": [0.0]}

    def fake_train_group(xs, ys, tr, va, *, eval_idx, lrs, **kw):
        heads = len(lrs)
        val = np.array([0.5, np.nan])[:heads]              # lr 1e-3 fine, lr 1e-1 diverged
        pred = np.tile(np.linspace(0, 1, eval_idx.shape[1]), (heads, 1))
        return pred, val, None

    monkeypatch.setattr(protocol, "_train_group", fake_train_group)
    (pred, val_mse, cfg), = protocol._mlp_probe(
        "m", Method([0]), [x], y, splits, sweep=sweep, fusion="concat", fusion_units=8, max_epochs=1,
        patience=1, weight_decay=0.0, batch_size=8, seed=0, tick=lambda: None, target_scale="minmax")
    assert cfg["lr"] == 1e-3 and cfg["hidden"] == 8          # before: every width with a NaN was skipped
    lo, hi = y[:20].min(), y[:20].max()
    np.testing.assert_allclose(pred, np.linspace(0, 1, 10) * (hi - lo) + lo)
    assert val_mse == pytest.approx(0.5 * (hi - lo) ** 2)


@pytest.mark.parametrize("scale", ["standard", "minmax"])
def test_mlp_probe_scales_the_target_on_training_samples_and_maps_predictions_back(monkeypatch, scale):
    """The MLP sees the target standardized (default) or min-max scaled with the training samples' statistics;
    its predictions and validation MSE come back in the target's units."""
    from geos2vec.evaluate import protocol
    from geos2vec.evaluate.methods import Method

    rng = np.random.default_rng(1)
    n = 60
    x = rng.normal(size=(n, 3))
    y = rng.lognormal(10.0, 0.8, size=n)  # heavy-tailed, like income
    tr, va, te = np.arange(0, 30), np.arange(30, 45), np.arange(45, 60)
    seen = {}

    def fake_train_group(xs, ys, tr_idx, va_idx, *, eval_idx, lrs, **kw):
        seen["train"] = ys[tr_idx[0]]
        return np.tile(ys[eval_idx[0]] * 0.5, (len(lrs), 1)), np.full(len(lrs), 0.25), None

    monkeypatch.setattr(protocol, "_train_group", fake_train_group)
    (pred, val_mse, _), = protocol._mlp_probe(
        "m", Method([0]), [x], y, [(tr, va, te)], sweep={"hidden": [8], "lr": [1e-3], "dropout": [0.0]},
        fusion="concat", fusion_units=8, max_epochs=1, patience=1, weight_decay=0.0, batch_size=8, seed=0,
        tick=lambda: None, target_scale=scale)
    if scale == "standard":
        loc, span = y[tr].mean(), y[tr].std()
        assert seen["train"].mean() == pytest.approx(0.0, abs=1e-6) and seen["train"].std() == pytest.approx(1.0)
    else:
        loc, span = y[tr].min(), y[tr].max() - y[tr].min()
        assert seen["train"].min() == pytest.approx(0.0, abs=1e-7) and seen["train"].max() == pytest.approx(1.0)
    np.testing.assert_allclose(pred, ((y[te] - loc) / span * 0.5) * span + loc, rtol=1e-5)
    assert val_mse == pytest.approx(0.25 * span ** 2, rel=1e-6)


def test_evaluate_rejects_an_unknown_target_scale():
    rng = np.random.default_rng(0)
    cells = cell_to_children(latlng_to_cell(np.array([40.5]), np.array([-73.5]), 9), 12).ravel()[:30]
    target = pd.Series(rng.normal(size=30), index=pd.Index(cells, name="cell_id"))
    table = pd.DataFrame(rng.normal(size=(30, 2)), index=pd.Index(cells, name="cell_id"))
    with pytest.raises(InvalidInputError, match="target_scale must be one of"):
        E.evaluate(target, {"t": table}, probes="mlp", target_scale="zscore", progress=False)


def test_every_public_name_is_importable_from_the_package():
    """docs/evaluate.md: every public name of the submodules is importable from ``geos2vec.evaluate``."""
    import importlib
    import pkgutil

    import geos2vec.evaluate as ev

    missing = []
    for info in pkgutil.iter_modules(ev.__path__):
        if info.name.startswith("_") or info.name == "mlp_layers":  # Keras, imported on demand (docs say so)
            continue
        mod = importlib.import_module(f"geos2vec.evaluate.{info.name}")
        missing += [f"{info.name}.{n}" for n in getattr(mod, "__all__", ())
                    if getattr(ev, n, None) is not getattr(mod, n)]
    assert not missing
    assert set(ev.__all__) >= {"data_dir", "BEATS_SHARE", "student_t_sf", "seam_table", "corrected_resampled_ttest"}


def test_polygon_pooling_weights_are_area_shares():
    """Each polygon's cells and weights: the share of its area in each cell (shapely overlay in an equal-area
    projection as the reference), index labels kept, any CRS."""
    import geopandas as gpd
    import shapely

    from geos2vec.cells import cell_polygons

    c = cell_to_latlng(latlng_to_cell(np.array([37.33]), np.array([-121.89]), 12))
    lat0, lng0 = float(c[0][0]), float(c[1][0])
    polys = gpd.GeoSeries([shapely.box(lng0 - 0.003, lat0 - 0.002, lng0 + 0.003, lat0 + 0.002),  # inside one cell
                           shapely.Polygon([(lng0 - 0.05, lat0 - 0.04), (lng0 + 0.06, lat0 - 0.03),
                                            (lng0 + 0.01, lat0 + 0.05)])],                     # a triangle, many cells
                          index=["small", "tri"], crs=4326)
    out = E.polygon_pooling(polys.to_crs(3857))  # a projected CRS is converted back to degrees
    assert set(out["sample"]) == {"small", "tri"} and out["cell_id"].dtype == np.uint64
    np.testing.assert_allclose(out.groupby("sample")["weight"].sum(), 1.0, rtol=1e-9)
    small = out[out["sample"] == "small"]
    assert len(small) == 1 and small["cell_id"].iloc[0] == latlng_to_cell(np.array([lat0]), np.array([lng0]), 12)[0]
    # reference for the triangle: every level-12 cell under a dense grid of its bounding box, overlaid
    tri = polys["tri"]
    x0, y0, x1, y1 = tri.bounds
    gy, gx = np.meshgrid(np.linspace(y0, y1, 400), np.linspace(x0, x1, 400), indexing="ij")
    cand = np.unique(latlng_to_cell(gy.ravel(), gx.ravel(), 12))
    cells = gpd.GeoSeries(cell_polygons(cand).values, crs=4326).to_crs(6933)
    shape = gpd.GeoSeries([tri], crs=4326).to_crs(6933).iloc[0]
    area = shapely.area(shapely.intersection(cells.values, shape))
    ref = pd.Series(area / shape.area, index=cand)
    ref = ref[ref > 1e-6]
    got = out[out["sample"] == "tri"].set_index("cell_id")["weight"]
    assert set(got.index[got > 1e-4]) <= set(ref.index) and set(ref.index[ref > 1e-4]) <= set(got.index)
    both = got.reindex(ref.index, fill_value=0.0)
    np.testing.assert_allclose(both.to_numpy(), ref.to_numpy(), atol=2e-4)
    with pytest.raises(ValueError, match="CRS"):
        E.polygon_pooling(gpd.GeoSeries([tri]))
    with pytest.raises(ValueError, match="empty|missing"):
        E.polygon_pooling(gpd.GeoSeries([tri, shapely.Polygon()], crs=4326))


@pytest.mark.parametrize("column, log", [("per_capita_income", False), ("housing_unit_density", True)])
def test_zcta_task_target_is_the_median_per_cell(shared_data, column, log):
    """zcta:<col> over chosen states: the median of the ZIP areas' values per level-12 cell (pandas reference;
    log1p for the documented log targets), east/west of -100 degrees as regions."""
    z = pd.read_csv(shared_data / "labels" / "us_zcta_acs2018.csv", dtype={"zcta": str})
    task = E.load_task(f"zcta:{column}", shared_data, states=["ks", "ri"])
    fips = {"ks": 20, "ri": 44}
    z = z[z["state_fips"].isin(fips.values())].copy()
    y = pd.to_numeric(z[column], errors="coerce")
    z["y"] = np.log1p(y) if log else y
    z = z[np.isfinite(z["y"])]
    ref = z["y"].groupby(latlng_to_cell(z["lat"].to_numpy(), z["lon"].to_numpy(), 12)).median()
    assert len(ref) > 300
    np.testing.assert_array_equal(task.target.index.to_numpy(np.uint64), ref.index.to_numpy(np.uint64))
    np.testing.assert_allclose(task.target.to_numpy(), ref.to_numpy(), rtol=1e-12)
    _, lng = cell_to_latlng(ref.index.to_numpy(np.uint64))
    assert (task.regions.reindex(ref.index).to_numpy() == np.where(lng < -100, "west", "east")).all()
    assert task.block_level == 6


@pytest.mark.parametrize("column, log", [("med_household_income", False), ("total_pop", True)])
def test_ca_tracts_task_target_is_the_median_per_cell_in_the_city_boxes(shared_data, column, log):
    """ca-tracts:<col>: the median of the tracts' internal points per level-12 cell (pandas reference; log1p for
    total_pop), only cells whose centre lies in the San José or Los Angeles POI box, regions by box."""
    t = pd.read_csv(shared_data / "labels" / "ca_tracts_acs.csv")
    task = E.load_task(f"ca-tracts:{column}", shared_data)
    y = pd.to_numeric(t[column], errors="coerce")
    t = t.assign(y=np.log1p(y) if log else y)
    t = t[np.isfinite(t["y"])]
    ref = t["y"].groupby(latlng_to_cell(t["lat"].to_numpy(), t["lon"].to_numpy(), 12)).median()
    lat, lng = cell_to_latlng(ref.index.to_numpy(np.uint64))
    region = pd.Series(None, index=ref.index, dtype=object)
    for city in ("san_jose", "los_angeles"):
        b = CITY_BOXES[city]
        region[(lng >= b[0]) & (lng <= b[2]) & (lat >= b[1]) & (lat <= b[3])] = city
    ref, region = ref[region.notna()], region.dropna()
    assert len(ref) > 100 and set(region) == {"san_jose", "los_angeles"}
    np.testing.assert_array_equal(task.target.index.to_numpy(np.uint64), ref.index.to_numpy(np.uint64))
    np.testing.assert_allclose(task.target.to_numpy(), ref.to_numpy(), rtol=1e-12)
    assert (task.regions.reindex(ref.index).to_numpy() == region.to_numpy()).all()
    assert task.pooling is None and task.block_level == 10 and task.features == "osm:san_jose,los_angeles"


@pytest.mark.parametrize("family, file, column, city", [
    ("nyc-tracts", "nyc_tracts_acs2012.parquet", "medianinco", "nyc"),
    ("chicago-tracts", "chicago_tracts_sdoh.parquet", "EP_PCI", "chicago"),
])
def test_tract_polygon_tasks_keep_tracts_mostly_inside_the_city_box(shared_data, family, file, column, city):
    """nyc-/chicago-tracts: each tract's own value as the target, area-pooled over its cells, kept when at least
    half its area lies in the city's POI box. Reference: shapely area shares in an equal-area CRS; the task
    decides by cell centres, so only tracts that straddle the box edge may disagree (and only a few)."""
    tracts = gpd.read_parquet(shared_data / "labels" / file)
    task = E.load_task(f"{family}:{column}", shared_data)
    y = pd.to_numeric(tracts[column], errors="coerce")
    tracts = tracts[np.isfinite(y)]
    eq = tracts.to_crs(6933)
    box = gpd.GeoSeries([shapely.box(*CITY_BOXES[city])], crs=4326).to_crs(6933).iloc[0]
    share = shapely.area(shapely.intersection(eq.geometry.values, box)) / eq.area.to_numpy()
    kept = tracts.index.isin(task.target.index)
    disagree = kept != (share >= 0.5)
    straddles = (share > 0) & (share < 1)
    assert not (disagree & ~straddles).any()
    assert disagree.sum() <= 0.01 * len(tracts) and kept.sum() > 0.5 * len(tracts)
    assert set(task.target.index) <= set(tracts.index)
    np.testing.assert_array_equal(task.target.to_numpy(), y[task.target.index].to_numpy(float))
    # the pooling is the kept tracts' polygon_pooling, each tract's weights summing to one
    ref = E.polygon_pooling(tracts.loc[task.target.index])
    key = ["sample", "cell_id"]
    got = task.pooling.sort_values(key).reset_index(drop=True)
    ref = ref.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[key], ref[key], check_dtype=False)
    np.testing.assert_allclose(got["weight"], ref["weight"], rtol=1e-12)
    np.testing.assert_allclose(got.groupby("sample")["weight"].sum(), 1.0, rtol=1e-9)
    kept_tracts = tracts.loc[task.target.index]
    if city == "nyc":
        north = kept_tracts["boroname"].isin(["Manhattan", "Bronx"]).to_numpy()
        want = np.where(north, "manhattan-bronx", "brooklyn-queens-staten")
    else:
        lat = kept_tracts.geometry.representative_point().y.to_numpy()
        want = np.where(lat >= 41.8781, "north", "south")
    assert (task.regions.reindex(task.target.index).to_numpy() == want).all() and len(set(want)) == 2
    assert task.block_level == 10 and task.features == f"osm:{city}"
