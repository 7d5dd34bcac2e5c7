"""Fixes of the lead's reviews of the helpers' commits (each test failed on the code before its fix)."""
from pathlib import Path

import pytest

from geos2vec import io
from geos2vec.errors import InvalidInputError

PBF = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm" / "andorra-latest.osm.pbf"


@pytest.mark.skipif(not PBF.exists(), reason="needs ../shared/data")
@pytest.mark.parametrize(("reader", "name"), [(io.read_pois, "pois"), (io.read_roads, "roads")])
def test_an_osm_file_is_pointed_to_read_osm_at_once(reader, name, monkeypatch):
    """3f42cf7 refused a GeoPackage of several layers, and so an ``.osm.pbf`` (GDAL opens it as five layers), after
    counting every layer's features (minutes for a country), with no word of ``read_osm``."""
    import pyogrio

    def no_listing(*args, **kwargs):
        raise AssertionError("the layers were listed and counted")

    monkeypatch.setattr(pyogrio, "list_layers", no_listing)
    with pytest.raises(InvalidInputError, match=rf"OpenStreetMap file: read it with geos2vec\.io\.read_osm\(.*\)"
                                                rf"\.{name}"):
        reader(str(PBF))
    monkeypatch.undo()
    assert len(getattr(io.read_osm(PBF), name)) > 0          # where the message points: the file's rows are there
