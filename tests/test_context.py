"""Seamless contextual embeddings (windows around each cell) and the seam measure."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geos2vec
from geos2vec import cells as C
from geos2vec.evaluate import block_share
from geos2vec.model.context import FaceGrid, window_plan
from geos2vec.model.embed import contextual_tokens
from geos2vec.normalize import FeatureStats
from geos2vec.errors import InvalidInputError
from geos2vec.raster import augment, rasterize, windows

pytest.importorskip("tensorflow")

CENTRE = C.latlng_to_cell(40.73, -73.99, 8)  # a level-8 cell on face 4 (NYC)


@pytest.fixture(scope="module")
def block():
    """Random counts in every pixel of a 3x3 block of level-8 images, and a tiny random model."""
    from geos2vec.model import S2VecModel

    images = np.unique(C.grid_disk(np.array([CENTRE], np.uint64), 1))
    assert images.size == 9
    cells = np.sort(C.cell_to_children(images, 12).ravel())
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.poisson(0.7, (cells.size, 5)).astype(np.float32),
                         index=pd.Index(cells, name="cell_id"), columns=[f"c{k}" for k in range(5)])
    table = table[rng.random(cells.size) < 0.8]  # some unobserved pixels
    da = rasterize(table)
    model = S2VecModel(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2,
                       epochs=1, seed=5)
    model.build(da, stats=FeatureStats.fit(table, log1p=True))
    return model, da, table


def _tokens(model, values):
    return contextual_tokens(model.keras_model, model.stats, np.asarray(values, np.float32), 64)


def test_centred_takes_the_token_of_the_window_centred_on_the_cell(block):
    model, da, _ = block
    centre_pos = int(np.flatnonzero(da["image"].values == CENTRE)[0])
    out = model.embed(da.isel(image=[centre_pos] + [i for i in range(9) if i != centre_pos]),
                      mode="contextual", context="centred",
                      cells=C.cell_to_children(np.array([CENTRE], np.uint64), 12).ravel(),
                      verbose=False)
    # reference: raster.windows at stride 4 holds every window with corner 8k - 4 inside the block
    win = windows(da, size=16, stride=4, min_observed=0)
    tok = _tokens(model, win.values)
    ids = np.asarray(out["cell"].values, np.uint64)
    face, i, j = C.cell_to_face_ij(ids)
    R, Cc = C._rowcol_from_ij(np.asarray(face), np.asarray(i), np.asarray(j), 1 << 12)
    r0, c0 = (R // 8) * 8 - 4, (Cc // 8) * 8 - 4
    row0, col0 = win["row0"].values, win["col0"].values
    for k in range(0, ids.size, 17):
        w = np.flatnonzero((row0 == r0[k]) & (col0 == c0[k]))
        assert w.size == 1
        r, c = R[k] - r0[k], Cc[k] - c0[k]
        assert 4 <= r < 12 and 4 <= c < 12  # the cell is in the window's central square
        assert win["cell_id"].values[w[0], r, c] == ids[k]
        np.testing.assert_allclose(out.values[k], tok[w[0], r * 16 + c], rtol=1e-5, atol=1e-5)


def test_blend_is_the_tent_weighted_mean_of_four_windows(block):
    model, da, _ = block
    target = C.cell_to_children(np.array([CENTRE], np.uint64), 12).ravel()
    out = model.embed(da, mode="contextual", context="blend", cells=target, verbose=False)
    win = windows(da, size=16, stride=8, min_observed=0)
    tok = _tokens(model, win.values)
    ids = np.asarray(out["cell"].values, np.uint64)
    for k in range(0, ids.size, 23):
        hits = np.argwhere(win["cell_id"].values == ids[k])  # (window, r, c) of every window holding it
        assert len(hits) == 4
        wts = [(1 - abs(r + 0.5 - 8) / 8) * (1 - abs(c + 0.5 - 8) / 8) for _, r, c in hits]
        assert sum(wts) == pytest.approx(1.0)
        ref = sum(w * tok[h[0], h[1] * 16 + h[2]] for w, h in zip(wts, hits))
        np.testing.assert_allclose(out.values[k], ref, rtol=1e-4, atol=1e-5)


def test_vectors_do_not_depend_on_which_cells_are_asked(block):
    model, da, table = block
    everything = model.embed(da, mode="contextual", as_frame=True, verbose=False)
    assert everything.equals(model.embed(da, context="blend", as_frame=True, verbose=False))  # the default
    ids = np.asarray(table.index, np.uint64)
    some = ids[::37][::-1]
    part = model.embed(da, mode="contextual", cells=some, as_frame=True, verbose=False)
    assert list(part.index) == list(some)
    np.testing.assert_allclose(part.to_numpy(), everything.loc[some].to_numpy(), atol=1e-6)
    # embed_cells reads the neighbouring images itself
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        via = geos2vec.embed_cells(some, table, model=model)
    np.testing.assert_allclose(via.to_numpy(), everything.loc[some].to_numpy(), atol=1e-6)


def test_tiled_is_the_old_per_image_mode(block):
    model, da, _ = block
    tiled = model.embed(da, mode="tiled", as_frame=True, verbose=False)
    tok = _tokens(model, da.values)
    obs = da["observed"].values
    ref = tok.reshape(9, 16, 16, -1)[obs]
    np.testing.assert_allclose(tiled.to_numpy(), ref, atol=1e-5)
    assert (tiled.index.to_numpy() == da["cell_id"].values[obs]).all()
    # explicit cells give the same vectors
    some = tiled.index.to_numpy()[::11]
    part = model.embed(da, mode="tiled", cells=some, as_frame=True, verbose=False)
    np.testing.assert_allclose(part.to_numpy(), tiled.loc[some].to_numpy(), atol=1e-6)


def test_cells_outside_the_images_and_bad_options_raise(block):
    model, da, _ = block
    far = C.latlng_to_cell(np.array([10.0]), np.array([10.0]), 12)
    with pytest.raises(ValueError, match="lie in no image"):
        model.embed(da, mode="contextual", cells=far, verbose=False)
    with pytest.raises(ValueError, match="context must be"):
        model.embed(da, mode="contextual", context="middle", verbose=False)
    with pytest.raises(ValueError, match="cells= as cell ids"):
        model.embed(da, mode="patch", cells=far, verbose=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-40, 40), st.integers(-40, 40)), min_size=1, max_size=30),
       st.sampled_from(["centred", "blend"]))
def test_window_plan_weights_sum_to_one_and_windows_hold_their_pixels(points, context):
    R = np.array([p[0] for p in points]) + 1000
    Cc = np.array([p[1] for p in points]) + 1000
    corners, con = window_plan(np.full(R.size, 2), R, Cc, 16, context)
    np.testing.assert_allclose(np.bincount(con["pixel"], weights=con["weight"], minlength=R.size), 1.0)
    r = con["pos"] // 16
    c = con["pos"] % 16
    assert (corners[con["window"], 1] + r == R[con["pixel"]]).all()
    assert (corners[con["window"], 2] + c == Cc[con["pixel"]]).all()
    if context == "centred":  # the cell sits in the central square
        assert ((r >= 4) & (r < 12) & (c >= 4) & (c < 12)).all()
    for q in range(4):  # within one quad a pixel appears at most once
        p = con["pixel"][con["quad"] == q]
        assert np.unique(p).size == p.size


def test_face_grid_lookup_misses_off_face_and_absent_images():
    img = np.array([CENTRE], np.uint64)
    grid = FaceGrid(img, 16)
    f, R0, C0 = grid.face[0], grid.gr[0] * 16, grid.gc[0] * 16
    pos, r, c = grid.lookup(np.array([f, f, f]), np.array([R0 + 3, R0 - 1, -5]), np.array([C0 + 7, C0, 3]))
    assert list(pos) == [0, -1, -1] and (r[0], c[0]) == (3, 7)



def test_face_grid_refuses_augmented_images(block):
    """Windows read each image's pixels at its place on the face grid: turned or repeated images are refused."""
    model, da, _ = block
    grid = FaceGrid(da, 16)  # a DataArray: its image ids, as for the ids themselves
    ref = FaceGrid(np.asarray(da["image"].values, np.uint64), 16)
    for a in ("face", "gr", "gc"):
        np.testing.assert_array_equal(getattr(grid, a), getattr(ref, a))
    with pytest.raises(InvalidInputError, match=r"9 of them are flipped or rotated \(transform coordinate \[1\]"):
        FaceGrid(augment(da, [1]), 16)
    with pytest.raises(InvalidInputError, match=r"9 image id\(s\) appear several times"):
        FaceGrid(np.asarray(augment(da)["image"].values, np.uint64), 16)
    for turned in (augment(da), augment(da, [1])):  # (both ran, with turned neighbours as context)
        with pytest.raises(InvalidInputError, match=r"flipped or rotated.*embed the original images"):
            model.embed(turned, mode="contextual", verbose=False)
    np.testing.assert_array_equal(FaceGrid(augment(augment(da, [4]), [4]), 16).gr, ref.gr)  # flip of a flip


def test_block_share_matches_a_pandas_groupby_and_detects_a_region_code():
    images = np.unique(C.grid_disk(np.array([CENTRE], np.uint64), 1))
    cells = np.sort(C.cell_to_children(images, 12).ravel())
    rng = np.random.default_rng(1)
    noise = pd.DataFrame(rng.normal(size=(cells.size, 3)), index=cells)
    code = noise + 3 * pd.get_dummies(C.cell_to_parent(cells, 8)).to_numpy(float)[:, :3]
    # reference: R² of the image one-hot, by hand with pandas
    x = code.to_numpy() - code.to_numpy().mean(0)
    means = pd.DataFrame(x).groupby(C.cell_to_parent(cells, 8)).transform("mean").to_numpy()
    assert block_share(code) == pytest.approx((means ** 2).sum() / (x ** 2).sum())
    assert block_share(code) > 0.4 and block_share(code, shift=8) < 0.5 * block_share(code)
    assert block_share(noise) < 0.05 and block_share(noise, shift=8) < 0.05
    with pytest.raises(ValueError, match="NaN"):
        block_share(noise.assign(x=np.nan))
    # a level-13 cell among level-12 ones: an error, not level-12 rows and columns computed for it
    mixed = noise.copy()
    mixed.index = np.r_[C.cell_to_children(cells[:1], 13)[0, :1], cells[1:]].astype(np.uint64)
    with pytest.raises(ValueError, match=r"levels \[12, 13\]"):
        block_share(mixed)
    with pytest.raises(ValueError, match="not valid S2 cell ids"):
        block_share(noise.set_axis(np.arange(1, cells.size + 1, dtype=np.uint64)))


def test_nan_in_the_feature_table_is_a_clear_error_not_nan_embeddings(block):
    from geos2vec.errors import InvalidInputError

    model, da, table = block
    bad = table.copy()
    bad.iloc[5, 2] = np.nan
    with pytest.raises(InvalidInputError, match="1 NaN/inf value") as info:
        geos2vec.embed_cells(np.asarray(table.index[:3], np.uint64), bad, model=model)
    assert C.cell_to_token(np.uint64(table.index[5])) in str(info.value) and "c2" in str(info.value)
    bad.iloc[5, 2] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        geos2vec.embed_cells(np.asarray(table.index[:3], np.uint64), bad, model=model)


def test_border_step_matches_a_loop_over_neighbour_pairs_and_tells_seams_from_gradients():
    from geos2vec.evaluate import border_step

    images = np.unique(C.grid_disk(np.array([CENTRE], np.uint64), 1))
    cells = np.sort(C.cell_to_children(images, 12).ravel())
    rng = np.random.default_rng(4)
    face, i, j = C.cell_to_face_ij(cells)
    row, col = C._rowcol_from_ij(face, i, j, 1 << 12)
    keep = rng.random(cells.size) < 0.7  # holes: some neighbours missing
    cells, row, col = cells[keep], np.asarray(row)[keep], np.asarray(col)[keep]
    noise = pd.DataFrame(rng.normal(size=(cells.size, 3)), index=cells)
    # reference: every (right, down) neighbour pair by a Python loop over a dict of grid positions
    at = {(int(r), int(c)): k for k, (r, c) in enumerate(zip(row, col))}
    x = noise.to_numpy()
    across, inside = [], []
    for (r, c), k in at.items():
        for r2, c2 in ((r, c + 1), (r + 1, c)):
            if (r2, c2) in at:
                d = float(((x[k] - x[at[r2, c2]]) ** 2).sum())
                (across if (r // 16, c // 16) != (r2 // 16, c2 // 16) else inside).append(d)
    assert across and inside
    assert border_step(noise) == pytest.approx(np.mean(across) / np.mean(inside))
    # a smooth gradient over the face grid has no seam: every neighbour step is the same
    gradient = pd.DataFrame({"a": row * 0.5, "b": col * 0.5}, index=cells, dtype=float)
    assert border_step(gradient) == pytest.approx(1.0, rel=1e-9)
    # a region code (a constant per image added) makes border steps larger
    code = noise + 3 * pd.get_dummies(C.cell_to_parent(cells, 8)).to_numpy(float)[:, :3]
    assert border_step(code) > 2.0 > 1.3 > border_step(noise) > 0.7
    with pytest.raises(ValueError, match="inside images"):
        border_step(noise.iloc[:1])


def _grid_cells():
    images = np.unique(C.grid_disk(np.array([CENTRE], np.uint64), 1))
    cells = np.sort(C.cell_to_children(images, 12).ravel())
    face, i, j = C.cell_to_face_ij(cells)
    row, col = C._rowcol_from_ij(face, i, j, 1 << 12)
    return cells, np.asarray(row, np.int64), np.asarray(col, np.int64)


def test_block_share_takes_row_and_column_offsets():
    from geos2vec.evaluate import block_share

    cells, row, col = _grid_cells()
    rng = np.random.default_rng(7)
    x = pd.DataFrame(rng.normal(size=(cells.size, 4)), index=cells)
    for dr, dc in ((0, 0), (3, 5), (8, 8), (15, 2)):
        # reference: R² of the one-hot of the shifted blocks, by hand with pandas
        groups = pd.MultiIndex.from_arrays([(row + dr) // 16, (col + dc) // 16])
        centred = x - x.mean()
        means = centred.groupby(groups).transform("mean")
        expected = float((means ** 2).to_numpy().sum() / (centred ** 2).to_numpy().sum())
        assert block_share(x, shift=(dr, dc)) == pytest.approx(expected, rel=1e-12)
    assert block_share(x, shift=4) == block_share(x, shift=(4, 4))
    with pytest.raises(ValueError, match="shift must be"):
        block_share(x, shift=(1, 2, 3))


def test_seam_pvalue_ranks_the_images_among_all_offsets():
    from geos2vec.evaluate import block_share, seam_pvalue, seam_table

    cells, row, col = _grid_cells()
    rng = np.random.default_rng(8)
    noise = rng.normal(size=(cells.size, 3))
    # a pure region code of the images: no other offset explains all of it
    per_image = rng.normal(size=(9, 3)) * 5
    image = pd.factorize(C.cell_to_parent(cells, 8))[0]
    code = pd.DataFrame(per_image[image], index=cells)
    assert block_share(code) == pytest.approx(1.0) and seam_pvalue(code) == 1 / 256
    # the same code on blocks shifted by (3, 5): the images are no longer special, the shifted blocks are
    shifted = pd.factorize(pd.MultiIndex.from_arrays([(row + 3) // 16, (col + 5) // 16]))[0]
    other = pd.DataFrame(rng.normal(size=(shifted.max() + 1, 3))[shifted] * 5 + noise * 0.1, index=cells)
    assert block_share(other, shift=(3, 5)) > 0.99
    p = seam_pvalue(other)
    # reference: the fraction of the 256 offsets whose adjusted R² (one block_share each, its blocks counted
    # by hand) is at least the images'
    adjusted = []
    for dr in range(16):
        for dc in range(16):
            blocks = len(set(zip((row + dr) // 16, (col + dc) // 16)))
            share = block_share(other, shift=(dr, dc))
            adjusted.append(1 - (1 - share) * (cells.size - 1) / (cells.size - blocks))
    assert p == pytest.approx(np.mean(np.array(adjusted) >= adjusted[0])) and p > 0.1
    # a smooth gradient over the grid: the images are an ordinary partition
    gradient = pd.DataFrame({"a": row * 0.5, "b": np.sin(col / 7.0)}, index=cells, dtype=float)
    assert seam_pvalue(gradient) > 0.05
    assert seam_pvalue(pd.DataFrame(np.ones((cells.size, 2)), index=cells)) == 1.0
    # pure noise on random subsets of the cells: the images rank anywhere, about in the middle on average
    # (unadjusted shares would put them last whenever they cut the cells into the fewest blocks)
    ps = [seam_pvalue(pd.DataFrame(rng.normal(size=(300, 8)), index=np.sort(rng.choice(cells, 300, replace=False))))
          for _ in range(12)]
    assert 0.25 < np.mean(ps) < 0.75 and min(ps) < 0.5 < max(ps)
    table = seam_table({"code": code, "other": other})
    assert table.loc["code", "seam_p"] == 1 / 256 and table.loc["other", "seam_p"] == pytest.approx(p)
