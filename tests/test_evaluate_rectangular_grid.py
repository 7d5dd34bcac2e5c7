"""S2VecModel.evaluate smooths local_mean on the images' own grid (a 1 x 4 crop is not a 2 x 2 image)."""

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

import geos2vec.model.reconstruction as rec  # noqa: E402
from geos2vec.model import S2VecModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_model import TINY, synthetic_images  # noqa: E402


def test_local_mean_of_a_rectangular_crop_uses_its_grid(monkeypatch):
    images = synthetic_images().isel(row=slice(0, 1))  # 1 x 4: four patches, which a square reading takes as 2 x 2
    model = S2VecModel(TINY.replace(epochs=1, batch_size=16))
    model.fit(images, verbose=0)
    grids, real = [], rec.baseline_predictions

    def spy(x, mask, empty=None, c=None, grid=None):
        grids.append(grid)
        return real(x, mask, empty, c, grid)

    monkeypatch.setattr(rec, "baseline_predictions", spy)
    table = model.evaluate(images, n_masks=2)
    assert grids and all(tuple(g) == (1, 4) for g in grids)
    # the local mean is a real number
    assert np.isfinite(table.loc["local_mean", "loss_covered"])
