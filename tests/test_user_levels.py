"""A user who wants finer or coarser cells than level 12: counts, images, models and evaluation at levels 10 and 14.

Each test failed before its fix. References: the images' pixels placed by ``cell_to_parent`` / ``cell_to_rowcol``
and compared with the table, s2sphere parents with a pandas group-by, and the hints of the error messages
followed to a working call.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import s2sphere

import geos2vec
from geos2vec import evaluate as ev
from geos2vec.cells import cell_to_parent, cell_to_rowcol, latlng_to_cell
from geos2vec.errors import InvalidInputError


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def sample():
    pois, roads = geos2vec.demo.load_sample()
    return pois, roads.iloc[:2000]


@pytest.fixture(scope="module")
def tables(sample):
    pois, roads = sample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # POIs outside the ontology, said in the report
        return {lvl: geos2vec.count_features(pois, roads, level=lvl) for lvl in (10, 12, 14)}


# ----------------------------------------------------------------- images of a stored table
@pytest.mark.parametrize("level, image_level", [(14, 10), (10, 6)])
def test_a_stored_table_of_another_level_trains_on_16x16_images(tables, tmp_path, level, image_level):
    """Old: open_images (``geos2vec train --data t.parquet``, ``fit(path)``) always made level-8 images, so a
    level-14 table gave 64 x 64 pixels per image (4,096 patches: a 16-fold longer attention sequence than the
    model's 16 x 16) and a level-10 table 4 x 4 images, without a word."""
    from geos2vec.model.data import open_images

    table = tables[level]
    table.to_parquet(tmp_path / "t.parquet")
    da = open_images(tmp_path / "t.parquet")
    assert (da.sizes["row"], da.sizes["col"]) == (16, 16)
    assert (da.attrs["image_level"], da.attrs["patch_level"]) == (image_level, level)
    cells = table.index.to_numpy(np.uint64)
    # the images are the cells' parents at image_level, and each cell sits at its own row/col there
    assert np.array_equal(da["image"].values, np.unique(cell_to_parent(cells, image_level)))
    k = np.searchsorted(da["image"].values, cell_to_parent(cells, image_level))
    r, c = cell_to_rowcol(cells, image_level)
    assert np.array_equal(da["cell_id"].values[k, r, c], cells)
    road = list(da["feature"].values).index("road")
    assert np.array_equal(da.values[k, r, c, road], table["road"].to_numpy())
    assert geos2vec.to_frame(da).equals(table.sort_index())


# ----------------------------------------------------------------- evaluate with samples of other levels
def _labels(table, n, seed=0):
    """Labels of ``n`` cells of ``table``: log(1 + roads) plus a little noise (ridge on the counts fits them)."""
    rng = np.random.default_rng(seed)
    cells = np.sort(rng.choice(table.index.to_numpy(np.uint64), n, replace=False))
    y = np.log1p(table.loc[cells, "road"].to_numpy(float)) + rng.normal(0, 0.05, n)
    return pd.Series(y, index=pd.Index(cells, name="cell_id"), name="y")


def test_level14_samples_and_a_level12_table_are_told_their_levels(tables):
    """Old: the note took the samples to be level 12, so level-14 samples against a level-12 table said only
    "'counts' lacks 150 of 150" (no level), and level-12 samples against a level-14 table were told to give each
    cell its *parent's* row (the table is finer: it has to be aggregated)."""
    y14 = _labels(tables[14], 150)
    counts12 = np.log1p(tables[12])
    with pytest.raises(InvalidInputError, match=r"'counts' lacks 150 of 150 \(its cells are level 12, the samples' "
                                                r"level 14: give each level-14 cell its row"):
        ev.evaluate(y14, {"counts": counts12}, n_splits=2, probes="ridge", progress=False)
    # the hint: each level-14 sample takes its level-12 parent's row
    cells = y14.index.to_numpy(np.uint64)
    fine = counts12.reindex(cell_to_parent(cells, 12)).set_axis(y14.index)
    assert np.array_equal(fine["road"].to_numpy(), counts12.loc[cell_to_parent(cells, 12), "road"].to_numpy())
    res = ev.evaluate(y14, {"counts": fine}, n_splits=2, probes="ridge", progress=False)
    assert res.n_cells == 150

    y12 = _labels(tables[12], 120)
    counts14 = np.log1p(tables[14])
    with pytest.raises(InvalidInputError, match=r"\(its cells are level 14, the samples' level 12: aggregate the "
                                                r"table to level 12"):
        ev.evaluate(y12, {"counts": counts14}, n_splits=2, probes="ridge", progress=False)
    # the hint: the level-14 rows averaged per level-12 parent (a pandas group-by as reference)
    agg = counts14.groupby(cell_to_parent(counts14.index.to_numpy(np.uint64), 12)).mean()
    parents = [s2sphere.CellId(int(c)).parent(12).id() for c in counts14.index]  # an independent reference
    ref = counts14["road"].groupby(np.array(parents, np.uint64)).mean()
    assert np.array_equal(agg.index.to_numpy(np.uint64), ref.index.to_numpy(np.uint64))
    assert np.allclose(agg["road"].to_numpy(), ref.to_numpy())
    res = ev.evaluate(y12, {"counts": agg}, n_splits=2, probes="ridge", progress=False)
    assert res.n_cells == 120


def test_a_target_mixing_levels_is_warned_about_by_level(tables):
    """Old: 40 level-12 samples among level-14 ones were "left out ... no data for them in 'counts' (40)", as if
    the counts lacked data there."""
    y14 = _labels(tables[14], 100)
    y12 = _labels(tables[12], 40, seed=1)
    mixed = pd.concat([y14, y12])
    counts = np.log1p(tables[14])
    with pytest.warns(geos2vec.errors.Geos2VecWarning, match=r"40 of 140 samples are left out.*'counts' \(its "
                                                             r"cells are level 14, the samples' level 12"):
        res = ev.evaluate(mixed, {"counts": counts}, n_splits=2, probes="ridge", progress=False)
    assert res.n_cells == 100 and res.config["missing"] == {"counts": 40}


def test_block_level_finer_than_the_samples_names_block_level(tables):
    """Old: cell_to_parent's "level 16 is finer than the cells at positions [0, 1, ...]", naming no block_level."""
    y14 = _labels(tables[14], 150)
    counts = np.log1p(tables[14])
    with pytest.raises(InvalidInputError, match=r"block_level=16 is finer than the samples' cells \(level 14\).*at "
                                                r"most 14"):
        ev.evaluate(y14, {"counts": counts}, split="blocked", block_level=16, n_splits=2, probes="ridge",
                    progress=False)
    # a coarser block level works: level-10 blocks are the samples' level-10 parents
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uneven blocks in a small city box
        res = ev.evaluate(y14, {"counts": counts}, split="blocked", block_level=10, n_splits=2, probes="ridge",
                          progress=False)
    assert res.config["block_level"] == 10


# ----------------------------------------------------------------- the bundled (level-12) model at other levels
def test_other_levels_with_the_bundled_model_are_refused_saying_what_to_do(tables, sample):
    """Old: "all cells must be level 12" (which levels were given?), "the feature table holds cells of level(s)
    [14], but embeddings are asked for at level 12" and "level 14 was asked for", none saying what to do."""
    pois, roads = sample
    homes = pois.iloc[:3][["geometry"]]
    c14 = latlng_to_cell(homes.geometry.y.to_numpy(), homes.geometry.x.to_numpy(), 14)
    with pytest.raises(InvalidInputError, match=r"all cells must be level 12.*got level\(s\) \[12, 14\].*"
                                                r"cell_to_parent\(cells, 12\)"):
        geos2vec.embed_cells(np.r_[cell_to_parent(c14[:1], 12), c14[1:]], tables[12])
    with pytest.raises(InvalidInputError, match=r"holds cells of level\(s\) \[14\].*asked for at level 12: count "
                                                r"at level 12 \(count_features\(\.\.\., level=12\)"):
        homes.s2vec.embed(features=tables[14])
    with pytest.raises(InvalidInputError, match=r"level-12 cells only.*level 14 was asked for: count and embed at "
                                                r"level 12, or train a model on level-14 images"):
        homes.s2vec.embed(features={"pois": pois, "roads": roads}, level=14)
    # what the first message says: the parents embed as the level-12 cells they are
    p = cell_to_parent(c14, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = geos2vec.embed_cells(p, tables[12], mode="patch", progress=False)
        b = homes.s2vec.embed(features=tables[12], mode="patch", progress=False)
    assert np.array_equal(b["s2_cell"].to_numpy(np.uint64), p)
    assert np.array_equal(a.to_numpy(), b.filter(like="s2vec_").to_numpy(), equal_nan=True)


# ----------------------------------------------------------------- normalization statistics
def test_feature_stats_of_a_table_mixing_levels_is_refused(tables):
    """Old: ``FeatureStats.fit(pd.concat([t12, t14]))`` fitted the mean of level-12 and level-14 counts together
    (a level-14 cell holds about 1/16 of a level-12 cell's roads), the statistics of neither level."""
    t12, t14 = tables[12], tables[14]
    with pytest.raises(InvalidInputError, match=r"cells are of levels \[12, 14\].*fit the statistics of one level"):
        geos2vec.FeatureStats.fit(pd.concat([t12, t14]))
    # what the message suggests: one level's rows, whose statistics are NumPy's of that table
    mixed = pd.concat([t12, t14])
    one = mixed[geos2vec.get_level(mixed.index) == 12]
    stats = geos2vec.FeatureStats.fit(one)
    values = t12.to_numpy(np.float64)
    assert stats.count == len(t12)
    assert np.allclose(stats.mean, values.mean(axis=0))
    assert np.allclose(stats.m2, ((values - values.mean(axis=0)) ** 2).sum(axis=0))
    # a table of one level other than 12 fits as before, and so does a table not indexed by cell ids
    assert geos2vec.FeatureStats.fit(t14).count == len(t14)
    assert geos2vec.FeatureStats.fit(mixed.reset_index(drop=True)).count == len(mixed)


# ----------------------------------------------------------------- seam measures of a level-14 embedding
def test_seam_measures_default_to_the_images_of_the_cells_level():
    """Old: ``block_share`` / ``border_step`` / ``seam_pvalue`` / ``seam_table`` took level-8 blocks whatever the
    cells' level, so a level-14 model's embedding was measured against 64 x 64 blocks, not its 16 x 16 images:
    an embedding that jumps at every level-10 image border scored a share of 0 inside one level-8 cell."""
    rng = np.random.default_rng(0)
    c10 = geos2vec.cell_to_children(cell_to_parent(latlng_to_cell(34.05, -118.25, 10), 9), 10).ravel()
    cells = np.sort(geos2vec.cell_to_children(c10, 14).ravel())                  # 4 images of 16 x 16 cells
    parent = cell_to_parent(cells, 10)
    x = rng.normal(size=(4, 3))[np.searchsorted(c10, parent)] + rng.normal(0, 0.3, (cells.size, 3))
    emb = pd.DataFrame(x, index=pd.Index(cells, name="cell_id"))
    # reference: between-image sum of squares over the total, by a pandas group-by over the level-10 parents
    centred = emb - emb.mean()
    means = centred.groupby(parent).transform("mean")
    ref = float((means ** 2).to_numpy().sum() / (centred ** 2).to_numpy().sum())
    assert ev.block_share(emb) == pytest.approx(ref, rel=1e-12) and ref > 0.8
    assert ev.block_share(emb) == ev.block_share(emb, image_level=10)
    assert ev.border_step(emb) == ev.border_step(emb, image_level=10) > 5
    table = ev.seam_table({"mine": emb}, shifts=[8])
    assert table.loc["mine", "share_0"] == pytest.approx(ref, rel=1e-12)
    assert table.loc["mine", "seam_p"] == ev.seam_pvalue(emb, image_level=10) == pytest.approx(1 / 256)
    # level-12 cells keep the bundled model's level-8 images
    emb12 = emb.groupby(cell_to_parent(cells, 12)).mean()
    assert ev.block_share(emb12) == ev.block_share(emb12, image_level=8)


# ----------------------------------------------------------------- S2VecModel.embed of images of another level
def test_the_bundled_model_refuses_images_of_another_level(tables):
    """Old: ``load_model("default").embed(rasterize(t14, image_level=10))`` embedded level-14 cells with the level-12
    model without a word (16 x 16 images, like its own), every mode, while ``embed(level=14)`` refused them."""
    model = geos2vec.load_model("default")
    da14 = geos2vec.rasterize(tables[14], image_level=10)
    for mode in ("contextual", "patch", "image"):
        with pytest.raises(InvalidInputError, match=r"these images hold level-14 cells, but the model embeds "
                                                    r"level-12 cells in level-8 images"):
            model.embed(da14, mode=mode, verbose=False)
    # the model's own levels embed, and as embed_cells does (the same cells, the same vectors)
    da12 = geos2vec.rasterize(tables[12])
    out = model.embed(da12, mode="patch", as_frame=True, verbose=False)
    ref = geos2vec.embed_cells(tables[12].index.to_numpy(np.uint64), tables[12], mode="patch", progress=False)
    assert np.array_equal(np.sort(out.index.to_numpy(np.uint64)), ref.index.to_numpy(np.uint64))  # pixel order
    assert np.allclose(out.loc[ref.index].to_numpy(), ref.to_numpy(), rtol=0, atol=1e-6)
