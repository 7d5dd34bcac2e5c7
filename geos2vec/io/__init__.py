"""Readers that turn OpenStreetMap data into POI and road GeoDataFrames.

* :func:`read_osm` - ``.osm.pbf`` / ``.osm`` files via pyosmium (``pip install geos2vec[osm]``),
* :func:`read_pois`, :func:`read_roads` - GeoParquet (or any file GeoPandas reads) or a GeoDataFrame,
  checked and ready for :func:`geos2vec.features.count_features`.
"""

from .osm import OSMData, read_osm, read_pois, read_roads

__all__ = ["OSMData", "read_osm", "read_pois", "read_roads"]
