"""OpenStreetMap data for an area: the smallest Geofabrik extract that covers it, downloaded once and cached.

:func:`download_osm` reads Geofabrik's extract index (``index-v1.json``: a GeoJSON FeatureCollection whose
features are the extracts, with their boundary and ``urls.pbf``), picks the smallest extract whose boundary
covers the area, downloads its ``.osm.pbf`` and checks it against the MD5 Geofabrik publishes next to it
(``<url>.md5``).

Nothing half-written is ever taken for a good file: the download goes to ``<name>.part`` (resumed with an HTTP
``Range`` request when a previous try was cut off), is checked, and only then renamed (atomically) to its
final name; a ``<name>.md5`` file written after the rename marks it as verified. A cache hit re-checks the file
against that mark. Transient failures (connection errors, HTTP 5xx, cut-off bodies) are retried with backoff;
the error that remains says what failed and what to do.

Only the standard library does the HTTP (``urllib``); tests serve a small index and ``.osm.pbf`` from
127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely

from .._coverage_layers import lnglat_union as _lnglat_union
from .._jsonfile import atomic_path, write_lock, write_text_atomic
from ..errors import ChecksumError, DownloadError, InvalidInputError, NoExtractError
from ..options import check_progress as _check_progress
from .osm_counts import context_box, osm_features

if TYPE_CHECKING:
    from .._typing import AreaLike, StrPath

__all__ = ["GEOFABRIK_INDEX", "default_cache_dir", "find_extract", "download_osm", "osm_features", "read_index",
           "context_box"]

GEOFABRIK_INDEX = "https://download.geofabrik.de/index-v1.json"
_CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # the .part file: never written through a link (a shared cache)


def _index_url(index_url=None) -> str:
    """The index to read: the argument, else ``$GEOS2VEC_OSM_INDEX`` (a mirror), else Geofabrik's."""
    url = os.fspath(index_url or os.environ.get("GEOS2VEC_OSM_INDEX") or GEOFABRIK_INDEX)
    return url if "://" in url else Path(url).resolve().as_uri()  # a local file: urllib needs a file:// URL


def default_cache_dir() -> Path:
    """``$GEOS2VEC_CACHE`` if set, else ``$XDG_CACHE_HOME/geos2vec`` (``~/.cache/geos2vec``), plus ``/osm``.

    Returns
    -------
    pathlib.Path
        The folder (not created here).
    """
    root = os.environ.get("GEOS2VEC_CACHE")
    if root:
        return Path(root).expanduser() / "osm"  # GEOS2VEC_CACHE="~/cache" (quoted: the shell left the "~")
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "geos2vec" / "osm"


def _area(area):
    """A shapely geometry in EPSG:4326 from a GeoDataFrame/GeoSeries, a geometry or a lon/lat box."""
    import geopandas as gpd

    if isinstance(area, (gpd.GeoDataFrame, gpd.GeoSeries)):
        gs = area.geometry if isinstance(area, gpd.GeoDataFrame) else area
        if gs.crs is None:
            raise InvalidInputError("the area has no CRS; set it (e.g. .set_crs(4326))")
        if not len(gs := gs[~(gs.isna() | gs.is_empty)]):
            raise InvalidInputError("the area has no geometry (every row is missing or empty)")
        return _lnglat_union(gs)  # a projected area densified, and split at ±180
    if isinstance(area, shapely.Geometry):
        if area.is_empty:
            raise InvalidInputError("the area is an empty geometry")
        x0, y0, x1, y1 = area.bounds
        if not (np.isfinite([x0, y0, x1, y1]).all() and -180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90):
            raise InvalidInputError(f"area bounds {(x0, y0, x1, y1)} are not longitude/latitude degrees; a shapely "
                                    "area is taken as EPSG:4326: transform it first, or pass a GeoSeries/"
                                    "GeoDataFrame that carries its CRS")
        return area
    if isinstance(area, (tuple, list, np.ndarray)) and len(area) == 4:
        x0, y0, x1, y1 = (float(v) for v in area)
        if not (np.isfinite([x0, y0, x1, y1]).all() and -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            raise InvalidInputError(f"an area box is (min_lon, min_lat, max_lon, max_lat) in degrees; got "
                                    f"{tuple(area)}")
        return shapely.box(x0, y0, x1, y1)
    raise InvalidInputError(f"area must be a GeoDataFrame, GeoSeries, shapely geometry or a (min_lon, min_lat, "
                            f"max_lon, max_lat) box; got {type(area).__name__}" + isinstance(area, str) * (
                                f" {area[:80]!r}: a place's name is not looked up; give its box in degrees"))


def _get(url: str, *, retries: int, backoff: float, timeout: float, headers=None):
    """``urlopen`` with retries on connection errors and HTTP 5xx; 4xx fails at once."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
        raise InvalidInputError(f"cannot download {url!r}: give an http(s):// or file:// URL (index_url may also "
                                "be the path of a local index file)")
    last = None
    for attempt in range(retries + 1):
        try:
            return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout)
        except urllib.error.HTTPError as err:
            if err.code < 500:
                fail = DownloadError(f"{url} answered HTTP {err.code} ({err.reason}); check the URL or the "
                                     "extract name (the index may be out of date: refresh=True)")
                fail.status = err.code
                raise fail from err
            last = f"HTTP {err.code} ({err.reason})"
        except (urllib.error.URLError, OSError) as err:
            last = str(getattr(err, "reason", err))
        if attempt < retries:
            time.sleep(backoff * 2 ** attempt)
    raise DownloadError(f"could not download {url} after {retries + 1} tries: {last}. Check the network "
                        "connection (or a proxy), or download the file yourself and pass its path to read_osm")


def read_index(url: str = GEOFABRIK_INDEX, *, cache_dir: StrPath | None = None, refresh: bool = False, retries: int = 3,
               backoff: float = 1.0, timeout: float = 60.0) -> list[dict]:
    """The extracts of an index (``index-v1.json``), cached in ``cache_dir``.

    Dicts with ``id``, ``name``, ``parent``, ``pbf`` (URL) and ``geometry`` (shapely, EPSG:4326).

    Parameters
    ----------
    url : str or path-like, default :data:`GEOFABRIK_INDEX`
        The index, in Geofabrik's ``index-v1.json`` format: a URL or the path of a local file.
    cache_dir : path, optional
        Where the index is kept (under ``index/``); default :func:`default_cache_dir`. A cached index is
        read without network access; a local file (a path or ``file://`` URL) is read at every call.
    refresh : bool, default False
        Fetch the index again even when cached.
    retries, backoff, timeout
        As in :func:`download_osm`.

    Returns
    -------
    list of dict
        One dict per extract that has a ``.osm.pbf`` URL and a boundary, in the order of the index.

    Raises
    ------
    DownloadError
        If the index cannot be fetched, is not JSON (also a damaged cached copy: pass ``refresh=True``), or
        lists no usable extract.
    """
    url = _index_url(url)  # a local file as a file:// URL, as download_osm(index_url=...) takes it
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = cache / "index" / (hashlib.sha1(url.encode()).hexdigest()[:12] + "-" + url.rsplit("/", 1)[-1])
    # a local file is read every time (cheap): its copy in the cache was read ever after, so an edited index was not
    if refresh or not path.exists() or url.startswith("file:"):
        with _get(url, retries=retries, backoff=backoff, timeout=timeout) as resp:
            raw = resp.read()
        try:
            json.loads(raw)
        except (ValueError, RecursionError) as err:  # also nested too deeply
            raise DownloadError(f"{url} did not return JSON ({raw[:60]!r}...)") from err
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:  # a random name: a link another user put at a fixed one is not followed
            tmp.write_bytes(raw)
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        raise DownloadError(f"the cached index {path} is damaged (not JSON); call again with refresh=True, or "
                            "delete the file") from None
    extracts = []
    for feat in (doc.get("features") or []) if isinstance(doc, dict) else []:
        props = (feat.get("properties") if isinstance(feat, dict) else None) or {}
        urls = props.get("urls") if isinstance(props, dict) else None  # a list or string: skipped, not AttributeError
        pbf = urls.get("pbf") if isinstance(urls, dict) else None
        pbf, geom = (pbf if isinstance(pbf, str) else None), feat.get("geometry") if props else None
        try:
            geom = shapely.geometry.shape(geom) if pbf and geom else None
        except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException):
            geom = None  # a boundary that is not GeoJSON: the entry is skipped like one without a boundary
        if geom is None or geom.is_empty:
            continue
        extracts.append({"id": props.get("id"), "name": props.get("name"), "parent": props.get("parent"),
                         "pbf": pbf, "geometry": geom})
    if not extracts:
        raise DownloadError(f"the index {url} lists no extract with a .osm.pbf URL and a boundary (is it a "
                            "GeoJSON FeatureCollection in Geofabrik's index-v1.json format?); check index_url, or "
                            "pass refresh=True if the cached copy is stale")
    return extracts


def find_extract(area: AreaLike, extracts: list[dict]) -> dict:
    """The extract of smallest area (in square degrees) whose boundary covers ``area``.

    Parameters
    ----------
    area : GeoDataFrame, GeoSeries, shapely geometry or (min_lon, min_lat, max_lon, max_lat)
        The area to cover (any CRS for frames; degrees for a geometry or a box).
    extracts : list of dict
        Extracts as :func:`read_index` returns them.

    Returns
    -------
    dict
        The chosen entry of ``extracts``.

    Raises
    ------
    InvalidInputError
        If ``area`` is empty, has no CRS (frames) or is not a valid box.
    NoExtractError
        If no extract covers the whole area.
    """
    return _find_extract(_area(area), extracts)


def _find_extract(geom, extracts: list[dict]) -> dict:
    """:func:`find_extract` of an area already made a lon/lat geometry by :func:`_area`."""
    hits = [e for e in extracts if e["geometry"].covers(geom)]
    if not hits:
        lo = shapely.bounds(geom).round(3).tolist()
        part = [str(e["id"]) for e in extracts if e["geometry"].intersects(geom)][:5]
        raise NoExtractError(f"no extract of the index covers the whole area (bounds {lo})"
                             + (f"; it overlaps {', '.join(part)}" if part else "") + ". Split the area into "
                             "parts that each fit one extract (e.g. per country or state), or pass a smaller "
                             "area")
    return min(hits, key=lambda e: e["geometry"].area)


def _retry_kw(retries, backoff, timeout) -> dict:
    if int(retries) < 0 or not float(backoff) >= 0 or not float(timeout) > 0:
        raise InvalidInputError(f"need retries >= 0, backoff >= 0 and timeout > 0 (seconds), got retries={retries!r}, "
                                f"backoff={backoff!r}, timeout={timeout!r}")
    return {"retries": int(retries), "backoff": float(backoff), "timeout": float(timeout)}


def _md5(path: Path) -> str:
    h = hashlib.md5()  # noqa: S324 - Geofabrik publishes MD5 sums; integrity, not security
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _published_md5(url, **kw) -> str:
    with _get(url + ".md5", **kw) as resp:
        text = resp.read(4096).decode("ascii", "replace").split()  # a mirror answering with the extract: not all
    if not text or len(text[0]) != 32:
        raise DownloadError(f"{url}.md5 does not hold an MD5 sum ({' '.join(text)[:60]!r})")
    return text[0].lower()


def _fetch(url: str, part: Path, *, progress: bool, retries: int, backoff: float, timeout: float):
    """Download ``url`` into ``part``, resuming what is there; retried as a whole on cut-off bodies."""
    for attempt in range(retries + 1):
        if part.is_symlink():  # in a shared cache, another user's link: the download went into its target
            part.unlink()
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            resp = _get(url, retries=retries, backoff=backoff, timeout=timeout, headers=headers)
        except DownloadError as err:
            if getattr(err, "status", None) == 416:  # the .part is already complete (or longer): start over
                part.unlink()
                continue
            raise
        with resp:
            resumed = have and resp.status == 206
            total = resp.headers.get("Content-Length") or ""  # a broken proxy's "abc": unknown, as if absent
            total = int(total) + (have if resumed else 0) if total.strip().isdecimal() else None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, initial=have if resumed else 0, unit="B", unit_scale=True,
                           desc=url.rsplit("/", 1)[-1], leave=None)  # cleared when inside a user's bar
            try:
                with open(part, "ab" if resumed else "wb", opener=lambda p, fl: os.open(p, fl | _NOFOLLOW, 0o666)) as f:
                    while True:
                        try:
                            block = resp.read(_CHUNK)
                        except (OSError, urllib.error.URLError):
                            break  # a cut-off body: resume from what was written
                        if not block:
                            break
                        f.write(block)  # a local error (disk full, no permission) is not retried
                        if bar is not None:
                            bar.update(len(block))
            except OSError as err:
                raise DownloadError(f"could not write {part} while downloading {url}: {err.strerror or err}; free "
                                    "space or choose another cache_dir (GEOS2VEC_CACHE)") from err
            finally:
                if bar is not None:
                    bar.close()
        if total is None or part.stat().st_size >= total:
            return
        if attempt < retries:
            time.sleep(backoff * 2 ** attempt)
    raise DownloadError(f"the download of {url} kept breaking off ({part.stat().st_size:,} bytes of "
                        f"{total:,}); try again later. What arrived is kept in {part} and resumed next time")


def download_osm(area: AreaLike, *, cache_dir: StrPath | None = None, source: str = "geofabrik",
                 index_url: str | None = None, refresh: bool = False, progress: bool | None = None, retries: int = 3,
                 backoff: float = 1.0, timeout: float = 60.0) -> Path:
    """Download (or find in the cache) the smallest OpenStreetMap extract that covers ``area``.

    Parameters
    ----------
    area : GeoDataFrame, GeoSeries, shapely geometry or (min_lon, min_lat, max_lon, max_lat)
        The area to cover (any CRS for frames; degrees for a box).
    cache_dir : path, optional
        Where extracts are kept (default :func:`default_cache_dir`: ``$GEOS2VEC_CACHE/osm`` or
        ``~/.cache/geos2vec/osm``). A verified extract there is re-used without any network access.
    source : "geofabrik"
        The extract index to use (only Geofabrik so far).
    index_url : str, optional
        Another index in Geofabrik's ``index-v1.json`` format (a mirror, a local server, a local file's path or
        ``file://`` URL); default
        ``$GEOS2VEC_OSM_INDEX`` when set, else :data:`GEOFABRIK_INDEX`.
    refresh : bool, default False
        Fetch the index and the extract again even when cached (Geofabrik updates extracts daily).
    progress : bool, optional
        Show a download progress bar (default: ``geos2vec.set_options(progress=...)``).
    retries, backoff, timeout
        Retries on connection errors, HTTP 5xx and cut-off downloads (waiting ``backoff * 2**k`` seconds),
        and the socket timeout in seconds.

    Returns
    -------
    pathlib.Path
        The verified ``.osm.pbf`` file (under ``cache_dir``, named as on the server). The extract's id and
        boundary: ``find_extract(area, read_index(cache_dir=cache_dir))``.

    Raises
    ------
    NoExtractError
        No extract covers the whole area.
    DownloadError
        The server cannot be reached or keeps failing (after ``retries``), or answers 4xx.
    ChecksumError
        The downloaded file's MD5 differs from the published one (the file is deleted).

    Examples
    --------
    >>> path = download_osm((9.47, 47.05, 9.64, 47.27))        # doctest: +SKIP
    >>> osm = read_osm(path, area=(9.47, 47.05, 9.64, 47.27))  # doctest: +SKIP
    """
    if source != "geofabrik":
        raise InvalidInputError(f"source must be 'geofabrik', got {source!r}")
    _check_progress(progress)  # before the network: progress="no" was taken as True
    return _get_extract(area, cache_dir=cache_dir, index_url=index_url, refresh=refresh, progress=progress,
                        **_retry_kw(retries, backoff, timeout))[1]


def _get_extract(area, *, cache_dir, index_url, refresh: bool, progress, **kw) -> tuple[dict, Path]:
    """``(index entry, verified .osm.pbf)`` of the smallest extract covering ``area``: one index read, one choice."""
    from ..options import progress as _progress

    # a bad area before the network (it failed only after fetching the index, or on its DownloadError); the lon/lat
    # geometry is what find_extract gets: a projected area was densified and transformed twice
    geom = _area(area)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    extract = _find_extract(geom, read_index(_index_url(index_url), cache_dir=cache, refresh=refresh, **kw))
    return extract, _download_extract(extract, cache, refresh=refresh, progress=_progress(progress), **kw)


def _cache_path(cache: Path, url: str, extract_id) -> Path:
    """Where the extract at ``url`` is kept: ``cache/<host>/<url path>``, never outside ``cache``.

    A URL with a query gets a folder of its own for it (``<url folders>/query-<hash>/<file name>``): the same path
    with another query (a server's ``extract.osm.pbf?region=a`` and ``?region=b``) was one cache file, and the second
    region's call returned the first region's verified extract.
    """
    parts = urllib.parse.urlsplit(url)
    rel = parts.path.lstrip("/") or (f"{extract_id}.osm.pbf" if isinstance(extract_id, str) else "")
    names = [parts.netloc.replace(":", "_"), *rel.split("/")]
    # an index (a mirror's) whose URL or id holds ".." or "/" would have the download written anywhere
    if not rel or any(n in (".", "..") or "\\" in n or "\0" in n for n in names) or Path(rel).is_absolute():
        raise DownloadError(f"the index's extract {extract_id!r} has the URL {url!r}, which names no file inside the "
                            "cache folder (\"..\" or an absolute path): the index is broken or hostile; use "
                            "Geofabrik's (index_url=None)")
    if parts.query:  # "extract.osm.pbf?region=a" and "?region=b" are two files: not one name for both
        names.insert(-1, "query-" + hashlib.sha1(parts.query.encode()).hexdigest()[:12])
    return cache.joinpath(*filter(None, names))


def _download_extract(extract: dict, cache: Path, *, refresh: bool, progress: bool, **kw) -> Path:
    """The verified ``.osm.pbf`` of one index entry (cached, resumed, checked, renamed atomically)."""
    url = extract["pbf"]
    target = _cache_path(cache, url, extract.get("id"))
    mark = target.with_name(target.name + ".md5")
    target.parent.mkdir(parents=True, exist_ok=True)
    # one download of an extract at a time (two processes of a cron job or a Slurm array, one cache): the other
    # waits, then finds it verified; both wrote the one .part, and one failed with a bare FileNotFoundError
    with write_lock(target.with_name(f".{target.name}.lock")):
        if not refresh and target.exists() and mark.exists():
            if _md5(target) in mark.read_text(errors="replace").split()[:1]:  # an empty/damaged mark: not verified
                return target
            target.unlink()  # changed since it was verified: fetch it again
        part = target.with_name(target.name + ".part")
        if refresh and part.exists():
            part.unlink()
        expected = _published_md5(url, **kw)
        _fetch(url, part, progress=progress, **kw)
        got = _md5(part)
        if got != expected:
            part.unlink()
            raise ChecksumError(f"{url} arrived with MD5 {got}, but the server publishes {expected}; the file was "
                                "deleted. Try again (the extract may have been replaced while downloading)")
        if mark.exists():
            mark.unlink()
        os.replace(part, target)
        write_text_atomic(mark, f"{expected}  {target.name}\n")  # a random temporary name (a shared cache: no link)
        return target
