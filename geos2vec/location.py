"""Location encoders: multi-scale sinusoidal encodings of latitude/longitude.

The S2Vec paper fuses its embeddings with a location encoding of the cell
centroid ("S2Vec-Loc") and compares against location-only models. This module
provides the classic encoders, each as a vectorized NumPy function and as a
Keras layer (:class:`LocationEncoder`, built lazily so that ``import geos2vec``
never imports TensorFlow):

======================  =========  ===========================================
method                  dims       formula (per scale ``s``, ``f_s = 1/r_s``)
======================  =========  ===========================================
``"wrap"``              4          ``sin(lng), cos(lng), sin(2 lat), cos(2 lat)``
                                   (Mac Aodha et al. 2019; lng/lat in radians)
``"sinusoidal"``        4 S        ``sin(2^s lng), cos(2^s lng), sin(2^s 2 lat),
                                   cos(2^s 2 lat)`` (NeRF-style octaves of wrap)
``"grid"``              4 S        Space2Vec grid (Mai et al. 2020):
                                   ``sin(<p, a_j> f_s), cos(<p, a_j> f_s)`` for
                                   ``a_1 = (1, 0)``, ``a_2 = (0, 1)``
``"theory"``            6 S        Space2Vec theory: same with the three unit
                                   vectors 120° apart ``a_1 = (1, 0)``,
                                   ``a_2 = (-1/2, √3/2)``, ``a_3 = (-1/2, -√3/2)``
``"sphereC"``           3 S        Sphere2Vec (Mai et al. 2023):
                                   ``sin φ_s, cos φ_s cos λ_s, cos φ_s sin λ_s``
``"sphereM"``           5 S        ``sin φ_s, cos φ_s cos λ, cos φ cos λ_s,
                                   cos φ_s sin λ, cos φ sin λ_s``
======================  =========  ===========================================

Coordinates are radians internally: ``p = (λ, φ) = (lng, lat)`` in radians and
``λ_s = λ f_s``, ``φ_s = φ f_s``. The scales ``r_s`` are geometric between
``min_radius`` and ``max_radius`` (radians; one radian is about 6,371 km on
the Earth's surface): ``r_s = min_radius * (max_radius/min_radius) ** (s/(S-1))``
for ``s = 0 .. S-1``, so ``s = 0`` is the finest scale. Features are ordered
scale-major: all features of scale 0, then scale 1, ... (within a scale in the
order of the table).

Defaults (``frequency_num=16``, ``min_radius=1e-4``, ``max_radius=1.0``) span
wavelengths ``2π r_s`` from about 4 km (two level-12 cells) to the whole globe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .cells import _as_cells, cell_to_latlng, check_latlng
from .errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["scales", "output_dim", "encode_location", "encode_cells", "METHODS", "wrap", "sinusoidal", "space2vec_grid",
           "space2vec_theory", "sphere2vec_sphereC", "sphere2vec_sphereM"]

METHODS = ("wrap", "sinusoidal", "grid", "theory", "sphereC", "sphereM")
_MULTISCALE = ("grid", "theory", "sphereC", "sphereM")
_DIMS_PER_SCALE = {"wrap": 4, "sinusoidal": 4, "grid": 4, "theory": 6, "sphereC": 3, "sphereM": 5}

_SQRT3_2 = np.sqrt(3.0) / 2.0
_THEORY_DIRECTIONS = ((1.0, 0.0), (-0.5, _SQRT3_2), (-0.5, -_SQRT3_2))
_GRID_DIRECTIONS = ((1.0, 0.0), (0.0, 1.0))


def _check_method(method: str) -> str:
    if method not in METHODS:
        lowered = {m.lower(): m for m in METHODS}
        if isinstance(method, str) and method.lower() in lowered:
            return lowered[method.lower()]
        raise InvalidInputError(f"unknown location encoder {method!r}; choose one of {list(METHODS)}")
    return method


def _check_frequency_num(frequency_num) -> int:
    """``frequency_num`` as an int; anything but a positive integer raises (2.5 is not truncated to 2)."""
    if isinstance(frequency_num, bool) or not isinstance(frequency_num, (int, np.integer)) or frequency_num < 1:
        raise InvalidInputError(f"frequency_num must be a positive integer (the number of scales), got "
                                f"{frequency_num!r}")
    return int(frequency_num)


def scales(frequency_num: int = 16, min_radius: float = 1e-4, max_radius: float = 1.0) -> np.ndarray:
    """The geometric scales ``r_s`` (radians) of the multi-scale encoders.

    Parameters
    ----------
    frequency_num : int
        Number of scales ``S`` (>= 1). With ``S == 1`` the single scale is
        ``min_radius``.
    min_radius, max_radius : float
        Finest and coarsest scale in radians, ``0 < min_radius <= max_radius``.

    Returns
    -------
    numpy.ndarray of float64, shape (S,)
    """
    frequency_num = _check_frequency_num(frequency_num)
    try:
        min_radius, max_radius = float(min_radius), float(max_radius)
    except (TypeError, ValueError):
        raise InvalidTypeError(f"min_radius and max_radius must be numbers (radians), got {min_radius!r} and "
                               f"{max_radius!r}") from None
    if not (np.isfinite(min_radius) and np.isfinite(max_radius)) or min_radius <= 0 or max_radius < min_radius:
        raise InvalidInputError(
            f"need 0 < min_radius <= max_radius (radians), got min_radius={min_radius}, max_radius={max_radius}"
        )
    if frequency_num == 1:
        return np.array([min_radius])
    return min_radius * (max_radius / min_radius) ** (np.arange(frequency_num) / (frequency_num - 1))


def output_dim(method: str = "theory", frequency_num: int = 16) -> int:
    """Number of features of ``method`` with ``frequency_num`` scales.

    Parameters
    ----------
    method : {"wrap", "sinusoidal", "grid", "theory", "sphereC", "sphereM"}, default "theory"
        The encoder (case-insensitive).
    frequency_num : int, default 16
        Number of scales ``S`` (unused by ``"wrap"``, but checked).

    Returns
    -------
    int
        4 for ``"wrap"``, else the encoder's features per scale (see the module docstring) times ``S``.

    Raises
    ------
    ValueError
        If ``method`` is unknown, or ``frequency_num`` is not a positive integer (checked for ``"wrap"`` too,
        whose size does not depend on it).
    """
    method = _check_method(method)
    frequency_num = _check_frequency_num(frequency_num)
    return 4 if method == "wrap" else _DIMS_PER_SCALE[method] * frequency_num


def _encode(xp, lat_rad, lng_rad, method, freqs):
    """Backend-agnostic encoder: ``xp`` is numpy or keras.ops; freqs has shape (S,).

    lat_rad/lng_rad have shape (n,); returns (n, dims).
    """
    lat = lat_rad[:, None]
    lng = lng_rad[:, None]
    if method == "wrap":
        return xp.stack([xp.sin(lng[:, 0]), xp.cos(lng[:, 0]), xp.sin(2 * lat[:, 0]), xp.cos(2 * lat[:, 0])], axis=-1)
    f = freqs[None, :]  # (1, S)
    if method == "sinusoidal":
        a = lng * f
        b = 2 * lat * f
        parts = [xp.sin(a), xp.cos(a), xp.sin(b), xp.cos(b)]
    elif method in ("grid", "theory"):
        directions = _GRID_DIRECTIONS if method == "grid" else _THEORY_DIRECTIONS
        parts = []
        for ax, ay in directions:
            proj = (lng * ax + lat * ay) * f
            parts += [xp.sin(proj), xp.cos(proj)]
    elif method == "sphereC":
        lat_s, lng_s = lat * f, lng * f
        parts = [xp.sin(lat_s), xp.cos(lat_s) * xp.cos(lng_s), xp.cos(lat_s) * xp.sin(lng_s)]
    else:  # sphereM
        lat_s, lng_s = lat * f, lng * f
        parts = [
            xp.sin(lat_s),
            xp.cos(lat_s) * xp.cos(lng),
            xp.cos(lat) * xp.cos(lng_s),
            xp.cos(lat_s) * xp.sin(lng),
            xp.cos(lat) * xp.sin(lng_s),
        ]
    stacked = xp.stack(parts, axis=-1)  # (n, S, k): scale-major after the reshape
    return xp.reshape(stacked, (-1, stacked.shape[1] * stacked.shape[2]))


def _frequencies(method, frequency_num, min_radius, max_radius):
    # checked for every method, also where unused ("wrap" uses neither, "sinusoidal" no radii): a bad value is a
    # mistake whichever encoder it was meant for
    radii = scales(frequency_num, min_radius, max_radius)
    if method == "wrap":
        return np.ones(1)
    if method == "sinusoidal":
        return 2.0 ** np.arange(radii.size)
    return 1.0 / radii


def encode_location(
    lat: ArrayLike,
    lng: ArrayLike,
    method: str = "theory",
    *,
    frequency_num: int = 16,
    min_radius: float = 1e-4,
    max_radius: float = 1.0,
) -> np.ndarray:
    """Encode latitude/longitude (degrees) with one of the location encoders.

    Parameters
    ----------
    lat, lng : array_like
        Degrees, same shape; NaN/inf/out-of-range raise ValueError.
    method : {"wrap", "sinusoidal", "grid", "theory", "sphereC", "sphereM"}
        See the module docstring for the formulas.
    frequency_num : int
        Number of scales ``S`` (octaves for ``"sinusoidal"``; unused by ``"wrap"``, but checked).
    min_radius, max_radius : float
        Finest / coarsest scale in radians (grid, theory, sphereC, sphereM; the other methods do not use them,
        but invalid values raise for every method).

    Returns
    -------
    numpy.ndarray of float64, shape ``lat.shape + (output_dim(method, S),)``
    """
    method = _check_method(method)
    lat, lng = check_latlng(lat, lng)
    shape = lat.shape
    freqs = _frequencies(method, frequency_num, min_radius, max_radius)
    out = _encode(np, np.radians(lat.ravel()), np.radians(lng.ravel()), method, freqs)
    return out.reshape(shape + (out.shape[-1],))


def _named(method, name):
    def fn(lat: ArrayLike, lng: ArrayLike, *, frequency_num: int = 16, min_radius: float = 1e-4,
           max_radius: float = 1.0) -> np.ndarray:
        return encode_location(
            lat, lng, method, frequency_num=frequency_num, min_radius=min_radius, max_radius=max_radius
        )

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"""The {method!r} location encoder: ``encode_location(lat, lng, {method!r}, ...)``.

    Parameters
    ----------
    lat, lng : array_like
        Degrees, same shape; NaN/inf/out-of-range raise ValueError.
    frequency_num : int
        Number of scales ``S``.
    min_radius, max_radius : float
        Finest / coarsest scale in radians (see :func:`encode_location` for the methods that use them).

    Returns
    -------
    numpy.ndarray of float64, shape ``lat.shape + (output_dim({method!r}, S),)``
    """
    return fn


wrap = _named("wrap", "wrap")
sinusoidal = _named("sinusoidal", "sinusoidal")
space2vec_grid = _named("grid", "space2vec_grid")
space2vec_theory = _named("theory", "space2vec_theory")
sphere2vec_sphereC = _named("sphereC", "sphere2vec_sphereC")
sphere2vec_sphereM = _named("sphereM", "sphere2vec_sphereM")


def encode_cells(cells: ArrayLike, method: str = "theory", **params: float) -> pd.DataFrame:
    """Location encoding of S2 cell centroids as a cell-indexed embedding table.

    Parameters
    ----------
    cells : array_like of uint64
        Valid S2 cell ids (any level; duplicates are kept).
    method, **params
        As in :func:`encode_location`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``cell_id`` (uint64), columns ``loc_<method>_<k>`` (float64);
        the format every stage of geos2vec uses for embedding tables.
    """
    cells = _as_cells(cells).ravel()
    lat, lng = cell_to_latlng(cells)
    values = encode_location(lat, lng, method, **params)
    method = _check_method(method)
    columns = [f"loc_{method}_{k}" for k in range(values.shape[1])]
    return pd.DataFrame(values, index=pd.Index(cells, name="cell_id", dtype="uint64"), columns=columns)


# --------------------------------------------------------------------- Keras
_KERAS = {}


def _keras_classes():
    if not _KERAS:
        from ._optional import require

        require("keras", what="geos2vec.location.LocationEncoder")  # the extra named, not a bare ModuleNotFound
        from .location_layers import LocationEncoder

        _KERAS["LocationEncoder"] = LocationEncoder
    return _KERAS


def __getattr__(name):
    if name == "LocationEncoder":
        return _keras_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
