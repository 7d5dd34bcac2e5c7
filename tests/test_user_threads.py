"""A web service: embeddings, cells and options from many threads of one process at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
from conftest import la_downtown

import geos2vec
from geos2vec import options


def _run_together(fn, n, timeout=240):
    """``fn(i, barrier)`` for ``i < n`` in ``n`` daemon threads started at once; results in order.

    Daemon threads and joins with a timeout, not ``ThreadPoolExecutor``: a deadlock fails the test instead of
    hanging it (an executor's workers are joined at exit).
    """
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            results[i] = fn(i, barrier)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), f"threads still running after {timeout} s: a deadlock?"
    if errors:
        raise errors[0]
    return results


def _blas():
    import threadpoolctl

    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


def test_blas_threads_does_not_rescan_the_libraries_on_every_call(monkeypatch):
    """Each block built a ``ThreadpoolController`` (a scan of every loaded library, ~1.3 ms: a quarter of a small
    patch-mode embed); it is now built again only when a library was loaded or unloaded."""
    import threadpoolctl

    if options._loaded_libraries_key() is None:
        pytest.skip("no cheap way to see library loads on this platform: every block scans")
    np.ones((4, 4)) @ np.ones((4, 4))
    outside = _blas()
    if not outside:
        pytest.skip("no BLAS seen by threadpoolctl")
    built = []
    real = threadpoolctl.ThreadpoolController

    class Counting(real):
        def __init__(self, *a, **k):
            built.append(1)
            super().__init__(*a, **k)

    def blas():  # threadpool_info() would build a (counted) controller
        return [p["num_threads"] for p in real().info() if p["user_api"] == "blas"]

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Counting)
    monkeypatch.setitem(options._LIBS, "controller", None)  # as in a fresh process
    for _ in range(3):
        with geos2vec.set_options(threads=1), options.blas_threads():
            assert blas() == [1] * len(outside)
        assert blas() == outside
    assert len(built) == 1


def test_a_blas_loaded_after_the_first_block_is_limited_too():
    """The cached view of the libraries must not miss one loaded later (scipy brings its own OpenBLAS)."""
    pytest.importorskip("scipy")
    code = textwrap.dedent("""
        import numpy as np, threadpoolctl
        from geos2vec import options
        def blas():
            return {p["filepath"]: p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}
        np.ones((4, 4)) @ np.ones((4, 4))
        with options.blas_threads():
            pass
        key = options._loaded_libraries_key()
        import scipy.linalg  # noqa: F401
        before = blas()
        with options.blas_threads():
            inside = blas()
        print(key != options._loaded_libraries_key(), len(before), sorted(set(inside.values())), blas() == before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    changed, n_libs, inside, restored = out.stdout.split(" ", 3)
    if int(n_libs) < 2:
        pytest.skip("scipy shares NumPy's BLAS here: no library is loaded later")
    if options._loaded_libraries_key() is not None:
        assert changed == "True"
    assert inside == "[1]" and restored.strip() == "True"


@pytest.fixture(scope="module")
def la(shared_data):
    pois, roads, table = la_downtown(shared_data)
    rows = pois.sample(24, random_state=3)[["name", "geometry"]]
    return rows, table


def test_concurrent_requests_give_the_serial_vectors_and_leave_blas_and_options_alone(la):
    """Eight threads embed with different modes and ``threads=`` at once: the same bytes as one call alone, and
    afterwards the BLAS and the options are as before."""
    rows, table = la
    model = geos2vec.load_model("default")
    np.ones((4, 4)) @ np.ones((4, 4))
    blas_before, options_before = _blas(), geos2vec.get_options()
    # the encoder on one thread (a multi-threaded BLAS on a busy 2-core machine is 10x slower), patch mode on more
    plan = [("contextual", 1), ("patch", 2), ("tiled", 1), ("patch", None)]

    def embed(i, barrier=None):
        if barrier is not None:
            barrier.wait(timeout=60)
        mode, threads = plan[i % 4]
        with geos2vec.set_options(threads=threads, progress=False), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = rows.iloc[i:].s2vec.embed(features=table, model=model, mode=mode)
        assert out.index.equals(rows.index[i:])
        return out.filter(like="s2vec_").to_numpy()

    serial = [embed(i) for i in range(8)]
    together = _run_together(embed, 8)
    for a, b in zip(serial, together):
        # NumPy 2.4.6's OpenBLAS rounds some float32 sums by how its threads split the work (up to ~1e-6, as
        # the patch-mode invariance tests); rows, NaNs and values otherwise agree
        assert np.array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6, equal_nan=True)
        assert np.isfinite(a).any()
    assert _blas() == blas_before
    assert geos2vec.get_options() == options_before


@pytest.fixture(scope="module")
def weights():
    return geos2vec.load_model("default").numpy_weights


@pytest.mark.parametrize("shape, heads, match", [((2, 256, 115), 8, r"\(batch, 256, 116\)"),
                                                 ((256, 116), 8, r"\(batch, 256, 116\)"),
                                                 ((2, 16, 16, 116), 8, r"rows \* cols"),
                                                 ((2, 256, 116), 0, "num_heads"),
                                                 ((2, 256, 116), 7, "num_heads"),
                                                 ((2, 256, 116), True, "num_heads")])
def test_the_numpy_encoder_names_a_wrong_input_shape(weights, shape, heads, match):
    """A request's images of the wrong shape gave NumPy's broadcast or reshape errors (or a ZeroDivisionError)."""
    from geos2vec.errors import InvalidInputError
    from geos2vec.model.numpy_encoder import encode, patch_project

    assert weights["patch_embed/kernel"].shape == (116, 256) and weights["pos_embed"].shape[-2] == 256
    x = np.zeros(shape, np.float32)
    with pytest.raises(InvalidInputError, match=match):
        encode(weights, x, heads)
    if shape[-1] != 116:
        with pytest.raises(InvalidInputError, match="116 features"):
            patch_project(weights, x)
    # the right shape still works: float32 tokens, and patch_project is x @ W + b
    ok = np.random.default_rng(0).random((1, 256, 116), dtype=np.float32)
    with options.blas_threads():  # one BLAS thread: a busy machine runs it 10x slower on two
        assert encode(weights, ok, 8).shape == (1, 256, 256)
    ref = ok[0].astype(np.float64) @ weights["patch_embed/kernel"] + weights["patch_embed/bias"]
    assert np.allclose(patch_project(weights, ok[0]), ref, atol=1e-4)


def test_embed_leaves_the_warning_filters_alone_under_threads(la, monkeypatch):
    """``embed`` swapped the process' warning filters (``warnings.catch_warnings``) around its encoding: threads
    embedding at once left ``("ignore", Warning)`` installed for the rest of the session, hiding every warning.
    Now it does not touch the filters, and the per-row NaN warning still comes once per call."""
    rows, table = la
    model = geos2vec.load_model("default")
    touched = []
    real = warnings.simplefilter

    def spy(*a, **k):  # calls made by geos2vec's own code (pytest.warns sets filters too)
        if sys._getframe(1).f_globals.get("__name__", "").startswith("geos2vec"):
            touched.append(a)
        return real(*a, **k)

    monkeypatch.setattr(warnings, "simplefilter", spy)
    far = rows.copy()
    far.geometry = far.geometry.translate(xoff=5.0)  # no features there: NaN rows and the warning
    with geos2vec.set_options(progress=False), pytest.warns(UserWarning, match="NaN") as rec:
        out = far.s2vec.embed(features=table, model=model, mode="tiled")
    assert out.filter(like="s2vec_").isna().all().all()
    assert sum("NaN" in str(w.message) for w in rec) == 1
    assert touched == []
    monkeypatch.setattr(warnings, "simplefilter", real)

    def blanket():  # filters that hide every (user) warning
        return [f for f in warnings.filters if f[0] == "ignore" and f[2] in (Warning, UserWarning) and f[1] is None]

    before = blanket()

    def many(i, barrier=None):
        if barrier is not None:
            barrier.wait(timeout=60)
        with geos2vec.set_options(progress=False):
            for _ in range(4):
                rows.iloc[i:].s2vec.embed(features=table, model=model, mode="tiled")

    _run_together(many, 3)
    assert blanket() == before
