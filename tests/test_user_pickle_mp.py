"""A data scientist who parallelises with process pools and pickles what she passes around.

Objects go through ``pickle`` / ``copy.deepcopy`` and into a *spawned* worker (a fresh interpreter: nothing of the
parent's state but what was pickled), and what comes back must equal the in-process results: counts, their
report and coverage, rasters and their attrs, embeddings within 1e-6, the options a ``with`` block sets.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import pickle
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import geos2vec
from geos2vec.options import get_options, set_options


def _quiet(f, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*a, **k)


def _roundtrip(obj):
    return pickle.loads(pickle.dumps(obj))


@pytest.fixture(scope="module")
def la():
    pois, roads = geos2vec.demo.load_sample()
    table = _quiet(geos2vec.count_features, pois, roads, level=12, coverage="infer")
    return pois, roads, table


def _worker(pois, roads, homes, model, stats, quiet):
    """Runs in a spawned process: the options of a pickled ``set_options`` block, and the parent's calls."""
    with quiet:
        options = get_options()
    after = get_options()
    table = _quiet(geos2vec.count_features, pois, roads, level=12, coverage="infer")
    images = geos2vec.rasterize(table)
    out = homes.s2vec.embed(features=table, model=model, progress=False)
    return options, after, table, images, out, stats.transform(table)


def test_a_spawned_worker_gets_the_parents_results_and_its_options_block(la):
    """A ``set_options`` object pickled into a worker set nothing there (it travelled as an already-open block),
    and its end restored the parent's old values: the worker's bars showed and its BLAS threads were not set."""
    pois, roads, table = la
    homes = pois.sample(20, random_state=0)[["name", "geometry"]]
    model = geos2vec.load_model("default")
    stats = geos2vec.FeatureStats.fit(table, log1p=True)
    quiet = set_options(progress=False, threads=2)
    set_options(progress=True, threads=1)  # the parent goes on with its defaults; the worker starts from them
    ref = homes.s2vec.embed(features=table, model=model, progress=False)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        options, after, t2, images, out, scaled = pool.submit(_worker, pois, roads, homes, model, stats,
                                                              quiet).result(timeout=120)
    assert options == {"progress": False, "threads": 2}  # was {"progress": True, "threads": 1}
    assert after == {"progress": True, "threads": 1}
    assert t2.equals(table) and t2.attrs == table.attrs  # counts, report and coverage
    assert images.identical(geos2vec.rasterize(table))  # values, coords and attrs
    assert out.index.equals(homes.index) and out.attrs == ref.attrs
    assert (out["s2_cell"] == ref["s2_cell"]).all()
    e, r = out.filter(like="s2vec_").to_numpy(), ref.filter(like="s2vec_").to_numpy()
    assert np.array_equal(np.isnan(e), np.isnan(r)) and np.nanmax(np.abs(e - r)) <= 1e-6
    assert np.array_equal(scaled.to_numpy(), stats.transform(table).to_numpy())


def test_a_pickled_set_options_block_sets_its_options_in_a_fresh_process_state():
    """What a worker does with a pickled block, in this process: the options back at their defaults first."""
    quiet = set_options(progress=False)
    set_options(progress=True)
    for shipped in (_roundtrip(quiet), copy.deepcopy(quiet)):
        assert repr(shipped) == "<set_options: progress=False (was True)>"
        with shipped:
            assert get_options()["progress"] is False  # was True: the block set nothing
        assert get_options()["progress"] is True
        with shipped:  # a second block (a task run twice in the same worker) sets it again
            assert get_options()["progress"] is False
        assert get_options()["progress"] is True


def test_a_keras_model_pickles_and_deepcopies_with_its_weights(la):
    """A model built or trained in the session raised ``TypeError: cannot pickle 'weakref.ReferenceType'``
    (``pickle``, process pools, dask's process scheduler) and ``copy.deepcopy`` a ``RuntimeError`` of TensorFlow's
    default strategy."""
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    from geos2vec.model import S2VecModel

    _, _, table = la
    images = geos2vec.rasterize(table)
    model = S2VecModel(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2).build(images)
    history = keras.callbacks.History()  # what fit leaves: a History holding the Keras model
    history.set_model(model.keras_model)
    history.history, history.params, history.epoch = {"loss": [0.5, 0.25]}, {"epochs": 2}, [0, 1]
    model.history = history
    set_options(progress=False)
    ref = model.embed(images)
    for twin in (_roundtrip(model), copy.deepcopy(model)):
        assert twin.keras_model is not None and twin.keras_model is not model.keras_model
        assert twin.count_params() == model.count_params() > 0
        assert twin.channels == model.channels and twin.grid == model.grid == (16, 16)
        assert np.array_equal(twin.stats.mean, model.stats.mean) and twin.config == model.config
        assert twin.history.history == {"loss": [0.5, 0.25]} and twin.history.epoch == [0, 1]
        got = twin.embed(images)
        assert got.shape == ref.shape == (len(table), 8)
        assert float(np.abs(got - ref).max()) <= 1e-6
    assert copy.copy(model).keras_model is model.keras_model  # a shallow copy still shares it
