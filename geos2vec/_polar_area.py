"""Projected areas around a pole, taken to longitude/latitude (:func:`around_pole`).

A polygon that encloses a pole in a polar projection (EPSG:3031 around Antarctica, EPSG:3413 over the Arctic),
transformed vertex by vertex, has an outline that goes once round the Earth in longitude: no lon/lat polygon
has that outline. The area it means is the outline closed along latitude ±90, as ``shapely.box(-180, 80, 180,
90)`` draws a polar cap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import shapely

__all__ = ["around_pole"]


def _wrap_pieces(poly: shapely.Geometry) -> shapely.Geometry:
    """A lon/lat polygon with longitudes anywhere in [-540, 540], cut at ±180 and its pieces moved into range."""
    import shapely
    from shapely import affinity

    pieces = [affinity.translate(shapely.intersection(poly, shapely.box(-180.0 + 360 * k, -90.0, 180.0 + 360 * k,
                                                                       90.0)), xoff=-360.0 * k)
              for k in (-1, 0, 1)]
    return shapely.union_all([p for p in pieces if not p.is_empty])


def around_pole(part: shapely.Geometry) -> shapely.Geometry:
    """A lon/lat polygon (transformed from a projected CRS) whose outline goes once round a pole, in [-180, 180].

    Its exterior, unwrapped across ±180, runs 360 degrees of longitude; closed along latitude ±90 (the pole
    on the side of its mean latitude: the one a polar projection such as EPSG:3031 or EPSG:3413 shows inside)
    it is the area drawn in lon/lat, as ``shapely.box(-180, 80, 180, 90)`` is a polar cap. Holes are cut out
    (one round the pole too, as for a ring of sea ice around Antarctica's coast).
    """
    import shapely
    from shapely import affinity

    from .raster._common import _unwrap_xy

    def closed(ring):
        xy, net = _unwrap_xy(shapely.get_coordinates(ring))
        if net == 0:  # a hole beside the pole: as it is, its middle in [-180, 180)
            shape = shapely.Polygon(xy)
            x0, _, x1, _ = shape.bounds
            return _wrap_pieces(affinity.translate(shape, xoff=-360.0 * np.floor(((x0 + x1) / 2 + 180.0) / 360.0)))
        pole = 90.0 if xy[:, 1].mean() > 0 else -90.0
        xy = np.vstack([xy, [[xy[-1, 0], pole], [xy[0, 0], pole], xy[0]]])
        shape = shapely.make_valid(shapely.Polygon(xy))
        return _wrap_pieces(affinity.translate(shape, xoff=-360.0 * np.floor((xy[0, 0] + 180.0) / 360.0)))

    out = closed(part.exterior)
    for hole in part.interiors:
        out = shapely.difference(out, closed(hole))
    # a hole round the pole leaves a zero-width slit down to the pole where its closure met the pole: snapping
    # to 1e-10 degrees (0.01 mm) removes it
    return shapely.set_precision(out, 1e-10)
