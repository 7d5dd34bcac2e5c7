"""Review of the API consistency / immutability commits: regressions they left (tests fail on the code before)."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString

import geos2vec
import geos2vec.ontology as ontology_module
from geos2vec.errors import InvalidInputError
from geos2vec.ontology import Ontology


def test_non_road_highways_loads_the_packaged_ontology_once(monkeypatch):
    """Since load_ontology returns a copy (63d88d2), _non_road_highways called it once per road row (eef9209 put
    the call back in its lambda): count_features of 20,000 roads with a custom ontology 0.10 -> 2.3 s."""
    rng = np.random.default_rng(0)
    n = 600
    x, y = rng.uniform(-118.5, -118.1, n), rng.uniform(33.9, 34.2, n)
    kinds = rng.choice(["residential", "primary", "proposed", "construction", "corridor"], n)
    roads = gpd.GeoDataFrame({"highway": kinds}, crs=4326,
                             geometry=[LineString([(a, b), (a + 0.001, b + 0.001)]) for a, b in zip(x, y)])
    calls = []
    real = ontology_module.load_ontology
    monkeypatch.setattr(ontology_module, "load_ontology", lambda *a, **k: calls.append(a) or real(*a, **k))
    onto = Ontology.from_mapping({"amenity=restaurant": "food"})  # road_values=None: every line is a road
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = geos2vec.count_features(None, roads, ontology=onto, level=12)
    assert len(calls) <= 3, len(calls)
    expected = pd.Series(kinds)[~pd.Series(kinds).isin(real().road_values)].value_counts()
    assert table.attrs["report"]["non_road_highways"] == {k: int(v) for k, v in expected.items()}
    assert set(expected.index) == {"proposed", "construction", "corridor"}


def test_progress_is_checked_before_any_work_for_dask_and_frames(monkeypatch):
    """embed / embed_cells of a dask frame took progress="no" and failed at compute, in the tasks (9992d1c said
    they refuse it); embed of a GeoDataFrame refused it only after counting the features."""
    dask_geopandas = pytest.importorskip("dask_geopandas")
    import dask.dataframe as dd

    import geos2vec.embedding as embedding

    pois, _ = geos2vec.demo.load_sample()
    pois = pois.iloc[:40]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = geos2vec.count_features(pois, level=12)
    calls = []
    real = embedding._feature_table
    monkeypatch.setattr(embedding, "_feature_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    lazy = dask_geopandas.from_geopandas(pois, npartitions=2)
    cells = dd.from_pandas(pd.Series(table.index.to_numpy(np.uint64)), npartitions=2)
    for call in (lambda v: geos2vec.embed(lazy, table, progress=v),
                 lambda v: geos2vec.embed_cells(cells, table, progress=v),
                 lambda v: geos2vec.embed(pois, pois, progress=v),
                 lambda v: geos2vec.cell_embeddings(pois, progress=v)):
        for bad in ("no", 2):
            with pytest.raises(InvalidInputError, match="progress must be True, False or None"):
                call(bad)  # at the call, not at .compute()
    assert calls == []  # refused before the features were counted
    # valid values still pass: the same vectors with and without a bar
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet = geos2vec.embed(lazy, table, progress=np.False_).compute()
        plain = geos2vec.embed(pois, table, progress=False)
    assert quiet.filter(like="s2vec_").shape == (40, 256)
    np.testing.assert_array_equal(quiet.filter(like="s2vec_").to_numpy(), plain.filter(like="s2vec_").to_numpy())
