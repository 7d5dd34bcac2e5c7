"""A user in Germany, Brazil or Japan: non-ASCII category values, channel names, file names and CSV encodings.

References are hand-counted: every POI below sits at a known coordinate whose level-12 cell is computed with
``latlng_to_cell`` (bit-exact with S2, tested elsewhere), and the expected counts are written out.
"""

from __future__ import annotations

import unicodedata
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import Ontology, count_features, latlng_to_cell, rasterize, to_frame
from geos2vec.errors import InvalidInputError

NFC = "café"                                   # 'caf\xe9', as typed on most keyboards
NFD = unicodedata.normalize("NFD", NFC)        # 'cafe\u0301', as macOS file names and some exports hold it
BERLIN, SAO_PAULO = (13.40, 52.52), (-46.63, -23.55)


def _pois(values, where):
    lon, lat = zip(*where)
    return gpd.GeoDataFrame({"fclass": values}, geometry=gpd.points_from_xy(lon, lat), crs=4326)


def _cell(lon, lat):
    return np.uint64(latlng_to_cell(np.array([lat]), np.array([lon]), 12)[0])


def test_a_decomposed_category_counts_in_its_composed_channel_and_the_names_survive_storage(tmp_path):
    assert NFC != NFD and len(NFD) == 5
    pois = _pois([NFC, NFD, NFD + " ", "Straße", "東京 ラーメン", "Padaria São João"],
                 [BERLIN, BERLIN, SAO_PAULO, BERLIN, SAO_PAULO, SAO_PAULO])
    onto = Ontology.from_mapping({NFC: "Café & Bäckerei", "Straße": "Straße", "東京 ラーメン": "ラーメン",
                                  "Padaria São João": "padaria=São João"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # nothing is dropped, so nothing is reported
        table = count_features(pois, ontology=onto)
    assert table.attrs["report"]["dropped_categories"] == {}
    assert table.attrs["report"]["n_pois_counted"] == 6
    berlin, sp = _cell(*BERLIN), _cell(*SAO_PAULO)
    expected = pd.DataFrame({"Café & Bäckerei": [2, 1], "Straße": [1, 0], "ラーメン": [0, 1],
                             "padaria=São João": [0, 1], "road": [0, 0]},
                            index=pd.Index(sorted([berlin, sp]), name="cell_id", dtype=np.uint64))
    expected = expected.loc[table.index]
    assert list(table.columns) == list(expected.columns)
    np.testing.assert_array_equal(table.to_numpy(), expected.to_numpy())
    # the lookup itself, with keys in either form too
    assert onto.lookup([NFD, f" {NFD} ", NFC]).tolist() == [0, 0, 0]
    key_onto = Ontology.from_mapping({f"cuisine={NFC}": "cafe"})
    assert key_onto.lookup([NFD, f"cuisine={NFD}"], keys=["cuisine", None]).tolist() == [0, 0]
    # the non-ASCII channel names survive Parquet and zarr in a folder named in three scripts
    folder = tmp_path / "Dados São Paulo 東京 Straße"
    folder.mkdir()
    table.to_parquet(folder / "Merkmale ü.parquet")
    back = pd.read_parquet(folder / "Merkmale ü.parquet")
    pd.testing.assert_frame_equal(back, table, check_freq=False)
    pytest.importorskip("zarr")
    images = rasterize(table)
    geos2vec.raster.to_zarr(images, folder / "Bilder é.zarr")
    opened = geos2vec.raster.open_zarr(folder / "Bilder é.zarr")
    assert [str(c) for c in opened["feature"].values] == list(table.columns)
    pd.testing.assert_frame_equal(to_frame(opened).loc[table.index, table.columns].astype(np.int64), table,
                                  check_freq=False, check_names=False)


def test_two_channels_named_alike_in_two_unicode_forms_are_refused():
    # before, they were two columns that printed the same ('café', 'café'), each counting only its own form
    with pytest.raises(InvalidInputError, match=r"'caf\\xe9'.*'cafe\\u0301'.*two Unicode normal forms"):
        Ontology.from_channels([NFC, "Straße", NFD])
    with pytest.raises(InvalidInputError, match="two Unicode normal forms"):
        count_features(_pois([NFC], [BERLIN]), ontology={"a": NFC, "b": NFD})
    # names differing in case are distinct channels (OSM tags are case-sensitive), as before
    onto = Ontology.from_channels([NFC, "Café", "STRASSE", "Straße"])
    assert onto.lookup(["Café", NFD, "STRASSE", "Straße"]).tolist() == [1, 0, 2, 3]
