"""An analyst who judges geos2vec by its pictures: what each map shows, read back from the drawn artists."""

from __future__ import annotations

import warnings

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely
from matplotlib.figure import Figure

import geos2vec
from geos2vec import raster
from geos2vec.demo import pca_rgb, plot_embedding_map
from geos2vec.errors import InvalidInputError
from geos2vec.evaluate.report import write_report

matplotlib.use("Agg")


@pytest.fixture()
def plt():
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


@pytest.fixture(scope="module")
def la_pois(shared_data):
    return gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")


def _map_values(ax) -> np.ndarray:
    """The values of the map's coloured cells (the PolyCollection with an array)."""
    return np.asarray([c for c in ax.collections if c.get_array() is not None][0].get_array())


# --------------------------------------------------------------------------- plot_image
def test_a_channel_the_source_lacks_is_drawn_unknown_and_covered_empty_cells_as_zero(la_pois, plt):
    """POIs without roads, with coverage: ``road`` is missing everywhere. It was drawn as 0 in every observed
    cell (the lowest colour: "no roads here"), and covered cells without data as unknown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = geos2vec.count_features(la_pois, coverage="infer")
    da = raster.rasterize(table)
    assert not bool(da["available"].sel(feature="road").any())
    assert _map_values(raster.plot_image(da, "road")).size == 0                 # was 127 zeros
    img = raster.plot_image(da, "road", image=0).images[0].get_array()
    assert np.isnan(np.ma.filled(img, np.nan)).all()
    # a POI channel: every covered pixel is known; those without a row are empty cells (0), the rest as counted
    counts = table["restaurant"]
    pos = int(np.argmax(da["covered"].sum(("row", "col")).values))
    shown = np.ma.filled(raster.plot_image(da, "restaurant", image=pos, log=False).images[0].get_array(), np.nan)
    cid = da["cell_id"].values[pos]
    covered = da["covered"].values[pos]
    expected = np.where(covered, pd.Series(counts).reindex(cid.ravel()).fillna(0).to_numpy().reshape(cid.shape),
                        np.nan)
    assert (covered & ~da["observed"].values[pos]).any()                       # known-empty pixels exist
    np.testing.assert_array_equal(shown, expected)


def test_log_scale_refuses_normalized_values_instead_of_clipping_them(la_pois, plt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = geos2vec.count_features(la_pois).astype(float)
    z = (table - table.mean()) / table.std().replace(0, 1)
    da = raster.rasterize(z)
    with pytest.raises(InvalidInputError, match="log=False"):
        raster.plot_image(da, "restaurant")                                     # negatives were drawn as 0
    shown = _map_values(raster.plot_image(da, "restaurant", log=False))
    np.testing.assert_allclose(np.sort(shown), np.sort(z["restaurant"].to_numpy()))


def test_vmin_vmax_give_the_map_and_the_picture_one_colour_scale(la_pois, plt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        da = raster.rasterize(geos2vec.count_features(la_pois))
    ax = raster.plot_image(da, vmin=0, vmax=3)                                  # was PolyCollection's AttributeError
    pc = [c for c in ax.collections if c.get_array() is not None][0]
    assert pc.get_clim() == (0, 3)
    assert raster.plot_image(da, image=0, vmin=0, vmax=3).images[0].get_clim() == (0, 3)


def test_a_map_across_the_antimeridian_is_not_smeared_over_the_world(plt):
    """Cells on both sides of ±180 (Fiji) were drawn 360° apart, and cells straddling it across the map."""
    lat = np.array([-17.0, -17.0, -16.9])
    lng = np.array([179.99, -179.99, 179.9])
    ids = np.unique(geos2vec.latlng_to_cell(lat, lng, 12))
    da = raster.rasterize(pd.DataFrame({"a": np.arange(1.0, len(ids) + 1)}, index=pd.Index(ids, name="cell_id")))
    ax = raster.plot_image(da)
    lo, hi = ax.get_xlim()
    assert hi - lo < 3                                                          # was -198 .. 198
    for path in [c for c in ax.collections if c.get_array() is not None][0].get_paths():
        xy = path.vertices
        assert np.ptp(xy[:, 0]) < 1                                             # no polygon spans the map
    # the cells are where s2sphere puts them, modulo 360
    centres = [c for c in ax.collections if c.get_array() is not None][0].get_paths()
    got = sorted(float(np.mean(p.vertices[:-1, 0]) % 360) for p in centres)
    want = []
    for i in ids:
        ll = s2sphere.CellId(int(i)).to_lat_lng()
        want.append(ll.lng().degrees % 360)
    np.testing.assert_allclose(got, sorted(want), atol=0.05)


# --------------------------------------------------------------------------- the demo map
def test_pca_colours_do_not_depend_on_row_order_and_follow_a_sign_convention():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20)) @ rng.normal(size=(20, 20))
    rgb, _ = pca_rgb(x)
    perm = rng.permutation(len(x))
    np.testing.assert_allclose(pca_rgb(x[perm])[0], rgb[perm], atol=1e-9)       # a channel could be inverted
    # independent reference: eigenvectors of the covariance, largest loading positive, 2-98 % scaling
    xc = x - x.mean(axis=0)
    w, v = np.linalg.eigh(np.cov(xc, rowvar=False))
    v = v[:, np.argsort(w)[::-1][:3]]
    v *= np.sign(v[np.argmax(np.abs(v), axis=0), np.arange(3)])
    pcs = xc @ v
    lo, hi = np.percentile(pcs, 2, axis=0), np.percentile(pcs, 98, axis=0)
    np.testing.assert_allclose(rgb, np.clip((pcs - lo) / (hi - lo), 0, 1), atol=1e-8)


def test_rows_with_inf_get_no_colour_instead_of_failing_the_svd():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 6))
    bad = x.copy()
    bad[3, 2] = np.inf
    rgb, explained = pca_rgb(bad)                                               # was LinAlgError
    assert np.isnan(rgb[3]).all()
    ref, ref_explained = pca_rgb(np.delete(x, 3, axis=0))
    np.testing.assert_allclose(np.delete(rgb, 3, axis=0), ref)
    np.testing.assert_allclose(explained, ref_explained)


def _cells():
    ids = np.unique(geos2vec.latlng_to_cell(np.array([34.05, 34.06, 34.10, 34.12]),
                                            np.array([-118.20, -118.30, -118.25, -118.22]), 12))
    geom = geos2vec.cell_polygons(ids)
    rng = np.random.default_rng(2)
    cols = {f"s2vec_{k}": rng.normal(size=len(ids)) for k in range(4)}
    return gpd.GeoDataFrame(cols, geometry=np.asarray(geom), crs="EPSG:4326")


@pytest.fixture()
def drawn(monkeypatch):
    """The figures plot_embedding_map saves."""
    figs = []
    real = Figure.savefig

    def keep(self, *args, **kwargs):
        figs.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figs


def test_the_demo_map_of_projected_cells_and_polygon_pois_is_drawn_in_degrees(tmp_path, drawn):
    cells = _cells()
    pois = gpd.GeoDataFrame(geometry=[cells.geometry.iloc[0], shapely.Point(-118.25, 34.1)], crs="EPSG:4326")
    plot_embedding_map(cells.to_crs(3857), tmp_path / "m.png", pois=pois.to_crs(3857))  # polygons: raw ValueError
    ax = drawn[-1].axes[0]
    minx, miny, maxx, maxy = cells.total_bounds
    lo, hi = ax.get_xlim()
    assert lo <= minx and maxx <= hi and hi - lo < 1                            # was metres, labelled degrees
    dots = ax.collections[-1].get_offsets()
    inside = cells.geometry.iloc[0].representative_point()
    np.testing.assert_allclose(np.asarray(dots), [[inside.x, inside.y], [-118.25, 34.1]], atol=1e-6)


def test_the_demo_map_refuses_no_embedding_columns_and_unknown_formats(tmp_path):
    with pytest.raises(InvalidInputError, match="prefix='emb_'"):
        plot_embedding_map(_cells(), tmp_path / "m.png", prefix="emb_")         # drew one colour, "0-d"
    with pytest.raises(InvalidInputError, match="extension"):
        plot_embedding_map(_cells(), tmp_path / "m.xyz")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the evaluation report
def test_tasks_whose_names_differ_only_in_punctuation_get_their_own_figure(tmp_path):
    rows = [dict(task=task, split="random", method=m, probe="ridge", rep=rep, r2=r2 + 0.01 * rep, mae=0.1,
                 n_cells=100, n_test=20)
            for task, r2s in (("income a", (0.5, 0.3)), ("income/a", (0.1, 0.2)))
            for rep in range(3) for m, r2 in zip(("S2Vec", "counts"), r2s)]
    report = write_report(pd.DataFrame(rows), tmp_path).read_text()
    links = [line.split("(")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    assert len(set(links)) == 2                                                 # both linked r2_income_a.png
    assert all((tmp_path / link).exists() for link in links)
    assert (tmp_path / links[0]).read_bytes() != (tmp_path / links[1]).read_bytes()


def test_every_r2_panel_has_the_same_rows_and_clipped_bars_say_their_value(tmp_path, drawn):
    """A method without scores in one panel shrank that panel's axis: its bars no longer lined up with the
    method labels, which only the left column shows; a bar clipped at -0.5 did not say how low it was."""
    from geos2vec.evaluate.report import plot_task

    rows = [dict(task="t", split=split, method=m, probe="ridge", rep=rep, r2=r2 + 0.01 * rep, mae=0.1, n_cells=100,
                 n_test=20)
            for split in ("random", "blocked") for rep in range(3)
            for m, r2 in (("S2Vec", 0.5), ("counts", 0.3), ("location-only", -3.0), ("untrained encoder", 0.2))
            if not (split == "random" and m == "untrained encoder")]
    plot_task(pd.DataFrame(rows), "t", tmp_path / "t.png")
    left, right = drawn[-1].axes[:2]
    labels = [t.get_text() for t in left.get_yticklabels()]
    assert labels == ["S2Vec", "counts", "location-only", "untrained encoder"]
    assert left.get_ylim() == right.get_ylim() == (3.5, -0.5)                   # the left one was (3.0, -0.5)
    for ax in (left, right):
        bars = {round(p.get_y() + p.get_height() / 2): p.get_width() for p in ax.patches}
        assert bars[1] == pytest.approx(0.31) and bars[2] == -0.5
        assert [t.get_text() for t in ax.texts] == ["-2.99"]                     # mean of -3.00, -2.99, -2.98


def test_an_empty_image_set_is_refused_and_an_augmented_picture_says_its_transform(la_pois, plt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        da = raster.rasterize(geos2vec.count_features(la_pois))
    with pytest.raises(InvalidInputError, match="no images"):
        raster.plot_image(da.isel(image=[]))                                    # drew an empty frame
    aug = raster.augment(da, transforms=[0, 1])
    pos = int(np.flatnonzero(aug["transform"].values == 1)[0])
    ax = raster.plot_image(aug, "road", image=pos, log=False)
    assert ax.get_title() == f"image {aug['token'].values[pos]} (transform 1): road"
    # a quarter turn counter-clockwise of the identity picture (NumPy's rot90), read back from the axes
    base = raster.plot_image(da, "road", image=aug["token"].values[pos], log=False).images[0].get_array()
    np.testing.assert_array_equal(np.ma.filled(ax.images[0].get_array(), -1), np.rot90(np.ma.filled(base, -1)))
