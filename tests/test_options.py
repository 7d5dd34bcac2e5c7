"""Global options: the progress switch and the BLAS thread budget."""

from __future__ import annotations

import numpy as np
import pytest

import geos2vec
from geos2vec.errors import InvalidInputError
from geos2vec.options import blas_threads, progress


def test_set_options_globally_and_as_a_context():
    before = geos2vec.get_options()
    try:
        geos2vec.set_options(progress=False)
        assert geos2vec.get_options()["progress"] is False and progress() is False and progress(True) is True
        with geos2vec.set_options(threads=3, progress=True):
            assert geos2vec.get_options() == {"progress": True, "threads": 3}
        assert geos2vec.get_options() == {**before, "progress": False}
    finally:
        geos2vec.set_options(**before)
    assert geos2vec.get_options() == before


@pytest.mark.parametrize("kwargs, match", [({"progress": 1}, "progress"), ({"threads": 0}, "threads"),
                                           ({"threads": True}, "threads"), ({"colour": "red"}, "unknown option")])
def test_bad_options_raise(kwargs, match):
    before = geos2vec.get_options()
    with pytest.raises(InvalidInputError, match=match):
        geos2vec.set_options(**kwargs)
    assert geos2vec.get_options() == before


def test_blas_threads_limits_openblas_inside_and_restores_outside():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    np.ones((4, 4)) @ np.ones((4, 4))  # make sure the BLAS is loaded
    outside = blas()
    assert outside
    with geos2vec.set_options(threads=1), blas_threads():
        assert blas() == [1] * len(outside)
    assert blas() == outside
    with geos2vec.set_options(threads=None), blas_threads():
        assert blas() == outside


def test_show_versions_lists_the_installed_stack():
    import io
    from importlib.metadata import version

    buf = io.StringIO()
    geos2vec.show_versions(file=buf)
    text = buf.getvalue()
    assert f"numpy: {version('numpy')}" in text and "geos2vec:" in text and "python:" in text


def test_patch_mode_runs_under_the_thread_budget(monkeypatch):
    """Patch mode's matrix product, like the encoder, runs inside ``blas_threads`` (1 thread by default)."""
    import contextlib

    import pandas as pd
    import threadpoolctl

    from geos2vec import options

    seen = []
    real = options.blas_threads

    @contextlib.contextmanager
    def spy():
        with real():
            seen.append([p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"])
            yield

    model = geos2vec.load_model("default")
    cells = geos2vec.cell_to_children(geos2vec.latlng_to_cell(np.array([40.0]), np.array([-74.0]), 10), 12).ravel()
    table = pd.DataFrame(np.random.default_rng(0).poisson(0.3, (cells.size, len(model.channels))),
                         columns=model.channels, index=pd.Index(cells, name="cell_id"))
    expected = model.embed(table, mode="patch", as_frame=True, verbose=False)
    monkeypatch.setattr(options, "blas_threads", spy)
    with geos2vec.set_options(threads=1):
        got = model.embed(table, mode="patch", as_frame=True, verbose=False)
    assert seen and all(n == 1 for n in seen[0])
    pd.testing.assert_frame_equal(got, expected)
