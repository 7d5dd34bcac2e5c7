"""The on-disk embedding cache of ``run_suite(..., cache_dir=...)`` (``geos2vec evaluate --task ... --cache DIR``).

A cached call must give exactly what embedding again gives, without embedding; anything that changes the
embeddings (the model's weights or normalization, the counts, the cells, the modes) must miss the cache; and
an interrupted write must never be read back as a cache.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import latlng_to_cell
from geos2vec.evaluate import suite
from geos2vec.evaluate.methods import model_embeddings
from geos2vec.options import set_options


@pytest.fixture(scope="module")
def model():
    return geos2vec.load_model("default")


@pytest.fixture(autouse=True)
def _no_bars():
    set_options(progress=False)
    yield
    set_options(progress=True)


def _cells_and_counts(model, n_side=5, seed=0):
    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(n_side), -121.95 + 0.02 * np.arange(n_side), indexing="ij")
    cells = np.unique(latlng_to_cell(lat.ravel(), lng.ravel(), 12))
    rng = np.random.default_rng(seed)
    counts = pd.DataFrame(rng.poisson(0.7, (len(cells), len(model.channels))).astype(float),
                          index=pd.Index(cells, name="cell_id"), columns=list(model.channels))
    return cells, counts


class _Counter:
    """``model_embeddings`` that counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return model_embeddings(*args, **kwargs)


def _refuse(*args, **kwargs):
    raise AssertionError("embedded again: the cache was not used")


def _files(path, pattern="*"):
    return sorted(p.name for p in path.glob(pattern))


def test_second_call_reads_the_same_embeddings_without_embedding(model, tmp_path, monkeypatch):
    cells, counts = _cells_and_counts(model)
    modes = ["contextual", "patch"]
    reference = model_embeddings(cells, counts, model, modes)            # no cache involved
    first = suite._embeddings(cells, counts, model, modes, "S2Vec", tmp_path)
    assert list(first) == list(reference) == ["S2Vec (contextual)", "S2Vec (patch)"]
    for name in reference:
        pd.testing.assert_frame_equal(first[name], reference[name], check_exact=True)
    assert len(_files(tmp_path, "embeddings-*.parquet")) == 1 and not _files(tmp_path, "*.tmp")
    monkeypatch.setattr(suite, "model_embeddings", _refuse)
    second = suite._embeddings(cells, counts, model, modes, "S2Vec", tmp_path)
    assert list(second) == list(reference)                              # the same methods, in the same order
    for name in reference:
        pd.testing.assert_frame_equal(second[name], reference[name], check_exact=True)
        assert second[name].index.dtype == np.uint64 and second[name].index.name == "cell_id"
    # without a cache folder nothing is read or written: it embeds
    with pytest.raises(AssertionError, match="embedded again"):
        suite._embeddings(cells, counts, model, modes, "S2Vec", None)


def test_anything_that_changes_the_embeddings_changes_the_key(model, tmp_path, monkeypatch):
    cells, counts = _cells_and_counts(model)
    counter = _Counter()
    monkeypatch.setattr(suite, "model_embeddings", counter)
    base = suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path)["S2Vec (patch)"]
    assert counter.calls == 1

    heavier = copy.copy(model)                                          # one weight changed, nothing else
    heavier.numpy_weights = dict(model.numpy_weights)
    heavier.numpy_weights["patch_embed/bias"] = model.numpy_weights["patch_embed/bias"] + np.float32(0.5)
    assert suite._model_fingerprint(heavier) != suite._model_fingerprint(model)
    renormed = copy.copy(model)                                         # the same weights, another normalization
    renormed.stats = copy.deepcopy(model.stats)
    renormed.stats.mean = renormed.stats.mean + 0.5
    assert suite._model_fingerprint(renormed) != suite._model_fingerprint(model)
    assert suite._model_fingerprint(copy.copy(model)) == suite._model_fingerprint(model)

    other_counts = counts.copy()
    other_counts.iloc[0, 0] += 1.0
    variants = {
        "weights": (cells, counts, heavier, ["patch"]),
        "stats": (cells, counts, renormed, ["patch"]),
        "counts": (cells, other_counts, model, ["patch"]),
        "cells": (cells[:-1], counts, model, ["patch"]),
        "mode": (cells, counts, model, ["contextual"]),
    }
    for i, (what, (c, k, m, modes)) in enumerate(variants.items(), start=2):
        got = suite._embeddings(c, k, m, modes, "S2Vec", tmp_path)
        assert counter.calls == i, f"a changed {what} read the cache of another input"
        ref = model_embeddings(c, k, m, modes)                         # what that input embeds to
        assert list(got) == list(ref)
        for name in ref:
            pd.testing.assert_frame_equal(got[name], ref[name], check_exact=True)
        assert len(_files(tmp_path, "embeddings-*.parquet")) == i
    # the changes do change the embeddings (else the test would prove nothing about stale caches)
    for what in ("weights", "stats", "counts"):
        c, k, m, modes = variants[what]
        assert not np.allclose(model_embeddings(c, k, m, modes)["S2Vec (patch)"].to_numpy(), base.to_numpy())
    # and each input hits its own entry again
    for c, k, m, modes in variants.values():
        suite._embeddings(c, k, m, modes, "S2Vec", tmp_path)
    assert counter.calls == 1 + len(variants)


def test_an_interrupted_write_is_not_read_as_a_cache(model, tmp_path, monkeypatch):
    cells, counts = _cells_and_counts(model, n_side=4)
    reference = model_embeddings(cells, counts, model, ["patch"])
    # the name of this input's entry, from a run in another folder
    probe = tmp_path / "probe"
    suite._embeddings(cells, counts, model, ["patch"], "S2Vec", probe)
    (entry,) = _files(probe, "embeddings-*.parquet")

    cache = tmp_path / "cache"
    cache.mkdir()
    real_to_parquet = pd.DataFrame.to_parquet

    def interrupted(self, path, *args, **kwargs):
        with open(path, "wb") as fh:                                    # half a file, then the process dies
            fh.write(b"PAR1 half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        suite._embeddings(cells, counts, model, ["patch"], "S2Vec", cache)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real_to_parquet)
    assert _files(cache) == []                                          # an interrupt cleans up its half file
    # a process killed outright cannot clean up: its half file stays, under a temporary name
    (cache / f".{entry[:-len('.parquet')]}.killed.tmp").write_bytes(b"PAR1 half written")

    counter = _Counter()
    monkeypatch.setattr(suite, "model_embeddings", counter)
    got = suite._embeddings(cells, counts, model, ["patch"], "S2Vec", cache)
    assert counter.calls == 1                                           # embedded again, not read from the leftover
    pd.testing.assert_frame_equal(got["S2Vec (patch)"], reference["S2Vec (patch)"], check_exact=True)
    assert entry in _files(cache)                                       # a whole entry next to the leftover
    pd.testing.assert_frame_equal(pd.read_parquet(cache / entry).drop(columns="method"),
                                  reference["S2Vec (patch)"], check_exact=True)


def test_a_mode_without_rows_is_cached_as_a_mode_without_rows(model, tmp_path, monkeypatch):
    """Cells whose images hold no feature get no row; a cached run must still return that mode (empty), not drop
    it: a second ``run_suite`` would then evaluate without the model, silently."""
    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(3), -121.95 + 0.02 * np.arange(3), indexing="ij")
    cells = np.unique(latlng_to_cell(lat.ravel(), lng.ravel(), 12))
    far = latlng_to_cell(np.array([40.7]), np.array([-74.0]), 12)      # the only counts: in another city
    counts = pd.DataFrame(np.ones((1, len(model.channels))), index=pd.Index(far, name="cell_id"),
                          columns=list(model.channels))
    reference = model_embeddings(cells, counts, model, ["patch"])
    assert list(reference) == ["S2Vec (patch)"] and reference["S2Vec (patch)"].empty
    suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path)
    monkeypatch.setattr(suite, "model_embeddings", _refuse)
    cached = suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path)
    assert list(cached) == ["S2Vec (patch)"]
    pd.testing.assert_frame_equal(cached["S2Vec (patch)"], reference["S2Vec (patch)"])   # no rows, same columns


def test_run_suite_with_a_cache_gives_the_same_scores_without_embedding(model, tmp_path, monkeypatch):
    from geos2vec.evaluate.tasks import Task

    cells, counts = _cells_and_counts(model, n_side=6)
    rng = np.random.default_rng(3)
    target = pd.Series(rng.normal(size=len(cells)), index=pd.Index(cells, name="cell_id"), name="y")
    task = Task(name="toy", target=target, pooling=None,
                regions=pd.Series("a", index=target.index), block_level=9, features="toy-source")
    monkeypatch.setattr(suite, "load_task", lambda name, data_dir=None, states=None: task)
    monkeypatch.setattr(suite, "load_features", lambda source, data_dir=None: (counts, None))
    kw = dict(splits=["random"], probes=["ridge"], model=model, modes=["patch"], n_splits=2, progress=False,
              log=None, location_params={"frequency_num": 2}, cache_dir=tmp_path)
    counter = _Counter()
    monkeypatch.setattr(suite, "model_embeddings", counter)
    first, _ = suite.run_suite(["toy"], **kw)
    assert counter.calls == 2                                           # the model and its untrained control
    assert {"S2Vec (patch)", "untrained encoder"} <= set(first.method)
    assert len(_files(tmp_path, "embeddings-*.parquet")) == 2
    monkeypatch.setattr(suite, "model_embeddings", _refuse)
    second, _ = suite.run_suite(["toy"], **kw)
    pd.testing.assert_frame_equal(second, first)


def test_concurrent_writers_of_one_entry_use_their_own_temporary_files(model, tmp_path, monkeypatch):
    """Two runs sharing a cache folder may embed the same input at once: each writes its own temporary file, so
    neither can replace the entry with the other's half-written one."""
    import threading

    cells, counts = _cells_and_counts(model, n_side=4)
    reference = model_embeddings(cells, counts, model, ["patch"])
    real_to_parquet = pd.DataFrame.to_parquet
    both_writing = threading.Barrier(2, timeout=30)
    written = []

    def slow(self, path, *args, **kwargs):
        written.append(str(path))
        both_writing.wait()                                             # both writers are between open and replace
        return real_to_parquet(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", slow)
    results, errors = [], []

    def run():
        try:
            results.append(suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(written) == 2 and written[0] != written[1]
    (entry,) = _files(tmp_path)                                         # one entry, no leftovers
    for got in [*results, suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path)]:
        pd.testing.assert_frame_equal(got["S2Vec (patch)"], reference["S2Vec (patch)"], check_exact=True)
