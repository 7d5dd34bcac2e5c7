"""Reconstruction evaluation of the masked autoencoder: the model against parameter-free predictors.

Everything here works on plain NumPy arrays in normalized units (no TensorFlow), so the predictors and the
loss bookkeeping are testable without a model; :meth:`geos2vec.model.S2VecModel.evaluate` feeds it the model's
predictions on seeded masks.

Arrays: ``x`` ``(batch, n, features)`` normalized patches, ``w`` ``(batch, n)`` observed weight (1 where the
pixel is a cell of the feature table, 0 on fill pixels), ``mask`` ``(batch, n)`` (1 where masked), ``c``
``(batch, n)`` covered weight (1 where the source has data, :mod:`geos2vec.coverage`; all 1 when unknown).

Predictors of a masked patch:

* ``model``: the autoencoder's reconstruction (given as ``pred``);
* ``zero``: 0, i.e. the training mean of every feature (normalized units);
* ``empty``: the normalized value of a cell with zero counts (``stats.transform`` of an all-zero vector): the
  value of every fill pixel;
* ``visible_mean``: the mean of the visible (unmasked) covered patches of the same image, feature by feature
  (fill pixels included when they are covered: known empty cells);
* ``local_mean``: the mean of the visible covered patches in the 5 x 5 neighbourhood of the masked patch,
  shrunk toward ``visible_mean`` by its count ``m``: ``m / (m + 4) * local + 4 / (m + 4) * visible_mean``
  (square images, or others with their ``grid``). Fixed constants, not fitted: a spatial smoother a model should
  at least match.

Losses (per-patch mean squared error over features, averaged over patches): ``loss_observed`` over the masked
patches that are observed (``mask * w``), ``loss_all`` over every masked patch, ``loss_covered`` over the
masked patches the source covers (``mask * c``; equals ``loss_all`` when coverage is unknown).

The predictors (:func:`baseline_predictions`, :func:`neighbour_sums`) are in :mod:`geos2vec.model._baselines`,
and importable from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ._baselines import baseline_predictions, neighbour_sums
# re-exported: importable from here, as before the split
from ._baselines import LOCAL_PRIOR as LOCAL_PRIOR, LOCAL_RADIUS as LOCAL_RADIUS, _local_mean as _local_mean

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from numpy.typing import ArrayLike

__all__ = ["PREDICTORS", "check_evaluate_args", "draw_noise", "mask_from_noise", "baseline_predictions",
           "neighbour_sums", "loss_sums", "reconstruction_losses", "LossAccumulator"]

PREDICTORS = ("model", "zero", "empty", "visible_mean", "local_mean")


def check_evaluate_args(n_masks: int, seed: int | None, batch_size: int | None,
                        default_batch: int) -> tuple[int, int, int]:
    """``S2VecModel.evaluate``'s ``n_masks``, ``seed`` and ``batch_size``, checked.

    ``n_masks=1.7`` used to become 1 mask, ``seed=1.5`` seed 1 and ``batch_size=0`` the config's batch size,
    silently; a negative seed or batch size failed inside NumPy or TensorFlow.

    Parameters
    ----------
    n_masks : int
        Masks per image (>= 1).
    seed : int or None
        Seed of the masks (>= 0); ``None`` draws a fresh one.
    batch_size : int or None
        Images per forward pass (>= 1); ``None``: ``default_batch``.
    default_batch : int
        The model's ``config.batch_size``.

    Returns
    -------
    tuple of int
        ``(n_masks, seed, batch_size)``, the seed drawn when ``seed`` is ``None``.

    Raises
    ------
    InvalidInputError
        A value that is not an integer (NumPy integers count; bools do not) in the ranges above.
    """
    import numbers

    def whole(name, value, low):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise InvalidInputError(f"{name} must be >= {low} (an integer){' or None' if name != 'n_masks' else ''}, "
                                    f"got {value!r}")
        return int(value)

    seed = int(np.random.SeedSequence().entropy) if seed is None else whole("seed", seed, 0)
    batch = default_batch if batch_size is None else whole("batch_size", batch_size, 1)
    return whole("n_masks", n_masks, 1), seed, int(batch)


def draw_noise(rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
    """``(batch, length)`` float32 masking noise: a uniformly random permutation per row, scaled into [0, 1).

    The values of a row are distinct (``(rank + 0.5) / length``), so the argsort that picks the kept patches
    has no ties and the same mask follows on every backend. Successive calls on one generator continue one
    stream: drawing 3 rows then 5 rows gives the rows of drawing 8 at once.

    Parameters
    ----------
    rng : numpy.random.Generator
        The source of randomness (advanced by ``batch * length`` draws).
    batch : int
        Number of rows (images).
    length : int
        Values per row (patches per image).

    Returns
    -------
    numpy.ndarray of float32, shape (batch, length)
        Each row a random permutation of ``(0.5, 1.5, ..., length - 0.5) / length``.
    """
    u = rng.random((int(batch), int(length)))
    ranks = np.argsort(np.argsort(u, axis=1, kind="stable"), axis=1, kind="stable")
    return ((ranks + 0.5) / length).astype(np.float32)


def mask_from_noise(noise: ArrayLike, num_keep: int) -> np.ndarray:
    """The ``(batch, n)`` float32 mask (1 = masked) that noise gives: the ``num_keep`` lowest values are kept.

    Parameters
    ----------
    noise : array_like, shape (batch, n)
        Masking noise (:func:`draw_noise`).
    num_keep : int
        Patches kept per row.

    Returns
    -------
    numpy.ndarray of float32, shape (batch, n)
        1 where a patch is masked, 0 where it is kept; the mask of
        :func:`geos2vec.model.mae.masks_from_noise` for noise without ties.
    """
    noise = np.asarray(noise)
    ids_restore = np.argsort(np.argsort(noise, axis=1, kind="stable"), axis=1, kind="stable")
    return (ids_restore >= int(num_keep)).astype(np.float32)


def _check(x, w, mask, c=None):
    x = np.asarray(x)
    if x.ndim != 3:
        raise InvalidInputError(f"x must be (batch, n, features), got shape {x.shape}")
    w = np.ones(x.shape[:2], np.float64) if w is None else np.asarray(w, dtype=np.float64)
    c = np.ones(x.shape[:2], np.float64) if c is None else np.asarray(c, dtype=np.float64)
    mask = np.asarray(mask, dtype=np.float64)
    if w.shape != x.shape[:2] or mask.shape != x.shape[:2] or c.shape != x.shape[:2]:
        raise InvalidInputError(f"w, c and mask must be {x.shape[:2]}, got {w.shape}, {c.shape} and {mask.shape}")
    return x, w, mask, c


def loss_sums(x: ArrayLike, w: ArrayLike | None, mask: ArrayLike, predictions: Mapping[str, ArrayLike],
              c: ArrayLike | None = None, v: ArrayLike | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per image: sums of per-patch MSE over masked-and-observed, masked, and masked-and-covered patches.

    ``v`` (``(batch, n, features)``, optional): 1 where the pixel's channel is available (its source has that
    channel, e.g. no roads in Who's On First states). With it, the observed and covered columns count available
    values only:
    its sum is the squared error over available values and its count the available values, both divided by
    the number of features (so without ``v`` it is the per-patch mean, as before).

    Parameters
    ----------
    x : array_like, shape (batch, n, features)
        Normalized patches.
    w : array_like, shape (batch, n), or None
        Observed weight (all 1 when ``None``).
    mask : array_like, shape (batch, n)
        1 where a patch is masked.
    predictions : dict of str to array_like
        Predictions by name, each broadcastable to ``x`` (e.g. :func:`baseline_predictions`).
    c : array_like, shape (batch, n), optional
        Covered weight (all 1 when ``None``).
    v : array_like, shape (batch, n, features), optional
        Channel availability, as above.

    Returns
    -------
    sums : dict of str to numpy.ndarray
        Per prediction, ``(batch, 3)`` float64 ``[sum_observed, sum_all, sum_covered]``.
    counts : numpy.ndarray
        ``(batch, 3)`` float64 ``[n_observed, n_all, n_covered]``. The loss of a set of images is
        ``sums.sum(0) / counts.sum(0)``.

    Raises
    ------
    ValueError
        ``x`` is not 3-D, or ``w``, ``c``, ``mask`` or ``v`` do not match its shape.
    """
    sums, counts, _ = _sums(x, w, mask, predictions, c, v)
    return sums, counts


def _sums(x, w, mask, predictions, c=None, v=None, by_channel=False):
    """:func:`loss_sums`, plus (``by_channel``) per-channel sums from the same squared errors.

    The third item is None, or ``({prediction: (features,) squared error}, (features,) count)`` over masked,
    covered, available values.
    """
    x, w, mask, c = _check(x, w, mask, c)
    xf = x.astype(np.float64)
    nf = x.shape[-1]
    if v is not None:
        v = np.asarray(v, dtype=np.float64)
        if v.shape != x.shape:
            raise InvalidInputError(f"v must have the shape of x {x.shape}, got {v.shape}")
    weights = np.stack([mask * w, mask, mask * c], axis=-1)              # (b, n, 3)
    if by_channel:  # masked, covered, available values, per channel
        wt = np.broadcast_to((mask * c)[..., None] * (1.0 if v is None else v), x.shape)
    sums, channel = {}, {}
    for name, pred in predictions.items():
        sq = np.square(np.asarray(pred, dtype=np.float64) - xf)            # (b, n, f)
        err = np.mean(sq, axis=-1)                                           # (b, n)
        sums[name] = np.einsum("bn,bnk->bk", err, weights)
        if v is not None:  # observed and covered patches: their available values only
            sums[name][:, 0] = np.einsum("bnf,bnf,bn->b", sq, v, mask * w) / nf
            sums[name][:, 2] = np.einsum("bnf,bnf,bn->b", sq, v, mask * c) / nf
        if by_channel:
            channel[name] = np.einsum("bnf,bnf->f", sq, wt)
    counts = weights.sum(axis=1)
    if v is not None:
        counts[:, 0] = np.einsum("bnf,bn->b", v, mask * w) / nf
        counts[:, 2] = np.einsum("bnf,bn->b", v, mask * c) / nf
    return sums, counts, (channel, wt.sum(axis=(0, 1))) if by_channel else None


def reconstruction_losses(x: ArrayLike, w: ArrayLike | None, mask: ArrayLike, *, empty: ArrayLike | None = None,
                          pred: ArrayLike | None = None, c: ArrayLike | None = None,
                          v: ArrayLike | None = None, grid: tuple[int, int] | None = None) -> pd.DataFrame:
    """Losses of the predictors on arrays: one row per predictor (``model`` only with ``pred``).

    Columns ``loss_observed`` (masked, observed patches), ``loss_all`` (masked patches) and ``loss_covered``
    (masked, covered patches; with ``v``, their available channels only, see :func:`loss_sums`); NaN where
    there is no such patch.

    Parameters
    ----------
    x : array_like, shape (batch, n, features)
        Normalized patches.
    w : array_like, shape (batch, n), or None
        Observed weight (all 1 when ``None``).
    mask : array_like, shape (batch, n)
        1 where a patch is masked.
    empty : array_like, shape (features,), optional
        The normalized value of a cell with zero counts (the ``empty`` predictor; left out when ``None``).
    pred : array_like, shape (batch, n, features), optional
        The model's reconstruction (the ``model`` predictor).
    c : array_like, shape (batch, n), optional
        Covered weight (all 1 when ``None``).
    v : array_like, shape (batch, n, features), optional
        Channel availability (:func:`loss_sums`).
    grid : tuple of int, optional
        ``(rows, cols)`` of non-square images (:func:`baseline_predictions`).

    Returns
    -------
    pandas.DataFrame
        Index ``predictor`` (``model`` first when given, then those of :func:`baseline_predictions`),
        columns ``loss_observed``, ``loss_all``, ``loss_covered``.

    Raises
    ------
    ValueError
        Arrays whose shapes do not match (:func:`loss_sums`), or a ``grid`` that does not hold ``n`` patches.
    """
    x, w, mask, c = _check(x, w, mask, c)
    preds = ({} if pred is None else {"model": pred}) | baseline_predictions(x, mask, empty, c, grid)
    sums, counts = loss_sums(x, w, mask, preds, c, v)
    n = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rows = {k: np.where(n > 0, s.sum(axis=0) / n, np.nan) for k, s in sums.items()}
    df = pd.DataFrame.from_dict(rows, orient="index", columns=["loss_observed", "loss_all", "loss_covered"])
    df.index.name = "predictor"
    return df


class LossAccumulator:
    """Sums of :func:`loss_sums` over batches, kept per mask, turned into the evaluation table."""

    def __init__(self, n_masks: int, predictors: Iterable[str] = PREDICTORS, n_features: int | None = None) -> None:
        self.predictors = list(predictors)
        self.sums = np.zeros((int(n_masks), len(self.predictors), 3))
        self.counts = np.zeros((int(n_masks), 3))
        self._seen = set()
        # per channel (with n_features): squared error over masked, covered, available values, and their count
        self.channel_sums = None if n_features is None else np.zeros((len(self.predictors), int(n_features)))
        self.channel_counts = None if n_features is None else np.zeros(int(n_features))

    def add(self, k: int, x: ArrayLike, w: ArrayLike | None, mask: ArrayLike, predictions: Mapping[str, ArrayLike],
            c: ArrayLike | None = None, v: ArrayLike | None = None) -> None:
        """Add a batch seen under mask number ``k`` (``v``: per-value availability, see :func:`loss_sums`).

        Parameters
        ----------
        k : int
            The mask's number, ``0 <= k < n_masks``.
        x, w, mask, predictions, c, v
            As for :func:`loss_sums`; predictions not among the accumulator's ``predictors`` are ignored.
        """
        sums, counts, channel = _sums(x, w, mask, predictions, c, v, by_channel=self.channel_sums is not None)
        for j, name in enumerate(self.predictors):
            if name in sums:  # local_mean exists for square images only
                self.sums[k, j] += sums[name].sum(axis=0)
                self._seen.add(name)
                if channel is not None:
                    self.channel_sums[j] += channel[0][name]
        self.counts[k] += counts.sum(axis=0)
        if channel is not None:
            self.channel_counts += channel[1]

    def table(self) -> pd.DataFrame:
        """One row per predictor: losses pooled over every masked patch of every mask.

        Also their spread across masks (``*_sd``: standard deviation of the per-mask losses) and the ratios
        to ``visible_mean``.

        Returns
        -------
        pandas.DataFrame
            Index ``predictor`` (the predictors that were added, in the accumulator's order); columns
            ``loss_observed``, ``loss_all``, ``loss_covered``, ``loss_observed_sd``, ``loss_all_sd``,
            ``loss_covered_sd`` (NaN with a single mask) and, when ``visible_mean`` is among them,
            ``ratio_observed_to_visible_mean``, ``ratio_all_to_visible_mean``,
            ``ratio_covered_to_visible_mean``.
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled = self.sums.sum(axis=0) / self.counts.sum(axis=0)          # (p, 2)
            per_mask = self.sums / self.counts[:, None, :]                     # (k, p, 2)
        sd = per_mask.std(axis=0, ddof=1) if len(per_mask) > 1 else np.full_like(pooled, np.nan)
        df = pd.DataFrame({"loss_observed": pooled[:, 0], "loss_all": pooled[:, 1], "loss_covered": pooled[:, 2],
                           "loss_observed_sd": sd[:, 0], "loss_all_sd": sd[:, 1], "loss_covered_sd": sd[:, 2]},
                          index=pd.Index(self.predictors, name="predictor"))
        df = df.loc[[p for p in self.predictors if p in self._seen]]
        if "visible_mean" in df.index:
            ref = df.loc["visible_mean"]
            for what in ("observed", "all", "covered"):
                df[f"ratio_{what}_to_visible_mean"] = df[f"loss_{what}"] / ref[f"loss_{what}"]
        return df

    def channel_table(self, channels: Iterable[str] | None = None) -> pd.DataFrame:
        """One row per channel: each predictor's loss on that channel's masked, covered, available values.

        Needs an accumulator made with ``n_features``. Pooled over every mask (the per-channel view of
        ``loss_covered``: a channel's ``share`` is its part of the pooled ``loss_covered`` of ``model``, or of
        the first predictor when there is no ``model``).

        Parameters
        ----------
        channels : iterable of str, optional
            The channels' names (default ``0 .. n_features - 1``).

        Returns
        -------
        pandas.DataFrame
            Index ``channel``; columns ``values`` (masked, covered, available values counted), one
            ``loss_<predictor>`` per predictor that was added, ``ratio_to_visible_mean`` (``model`` ÷
            ``visible_mean``, when both were added) and ``share``. Channels with no such value get NaN losses.

        Raises
        ------
        ValueError
            The accumulator was made without ``n_features``, or ``channels`` has another length.
        """
        if self.channel_sums is None:
            raise InvalidInputError("this accumulator keeps no per-channel sums: make it with n_features=")
        nf = self.channel_counts.size
        names = list(range(nf)) if channels is None else list(channels)
        if len(names) != nf:
            raise InvalidInputError(f"channels has {len(names)} names for {nf} features")
        seen = [p for p in self.predictors if p in self._seen]
        df = pd.DataFrame({"values": self.channel_counts.astype(np.int64)}, index=pd.Index(names, name="channel"))
        with np.errstate(invalid="ignore", divide="ignore"):
            for j, p in enumerate(self.predictors):
                if p in seen:
                    df[f"loss_{p}"] = np.where(self.channel_counts > 0, self.channel_sums[j] / self.channel_counts,
                                               np.nan)
            if {"model", "visible_mean"} <= set(seen):
                df["ratio_to_visible_mean"] = df["loss_model"] / df["loss_visible_mean"]
            if seen:
                ref = self.channel_sums[self.predictors.index("model" if "model" in seen else seen[0])]
                df["share"] = ref / ref.sum()
        return df
