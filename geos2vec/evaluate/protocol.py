"""The downstream protocol: every method on the same samples and splits, probed by ridge and the paper's MLP.

1. A *sample* is a labelled level-12 cell (point labels: the median per cell, :func:`join_labels`) or a
   polygon (a census tract) pooled over the level-12 cells it covers with area weights (``pooling``).
2. Every *method* is a list of cell-indexed tables ("blocks"), pooled to samples the same way: a baseline
   and an embedding always see the same samples. Only samples that every method can represent are kept.
3. Splits (:mod:`geos2vec.evaluate.splits`): ``random`` (the paper's 20 x 60/20/20), ``blocked`` (whole
   level-k blocks to train, validation or test) and ``region`` (train on some regions, test on another, each
   direction). Random splits put a test cell's neighbours in training, so anything that says *where* a cell
   is scores well there; blocked and region splits are what an embedding must win on.
4. Per split, everything that is fitted is fitted on the training samples only: the standardization of each
   block (then clipped at ±4 SD), PCA, the probe, and the scaling of the MLP's target (by default to mean 0
   and SD 1; ``target_scale="minmax"``: to [0, 1]).
5. Probes: ``ridge`` (closed form, penalty chosen on validation) and ``mlp`` (the S2Vec paper's 2-layer MLP
   with AdamW, a sweep over learning rate x hidden units x dropout chosen on validation, early stopping).
   All splits and configurations of one method are trained at once as independent heads of one batched
   Keras model (:func:`geos2vec.evaluate.mlp_training._train_group`); :func:`build_mlp` is the plain Keras
   equivalent of one head.

``methods={"S2Vec": emb, "S2Vec-Loc": [emb, loc], "PCA": Method([counts], transform="pca")}``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

import numpy as np
import pandas as pd

from .._cells_core import _cell_id_index
from ..cells import _as_cells, _check_level, cell_to_parent, get_level
from .._stacklevel import warn
from ..errors import Geos2VecWarning, InvalidInputError, InvalidTypeError, foreign_frame
from ..options import progress as _show
# the methods' inputs and the result have modules of their own; their names stay importable from here
from .inputs import Method, _as_method, _features, _pool  # noqa: F401
from .labels import _level_note
from .mlp_training import _check_mlp_options, _pad, _train_group
from .probes import ridge_onehot_probe, ridge_probe
from .report import method_widths
from .result import EvaluationResult
# importable from here before report/protocol/probes were split
from ._columns import canonical_order as canonical_order
from .probes import standardize as standardize
from .summary import summary_table as summary_table
from .splits import SPLITS, _split_groups, check_test_sets, holdout_mask, purge_shared_cells, split_ids

__all__ = ["Method", "EvaluationResult", "evaluate", "DEFAULT_SWEEP", "PROBES", "SPLITS", "TARGET_SCALES"]

DEFAULT_SWEEP = {"lr": [3e-3, 1e-2], "hidden": [64, 256], "dropout": [0.0, 0.3]}
#: How the MLP probe scales its target per split (``evaluate(target_scale=...)``); the first is the default.
TARGET_SCALES = ("standard", "minmax")
PROBES = ("ridge", "mlp")


def _group_seed(seed, name, hidden) -> int:
    """Initialisation seed of one (method, hidden units) group.

    From the method's name, not its position, so a method gets the same result whichever other methods
    share the run.
    """
    import zlib

    return int(zlib.crc32(f"{seed}/{name}/{int(hidden)}".encode()) & 0x3FFFFFFF)


def _r2(y, p):
    """R² of ``p`` on the test samples ``y``, around their own mean (sklearn's ``r2_score``); NaN if constant."""
    ss = np.sum((y - np.mean(y)) ** 2)
    return float(1.0 - np.sum((y - p) ** 2) / ss) if ss > 0 else float("nan")


#: standardized input values of the MLP probe's splits held at once (float32; ~256 MB): more splits go in chunks
_MLP_CHUNK_VALUES = 6.4e7


def _mlp_probe(name, method, blocks_x, y, splits, *, sweep, fusion, fusion_units, max_epochs, patience,
               weight_decay, batch_size, seed, tick, target_scale="standard"):
    """Best-on-validation MLP predictions (original units) on each split's test samples, with the config."""
    n = len(y)
    lrs = [float(v) for v in sweep["lr"]]
    rates = [float(d) for d in sweep["dropout"]]
    per = len(lrs) * len(rates)
    results = [None] * len(splits)
    # splits in chunks so that the per-split standardized inputs stay under ~256 MB
    width = sum(x.shape[1] for x in blocks_x) if method.transform is None else method.n_components
    chunk = max(1, min(len(splits), int(_MLP_CHUNK_VALUES // max(1, n * width))))
    for a in range(0, len(splits), chunk):
        part = splits[a:a + chunk]
        m = len(part)
        feats = [_features(method, blocks_x, tr, seed) for tr, _, _ in part]
        xs = [np.concatenate([f[b] for f in feats]).astype(np.float32) for b in range(len(feats[0]))]
        # the target scaled on each split's training samples (an affine map: R² is unchanged): to [0, 1]
        # (min-max), or to mean 0 and standard deviation 1 ("standard")
        if target_scale == "standard":
            lo = np.array([y[tr].mean() for tr, _, _ in part])
            sd = np.array([y[tr].std() for tr, _, _ in part])
            span = np.where(sd > 0, sd, 1.0)
        else:
            lo = np.array([y[tr].min() for tr, _, _ in part])
            hi = np.array([y[tr].max() for tr, _, _ in part])
            span = np.where(hi > lo, hi - lo, 1.0)
        ys = np.concatenate([(y - lo[k]) / span[k] for k in range(m)])
        off = (np.arange(m) * n)[:, None]
        tr_idx, tr_w = _pad([tr for tr, _, _ in part])
        va_idx, va_w = _pad([va for _, va, _ in part])
        te_idx, _ = _pad([te for _, _, te in part])
        best_val = np.full(m, np.inf)
        best = [None] * m
        for h in sweep["hidden"]:
            pred, val, _ = _train_group(
                xs, ys, np.repeat(tr_idx + off, per, axis=0), np.repeat(va_idx + off, per, axis=0),
                train_w=np.repeat(tr_w, per, axis=0), val_w=np.repeat(va_w, per, axis=0),
                eval_idx=np.repeat(te_idx + off, per, axis=0),
                lrs=np.tile(np.repeat(lrs, len(rates)), m), hidden=int(h), dropouts=np.tile(rates, m * len(lrs)),
                fusion=fusion, fusion_units=fusion_units, max_epochs=max_epochs, patience=patience,
                weight_decay=weight_decay, seed=_group_seed(seed, f"{name}/{a}", h), batch_size=batch_size,
            )
            pred = pred.reshape(m, per, -1)
            val = val.reshape(m, per)
            for k in range(m):
                if np.isnan(val[k]).all():  # every configuration of this width diverged
                    continue
                j = int(np.nanargmin(val[k]))  # a diverged (NaN) configuration must not hide the valid ones
                if val[k, j] < best_val[k]:
                    best_val[k] = val[k, j]
                    n_te = len(part[k][2])
                    best[k] = (pred[k, j, :n_te] * span[k] + lo[k],
                               dict(lr=lrs[j // len(rates)], hidden=int(h), dropout=rates[j % len(rates)]))
            for _ in range(m):  # the m splits of this chunk, at this width (it counted every split at each chunk)
                tick()
        for k in range(m):
            if best[k] is None:  # every configuration diverged (NaN validation loss): predict the training mean
                tr, _, te = part[k]
                best[k] = (np.full(len(te), y[tr].mean()), dict(lr=float("nan"), hidden=0, dropout=float("nan")))
            results[a + k] = (best[k][0], float(best_val[k] * span[k] ** 2), best[k][1])
    return results


def _holdout_flags(holdout: pd.Series, name: str = "holdout") -> pd.Series:
    """A hold-out Series as booleans: bools (NA: not held out, also in an object Series) or numbers 0/1; else refused.

    A Series of "True"/"False" strings counted every cell as a test cell (a non-empty string is true), and the
    run failed later with "hold-out leaves 0 train cells".
    """
    if isinstance(holdout.dtype, pd.CategoricalDtype) and holdout.cat.categories.dtype.kind in "iuf":
        holdout = holdout.astype(float)  # a category of 0/1 numbers (NaN: not held out), as the numbers are read
    kind = holdout.dtype.kind if isinstance(holdout.dtype, np.dtype) else getattr(holdout.dtype, "kind", "O")
    if kind == "b" or pd.api.types.is_bool_dtype(holdout.dtype):
        return holdout.copy()
    values = holdout.dropna()
    if kind == "O" and all(isinstance(v, (bool, np.bool_)) for v in values):  # True/False/NaN of a .map(...)
        return holdout.astype(object).where(holdout.notna(), False).astype(bool)
    if kind in "iuf" and values.isin([0, 1]).all():
        return holdout.astype(float).fillna(0.0).astype(bool)
    raise InvalidTypeError(f"{name} must be a boolean Series (True: a test sample), got dtype {holdout.dtype} with "
                           f"values like {list(values.unique()[:3])}; e.g. {name}=(df['split'] == 'test') or "
                           f"{name}=series.map({{'True': True, 'False': False}})")


def _check_pool_rows(pool: pd.DataFrame) -> None:
    """Every pooling row of a labelled sample has a cell and a finite weight >= 0 (refused, naming the rows).

    A ``<NA>`` cell (``embed``'s ``s2_cell`` of a row without a geometry) raised pandas' "cannot convert to
    'uint64'-dtype NumPy array"; a NaN weight dropped the sample with a warning blaming every method.
    """
    from .._geo import describe_labels

    na = pool["cell_id"].isna().to_numpy()
    if na.any():
        raise InvalidInputError(f"pooling has {int(na.sum())} row(s) without a cell_id (None/NaN/<NA>) at index "
                                f"{describe_labels(pool.index, na)}; drop them first (pooling.dropna(subset="
                                "['cell_id'])): a sample whose rows have no cell has no data and is left out")
    w = pd.to_numeric(pool["weight"], errors="coerce").to_numpy(float, na_value=np.nan)
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        raise InvalidInputError(f"pooling has {int(bad.sum())} weight(s) that are missing, not numbers, infinite or "
                                f"negative at index {describe_labels(pool.index, bad)}; a weight is a sample's "
                                "share in a cell (an area, a length, or 1), >= 0")


def _recorded(key: str, value: Any) -> Any:
    """A hold-out region as config.json records it: polygons as WKT in degrees (GeoPandas ones as the area used)."""
    if isinstance(value, (pd.Series, pd.DataFrame)) and hasattr(value, "geom_type"):
        from ._coverage_arg import lnglat_area

        return lnglat_area(value, key).wkt  # str(GeoSeries) was recorded: a truncated repr in its own CRS
    return value.wkt if hasattr(value, "wkt") else value


def evaluate(
    target: pd.Series,
    methods: dict,
    *,
    split: str = "random",
    n_splits: int = 20,
    seed: int = 0,
    holdout: pd.Series | Mapping[str, Any] | None = None,
    block_level: int = 10,
    regions: pd.Series | None = None,
    pooling: pd.DataFrame | None = None,
    probes: str | Sequence[str] = PROBES,
    sweep: dict | None = None,
    fusion: str = "concat",
    fusion_units: int = 64,
    max_epochs: int = 500,
    patience: int = 30,
    weight_decay: float = 0.004,
    batch_size: int = 512,
    target_scale: str = "standard",
    min_known: float = 0.5,
    purge: bool = True,
    progress: bool | None = None,
) -> EvaluationResult:
    """Run the downstream protocol for every method on the same samples and splits.

    Parameters
    ----------
    target : pandas.Series
        The label per sample (original units). Without ``pooling`` the index holds uint64 level-12 cell ids
        (e.g. ``join_labels(...)[col]``); with ``pooling``, any unique sample ids.
    methods : dict
        ``name -> DataFrame``, ``name -> [DataFrame, ...]`` or ``name -> Method``; every table indexed by
        ``cell_id``. Samples that some method cannot represent are dropped for all, with a warning naming the
        methods (``result.config["n_dropped"]``; ``["missing"]``: per method, the samples it has no data for).
    split : {"random", "blocked", "region"}
        ``random``: ``n_splits`` x 60/20/20 of the samples' cells (with ``pooling``, the samples of one
        heaviest cell go to one part together). ``blocked``: whole level-``block_level`` parents of the sample
        cells go to one part (:func:`~geos2vec.evaluate.splits.blocked_splits`). ``region``: every region of
        ``regions`` is the test set in turn, the others train and validate (validation: whole heaviest cells
        with ``pooling``). ``holdout=`` (a mask or :func:`holdout_mask` keywords) is the older one-region form.
    n_splits : int
        Repetitions per split kind (and per region direction).
    seed : int
        Seed of the splits and of the MLP initialisations.
    holdout : pandas.Series or dict, optional
        The test region of a one-region hold-out, overriding ``split``: a boolean Series per sample (index
        as ``target``; missing samples are not test), or keywords of :func:`holdout_mask` applied to the
        samples' representative cells.
    block_level : int
        Level of the blocks of ``split="blocked"``.
    pooling : DataFrame, optional
        Polygon samples: columns ``sample`` (a label of ``target``'s index), ``cell_id``, ``weight``
        (e.g. from :func:`geos2vec.embedding.row_cells`). A sample is the weighted mean of its cells' rows;
        samples whose cells with data carry less than ``min_known`` of their weight are dropped. The
        sample's *representative cell* (for blocks and regions) is its heaviest cell.
    regions : pandas.Series, optional
        A region label per sample (index as ``target``), for ``split="region"``.
    probes : sequence of {"ridge", "mlp"}
        The probes to fit (a single name is accepted too).
    sweep, fusion, fusion_units, max_epochs, patience, weight_decay, batch_size
        The MLP probe (:data:`DEFAULT_SWEEP` by default; chosen per split on validation MSE).
    target_scale : {"standard", "minmax"}
        How the MLP probe's target is scaled on each split's training samples before training (predictions
        are mapped back; R² is unchanged by the map itself): ``"standard"`` (default) to mean 0 and standard
        deviation 1; ``"minmax"`` (before 0.3) to [0, 1], which squeezes a heavy-tailed target such as income
        into a narrow band and left the MLP below ridge (docs/evaluate.md).
    min_known : float
        With ``pooling``: the share (in [0, 1]) of a sample's weight its cells with data must carry in every method.
    purge : bool
        With ``pooling`` and a spatial split (``blocked``, ``region``, ``holdout``): leave out of each split's
        training and validation samples every sample that shares a level-12 cell with one of its test samples
        (a polygon goes to the block of its heaviest cell, so its other cells can lie in another part; without
        this, a test tract's neighbour in training pools some of the same cells). The test samples are not
        changed, so the comparison stays paired. ``result.config["purged"]``: samples left out per split kind,
        on average over the repetitions.
    progress : bool, optional
        Show a progress bar (default: the ``progress`` option, :func:`geos2vec.set_options`).

    Returns
    -------
    EvaluationResult
        Scores and test predictions of every (split, repetition, method, probe), and the configuration
        (``result.config``: the parameters, ``n_samples``, ``n_dropped``, split sizes, block widths).

    Raises
    ------
    TypeError
        ``target`` is not a Series, or a method's table is invalid.
    ValueError
        Invalid ``methods``, ``probes``, ``sweep``, ``pooling`` or ``regions``, an unknown ``split``, fewer
        than 10 usable samples, or splits that cannot be made from them.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    if not isinstance(target, pd.Series):
        raise InvalidTypeError(f"target must be a pandas Series indexed by sample (cell) id, got "
                               f"{type(target).__name__}{foreign_frame(target, series=True)}")
    if not isinstance(methods, dict) or not methods:
        raise InvalidInputError("methods must be a non-empty dict name -> table(s)")
    probes = [probes] if isinstance(probes, str) else list(probes)
    bad = [p for p in probes if p not in PROBES]
    if bad or not probes:
        raise InvalidInputError(f"probes must be a non-empty subset of {list(PROBES)}, got {probes}")
    if target_scale not in TARGET_SCALES:
        raise InvalidInputError(f"target_scale must be one of {list(TARGET_SCALES)}, got {target_scale!r}")
    _show(progress)  # an invalid progress (progress="no" showed the bar) is refused before the work
    from .inputs import _check_seed

    seed = _check_seed(seed)
    sweep = _check_mlp_options({**DEFAULT_SWEEP, **(sweep or {})}, fusion=fusion, fusion_units=fusion_units,
                               max_epochs=max_epochs, patience=patience, batch_size=batch_size,
                               weight_decay=weight_decay, mlp="mlp" in probes)
    if holdout is not None and not isinstance(holdout, (Mapping, pd.Series)):  # holdout_mask(**"CA"): a TypeError
        raise InvalidTypeError(f"holdout= takes a boolean Series (True: a test sample) or a dict of holdout_mask "
                               f"keywords, e.g. holdout={{'bbox': (min_lon, min_lat, max_lon, max_lat)}}; got "
                               f"{type(holdout).__name__} {holdout!r:.60}")
    if isinstance(holdout, Mapping) and not set(holdout) <= {"bbox", "polygon", "lon", "side"}:
        raise InvalidInputError(f"holdout= takes a boolean Series or the keywords bbox, polygon, lon, side: {holdout}")
    if isinstance(min_known, (bool, np.bool_)) or not isinstance(min_known, (int, float, np.integer, np.floating)) \
            or not 0 <= min_known <= 1:  # 50 (meant as %) dropped every sample: "'m' lacks 75 of 75", no argument
        raise InvalidInputError(f"min_known is the share of a sample's weight that must have data, a number in [0, 1]; "
                                f"got {min_known!r} (for 50 %: min_known=0.5)")
    if regions is not None and not isinstance(regions, pd.Series):  # an array: "'numpy.ndarray' has no attribute"
        raise InvalidTypeError(f"regions must be a pandas Series of region labels indexed like target (its sample "
                               f"ids), got {type(regions).__name__}; e.g. pd.Series(labels, index=target.index)")
    kind = "holdout" if holdout is not None else split
    try:
        y_all = target.astype(float)
    except (ValueError, TypeError) as exc:  # NumPy's "could not convert string to float: 'low'" named no argument
        raise InvalidTypeError(
            f"target must be numbers (the probes are regressions), got dtype {target.dtype} ({exc}); encode a "
            "category first, e.g. (target == 'high').astype(float), or pd.to_numeric(target, errors='coerce') to "
            "leave out the values that are not numbers") from None
    y_all = y_all[np.isfinite(y_all.to_numpy())]
    if not y_all.index.is_unique:
        raise InvalidInputError("target has duplicate sample ids; aggregate them first (join_labels for point labels)")
    if pooling is None:
        y_all.index = _cell_id_index(y_all.index, "target needs S2 cell ids (join_labels) unless pooling= is given")
        y_all = y_all.sort_index(kind="stable")  # the splits follow the samples, not the rows' order
        samples = y_all.index.to_numpy()
        pool = pd.DataFrame({"sample": samples, "cell_id": samples, "weight": 1.0})
    else:
        missing = {"sample", "cell_id", "weight"} - set(pooling.columns)
        if missing:
            raise InvalidInputError(f"pooling needs columns sample, cell_id, weight; missing {sorted(missing)}")
        pool = pooling[pooling["sample"].isin(y_all.index)]
        _check_pool_rows(pool)
        y_all = y_all[y_all.index.isin(pool["sample"].unique())]
        with suppress(TypeError):  # one order whatever the rows' (same splits and sums); mixed-type ids: as given
            y_all, pool = y_all.sort_index(kind="stable"), pool.sort_values(["sample", "cell_id"], kind="stable")
    methods = {name: _as_method(spec, name) for name, spec in methods.items()}

    sample_pos = y_all.index.get_indexer(pool["sample"])
    pool_cell = _as_cells(pool["cell_id"].to_numpy(np.uint64)).ravel()
    pool_w = pool["weight"].to_numpy(float)
    n_all = len(y_all)
    pooled, ok, lacking, notes = {}, np.ones(n_all, bool), {}, {}
    for name, method in methods.items():
        pooled[name], has = [], np.ones(n_all, bool)
        for b in method.blocks:
            x, share = _pool(b, sample_pos, pool_cell, pool_w, n_all)
            has &= share >= (1.0 if pooling is None else min_known)
            pooled[name].append(x)
        ok &= has
        if not has.all():  # said by name: a table of your own lacking half the cells shrank every method's samples
            lacking[name] = int((~has).sum())
            notes[name] = _level_note(method.blocks, pool_cell[~has[sample_pos]])  # e.g. samples of another level
    keep = np.flatnonzero(ok)
    n = len(keep)
    if n < 10:
        raise InvalidInputError(f"only {n} samples have a target and data in every method; need at least 10"
                                + "".join(f"; {k!r} lacks {v} of {n_all}{notes[k]}"
                                          for k, v in lacking.items()))
    if lacking:
        warn(f"{n_all - n} of {n_all} samples are left out for every method, so all are scored on the same {n}: no "
             "data for them in " + ", ".join(f"{k!r} ({v})" for k, v in lacking.items())
             + " (result.config['missing'])" + "".join(f"; {k!r}{t}" for k, t in notes.items()  # each note once
                                                       if t and k == next(m for m in notes if notes[m] == t)),
             Geos2VecWarning)
    y = y_all.to_numpy()[keep]
    sample_ids = y_all.index.to_numpy()[keep]
    pooled = {k: [x[keep] for x in v] for k, v in pooled.items()}
    # representative cell of each sample: its heaviest cell
    heavy = pool.assign(_pos=sample_pos).sort_values("weight", ascending=False, kind="stable").drop_duplicates("_pos")
    rep_cell = pd.Series(heavy["cell_id"].to_numpy(np.uint64), index=heavy["_pos"].to_numpy()).reindex(keep).to_numpy()

    mask = None
    if kind == "holdout":
        if isinstance(holdout, pd.Series):
            hm = _holdout_flags(holdout)
            if pooling is None:
                hm.index = _cell_id_index(hm.index, "holdout: index it by the target's sample ids (cell ids)")
            mask = hm.reindex(sample_ids).fillna(False).to_numpy(dtype=bool)
        else:
            mask = holdout_mask(rep_cell, **holdout)
    reg = None
    if regions is not None:
        reg = regions.copy()
        if pooling is None:
            reg.index = _cell_id_index(reg.index, "regions: index it by the target's sample ids (cell ids)")
        reg = reg.reindex(sample_ids)
        if reg.isna().any():
            raise InvalidInputError(f"regions has no label for {int(reg.isna().sum())} evaluated samples; index it "
                                    "by the target's sample ids (cell ids, or a pooling's sample numbers)")
        reg = reg.to_numpy()
    fine = int(np.min(get_level(rep_cell))) if kind == "blocked" and rep_cell.size else 30
    if kind == "blocked" and _check_level(block_level, "block_level") > fine:  # cell_to_parent named no block_level
        raise InvalidInputError(f"block_level={block_level} is finer than the samples' cells (level {fine}): a block "
                                f"is a parent cell of the samples, so block_level must be at most {fine}")
    groups = cell_to_parent(rep_cell, _check_level(block_level, "block_level")) if kind == "blocked" else None
    split_sets = _split_groups(kind, n, n_splits=n_splits, seed=seed, groups=groups, regions=reg, holdout_mask_=mask,
                               cells=rep_cell if pooling is not None else None)  # a cell's samples together
    purged = {}
    if purge and pooling is not None and kind != "random":
        at = np.full(n_all, -1)
        at[keep] = np.arange(n)
        pos = at[sample_pos]
        split_sets, purged = purge_shared_cells(split_sets, pos[pos >= 0], pool_cell[pos >= 0])
    check_test_sets(y, split_sets)
    ids = split_ids(split_sets, sample_ids)

    # single-block, unscaled methods whose rows are exact one-hots (region one-hot of point samples)
    onehot = {}
    for name, method in methods.items():
        x = pooled[name][0]
        if len(method.blocks) == 1 and not method.scale[0] and method.transform is None and (
                np.isin(x, (0.0, 1.0)).all() and (x.sum(axis=1) == 1).all()):
            onehot[name] = x.argmax(axis=1)
    rows, preds = [], []
    n_ticks = sum(len(s) for s in split_sets.values()) * len(methods) * (("ridge" in probes)
                                                                          + ("mlp" in probes) * len(sweep["hidden"]))

    def record(split_name, k, name, probe, te, p, val_mse, extra):
        t, (tr, va, _) = y[te], split_sets[split_name][k]
        rows.append(dict(split=split_name, rep=k, method=name, probe=probe, n_cells=n, n_test=len(te),
                         n_fit=len(tr) + len(va), split_id=ids[split_name][k], r2=_r2(t, p),
                         mae=float(np.mean(np.abs(t - p))), val_mse=val_mse, **extra))
        preds.append(pd.DataFrame({"split": split_name, "rep": k, "method": name, "probe": probe,
                                   "sample": sample_ids[te], "y_true": t, "y_pred": p}))

    # closed when interrupted too (Ctrl-C in a notebook: an open bar pushed every later bar down a line)
    with tqdm(total=n_ticks, desc=f"evaluate {target.name} ({kind})", disable=not _show(progress)) as bar:
        for split_name, splits in split_sets.items():
            for name, method in methods.items():
                if "ridge" in probes:
                    groups = onehot.get(name)
                    for k, (tr, va, te) in enumerate(splits):
                        if groups is not None:  # a centred one-hot: the same ridge, solved in O(groups)
                            p, val_mse, alpha = ridge_onehot_probe(groups, y, tr, va, te)
                        else:
                            p, val_mse, alpha = ridge_probe(np.hstack(_features(method, pooled[name], tr, seed)),
                                                            y, tr, va, te)
                        record(split_name, k, name, "ridge", te, p, val_mse, {"alpha": alpha})
                        bar.update(1)
                if "mlp" in probes:
                    bar.set_postfix_str(f"{split_name} {name} mlp")
                    res = _mlp_probe(name, method, pooled[name], y, splits, sweep=sweep, fusion=fusion,
                                     fusion_units=fusion_units, max_epochs=max_epochs, patience=patience,
                                     weight_decay=weight_decay, batch_size=batch_size, seed=seed,
                                     tick=lambda: bar.update(1), target_scale=target_scale)
                    for k, ((_, _, te), (p, val_mse, cfg)) in enumerate(zip(splits, res)):
                        record(split_name, k, name, "mlp", te, p, val_mse, cfg)
    config = dict(
        split=kind, n_splits=n_splits, seed=seed, block_level=int(block_level) if kind == "blocked" else None,
        holdout=None if holdout is None else (
            "mask" if isinstance(holdout, pd.Series) else {k: _recorded(k, v) for k, v in holdout.items()}),
        probes=probes, sweep=sweep if "mlp" in probes else None, fusion=fusion, fusion_units=fusion_units,
        max_epochs=max_epochs, patience=patience, weight_decay=weight_decay, batch_size=batch_size,
        target_scale=target_scale, n_samples=n, n_dropped=int(len(target) - n), missing=lacking,
        split_sizes={s: [int(np.mean([len(p[i]) for p in v])) for i in range(3)] for s, v in split_sets.items()},
        pooled=pooling is not None, purged=purged, methods=method_widths(methods),  # widths after PCA / projection
    )
    return EvaluationResult(
        scores=pd.DataFrame(rows), predictions=pd.concat(preds, ignore_index=True), target=str(target.name),
        config=config, wall_time_s=time.perf_counter() - t0, n_cells=n,
    )
