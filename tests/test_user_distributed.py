"""A dask.distributed user: worker *processes* (LocalCluster(processes=True)), not threads.

Results must equal the in-memory path (rows, index, order, values), the client's ``geos2vec.set_options`` must
reach the worker processes, the model is loaded once in the client (not by every partition's task), and a worker
killed in the middle of a zarr write leaves a store that ``open_zarr`` refuses.
"""

from __future__ import annotations

import os
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import raster
from geos2vec.errors import InvalidInputError
from geos2vec.model.s2vec import S2VecModel

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
dgpd = pytest.importorskip("dask_geopandas")
distributed = pytest.importorskip("distributed")

TIMEOUT = 240  # seconds for any one computation on the cluster: a broken cluster fails, never hangs


def _quiet(f, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*a, **k)


@pytest.fixture(scope="module")
def client():
    """One small cluster of two single-threaded worker processes for the module; a killed task is not retried."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                     memory_limit="2GiB", death_timeout=60) as cluster, \
            distributed.Client(cluster, timeout=60) as c:
        c.wait_for_workers(2, timeout=120)
        yield c


@pytest.fixture(scope="module")
def la(shared_data):
    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")
    table = _quiet(geos2vec.count_features, pois, coverage="infer")
    return pois, table


def _compute(client, lazy):
    return client.compute(lazy).result(timeout=TIMEOUT)


def _options_probe() -> type:
    """The bundled model's class, whose ``embed(mode="image", as_frame=True)`` gives the options it ran under.

    One row per image: column 0 ``get_options()["threads"]``, column 1 1.0 where a progress bar would be shown,
    else 0.0, the rest 0. Defined in a function so that cloudpickle ships the class itself (the workers need not
    import this module).
    """

    class OptionsProbe(S2VecModel):
        def embed(self, data, *args, verbose=None, **kwargs):
            from geos2vec.options import get_options, progress

            out = pd.DataFrame(np.zeros((data.sizes["image"], self.embedding_dim), np.float32),
                               index=np.asarray(data["image"].values, np.uint64))
            out.iloc[:, 0] = float(get_options()["threads"])
            out.iloc[:, 1] = 1.0 if progress(verbose) else 0.0
            return out

    return OptionsProbe


def test_client_options_reach_the_worker_processes(client, la):
    _, table = la
    probe = geos2vec.load_model()
    probe.__class__ = _options_probe()
    ids = table.index.to_numpy()[:6]
    with geos2vec.set_options(threads=2, progress=False):
        lazy = geos2vec.embed_cells(dd.from_pandas(pd.Series(ids), npartitions=2), table, model=probe, mode="image")
        rows = dgpd.from_geopandas(gpd.GeoDataFrame(geometry=gpd.points_from_xy(
            *geos2vec.cell_to_latlng(ids)[::-1]), crs=4326), npartitions=2)
        lazy_rows = geos2vec.embed(rows, table, model=probe, mode="image")
    got, got_rows = client.compute([lazy, lazy_rows], sync=False)
    got, got_rows = got.result(timeout=TIMEOUT), got_rows.result(timeout=TIMEOUT)
    # the workers' own defaults are threads=1, progress=True: the client's values must win there
    assert set(client.run(lambda: geos2vec.get_options()["threads"]).values()) == {1}
    np.testing.assert_array_equal(got.iloc[:, 0].to_numpy(), np.full(len(ids), 2.0, np.float32))
    np.testing.assert_array_equal(got_rows["s2vec_0"].to_numpy(), np.full(len(ids), 2.0, np.float32))
    # no per-partition progress bars in the workers' logs
    np.testing.assert_array_equal(got.iloc[:, 1].to_numpy(), np.zeros(len(ids), np.float32))
    np.testing.assert_array_equal(got_rows["s2vec_1"].to_numpy(), np.zeros(len(ids), np.float32))


def test_the_model_is_loaded_once_not_by_every_partition(la, monkeypatch):
    import geos2vec.model as gm

    _, table = la
    loads = []
    real = gm.load_model

    def counting(*a, **k):
        loads.append(a)
        return real(*a, **k)

    monkeypatch.setattr(gm, "load_model", counting)
    ids = table.index.to_numpy()[::40]
    with dask.config.set(scheduler="sync"):
        got = geos2vec.embed_cells(dd.from_pandas(pd.Series(ids), npartitions=3), table, mode="image").compute()
    assert len(loads) == 1  # was once for the output's columns, then once per partition
    ref = geos2vec.embed_cells(ids, table, model=real("default"), mode="image", progress=False)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-6)


def test_counts_and_embeddings_on_worker_processes_equal_memory(client, la):
    pois, table = la
    got = _quiet(geos2vec.count_features, dgpd.from_geopandas(pois, npartitions=3), coverage="infer")
    pd.testing.assert_frame_equal(got, table, check_exact=True)
    assert got.attrs["report"] == table.attrs["report"] and got.attrs["coverage"] == table.attrs["coverage"]

    # rows with a shuffled, duplicated string index and one without a geometry, in a projected CRS
    rows = pois.iloc[::150][["name", "geometry"]].copy()
    rows.index = [f"r{i % 4}" for i in range(len(rows))]
    rows = rows.iloc[np.random.default_rng(0).permutation(len(rows))].to_crs(3857)
    rows.iloc[2, rows.columns.get_loc("geometry")] = None
    lazy = geos2vec.embed(dgpd.from_geopandas(rows, npartitions=3, sort=False), table, mode="image")
    out = _compute(client, lazy)
    mem = geos2vec.embed(rows, table, mode="image", progress=False)
    assert out.index.tolist() == rows.index.tolist() and out["name"].tolist() == rows["name"].tolist()
    assert out.crs == rows.crs
    e = [c for c in mem.columns if c.startswith("s2vec_")]
    np.testing.assert_allclose(out[e].to_numpy(), mem[e].to_numpy(), rtol=0, atol=1e-6)
    assert np.isnan(out[e].to_numpy()[2]).all()


def test_zarr_written_by_workers_and_a_worker_killed_mid_write(client, la, tmp_path):
    _, table = la
    table.to_parquet(tmp_path / "table.parquet")
    lazy_table = dd.read_parquet(tmp_path / "table.parquet", calculate_divisions=True)
    ref = raster.rasterize(table)
    store = tmp_path / "images.zarr"
    raster.to_zarr(raster.rasterize(lazy_table, chunks=1), store)
    back = raster.open_zarr(store).load()
    np.testing.assert_array_equal(back.values, ref.values)
    for name in ("image", "cell_id", "observed", "covered", "available", "feature", "token"):
        np.testing.assert_array_equal(back[name].values, ref[name].values)

    def die_on_last_block(block, block_info=None):  # a crash of the worker writing the last image chunk
        if block_info[0]["chunk-location"][0] == block_info[0]["num-chunks"][0] - 1:
            os._exit(1)
        return block

    da = raster.rasterize(lazy_table, chunks=1)
    assert da.data.numblocks[0] >= 2
    killed = da.copy(data=da.data.map_blocks(die_on_last_block, dtype=da.dtype))
    with pytest.raises(distributed.scheduler.KilledWorker):
        raster.to_zarr(killed, store)  # over the complete store: the first blocks are written, then a crash
    with pytest.raises(InvalidInputError, match="not completely written"):
        raster.open_zarr(store)
    client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed worker


def test_in_memory_pois_are_counted_once_not_by_every_partition(la, monkeypatch):
    import geos2vec.features as gf

    pois, _ = la
    calls = []
    real = gf.count_features

    def counting(*a, **k):
        calls.append(k.get("level"))
        return real(*a, **k)

    rows = pois.iloc[::400][["geometry"]]
    ref = _quiet(geos2vec.embed, rows, pois, mode="image", progress=False)
    monkeypatch.setattr(gf, "count_features", counting)
    with dask.config.set(scheduler="sync"):
        got = _quiet(geos2vec.embed(dgpd.from_geopandas(rows, npartitions=3), pois, mode="image").compute)
    assert calls == [12]  # was once for the output's columns, then once per partition (its warnings each time)
    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=0, atol=1e-6)


def test_a_store_in_memory_is_not_marked_complete_when_workers_wrote_elsewhere(client, la):
    import zarr

    _, table = la
    ref = raster.rasterize(table)
    lazy = raster.rasterize(dd.from_pandas(table, npartitions=2, sort=True), chunks=2)
    store = zarr.storage.MemoryStore()
    # the worker processes write the chunks into their own copies of the store: it was marked complete anyway
    with pytest.raises(InvalidInputError, match="lacks .* chunk files"):
        raster.to_zarr(lazy, store)
    with pytest.raises(InvalidInputError, match="not completely written"):
        raster.open_zarr(store)
    # without empty chunks the loss could not be seen afterwards (the images read as zeros): refused up front
    with pytest.raises(InvalidInputError, match="write_empty_chunks"):
        raster.to_zarr(lazy, zarr.storage.MemoryStore(), write_empty_chunks=False)
    # in this process (threads) a store in memory works, with or without empty chunks
    for kwargs in ({}, {"write_empty_chunks": False}):
        store = zarr.storage.MemoryStore()
        with dask.config.set(scheduler="threads"):
            raster.to_zarr(lazy, store, **kwargs)
        np.testing.assert_array_equal(raster.open_zarr(store).values, ref.values)


def test_marking_a_template_before_its_regions_are_written_is_refused(tmp_path):
    images = raster.rasterize(_quiet(geos2vec.count_features, pd.DataFrame(
        {"lon": [-118.30, -118.31, -100.0], "lat": [34.10, 34.11, 40.0], "fclass": ["cafe", "school", "cafe"]})))
    lazy = images.chunk({"image": 1})
    store = tmp_path / "t.zarr"
    raster.to_zarr(lazy, store, compute=False)
    raster.to_zarr(lazy.isel(image=slice(0, 1)), store, mode="r+", region={"image": slice(0, 1)})
    with pytest.raises(InvalidInputError, match="lacks 1 of the 2 chunk files"):
        raster.mark_zarr_complete(store)  # the second image would read as empty cells
    raster.to_zarr(lazy.isel(image=slice(1, None)), store, mode="r+", region={"image": slice(1, None)})
    raster.mark_zarr_complete(store)
    np.testing.assert_array_equal(raster.open_zarr(store).values, images.values)
