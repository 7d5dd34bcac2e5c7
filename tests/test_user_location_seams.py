"""A user's checks of the seam measures and plot_image: known answers and refusals of awkward input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geos2vec import cells as C
from geos2vec.errors import InvalidInputError, InvalidTypeError
from geos2vec.evaluate.seams import block_share, border_step, seam_pvalue, seam_table


def _block_of_images():
    """Level-12 cells of a 3 x 3 block of level-8 images (New York) and each cell's image."""
    img = C.latlng_to_cell(np.array([40.7]), np.array([-74.0]), 8)
    images = np.unique(C.grid_disk(img, 1).ravel())
    cells = C.cell_to_children(images, 12).ravel()
    return cells, C.cell_to_parent(cells, 8)


def _region_code():
    """A random constant vector per image: all the variance is between images."""
    cells, parent = _block_of_images()
    rng = np.random.default_rng(0)
    codes = {p: rng.normal(size=3) for p in np.unique(parent)}
    return pd.DataFrame(np.array([codes[p] for p in parent]), index=pd.Index(cells, name="cell_id"))


def test_region_code_has_the_maximal_share_and_the_smallest_p():
    emb = _region_code()
    assert block_share(emb) == pytest.approx(1.0)  # the image means are the vectors
    assert seam_pvalue(emb) == 1 / 256  # n = 16: no other of the 256 offsets explains as much
    assert border_step(emb) == np.inf  # every step inside an image is 0


@pytest.mark.parametrize("image_level", [-1, 31, True, 8.0, "8"])
def test_image_level_must_be_an_s2_level(image_level):
    # -1 and True gave block_share ~0 silently (blocks of 2**13 cells; seam_pvalue looped over 2**26 offsets),
    # 8.0 and "8" raised TypeError from `1 << level`
    emb = _region_code()
    for f in (block_share, border_step):
        with pytest.raises(InvalidInputError, match="image_level must be an S2 level, an int in 0-30"):
            f(emb, image_level=image_level)
    if isinstance(image_level, (float, str)):  # (the others would not end on the old code)
        with pytest.raises(InvalidInputError, match="image_level must be"):
            seam_pvalue(emb, image_level=image_level)


def test_border_step_refuses_what_is_not_a_dataframe_like_the_other_measures():
    emb = _region_code()
    for bad in (emb[0], emb.to_numpy()):  # were numpy AxisError / AttributeError
        with pytest.raises(InvalidTypeError, match="border_step needs a pandas DataFrame"):
            border_step(bad)
    with pytest.raises(InvalidInputError, match="embeddings is empty"):  # named block_share's levels []
        border_step(emb.iloc[:0])


def test_non_numeric_columns_are_named():
    emb = _region_code().assign(label="x")
    for f in (block_share, seam_pvalue, border_step):  # raised NumPy's "could not convert string to float"
        with pytest.raises(InvalidInputError, match=r"embeddings must be numeric.*\['label'\]"):
            f(emb)


def test_seam_table_refuses_a_single_int_as_shifts():
    emb = _region_code()
    with pytest.raises(InvalidTypeError, match=r"shifts must be a sequence of ints.*\[8\]"):  # was 'int' not iterable
        seam_table({"code": emb}, shifts=8)
    assert seam_table({"code": emb}, shifts=[8])["share_8"].iloc[0] == pytest.approx(block_share(emb, shift=8))


def test_plot_image_refuses_an_empty_channel_list():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geos2vec import raster as R

    rng = np.random.default_rng(0)
    cells = np.unique(C.latlng_to_cell(40.7 + rng.uniform(-0.2, 0.2, 20), -74 + rng.uniform(-0.2, 0.2, 20), 10))
    table = pd.DataFrame(rng.integers(0, 9, size=(cells.size, 2)), index=pd.Index(cells, name="cell_id"),
                         columns=pd.Index(["a", "b"], name="feature"))
    da = R.rasterize(table)
    try:
        for image in (None, 0):  # drew an all-zero picture titled "image <token>: "
            with pytest.raises(InvalidInputError, match="channel is an empty list"):
                R.plot_image(da, [], image=image)
    finally:
        plt.close("all")


def test_seam_measures_refuse_repeated_cells():
    """Per-row embeddings (two homes in one cell) counted that cell twice in every share."""
    from geos2vec import cells as C
    from geos2vec.evaluate.seams import block_share, border_step, seam_pvalue

    ids = C.latlng_to_cell(np.full(5, 40.7), np.linspace(-74.0, -73.9, 5), 12)
    frame = pd.DataFrame(np.arange(10.0).reshape(5, 2), index=pd.Index(ids[[0, 1, 1, 2, 3]], name="cell_id"))
    for measure in (block_share, seam_pvalue, border_step):
        with pytest.raises(InvalidInputError, match=r"one row per cell; the index repeats 1 cell id"):
            measure(frame)
