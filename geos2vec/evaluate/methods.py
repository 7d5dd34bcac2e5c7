"""The standard method set: baselines, controls and embeddings, as a ``methods`` dict for :func:`evaluate`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..cells import _as_cells
from ..errors import InvalidInputError
from .baselines import _check_table, log1p_counts, region_onehot, smoothed_counts
from .protocol import Method

if TYPE_CHECKING:
    from collections.abc import Sequence

    import shapely
    from numpy.typing import ArrayLike

    from .._typing import ModelLike

__all__ = ["standard_methods", "model_embeddings"]


def standard_methods(cells: ArrayLike, counts: pd.DataFrame | None = None,
                     embeddings: dict[str, pd.DataFrame] | None = None, *,
                     coverage: shapely.Geometry | ArrayLike | None = None,
                     controls: dict[str, pd.DataFrame] | None = None, location: str = "theory",
                     location_params: dict[str, Any] | None = None, pca_dim: int = 256, rp_dim: int = 256,
                     seed: int = 0, region_level: int = 8,
                     smoothed: bool = True) -> dict[str, pd.DataFrame | list[pd.DataFrame] | Method]:
    """Baselines, controls and embeddings of ``cells``, as a ``methods`` dict for :func:`evaluate`.

    Parameters
    ----------
    cells : array_like of uint64
        Every level-12 cell the samples use (the labelled cells, or all cells the polygons cover).
    counts : DataFrame, optional
        Cell x channel counts (:func:`geos2vec.count_features`). Gives ``counts`` (``log(1 + count)``),
        ``smoothed counts`` (own || 3x3 mean || 5x5 mean, :func:`smoothed_counts`), ``PCA`` and
        ``random projection`` (of the standardized log counts, fitted per split on training samples),
        and ``counts-Loc``. Cells absent from ``counts`` are empty where ``coverage`` says the source has
        data, unknown elsewhere (:func:`geos2vec.evaluate.baselines.covered_mask`).
    embeddings : dict name -> DataFrame, optional
        E.g. ``{"S2Vec (contextual)": table}``: gives the embedding, ``<name>-Loc`` (fused with the
        location encoding) and ``<name> + smoothed counts``.
    coverage : optional
        Where the counts' source has data (:func:`~geos2vec.evaluate.baselines.covered_mask`); default: the
        coverage ``counts`` records (``attrs["coverage"]``, per channel, see
        :func:`~geos2vec.evaluate.baselines.smoothed_counts`), else everywhere.
    controls : dict name -> DataFrame, optional
        E.g. ``{"untrained encoder": table}``: gives the control and ``<name> + smoothed counts``.
    location : str
        Location encoder of ``location-only`` and the ``-Loc`` fusions (:mod:`geos2vec.location`);
        ``location_params`` its scales.
    location_params : dict, optional
        Keyword arguments of the location encoder.
    pca_dim, rp_dim : int
        Dimensions of ``PCA`` and ``random projection``.
    seed : int
        Seed of the random projection.
    region_level : int
        ``region one-hot``: the level of the parent cell one-hot encoded (8: the S2Vec image).
    smoothed : bool
        Include ``smoothed counts`` and the ``+ smoothed counts`` combinations (with ``counts``).

    Returns
    -------
    dict
        Method name to a DataFrame, a list of DataFrames (blocks fused by the probe) or a
        :class:`~geos2vec.evaluate.protocol.Method`: always ``region one-hot`` (not rescaled) and
        ``location-only``; with ``counts`` also ``counts``, ``smoothed counts`` (with ``smoothed``), ``PCA``,
        ``random projection`` and ``counts-Loc``; then the embeddings and controls and their combinations.

    Raises
    ------
    InvalidInputError
        An embedding or control whose name (or ``<name>-Loc``, ``<name> + smoothed counts``) is already a
        method's, e.g. an embedding named ``"counts"`` (before, it replaced that baseline without a word).
    """
    from ..location import encode_cells

    cells = np.unique(_as_cells(cells).ravel())
    loc = encode_cells(cells, location, **(location_params or {}))
    methods = {}
    smooth = None
    if counts is not None:
        counts = _check_table(counts, "counts")
        logc = log1p_counts(counts, cells, coverage=coverage)
        methods["counts"] = logc
        if smoothed:
            smooth = smoothed_counts(counts, cells, coverage=coverage)
            methods["smoothed counts"] = smooth
        methods["PCA"] = Method([logc], transform="pca", n_components=pca_dim)
        methods["random projection"] = Method([logc], transform="random projection", n_components=rp_dim,
                                              seed=seed)
    methods["region one-hot"] = Method([region_onehot(cells, region_level)], scale=[False])
    methods["location-only"] = loc
    if counts is not None:
        methods["counts-Loc"] = [methods["counts"], loc]
    # each name once: an embedding named "counts" replaced that baseline without a word (and was then left out
    # of the report's comparisons, as a baseline)
    for kind, tables in (("embedding", embeddings), ("control", controls)):
        for name, table in (tables or {}).items():
            new = {name: table, **({f"{name}-Loc": [table, loc]} if kind == "embedding" else {})}
            if smooth is not None:
                new[f"{name} + smoothed counts"] = [table, smooth]
            taken = [m for m in new if m in methods]
            if taken:
                raise InvalidInputError(f"{kind} {name!r} would replace the method {taken[0]!r} (a baseline, or one "
                                        f"of an earlier embedding or control); rename it")
            methods.update(new)
    return methods


def model_embeddings(cells: ArrayLike, counts: pd.DataFrame, model: ModelLike = "default",
                     modes: str | Sequence[str] = ("contextual", "patch"),
                     name: str = "S2Vec") -> dict[str, pd.DataFrame]:
    """S2Vec embedding tables of ``cells``, one per mode: ``{"S2Vec (contextual)": table, ...}``.

    A mode is one of :data:`geos2vec.model.embed.MODES`, or ``"contextual:<context>"`` for a non-default
    window placement (``"contextual:centred"``; plain ``"contextual"`` is the default, ``blend``).

    ``model`` is ``"default"`` (the bundled pretrained model), a saved model path or a loaded model;
    ``counts`` the ``count_features`` table the model embeds (it must have the model's channels). Labelled
    cells without any feature are embedded in their surroundings (``outside="embed"``); cells whose whole
    image has no features get no row (they are then dropped for every method by :func:`evaluate`).

    Parameters
    ----------
    cells : array_like of uint64
        The level-12 cells to embed (sorted and deduplicated).
    counts : pandas.DataFrame
        The cell x channel counts, indexed by cell id.
    model : str, path-like or S2VecModel
        The model, as above.
    modes : str or sequence of str
        Embedding modes, as above (one mode as a str).
    name : str
        Prefix of the table names.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``"<name> (<mode>)"`` to a float64 table indexed by uint64 ``cell_id``, without rows holding NaN or
        inf.
    """
    import warnings

    from ..embedding import embed_cells
    from ..model import load_model

    modes = _check_modes(modes)  # before the model loads and the first mode is embedded
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        model = load_model(model)
    cells = np.unique(_as_cells(cells).ravel())
    out = {}
    for mode in modes:
        base, _, context = mode.partition(":")  # "contextual:blend" -> mode "contextual", context "blend"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            emb = embed_cells(cells, counts, model=model, mode=base, outside="embed", context=context or "blend")
        emb = emb[np.isfinite(emb.to_numpy(np.float64)).all(axis=1)].astype(np.float64)
        emb.index = pd.Index(emb.index.to_numpy(np.uint64), name="cell_id")
        out[f"{name} ({mode})"] = emb
    return out


def _check_modes(modes: str | Sequence[str]) -> list[str]:
    """``modes`` as a list (one mode as a str), each a mode of ``embed`` or ``"<mode>:<context>"``.

    An unknown mode is an :class:`~geos2vec.errors.InvalidInputError` naming the modes, as ``embed(mode=...)``
    raises, before any work: ``modes=("contextual", "tile")`` failed after the contextual embedding (minutes in
    :func:`~geos2vec.evaluate.suite.run_suite`), and ``modes=None`` or a mode that is not a str with a TypeError or
    AttributeError.
    """
    from ..model.context import CONTEXTS
    from ..model.embed import MODES

    listed = [modes] if isinstance(modes, str) else modes  # "patch" was the modes "p", "a", "t", ...
    try:
        listed = list(listed)
    except TypeError:
        listed = None
    bad = [modes] if not listed else [m for m in listed if not isinstance(m, str) or m.partition(":")[0] not in MODES
                                      or m.partition(":")[2] not in ("", *CONTEXTS)]
    if bad:
        bad = bad[0]
        raise InvalidInputError(f"modes must be one or more of {MODES} (contextual also as 'contextual:centred' or "
                                f"'contextual:blend'), got {bad!r}")
    return listed
