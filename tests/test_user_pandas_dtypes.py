"""pandas 3 users whose frames are not plain float64/object: nullable (Int64, Float64, boolean) and Arrow dtypes.

Each result is compared with the same input in plain float64/object dtypes (or with pandas' own aggregation).
"""

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import geos2vec
from geos2vec.errors import InvalidInputError
from geos2vec.evaluate import baselines as B, evaluate, join_labels

ARROW_FLOAT = pd.ArrowDtype(pa.float64())


def _cells(n, seed=0):
    rng = np.random.default_rng(seed)
    lat, lng = 34 + rng.random(4 * n) * 0.5, -118.5 + rng.random(4 * n) * 0.5
    return np.unique(geos2vec.latlng_to_cell(lat, lng, 12))[:n]


def _counts(n=60, seed=0):
    rng = np.random.default_rng(seed)
    cells = _cells(n, seed)
    return pd.DataFrame(rng.poisson(2.0, size=(cells.size, 4)), columns=["cafe", "school", "bank", "road"],
                        index=pd.Index(cells, name="cell_id"))


@pytest.mark.parametrize("dtype", ["Int64", "Float32", "Float64", ARROW_FLOAT, pd.ArrowDtype(pa.int64())])
def test_baselines_take_nullable_and_arrow_number_columns(dtype):
    # a count table read back with pd.read_parquet(..., dtype_backend="numpy_nullable" / "pyarrow") has such
    # columns; they were refused as "must have numeric columns only, got dtypes ['Int64']"
    counts = _counts()
    for fn in (B.log1p_counts, B.normalized_counts, lambda t: B.pca_embedding(t, 2)):
        ref = fn(counts.astype(np.float64))
        got = fn(counts.astype(dtype))
        np.testing.assert_allclose(got.to_numpy(np.float64), ref.to_numpy(np.float64), rtol=1e-6, atol=1e-9)
        assert got.index.equals(ref.index)
    with_na = counts.astype(dtype)
    with_na.iloc[3, 1] = pd.NA  # a missing count is the NaN error, not a dtype error
    with pytest.raises(InvalidInputError, match="contains NaN or inf"):
        B.log1p_counts(with_na)


def test_evaluate_scores_a_method_table_of_nullable_floats_as_its_float64_copy():
    table = _counts(80).astype(np.float64)
    rng = np.random.default_rng(1)
    target = pd.Series(table.to_numpy() @ rng.normal(size=4) + rng.normal(size=len(table)), index=table.index)
    target.iloc[::9] = np.nan
    kw = dict(probes="ridge", n_splits=2, progress=False)
    ref = evaluate(target, {"m": table}, **kw).scores
    got = evaluate(target.astype("Float64"), {"m": table.astype("Float64")}, **kw).scores
    assert got.shape == ref.shape
    num = ref.select_dtypes("number").columns
    np.testing.assert_allclose(got[num].to_numpy(float), ref[num].to_numpy(float), rtol=1e-9, equal_nan=True)


def test_join_labels_takes_an_arrow_boolean_target_with_missing_values():
    rng = np.random.default_rng(2)
    n = 120
    lat, lon = 34 + rng.random(n) * 0.2, -118.4 + rng.random(n) * 0.2
    flag = [None if k % 7 == 0 else bool(v) for k, v in enumerate(rng.random(n) > 0.5)]
    labels = pd.DataFrame({"lat": lat, "lon": lon, "y": pd.array(flag, dtype=pd.ArrowDtype(pa.bool_()))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the two-valued-target warning
        got = join_labels(labels, "y")
    plain = pd.DataFrame({"cell": geos2vec.latlng_to_cell(lat, lon, 12),
                          "y": [np.nan if v is None else float(v) for v in flag]}).dropna()
    ref = plain.groupby("cell")["y"].agg(["median", "size"])
    np.testing.assert_array_equal(got.index.to_numpy(), ref.index.to_numpy(np.uint64))
    np.testing.assert_allclose(got["y"].to_numpy(), ref["median"].to_numpy())
    np.testing.assert_array_equal(got["n_points"].to_numpy(), ref["size"].to_numpy())
    assert got.attrs["n_missing_target"] == sum(v is None for v in flag)


def test_join_labels_names_the_row_with_bad_coordinates_not_its_position_among_rows_with_a_target():
    # row "a" has no target (pd.NA in a Float64 column) and is left out; the bad rows are "b" and "c" (positions
    # 1 and 2), which the error called positions [0] and [1]
    labels = pd.DataFrame({"lat": pd.array([34.0, None, 34.1, 34.2], dtype="Float64"),
                           "lon": [-118.0, -118.1, -118.2, -118.3],
                           "y": pd.array([None, 1.0, 2.0, 3.0], dtype="Float64")}, index=["a", "b", "c", "d"])
    with pytest.raises(InvalidInputError, match=r"NaN or infinite, at index \['b'\]"):
        join_labels(labels, "y")
    with pytest.raises(InvalidInputError, match=r"latitude\(s\) outside \[-90, 90\].* at index \['c'\]"):
        join_labels(labels.assign(lat=[34.0, 34.05, 95.0, 34.2]), "y")
