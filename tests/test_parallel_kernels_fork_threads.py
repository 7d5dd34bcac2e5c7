"""Parallel cell kernels in forked children (GNU OpenMP) and from several threads (numba's workqueue layer).

Each case runs in a fresh interpreter: numba's threading layer is chosen once per process.
"""

import os
import subprocess
import sys
import textwrap

import pytest

FORK = textwrap.dedent("""
    import os, numpy as np, geos2vec
    rng = np.random.default_rng(0); n = 100_000
    lat, lng = rng.uniform(-80, 80, n), rng.uniform(-180, 180, n)
    ref = geos2vec.latlng_to_cell(lat, lng, 12)  # the parent launches the parallel kernel
    pid = os.fork()
    if pid == 0:
        ok = np.array_equal(geos2vec.latlng_to_cell(lat, lng, 12), ref)
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    print("child", status)
""")

THREADS = textwrap.dedent("""
    import concurrent.futures as cf, numpy as np, s2sphere, geos2vec
    rng = np.random.default_rng(1); n = 40_000
    lat, lng = rng.uniform(-80, 80, n), rng.uniform(-180, 180, n)
    ref = [s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b)).parent(12).id()
           for a, b in zip(lat[:200], lng[:200])]
    def job(_):  # the first launches happen at once, before the layer is known
        out = [geos2vec.latlng_to_cell(lat, lng, 12) for _ in range(3)]
        return all(np.array_equal(o, out[0]) for o in out) and out[0][:200].tolist() == ref
    with cf.ThreadPoolExecutor(6) as ex:
        print("threads", all(f.result(timeout=240) for f in [ex.submit(job, i) for i in range(6)]))
    import numba; print("layer", numba.threading_layer())
""")


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=400,
                          env={**os.environ, **env})


@pytest.mark.skipif(not hasattr(os, "fork") or not sys.platform.startswith("linux"), reason="fork (Linux)")
def test_a_child_forked_after_a_parallel_launch_computes_the_same_cells():
    p = _run(FORK)
    assert "fork() called from a process already using GNU OpenMP" not in p.stderr
    assert p.stdout.strip().splitlines()[-1] == "child 0", p.stdout + p.stderr


def test_concurrent_launches_under_the_workqueue_layer_do_not_abort():
    p = _run(THREADS, NUMBA_THREADING_LAYER="workqueue")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "threads True" in p.stdout and "layer workqueue" in p.stdout, p.stdout + p.stderr[-2000:]
