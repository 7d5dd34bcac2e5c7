"""Evaluation task labels audited against the source files (tasks_audit): what each sample's target rests on."""

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = pytest.mark.skipif(not (DATA / "labels" / "nyc_tracts_acs2012.parquet").is_file(),
                                reason="needs ../shared/data/labels")


def test_nyc_unemployment_rate_of_tracts_without_population_is_missing_not_zero():
    import geopandas as gpd

    from geos2vec.evaluate import load_task

    src = gpd.read_parquet(DATA / "labels" / "nyc_tracts_acs2012.parquet")
    empty = src.index[src["poptot"] == 0]
    assert len(empty) == 40 and (src.loc[empty, "UNEMP_RATE"] == 0).all()  # 0/0 written as 0 in the source
    task = load_task("nyc-tracts:UNEMP_RATE", DATA)
    assert not task.target.index.isin(empty).any()  # before: 40 parks, airports, cemeteries as 0 % unemployment
    assert len(task.target) == 2165 - 40
    np.testing.assert_array_equal(task.target.to_numpy(), src.loc[task.target.index, "UNEMP_RATE"].to_numpy())
    assert set(task.pooling["sample"]) == set(task.target.index)
    # a density of no population is a true 0: those tracts stay samples there
    dens = load_task("nyc-tracts:popdty", DATA)
    assert len(dens.target) == 2165 and dens.target.index.isin(empty).sum() == 40
