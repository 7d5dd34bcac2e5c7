"""A user running long jobs in notebooks, scripts, cron jobs and dask workers: long work shows progress, and one
switch (``geos2vec.set_options(progress=False)``, a function's ``progress=``, the command line's ``--quiet``)
turns all of it off; bars are closed when the work fails; nothing floods a log that is not a terminal.

What each test writes is captured (capsys / capfd) and asserted exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import latlng_to_cell


@pytest.fixture(scope="module")
def model():
    return geos2vec.load_model("default")


def _toy_suite(model, monkeypatch):
    """run_suite on a toy task (6 x 6 San José points) without the shared data."""
    from geos2vec.evaluate import suite
    from geos2vec.evaluate.tasks import Task

    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(6), -121.95 + 0.02 * np.arange(6), indexing="ij")
    cells = np.unique(latlng_to_cell(lat.ravel(), lng.ravel(), 12))
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(rng.poisson(0.7, (len(cells), len(model.channels))).astype(float),
                          index=pd.Index(cells, name="cell_id"), columns=list(model.channels))
    target = pd.Series(rng.normal(size=len(cells)), index=pd.Index(cells, name="cell_id"), name="y")
    task = Task(name="toy", target=target, pooling=None, regions=pd.Series("a", index=target.index),
                block_level=9, features="toy-source")
    monkeypatch.setattr(suite, "load_task", lambda name, data_dir=None, states=None: task)
    monkeypatch.setattr(suite, "load_features", lambda source, data_dir=None: (counts, None))

    def run(**kw):
        return suite.run_suite(["toy"], splits=["random"], probes=["ridge"], model=model, modes=["patch"],
                               untrained=False, n_splits=2, log=None, location_params={"frequency_num": 2}, **kw)
    return run


# --------------------------------------------------------------------------- run_suite
@pytest.mark.parametrize(("option", "arg", "bars"), [
    (True, False, []),                                                  # showed "embedding (patch)" anyway
    (False, True, ["embedding (patch)", "evaluate y (random)"]),        # the argument wins both ways
    (True, None, ["embedding (patch)", "evaluate y (random)"]),
    (False, None, []),
])
def test_run_suite_progress_argument_reaches_the_embedding_bars(model, monkeypatch, capsys, option, arg, bars):
    run = _toy_suite(model, monkeypatch)
    capsys.readouterr()
    with geos2vec.set_options(progress=option):
        scores, _ = run(progress=arg)
        assert geos2vec.get_options()["progress"] is option            # the block's option is back
    assert set(scores.method) >= {"S2Vec (patch)", "counts"}
    out, err = capsys.readouterr()
    assert out == ""
    shown = [name for name in ("embedding (patch)", "evaluate y (random)") if name in err]
    assert shown == bars
    if not bars:
        assert err == ""
