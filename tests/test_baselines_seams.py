"""Count baselines at cube corners and across levels; seam measures on constant embeddings and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from geos2vec import cells as C
from geos2vec.errors import InvalidInputError, InvalidTypeError
from geos2vec.evaluate.baselines import log1p_counts, smoothed_counts
from geos2vec.evaluate.seams import block_share, seam_pvalue, seam_table

CORNER_LAT = math.degrees(math.atan(1 / math.sqrt(2)))  # a cube corner: three faces meet


def _ring(cells: np.ndarray, k: int) -> np.ndarray:
    """Cells within ``k`` steps (through edges or vertices), by applying the 3x3 neighbours ``k`` times."""
    out = np.unique(cells)
    for _ in range(k):
        out = np.unique(C.grid_disk(out, 1).ravel())
    return out


def _brute_force_smoothed(counts: pd.DataFrame, cells: np.ndarray, covered: set | None, k: int) -> np.ndarray:
    """Mean of log1p(count) over the distinct known cells within ``k`` steps of each cell (loop over cells)."""
    out = []
    for c in cells:
        vals = []
        for nb in _ring(np.array([c], np.uint64), k):
            if nb in counts.index:
                vals.append(np.log1p(counts.loc[nb].to_numpy()))
            elif covered is None or int(nb) in covered:
                vals.append(np.zeros(counts.shape[1]))
        out.append(np.mean(vals, axis=0) if vals else np.zeros(counts.shape[1]))
    return np.asarray(out)


@pytest.mark.parametrize("lat,lng", [(CORNER_LAT, 45.0), (-CORNER_LAT, -135.0)])
@pytest.mark.parametrize("partial", [False, True])
def test_smoothed_counts_at_a_cube_corner_match_a_brute_force_neighbourhood(lat, lng, partial):
    """The 3x3 and 5x5 means take each distinct neighbour once, each square on its own."""
    centre = C.latlng_to_cell(np.array([lat]), np.array([lng]), 12)
    area = _ring(centre, 4)
    rng = np.random.default_rng(7)
    rows = area[rng.random(area.size) < 0.7]
    counts = pd.DataFrame(rng.poisson(2.0, (rows.size, 2)).astype(float), index=pd.Index(rows, name="cell_id"),
                          columns=["a", "b"])
    coverage = area[rng.random(area.size) < 0.8] if partial else None
    covered = None if coverage is None else set(coverage.tolist()) | set(rows.tolist())
    cells = _ring(centre, 2)
    out = smoothed_counts(counts, cells, coverage=coverage)
    keep = [c for c in cells if covered is None or int(c) in covered]
    np.testing.assert_array_equal(out.index.to_numpy(), np.asarray(keep, np.uint64))
    for k, name in ((1, "3x3"), (2, "5x5")):
        ref = _brute_force_smoothed(counts, out.index.to_numpy(), covered, k)
        np.testing.assert_allclose(out[[f"a@{name}", f"b@{name}"]].to_numpy(), ref, rtol=1e-12, atol=1e-15)


def test_smoothed_counts_hand_checked_next_to_a_cube_corner():
    c = C.token_to_cell(np.array(["3fffff9"]))  # next to the corner of faces 0/1/2
    nb = C.token_to_cell(np.array(["4000001"]))  # one of its neighbours, at (0, 3) and (1, 3) of its 5x5 square
    assert nb[0] in C.grid_disk(c, 1)
    counts = pd.DataFrame({"a": [1.0]}, index=pd.Index(nb, name="cell_id"))  # every other cell: covered, empty
    out = smoothed_counts(counts, c)
    assert out.loc[c[0], "a"] == 0.0
    assert out.loc[c[0], "a@3x3"] == pytest.approx(np.log1p(1.0) / 9)  # (was 0.0: the neighbour was left out)
    assert out.loc[c[0], "a@5x5"] == pytest.approx(np.log1p(1.0) / np.unique(C.grid_disk(c, 2)).size)


def test_count_baselines_refuse_cells_of_another_level():
    img = C.latlng_to_cell(np.array([0.3]), np.array([10.3]), 8)
    l12 = C.cell_to_children(img, 12).ravel()
    counts = pd.DataFrame({"a": np.full(l12.size, 3.0)}, index=pd.Index(l12, name="cell_id"))
    for level in (13, 11):  # (gave 0.0 everywhere: a cell of another level is never in the table)
        cells = C.cell_to_children(l12[:2], 13).ravel() if level == 13 else C.cell_to_parent(l12[:4], 11)
        for f in (log1p_counts, smoothed_counts):
            with pytest.raises(InvalidInputError, match=rf"cells of level \[{level}\] asked of a counts table of "
                                                        r"level \[12\]"):
                f(counts, cells)
    mixed = np.concatenate([l12[:3], C.cell_to_children(l12[:1], 13).ravel()])
    with pytest.raises(InvalidInputError, match=r"level \[13\]"):
        log1p_counts(counts, mixed)
    # the table's own level: log(1 + 3), and a mean of 3s around a cell inside the image
    own = log1p_counts(counts, l12[:3])
    np.testing.assert_allclose(own["a"].to_numpy(), np.log1p(3.0))
    inner = C.rowcol_to_cell(img, 8, 8, 12)
    sm = smoothed_counts(counts, inner)
    np.testing.assert_allclose(sm.to_numpy(), [[np.log1p(3.0)] * 3])


# --------------------------------------------------------------------------- seams
def _nine_images(level: int = 12) -> np.ndarray:
    img = C.latlng_to_cell(np.array([0.3]), np.array([10.3]), 8)
    return C.cell_to_children(np.unique(C.grid_disk(img, 1).ravel()), level).ravel()


def _groupby_share(emb: pd.DataFrame) -> float:
    """R² of the level-8 parent one-hot: between-image over total sum of squares (pandas groupby)."""
    x = emb - emb.mean()
    means = x.groupby(C.cell_to_parent(emb.index.to_numpy(), 8)).transform("mean")
    return float((means.to_numpy() ** 2).sum() / (x.to_numpy() ** 2).sum())


@pytest.mark.parametrize("value", [0.1, 1 / 3, -7.3, 1e6 / 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seam_measures_of_constant_embeddings_are_no_variance(value, dtype):
    """A collapsed (constant) embedding explains nothing: shares 0, p-value 1, no ratio (NaN), never inf."""
    cells = _nine_images()
    emb = pd.DataFrame(np.full((cells.size, 4), value, dtype), index=cells)
    assert block_share(emb) == 0.0  # (0.1 gave 1.0: the rounding noise of the mean was all between images)
    assert block_share(emb, shift=8) == 0.0
    assert seam_pvalue(emb) == 1.0
    table = seam_table({"const": emb})
    assert list(table.columns) == ["cells", "share_0", "border_step", "seam_p", "share_8", "ratio_8", "share_4",
                                   "ratio_4"]
    row = table.loc["const"]
    assert row["share_0"] == row["share_8"] == row["share_4"] == 0.0 and row["seam_p"] == 1.0
    assert np.isnan(row[["ratio_8", "ratio_4", "border_step"]].to_numpy(float)).all()  # (1/3 gave inf)
    assert not np.isinf(table.to_numpy(float)).any()


def test_a_small_real_variance_is_not_taken_for_rounding():
    cells = _nine_images()
    rng = np.random.default_rng(3)
    code = 1e-6 * pd.get_dummies(C.cell_to_parent(cells, 8)).to_numpy(float)[:, :2]  # a region code
    emb = pd.DataFrame(0.1 + code + 1e-7 * rng.normal(size=code.shape), index=cells)
    share = block_share(emb)
    assert share > 0.9
    assert share == pytest.approx(_groupby_share(emb), rel=1e-6)
    row = seam_table({"code": emb}).loc["code"]
    assert row["share_0"] == pytest.approx(share)
    assert row["ratio_8"] == pytest.approx(share / block_share(emb, shift=8))


def test_seam_table_raises_what_block_share_raises():
    coarse = C.grid_disk(C.cell_to_parent(C.latlng_to_cell(np.array([0.3]), np.array([10.3]), 8), 6), 1).ravel()
    emb6 = pd.DataFrame(np.random.default_rng(0).random((coarse.size, 2)), index=coarse)
    with pytest.raises(InvalidInputError, match="cells of level 6 are coarser than image_level 8"):
        block_share(emb6, image_level=8)  # (the default image level is the cells' level - 4)
    with pytest.raises(InvalidInputError, match="embedding 'x': cells of level 6 are coarser than image_level 8"):
        seam_table({"x": emb6}, image_level=8)  # (was "negative shift count")
    with pytest.raises(InvalidInputError, match="embedding 'x': seam_table needs at least two cells, got 0"):
        seam_table({"x": emb6.iloc[:0]})  # (was an IndexError)
    with pytest.raises(InvalidInputError, match="got 1"):
        seam_table({"x": emb6.iloc[:1]})
    with pytest.raises(InvalidInputError, match="needs at least two cells, got 1"):
        block_share(emb6.iloc[:1])
    cells = _nine_images()
    mixed = pd.DataFrame(np.ones((3, 1)), index=np.concatenate([cells[:2], C.cell_to_parent(cells[:1], 11)]))
    with pytest.raises(InvalidInputError, match=r"embedding 'm': the embeddings' cells have levels \[11, 12\]"):
        seam_table({"m": mixed})
    with pytest.raises(InvalidTypeError, match="embedding 'a': seam_table needs a pandas DataFrame"):
        seam_table({"a": np.ones((4, 2))})
    with pytest.raises(InvalidTypeError, match="dict of name to embedding DataFrame"):
        seam_table([emb6])
    # good input: share_0 is the R² of the level-8 images
    emb = pd.DataFrame(np.random.default_rng(1).normal(size=(cells.size, 3)), index=cells)
    assert seam_table({"n": emb}).loc["n", "share_0"] == pytest.approx(_groupby_share(emb), rel=1e-9)
