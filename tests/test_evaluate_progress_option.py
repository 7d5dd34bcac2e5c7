"""``evaluate`` and ``run_suite`` follow ``geos2vec.set_options(progress=...)`` unless given ``progress=``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import cells as C
from geos2vec.evaluate import protocol


def _task():
    rng = np.random.default_rng(0)
    cells = np.unique(C.latlng_to_cell(rng.uniform(34, 34.5, 80), rng.uniform(-118.5, -118, 80), 12))
    x = pd.DataFrame(rng.normal(size=(cells.size, 3)), index=pd.Index(cells, name="cell_id"))
    y = pd.Series(x[0] * 2 + rng.normal(size=cells.size), index=x.index, name="y")
    return y, {"a": x}


@pytest.mark.parametrize(("option", "arg", "shown"), [(True, None, True), (False, None, False),
                                                        (False, True, True), (True, False, False)])
def test_evaluate_progress_follows_the_option(monkeypatch, option, arg, shown):
    import tqdm.auto

    seen = []
    real = tqdm.auto.tqdm

    def spy(*args, **kwargs):
        seen.append(not kwargs.get("disable", False))
        return real(*args, **{**kwargs, "disable": True})

    monkeypatch.setattr(tqdm.auto, "tqdm", spy)
    y, methods = _task()
    with geos2vec.set_options(progress=option):
        protocol.evaluate(y, methods, n_splits=2, probes="ridge", progress=arg)
    assert seen == [shown]  # was shown whatever the option said
