"""An ML engineer feeding geos2vec into scikit-learn-style code: split groups per row, column names by prefix.

scikit-learn is not a dependency, so these tests check the contracts such code relies on with NumPy and pandas:
``blocked_splits`` takes one block label per row and refuses rows without one (as ``region_splits`` does), and
the embedding columns are named by a str ``prefix``.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import evaluate as ev
from geos2vec.errors import InvalidInputError, InvalidTypeError


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def la():
    pois, roads = geos2vec.demo.load_sample()
    table = _quiet(geos2vec.count_features, pois, roads, level=12)
    return geos2vec.load_model("default"), table, pois


# ------------------------------------------------------------------ blocked splits: one block per row
GROUPS = np.repeat(np.arange(8), 3)  # 24 rows in 8 blocks of 3


def _blocks_respected(splits, groups):
    """Every row in exactly one part; no block in two parts of one split."""
    for parts in splits:
        assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(groups)))
        owner = [set(groups[p].tolist()) for p in parts]
        assert not (owner[0] & owner[1] or owner[0] & owner[2] or owner[1] & owner[2])


@pytest.mark.parametrize("bad", [
    pd.Series(np.where(np.arange(24) == 5, np.nan, GROUPS.astype(float))),        # NaN made one block of them all
    pd.Series(pd.array(np.where(np.arange(24) == 5, None, GROUPS), dtype="UInt64")),   # <NA>: a block per row
    pd.Series(np.where(np.arange(24) == 5, None, GROUPS.astype(str)), dtype=object),  # numpy's TypeError
], ids=["float-nan", "nullable-na", "str-none"])
def test_blocked_splits_refuse_rows_without_a_block(bad):
    """A row without a group label has no block: refused naming its position, as region_splits refuses it."""
    with pytest.raises(InvalidInputError, match=r"groups has 1 missing label\(s\) at positions \[5\]"):
        ev.blocked_splits(bad, n_splits=2)
    with pytest.raises(InvalidInputError, match=r"regions has 1 missing label\(s\) at positions \[5\]"):
        ev.region_splits(bad, n_splits=2)  # the same message as before
    # the same labels without the missing row: the splits of the plain labels, blocks kept whole
    kept = np.flatnonzero(np.arange(24) != 5)
    got = _quiet(ev.blocked_splits, bad.iloc[kept], n_splits=3)
    ref = _quiet(ev.blocked_splits, GROUPS[kept], n_splits=3)
    assert all(np.array_equal(a, b) for s, r in zip(got, ref) for a, b in zip(s, r))
    _blocks_respected(got, GROUPS[kept])


def test_blocked_splits_take_one_column_and_refuse_two():
    """A one-column frame (df[["block"]]) is its labels; two columns raised NumPy's IndexError."""
    ref = ev.blocked_splits(GROUPS, n_splits=3)
    for one in (GROUPS[:, None], pd.DataFrame({"block": GROUPS})):
        got = ev.blocked_splits(one, n_splits=3)
        assert all(np.array_equal(a, b) for s, r in zip(got, ref) for a, b in zip(s, r))
    _blocks_respected(ref, GROUPS)
    with pytest.raises(InvalidInputError, match=r"one label per sample \(1-D\), got shape \(24, 2\)"):
        ev.blocked_splits(np.c_[GROUPS, GROUPS[::-1]], n_splits=3)


def test_blocked_splits_of_an_embed_output_per_row(la):
    """Per-row blocks from embed's s2_cell (nullable UInt64): the level-10 parent, as for the cells' own ids."""
    model, table, pois = la
    homes = pois.iloc[::20][["name", "geometry"]].copy()
    homes.loc[homes.index[3], "geometry"] = None  # a row without a location: <NA> cell
    out = _quiet(homes.s2vec.embed, table, model=model, mode="patch", progress=False)
    cells = out["s2_cell"]
    assert cells.isna().sum() == 1
    with pytest.raises(InvalidInputError, match=r"missing label\(s\) at positions \[3\]"):
        ev.blocked_splits(cells, n_splits=2)  # silently a block of its own before
    ok = cells.dropna()
    groups = geos2vec.cell_to_parent(ok.to_numpy(np.uint64), 10)
    ids = ok.to_numpy(np.uint64)  # a level-10 parent: the id's face and first 10 positions, then its 1 bit
    assert np.array_equal(groups >> np.uint64(41), ids >> np.uint64(41))
    assert (groups & np.uint64((1 << 41) - 1) == np.uint64(1 << 40)).all()
    splits = _quiet(ev.blocked_splits, groups, n_splits=3)
    _blocks_respected(splits, groups)


# ------------------------------------------------------------------ prefix
@pytest.mark.parametrize("prefix", [None, 5, b"e_"])
def test_prefix_must_be_a_str(la, prefix):
    """prefix=None named the columns None0 ... None255 (5: 50 ... 5255) without a word."""
    model, table, pois = la
    homes = pois.iloc[:5][["name", "geometry"]]
    for call in (lambda: homes.s2vec.embed(table, model=model, mode="patch", prefix=prefix, progress=False),
                 lambda: geos2vec.embed_cells(geos2vec.latlng_to_cell(34.05, -118.25, 12), table, model=model,
                                              mode="patch", prefix=prefix, progress=False),
                 lambda: geos2vec.cell_embeddings(table, model=model, mode="patch", prefix=prefix, progress=False)):
        with pytest.raises(InvalidTypeError, match="prefix must be a str"):
            _quiet(call)


def test_empty_prefix_names_columns_by_str_numbers(la):
    """prefix='' (the suggested fix) gives str column names '0' ... '255', the default's values."""
    model, table, pois = la
    homes = pois.iloc[:5][["name", "geometry"]]
    with pytest.raises(InvalidTypeError):
        _quiet(homes.s2vec.embed, table, model=model, mode="patch", prefix=None, progress=False)
    got = _quiet(homes.s2vec.embed, table, model=model, mode="patch", prefix="", progress=False)
    ref = _quiet(homes.s2vec.embed, table, model=model, mode="patch", progress=False)
    assert list(got.columns[3:]) == [str(k) for k in range(256)]
    np.testing.assert_array_equal(got[[str(k) for k in range(256)]].to_numpy(),
                                  ref[[f"s2vec_{k}" for k in range(256)]].to_numpy())


# ------------------------------------------------------------------ evaluate: one sample per row (pooling)
def _rows_task(n=80):
    """Rows (houses) in 60 level-12 cells of Los Angeles, a per-cell table and a label of each row."""
    rng = np.random.default_rng(0)
    cells = np.unique(geos2vec.latlng_to_cell(rng.uniform(34.0, 34.3, 400), rng.uniform(-118.5, -118.1, 400), 12))[:60]
    emb = pd.DataFrame(rng.normal(size=(len(cells), 4)), index=pd.Index(cells, name="cell_id"))
    row_cell = rng.choice(cells, n)
    y = pd.Series(emb.loc[row_cell, 0].to_numpy() + rng.normal(size=n) * 0.1)
    pool = pd.DataFrame({"sample": np.arange(n), "cell_id": pd.array(row_cell, dtype="UInt64"), "weight": 1.0})
    return y, emb, pool


def test_evaluate_per_row_pooling_refuses_rows_without_a_cell():
    """embed's s2_cell as pooling cells: a <NA> cell raised pandas' "cannot convert to 'uint64'-dtype" error."""
    y, emb, pool = _rows_task()
    pool.loc[3, "cell_id"] = pd.NA
    with pytest.raises(InvalidInputError, match=r"pooling has 1 row\(s\) without a cell_id .* at index \[3\]"):
        ev.evaluate(y, {"mine": emb}, n_splits=2, probes="ridge", pooling=pool, progress=False)
    # dropped as the message says: the 79 others are scored, the sample without a cell is left out
    res = _quiet(ev.evaluate, y, {"mine": emb}, n_splits=2, probes="ridge", pooling=pool.dropna(subset=["cell_id"]),
                 progress=False)
    assert res.config["n_samples"] == 79 and res.config["n_dropped"] == 1
    # its scores are those of the same rows aggregated by hand: one cell per row, weight 1 = the cell's vector
    ref = _quiet(ev.evaluate, y.drop(3), {"mine": emb}, n_splits=2, probes="ridge",
                 pooling=pool.dropna(subset=["cell_id"]).astype({"cell_id": "uint64"}), progress=False)
    np.testing.assert_array_equal(res.scores["r2"].to_numpy(), ref.scores["r2"].to_numpy())
    assert (res.scores["r2"] > 0.95).all()  # the label is column 0 plus noise of SD 0.1 (column SD 1)


@pytest.mark.parametrize("weight", [np.nan, -1.0, np.inf])
def test_evaluate_pooling_refuses_weights_that_are_no_shares(weight):
    """A NaN weight dropped the sample blaming the method ("no data for them in 'mine'"); -1 was used as is."""
    y, emb, pool = _rows_task()
    pool.loc[5, "weight"] = weight
    with pytest.raises(InvalidInputError, match=r"pooling has 1 weight\(s\) .* at index \[5\]"):
        ev.evaluate(y, {"mine": emb}, n_splits=2, probes="ridge", pooling=pool, progress=False)
    # rows of samples without a finite target are not looked at (as join_labels leaves their coordinates)
    res = _quiet(ev.evaluate, y.drop(5), {"mine": emb}, n_splits=2, probes="ridge", pooling=pool, progress=False)
    assert res.config["n_samples"] == 79


# ------------------------------------------------------------------ holdout_splits: the mask as evaluate reads it
def test_holdout_splits_read_the_mask_as_evaluate_does():
    """np.asarray(mask, dtype=bool) made a NaN (a row a merge left without a flag) and "False" test samples."""
    flags = np.array([1.0, np.nan, 0, 0, 0, 0, 0, 0, 1, 0])
    (tr, va, te), = ev.holdout_splits(flags, 1)
    np.testing.assert_array_equal(te, [0, 8])  # the NaN row 1 is not tested: it trains or validates
    np.testing.assert_array_equal(np.sort(np.r_[tr, va]), [1, 2, 3, 4, 5, 6, 7, 9])
    assert len(va) == round(0.25 * 8)
    # the same partition as the boolean mask it stands for
    (tr2, va2, te2), = ev.holdout_splits(np.nan_to_num(flags).astype(bool), 1)
    assert all(np.array_equal(a, b) for a, b in [(tr, tr2), (va, va2), (te, te2)])
    with pytest.raises(InvalidTypeError, match=r"test_mask must be a boolean .* like \['True', 'False'\]"):
        ev.holdout_splits(np.array(["True", "False", "False", "False", "False", "False"]), 1)
    with pytest.raises(InvalidTypeError, match="test_mask must be a boolean"):
        ev.holdout_splits(np.array([2.0, 0, 0, 0, 0, 0]), 1)  # a 2 is no flag (it was a test sample)


# ------------------------------------------------------------------ join_labels: the count column is no label
def test_join_labels_refuses_a_target_named_like_its_count_column():
    """A label column named n_points was replaced by the count of points per cell (the dict's second key won)."""
    df = pd.DataFrame({"lat": [34.05, 34.05, 34.2], "lon": [-118.25, -118.25, -118.4],
                       "n_points": [10.0, 30.0, 7.0]})
    with pytest.raises(InvalidInputError, match="target column 'n_points' has the name of the count column"):
        ev.join_labels(df, "n_points")
    # renamed as the message says: the medians (20, 7), not the counts (2, 1)
    got = ev.join_labels(df.rename(columns={"n_points": "y"}), "y")
    cells = geos2vec.latlng_to_cell(np.array([34.05, 34.2]), np.array([-118.25, -118.4]), 12)
    want = pd.DataFrame({"y": [20.0, 7.0], "n_points": [2, 1]}, index=pd.Index(cells, name="cell_id")).sort_index()
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


# ------------------------------------------------------------------ a second embed: whose provenance
def test_provenance_names_the_columns_it_describes(la):
    """After a second embed (another mode, another prefix) attrs said mode 'patch' beside contextual s2vec_ columns."""
    model, table, pois = la
    homes = pois.iloc[::200][["name", "geometry"]]
    out = _quiet(homes.s2vec.embed, table, model=model, progress=False)
    assert out.attrs["geos2vec"]["prefix"] == "s2vec_" and out.attrs["geos2vec"]["mode"] == "contextual"
    two = _quiet(out.drop(columns="s2_cell").s2vec.embed, table, model=model, mode="patch", prefix="patch_",
                 progress=False)
    rec = two.attrs["geos2vec"]
    assert rec["prefix"] == "patch_" and rec["mode"] == "patch"
    # the record is right about its columns: patch_ are the patch vectors, s2vec_ stay the contextual ones
    ref = _quiet(homes.s2vec.embed, table, model=model, mode="patch", progress=False)
    names = [f"s2vec_{k}" for k in range(256)]
    np.testing.assert_array_equal(two[[f"patch_{k}" for k in range(256)]].to_numpy(), ref[names].to_numpy())
    np.testing.assert_array_equal(two[names].to_numpy(), out[names].to_numpy())
    cells = _quiet(geos2vec.cell_embeddings, table, model=model, mode="patch", prefix="c_", progress=False)
    assert cells.attrs["geos2vec"]["prefix"] == "c_"


def test_embed_command_on_its_own_output_says_what_to_do(la, tmp_path, capsys):
    """The command's advice came from Python's embed: 'pass another prefix=' (no such option) and 'gdf.drop'."""
    from geos2vec.cli import main

    model, table, pois = la
    pois.iloc[::300][["name", "geometry"]].to_parquet(tmp_path / "homes.parquet")
    table.to_parquet(tmp_path / "table.parquet")
    args = ["--features", str(tmp_path / "table.parquet"), "--mode", "patch", "--quiet"]
    assert _quiet(main, ["embed", str(tmp_path / "homes.parquet"), "--out", str(tmp_path / "a.parquet"), *args]) == 0
    capsys.readouterr()
    assert main(["embed", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "b.parquet"), *args]) == 1
    err = capsys.readouterr().err
    assert "a.parquet already has column(s) ['s2_cell', 's2vec_0', 's2vec_1'] ... that geos2vec embed adds" in err
    assert "prefix=" not in err.split("in Python")[0] and not (tmp_path / "b.parquet").exists()
    # its rows embedded from the original file are there, one per row, with the Python accessor's values
    a = gpd.read_parquet(tmp_path / "a.parquet")
    ref = _quiet(pois.iloc[::300][["name", "geometry"]].s2vec.embed, table, model=model, mode="patch", progress=False)
    np.testing.assert_array_equal(a.filter(like="s2vec_").to_numpy(), ref.filter(like="s2vec_").to_numpy())
