"""Numba kernels: every S2 cell a polyline crosses, and hash-based binning.

Line covering
-------------
S2 cell edges are geodesics: on each cube face they are the lines ``u = const``
and ``v = const`` of the gnomonic (central) projection, and a great-circle arc
between two points is a *straight* segment in that projection as well. So
inside one face the cells crossed by a great-circle segment are exactly the
grid cells that a straight (u, v) segment passes through, and a
Amanatides-Woo style walk over the (non-uniform) grid lines
``u_k = st_to_uv(k / 2**level)`` visits them in order without testing any cell
that the segment misses.

A segment whose end points lie on different faces is first cut where the chord
``(1 - t) A + t B`` crosses one of the 12 planes ``|x| = |y|``, ``|x| = |z|``,
``|y| = |z|`` that separate the faces. The chord and the arc have the same
central projection, so each piece lies on one face and is a straight (u, v)
segment there (clamped to [-1, 1] against rounding).

End points are mapped to cells with the same arithmetic as
:func:`geos2vec.cells.latlng_to_cell`, so a road's end cells are the cells the
same coordinates get as POIs.

Everything here is private; :func:`geos2vec.features.count_features` is the
public entry point.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ._numba_cache import ensure_once as _ensure_numba_cache

_ensure_numba_cache()  # before any @njit(cache=True): read-only installs use a temporary folder

from . import _numba_cache, _s2  # noqa: E402 - after the numba cache set-up

_DEG_TO_RAD = _s2._DEG_TO_RAD


@nb.njit(cache=True)
def _face_uv(face, x, y, z):
    """(u, v) of a direction on a given face (the face need not be the dominant one)."""
    if face == 0:
        return y / x, z / x
    if face == 1:
        return -x / y, z / y
    if face == 2:
        return -x / z, -y / z
    if face == 3:
        return z / x, y / x
    if face == 4:
        return z / y, -x / y
    return -y / z, -x / z


@nb.njit(cache=True)
def _uv_to_cell_ij(u, shift):
    return _s2.st_to_ij(_s2.uv_to_st(u)) >> shift


@nb.njit(cache=True)
def _grid_lo(k, shift, n):
    """Smallest float ``u`` that :func:`_uv_to_cell_ij` puts in column ``k`` or beyond.

    ``st_to_uv(k / n)`` is the grid line in exact arithmetic; here it is moved
    by the few ulps that make the walk agree bit for bit with the point
    location of ``latlng_to_cell``. Near ``u = 0`` the quadratic transform
    rounds every ``|u| < ~4e-17`` to ``s = 0.5``, so that boundary is found by
    bisection instead.
    """
    if k <= 0:
        return -math.inf
    if k >= n:
        return math.inf
    u = _s2.st_to_uv(k / n)
    if abs(u) < 1e-9:
        lo = u - 1e-9
        hi = u + 1e-9  # invariant: cell(lo) < k <= cell(hi)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid == lo or mid == hi:
                break
            if _uv_to_cell_ij(mid, shift) >= k:
                hi = mid
            else:
                lo = mid
        return hi
    for _ in range(64):
        if _uv_to_cell_ij(u, shift) >= k:
            d = np.nextafter(u, -math.inf)
            if _uv_to_cell_ij(d, shift) < k:
                return u
            u = d
        else:
            u = np.nextafter(u, math.inf)
    return u


@nb.njit(cache=True)
def _cell_at(face, i, j, level, lookup_pos):
    """``_s2.from_face_ij_level`` behind a call, to keep the first compile short.

    That helper is inlined into numba's IR wherever it is called (``inline="always"``), and the walk calls it
    four times; one call site here compiles it once (LLVM still inlines the machine code).
    """
    return _s2.from_face_ij_level(face, i, j, level, lookup_pos)


@nb.njit(cache=True)
def _face_of_xyz(x, y, z):
    """``_s2.xyz_to_face_uv`` behind a call (see :func:`_cell_at`)."""
    return _s2.xyz_to_face_uv(x, y, z)


@nb.njit(cache=True)
def _walk_face(face, u0, v0, u1, v1, level, lookup_pos, buf, nbuf):
    """Append to ``buf`` the cells of the straight (u, v) segment on ``face``; return new length."""
    shift = _s2.MAX_LEVEL - level
    n = 1 << level
    i = _uv_to_cell_ij(u0, shift)
    j = _uv_to_cell_ij(v0, shift)
    ie = _uv_to_cell_ij(u1, shift)
    je = _uv_to_cell_ij(v1, shift)
    if i == ie and j == je:  # fast path: the whole segment in one cell
        return _push(buf, nbuf, _cell_at(face, i << shift, j << shift, level, lookup_pos))
    du = u1 - u0
    dv = v1 - v0
    di = 1 if du > 0.0 else -1
    dj = 1 if dv > 0.0 else -1
    buf, nbuf = _push(buf, nbuf, _cell_at(face, i << shift, j << shift, level, lookup_pos))
    limit = abs(ie - i) + abs(je - j) + 4
    steps = 0
    while (i != ie or j != je) and steps < limit:
        steps += 1
        # leaving column i: forwards at the first u of column i + 1, backwards below the first u of i
        if du != 0.0:
            su = (_grid_lo(i + 1 if di > 0 else i, shift, n) - u0) / du
        else:
            su = math.inf
        if dv != 0.0:
            sv = (_grid_lo(j + 1 if dj > 0 else j, shift, n) - v0) / dv
        else:
            sv = math.inf
        s = min(su, sv)
        if s > 1.0:
            break  # rounding: the end cell disagrees with the grid lines by an ulp
        if su < sv:
            i += di
        elif sv < su:
            j += dj
        else:  # exactly through a grid corner: only the diagonal cell is entered
            i += di
            j += dj
        if i < 0 or i >= n or j < 0 or j >= n:
            break
        buf, nbuf = _push(buf, nbuf, _cell_at(face, i << shift, j << shift, level, lookup_pos))
    if i != ie or j != je:
        buf, nbuf = _push(buf, nbuf, _cell_at(face, ie << shift, je << shift, level, lookup_pos))
    return buf, nbuf


@nb.njit(cache=True)
def _push(buf, nbuf, value):
    if nbuf > 0 and buf[nbuf - 1] == value:  # consecutive segments mostly stay in one cell
        return buf, nbuf
    if nbuf == buf.shape[0]:
        new = np.empty(2 * buf.shape[0], dtype=buf.dtype)
        for k in range(nbuf):  # a loop, not new[:nbuf] = ...: slice assignment compiles numba's shape errors
            new[k] = buf[k]
        buf = new
    buf[nbuf] = value
    return buf, nbuf + 1


@nb.njit(cache=True)
def _shell_sort(a, n):
    """Sort ``a[:n]`` in place (Shell sort, Ciura's gaps, extended).

    A plain loop: numba compiles ``np.sort`` (a quicksort per dtype) in seconds, this in milliseconds, and
    lines cross few cells.
    """
    for gap in (510774, 227011, 100894, 44842, 19930, 8858, 3937, 1750, 701, 301, 132, 57, 23, 10, 4, 1):
        if gap >= n and gap > 1:
            continue
        for i in range(gap, n):
            v = a[i]
            j = i
            while j >= gap and a[j - gap] > v:
                a[j] = a[j - gap]
                j -= gap
            a[j] = v


@nb.njit(cache=True)
def _cover_segment(ax, ay, az, bx, by, bz, level, lookup_pos, buf, nbuf):
    """Cells crossed by the great-circle segment A-B (unit vectors), appended to ``buf``."""
    fa, _, _ = _face_of_xyz(ax, ay, az)
    fb, _, _ = _face_of_xyz(bx, by, bz)
    if fa == fb:
        u0, v0 = _face_uv(fa, ax, ay, az)
        u1, v1 = _face_uv(fa, bx, by, bz)
        return _walk_face(fa, u0, v0, u1, v1, level, lookup_pos, buf, nbuf)
    # cut the chord where it crosses a face-separating plane c_k = +-c_m
    ts = np.empty(14)
    nt = 0
    ts[nt] = 0.0
    nt += 1
    a = (ax, ay, az)
    b = (bx, by, bz)
    for k in range(3):
        for m in range(k + 1, 3):
            for sgn in (-1.0, 1.0):
                d0 = a[k] - sgn * a[m]
                d1 = b[k] - sgn * b[m]
                if (d0 < 0.0 < d1) or (d1 < 0.0 < d0):
                    ts[nt] = d0 / (d0 - d1)
                    nt += 1
    ts[nt] = 1.0
    nt += 1
    _shell_sort(ts, nt)
    for q in range(nt - 1):
        t0 = ts[q]
        t1 = ts[q + 1]
        if t1 <= t0:
            continue
        tm = 0.5 * (t0 + t1)
        face, _, _ = _face_of_xyz((1 - tm) * ax + tm * bx, (1 - tm) * ay + tm * by, (1 - tm) * az + tm * bz)
        if t0 == 0.0:
            px, py, pz = ax, ay, az
        else:
            px, py, pz = (1 - t0) * ax + t0 * bx, (1 - t0) * ay + t0 * by, (1 - t0) * az + t0 * bz
        if t1 == 1.0:
            qx, qy, qz = bx, by, bz
        else:
            qx, qy, qz = (1 - t1) * ax + t1 * bx, (1 - t1) * ay + t1 * by, (1 - t1) * az + t1 * bz
        u0, v0 = _face_uv(face, px, py, pz)
        u1, v1 = _face_uv(face, qx, qy, qz)
        u0 = min(max(u0, -1.0), 1.0)
        v0 = min(max(v0, -1.0), 1.0)
        u1 = min(max(u1, -1.0), 1.0)
        v1 = min(max(v1, -1.0), 1.0)
        buf, nbuf = _walk_face(face, u0, v0, u1, v1, level, lookup_pos, buf, nbuf)
    return buf, nbuf


@nb.njit(cache=True)
def _unit(lat_deg, lng_deg):
    # identical arithmetic to _s2.latlng_to_cell_kernel
    phi = lat_deg * _DEG_TO_RAD
    theta = lng_deg * _DEG_TO_RAD
    cosphi = math.cos(phi)
    return math.cos(theta) * cosphi, math.sin(theta) * cosphi, math.sin(phi)


@nb.njit(cache=True)
def cover_lines_kernel(lat, lng, part_start, part_line, n_lines, level, lookup_pos):
    """Distinct cells crossed by each polyline.

    Parameters
    ----------
    lat, lng : float64 arrays of all vertices, parts stored one after another.
    part_start : int64 array (n_parts + 1) of vertex offsets of each part.
    part_line : int64 array (n_parts) of the line (road) each part belongs to;
        the parts of one line must be consecutive.
    n_lines : number of lines.

    Returns
    -------
    line_ids : int64 array, cells : uint64 array
        One pair per (line, distinct cell it crosses), lines ascending.
    """
    n_parts = part_line.shape[0]
    out_line = np.empty(max(16, 2 * lat.shape[0]), dtype=np.int64)
    out_cell = np.empty(out_line.shape[0], dtype=np.uint64)
    nout = 0
    buf = np.empty(64, dtype=np.uint64)
    p = 0
    while p < n_parts:
        line = part_line[p]
        nbuf = np.int64(0)  # not the literal 0: one compiled signature for _cover_segment and _walk_face
        while p < n_parts and part_line[p] == line:
            s = part_start[p]
            e = part_start[p + 1]
            if e - s == 1:
                x, y, z = _unit(lat[s], lng[s])
                buf, nbuf = _cover_segment(x, y, z, x, y, z, level, lookup_pos, buf, nbuf)
            else:
                ax, ay, az = _unit(lat[s], lng[s])
                for k in range(s + 1, e):
                    bx, by, bz = _unit(lat[k], lng[k])
                    buf, nbuf = _cover_segment(ax, ay, az, bx, by, bz, level, lookup_pos, buf, nbuf)
                    ax, ay, az = bx, by, bz
            p += 1
        if nbuf == 0:
            continue
        cells = buf[:nbuf]
        _shell_sort(cells, nbuf)  # in place: buf is refilled from 0 for the next line
        if nout + nbuf > out_line.shape[0]:
            size = max(2 * out_line.shape[0], nout + nbuf)
            nl = np.empty(size, dtype=np.int64)
            nc = np.empty(size, dtype=np.uint64)
            for k in range(nout):
                nl[k] = out_line[k]
                nc[k] = out_cell[k]
            out_line, out_cell = nl, nc
        prev = np.uint64(0)
        for k in range(nbuf):
            c = cells[k]
            if k == 0 or c != prev:
                out_line[nout] = line
                out_cell[nout] = c
                nout += 1
            prev = c
    return out_line[:nout].copy(), out_cell[:nout].copy()


# --------------------------------------------------------------------------- binning
@nb.njit(cache=True)
def dense_rows_kernel(keys):
    """Dense row number of each key (first-seen order) with an open-addressing hash.

    Returns ``(rows int64 per key, uniques uint64 in first-seen order)``. O(n),
    no sort; the table doubles when half full.
    """
    cap = 1024
    bits = 10
    table_keys = np.empty(cap, dtype=np.uint64)
    table_vals = np.full(cap, -1, dtype=np.int64)
    uniq = np.empty(256, dtype=np.uint64)
    nuniq = 0
    rows = np.empty(keys.shape[0], dtype=np.int64)
    mask = np.uint64(cap - 1)
    mult = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of k * mult
    last_key = np.uint64(0)
    last_row = -1
    for n in range(keys.shape[0]):
        k = keys[n]
        if last_row >= 0 and k == last_key:  # runs of equal keys are common (sorted/clustered data)
            rows[n] = last_row
            continue
        h = (k * mult) >> np.uint64(64 - bits)
        while True:
            v = table_vals[h]
            if v < 0:
                # insert
                if nuniq == uniq.shape[0]:
                    nu = np.empty(2 * nuniq, dtype=np.uint64)
                    for r in range(nuniq):  # a loop: slice assignment compiles numba's shape-error formatting
                        nu[r] = uniq[r]
                    uniq = nu
                uniq[nuniq] = k
                table_keys[h] = k
                table_vals[h] = nuniq
                v = nuniq
                nuniq += 1
                if 2 * nuniq > cap:  # rehash into a table twice as large
                    cap *= 2
                    bits += 1
                    mask = np.uint64(cap - 1)
                    table_keys = np.empty(cap, dtype=np.uint64)
                    table_vals = np.full(cap, -1, dtype=np.int64)
                    for r in range(nuniq):
                        hh = (uniq[r] * mult) >> np.uint64(64 - bits)
                        while table_vals[hh] >= 0:
                            hh = (hh + np.uint64(1)) & mask
                        table_keys[hh] = uniq[r]
                        table_vals[hh] = r
                break
            if table_keys[h] == k:
                break
            h = (h + np.uint64(1)) & mask
        rows[n] = v
        last_key = k
        last_row = v
    return rows, uniq[:nuniq].copy()


@nb.njit(cache=True)
def scatter_count_kernel(rows, remap, chan, offset, out):
    """``out[remap[rows[n]], offset + chan[n]] += 1`` for every ``chan[n] >= 0``."""
    for n in range(rows.shape[0]):
        c = chan[n]
        if c >= 0:
            out[remap[rows[n]], offset + c] += 1


@nb.njit(cache=True)
def scatter_add_kernel(rows, remap, chan, out):
    """``out[rows[n], chan[n]] += 1`` (no remap): the bare scatter-add used by the benchmark."""
    for n in range(rows.shape[0]):
        out[rows[n], chan[n]] += 1


@nb.njit(cache=True)
def reduce_numeric_kernel(rows, remap, values, n_cells, how):
    """Per-cell reduction of ``values`` skipping NaN. how: 0 sum, 1 mean, 2 min, 3 max, 4 count."""
    acc = np.zeros(n_cells)
    cnt = np.zeros(n_cells, dtype=np.int64)
    if how == 2:
        acc[:] = np.inf
    elif how == 3:
        acc[:] = -np.inf
    for n in range(rows.shape[0]):
        x = values[n]
        if math.isnan(x):
            continue
        r = remap[rows[n]]
        cnt[r] += 1
        if how == 2:
            if x < acc[r]:
                acc[r] = x
        elif how == 3:
            if x > acc[r]:
                acc[r] = x
        else:
            acc[r] += x
    if how == 4:
        return cnt.astype(np.float64), cnt
    for r in range(n_cells):
        if cnt[r] == 0:
            acc[r] = 0.0 if how == 0 else np.nan
        elif how == 1:
            acc[r] /= cnt[r]
    return acc, cnt


# --------------------------------------------------------------------------- python wrappers
def line_arrays(geoms):
    """Flatten LineStrings / MultiLineStrings for :func:`cover_lines_kernel`.

    ``geoms`` is a NumPy array of shapely geometries (no missing ones). Returns
    ``lat, lng, part_start, part_line``.
    """
    import shapely

    if (shapely.get_type_id(geoms) == 5).any():
        parts, part_line = shapely.get_parts(geoms, return_index=True)
    else:  # LineStrings only: each geometry is its one part
        parts, part_line = geoms, np.arange(len(geoms))
    coords, vert_part = shapely.get_coordinates(parts, return_index=True)
    counts = np.bincount(vert_part, minlength=parts.size)
    part_start = np.zeros(parts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=part_start[1:])
    keep = counts > 0
    if not keep.all():  # empty parts add nothing
        part_start = np.concatenate([part_start[:-1][keep], part_start[-1:]])
        part_line = part_line[keep]
    return (np.ascontiguousarray(coords[:, 1]), np.ascontiguousarray(coords[:, 0]),
            part_start, part_line.astype(np.int64))


def cover_lines(geoms, level: int = 12):
    """(line position, cell) for every distinct level-``level`` cell each line crosses."""
    lat, lng, part_start, part_line = line_arrays(geoms)
    return cover_lines_kernel(lat, lng, part_start, part_line, len(geoms), level, _s2.LOOKUP_POS)


_numba_cache.key_on_sources(globals(), _s2)  # kernels here compile _s2 helpers in
