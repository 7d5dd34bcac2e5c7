"""Downstream evaluation: the S2Vec paper's MLP protocol, baselines, geographic hold-out, report.

The protocol (S2Vec paper, section 5):

1. point labels are joined to level-12 cells (:func:`join_labels`); several
   points in a cell give the **median** label;
2. the target is min-max scaled to [0, 1] over all evaluated cells (an affine
   map: R² is the same in scaled and original units, MAE is reported in both);
3. every *method* is a list of cell-indexed tables (embedding "blocks"), fused
   by a :mod:`geos2vec.fusion` layer and fed to a 2-layer MLP
   (``Dense(hidden, relu) -> Dropout -> Dense(1)``) trained with MSE and
   AdamW on the full training set each step (full batch);
4. per split, a sweep over learning rate x hidden units x dropout is trained;
   each run stops early on validation loss (best weights restored) and the
   configuration with the lowest validation loss is scored on the test cells;
5. N random 60/20/20 splits (default 20, seeded), or a geographic hold-out
   (:func:`holdout_mask`: test on a bbox / polygon / side of a longitude,
   train and validate on the rest); R² and MAE, mean ± std across splits.

Speed: all splits and dropout rates of one (learning rate, hidden units) pair
are trained at once as independent "heads" of one batched Keras model (each
head has its own weights, its own training mask and its own early stopping;
AdamW is per-parameter, so this is exactly the same as training them one by
one). :func:`build_mlp` is the equivalent plain Keras model of a single head.

Any embedding table is a method: a pandas DataFrame indexed by uint64 level-12
cell ids named ``cell_id`` with float columns, e.g. an S2Vec embedding table.
``methods={"S2Vec": emb, "S2Vec-Loc": [emb, loc]}`` evaluates it alone and
fused with a location encoding.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .cells import _as_cells, cell_polygons, cell_to_latlng, check_latlng, latlng_to_cell

LEVEL = 12
DEFAULT_SWEEP = {"lr": [3e-3, 1e-2], "hidden": [64, 256], "dropout": [0.0, 0.3]}
_LAT_NAMES = ("latitude", "lat")
_LNG_NAMES = ("longitude", "lon", "lng", "long")


# ------------------------------------------------------------------ labels
def _find_column(columns, wanted, candidates, what):
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{what} column {wanted!r} not found; columns are {list(columns)}")
        return wanted
    lowered = {str(c).lower(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    raise ValueError(f"no {what} column found (looked for {list(candidates)}); pass it explicitly")


def join_labels(labels, target: str, *, lat: str | None = None, lng: str | None = None, level: int = LEVEL):
    """Aggregate point labels to S2 cells: the median label per cell.

    Parameters
    ----------
    labels : pandas.DataFrame or geopandas.GeoDataFrame
        One row per labelled point: either latitude/longitude columns (degrees;
        found by name - ``latitude``/``lat``, ``longitude``/``lon``/``lng`` -
        or given with ``lat=``/``lng=``) or point geometries (any CRS; a missing
        CRS raises).
    target : str
        Numeric column to aggregate.
    level : int
        Cell level (12, the S2Vec level, by default).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``cell_id`` (uint64, sorted), columns ``target`` (the median
        of the points in the cell) and ``n_points``. Rows whose target is
        missing are not used; their number is in ``result.attrs["n_missing_target"]``.
    """
    if not isinstance(labels, pd.DataFrame):
        raise TypeError(f"labels must be a pandas DataFrame or GeoDataFrame, got {type(labels).__name__}")
    if len(labels) == 0:
        raise ValueError("labels is empty")
    if target not in labels.columns:
        raise ValueError(f"target column {target!r} not found; columns are {list(labels.columns)}")
    y = labels[target]
    if not pd.api.types.is_numeric_dtype(y):
        raise TypeError(f"target column {target!r} must be numeric, got dtype {y.dtype}")
    y = y.to_numpy(dtype=float)
    try:
        import geopandas as gpd
    except ImportError:  # pragma: no cover
        gpd = None
    if gpd is not None and isinstance(labels, gpd.GeoDataFrame) and lat is None and lng is None:
        from ._geo import as_geoseries, check_missing, representative_lnglat, to_wgs84

        geoms = to_wgs84(as_geoseries(labels, "labels"), "labels")
        check_missing(geoms, "raise", "labels")
        lngs, lats = representative_lnglat(geoms)
    else:
        lat_col = _find_column(labels.columns, lat, _LAT_NAMES, "latitude")
        lng_col = _find_column(labels.columns, lng, _LNG_NAMES, "longitude")
        lats = pd.to_numeric(labels[lat_col], errors="raise").to_numpy(dtype=float)
        lngs = pd.to_numeric(labels[lng_col], errors="raise").to_numpy(dtype=float)
    lats, lngs = check_latlng(lats, lngs)
    ok = np.isfinite(y)
    cells = latlng_to_cell(lats[ok], lngs[ok], level)
    frame = pd.DataFrame({"cell_id": cells, "y": y[ok]})
    agg = frame.groupby("cell_id", sort=True)["y"].agg(["median", "size"])
    out = pd.DataFrame(
        {target: agg["median"].to_numpy(), "n_points": agg["size"].to_numpy()},
        index=pd.Index(agg.index.to_numpy(dtype=np.uint64), name="cell_id"),
    )
    out.attrs["n_missing_target"] = int((~ok).sum())
    return out


def minmax_scale(y):
    """``(y - min) / (max - min)`` and ``(min, max)``; a constant target raises."""
    y = np.asarray(y, dtype=float)
    lo, hi = float(np.min(y)), float(np.max(y))
    if not hi > lo:
        raise ValueError(f"the target is constant ({lo}); there is nothing to predict")
    return (y - lo) / (hi - lo), (lo, hi)


# ------------------------------------------------------------------ splits
def random_splits(n: int, n_splits: int = 20, fractions=(0.6, 0.2, 0.2), seed: int = 0):
    """``n_splits`` random train/val/test partitions of ``range(n)``.

    Returns a list of ``(train, val, test)`` sorted integer index arrays; split
    ``k`` uses ``numpy.random.default_rng([seed, k])``.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or (fractions <= 0).any() or not math.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {list(fractions)}")
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    if n_train < 2 or n_val < 1 or n - n_train - n_val < 1:
        raise ValueError(f"{n} cells are too few for a {list(fractions)} split; need at least a handful per part")
    out = []
    for k in range(n_splits):
        perm = np.random.default_rng([seed, k]).permutation(n)
        out.append((np.sort(perm[:n_train]), np.sort(perm[n_train : n_train + n_val]), np.sort(perm[n_train + n_val :])))
    return out


def holdout_mask(cells, *, bbox=None, polygon=None, lon=None, side: str = "east"):
    """Cells whose centroid lies in the hold-out region (the test region).

    Exactly one of:

    bbox : (min_lon, min_lat, max_lon, max_lat)
    polygon : shapely (Multi)Polygon in EPSG:4326 lon/lat
    lon : float, with ``side`` "east" (test = centroid longitude >= lon) or "west"
    """
    given = [v is not None for v in (bbox, polygon, lon)]
    if sum(given) != 1:
        raise ValueError("give exactly one of bbox=, polygon=, lon= for the hold-out region")
    lat, lng = cell_to_latlng(_as_cells(cells).ravel())
    if bbox is not None:
        b = [float(v) for v in bbox]
        if len(b) != 4 or b[0] > b[2] or b[1] > b[3]:
            raise ValueError(f"bbox must be (min_lon, min_lat, max_lon, max_lat), got {bbox}")
        return (lng >= b[0]) & (lng <= b[2]) & (lat >= b[1]) & (lat <= b[3])
    if polygon is not None:
        import shapely

        if not isinstance(polygon, (shapely.Polygon, shapely.MultiPolygon)):
            raise TypeError(f"polygon must be a shapely Polygon/MultiPolygon, got {type(polygon).__name__}")
        return shapely.contains_xy(polygon, lng, lat)
    if side not in ("east", "west"):
        raise ValueError(f"side must be 'east' or 'west', got {side!r}")
    return lng >= float(lon) if side == "east" else lng < float(lon)


def holdout_splits(test_mask, n_splits: int = 20, val_fraction: float = 0.25, seed: int = 0):
    """Geographic hold-out: test = ``test_mask``; the rest is split train/val at random.

    Returns ``n_splits`` ``(train, val, test)`` index arrays (same test set,
    different validation sets and MLP initialisations).
    """
    test_mask = np.asarray(test_mask, dtype=bool)
    test = np.flatnonzero(test_mask)
    rest = np.flatnonzero(~test_mask)
    n_val = int(round(val_fraction * len(rest)))
    if len(test) < 1 or n_val < 1 or len(rest) - n_val < 2:
        raise ValueError(
            f"hold-out leaves {len(test)} test and {len(rest)} train/val cells; both sides need cells"
        )
    out = []
    for k in range(n_splits):
        perm = np.random.default_rng([seed, k]).permutation(rest)
        out.append((np.sort(perm[n_val:]), np.sort(perm[:n_val]), test))
    return out


# --------------------------------------------------------------- baselines
def _check_table(table, name):
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame indexed by cell_id, got {type(table).__name__}")
    if table.shape[1] == 0 or len(table) == 0:
        raise ValueError(f"{name} is empty (shape {table.shape})")
    if not table.index.is_unique:
        raise ValueError(f"{name} has duplicate cell ids in its index; aggregate them first")
    values = table.to_numpy()
    if not np.issubdtype(values.dtype, np.number):
        raise TypeError(f"{name} must have numeric columns only, got dtypes {sorted(set(map(str, table.dtypes)))}")
    if not np.isfinite(values.astype(float)).all():
        raise ValueError(f"{name} contains NaN or inf; fill or drop those cells first")
    try:
        index = pd.Index(np.asarray(table.index, dtype=np.uint64), name="cell_id")
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{name} must be indexed by uint64 cell ids") from exc
    out = pd.DataFrame(values.astype(np.float64), index=index, columns=[str(c) for c in table.columns])
    return out


def count_table_from_points(points, category: str = "fclass", level: int = LEVEL) -> pd.DataFrame:
    """Per-cell counts of each value of ``category`` of point geometries (a crosstab).

    A stop-gap for :func:`geos2vec.features.count_features` (used instead when
    that exists): POIs -> level-``level`` cells -> one count column per category.
    """
    from ._geo import as_geoseries, representative_lnglat, to_wgs84

    geoms = to_wgs84(as_geoseries(points, "points"), "points")
    if category not in points.columns:
        raise ValueError(f"category column {category!r} not found; columns are {list(points.columns)}")
    lng, lat = representative_lnglat(geoms)
    ok = np.isfinite(lat) & np.isfinite(lng)
    cells = latlng_to_cell(lat[ok], lng[ok], level)
    cats = points[category].astype(str).to_numpy()[ok]
    table = pd.crosstab(pd.Index(cells, name="cell_id"), pd.Index(cats, name=None)).astype(np.float64)
    table.index = pd.Index(table.index.to_numpy(dtype=np.uint64), name="cell_id")
    table.columns = [str(c) for c in table.columns]
    return table


def normalized_counts(counts: pd.DataFrame, log1p: bool = True) -> pd.DataFrame:
    """Counts standardized per channel with :class:`geos2vec.FeatureStats` (fit on the whole table).

    ``log1p=True`` (default) standardizes ``log(1 + count)``, the normalization the S2Vec model's input uses
    (``FeatureStats.fit(table, log1p=True)``, ``S2VecConfig.log_counts``); ``log1p=False`` z-scores the raw
    counts.
    """
    from .normalize import FeatureStats

    counts = _check_table(counts, "counts")
    if log1p and (counts.to_numpy() < 0).any():
        raise ValueError("log1p normalization needs counts >= 0; pass log1p=False for signed features")
    z = FeatureStats.fit(counts, log1p=bool(log1p)).transform(counts)
    return pd.DataFrame(np.asarray(z, dtype=np.float64), index=counts.index, columns=counts.columns)


def pca_embedding(table: pd.DataFrame, n_components: int = 256) -> pd.DataFrame:
    """PCA (centred SVD) of ``table`` to ``min(n_components, n_rows, n_cols)`` dims."""
    table = _check_table(table, "table")
    x = table.to_numpy()
    x = x - x.mean(axis=0)
    k = int(min(n_components, x.shape[0], x.shape[1]))
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    z = u[:, :k] * s[:k]
    return pd.DataFrame(z, index=table.index, columns=[f"pc{i}" for i in range(k)])


def random_projection(table: pd.DataFrame, n_components: int = 256, seed: int = 0) -> pd.DataFrame:
    """Gaussian random projection ``x @ G / sqrt(n_components)``, ``G ~ N(0, 1)`` seeded."""
    table = _check_table(table, "table")
    g = np.random.default_rng(seed).standard_normal((table.shape[1], n_components))
    z = table.to_numpy() @ g / np.sqrt(n_components)
    return pd.DataFrame(z, index=table.index, columns=[f"rp{i}" for i in range(n_components)])


# ------------------------------------------------------------------ the MLP
def build_mlp(input_dims, hidden: int = 64, dropout: float = 0.0, fusion: str = "concat", fusion_units: int = 64):
    """The downstream 2-layer MLP as a plain Keras model (one configuration).

    ``inputs (one per block) -> fusion -> Dense(hidden, relu) -> Dropout(dropout) -> Dense(1)``.
    The harness trains many of these at once (see the module docstring); this
    model is the reference for one of them.
    """
    import keras

    from .fusion import fusion_layer

    inputs = [keras.Input((int(d),), name=f"block{i}") for i, d in enumerate(input_dims)]
    x = inputs[0] if len(inputs) == 1 else fusion_layer(fusion, units=fusion_units)(inputs)
    x = keras.layers.Dense(hidden, activation="relu", name="hidden")(x)
    x = keras.layers.Dropout(dropout)(x)
    out = keras.layers.Dense(1, name="out")(x)
    return keras.Model(inputs, out)


_PARALLEL = []


def _parallel_mlp_class():
    if _PARALLEL:
        return _PARALLEL[0]
    import keras
    from keras import ops

    from .fusion import fusion_layer

    class ParallelMLP(keras.layers.Layer):
        """``heads`` independent copies of :func:`build_mlp`; output (heads, batch)."""

        def __init__(self, input_dims, heads, hidden, dropouts, fusion, fusion_units, seed, **kwargs):
            super().__init__(**kwargs)
            self.heads = heads
            self.hidden = hidden
            self.rates = np.asarray(dropouts, dtype="float32")
            self.fuse = None if len(input_dims) == 1 else fusion_layer(fusion, units=fusion_units, heads=heads)
            d = sum(input_dims) if fusion == "concat" or len(input_dims) == 1 else (
                fusion_units if fusion == "project" else input_dims[0]
            )
            lim1 = math.sqrt(6.0 / (d + hidden))
            lim2 = math.sqrt(6.0 / (hidden + 1))
            init = keras.initializers.RandomUniform
            self.w1 = self.add_weight(shape=(heads, d, hidden), initializer=init(-lim1, lim1, seed=seed), name="w1")
            self.b1 = self.add_weight(shape=(heads, 1, hidden), initializer="zeros", name="b1")
            self.w2 = self.add_weight(shape=(heads, hidden, 1), initializer=init(-lim2, lim2, seed=seed + 1), name="w2")
            self.b2 = self.add_weight(shape=(heads, 1, 1), initializer="zeros", name="b2")
            self.seed_gen = keras.random.SeedGenerator(seed + 2)

        def call(self, xs, training=False):
            x = xs[0] if self.fuse is None else self.fuse(list(xs))
            eq = "nd,mdh->mnh" if len(x.shape) == 2 else "mnd,mdh->mnh"
            h = ops.relu(ops.einsum(eq, x, self.w1) + self.b1)
            if training and float(self.rates.max()) > 0:
                rates = ops.convert_to_tensor(self.rates)[:, None, None]
                keep = ops.cast(keras.random.uniform(ops.shape(h), seed=self.seed_gen) >= rates, h.dtype)
                h = h * keep / (1.0 - rates)
            return ops.squeeze(ops.matmul(h, self.w2) + self.b2, -1)  # (heads, batch)

    _PARALLEL.append(ParallelMLP)
    return ParallelMLP


def _adamw_step(variables, grads, moments, velocities, step, lr_heads, weight_decay, beta_1=0.9, beta_2=0.999,
                epsilon=1e-7):
    """One Keras-``AdamW`` update with a learning rate per head (leading axis of every variable)."""
    import tensorflow as tf

    t = tf.cast(step, tf.float32)
    corr = tf.sqrt(1.0 - tf.pow(beta_2, t)) / (1.0 - tf.pow(beta_1, t))
    for v, g, m, s in zip(variables, grads, moments, velocities):
        lr = tf.reshape(lr_heads, [-1] + [1] * (len(v.shape) - 1))
        v.assign(v - v * weight_decay * lr)  # decoupled weight decay, applied first as keras.optimizers.AdamW does
        m.assign_add((g - m) * (1.0 - beta_1))
        s.assign_add((tf.square(g) - s) * (1.0 - beta_2))
        v.assign_sub(m * (lr * corr) / (tf.sqrt(s) + epsilon))


class _GroupTrainer:
    """Training state of a set of heads, with a TensorFlow graph that runs up to ``k`` epochs."""

    def __init__(self, xs_t, y_t, state, *, lrs, dropouts, train_idx, val_idx, hidden, fusion, fusion_units,
                 patience, weight_decay, batch_size, seed, step, epoch):
        import tensorflow as tf

        heads = len(lrs)
        self.heads = heads
        self.mlp = _parallel_mlp_class()([x.shape[1] for x in xs_t], heads, hidden, dropouts, fusion, fusion_units,
                                         seed)
        self.mlp([x[:2] for x in xs_t])  # build
        self.variables = list(self.mlp.trainable_variables)
        for v, w in zip(self.variables, state["weights"]):
            v.assign(w)
        self.moments = [tf.Variable(w) for w in state["moments"]]
        self.velocities = [tf.Variable(w) for w in state["velocities"]]
        self.best = [tf.Variable(w) for w in state["best"]]
        self.best_val = tf.Variable(np.asarray(state["best_val"], np.float32))
        self.wait = tf.Variable(np.asarray(state["wait"], np.int32))
        self.best_epoch = tf.Variable(np.asarray(state["best_epoch"], np.int32))
        self.stopped = tf.Variable(tf.zeros([heads], tf.bool))
        self.step = tf.Variable(int(step), dtype=tf.int64)
        self.epoch = tf.Variable(int(epoch), dtype=tf.int32)
        gen = tf.random.Generator.from_seed(seed)
        lr_t = tf.constant(np.asarray(lrs, np.float32))
        tr_t = tf.constant(np.asarray(train_idx, np.int32))
        va_t = tf.constant(np.asarray(val_idx, np.int32))
        y_va = tf.gather(y_t, va_t)
        n_tr = tr_t.shape[1]
        n_steps = max(1, int(round(n_tr / batch_size)))
        per_step = n_tr // n_steps  # equal batches; the < n_steps left-over rows differ each epoch
        mlp, variables = self.mlp, self.variables

        def forward(idx, training):  # idx (heads, rows) -> predictions (heads, rows)
            return mlp([tf.gather(x, idx) for x in xs_t], training=training)

        def train_step(idx):
            yb = tf.gather(y_t, idx)
            with tf.GradientTape() as tape:
                per_head = tf.reduce_mean(tf.square(forward(idx, True) - yb), axis=1)
                loss = tf.reduce_sum(per_head)  # heads are independent: d loss / d head = d its own MSE
            grads = tape.gradient(loss, variables)
            self.step.assign_add(1)
            _adamw_step(variables, grads, self.moments, self.velocities, self.step, lr_t, weight_decay)

        def one_epoch():
            if n_steps == 1:
                train_step(tr_t)
            else:
                order = tf.argsort(gen.uniform([heads, n_tr]), axis=1)[:, : n_steps * per_step]
                batches = tf.reshape(tf.gather(tr_t, order, batch_dims=1), [heads, n_steps, per_step])
                for s in tf.range(n_steps):
                    train_step(batches[:, s])
            self.epoch.assign_add(1)
            val = tf.reduce_mean(tf.square(forward(va_t, False) - y_va), axis=1)
            improved = tf.logical_and(val < self.best_val, tf.logical_not(self.stopped))
            self.best_val.assign(tf.where(improved, val, self.best_val))
            self.best_epoch.assign(tf.where(improved, self.epoch, self.best_epoch))
            self.wait.assign(tf.where(improved, 0, self.wait + 1))
            self.stopped.assign(tf.logical_or(self.stopped, self.wait >= patience))
            for v, b in zip(variables, self.best):
                b.assign(tf.where(tf.reshape(improved, [heads] + [1] * (len(v.shape) - 1)), v, b))

        @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
        def run(n_epochs):
            done = tf.constant(0)
            while done < n_epochs and not tf.reduce_all(self.stopped):
                one_epoch()
                done += 1
            return done

        self.run = run

    def state(self):
        return {
            "weights": [v.numpy() for v in self.variables], "moments": [v.numpy() for v in self.moments],
            "velocities": [v.numpy() for v in self.velocities], "best": [v.numpy() for v in self.best],
            "best_val": self.best_val.numpy(), "wait": self.wait.numpy(), "best_epoch": self.best_epoch.numpy(),
        }


def _train_group(xs, y, train_idx, val_idx, *, lrs, hidden, dropouts, fusion, fusion_units, max_epochs, patience,
                 weight_decay, seed, batch_size=512, chunk=20, compact=0.7, on_epochs=None):
    """Train ``heads = len(lrs)`` independent MLPs (:func:`build_mlp` each) at once.

    Head ``i`` trains on the cells ``train_idx[i]`` with learning rate
    ``lrs[i]`` and dropout ``dropouts[i]`` (AdamW, MSE) and stops early on its
    mean squared error over ``val_idx[i]``: after ``patience`` epochs without
    a better one, its best weights are kept. An epoch is one pass over the
    head's own training cells, shuffled per head, in ``round(n_train /
    batch_size)`` equal batches (full batch when ``n_train <= 1.5 batch_size``).
    Epochs run inside a TensorFlow graph, ``chunk`` at a time; when the heads
    still training fall to ``compact`` of those in the graph, the stopped ones
    are dropped (a smaller graph is built), so early stopping saves compute.

    Returns
    -------
    pred : ndarray (heads, n)
        Predictions of the restored best weights on all cells.
    best_val : ndarray (heads,)
        Best validation MSE.
    best_epoch : ndarray (heads,)
        Epoch of the best validation MSE (1-based).
    """
    import tensorflow as tf

    heads = len(lrs)
    lrs = np.asarray(lrs, np.float32)
    dropouts = np.asarray(dropouts, np.float32)
    train_idx = np.asarray(train_idx, np.int32)
    val_idx = np.asarray(val_idx, np.int32)
    if train_idx.shape[0] != heads or val_idx.shape[0] != heads or len(dropouts) != heads:
        raise ValueError("train_idx, val_idx, lrs and dropouts need one row/entry per head")
    xs_t = [tf.constant(x, tf.float32) for x in xs]
    y_t = tf.constant(np.asarray(y, np.float32))
    full = _parallel_mlp_class()([x.shape[1] for x in xs], heads, hidden, dropouts, fusion, fusion_units, seed)
    full(xs_t)  # initial weights of every head
    init = [v.numpy() for v in full.trainable_variables]
    final = [w.copy() for w in init]
    final_val = np.full(heads, np.inf)
    final_epoch = np.zeros(heads, np.int32)
    state = {"weights": init, "moments": [np.zeros_like(w) for w in init],
             "velocities": [np.zeros_like(w) for w in init], "best": [w.copy() for w in init],
             "best_val": np.full(heads, np.inf), "wait": np.zeros(heads, np.int32),
             "best_epoch": np.zeros(heads, np.int32)}
    active = np.arange(heads)
    epochs, step, rebuild = 0, 0, 0
    while active.size and epochs < max_epochs:
        trainer = _GroupTrainer(
            xs_t, y_t, state, lrs=lrs[active], dropouts=dropouts[active], train_idx=train_idx[active],
            val_idx=val_idx[active], hidden=hidden, fusion=fusion, fusion_units=fusion_units, patience=patience,
            weight_decay=weight_decay, batch_size=batch_size, seed=seed + 7919 * rebuild, step=step, epoch=epochs,
        )
        rebuild += 1
        while epochs < max_epochs:
            done = int(trainer.run(tf.constant(min(chunk, max_epochs - epochs), tf.int32)))
            epochs += done
            if on_epochs is not None:
                on_epochs(done)
            n_stopped = int(tf.reduce_sum(tf.cast(trainer.stopped, tf.int32)))
            if n_stopped == active.size or active.size - n_stopped <= compact * active.size:
                break
        step = int(trainer.step.numpy())
        state = trainer.state()
        stopped = trainer.stopped.numpy()
        if epochs >= max_epochs:
            stopped[:] = True
        for f, b in zip(final, state["best"]):
            f[active[stopped]] = b[stopped]
        final_val[active[stopped]] = state["best_val"][stopped]
        final_epoch[active[stopped]] = state["best_epoch"][stopped]
        keep = ~stopped
        state = {k: ([w[keep] for w in v] if isinstance(v, list) else v[keep]) for k, v in state.items()}
        active = active[keep]
    for v, w in zip(full.trainable_variables, final):
        v.assign(w)
    pred = np.asarray(full(xs_t, training=False), dtype=np.float64)
    return pred, final_val, final_epoch


# --------------------------------------------------------------- protocol
def _group_seed(seed, name, hidden) -> int:
    """Initialisation seed of one (method, hidden units) group: from the method's name, not its position, so a
    method gets the same result whichever other methods share the run."""
    import zlib

    return int(zlib.crc32(f"{seed}/{name}/{int(hidden)}".encode()) & 0x3FFFFFFF)


def _r2(y, p):
    ss = np.sum((y - np.mean(y)) ** 2)
    return float(1.0 - np.sum((y - p) ** 2) / ss) if ss > 0 else float("nan")


@dataclass
class EvaluationResult:
    """What :func:`evaluate` measured.

    Attributes
    ----------
    scores : DataFrame
        One row per (method, split): ``r2``, ``mae`` (scaled target), ``mae_orig``
        (original units), ``val_mse`` and the chosen ``lr``, ``hidden``, ``dropout``.
    predictions : DataFrame
        Test predictions: ``method, split, cell_id, y_true, y_pred`` (original units).
    target : str
    scale : (min, max) of the target used for min-max scaling.
    config : dict of the protocol parameters.
    wall_time_s : float
    """

    scores: pd.DataFrame
    predictions: pd.DataFrame
    target: str
    scale: tuple
    config: dict = field(default_factory=dict)
    wall_time_s: float = 0.0
    n_cells: int = 0

    def summary(self) -> pd.DataFrame:
        """Method x metric mean and std across splits (methods in evaluation order)."""
        order = list(dict.fromkeys(self.scores["method"]))
        g = self.scores.groupby("method", sort=False)[["r2", "mae", "mae_orig"]]
        out = g.agg(["mean", "std"])
        out.columns = [f"{a}_{b}" for a, b in out.columns]
        out["n_splits"] = self.scores.groupby("method", sort=False).size()
        return out.loc[order]


def _as_blocks(spec, name):
    blocks = [spec] if isinstance(spec, pd.DataFrame) else list(spec)
    if not blocks:
        raise ValueError(f"method {name!r} has no tables")
    return [_check_table(b, f"method {name!r} block {i}") for i, b in enumerate(blocks)]


def evaluate(
    target: pd.Series,
    methods: dict,
    *,
    n_splits: int = 20,
    seed: int = 0,
    holdout=None,
    sweep: dict | None = None,
    fusion: str = "concat",
    fusion_units: int = 64,
    max_epochs: int = 500,
    patience: int = 30,
    weight_decay: float = 0.004,
    batch_size: int = 512,
    progress: bool = True,
) -> EvaluationResult:
    """Run the downstream protocol for every method on the same cells and splits.

    Parameters
    ----------
    target : pandas.Series
        The label per cell (original units), indexed by uint64 cell ids, e.g.
        ``join_labels(...)[col]``.
    methods : dict
        ``name -> DataFrame`` or ``name -> [DataFrame, ...]`` (blocks fused with
        ``fusion``), each indexed by ``cell_id``. Only cells present in the
        target and in **every** table are evaluated (so all methods see the same
        cells and splits); ``result.config["n_dropped_cells"]`` counts the rest.
    n_splits, seed : int
        Number of splits and their seed.
    holdout : None, boolean pandas.Series indexed by cell_id, or dict
        None: random 60/20/20 splits. Otherwise the test region (a mask, or
        keyword arguments of :func:`holdout_mask`); train/val is split 75/25 at
        random from the other cells, ``n_splits`` times.
    sweep : dict
        ``{"lr": [...], "hidden": [...], "dropout": [...]}`` (default
        :data:`DEFAULT_SWEEP`); chosen per split on validation MSE.
    fusion, fusion_units : str, int
        How multi-block methods are fused (:func:`geos2vec.fusion.fusion_layer`).
    max_epochs, patience : int
        Epochs at most; stop after ``patience`` epochs without a better
        validation loss and restore the best weights.
    batch_size : int
        Rows per AdamW step; with at most ``batch_size`` cells each step uses
        the whole training set (full batch). Larger sets are shuffled into
        batches of all cells, each head using its own training cells in them.
    weight_decay : float
        AdamW's decoupled weight decay.
    """
    import keras
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    if not isinstance(target, pd.Series):
        raise TypeError(f"target must be a pandas Series indexed by cell_id, got {type(target).__name__}")
    if not isinstance(methods, dict) or not methods:
        raise ValueError("methods must be a non-empty dict name -> table(s)")
    sweep = {**DEFAULT_SWEEP, **(sweep or {})}
    for key in ("lr", "hidden", "dropout"):
        if not sweep[key]:
            raise ValueError(f"sweep[{key!r}] is empty")
    y_all = target.astype(float)
    y_all.index = pd.Index(np.asarray(y_all.index, dtype=np.uint64), name="cell_id")
    y_all = y_all[np.isfinite(y_all.to_numpy())]
    if not y_all.index.is_unique:
        raise ValueError("target has duplicate cell ids; aggregate with join_labels first")
    blocks = {name: _as_blocks(spec, name) for name, spec in methods.items()}
    cells = y_all.index
    for bl in blocks.values():
        for b in bl:
            cells = cells.intersection(b.index)
    cells = cells.sort_values()
    n_dropped = len(y_all) - len(cells)
    if len(cells) < 10:
        raise ValueError(f"only {len(cells)} cells have a target and a row in every table; need at least 10")
    y_orig = y_all.loc[cells].to_numpy()
    y, (lo, hi) = minmax_scale(y_orig)
    if holdout is None:
        splits = random_splits(len(cells), n_splits, seed=seed)
    else:
        if isinstance(holdout, pd.Series):
            mask = holdout.reindex(pd.Index(np.asarray(holdout.index, dtype=np.uint64))).reindex(cells)
            mask = mask.fillna(False).to_numpy(dtype=bool)
        else:
            mask = holdout_mask(cells.to_numpy(), **holdout)
        splits = holdout_splits(mask, n_splits, seed=seed)
    m = len(splits)
    n = len(cells)
    train_idx = np.stack([tr for tr, _, _ in splits])  # equal sizes across splits by construction
    val_idx = np.stack([va for _, va, _ in splits])
    lrs = [float(v) for v in sweep["lr"]]
    rates = [float(d) for d in sweep["dropout"]]
    per = len(lrs) * len(rates)  # heads per split in one group: head k*per + i*len(rates) + j = (split k, lr i, rate j)
    keras.utils.set_random_seed(seed)
    rows, preds = [], []
    bar = tqdm(total=len(blocks) * len(sweep["hidden"]), desc="evaluate", disable=not progress)
    for name in blocks:
        xs = [b.loc[cells].to_numpy(np.float32) for b in blocks[name]]
        best_val = np.full(m, np.inf)
        best_pred = np.zeros((m, n))
        best_cfg = [None] * m
        for h in sweep["hidden"]:
            count = [0]

            def tick(done, name=name, h=h, count=count):
                count[0] += done
                bar.set_postfix_str(f"{name} hidden={h} epoch {count[0]}")

            tick(0)
            pred, val, _ = _train_group(
                xs, y, np.repeat(train_idx, per, axis=0), np.repeat(val_idx, per, axis=0),
                lrs=np.tile(np.repeat(lrs, len(rates)), m), hidden=int(h), dropouts=np.tile(rates, m * len(lrs)),
                fusion=fusion, fusion_units=fusion_units, max_epochs=max_epochs, patience=patience,
                weight_decay=weight_decay, seed=_group_seed(seed, name, h), batch_size=batch_size, on_epochs=tick,
            )
            pred = pred.reshape(m, per, n)
            val = val.reshape(m, per)
            for k in range(m):
                j = int(np.argmin(val[k]))
                if val[k, j] < best_val[k]:
                    best_val[k] = val[k, j]
                    best_pred[k] = pred[k, j]
                    best_cfg[k] = (lrs[j // len(rates)], int(h), rates[j % len(rates)])
            bar.update(1)
        for k, (_, _, te) in enumerate(splits):
            p = best_pred[k, te]
            t = y[te]
            rows.append(
                dict(method=name, split=k, r2=_r2(t, p), mae=float(np.mean(np.abs(t - p))),
                     mae_orig=float(np.mean(np.abs(t - p))) * (hi - lo), val_mse=float(best_val[k]),
                     lr=best_cfg[k][0], hidden=best_cfg[k][1], dropout=best_cfg[k][2])
            )
            preds.append(pd.DataFrame({
                "method": name, "split": k, "cell_id": cells.to_numpy()[te],
                "y_true": y_orig[te], "y_pred": lo + p * (hi - lo),
            }))
    bar.close()
    config = dict(
        n_splits=m, seed=seed, holdout=None if holdout is None else (
            "mask" if isinstance(holdout, pd.Series) else {k: (v.wkt if hasattr(v, "wkt") else v) for k, v in holdout.items()}
        ),
        sweep=sweep, fusion=fusion, fusion_units=fusion_units, max_epochs=max_epochs, patience=patience,
        weight_decay=weight_decay, batch_size=batch_size, n_cells=n, n_dropped_cells=int(n_dropped),
        methods={k: [b.shape[1] for b in v] for k, v in blocks.items()},
    )
    return EvaluationResult(
        scores=pd.DataFrame(rows), predictions=pd.concat(preds, ignore_index=True), target=str(target.name),
        scale=(lo, hi), config=config, wall_time_s=time.perf_counter() - t0, n_cells=n,
    )


def standard_methods(cells, counts=None, embeddings=None, *, location="theory", location_params=None,
                     pca_dim: int = 256, rp_dim: int = 256, seed: int = 0, log1p: bool = True,
                     raw_counts: bool = False) -> dict:
    """The paper's baselines plus user embeddings, as a ``methods`` dict for :func:`evaluate`.

    Parameters
    ----------
    cells : array_like of uint64
        The labelled cells (location encodings are computed for them).
    counts : DataFrame, optional
        Cell-feature count table (``cell_id`` index, one column per channel).
        Cells of ``cells`` missing from it get zero counts. Gives
        ``counts`` (normalized, see ``log1p``), ``PCA`` and ``random projection``
        of them, and ``counts-Loc``.
    log1p : bool, default True
        Normalize the counts as the S2Vec model normalizes its input:
        ``log(1 + count)``, then standardized per channel. ``False``: raw counts
        standardized (the pre-log1p normalization).
    raw_counts : bool, default False
        Also add ``counts (raw z)``: raw counts standardized, next to the log1p ones.
    embeddings : dict name -> DataFrame, optional
        E.g. ``{"S2Vec": table}``: gives ``S2Vec`` and ``S2Vec-Loc``.
    location : str
        Location encoder of ``location-only`` and the ``-Loc`` fusions
        (:mod:`geos2vec.location`); ``location_params`` its scales.
    """
    from .location import encode_cells

    cells = np.unique(_as_cells(cells).ravel())
    loc = encode_cells(cells, location, **(location_params or {}))
    methods = {}
    if counts is not None:
        counts = _check_table(counts, "counts")
        full = counts.reindex(counts.index.union(pd.Index(cells)), fill_value=0.0)
        full.index.name = "cell_id"
        z = normalized_counts(full, log1p=log1p)
        methods["counts"] = z
        if raw_counts and log1p:
            methods["counts (raw z)"] = normalized_counts(full, log1p=False)
        methods["PCA"] = pca_embedding(z, pca_dim)
        methods["random projection"] = random_projection(z, rp_dim, seed=seed)
    methods["location-only"] = loc
    for name, table in (embeddings or {}).items():
        methods[name] = table
        methods[f"{name}-Loc"] = [table, loc]
    if counts is not None:
        methods["counts-Loc"] = [methods["counts"], loc]
    return methods


def model_embeddings(cells, counts: pd.DataFrame, model="default", modes=("contextual", "patch"),
                     name: str = "S2Vec") -> dict:
    """S2Vec embedding tables of ``cells``, one per mode: ``{"S2Vec (contextual)": table, ...}``.

    ``model`` is ``"default"`` (the bundled pretrained model), a saved model path or a loaded model;
    ``counts`` the ``count_features`` table the model embeds (it must have the model's channels). Labelled
    cells without any feature are embedded in their surroundings (``outside="embed"``); cells whose whole
    image has no features get no row (they are then dropped for every method by :func:`evaluate`).
    """
    import warnings

    from .embed import embed_cells
    from .model import load_model

    if isinstance(model, str) or hasattr(model, "__fspath__"):
        model = load_model(model)
    cells = np.unique(_as_cells(cells).ravel())
    out = {}
    for mode in modes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            emb = embed_cells(cells, counts, model=model, mode=mode, outside="embed")
        emb = emb[np.isfinite(emb.to_numpy(np.float64)).all(axis=1)].astype(np.float64)
        emb.index = pd.Index(emb.index.to_numpy(np.uint64), name="cell_id")
        out[f"{name} ({mode})"] = emb
    return out


# ------------------------------------------------------------------ report
def _fmt(mean, std, digits=3):
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if np.isfinite(std) else f"{mean:.{digits}f}"


def summary_markdown(result: EvaluationResult) -> str:
    """The method x metric table (mean ± std across splits) as markdown."""
    s = result.summary()
    lines = [
        f"| method | R² | MAE (scaled) | MAE ({result.target}) | splits |",
        "|---|---|---|---|---|",
    ]
    for name, r in s.iterrows():
        lines.append(
            f"| {name} | {_fmt(r.r2_mean, r.r2_std)} | {_fmt(r.mae_mean, r.mae_std)} | "
            f"{_fmt(r.mae_orig_mean, r.mae_orig_std, 0)} | {int(r.n_splits)} |"
        )
    return "\n".join(lines)


def write_report(result: EvaluationResult, out, *, title: str = "geos2vec evaluation", extra_config=None) -> Path:
    """Write ``report.md``, CSVs, ``config.json`` and figures to the folder ``out``.

    Figures (matplotlib): ``bar_r2.png`` (R² and MAE per method with ±1 std
    error bars), ``scatter.png`` (predicted vs true test values, all splits),
    ``residuals_map.png`` (mean test residual per cell of the best method).
    Returns the path of ``report.md``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = result.summary()
    result.scores.to_csv(out / "scores.csv", index=False)
    s.to_csv(out / "summary.csv")
    result.predictions.assign(cell_id=result.predictions["cell_id"].astype(str)).to_csv(out / "predictions.csv", index=False)
    config = {**result.config, **(extra_config or {}), "target": result.target, "scale": list(result.scale),
              "wall_time_s": round(result.wall_time_s, 1)}
    (out / "config.json").write_text(json.dumps(config, indent=2, default=str))

    names = list(s.index)
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(names)), 4))
    x = np.arange(len(names))
    for ax, col, label in ((axes[0], "r2", "R² (test)"), (axes[1], "mae", "MAE (scaled target)")):
        ax.bar(x, s[f"{col}_mean"], yerr=s[f"{col}_std"].fillna(0), capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.axhline(0, color="k", lw=0.5)
    fig.suptitle(f"{result.target}: mean ± std over {int(s.n_splits.max())} splits")
    fig.tight_layout()
    fig.savefig(out / "bar_r2.png", dpi=110)
    plt.close(fig)

    cols = min(4, len(names))
    rows_n = int(math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 3.2 * rows_n), squeeze=False)
    lo, hi = result.scale
    for ax, name in zip(axes.ravel(), names):
        p = result.predictions[result.predictions.method == name]
        ax.scatter(p.y_true, p.y_pred, s=4, alpha=0.3)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_title(f"{name} (R² {s.loc[name, 'r2_mean']:.2f})", fontsize=9)
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "scatter.png", dpi=110)
    plt.close(fig)

    best = s["r2_mean"].idxmax()
    p = result.predictions[result.predictions.method == best]
    resid = (p.y_pred - p.y_true).groupby(p.cell_id).mean()
    import geopandas as gpd

    gdf = gpd.GeoDataFrame({"residual": resid.to_numpy()}, geometry=cell_polygons(resid.index.to_numpy(np.uint64)).values,
                           crs="EPSG:4326")
    fig, ax = plt.subplots(figsize=(7, 6))
    vmax = float(np.nanmax(np.abs(gdf.residual))) or 1.0
    gdf.plot(column="residual", cmap="RdBu_r", vmin=-vmax, vmax=vmax, legend=True, ax=ax,
             legend_kwds={"label": f"mean test residual ({result.target})"})
    ax.set_title(f"{best}: predicted - true, averaged over the splits a cell is tested in")
    fig.tight_layout()
    fig.savefig(out / "residuals_map.png", dpi=110)
    plt.close(fig)

    text = [
        f"# {title}",
        "",
        f"Target `{result.target}`: {result.n_cells} level-{LEVEL} cells (median label per cell), min-max scaled "
        f"to [0, 1] from [{lo:g}, {hi:g}]. {int(s.n_splits.max())} splits; "
        + ("random 60/20/20." if result.config.get("holdout") is None else f"geographic hold-out {result.config['holdout']}.")
        + f" Wall time {result.wall_time_s:.0f} s.",
        "",
        summary_markdown(result),
        "",
        "R² is the same on the scaled and the original target (min-max scaling is affine).",
        "",
        "![R² and MAE per method](bar_r2.png)",
        "",
        "![predicted vs true](scatter.png)",
        "",
        "![residual map](residuals_map.png)",
        "",
        "Configuration: `config.json`; per-split scores: `scores.csv`; test predictions: `predictions.csv`.",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(text))
    return path


# --------------------------------------------------------------------- CLI
def _parse_floats(text):
    return [float(v) for v in str(text).split(",") if v.strip()]


def _parse_ints(text):
    return [int(v) for v in str(text).split(",") if v.strip()]


def _read_table(path):
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"error: file not found: {path}")
    if path.suffix in (".parquet", ".pq", ".geoparquet"):
        try:
            import geopandas as gpd

            return gpd.read_parquet(path)
        except (ValueError, KeyError):
            return pd.read_parquet(path)
    if path.suffix in (".csv", ".txt"):
        return pd.read_csv(path)
    import geopandas as gpd

    return gpd.read_file(path)


def _as_cell_table(df, name):
    if "cell_id" in df.columns:
        df = df.set_index("cell_id")
    if df.index.name != "cell_id":
        raise SystemExit(f"error: {name} needs a cell_id column or index (uint64 level-12 cell ids)")
    df = df.select_dtypes("number")
    df.index = pd.Index(np.asarray(df.index, dtype=np.uint64), name="cell_id")
    return df


def _load_counts(paths, category):
    import geopandas as gpd

    tables = []
    for path in paths:
        df = _read_table(path)
        if isinstance(df, gpd.GeoDataFrame):
            lines = bool(df.geom_type.isin(["LineString", "MultiLineString"]).all())
            try:
                from .features import count_features
            except ImportError:  # the features stage is missing: a plain crosstab of the categories
                if lines:
                    raise SystemExit(f"error: {path}: counting roads needs geos2vec.features") from None
                tables.append(count_table_from_points(df, category))
                continue
            tables.append(count_features(roads=df) if lines else count_features(pois=df, category_column=category))
        else:
            tables.append(_as_cell_table(df, str(path)))
    table = pd.concat(tables).fillna(0.0)
    return table.groupby(level=0).sum()


def add_parser(subparsers):
    p = subparsers.add_parser(
        "evaluate",
        help="downstream evaluation: MLP protocol, baselines, report",
        description="Evaluate cell embeddings on a point-label regression task (S2Vec paper protocol).",
    )
    p.add_argument("--config", help="config.json of an earlier run: its options are the defaults")
    p.add_argument("--labels", help="CSV/Parquet/GeoJSON of labelled points")
    p.add_argument("--target", help="numeric label column")
    p.add_argument("--lat", default=None, help="latitude column (default: found by name)")
    p.add_argument("--lon", default=None, help="longitude column (default: found by name)")
    p.add_argument("--features", nargs="*", default=[],
                   help="cell count tables (cell_id + count columns) or POI point files (GeoParquet; counted by --category)")
    p.add_argument("--category", default="fclass", help="category column of POI point files (default fclass)")
    p.add_argument("--embedding", action="append", default=[], metavar="NAME=FILE",
                   help="an embedding table to evaluate (cell_id + float columns), e.g. S2Vec=emb.parquet; repeatable")
    p.add_argument("--model", default="none",
                   help="S2Vec model to embed the labelled cells with: 'default' (the bundled pretrained model), "
                        "a saved model path, or 'none' (default)")
    p.add_argument("--modes", default="contextual,patch",
                   help="embedding modes of --model, each a method 'S2Vec (MODE)' (default contextual,patch)")
    p.add_argument("--log1p", action=argparse.BooleanOptionalAction, default=True,
                   help="normalize counts as log(1 + count) then standardize, as the S2Vec model does (default); "
                        "--no-log1p standardizes raw counts")
    p.add_argument("--raw-counts", action="store_true",
                   help="also evaluate raw standardized counts as 'counts (raw z)' next to the log1p ones")
    p.add_argument("--within", action="append", default=[], metavar="MINLON,MINLAT,MAXLON,MAXLAT",
                   help="keep only labels inside this bbox (repeatable: union)")
    p.add_argument("--holdout-bbox", default=None, metavar="MINLON,MINLAT,MAXLON,MAXLAT", help="test on this region")
    p.add_argument("--holdout-lon", type=float, default=None, help="test on cells east (or --holdout-side west) of this longitude")
    p.add_argument("--holdout-side", default="east", choices=["east", "west"])
    p.add_argument("--holdout-polygon", default=None, help="GeoJSON/GeoParquet file: test on cells inside its union")
    p.add_argument("--splits", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", default=",".join(map(str, DEFAULT_SWEEP["lr"])))
    p.add_argument("--hidden", default=",".join(map(str, DEFAULT_SWEEP["hidden"])))
    p.add_argument("--dropout", default=",".join(map(str, DEFAULT_SWEEP["dropout"])))
    p.add_argument("--max-epochs", type=int, default=500)
    p.add_argument("--patience", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--fusion", default="concat", choices=["concat", "weighted", "project"])
    p.add_argument("--location", default="theory", help="location encoder (wrap, sinusoidal, grid, theory, sphereC, sphereM)")
    p.add_argument("--location-scales", type=int, default=16)
    p.add_argument("--min-radius", type=float, default=1e-4)
    p.add_argument("--max-radius", type=float, default=1.0)
    p.add_argument("--out", default="report", help="output folder (default report/)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
    return p


def _bbox(text):
    vals = _parse_floats(text)
    if len(vals) != 4:
        raise SystemExit(f"error: a bbox needs 4 numbers MINLON,MINLAT,MAXLON,MAXLAT, got {text!r}")
    return vals


def run(args) -> int:
    if args.config:
        saved = json.loads(Path(args.config).read_text()).get("cli", {})
        defaults = vars(add_parser(argparse.ArgumentParser().add_subparsers()).parse_args([]))
        for key, value in saved.items():
            if key in defaults and getattr(args, key) == defaults[key]:
                setattr(args, key, value)
    if not args.labels or not args.target:
        raise SystemExit("error: --labels and --target are required")
    labels = _read_table(args.labels)
    if args.within:
        lat_col = _find_column(labels.columns, args.lat, _LAT_NAMES, "latitude")
        lng_col = _find_column(labels.columns, args.lon, _LNG_NAMES, "longitude")
        keep = np.zeros(len(labels), bool)
        for text in args.within:
            b = _bbox(text)
            keep |= labels[lng_col].between(b[0], b[2]).to_numpy() & labels[lat_col].between(b[1], b[3]).to_numpy()
        labels = labels[keep]
    joined = join_labels(labels, args.target, lat=args.lat, lng=args.lon)
    counts = _load_counts(args.features, args.category) if args.features else None
    embeddings = {}
    for spec in args.embedding:
        if "=" not in spec:
            raise SystemExit(f"error: --embedding needs NAME=FILE, got {spec!r}")
        name, path = spec.split("=", 1)
        embeddings[name] = _as_cell_table(_read_table(path), path)
    if args.model not in (None, "", "none"):
        if counts is None:
            raise SystemExit("error: --model needs --features (the POI/road counts the model embeds)")
        embeddings.update(model_embeddings(joined.index.to_numpy(), counts, args.model,
                                           [m for m in str(args.modes).split(",") if m.strip()]))
    methods = standard_methods(
        joined.index.to_numpy(), counts, embeddings, location=args.location,
        location_params=dict(frequency_num=args.location_scales, min_radius=args.min_radius, max_radius=args.max_radius),
        seed=args.seed, log1p=args.log1p, raw_counts=args.raw_counts,
    )
    holdout = None
    if args.holdout_bbox:
        holdout = {"bbox": _bbox(args.holdout_bbox)}
    elif args.holdout_lon is not None:
        holdout = {"lon": args.holdout_lon, "side": args.holdout_side}
    elif args.holdout_polygon:
        import shapely

        holdout = {"polygon": shapely.union_all(_read_table(args.holdout_polygon).to_crs("EPSG:4326").geometry.values)}
    result = evaluate(
        joined[args.target], methods, n_splits=args.splits, seed=args.seed, holdout=holdout,
        sweep={"lr": _parse_floats(args.lr), "hidden": _parse_ints(args.hidden), "dropout": _parse_floats(args.dropout)},
        fusion=args.fusion, max_epochs=args.max_epochs, patience=args.patience, batch_size=args.batch_size,
        progress=not args.quiet,
    )
    cli = {k: v for k, v in vars(args).items() if k not in ("func", "config", "command")}
    path = write_report(result, args.out, extra_config={"cli": cli})
    print(summary_markdown(result))
    print(f"\nwall time {result.wall_time_s:.1f} s; report written to {path}")
    return 0
