"""scripts/reconstruction_ceiling.py: the Poisson floor against Monte Carlo and known mixtures."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def ceiling():
    return load_script("reconstruction_ceiling")


def test_var_log1p_matches_monte_carlo(ceiling):
    rng = np.random.default_rng(0)
    lams = np.array([0.0, 0.3, 2.0, 25.0, 300.0])
    got = ceiling.var_log1p(lams)
    assert got[0] == 0.0
    for lam, v in zip(lams[1:], got[1:]):
        ref = np.log1p(rng.poisson(lam, 400_000)).var()
        assert v == pytest.approx(ref, rel=0.02)
    # by hand at lam = 1: P(0) = P(1) = 1/e, P(2) = 1/(2e), ...
    n = np.arange(40)
    p = np.exp(-1.0) / np.cumprod(np.concatenate([[1.0], np.arange(1, 40)]))
    ref = (p * np.log1p(n) ** 2).sum() - (p * np.log1p(n)).sum() ** 2
    assert ceiling.var_log1p([1.0])[0] == pytest.approx(ref, rel=1e-9)


def test_floor_recovers_a_known_mixture_and_skips_unavailable_cells(ceiling):
    rng = np.random.default_rng(1)
    lam = rng.choice([0.0, 1.5, 12.0], size=20_000, p=[0.6, 0.3, 0.1])
    truth = float(ceiling.var_log1p(lam).mean())
    counts = np.stack([rng.poisson(lam), np.zeros_like(lam, dtype=np.int64)], axis=1)
    floor, n = ceiling.poisson_floor(counts)
    assert floor[0] == pytest.approx(truth, rel=0.05)
    assert floor[1] == 0.0 and list(n) == [20_000, 20_000]  # never a count: known to be zero
    values, seen = np.unique(counts[:, 0], return_counts=True)
    grid = np.concatenate([[0.0], np.geomspace(1e-4, 1.5 * values.max(), 200)])
    w, kkt = ceiling.poisson_mixture(values, seen, grid)
    assert w.sum() == pytest.approx(1.0) and kkt < 1.01
    assert float(w @ grid) == pytest.approx(counts[:, 0].mean(), rel=0.01)  # the mixture keeps the mean
    # cells where the channel is unavailable do not count, whatever they hold
    noisy = counts.copy()
    noisy[:5000, 0] = 50
    avail = np.ones(counts.shape, bool)
    avail[:5000, 0] = False
    floor_avail, n_avail = ceiling.poisson_floor(noisy, avail)
    alone, _ = ceiling.poisson_floor(counts[5000:])
    assert floor_avail[0] == pytest.approx(alone[0]) and n_avail[0] == 15_000
