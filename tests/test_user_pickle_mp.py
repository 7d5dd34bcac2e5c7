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


def _options_in_block(conn, block):
    with block:
        conn.send(get_options())
    conn.send(get_options())
    conn.close()


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork start method here")
def test_a_stored_block_sets_its_options_in_a_forked_worker():
    """``quiet = set_options(progress=False)`` at the top of a script, ``set_options(progress=True)`` later, and
    ``with quiet:`` in the function a forked pool (joblib's multiprocessing backend, ``ProcessPoolExecutor()``)
    runs: the worker inherited the block "open" from its making, so it set nothing there."""
    quiet = set_options(progress=False, threads=2)
    later = set_options(progress=True, threads=4)  # noqa: F841 - kept, as a notebook's Out[] keeps it
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_options_in_block, args=(child, quiet), daemon=True)
    proc.start()
    try:
        assert parent.poll(30)
        inside, after = parent.recv(), parent.recv()
    finally:
        proc.join(10)
    assert inside == {"progress": False, "threads": 2}  # was {"progress": True, "threads": 4}
    assert after == {"progress": True, "threads": 4}  # what the block found, not what was there before quiet
    assert get_options() == {"progress": True, "threads": 4}  # the parent's own, untouched


@pytest.fixture(scope="module")
def keras_model(la):
    """A small Keras model built in this process (TensorFlow has run here), with what fit leaves in ``history``."""
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    from geos2vec.model import S2VecModel

    images = geos2vec.rasterize(la[2])
    model = S2VecModel(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2).build(images)
    history = keras.callbacks.History()  # what fit leaves: a History holding the Keras model
    history.set_model(model.keras_model)
    history.history, history.params, history.epoch = {"loss": [0.5, 0.25]}, {"epochs": 2}, [0, 1]
    model.history = history
    with set_options(progress=False):
        return model, images, model.embed(images)


def test_a_keras_model_pickles_and_deepcopies_with_its_weights(keras_model):
    """A model built or trained in the session raised ``TypeError: cannot pickle 'weakref.ReferenceType'``
    (``pickle``, process pools, dask's process scheduler) and ``copy.deepcopy`` a ``RuntimeError`` of TensorFlow's
    default strategy."""
    model, images, ref = keras_model
    set_options(progress=False)
    for twin in (_roundtrip(model), copy.deepcopy(model)):
        assert twin.keras_model is not None and twin.keras_model is not model.keras_model
        assert twin.count_params() == model.count_params() > 0
        for a, b in zip(twin.keras_model.get_weights(), model.keras_model.get_weights(), strict=True):
            assert np.array_equal(a, b)  # every weight, the decoder's too
        assert twin.channels == model.channels and twin.grid == model.grid == (16, 16)
        assert np.array_equal(twin.stats.mean, model.stats.mean) and twin.config == model.config
        assert twin.history.history == {"loss": [0.5, 0.25]} and twin.history.epoch == [0, 1]
        got = twin.embed(images)
        assert got.shape == ref.shape == (images["observed"].sum(), 8)
        assert float(np.abs(got - ref).max()) <= 1e-6
    assert copy.copy(model).keras_model is model.keras_model  # a shallow copy still shares it


def _refusal(f, *args, **kwargs) -> str:
    try:
        f(*args, **kwargs)
        return "ran"
    except Exception as exc:  # noqa: BLE001 - its class and message go back to the test
        return f"{type(exc).__name__}: {exc}"


def _forked(conn, model, images, table):
    """A forked worker: embed with the inherited Keras model and with one unpickled here, then try to fit and to
    evaluate with the MLP probe."""
    from geos2vec.evaluate import evaluate

    with set_options(progress=False):
        inherited = np.asarray(model.embed(images))
        shipped = _roundtrip(model)
        unpickled = np.asarray(shipped.embed(images))
        patch = np.asarray(model.embed(images, mode="patch"))
    fit = _refusal(model.fit, images, epochs=1, verbose=0)
    target = table.sum(axis=1).rename("y")
    mlp = _refusal(evaluate, target, {"counts": table}, n_splits=1, probes=["mlp"], progress=False)
    conn.send((inherited, unpickled, patch, shipped.keras_model is None, fit, mlp))
    conn.close()


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork start method here")
def test_a_worker_forked_after_tensorflow_ran_embeds_instead_of_hanging(keras_model, la):
    """``ProcessPoolExecutor()`` forks on Linux (Python < 3.14): after TensorFlow ran in the parent, a Keras model's
    embed waited forever in the worker, as did fit and evaluate's MLP probe. The encoder now runs in NumPy from the
    Keras weights (float32 rounding apart, the same vectors); fit and the MLP probe say to use 'spawn'."""
    model, images, ref = keras_model
    with set_options(progress=False):
        ref_patch = np.asarray(model.embed(images, mode="patch"))
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_forked, args=(child, model, images, la[2]), daemon=True)
    proc.start()
    try:
        assert parent.poll(60), "the forked worker hung"
        inherited, unpickled, patch, numpy_model, fit, mlp = parent.recv()
    finally:
        proc.kill()
        proc.join(10)
    ref = np.asarray(ref)
    assert np.abs(inherited - ref).max() <= 1e-5 and np.abs(unpickled - ref).max() <= 1e-5
    assert np.abs(patch - ref_patch).max() <= 1e-6
    assert numpy_model  # unpickled in the forked worker as NumPy weights, not a Keras model
    assert fit.startswith("ForkedTensorFlowError") and "spawn" in fit
    assert mlp.startswith("ForkedTensorFlowError: evaluate's MLP probe") and "spawn" in mlp
