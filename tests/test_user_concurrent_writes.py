"""A user running several jobs at once on one filesystem (a notebook and a cron job, a Slurm array, joblib workers).

Two processes writing one output at the same time must leave one writer's complete output (never a mix, never a
truncated file); a reader sees the old or the new file whole. Races are forced with events between processes
(``fork``), so that the old code loses every time, not once in a while.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec._jsonfile import atomic_path, temporary_name
from geos2vec.evaluate import report
from geos2vec.io import download

from _http import mirror

pytestmark = pytest.mark.skipif(os.name != "posix" or "fork" not in multiprocessing.get_all_start_methods(),
                                reason="races between forked processes")
_MP = multiprocessing.get_context("fork") if os.name == "posix" else None


def _run(target, *args):
    """Start ``target(queue, *args)`` in a forked process; ``(process, queue)``."""
    q = _MP.Queue()
    p = _MP.Process(target=target, args=(q, *args))
    p.start()
    return p, q


def _result(p, q, timeout=30):
    out = q.get(timeout=timeout)
    p.join(timeout)
    return out


# --- write_report / evaluate --out: a folder written as a set --------------------------------------------------


def _scores(r2: float) -> pd.DataFrame:
    rows = [{"task": "t", "split": "random", "rep": k, "method": m, "probe": "ridge", "n_cells": 50, "n_test": 10,
             "r2": r2 + 0.01 * k + (0.05 if m == "A" else 0.0), "mae": 1.0} for k in range(3) for m in ("A", "B")]
    return pd.DataFrame(rows)


def _report_writer(q, out, r2, pause_after_tables, done):
    """Write a report of ``r2``; with ``pause_after_tables``, wait (<= 2 s) for ``done`` after the CSV files."""
    try:
        if pause_after_tables:
            real = report.plot_task

            def slow(*a, **k):
                done.wait(2)  # the other run writes its whole report meanwhile (or waits for this one)
                return real(*a, **k)

            report.plot_task = slow
        report.write_report(_scores(r2), out, title=f"run {r2}", config={"r2": r2})
        q.put("ok")
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        q.put(repr(exc))
    finally:
        if not pause_after_tables:
            done.set()


def _which_run(out):
    """The run each file of a report folder comes from (its r2), one entry per file."""
    r2 = lambda frame: round(float(frame["r2"].min()), 2)  # noqa: E731
    return {"scores.csv": r2(pd.read_csv(out / "scores.csv")),
            "summary.csv": round(float(pd.read_csv(out / "summary.csv")["r2_mean"].min()) - 0.01, 2),
            "config.json": json.loads((out / "config.json").read_text())["r2"],
            "report.md": float((out / "report.md").read_text().splitlines()[0].split()[-1])}


def test_two_reports_into_one_folder_at_once_leave_one_complete_report(tmp_path):
    """Old: run 0.2 wrote its tables, run 0.7 its whole report, then run 0.2 its report.md: the folder read as
    one complete report whose report.md was run 0.2's and whose scores.csv, summary.csv and config.json were run
    0.7's. Now the second writer waits for the first, and the folder is one run's."""
    out = tmp_path / "rep"
    done = _MP.Event()
    first, q1 = _run(_report_writer, out, 0.2, True, done)
    while not (out / "config.json").exists():  # the first run is past its tables, in its figure
        time.sleep(0.01)
    second, q2 = _run(_report_writer, out, 0.7, False, done)
    assert _result(first, q1) == "ok" and _result(second, q2) == "ok"
    runs = _which_run(out)
    assert set(runs.values()) == {0.7}, runs  # the one that started last finished last: all of it is its
    # the summary's means are those of pandas over the scores it was written with
    scores = pd.read_csv(out / "scores.csv")
    means = scores.groupby("method")["r2"].mean()
    np.testing.assert_allclose(sorted(means), [0.71, 0.76])
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no lock or temporary file left


def test_a_free_race_of_reports_leaves_one_runs_folder(tmp_path):
    """An unforced race too (two writers started together; the old code lost it about half the time)."""
    out = tmp_path / "rep"
    procs = [_run(_report_writer, out, r2, False, _MP.Event()) for r2 in (0.3, 0.6)]
    assert [_result(p, q) for p, q in procs] == ["ok", "ok"]
    runs = _which_run(out)
    assert len(set(runs.values())) == 1 and set(runs.values()) <= {0.3, 0.6}, runs


# --- download_osm of one extract into one cache folder ---------------------------------------------------------

BOX = (9.47, 47.05, 9.64, 47.27)


def _downloader(q, url, cache, hold):
    """``download_osm`` into ``cache``; with ``hold`` set, stop before checking the finished ``.part`` (<= 2 s)."""
    try:
        if hold is not None:
            real = download._md5

            def slow(path):
                if path.name.endswith(".part"):
                    hold.wait(2)
                return real(path)

            download._md5 = slow
        path = geos2vec.io.download_osm(BOX, cache_dir=cache, index_url=url, retries=0, progress=False)
        q.put(("ok", str(path), hashlib.md5(path.read_bytes()).hexdigest()))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        q.put((repr(exc), None, None))


def test_two_processes_downloading_one_extract_into_one_cache(tmp_path):
    """Old: both wrote ``<extract>.part`` (a fixed name); the second found the first's finished file, started over
    on it, and renamed it into place, and the first then failed with a bare ``FileNotFoundError`` of the
    ``.part`` (two processes of one cron job, or a Slurm array, fetching one extract). Now the second waits for
    the first's download, then takes the verified file from the cache without fetching it again."""
    body = os.urandom(300_000)
    srv = mirror(body, BOX)
    try:
        url, cache = srv.url + "/index-v1.json", tmp_path / "cache"
        hold = _MP.Event()
        first, q1 = _run(_downloader, url, cache, hold)
        part = None
        deadline = time.time() + 20
        while part is None and time.time() < deadline:  # the first has its whole .part, not yet checked
            part = next((p for p in cache.rglob("*.part") if p.stat().st_size == len(body)), None)
            time.sleep(0.01)
        second, q2 = _run(_downloader, url, cache, None)
        r2 = _result(second, q2)
        hold.set()
        r1 = _result(first, q1)
        want = hashlib.md5(body).hexdigest()
        assert r1[0] == "ok" and r2[0] == "ok", (r1, r2)
        assert r1[1:] == r2[1:] == (r1[1], want)
        with open(r1[1], "rb") as f:
            assert f.read() == body
        assert [p for p, _ in srv.log].count("/europe/liechtenstein-latest.osm.pbf") == 1  # fetched once
        left = sorted(p.name for p in (cache).rglob("*") if p.is_file() and "index" not in p.parts)
        assert left == ["liechtenstein-latest.osm.pbf", "liechtenstein-latest.osm.pbf.md5"]
    finally:
        srv.close()


# --- single files: temporary names, readers during a replacement -------------------------------------------------


def test_temporary_names_differ_between_threads_and_processes(tmp_path):
    """Checked fine: the hidden temporary name holds the process id and a random part (no fixed ".tmp")."""
    target = tmp_path / "x.json"
    names = set()
    threads = [threading.Thread(target=lambda: names.add(temporary_name(target, ".tmp").name)) for _ in range(50)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(names) == 50 and all(f".x.json.{os.getpid()}@" in n for n in names)
    p, q = _run(lambda q: q.put(temporary_name(target, ".tmp").name))
    other = _result(p, q)
    assert f".{p.pid}@" in other and other not in names


def _stats_saver(q, path, value, n):
    try:
        stats = geos2vec.FeatureStats.fit(pd.DataFrame({"a": [value, value + 2.0]}))
        for _ in range(n):
            stats.save(path)
        q.put("ok")
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        q.put(repr(exc))


def test_readers_see_a_whole_feature_stats_file_while_two_processes_replace_it(tmp_path):
    """Checked fine: FeatureStats.save of two processes at once, 150 times each, while this process reads it:
    every read is one writer's complete file (mean 1 or 11), never a partial or mixed one."""
    path = tmp_path / "stats.json"
    geos2vec.FeatureStats.fit(pd.DataFrame({"a": [0.0, 2.0]})).save(path)
    procs = [_run(_stats_saver, path, v, 150) for v in (10.0, 20.0)]
    seen = set()
    while any(p.is_alive() for p, _ in procs) or not seen:
        seen.add(float(geos2vec.FeatureStats.load(path).mean[0]))
    assert [_result(p, q) for p, q in procs] == ["ok", "ok"]
    assert seen <= {1.0, 11.0, 21.0} and float(geos2vec.FeatureStats.load(path).mean[0]) in {11.0, 21.0}
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_lock_serialises_threads_and_leaves_no_file(tmp_path):
    """The lock behind the fixes: holders never overlap (threads of one process too), and its file goes."""
    from geos2vec._jsonfile import write_lock

    lock, inside, overlaps = tmp_path / ".x.lock", [], []

    def hold():
        with write_lock(lock):
            inside.append(1)
            overlaps.append(len(inside))
            time.sleep(0.01)
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert overlaps == [1] * 8 and not lock.exists()
    with atomic_path(tmp_path / "y.txt") as tmp:  # unchanged: an atomic write beside it
        tmp.write_text("y")
    assert (tmp_path / "y.txt").read_text() == "y"


# --- to_zarr of one store ---------------------------------------------------------------------------------------


def _images(value: float):
    from geos2vec import cells as C
    from geos2vec import raster as R

    rng = np.random.default_rng(0)
    cells = np.unique(C.latlng_to_cell(40.75 + rng.uniform(-0.2, 0.2, 300), -73.98 + rng.uniform(-0.2, 0.2, 300), 12))
    table = pd.DataFrame(np.full((cells.size, 2), value), index=pd.Index(cells, name="cell_id"), columns=["a", "b"])
    return R.rasterize(table, image_level=10)


def _zarr_writer(q, store, value, pause, done):
    """``to_zarr`` of images all ``value``; with ``pause``, image 1 waits (<= 2 s) for ``done``, after image 0."""
    import dask

    from geos2vec import raster as R

    try:
        da = _images(value).chunk({"image": 1})
        if pause:
            def slow(block, block_info=None):
                if block_info[None]["chunk-location"][0] == 1:
                    done.wait(2)
                return block

            da = da.copy(data=da.data.map_blocks(slow, dtype=da.dtype))
        with dask.config.set(scheduler="synchronous"):  # image by image, in order
            R.to_zarr(da, store)
        q.put("ok")
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        q.put(repr(exc))
    finally:
        if not pause:
            done.set()


def test_two_processes_writing_one_zarr_store_leave_one_writers_images(tmp_path):
    """Old: the first wrote image 0, the second the whole store, then the first the other images and the
    completion mark: ``open_zarr`` read a complete store with images 0-1 all 1.0 and the rest all 2.0 (or the
    first failed, its arrays deleted under it). Now the second waits for the first (a lock beside the store)."""
    pytest.importorskip("zarr")
    from geos2vec import raster as R

    store = tmp_path / "images.zarr"
    done = _MP.Event()
    first, q1 = _run(_zarr_writer, store, 1.0, True, done)
    while not (store / "zarr.json").exists() and not (store / ".zgroup").exists():
        time.sleep(0.01)
    time.sleep(0.3)  # the first is in image 1
    second, q2 = _run(_zarr_writer, store, 2.0, False, done)
    assert (_result(first, q1), _result(second, q2)) == ("ok", "ok")
    out = R.open_zarr(store).load()
    want = _images(2.0)
    assert out.sizes == want.sizes
    # the last writer's images, every one of them (NaN where no cell is, as rasterize writes them)
    np.testing.assert_array_equal(out.values, want.values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.zarr"]  # no lock left beside it


@pytest.mark.parametrize("suffix", [".parquet", ".gpkg"])
def test_embed_and_features_out_of_two_writers_is_always_one_whole_file(tmp_path, suffix):
    """Checked fine: ``--out`` of ``embed`` / ``features`` (``_write_geo``) from two threads at once, 8 times each,
    while another reads it: every read and the final file is one writer's whole table (a unique temporary name
    per writer, renamed into place)."""
    import geopandas as gpd
    import shapely

    from geos2vec.cli_features import _write_geo

    out = tmp_path / f"homes{suffix}"
    frames = {v: gpd.GeoDataFrame({"v": np.full(300, v)}, geometry=shapely.points(np.arange(300.0), 0.0),
                                  crs=4326) for v in (1.0, 2.0)}
    _write_geo(frames[1.0], out)
    errors, seen = [], set()

    def write(v):
        try:
            for _ in range(8):
                _write_geo(frames[v], out)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in (1.0, 2.0)]
    [t.start() for t in threads]
    while any(t.is_alive() for t in threads):
        got = gpd.read_parquet(out) if suffix == ".parquet" else gpd.read_file(out)
        assert len(got) == 300 and got["v"].nunique() == 1  # whole, and one writer's
        seen.add(float(got["v"].iloc[0]))
    [t.join() for t in threads]
    assert errors == [] and seen <= {1.0, 2.0}
    final = gpd.read_parquet(out) if suffix == ".parquet" else gpd.read_file(out)
    assert len(final) == 300 and final["v"].nunique() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary file left
