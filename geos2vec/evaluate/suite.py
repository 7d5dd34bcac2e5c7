"""The evaluation suite: named tasks x split kinds x methods x probes in one run, with one report."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._jsonfile import atomic_path
from .._stacklevel import warn
from ..errors import Geos2VecWarning
from ..options import set_options
from .inputs import _check_seed
from .methods import _check_modes, model_embeddings, standard_methods
from .mlp_training import _require_mlp
from .protocol import SPLITS, evaluate
from .tasks import load_features, load_task

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from .._typing import ModelLike, StrPath

__all__ = ["run_suite", "DEFAULT_TASKS"]

# one task of each family the bundled model can be evaluated on (docs/evaluate.md)
DEFAULT_TASKS = ("ca-housing", "zcta:per_capita_income", "nyc-tracts:medianinco")


def _fingerprint(*parts) -> str:
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, pd.DataFrame):
            h.update(pd.util.hash_pandas_object(part, index=True).to_numpy().tobytes())
            h.update(json.dumps(list(map(str, part.columns))).encode())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _model_fingerprint(model) -> str:
    # the weights that embed: the Keras model's once there is one (a loaded model fine-tuned with fit keeps its
    # NumPy weights from the file, but embeds with the trained Keras model), else the NumPy weights
    weights = model.numpy_weights
    arrays = list(model.keras_model.get_weights()) if model.keras_model is not None \
        else [weights[k] for k in sorted(weights) if isinstance(weights[k], np.ndarray)]
    # the normalization is part of the model: the same weights on other units embed differently
    stats = None if model.stats is None else model.stats.to_dict()
    return _fingerprint(model.config.to_dict(), list(model.channels), stats, *arrays)


# bumped when a mode's meaning changes (0.2: "contextual" became seamless; the old one is "tiled")
_EMBED_VERSION = "embed-v3"  # v3: contextual defaults to context="blend"


def _package_sources(root) -> str:
    """A digest of the ``.py`` files under ``root`` (a folder or :mod:`importlib.resources` traversable), by content."""
    h = hashlib.sha1()
    todo = [(root, "")]
    while todo:
        folder, prefix = todo.pop()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir() and entry.name != "__pycache__":
                todo.append((entry, f"{prefix}{entry.name}/"))
            elif entry.name.endswith(".py"):
                h.update(f"{prefix}{entry.name}\0".encode())
                h.update(entry.read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def _code_digest() -> str:
    """geos2vec's version and the content of its code: cache entries of other code are not read.

    The embeddings change with the code too (seamless windows across cube-face edges changed 72 of 144 cells near
    one, under the same version and ``_EMBED_VERSION``); an entry written by other code was read back as if fresh.
    """
    from importlib import resources

    from .. import __version__

    return f"{__version__}+{_package_sources(resources.files('geos2vec'))}"


def _embeddings(cells, counts, model, modes, name, cache_dir):
    """``model_embeddings``, read from / written to ``cache_dir`` (keyed on model, inputs, mode, code)."""
    if cache_dir is None:
        return model_embeddings(cells, counts, model, modes, name=name)
    cache_dir = Path(cache_dir).expanduser()  # "~/cache" is the home folder's, not a "./~" folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    # the coverage too: outside it pixels are unknown, not empty, so the same counts embed differently
    key = _fingerprint(_model_fingerprint(model), counts, getattr(counts, "attrs", {}).get("coverage"),
                       np.asarray(cells, np.uint64), list(modes), name, _EMBED_VERSION, _code_digest())
    path = cache_dir / f"embeddings-{key}.parquet"
    if path.exists():
        table, problem = None, None
        try:
            table = pd.read_parquet(path)
        except (OSError, ValueError, TypeError) as exc:  # damaged, or another program's file on a shared disk
            problem = f"{type(exc).__name__}: {exc}"
        if table is not None and "method" not in table.columns:
            problem = "it has no 'method' column"
        if problem is not None:
            warn(f"evaluation cache entry {str(path)!r} does not read ({problem}); computing it again",
                 Geos2VecWarning)
        else:
            tables = dict(list(table.groupby("method", sort=False)))
            # every mode, as model_embeddings names it, also one without rows (it has no group)
            return {k: tables.get(k, table.iloc[:0]).drop(columns="method").astype(np.float64)
                    for k in (f"{name} ({mode})" for mode in modes)}
    out = model_embeddings(cells, counts, model, modes, name=name)
    # a temporary name of its own (two processes or threads may write the same entry at once), replaced into
    # place whole: an interrupted write never leaves a file that loads
    try:
        with atomic_path(path) as tmp:
            pd.concat([t.assign(method=m) for m, t in out.items()]).to_parquet(tmp)
    except OSError as exc:  # a full disk, a read-only cache: the run stopped here, its embeddings computed
        warn(f"the evaluation cache entry was not written ({exc}); the evaluation goes on without it",
             Geos2VecWarning)
    return out


def _check_run(probes, splits, *, n_splits, target_scale, sweep, fusion, max_epochs, patience, batch_size,
               block_level, location, location_params):
    """``run_suite``'s options checked as ``evaluate`` checks them, before any task is loaded or embedded.

    ``splits="Random"``, ``probes=None``, ``fusion="Concat"``, ``n_splits=0`` or ``location="Theory"`` failed only
    when the first task reached ``evaluate`` or the location encoder (minutes in); the CLI checked its flags up
    front. Returns ``probes`` and ``splits`` as lists.
    """
    from ..cells import _check_level
    from ..errors import InvalidInputError
    from ..location import encode_cells
    from .mlp_training import _check_mlp_options
    from .protocol import DEFAULT_SWEEP, PROBES, TARGET_SCALES
    from .splits import _check_n_splits

    lists = []
    for name, value, allowed in (("probes", probes, PROBES), ("splits", splits, SPLITS)):
        listed = [value] if isinstance(value, str) else list(value) if hasattr(value, "__iter__") else None
        if not listed or any(v not in allowed for v in listed):
            raise InvalidInputError(f"{name} must be a non-empty subset of {list(allowed)}, got {value!r}")
        lists.append(listed)
    _check_n_splits(n_splits)
    if target_scale not in TARGET_SCALES:
        raise InvalidInputError(f"target_scale must be one of {list(TARGET_SCALES)}, got {target_scale!r}")
    _check_mlp_options({**DEFAULT_SWEEP, **(sweep or {})}, fusion=fusion, fusion_units=64, max_epochs=max_epochs,
                       patience=patience, batch_size=batch_size, weight_decay=0.004)
    if block_level is not None:
        _check_level(block_level, "block_level")
    encode_cells(np.array([0x89C2590000000000], np.uint64), location, **(location_params or {}))  # one cell
    return lists


def run_suite(tasks: Sequence[str] = DEFAULT_TASKS, *, splits: Sequence[str] = SPLITS,
              probes: str | Sequence[str] = ("ridge",), model: ModelLike | None = "default",
              modes: str | Sequence[str] = ("contextual",), untrained: bool = True, data_dir: StrPath | None = None,
              n_splits: int = 20, seed: int = 0, states: Iterable[str] | None = None, sweep: dict | None = None,
              max_epochs: int = 500, patience: int = 30, target_scale: str = "standard",
              block_level: int | None = None, batch_size: int = 512, fusion: str = "concat", purge: bool = True,
              location: str = "theory", location_params: dict[str, Any] | None = None,
              cache_dir: StrPath | None = None, progress: bool | None = None,
              log: Callable[[str], object] | None = print) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Evaluate ``model`` (and every baseline) on each task and split kind.

    Parameters
    ----------
    tasks : sequence of str
        Task names (:func:`geos2vec.evaluate.tasks.load_task`), e.g. ``"zcta:housing_unit_density"``; a task
        named twice (``"ca-housing"`` and ``"ca-housing:median_house_value"``) is run once.
    splits : sequence of {"random", "blocked", "region"}
    probes : sequence of {"ridge", "mlp"}
        Default ridge only: the paper's MLP sweep takes minutes per method and split kind on thousands of cells.
    model : "default", a path, a loaded model, or None
        The S2Vec model embedded in ``modes`` (methods ``S2Vec (<mode>)``, their ``-Loc`` fusions and
        ``+ smoothed counts``). None: baselines only.
    modes : str or sequence of str
        Embedding modes (:func:`~geos2vec.evaluate.methods.model_embeddings`); one mode as a str.
    untrained : bool
        Also embed with the same architecture and random weights (``untrained encoder``, a control; in the
        first mode only).
    data_dir : path, optional
        The shared data folder (:func:`geos2vec.evaluate.tasks.data_dir`).
    n_splits : int
        Repetitions per split kind (:func:`~geos2vec.evaluate.protocol.evaluate`).
    seed : int
        Seed of the splits, the probes, the random projection and the untrained model.
    states : list of str, optional
        Restrict ``zcta`` tasks (and their Who's On First features) to these states.
    sweep, max_epochs, patience, target_scale, batch_size, fusion
        The MLP probe (:func:`~geos2vec.evaluate.protocol.evaluate`).
    block_level : int, optional
        Level of the blocks of blocked splits, for every task (default: each task's own).
    purge : bool
        Leave training samples that share a cell with a test sample out (polygon tasks;
        :func:`~geos2vec.evaluate.protocol.evaluate`).
    location, location_params
        The location encoder of the ``-Loc`` methods and ``location-only``
        (:func:`~geos2vec.evaluate.methods.standard_methods`).
    cache_dir : path, optional
        Keep embedding tables here (keyed by the model's weights and normalization, the counts, the cells, the
        mode and geos2vec's version and code), so a second run does not encode the images again.
    progress : bool, optional
        Show progress bars, the embedding's and the evaluation's (default: the ``progress`` option,
        :func:`geos2vec.set_options`).
    log : callable or None
        Called with one line per task and split kind when done (default ``print``); ``None``: silent.

    Returns
    -------
    scores : DataFrame
        Every split's score, with a ``task`` column (:func:`geos2vec.evaluate.report.write_report`).
    info : dict
        Per task: samples, samples dropped because some method has no vector for them (``dropped``; every
        method is scored on the same samples), feature source, block level, wall times of features,
        embeddings and evaluation.
    """
    from ..model import load_model
    from ..options import check_progress
    from .baselines import untrained_model

    check_progress(progress)  # progress="no" showed the bars (bool("no")), after the tasks were loaded
    seed = _check_seed(seed)  # seed=None failed in the first task's splits, after the tasks were loaded
    if model is not None:
        modes = _check_modes(modes)  # an unknown mode failed after the tasks were loaded and the others embedded
    probes, splits = _check_run(probes, splits, n_splits=n_splits, target_scale=target_scale, sweep=sweep,
                                fusion=fusion, max_epochs=max_epochs, patience=patience, batch_size=batch_size,
                                block_level=block_level, location=location, location_params=location_params)
    if "mlp" in probes:  # said before the tasks are loaded and embedded (minutes), not when the first MLP trains
        _require_mlp()
    if model is not None and (isinstance(model, str) or hasattr(model, "__fspath__")):
        model = load_model(model)
    features_cache, emb_cache, all_scores, info = {}, {}, [], {}
    loaded = {}
    # one run per task: "ca-housing" and "ca-housing:median_house_value" (or a task given twice, as --task default
    # --task ca-housing does) were scored twice into the same rows, and the summary counted every split twice
    tasks, splits, modes = ([v] if isinstance(v, str) else list(v) for v in (tasks, splits, modes))  # not "c", "a", ...
    splits = list(dict.fromkeys(splits))
    for name in tasks:
        t0 = time.perf_counter()
        task = load_task(name, data_dir, states=states)
        loaded.setdefault(task.name, (task, time.perf_counter() - t0))  # by the task's full name
    tasks = list(loaded)
    # every cell of the tasks that share a feature source: their images are encoded once
    source_cells = {}
    for task, _ in loaded.values():
        source_cells[task.features] = np.union1d(source_cells.get(task.features, task.cells), task.cells)
    for name in tasks:
        task, t_load = loaded[name]
        t0 = time.perf_counter() - t_load
        if task.features not in features_cache:
            features_cache[task.features] = load_features(task.features, data_dir)
        counts, coverage = features_cache[task.features]
        t_feat = time.perf_counter() - t0
        cells = task.cells
        embeddings, controls = {}, {}
        t1 = time.perf_counter()
        if model is not None:
            key = (task.features, id(model))
            cached = emb_cache.get(key)
            if cached is None or not np.isin(cells, cached[0]).all():
                wanted = source_cells[task.features] if cached is None else np.union1d(cells, cached[0])
                model_counts = counts.reindex(columns=model.channels, fill_value=0.0)
                # the embedding bars follow progress= too (run_suite(progress=False) showed one per mode)
                with contextlib.nullcontext() if progress is None else set_options(progress=bool(progress)):
                    tables = _embeddings(wanted, model_counts, model, modes, "S2Vec", cache_dir)
                    if untrained:
                        fresh = untrained_model(model, seed=seed)
                        tables.update({"untrained encoder": t for t in _embeddings(
                            wanted, model_counts, fresh, modes[:1], "untrained", cache_dir).values()})
                emb_cache[key] = cached = (wanted, tables)
            for k, v in cached[1].items():
                (controls if k == "untrained encoder" else embeddings)[k] = v
        t_emb = time.perf_counter() - t1
        methods = standard_methods(cells, counts, embeddings, coverage=coverage, controls=controls, seed=seed,
                                   location=location, location_params=location_params)
        blocks = task.block_level if block_level is None else int(block_level)
        for kind in splits:
            t2 = time.perf_counter()
            with warnings.catch_warnings():
                if log:  # the samples left out are logged below, with the methods lacking them
                    warnings.filterwarnings("ignore", message=r".* samples are left out for every method")
                res = evaluate(task.target, methods, split=kind, n_splits=n_splits, seed=seed,
                               block_level=blocks, regions=task.regions, pooling=task.pooling, probes=probes,
                               sweep=sweep, max_epochs=max_epochs, patience=patience, target_scale=target_scale,
                               batch_size=batch_size, fusion=fusion, purge=purge, progress=progress)
            all_scores.append(res.scores.assign(task=task.name))
            info.setdefault(task.name, {}).update({
                "samples": res.n_cells, "dropped": res.config["n_dropped"], "block_level": blocks,
                "features": task.features, "features_s": round(t_feat, 1),
                "embed_s": round(t_emb, 1), f"evaluate_{kind}_s": round(time.perf_counter() - t2, 1),
            })
            if log:
                dropped = res.config["n_dropped"]
                lacking = ", ".join(f"{k} {v}" for k, v in res.config["missing"].items())
                log(f"{task.name} / {kind}: {res.n_cells} samples" + (f" ({dropped} dropped: a method has no "
                    f"vector for them: {lacking})" if lacking else "") + f", {time.perf_counter() - t2:.0f} s")
    return pd.concat(all_scores, ignore_index=True), info
