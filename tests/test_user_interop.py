"""Data from other tools (dask, polars, pyarrow-backed pandas, GeoParquet writers) through geos2vec's public API,
checked against the plain pandas result."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec.features import count_features


@pytest.fixture(scope="module")
def sample():
    pois, roads = geos2vec.demo.load_sample()
    rng = np.random.default_rng(0)
    pois = pois.assign(cuisine=rng.choice(["pizza", "coffee", "thai"], len(pois)),
                       seats=rng.integers(0, 50, len(pois)))
    return pois, roads


def _quiet(f, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*a, **k)


@pytest.mark.parametrize("dask_side", ["pois", "roads"])
def test_dask_extra_columns_with_roads(sample, dask_side):
    """``extra=`` next to roads on the dask path: the roads have no extra column (was "extra column 'cuisine' is
    not a column of pois", as every road partition was counted with ``extra`` too)."""
    dgpd = pytest.importorskip("dask_geopandas")
    dask = pytest.importorskip("dask")
    pois, roads = sample
    extra = {"cuisine": "categories", "seats": "sum"}
    p = dgpd.from_geopandas(pois, npartitions=3) if dask_side in ("pois", "both") else pois
    r = dgpd.from_geopandas(roads, npartitions=4) if dask_side in ("roads", "both") else roads
    with dask.config.set(scheduler="sync"):
        got = _quiet(count_features, p, r, extra=extra)
    # reference: plain pandas for the extras, the in-memory table without extras for the rest
    cells = geos2vec.latlng_to_cell(pois.geometry.y.to_numpy(), pois.geometry.x.to_numpy(), 12)
    plain = _quiet(count_features, pois, roads)
    assert got.index.equals(plain.index)
    pd.testing.assert_frame_equal(got[plain.columns], plain, check_names=False)
    cross = pd.crosstab(cells, pois["cuisine"]).reindex(got.index, fill_value=0)
    for value in ["coffee", "pizza", "thai"]:
        np.testing.assert_array_equal(got[f"cuisine={value}"].to_numpy(), cross[value].to_numpy())
    seats = pois.groupby(cells)["seats"].sum().reindex(got.index, fill_value=0)
    np.testing.assert_array_equal(got["seats"].to_numpy(), seats.to_numpy(dtype=float))
    assert list(got.columns) == list(_quiet(count_features, pois, roads, extra=extra).columns)  # in-memory order
