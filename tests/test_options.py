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
