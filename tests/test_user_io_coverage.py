"""coverage='infer' on a line of coordinates along the antimeridian: a hull of no area, warned about as none."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec.coverage import infer_coverage
from geos2vec.errors import CoverageWarning


def _meridian(lon):
    """30 coordinates within 0.05 degrees of latitude and 3 far up the same meridian (10, 20, 30 degrees)."""
    lat = np.concatenate([np.linspace(0.0, 0.05, 30), [10.0, 20.0, 30.0]])
    return pd.DataFrame({"lon": np.resize(np.asarray(lon, dtype=float), lat.size), "lat": lat})


def test_a_line_along_the_antimeridian_is_not_warned_about_as_a_stretched_area():
    # a line has no area: its hull is the line widened by 1e-6 degrees, and the stretch warning (the hull's area
    # against the hull of the rest) is left out, as for the same line at 10 degrees east. Written with both 180
    # and -180 it was warned about ("stretch the convex hull to ~600 times"): the collinearity was tested on the
    # plain hull, a band round the globe, not on the hull returned
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)
        at_10 = infer_coverage(_meridian(10.0))
        across = infer_coverage(_meridian([180.0, -180.0]))
    line = shapely.LineString([(180.0, 0.0), (180.0, 30.0)]).buffer(1e-6)
    assert across.area == pytest.approx(line.area, rel=1e-3) == at_10.area
    assert across.geom_type == "MultiPolygon"  # split at ±180, each side a hair wide
    assert sorted(round(float(b), 4) for b in (across.bounds[0], across.bounds[2])) == [-180.0, 180.0]
