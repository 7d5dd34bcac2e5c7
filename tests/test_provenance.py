"""Every output says which geos2vec, model, mode and level made it (attrs, and in Parquet files)."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest

import geos2vec
from geos2vec.provenance import flat_attrs, provenance

BOX = (-74.0, 40.70, -73.96, 40.74)


@pytest.fixture(scope="module")
def pois():
    rng = np.random.default_rng(0)
    return gpd.GeoDataFrame({"fclass": rng.choice(["restaurant", "cafe", "school"], 300)}, crs=4326,
                            geometry=gpd.points_from_xy(rng.uniform(BOX[0], BOX[2], 300),
                                                        rng.uniform(BOX[1], BOX[3], 300)))


def test_record_fields():
    rec = provenance(stage="embed", model="default", level=12, mode=None)
    assert rec["geos2vec_version"] == geos2vec.__version__
    assert provenance(stage="embed") == provenance(stage="embed")      # deterministic: no timestamp
    assert rec["stage"] == "embed" and rec["level"] == 12 and "mode" not in rec
    assert flat_attrs(rec)["geos2vec_stage"] == "embed" and flat_attrs(rec)["geos2vec_version"] == rec[
        "geos2vec_version"]


def test_every_stage_records_its_provenance(pois, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = geos2vec.count_features(pois)
        assert table.attrs["geos2vec"]["stage"] == "features" and table.attrs["geos2vec"]["level"] == 12
        images = geos2vec.rasterize(table)
        assert images.attrs["geos2vec_stage"] == "rasterize"
        assert images.attrs["geos2vec_version"] == geos2vec.__version__
        model = geos2vec.load_model("default")
        assert model.source == "default"
        emb = model.embed(images)
        assert emb.attrs["geos2vec_model"] == "default" and emb.attrs["geos2vec_mode"] == "contextual"
        frame = model.embed(images, as_frame=True)
        assert frame.attrs["geos2vec"]["model"] == "default"
        points = pois.iloc[:20]
        out = points.s2vec.embed(features=table, level=12)
    rec = out.attrs["geos2vec"]
    assert (rec["stage"], rec["model"], rec["mode"], rec["level"], rec["context"]) == (
        "embed", "default", "contextual", 12, "blend")
    # GeoParquet keeps it (pandas/geopandas write attrs into the file's metadata)
    out.to_parquet(tmp_path / "out.parquet")
    back = gpd.read_parquet(tmp_path / "out.parquet")
    assert back.attrs["geos2vec"] == rec
    # zarr keeps the flat DataArray attrs
    pytest.importorskip("zarr")
    geos2vec.raster.to_zarr(images, tmp_path / "img.zarr")
    assert geos2vec.raster.open_zarr(tmp_path / "img.zarr").attrs["geos2vec_stage"] == "rasterize"


def test_a_model_built_here_is_in_memory(pois):
    from geos2vec.provenance import model_name

    assert model_name(None) is None
    assert model_name(geos2vec.model.S2VecModel()) == "in-memory"


def test_flat_attrs_round_trip():
    from geos2vec.provenance import record_from_attrs

    rec = provenance(stage="embed", model="default", mode="contextual", level=12)
    assert record_from_attrs({**flat_attrs(rec), "mode": "contextual"}) == rec
    assert record_from_attrs({"mode": "tiled"}) == {}
