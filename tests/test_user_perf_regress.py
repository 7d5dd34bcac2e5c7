"""The one-pass per-cell sums by value (geos2vec._value_sums) give the bits of the lexsort + bincount they replace."""

import numpy as np
import pytest

from geos2vec import _cover
from geos2vec._value_sums import add_rows, cell_sums, sums_by_value


def _values(rng, n, f, dtype=np.float64):
    v = rng.normal(0, 1e3, (n, f)) * 10.0 ** rng.integers(-8, 8, (n, f))
    v[rng.random((n, f)) < 0.05] = np.nan
    v[rng.random((n, f)) < 0.05] = -0.0
    v[rng.random((n, f)) < 0.1] = 1.5  # ties
    return v.astype(dtype)


def _same_bits(a, b):
    a, b = np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    assert np.array_equal(a[ok].view(np.int64), b[ok].view(np.int64))


@pytest.mark.parametrize("n_cells", [1, 7, 300, 5000])  # long segments (numba's sort) and short (insertion)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sums_by_value_are_the_lexsorted_bincount(n_cells, dtype):
    rng = np.random.default_rng(n_cells)
    dest = rng.integers(0, n_cells, 4000)
    v = _values(rng, 4000, 3, dtype)
    got, _ = sums_by_value(dest, v, n_cells, skip_nan=False)
    for j in range(3):
        by = np.lexsort((v[:, j], dest))
        _same_bits(got[:, j], np.bincount(dest[by], weights=v[by, j], minlength=n_cells))


@pytest.mark.parametrize("mean", [False, True])
def test_cell_sums_are_the_reduce_kernel_of_lexsorted_rows(mean):
    rng = np.random.default_rng(1)
    n_cells = 400
    dest = rng.integers(0, n_cells - 50, 3000)  # cells without values: sum 0, mean NaN
    v = _values(rng, 3000, 1)[:, 0]
    by = np.lexsort((v, dest))
    want, _ = _cover.reduce_numeric_kernel(dest[by], np.arange(n_cells), v[by], n_cells, int(mean))
    got = cell_sums(dest, v, n_cells, mean=mean)
    _same_bits(got, want)
    assert (got[n_cells - 50:] == 0).all() if not mean else np.isnan(got[n_cells - 50:]).all()


def test_add_rows_counts_with_add_at_and_floats_by_value():
    rng = np.random.default_rng(2)
    dest = rng.integers(0, 200, 1500)
    v = _values(rng, 1500, 4)
    v[:, :2] = rng.integers(0, 9, (1500, 2))  # count columns
    got = add_rows(dest, v, 200, np.array([False, False, True, True]))
    want = np.zeros((200, 4))
    np.add.at(want, dest, v)
    for j in (2, 3):
        by = np.lexsort((v[:, j], dest))
        want[:, j] = np.bincount(dest[by], weights=v[by, j], minlength=200)
    _same_bits(got, want)
    _same_bits(add_rows(dest, v[:, 2:], 200, np.array([True, True])), want[:, 2:])
    assert add_rows(dest[:0], v[:0], 3, np.array([True] * 4)).shape == (3, 4)
