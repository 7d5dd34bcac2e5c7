"""Evaluation helpers' paths no other test ran, and hostile inputs: the baselines' table checks and coverage
forms, ``untrained_model`` of a Keras model, ``join_labels`` with named columns, the Student-t tail at its
edges and ``seam_table`` without border pairs. References: s2sphere, shapely, pandas, scipy and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely

import geos2vec.evaluate as E
from geos2vec.cells import cell_to_children, latlng_to_cell
from geos2vec.errors import InvalidInputError, InvalidTypeError

LAT = np.array([37.30, 37.31, 37.32, 37.35, 37.40])
LNG = np.array([-121.90, -121.91, -121.92, -121.80, -121.70])
CELLS = np.unique(latlng_to_cell(LAT, LNG, 12))


def _counts(cells=CELLS):
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.poisson(2.0, (len(cells), 3)).astype(float), columns=["a", "b", "c"],
                        index=pd.Index(cells, name="cell_id"))


def _centre(cell):
    ll = s2sphere.CellId(int(cell)).to_lat_lng()
    return ll.lat().degrees, ll.lng().degrees


# --------------------------------------------------------------------------- table checks
def test_tables_that_are_not_cell_indexed_numeric_frames_are_refused():
    counts = _counts()
    with pytest.raises(InvalidTypeError, match="table must be a pandas DataFrame indexed by cell_id, got list"):
        E.pca_embedding([[1.0, 2.0]], 1)
    with pytest.raises(InvalidInputError, match=r"counts is empty \(shape \(0, 3\)\)"):
        E.normalized_counts(counts.iloc[:0])
    with pytest.raises(InvalidTypeError, match="must have numeric columns only, got dtypes"):
        E.random_projection(counts.assign(d="x"), 2)
    with pytest.raises(InvalidInputError, match="duplicate cell ids"):
        E.log1p_counts(pd.concat([counts, counts.iloc[:1]]))
    # a float index was truncated (1.5 -> cell 1) and a RangeIndex taken for cells 0, 1, 2, ... silently
    with pytest.raises(InvalidTypeError, match="table must be indexed by S2 cell ids.*integer array"):
        E.pca_embedding(counts.set_axis(counts.index.to_numpy(np.float64) + 0.5), 2)
    with pytest.raises(InvalidInputError, match="table must be indexed by S2 cell ids.*invalid S2 cell id"):
        E.random_projection(counts.reset_index(drop=True), 2)
    # the signed 64-bit storage of the same ids is read as those ids (reference: a view of the bits)
    signed = counts.set_axis(pd.Index(CELLS.view(np.int64)))
    pd.testing.assert_frame_equal(E.pca_embedding(signed, 2), E.pca_embedding(counts, 2))


def test_count_tables_refuse_what_would_read_as_empty():
    counts = _counts()
    with pytest.raises(InvalidInputError, match="log1p_counts needs counts >= 0"):
        E.log1p_counts(counts - 3)
    for rings in ((0,), (), (1, -2)):
        with pytest.raises(ValueError, match="rings must be positive integers"):
            E.smoothed_counts(counts, rings=rings)


def test_count_table_from_points_names_a_missing_category_column():
    gpd = pytest.importorskip("geopandas")
    points = gpd.GeoDataFrame({"kind": ["a", "b"]}, geometry=gpd.points_from_xy(LNG[:2], LAT[:2]), crs=4326)
    with pytest.raises(ValueError, match=r"category column 'fclass' not found; columns are \['kind', 'geometry'\]"):
        E.count_table_from_points(points)


# --------------------------------------------------------------------------- coverage forms
def test_covered_mask_forms_against_s2sphere_centres():
    centres = np.array([_centre(c) for c in CELLS])  # (lat, lng) from s2sphere
    poly = shapely.Polygon([(-121.95, 37.28), (-121.85, 37.28), (-121.85, 37.33), (-121.95, 37.36)])
    ref = np.array([poly.contains(shapely.Point(lng, lat)) for lat, lng in centres])
    assert ref.any() and not ref.all()
    np.testing.assert_array_equal(E.covered_mask(CELLS, poly), ref)
    box = (-121.95, 37.28, -121.85, 37.33)
    ref_box = (centres[:, 1] >= box[0]) & (centres[:, 1] <= box[2]) & (centres[:, 0] >= box[1]) & \
        (centres[:, 0] <= box[3])
    np.testing.assert_array_equal(E.covered_mask(CELLS, box), ref_box)
    np.testing.assert_array_equal(E.covered_mask(CELLS, [box, (-121.75, 37.38, -121.65, 37.42)]),
                                  ref_box | (centres[:, 1] > -121.75))
    # cell ids in any integer form: uint64, int64 (their signed storage) or a list; int64 ids were read as
    # boxes of huge numbers (four of them: every cell "unknown", silently)
    some = CELLS[[0, 2, 3, 4]]
    ref_ids = np.isin(CELLS, some)
    for ids in (some, some.view(np.int64), pd.Index(some.view(np.int64)), [int(c) for c in some]):
        np.testing.assert_array_equal(E.covered_mask(CELLS, ids), ref_ids)


@pytest.mark.parametrize("coverage, match", [
    ([(1.0, 2.0, 3.0)], "a bbox, a list of bboxes, a polygon or cell ids"),
    ("abc", "got the string 'abc'"),
    ([("w", 37.28, -121.85, 37.33)], "a bbox, a list of bboxes, a polygon or cell ids"),  # float('w')
    ((-121.85, 37.28, -121.95, 37.33), r"min <= max; got \[\[-121.85"),           # min > max
    ((37.28, -121.95, 37.33, -121.85), "latitude and longitude swapped"),       # (lat, lon) order
    ((np.nan, 37.28, -121.85, 37.33), "not finite"),
    (shapely.box(-1.359e7, 4.48e6, -1.357e7, 4.49e6), "not longitude/latitude degrees"),  # metres
    ([2 ** 64 - 5], "coverage as cell ids: invalid S2 cell id"),
])
def test_covered_mask_refuses_coverage_that_would_cover_nothing_silently(coverage, match):
    with pytest.raises(InvalidInputError, match=match):
        E.covered_mask(CELLS, coverage)
    with pytest.raises(InvalidInputError, match=match):  # what the count baselines pass it
        E.log1p_counts(_counts(), CELLS, coverage=coverage)


def test_covered_mask_of_a_geoseries_is_its_union_in_degrees():
    # a GeoSeries was refused with "pass coverage.to_crs(4326).union_all()", which goes round the globe the wrong
    # way for an area across ±180 in a projected CRS (tests/test_user_eval_antimeridian.py); now it is taken
    gpd = pytest.importorskip("geopandas")
    centres = np.array([_centre(c) for c in CELLS])  # (lat, lng) from s2sphere
    boxes = [shapely.box(-121.95, 37.28, -121.85, 37.33), shapely.box(-121.75, 37.38, -121.65, 37.42)]
    ref = shapely.contains_xy(shapely.union_all(boxes), centres[:, 1], centres[:, 0])
    assert ref.any() and not ref.all()
    np.testing.assert_array_equal(E.covered_mask(CELLS, gpd.GeoSeries(boxes, crs=4326).to_crs(3857)), ref)
    with pytest.raises(InvalidInputError, match="coverage has no CRS"):
        E.covered_mask(CELLS, gpd.GeoSeries(boxes))


# --------------------------------------------------------------------------- untrained model
def test_untrained_model_of_a_keras_model_has_fresh_keras_weights():
    pytest.importorskip("keras")
    import geos2vec
    from geos2vec.model import S2VecModel

    bundled = geos2vec.load_model("default")
    small = S2VecModel(bundled.config.replace(embedding_dim=16, encoder_layers=1, decoder_dim=8, decoder_layers=1,
                                              num_heads=2))
    small.stats, small.channels, small.grid = bundled.stats, list(bundled.channels), tuple(bundled.grid)
    small.image_level, small.patch_level = bundled.image_level, bundled.patch_level
    small._build_keras()
    a, b = E.untrained_model(small, seed=1), E.untrained_model(small, seed=1)
    assert a.keras_model is not None and a.numpy_weights is None and a.keras_model is not small.keras_model
    assert a.config.seed == 1 and a.channels == small.channels and a.stats is small.stats
    old = {w.path: np.asarray(w) for w in small.keras_model.weights}
    new = {w.path: np.asarray(w) for w in a.keras_model.weights}
    assert {k: v.shape for k, v in new.items()} == {k: v.shape for k, v in old.items()}
    key = next(k for k in new if k.endswith("patch_embed/kernel"))
    np.testing.assert_array_equal(new[key], np.asarray(next(w for w in b.keras_model.weights if w.path == key)))
    assert not np.allclose(new[key], old[key])


# --------------------------------------------------------------------------- labels
def test_join_labels_with_named_coordinate_columns():
    frame = pd.DataFrame({"Y": LAT, "X": LNG, "v": [1.0, 3.0, 5.0, 7.0, np.nan]}, index=[10, 10, 30, 5, 1])
    out = E.join_labels(frame, "v", lat="Y", lng="X")
    # reference: s2sphere cells and a pandas median
    ref_cells = [s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b)).parent(12).id()
                 for a, b in zip(LAT, LNG)]
    ref = pd.Series(frame["v"].to_numpy()).groupby(np.array(ref_cells, dtype=np.uint64)).median().dropna()
    assert out.index.tolist() == ref.index.tolist() and out["v"].tolist() == ref.tolist()
    assert out.attrs["n_missing_target"] == 1
    with pytest.raises(InvalidInputError, match=r"latitude column 'lat' not found; columns are \['Y', 'X', 'v'\]"):
        E.join_labels(frame, "v", lat="lat", lng="X")
    with pytest.raises(InvalidTypeError, match="labels must be a pandas DataFrame or GeoDataFrame, got dict"):
        E.join_labels(frame.to_dict(), "v")
    # pandas said "Unable to parse string 'west' at position 3", naming no column
    bad = frame.assign(X=frame["X"].astype(object))
    bad.iloc[3, 1] = "west"
    with pytest.raises(InvalidInputError, match="coordinate column 'X' holds 1 value.* 'west' at index label 5"):
        E.join_labels(bad, "v", lat="Y", lng="X")


# --------------------------------------------------------------------------- Student t
def test_student_t_tail_at_zero_nan_and_bad_degrees_of_freedom():
    for df in (0.5, 1.0, 2.0, 7.0):
        assert E.student_t_sf(0.0, df) == 0.5
    # closed forms: Cauchy (df = 1) and df = 2
    for t in (1e-8, 0.3, -2.0, 40.0):
        assert E.student_t_sf(t, 1.0) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-12)
        assert E.student_t_sf(t, 2.0) == pytest.approx(0.5 - t / (2 * math.sqrt(2 + t * t)), rel=1e-12)
    assert math.isnan(E.student_t_sf(math.nan, 3.0))
    for df in (0.0, -1.0, math.nan):
        with pytest.raises(InvalidInputError, match="df must be > 0"):
            E.student_t_sf(1.0, df)


@pytest.mark.parametrize("df", [3.5, 19.0, 1e3, 2500.0, 1e6, 1e7, 1e9, 1e12, 1e15, 1e300, math.inf])
def test_student_t_tail_against_scipy_at_any_degrees_of_freedom(df):
    # df = inf gave 0.5 whatever t; df = 1e15 gave 0.42 for 0.31; df = 1e12 was off in the fourth digit
    stats = pytest.importorskip("scipy.stats")
    for t in (0.5, -0.5, 1.0, 1.7, 1.96, 3.0, -3.0, 10.0, 30.0):
        assert E.student_t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-9, abs=1e-300)
    assert E.student_t_sf(math.inf, df) == 0.0 and E.student_t_sf(-math.inf, df) == 1.0


# --------------------------------------------------------------------------- seams
def test_seam_table_without_pairs_across_image_borders_has_no_border_step():
    image = latlng_to_cell(37.3, -121.9, 8)
    cells = np.sort(cell_to_children(image, 12))  # one whole image: every neighbour pair is inside it
    x = np.random.default_rng(0).normal(size=(len(cells), 4))
    emb = pd.DataFrame(x, index=pd.Index(cells, name="cell_id"))
    with pytest.raises(InvalidInputError, match="across level-8 image borders and inside images; got 0 across"):
        E.border_step(emb)
    row = E.seam_table({"one image": emb}).loc["one image"]
    assert math.isnan(row["border_step"]) and row["cells"] == 256
    # one block: its mean is the grand mean, so offset 0 explains nothing (reference: the definition)
    assert row["share_0"] == pytest.approx(0.0, abs=1e-12) == E.block_share(emb)
