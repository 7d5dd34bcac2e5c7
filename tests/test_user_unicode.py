"""A user in Germany, Brazil or Japan: non-ASCII category values, channel names, file names and CSV encodings.

References are hand-counted: every POI below sits at a known coordinate whose level-12 cell is computed with
``latlng_to_cell`` (bit-exact with S2, tested elsewhere), and the expected counts are written out.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import geos2vec
from geos2vec import Ontology, count_features, latlng_to_cell, rasterize, to_frame
from geos2vec.cli import main
from geos2vec.errors import InvalidInputError
from geos2vec.io.crosswalk import load_crosswalk
from geos2vec.model._image_input import match_channels

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


_CROSSWALK = ("sg_category,sg_subcategory,channel,note\n"
              "Food & Drink,Café,cafe,Kaffee für Zürich\n"
              "Food & Drink,,restaurant,Padaria São João\n")


def test_crosswalk_files_read_as_utf8_with_bom_and_crlf_and_say_when_they_are_not(tmp_path):
    folder = tmp_path / "Crosswalks São Paulo"
    folder.mkdir()
    for name, data in [("bom.csv", b"\xef\xbb\xbf" + _CROSSWALK.encode()),
                       ("crlf.csv", _CROSSWALK.replace("\n", "\r\n").encode())]:
        (folder / name).write_bytes(data)
        table = load_crosswalk(folder / name)
        assert table["sg_category"].tolist() == ["Food & Drink", "Food & Drink"]
        assert table["sg_subcategory"].tolist() == ["Café", ""]
        assert table["note"].tolist() == ["Kaffee für Zürich", "Padaria São João"]
        assert table["osm_value"].tolist() == ["cafe", "restaurant"]
    # Excel's "CSV" in Germany or Brazil is Windows-1252: before, a bare "'utf-8' codec can't decode byte 0xe9"
    (folder / "latin1.csv").write_bytes(_CROSSWALK.encode("cp1252"))
    with pytest.raises(InvalidInputError, match=r"crosswalk .*latin1\.csv' is not UTF-8 text \(byte 0xe9 on line 2\)"
                                                r".*save it as UTF-8"):
        load_crosswalk(folder / "latin1.csv")
    (folder / "utf16.csv").write_bytes(_CROSSWALK.encode("utf-16"))
    with pytest.raises(InvalidInputError, match=r"utf16\.csv' is UTF-16 text"):
        load_crosswalk(folder / "utf16.csv")


def test_cli_names_a_latin1_csv_and_its_line(tmp_path, capsys):
    folder = tmp_path / "Zeilen Köln"
    folder.mkdir()
    table = count_features(_pois(["restaurant"], [BERLIN]))
    table.to_parquet(folder / "Merkmale.parquet")
    # a UTF-8 CSV with a byte-order mark and CRLF line ends is read, non-ASCII columns and values kept
    (folder / "Orte ü.csv").write_bytes(b"\xef\xbb\xbf" + "Name,lon,lat\r\nCafé Zürich,13.4,52.52\r\n".encode())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["embed", str(folder / "Orte ü.csv"), "--features", str(folder / "Merkmale.parquet"),
                     "--out", str(folder / "Ergebnis ü.csv"), "--quiet"]) == 0
    out = pd.read_csv(folder / "Ergebnis ü.csv")
    assert out["Name"].tolist() == ["Café Zürich"] and out["s2_cell"].tolist() == [int(_cell(*BERLIN))]
    capsys.readouterr()
    (folder / "Orte latin1.csv").write_bytes("Name,lon,lat\nStraße,13.4,52.52\nCafé,13.4,52.52\n".encode("latin-1"))
    assert main(["embed", str(folder / "Orte latin1.csv"), "--features", str(folder / "Merkmale.parquet"),
                 "--out", str(folder / "x.csv"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Orte latin1.csv' is not UTF-8 text (byte 0xdf on line 2)" in err and "iconv -f latin1" in err
    from geos2vec._cli_evaluate_inputs import _read_table

    with pytest.raises(InvalidInputError, match=r"cannot read .*Orte latin1\.csv: it is not UTF-8 text \(byte 0xdf "
                                                r"on line 2\).*save it as UTF-8"):
        _read_table(folder / "Orte latin1.csv")


def test_a_model_channel_mismatch_in_unicode_form_or_case_says_so():
    names = ["Straße", NFC, "Bäckerei", "road"]
    da = xr.DataArray(np.zeros((1, 2, 2, 4)), dims=("image", "row", "col", "feature"),
                      coords={"feature": ["Straße", NFD, "bäckerei", "road"]})
    with pytest.raises(InvalidInputError) as info:
        match_channels(da, names)
    msg = str(info.value)
    # before: "missing ['café', 'Bäckerei'], unexpected ['café', 'bäckerei']": the same-looking name on both sides
    assert r"'caf\xe9' (model) and 'cafe\u0301' (data) are one name in two Unicode normal forms" in msg
    assert "'Bäckerei' (model) and 'bäckerei' (data) differ only in case" in msg
    assert match_channels(da.assign_coords(feature=names), names) is not None
    # the statistics a model normalizes with say the same of a table or images (embed_cells, FeatureStats)
    table = pd.DataFrame(np.arange(8.0).reshape(2, 4), columns=names,
                         index=pd.Index([_cell(*BERLIN), _cell(*SAO_PAULO)], name="cell_id"))
    stats = geos2vec.FeatureStats.fit(table)
    renamed = table.rename(columns={NFC: NFD, "Bäckerei": "bäckerei"})
    for data, who in ((renamed, "table"), (rasterize(renamed), "DataArray")):
        with pytest.raises(InvalidInputError) as info:
            stats.transform(data)
        msg = str(info.value)
        assert rf"'caf\xe9' (fitted) and 'cafe\u0301' ({who}) are one name in two Unicode normal forms" in msg
        assert f"'Bäckerei' (fitted) and 'bäckerei' ({who}) differ only in case" in msg


def test_extra_categories_in_two_unicode_forms_are_one_channel_in_memory_and_on_dask():
    pois = _pois(["restaurant"] * 5, [BERLIN, BERLIN, SAO_PAULO, BERLIN, SAO_PAULO])
    pois["Küche"] = [NFC, NFD, NFD, "Café", "東京"]
    pois["Preço (R$)"] = [1.5, 2.0, 4.0, 8.0, 16.0]
    extra = {"Küche": "categories", "Preço (R$)": "sum"}
    table = count_features(pois, extra=extra)
    # before: "Küche=café" twice (composed and decomposed), Berlin 1 + 1 and São Paulo 0 + 1
    names = ["Küche=Café", "Küche=café", "Küche=東京", "Preço (R$)"]
    assert list(table.columns[-4:]) == names
    berlin, sp = _cell(*BERLIN), _cell(*SAO_PAULO)
    np.testing.assert_array_equal(table.loc[[berlin, sp], names].to_numpy(), [[1, 2, 0, 11.5], [0, 1, 1, 20.0]])
    dask_geopandas = pytest.importorskip("dask_geopandas")
    lazy = count_features(dask_geopandas.from_geopandas(pois, npartitions=2), extra=extra)
    pd.testing.assert_frame_equal(lazy, table, check_freq=False)


def test_report_tables_keep_one_row_per_method_whatever_its_name(tmp_path):
    from geos2vec.evaluate import report

    methods = ["S2Vec|PCA", "counts", 'Meu "embedding", v=1/2', "東京 emb"]
    rows = [{"task": "Renda São Paulo", "split": "random", "rep": k, "method": m, "probe": "ridge", "n_cells": 50,
             "n_test": 10, "r2": 0.5 + 0.01 * k + 0.05 * i, "mae": 1.0}
            for k in range(3) for i, m in enumerate(methods)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib: no CJK glyphs in DejaVu Sans
        path = report.write_report(pd.DataFrame(rows), tmp_path / "Relatório ü")
    text = path.read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in table]
    summary = {c[0]: c[1] for c in cells if len(c) == 2}
    # mean and SD of 0.50, 0.51, 0.52 (+ 0.05 per method); before, "| S2Vec|PCA | 0.510 ± 0.010 |" was read as
    # three cells: method "S2Vec", R² "PCA"
    assert summary == {"method": "random / ridge", "S2Vec|PCA": "0.510 ± 0.010", "counts": "0.560 ± 0.010",
                       'Meu "embedding", v=1/2': "0.610 ± 0.010", "東京 emb": "0.660 ± 0.010"}
    paired = [c for c in cells if len(c) == 8][1:]  # 8 cells: the Holm p column
    assert [(c[0], c[1], c[3]) for c in paired] == [("S2Vec|PCA", "counts", "-0.050"),
                                                    ('Meu "embedding", v=1/2', "counts", "+0.050"),
                                                    ("東京 emb", "counts", "+0.100")]
    assert len(cells) == len(table) == 5 + 4 and all(len(c) in (2, 8) for c in cells)
    back = pd.read_csv(path.parent / "scores.csv")
    assert list(dict.fromkeys(back["method"])) == methods
    assert (path.parent / "r2_Renda_São_Paulo.png").is_file() and "](r2_Renda_São_Paulo.png)" in text


def test_a_hand_edited_config_json_is_read_as_utf8_whatever_the_locale(tmp_path):
    config = tmp_path / "config ü.json"
    config.write_text('{"cli": {"labels": "Rótulos/Einkommen Zürich.csv", "target": "Renda (R$) é"}}',
                      encoding="utf-8")                          # as an editor saves it, not \u-escaped
    env = {**os.environ, "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C", "LANG": "C"}
    code = ("import sys, json; from geos2vec.cli_evaluate import _saved_cli; "
            "print(json.dumps(_saved_cli(sys.argv[1])))")
    run = subprocess.run([sys.executable, "-c", code, str(config)], env=env, capture_output=True, text=True,
                         encoding="utf-8")
    # before: under a non-UTF-8 locale (ASCII here, cp1252 on Windows) "--config ... is not JSON", or mojibake
    assert run.returncode == 0, run.stderr[-500:]
    assert json.loads(run.stdout) == {"labels": "Rótulos/Einkommen Zürich.csv", "target": "Renda (R$) é"}


def test_extra_categories_with_surrounding_or_only_spaces_are_no_channels_of_their_own():
    pois = _pois(["restaurant"] * 6, [BERLIN, BERLIN, BERLIN, SAO_PAULO, SAO_PAULO, SAO_PAULO])
    pois["Küche"] = ["café", "café ", " café", "", "  ", None]
    table = count_features(pois, extra=["Küche"])
    # before: channels 'Küche=', 'Küche=  ', 'Küche= café', 'Küche=café', 'Küche=café ' (three printed alike)
    assert list(table.columns[-2:]) == ["road", "Küche=café"]
    berlin, sp = _cell(*BERLIN), _cell(*SAO_PAULO)
    assert table.loc[berlin, "Küche=café"] == 3 and table.loc[sp, "Küche=café"] == 0
    assert table.attrs["report"]["extra_missing"] == {"Küche": 3}   # as NaN: blanks have no value
    dask_geopandas = pytest.importorskip("dask_geopandas")
    lazy = count_features(dask_geopandas.from_geopandas(pois, npartitions=3), extra=["Küche"])
    pd.testing.assert_frame_equal(lazy, table, check_freq=False)
    assert lazy.attrs["report"]["extra_missing"] == {"Küche": 3}


def test_excel_csv_of_germany_and_brazil_semicolons_and_decimal_commas_is_read_as_such(tmp_path, capsys):
    from geos2vec._cli_evaluate_inputs import _read_table

    folder = tmp_path / "Planilhas São Paulo"
    folder.mkdir()
    # what Excel (pt-BR, de-DE) saves as "CSV UTF-8": a byte-order mark, ';' between fields, ',' as decimal mark
    text = "Nome;lon;lat;Renda (R$);Código\r\nPadaria São João;-46,63;-23,55;1234,5;007\r\nCafé;13,4;52,52;-7;12\r\n"
    (folder / "Orte.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    labels = _read_table(folder / "Orte.csv")
    # before: one column named "Nome;lon;lat;Renda (R$);Código" ("target column ... not found")
    assert list(labels.columns) == ["Nome", "lon", "lat", "Renda (R$)", "Código"]
    assert labels["Nome"].tolist() == ["Padaria São João", "Café"]
    np.testing.assert_array_equal(labels[["lon", "lat", "Renda (R$)"]].to_numpy(float),
                                  [[-46.63, -23.55, 1234.5], [13.4, 52.52, -7.0]])
    assert labels["Código"].tolist() == [7, 12]                    # integers, as pandas reads them anyway
    table = count_features(_pois(["restaurant"], [BERLIN]))
    table.to_parquet(folder / "Merkmale.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["embed", str(folder / "Orte.csv"), "--features", str(folder / "Merkmale.parquet"),
                     "--out", str(folder / "Ergebnis.parquet"), "--quiet"]) == 0
    out = gpd.read_parquet(folder / "Ergebnis.parquet")
    assert out["s2_cell"].astype(np.uint64).tolist() == [_cell(*SAO_PAULO), _cell(*BERLIN)]
    # a crosswalk saved so splits into its columns too (every value kept as text)
    (folder / "crosswalk.csv").write_text("sg_category;sg_subcategory;channel\nComida 1,5;Café;cafe\n"
                                          "Comida 1,5;;restaurant\n", encoding="utf-8")
    crosswalk = load_crosswalk(folder / "crosswalk.csv")
    assert crosswalk["sg_category"].tolist() == ["Comida 1,5", "Comida 1,5"]
    assert crosswalk["channel"].tolist() == ["cafe", "restaurant"]


def test_a_column_named_in_another_unicode_form_or_case_is_said_to_be_so(tmp_path):
    kueche = unicodedata.normalize("NFD", "Küche")               # a column name as macOS wrote it
    pois = _pois(["restaurant"], [BERLIN]).assign(**{kueche: ["café"], "Renda": [1.0]})
    hint = r"'K\xfcche' (asked) and 'Ku\u0308che' (data) are one name in two Unicode normal forms"
    for kwargs in ({"category_column": "Küche"}, {"key_column": "Küche"}, {"extra": ["Küche"]}):
        with pytest.raises(InvalidInputError) as info:
            count_features(pois, **kwargs)
        # before: "category_column 'Küche' is not a column of pois (['fclass', 'Küche', ...])", the same name
        assert hint in str(info.value), kwargs
    from geos2vec.evaluate import join_labels

    with pytest.raises(InvalidInputError) as info:
        join_labels(pois, "renda")
    assert "'renda' (asked) and 'Renda' (data) differ only in case (column names are case-sensitive)" in str(
        info.value)
    with pytest.raises(InvalidInputError) as info:
        count_features(pois, extra=["Küche "])              # no hint where the names differ otherwise
    assert str(info.value) == "extra column 'Küche ' is not a column of pois"


def test_combine_counts_names_the_columns_that_differ_and_those_that_print_alike():
    from geos2vec.features import combine_counts

    table = count_features(_pois([NFC, "Straße"], [BERLIN, SAO_PAULO]), ontology=[NFC, "Straße"])
    with pytest.raises(InvalidInputError) as info:
        combine_counts([table, table.rename(columns={NFC: NFD})])
    # before: "all tables must have the same columns in the same order", nothing more
    assert r"'caf\xe9' (first table) and 'cafe\u0301' (other table) are one name in two Unicode" in str(info.value)
    with pytest.raises(InvalidInputError, match="one has them in another order"):
        combine_counts([table, table[table.columns[::-1]]])
    both = combine_counts([table, table])
    assert both.loc[_cell(*BERLIN), NFC] == 2 and both.loc[_cell(*SAO_PAULO), "Straße"] == 2
