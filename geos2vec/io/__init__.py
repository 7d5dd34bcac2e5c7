"""Readers that turn OpenStreetMap and Who's On First data into POI and road GeoDataFrames.

* :func:`download_osm` - the smallest Geofabrik extract covering an area, downloaded, verified and cached,
* :func:`osm_features` - the count table of an area from that extract (what ``embed(features="osm")`` uses),
* :func:`read_osm` - ``.osm.pbf`` / ``.osm`` files via pyosmium (``pip install geos2vec[osm]``),
* :func:`read_pois`, :func:`read_roads` - GeoParquet (or any file GeoPandas reads) or a GeoDataFrame,
  checked and ready for :func:`geos2vec.features.count_features`,
* :func:`read_wof` - Who's On First venue files (``us-<state>.parquet``), SimpleGeo categories mapped to
  the ontology's channels by a shipped crosswalk (:func:`load_crosswalk`); :func:`venue_coverage` - where
  they have data (each state's venue hull, mis-geocoded venues left out).
"""

from .crosswalk import load_crosswalk
from .download import download_osm, osm_features
from .osm import OSMData, read_osm, read_pois, read_roads
from .wof import read_wof
from .wof_coverage import isolated_venues, venue_coverage

__all__ = ["OSMData", "download_osm", "osm_features", "read_osm", "read_pois", "read_roads", "read_wof",
           "load_crosswalk", "isolated_venues", "venue_coverage"]
