"""``geos2vec cells``: S2 cells of coordinates from the command line."""

from __future__ import annotations

from .errors import InvalidInputError


def add_parser(subparsers):
    """The ``cells`` subcommand's parser."""
    p = subparsers.add_parser("cells", help="S2 cell ids and tokens of lat/lng pairs")
    p.add_argument("coords", nargs="*", type=float, metavar="LAT LNG",
                   help="latitude/longitude pairs in degrees (default: a few world cities)")
    p.add_argument("--level", type=int, default=12, help="S2 level (default 12)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run ``geos2vec cells``; the exit status."""
    import numpy as np

    from . import cells

    coords = args.coords or [40.7484, -73.9857, 41.8789, -87.6359, 37.3382, -121.8863, 51.5007, -0.1246]
    if len(coords) % 2:
        raise InvalidInputError("give latitude/longitude pairs, e.g. geos2vec cells 34.05 -118.25")
    lat, lng = np.asarray(coords[0::2]), np.asarray(coords[1::2])
    ids = cells.latlng_to_cell(lat, lng, args.level)
    clat, clng = cells.cell_to_latlng(ids)
    print(f"{'lat':>10} {'lng':>11}  {'cell id':>20}  {'token':<16} center")
    for a, b, c, t, ca, cb in zip(lat, lng, ids, cells.cell_to_token(ids), clat, clng):
        print(f"{a:10.5f} {b:11.5f}  {int(c):20d}  {t:<16} ({ca:.5f}, {cb:.5f})")
    return 0
