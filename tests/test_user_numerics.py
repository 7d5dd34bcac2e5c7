"""The numerical analyst's checks: probes, baselines, normalization and reconstruction losses against NumPy
references written here."""

import numpy as np
import pytest

from geos2vec.errors import InvalidInputError
from geos2vec.evaluate.probes import ridge_onehot_probe, ridge_probe


def _ridge_reference(x, y, train, val, test, alphas):
    """Ridge with an unpenalized intercept, each penalty solved as an augmented least-squares problem."""
    xc = x - x[train].mean(axis=0)
    mu = y[train].mean()
    best = None
    for a in alphas:
        lhs = np.vstack([xc[train], np.sqrt(a) * np.eye(x.shape[1])])
        rhs = np.concatenate([y[train] - mu, np.zeros(x.shape[1])])
        beta = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
        mse = np.mean((xc[val] @ beta + mu - y[val]) ** 2)
        if best is None or mse < best[0]:
            best = (mse, a, xc[test] @ beta + mu)
    return best[2], best[0], best[1]


@pytest.fixture
def groups_task():
    rng = np.random.default_rng(5)
    n, k = 2000, 8
    groups = rng.integers(0, k, n)
    y = (rng.standard_normal(k) * 3)[groups] + rng.standard_normal(n)
    perm = rng.permutation(n)
    train, val, test = np.sort(perm[:200]), np.sort(perm[200:400]), np.sort(perm[400:])
    return groups, y, train, val, test


@pytest.mark.parametrize("alpha", [1.0, 10.0, 100.0])
def test_ridge_onehot_probe_boolean_masks_same_model(groups_task, alpha):
    """Boolean row masks gave ridge_onehot_probe the training size of the whole table (predictions off by up to
    0.11 here); it must fit the model of the documented reference on the centred one-hot."""
    groups, y, train, val, test = groups_task
    masks = [np.isin(np.arange(len(y)), rows) for rows in (train, val, test)]
    onehot = (groups[:, None] == np.unique(groups)[None]).astype(float)
    ref, ref_mse, _ = _ridge_reference(onehot, y, train, val, test, [alpha])
    for rows in ((train, val, test), masks):
        pred, mse, chosen = ridge_onehot_probe(groups, y, *rows, alphas=[alpha])
        np.testing.assert_allclose(pred, ref, atol=1e-9)
        assert mse == pytest.approx(ref_mse, rel=1e-9) and chosen == alpha
        pred, mse, _ = ridge_probe(onehot, y, *rows, alphas=[alpha])
        np.testing.assert_allclose(pred, ref, atol=1e-9)


def test_ridge_probe_near_collinear_matches_lstsq():
    """Counts next to (almost) copies of themselves: the eigendecomposition agrees with least squares."""
    rng = np.random.default_rng(1)
    counts = np.log1p(rng.poisson(2.0, (300, 6)).astype(float))
    x = np.hstack([counts, counts * (1 + 1e-9), counts + 1e8])
    y = counts[:, :3].sum(axis=1) + rng.standard_normal(300)
    train, val, test = np.arange(180), np.arange(180, 240), np.arange(240, 300)
    alphas = np.logspace(-2, 6, 17)
    pred, mse, alpha = ridge_probe(x, y, train, val, test, alphas)
    ref, ref_mse, ref_alpha = _ridge_reference(x, y, train, val, test, alphas)
    assert alpha == ref_alpha and mse == pytest.approx(ref_mse, rel=1e-6)
    np.testing.assert_allclose(pred, ref, atol=1e-6)


@pytest.mark.parametrize("probe", ["ridge", "onehot"])
@pytest.mark.parametrize("bad", [dict(alphas=[]), dict(alphas=[0.0]), dict(alphas=[-1.0]), dict(alphas=[np.nan]),
                                 dict(val=[]), dict(train=[]), dict(train=[0.5, 1.5]), dict(train=[True, False])])
def test_ridge_probes_refuse_bad_rows_and_penalties(groups_task, probe, bad):
    """No validation rows chose the first penalty on a NaN error silently; a penalty of 0 or below divided by zero
    on rank-deficient inputs; an empty list raised NumPy's argmin error."""
    groups, y, train, val, test = groups_task
    args = dict(train=train, val=val, test=test) | bad
    with pytest.raises(InvalidInputError, match="alphas|rows|mask|indices"):
        if probe == "ridge":
            ridge_probe(groups[:, None].astype(float), y, **args)
        else:
            ridge_onehot_probe(groups, y, **args)


def test_ridge_probe_scalar_alpha_is_one_penalty(groups_task):
    """A single number was NumPy's 'too many indices' IndexError; it is the list of that one penalty."""
    groups, y, train, val, test = groups_task
    x = (groups[:, None] == np.unique(groups)[None]).astype(float)
    a = ridge_probe(x, y, train, val, test, alphas=3.0)
    b = ridge_probe(x, y, train, val, test, alphas=[3.0])
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:] == b[1:]


def _local_mean_reference(x, keep, rows, cols, vis_mean, radius=2, prior=4.0):
    """local_mean by loops over the rows x cols image (neighbours within the radius, itself excluded)."""
    b, _, f = x.shape
    out = np.zeros_like(x, dtype=float)
    for i in range(b):
        for r in range(rows):
            for c in range(cols):
                total, m = np.zeros(f), 0.0
                for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
                    for cc in range(max(0, c - radius), min(cols, c + radius + 1)):
                        if (rr, cc) != (r, c):
                            total += keep[i, rr * cols + cc] * x[i, rr * cols + cc]
                            m += keep[i, rr * cols + cc]
                local = total / max(m, 1.0)
                out[i, r * cols + c] = m / (m + prior) * local + prior / (m + prior) * vis_mean[i]
    return out


def test_local_mean_of_rectangular_images_uses_their_grid():
    """4 x 16 crops (64 patches, accepted by the model) were smoothed as if they were 8 x 8 images."""
    from geos2vec.model.reconstruction import baseline_predictions, reconstruction_losses

    rng = np.random.default_rng(3)
    rows, cols, f = 4, 16, 3
    x = rng.standard_normal((2, rows * cols, f))
    mask = (rng.random((2, rows * cols)) < 0.75).astype(float)
    keep = 1.0 - mask
    vis_mean = (keep[..., None] * x).sum(axis=1) / keep.sum(axis=1)[:, None]
    ref = _local_mean_reference(x, keep, rows, cols, vis_mean)
    got = baseline_predictions(x, mask, grid=(rows, cols))["local_mean"]
    np.testing.assert_allclose(got, ref, atol=1e-12)
    sq = _local_mean_reference(x, keep, 8, 8, vis_mean)  # the default reading of 64 patches: square
    np.testing.assert_allclose(baseline_predictions(x, mask)["local_mean"], sq, atol=1e-12)
    table = reconstruction_losses(x, None, mask, grid=(rows, cols))
    expected = (((ref - x) ** 2).mean(axis=-1) * mask).sum() / mask.sum()
    assert table.loc["local_mean", "loss_all"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(InvalidInputError, match="rows \\* cols = 64"):
        baseline_predictions(x, mask, grid=(4, 8))


def test_feature_stats_of_lazy_images_read_block_by_block():
    """FeatureStats.fit of a lazy DataArray (open_zarr, dask) read the whole store into one float64 array (3x the
    store's size at its peak) although docs/large_areas.md says the store is never loaded whole; it is now
    fitted block by block and merged, with the statistics of the in-memory fit."""
    import dask
    import dask.array as dsa
    import xarray as xr
    from dask.callbacks import Callback

    from geos2vec.normalize import FeatureStats

    n, f = 10000, 4  # 10 M values: 82 MB as float64, in blocks of 32 MB
    values = dsa.random.RandomState(0).poisson(0.5, (n, 16, 16, f), chunks=(256, 16, 16, f)).astype(np.int8)
    observed = dsa.random.RandomState(1).random((n, 16, 16), chunks=(256, 16, 16)) < 0.7
    da = xr.DataArray(values, dims=("image", "row", "col", "feature"),
                      coords={"feature": list("abcd"), "observed": (("image", "row", "col"), observed)})
    largest = []

    class Sizes(Callback):
        def _posttask(self, key, result, dsk, state, id):
            largest.append(getattr(result, "nbytes", 0))

    with dask.config.set(scheduler="synchronous"), Sizes():
        stats = FeatureStats.fit(da, log1p=True)
    assert max(largest) < values.nbytes / 2  # never the whole array at once
    memory = da.load()
    x = np.log1p(memory.values[memory["observed"].values].astype(np.float64))
    assert stats.count == len(x)
    np.testing.assert_allclose(stats.mean, x.mean(axis=0), rtol=1e-9)  # 7 M rows summed naively along axis 0
    np.testing.assert_allclose(stats.var, x.var(axis=0), rtol=1e-9)
    assert FeatureStats.fit(memory, log1p=True).channels == stats.channels == list("abcd")


def _cells(n):
    """``n`` distinct level-12 cells along a parallel (about 5 km apart)."""
    from geos2vec.cells import latlng_to_cell

    cells = latlng_to_cell(np.full(n, 40.0), -74.0 + 0.06 * np.arange(n), 12)
    assert len(np.unique(cells)) == n
    return cells


@pytest.mark.parametrize("n_components", [0, -3, 2.7, True])
def test_pca_and_random_projection_refuse_bad_widths(n_components):
    """0 gave an empty embedding and 2.7 two dimensions silently; -3 was a pandas shape error."""
    import pandas as pd

    from geos2vec.evaluate.baselines import pca_embedding, random_projection

    cells = _cells(8)
    table = pd.DataFrame(np.random.default_rng(0).poisson(2.0, (8, 5)).astype(float),
                         index=pd.Index(cells, name="cell_id"))
    for fn in (pca_embedding, random_projection):
        with pytest.raises(InvalidInputError, match="n_components must be a positive integer"):
            fn(table, n_components)


def test_pca_embedding_scores_match_numpy_svd():
    """The scores U S of the centred table: a rotation of it, with the variance of each component."""
    import pandas as pd

    from geos2vec.evaluate.baselines import pca_embedding

    cells = _cells(30)
    x = np.log1p(np.random.default_rng(1).poisson(2.0, (30, 6)).astype(float))
    z = pca_embedding(pd.DataFrame(x, index=pd.Index(cells, name="cell_id")), n_components=4).to_numpy()
    xc = x - x.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(xc.T @ xc))[::-1]
    np.testing.assert_allclose((z**2).sum(axis=0), eig[:4], rtol=1e-10)
    np.testing.assert_allclose(z.T @ z, np.diag(eig[:4]), atol=1e-9)


@pytest.mark.parametrize("dtype", [np.int8, np.float32])
def test_feature_stats_with_0_1_observed_and_available_coordinates(dtype):
    """An int8 ``observed`` (0/1) was used as integer indices: rows 0 and 1 again and again, count 3 and a 5-D
    "mean"; 0/1 masks now mean what booleans do, other values are refused."""
    import xarray as xr

    from geos2vec.normalize import FeatureStats

    rng = np.random.default_rng(0)
    values = rng.poisson(2.0, (3, 4, 4, 2)).astype(float)
    observed = rng.random((3, 4, 4)) < 0.5
    available = rng.random((3, 4, 4, 2)) < 0.8

    def images(obs, avail):
        return xr.DataArray(values, dims=("image", "row", "col", "feature"),
                            coords={"feature": ["a", "b"], "observed": (("image", "row", "col"), obs),
                                    "available": (("image", "row", "col", "feature"), avail)})

    stats = FeatureStats.fit(images(observed.astype(dtype), available.astype(dtype)))
    keep = observed[..., None] & available
    expected_mean = [values[..., k][keep[..., k]].mean() for k in range(2)]
    expected_var = [values[..., k][keep[..., k]].var() for k in range(2)]
    np.testing.assert_array_equal(stats.count, keep.sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(stats.mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(stats.var, expected_var, rtol=1e-12)
    with pytest.raises(InvalidInputError, match="'observed' coordinate must be True/False"):
        FeatureStats.fit(images(observed * 2, available))


def test_log1p_refusal_names_the_channel():
    """A signed aggregate (an elevation mean) under log1p was refused without saying which channel."""
    import pandas as pd

    from geos2vec.normalize import FeatureStats

    table = pd.DataFrame({"cafe": [0, 2, 1], "elev_mean": [-3.0, 5.0, 1.0]})
    with pytest.raises(InvalidInputError, match=r"\['elev_mean'\].*log1p=False"):
        FeatureStats.fit(table, log1p=True)
    stats = FeatureStats.fit(table[["cafe"]], log1p=True)
    with pytest.raises(InvalidInputError, match=r"\['cafe'\]"):
        stats.transform(np.array([[-1.0]]))
    np.testing.assert_allclose(stats.transform(np.array([[2.0]]))[0], (np.log1p(2.0) - stats.mean) / stats.std)
