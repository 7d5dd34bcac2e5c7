"""Numba kernels for S2 cell ids.

These are line-for-line ports of the S2 reference algorithms (s2geometry's
``S2CellId`` as mirrored by the pure-Python ``s2sphere``), using the quadratic
(u, v) -> (s, t) projection that S2 uses by default. They operate on NumPy
arrays and are validated bit-for-bit against s2sphere in ``tests/test_cells.py``.

Everything here is private: the public, validated API lives in
:mod:`geos2vec.cells`.
"""

from __future__ import annotations

import math
import os
import threading
import types

import numba as nb
import numpy as np

from ._numba_cache import ensure_once as _ensure_numba_cache

_ensure_numba_cache()  # before any @njit(cache=True): read-only installs use a temporary folder

MAX_LEVEL = 30
POS_BITS = 2 * MAX_LEVEL + 1
MAX_SIZE = 1 << MAX_LEVEL
LOOKUP_BITS = 4
SWAP_MASK = 1
INVERT_MASK = 2

_POS_TO_IJ = ((0, 1, 3, 2), (0, 2, 3, 1), (3, 2, 0, 1), (3, 1, 0, 2))
_POS_TO_ORIENTATION = (SWAP_MASK, 0, 0, INVERT_MASK | SWAP_MASK)


def _build_lookup_tables():
    """Hilbert-curve lookup tables, built exactly as S2 builds them."""
    size = 1 << (2 * LOOKUP_BITS + 2)
    lookup_pos = np.zeros(size, dtype=np.int64)
    lookup_ij = np.zeros(size, dtype=np.int64)

    def init(level, i, j, orig_orientation, pos, orientation):
        if level == LOOKUP_BITS:
            ij = (i << LOOKUP_BITS) + j
            lookup_pos[(ij << 2) + orig_orientation] = (pos << 2) + orientation
            lookup_ij[(pos << 2) + orig_orientation] = (ij << 2) + orientation
            return
        level += 1
        i <<= 1
        j <<= 1
        pos <<= 2
        r = _POS_TO_IJ[orientation]
        for index in range(4):
            init(level, i + (r[index] >> 1), j + (r[index] & 1), orig_orientation,
                 pos + index, orientation ^ _POS_TO_ORIENTATION[index])

    for orientation in (0, SWAP_MASK, INVERT_MASK, SWAP_MASK | INVERT_MASK):
        init(0, 0, 0, orientation, 0, orientation)
    return lookup_pos, lookup_ij


LOOKUP_POS, LOOKUP_IJ = _build_lookup_tables()

_DEG_TO_RAD = math.pi / 180.0  # the constant math.radians multiplies by
_RAD_TO_DEG = 180.0 / math.pi  # the constant math.degrees multiplies by


# --------------------------------------------------------------------------- scalar helpers
@nb.njit(cache=True, inline="always")
def lsb_for_level(level):
    return np.uint64(1) << np.uint64(2 * (MAX_LEVEL - level))


@nb.njit(cache=True, inline="always")
def parent_id(cell, level):
    new_lsb = lsb_for_level(level)
    return (cell & (~new_lsb + np.uint64(1))) | new_lsb


@nb.njit(cache=True, inline="always")
def uv_to_st(u):
    if u >= 0.0:
        return 0.5 * math.sqrt(1.0 + 3.0 * u)
    return 1.0 - 0.5 * math.sqrt(1.0 - 3.0 * u)


@nb.njit(cache=True, inline="always")
def st_to_uv(s):
    if s >= 0.5:
        return (1.0 / 3.0) * (4.0 * s * s - 1.0)
    return (1.0 / 3.0) * (1.0 - 4.0 * (1.0 - s) * (1.0 - s))


@nb.njit(cache=True, inline="always")
def st_to_ij(s):
    v = math.floor(MAX_SIZE * s)
    if v < 0.0:
        return 0
    if v > MAX_SIZE - 1:
        return MAX_SIZE - 1
    return int(v)


@nb.njit(cache=True, inline="always")
def xyz_to_face_uv(x, y, z):
    ax, ay, az = abs(x), abs(y), abs(z)
    if ax > ay:
        face = 0 if ax > az else 2
    else:
        face = 1 if ay > az else 2
    if face == 0:
        comp = x
    elif face == 1:
        comp = y
    else:
        comp = z
    if comp < 0.0:
        face += 3
    if face == 0:
        u, v = y / x, z / x
    elif face == 1:
        u, v = -x / y, z / y
    elif face == 2:
        u, v = -x / z, -y / z
    elif face == 3:
        u, v = z / x, y / x
    elif face == 4:
        u, v = z / y, -x / y
    else:
        u, v = -y / z, -x / z
    return face, u, v


@nb.njit(cache=True, inline="always")
def face_uv_to_xyz(face, u, v):
    if face == 0:
        return 1.0, u, v
    if face == 1:
        return -u, 1.0, v
    if face == 2:
        return -u, -v, 1.0
    if face == 3:
        return -1.0, -v, -u
    if face == 4:
        return v, -1.0, -u
    return v, u, -1.0


@nb.njit(cache=True, inline="always")
def from_face_ij_level(face, i, j, level, lookup_pos):
    """Cell id at ``level`` of the leaf (face, i, j).

    Only the most significant lookup steps that reach ``level`` are done (the
    first step covers levels 1-2, each further one four levels): the others
    only set bits that ``parent(level)`` clears again.
    """
    n = np.uint64(face) << np.uint64(POS_BITS - 1)
    bits = face & SWAP_MASK
    mask = (1 << LOOKUP_BITS) - 1
    k_stop = 6 - (max(level - 2, 0) + LOOKUP_BITS - 1) // LOOKUP_BITS
    for k in range(7, k_stop, -1):
        bits += ((i >> (k * LOOKUP_BITS)) & mask) << (LOOKUP_BITS + 2)
        bits += ((j >> (k * LOOKUP_BITS)) & mask) << 2
        bits = lookup_pos[bits]
        n |= np.uint64(bits >> 2) << np.uint64(k * 2 * LOOKUP_BITS)
        bits &= SWAP_MASK | INVERT_MASK
    return parent_id(n * np.uint64(2) + np.uint64(1), level)


@nb.njit(cache=True, inline="always")
def to_face_ij_orientation(cell, lookup_ij):
    i = 0
    j = 0
    face = int(cell >> np.uint64(POS_BITS))
    bits = face & SWAP_MASK
    for k in range(7, -1, -1):
        nbits = MAX_LEVEL - 7 * LOOKUP_BITS if k == 7 else LOOKUP_BITS
        chunk = (cell >> np.uint64(k * 2 * LOOKUP_BITS + 1)) & np.uint64((1 << (2 * nbits)) - 1)
        bits += int(chunk) << 2
        bits = lookup_ij[bits]
        i += (bits >> (LOOKUP_BITS + 2)) << (k * LOOKUP_BITS)
        j += ((bits >> 2) & ((1 << LOOKUP_BITS) - 1)) << (k * LOOKUP_BITS)
        bits &= SWAP_MASK | INVERT_MASK
    lsb = cell & (~cell + np.uint64(1))
    if (lsb & np.uint64(0x1111111111111110)) != np.uint64(0):
        bits ^= SWAP_MASK
    return face, i, j, bits


@nb.njit(cache=True, inline="always")
def level_of(cell):
    # 30 - (number of trailing zeros) // 2
    lsb = cell & (~cell + np.uint64(1))
    tz = 0
    while lsb > np.uint64(1):
        lsb >>= np.uint64(1)
        tz += 1
    return MAX_LEVEL - (tz >> 1)


@nb.njit(cache=True, inline="always")
def is_valid(cell):
    if (cell >> np.uint64(POS_BITS)) > np.uint64(5):
        return False
    lsb = cell & (~cell + np.uint64(1))
    return (lsb & np.uint64(0x1555555555555555)) != np.uint64(0)


@nb.njit(cache=True, inline="always")
def xyz_to_latlng_deg(x, y, z):
    lat = math.atan2(z, math.sqrt(x * x + y * y))
    lng = math.atan2(y, x)
    return lat * _RAD_TO_DEG, lng * _RAD_TO_DEG


# --------------------------------------------------------------------------- array kernels
#: Inputs with fewer elements (the first argument's length) run a kernel's serial twin.
PARALLEL_MIN = 1 << 15


def writable_view(arr):
    """``arr``, or for a read-only NumPy array a writable view of it, so that numba compiles a kernel once.

    numba types read-only arrays (pandas' copy-on-write values) apart and would compile every kernel a
    second time for them (~0.3-0.6 s each on a first run). Kernels never write their inputs, and the view
    goes only to the kernel (the caller keeps its read-only array). Memory that is read-only all the way
    down (a read-only memory map) is passed as it is.
    """
    if not isinstance(arr, np.ndarray) or arr.flags.writeable:
        return arr
    view = arr.view()
    try:
        view.flags.writeable = True
    except ValueError:
        return arr
    return view


# Parallel launches: numba's "workqueue" layer (no OpenMP/TBB library, e.g. macOS) aborts the whole process when
# two threads launch parallel kernels at once, so launches are serialised until the layer is known, and for good
# if it is workqueue; and GNU OpenMP kills a forked child that launches threads its parent used ("fork() called
# from a process already using GNU OpenMP": multiprocessing's default fork on Linux, gunicorn --preload), so such
# a child runs the serial twins (the same results).
_PARALLEL = {"lock": threading.Lock(), "layer": None, "serial_only": False}


def _after_fork_in_child():
    if _PARALLEL["layer"] == "omp":
        _PARALLEL["serial_only"] = True
    _PARALLEL["lock"] = threading.Lock()  # a lock held by another thread at the fork would never be released


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class SizedKernel:
    """A numba kernel compiled twice: ``parallel=True`` for large inputs, serially for small ones.

    The serial twin compiles in a fraction of the time (no parfor pass: 0.4 s instead of 1.5 s for
    ``latlng_to_cell_kernel``) and starts no threads, which is all a small input needs; so a first call on a
    few thousand cells (a fresh install, a notebook's first cell) compiles only the cheap one. Both are
    cached by numba under their own names. The body's ``nb.prange`` is a plain ``range`` in the twin. Parallel
    launches are serialised under numba's ``workqueue`` layer, and a process forked from one that ran a parallel
    kernel under OpenMP runs the serial twins (see ``_PARALLEL``).
    """

    def __init__(self, py_func):
        self.py_func = py_func
        self.parallel = nb.njit(cache=True, parallel=True)(py_func)
        twin = types.FunctionType(py_func.__code__, py_func.__globals__, py_func.__name__ + "_serial",
                                  py_func.__defaults__, py_func.__closure__)
        twin.__qualname__ = py_func.__qualname__ + "_serial"  # numba's cache file name
        twin.__module__ = py_func.__module__
        twin.__doc__ = py_func.__doc__
        self.serial = nb.njit(cache=True)(twin)
        self.__name__, self.__qualname__, self.__doc__ = py_func.__name__, py_func.__qualname__, py_func.__doc__

    def __call__(self, *args):
        views = [writable_view(a) for a in args]
        if args[0].shape[0] < PARALLEL_MIN or _PARALLEL["serial_only"]:
            return self.serial(*views)
        if _PARALLEL["layer"] not in (None, "workqueue"):  # tbb, omp: safe to launch from several threads
            return self.parallel(*views)
        with _PARALLEL["lock"]:  # numba's fallback layer (workqueue) aborts the process on concurrent launches
            out = self.parallel(*views)
            _PARALLEL["layer"] = nb.threading_layer()
        return out

    @property
    def signatures(self):
        """The compiled signatures of both versions."""
        return list(self.parallel.signatures) + list(self.serial.signatures)


def sized_kernel(py_func):
    """Decorator: :class:`SizedKernel` of ``py_func``."""
    return SizedKernel(py_func)


@sized_kernel
def latlng_to_cell_kernel(lat, lng, level, lookup_pos, out):
    for n in nb.prange(lat.shape[0]):
        phi = lat[n] * _DEG_TO_RAD
        theta = lng[n] * _DEG_TO_RAD
        cosphi = math.cos(phi)
        x = math.cos(theta) * cosphi
        y = math.sin(theta) * cosphi
        z = math.sin(phi)
        face, u, v = xyz_to_face_uv(x, y, z)
        i = st_to_ij(uv_to_st(u))
        j = st_to_ij(uv_to_st(v))
        out[n] = from_face_ij_level(face, i, j, level, lookup_pos)


@sized_kernel
def xyz_to_cell_kernel(x, y, z, level, lookup_pos, out):
    for n in nb.prange(x.shape[0]):
        face, u, v = xyz_to_face_uv(x[n], y[n], z[n])
        i = st_to_ij(uv_to_st(u))
        j = st_to_ij(uv_to_st(v))
        out[n] = from_face_ij_level(face, i, j, level, lookup_pos)


@sized_kernel
def parent_kernel(cells, level, out):
    for n in nb.prange(cells.shape[0]):
        out[n] = parent_id(cells[n], level)


@sized_kernel
def level_kernel(cells, out):
    for n in nb.prange(cells.shape[0]):
        out[n] = level_of(cells[n])


@sized_kernel
def is_valid_kernel(cells, out):
    for n in nb.prange(cells.shape[0]):
        out[n] = is_valid(cells[n])


@sized_kernel
def children_kernel(cells, level, out):
    new_lsb = lsb_for_level(level)
    step = new_lsb * np.uint64(2)
    for n in nb.prange(cells.shape[0]):
        c = cells[n]
        lsb = c & (~c + np.uint64(1))
        child = c - lsb + new_lsb
        for k in range(out.shape[1]):
            out[n, k] = child
            child += step


@sized_kernel
def center_kernel(cells, lookup_ij, lat_out, lng_out):
    for n in nb.prange(cells.shape[0]):
        c = cells[n]
        face, i, j, _ = to_face_ij_orientation(c, lookup_ij)
        lsb = c & (~c + np.uint64(1))
        if lsb == np.uint64(1):
            delta = 1
        elif ((np.uint64(i) ^ (c >> np.uint64(2))) & np.uint64(1)) != np.uint64(0):
            delta = 2
        else:
            delta = 0
        si = 2 * i + delta
        ti = 2 * j + delta
        u = st_to_uv((0.5 / MAX_SIZE) * si)
        v = st_to_uv((0.5 / MAX_SIZE) * ti)
        x, y, z = face_uv_to_xyz(face, u, v)
        lat_out[n], lng_out[n] = xyz_to_latlng_deg(x, y, z)


@sized_kernel
def vertices_kernel(cells, lookup_ij, lat_out, lng_out):
    """The four vertices of each cell, counter-clockwise as S2Cell::GetVertex."""
    for n in nb.prange(cells.shape[0]):
        c = cells[n]
        face, i, j, _ = to_face_ij_orientation(c, lookup_ij)
        size = 1 << (MAX_LEVEL - level_of(c))
        i_lo = i & -size
        j_lo = j & -size
        u0 = st_to_uv((1.0 / MAX_SIZE) * i_lo)
        u1 = st_to_uv((1.0 / MAX_SIZE) * (i_lo + size))
        v0 = st_to_uv((1.0 / MAX_SIZE) * j_lo)
        v1 = st_to_uv((1.0 / MAX_SIZE) * (j_lo + size))
        for k in range(4):
            uu = u1 if ((k >> 1) ^ (k & 1)) else u0
            vv = v1 if (k >> 1) else v0
            x, y, z = face_uv_to_xyz(face, uu, vv)
            lat_out[n, k], lng_out[n, k] = xyz_to_latlng_deg(x, y, z)


@sized_kernel
def face_ij_kernel(cells, lookup_ij, face_out, i_out, j_out):
    """Face and (i, j) of each cell at its own level (leaf ij >> (30 - level))."""
    for n in nb.prange(cells.shape[0]):
        c = cells[n]
        face, i, j, _ = to_face_ij_orientation(c, lookup_ij)
        shift = MAX_LEVEL - level_of(c)
        face_out[n] = face
        i_out[n] = i >> shift
        j_out[n] = j >> shift


@sized_kernel
def face_ij_to_cell_kernel(face, i, j, level, lookup_pos, out):
    """Cells at ``level`` from face and (i, j) given at that level."""
    shift = MAX_LEVEL - level
    for n in nb.prange(face.shape[0]):
        out[n] = from_face_ij_level(face[n], i[n] << shift, j[n] << shift, level, lookup_pos)
