"""A damaged or foreign evaluation cache entry is computed again with a warning (was a raw ArrowInvalid)."""

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec.cells import latlng_to_cell
from geos2vec.evaluate import suite
from geos2vec.evaluate.methods import model_embeddings
from geos2vec.options import set_options


@pytest.mark.parametrize("content", [b"not parquet", "foreign"])
def test_a_damaged_entry_is_computed_again(tmp_path, content):
    model = geos2vec.load_model("default")
    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(3), -121.95 + 0.02 * np.arange(3), indexing="ij")
    cells = np.unique(latlng_to_cell(lat.ravel(), lng.ravel(), 12))
    counts = pd.DataFrame(np.random.default_rng(0).poisson(0.7, (len(cells), len(model.channels))).astype(float),
                          index=pd.Index(cells, name="cell_id"), columns=list(model.channels))
    with set_options(progress=False):
        reference = model_embeddings(cells, counts, model, ["patch"])["S2Vec (patch)"]
        suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path)
        (entry,) = tmp_path.glob("embeddings-*.parquet")
        if content == "foreign":
            pd.DataFrame({"x": [1.0]}).to_parquet(entry)  # another program's parquet under that name
        else:
            entry.write_bytes(content)
        with pytest.warns(UserWarning, match="does not read .*computing it again"):
            got = suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path)["S2Vec (patch)"]
        pd.testing.assert_frame_equal(got, reference.astype(np.float64), check_exact=True)
        again = suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path)["S2Vec (patch)"]
    pd.testing.assert_frame_equal(again, got)  # the entry was written again whole
