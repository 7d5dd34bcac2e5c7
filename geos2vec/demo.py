"""``geos2vec demo``: embed the bundled Los Angeles sample with the bundled model, write a table and a map.

Runs on a fresh machine with no network and no ``../shared``: the sample (OpenStreetMap POIs and roads,
© OpenStreetMap contributors, ODbL) and the model ship inside the package.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import argparse

    import geopandas as gpd
    from numpy.typing import ArrayLike

    from ._typing import ModelLike, StrPath

__all__ = ["load_sample", "pca_rgb", "plot_embedding_map", "run_demo", "add_parser"]

ATTRIBUTION = "Data © OpenStreetMap contributors, ODbL 1.0"


def load_sample() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The bundled sample: ``(pois, roads)`` GeoDataFrames of Los Angeles (EPSG:4326).

    Returns
    -------
    pois : geopandas.GeoDataFrame
        OpenStreetMap points of interest.
    roads : geopandas.GeoDataFrame
        OpenStreetMap road lines.
    """
    import geopandas as gpd

    base = resources.files("geos2vec") / "data" / "sample"
    with resources.as_file(base / "los_angeles_pois.parquet") as p, \
            resources.as_file(base / "los_angeles_roads.parquet") as r:
        return gpd.read_parquet(p), gpd.read_parquet(r)


def pca_rgb(values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """First three principal components of ``values`` (rows x dims), each scaled to [0, 1] as RGB.

    Returns ``(rgb, explained_variance_ratio)``; rows with NaN (or ±inf) get NaN colours. The colours are
    deterministic: each component's sign is chosen so that its largest loading is positive, so the same
    vectors get the same colours in any row order (before, an SVD's arbitrary signs could invert a channel).

    Parameters
    ----------
    values : array_like, shape (n, d)
        One row per item (e.g. embedding vectors); rows containing NaN or ±inf are left out of the PCA.

    Returns
    -------
    rgb : numpy.ndarray of float64, shape (n, 3)
        Components scaled to [0, 1] between their 2nd and 98th percentiles (clipped); NaN for rows
        with NaN (every row when fewer than two rows are complete); 0.5 in the channels beyond the
        number of components when ``d < 3``.
    explained_variance_ratio : numpy.ndarray of float64, shape (3,)
        Share of the variance of each of the three components (zeros where there is none).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        from .errors import InvalidInputError

        raise InvalidInputError(f"values must be a 2-D array (rows x dims), got shape {values.shape}; "
                                f"reshape one vector per row with values.reshape(len(values), -1)")
    ok = np.isfinite(values).all(axis=1)  # an inf made the SVD fail ("SVD did not converge")
    rgb = np.full((len(values), 3), np.nan)
    if ok.sum() < 2:
        return rgb, np.zeros(3)
    x = values[ok] - values[ok].mean(axis=0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(3, len(s))
    big = np.argmax(np.abs(vt[:k]), axis=1)  # sign convention: the largest loading of each component is positive
    vt = vt[:k] * np.where(vt[np.arange(k), big] < 0, -1.0, 1.0)[:, None]
    pcs = x @ vt.T
    lo, hi = np.percentile(pcs, 2, axis=0), np.percentile(pcs, 98, axis=0)
    scaled = np.clip((pcs - lo) / np.where(hi > lo, hi - lo, 1.0), 0, 1)
    rgb[ok, :k] = scaled
    if k < 3:
        rgb[ok, k:] = 0.5
    total = (s**2).sum()
    explained = (s**2 / total if total > 0 else np.zeros_like(s))[:3]  # identical rows: no variance to share
    return rgb, np.pad(explained, (0, 3 - len(explained)))


def plot_embedding_map(cells: gpd.GeoDataFrame, path: StrPath, *, prefix: str = "s2vec_",
                       pois: gpd.GeoDataFrame | None = None, title: str = "S2Vec embeddings") -> Path:
    """Map of cell embeddings: the first three principal components as RGB (matplotlib, PNG).

    Parameters
    ----------
    cells : geopandas.GeoDataFrame
        Cell polygons with embedding columns, as :func:`geos2vec.cell_embeddings` returns; drawn in
        EPSG:4326 (another CRS is transformed).
    path : str or path-like
        The image file to write (the format follows the extension, as in ``Figure.savefig``).
    prefix : str, default "s2vec_"
        Columns whose name starts with it are the embedding.
    pois : geopandas.GeoDataFrame, optional
        Points drawn as small black dots over the cells (other geometries: a point inside each), in EPSG:4326
        (another CRS is transformed).
    title : str, default "S2Vec embeddings"
        First line of the plot title.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from matplotlib.figure import Figure  # drawn without pyplot: the user's backend (e.g. Jupyter's) stays as it is

    from .errors import InvalidInputError

    cols = [c for c in cells.columns if str(c).startswith(prefix) and c != cells.geometry.name]
    if not cols:  # drew every cell in one colour, titled "PCA of 0-d embeddings"
        raise InvalidInputError(f"no embedding columns start with prefix={prefix!r}; the columns are "
                                f"{list(cells.columns)[:8]}: pass the prefix of the embedding columns")
    if cells.crs is not None and not cells.crs.equals("EPSG:4326"):  # metres were labelled as degrees
        cells = cells.to_crs("EPSG:4326")
    fig = Figure(figsize=(8, 6.4), dpi=110)
    fmt = Path(path).suffix.lstrip(".").lower() or None
    if fmt is not None and fmt not in fig.canvas.get_supported_filetypes():
        raise InvalidInputError(f"cannot write a map to {str(path)!r}: the format follows the extension, one of "
                                f"{sorted(fig.canvas.get_supported_filetypes())}")
    rgb, explained = pca_rgb(cells[cols].to_numpy(dtype=float))
    ax = fig.subplots()
    ok = ~np.isnan(rgb).any(axis=1)
    if (~ok).any():
        cells[~ok].plot(ax=ax, facecolor="#eeeeee", edgecolor="white", linewidth=0.3)
    if ok.any():
        cells[ok].plot(ax=ax, color=rgb[ok], edgecolor="white", linewidth=0.3)
    if pois is not None and len(pois):
        pts = pois.geometry if pois.crs is None or pois.crs.equals("EPSG:4326") else pois.geometry.to_crs("EPSG:4326")
        pts = pts.where(pts.geom_type == "Point", pts.representative_point())  # polygons: .x raised a ValueError
        ax.scatter(pts.x, pts.y, s=0.6, c="black", alpha=0.35, linewidths=0,
                   label="POIs")
        ax.legend(loc="lower right", fontsize=7, markerscale=8)
    lat0 = float(np.mean(cells.total_bounds[[1, 3]])) if len(cells) else 0.0
    ax.set_aspect(1.0 / max(np.cos(np.radians(lat0)), 1e-6))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(f"{title}\nPCA of {len(cols)}-d embeddings as RGB "
                 f"(explained variance {explained[0]:.0%} / {explained[1]:.0%} / {explained[2]:.0%})",
                 fontsize=10)
    ax.text(0.01, 0.01, ATTRIBUTION, transform=ax.transAxes, fontsize=7, color="#444444")
    ax.grid(True, linewidth=0.3, alpha=0.5)
    fig.tight_layout()
    from ._jsonfile import atomic_path

    with atomic_path(path, suffix=Path(path).suffix) as tmp:  # an interrupted write leaves no partial image
        fig.savefig(tmp, format=fmt)
    return Path(path)


def run_demo(out: StrPath = "demo-out", model: ModelLike = "default", mode: str = "contextual",
             quiet: bool = False) -> dict[str, Any]:
    """Features → embeddings → ``embeddings.parquet`` + ``embeddings.png`` in ``out``.

    Parameters
    ----------
    out : str or path-like, default "demo-out"
        Output folder (created if needed).
    model : str, path-like or S2VecModel, default "default"
        The model, as ``embed(model=...)`` takes it: ``"default"`` (the bundled one), a saved model's path
        (:func:`geos2vec.load_model`) or a loaded model (it was refused: "path must be 'default' or the path
        of a saved model").
    mode : str, default "contextual"
        Embedding mode, passed to :func:`geos2vec.cell_embeddings`.
    quiet : bool, default False
        No progress bar and no printed summary. ``geos2vec.set_options(progress=False)`` turns the progress bars
        off too (the summary is still printed).

    Returns
    -------
    dict
        Summary: ``pois``, ``roads``, ``cells``, ``channels``, ``embedding_dim``, ``dropped_categories``
        (the number of warnings about categories raised while counting), ``seconds``, and the paths
        ``parquet`` and ``png`` (str).
    """
    import warnings

    from tqdm.auto import tqdm

    from .embedding import _resolve_model, cell_embeddings
    from .features import count_features
    from .options import progress

    out = Path(out).expanduser()  # "~/demo-out" is the home folder's, not a "./~" folder
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    steps = tqdm(total=4, desc="geos2vec demo", unit="step", disable=quiet or not progress())
    try:  # an interrupted demo (Ctrl-C) closes its bar: an open one pushed later bars down a line
        steps.set_postfix_str("reading the bundled sample")
        pois, roads = load_sample()
        steps.update()
        steps.set_postfix_str("counting features")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = count_features(pois, roads, level=12)
        steps.update()
        steps.set_postfix_str("loading the model and embedding")
        mdl = _resolve_model(model)
        cells = cell_embeddings(table, level=12, model=mdl, mode=mode, progress=False if quiet else None)
        steps.update()
        steps.set_postfix_str("writing the table and the map")
        parquet = out / "embeddings.parquet"
        from ._jsonfile import atomic_path

        with atomic_path(parquet, suffix=".parquet") as tmp:  # an interrupted write leaves no partial table
            cells.to_parquet(tmp)
        png = plot_embedding_map(cells, out / "embeddings.png", pois=pois,
                                 title=f"S2Vec embeddings of Los Angeles level-12 cells ({mode})")
        steps.update()
    finally:
        steps.close()
    summary = {
        "pois": len(pois), "roads": len(roads), "cells": len(table),
        "channels": table.shape[1], "embedding_dim": mdl.embedding_dim,
        "dropped_categories": sum(1 for w in caught if "categor" in str(w.message).lower()),
        "seconds": round(time.perf_counter() - t0, 2), "parquet": str(parquet), "png": str(png),
    }
    if not quiet:
        print(f"embedded {summary['cells']} level-12 cells ({summary['pois']} POIs, {summary['roads']} road "
              f"segments, {summary['channels']} channels) into {summary['embedding_dim']}-d vectors "
              f"in {summary['seconds']} s")
        print(f"wrote {parquet} (GeoParquet: s2_cell, token, s2vec_0..{mdl.embedding_dim - 1}, geometry)")
        print(f"wrote {png} (first 3 principal components as RGB)")
        print(ATTRIBUTION)
    return summary


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``demo`` subcommand's parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The ``demo`` parser, its ``func`` default set to run :func:`run_demo` (and give exit status 0).
    """
    p = subparsers.add_parser("demo", help="embed the bundled Los Angeles sample; write a table and a map")
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--model", default="default", help="model directory/zip (default: the bundled model)")
    p.add_argument("--mode", default="contextual", choices=["contextual", "patch"],
                   help="embedding mode (default: contextual)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no printed summary")
    p.set_defaults(func=_run_cli)
    return p


def _run_cli(args: argparse.Namespace) -> int:
    """``geos2vec demo``: an --out that is a file said only "[Errno 17] File exists: 'x'"."""
    from .cli_features import check_out

    run_demo(check_out(args.out, folder=True), args.model, args.mode, args.quiet)
    return 0
