"""evaluate: a block level that is not a whole number is refused; a regions Series on other ids says how to index it."""

import numpy as np
import pandas as pd
import pytest

from geos2vec.cells import latlng_to_cell
from geos2vec.errors import InvalidInputError, InvalidTypeError
from geos2vec.evaluate import evaluate


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    lat, lng = rng.uniform(36, 40, 300), rng.uniform(-100, -94, 300)
    cells = np.unique(latlng_to_cell(lat, lng, 12))
    target = pd.Series(rng.normal(size=cells.size), index=pd.Index(cells, name="cell_id"))
    feats = pd.DataFrame(rng.normal(size=(cells.size, 3)), index=target.index)
    return target, {"f": feats}


@pytest.mark.parametrize("bad", [6.7, 6.0, "6", True])
def test_a_block_level_that_is_not_an_integer_is_refused(task, bad):
    target, methods = task
    with pytest.raises(InvalidTypeError, match="block_level must be an integer"):
        evaluate(target, methods, split="blocked", block_level=bad, n_splits=2, probes="ridge", progress=False)


def test_a_block_level_out_of_range_is_refused(task):
    target, methods = task
    with pytest.raises(InvalidInputError, match="block_level must be between 0 and 30"):
        evaluate(target, methods, split="blocked", block_level=31, n_splits=2, probes="ridge", progress=False)


def test_regions_on_row_numbers_say_to_index_by_sample_ids(task):
    target, methods = task
    regions = pd.Series(np.where(np.arange(target.size) % 2, "a", "b"))  # on 0..n-1, not on the cells
    with pytest.raises(InvalidInputError, match="index it by the target's sample ids"):
        evaluate(target, methods, split="region", regions=regions, probes="ridge", progress=False)
