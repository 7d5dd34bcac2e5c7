"""Training batches gathered on the accelerator from arrays kept there (Keras 3 ``PyDataset``, any backend).

``model.fit`` of NumPy arrays copies every batch from host memory, after a shuffled gather on the host: on a
lent H200 that made ``fit`` 0.43× a plain ``jax.jit`` step fed from device memory (``benchmarks/RESULTS.md``,
"The training step on the H200"). :class:`DeviceBatches` puts the arrays on the device once and gathers each
batch there; Keras' JAX trainer passes device arrays through unchanged. Like ``scripts/train_gpu.py`` it
yields whole batches only (a partial batch would make XLA compile the step for a second shape): each epoch is
a new seeded permutation, cut to ``len(self) * batch_size`` windows. With ``augment=True`` each window of a
batch comes in one of its eight flips/rotations (the transforms of :func:`geos2vec.raster.augment`), drawn
at random per window and batch: the eightfold data of ``augment`` without storing it.

This module imports only ``keras``, NumPy and :mod:`geos2vec._dihedral` (no TensorFlow, no xarray), as
:mod:`.mae` does.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from .._dihedral import permutations as _dihedral_permutations
from ..errors import InvalidInputError

__all__ = ["DeviceBatches"]


class DeviceBatches(keras.utils.PyDataset):
    """Shuffled whole batches of a dict of arrays, kept on the backend's default device.

    Parameters
    ----------
    arrays : dict of str to array_like
        Same first dimension (windows), e.g. ``{"x": ..., "w": ..., "c": ...}``; each is converted once
        with ``keras.ops.convert_to_tensor`` (its dtype kept: give 0/1 weights as ``uint8`` to move a
        quarter of the bytes of float32; :func:`~geos2vec.model.mae.masked_mse` casts them).
    batch_size : int
        Windows per batch; an epoch has ``len(windows) // batch_size`` batches.
    seed : int
        Seed of the per-epoch permutations (epoch ``k`` uses ``default_rng([seed, k])``).
    shuffle : bool
        False: the first ``len(self) * batch_size`` windows in order, every epoch.
    augment : bool, default False
        Give every window of a batch a random one of the eight flips/rotations (dihedral group D4; transform
        ``t`` as in :func:`geos2vec.raster.augment`: ``t % 4`` quarter turns, then a left-right flip if
        ``t >= 4``), seeded by ``(seed, epoch, batch)``. Applies to the arrays whose axis 1 holds the
        ``side * side`` pixels of a window in row-major order (``x`` and ``w`` of shape (windows, pixels,
        features), a coverage mask (windows, pixels)); other arrays are gathered unchanged.
    side : int, default 16
        Pixels per window side (with ``augment``).

    Raises
    ------
    ValueError
        No arrays, arrays of different lengths, fewer windows than one batch, or ``augment`` without any
        array of ``side * side`` pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from geos2vec.model.device_data import DeviceBatches
    >>> data = DeviceBatches({"x": np.arange(10.0)[:, None]}, batch_size=4, seed=0)
    >>> len(data), tuple(data[0][0]["x"].shape)
    (2, (4, 1))
    """

    def __init__(self, arrays: dict[str, Any], batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 augment: bool = False, side: int = 16) -> None:
        super().__init__()
        if not arrays:
            raise InvalidInputError("DeviceBatches needs at least one array")
        lengths = {k: int(np.shape(v)[0]) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise InvalidInputError(f"arrays of different lengths: {lengths}")
        self.n = next(iter(lengths.values()))
        self.batch_size = int(batch_size)
        if self.batch_size < 1 or self.n < self.batch_size:
            raise InvalidInputError(f"{self.n} windows do not fill one batch of {batch_size}")
        self.seed, self.shuffle, self.augment = int(seed), bool(shuffle), bool(augment)
        pixels = int(side) * int(side)
        # pixel arrays are kept as (windows * pixels, ...): one gather of window-and-pixel indices per batch
        self.pixel_keys = {k for k, v in arrays.items() if np.ndim(v) >= 2 and np.shape(v)[1] == pixels}
        if self.augment and not self.pixel_keys:
            raise InvalidInputError(f"augment=True needs an array of {pixels} pixels (side {side}) on axis 1; shapes: "
                                    f"{ {k: np.shape(v) for k, v in arrays.items()} }")
        self.side = int(side)
        self._perms = _dihedral_permutations(self.side)
        self._index_dtype = np.int32 if self.n * pixels < 2**31 else np.int64
        self.arrays = {k: keras.ops.convert_to_tensor(
            np.asarray(v).reshape(-1, *np.shape(v)[2:]) if self.augment and k in self.pixel_keys else np.asarray(v))
            for k, v in arrays.items()}
        self.epoch = 0
        self._order = self._permutation()

    def _permutation(self) -> np.ndarray:
        whole = len(self) * self.batch_size
        if not self.shuffle:
            return np.arange(whole, dtype=np.int32)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.n)[:whole].astype(np.int32)

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __getitem__(self, index: int) -> tuple[dict[str, Any]]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        if not self.augment:
            idx = keras.ops.convert_to_tensor(idx)
            return ({k: keras.ops.take(v, idx, axis=0) for k, v in self.arrays.items()},)
        t = np.random.default_rng([self.seed, self.epoch, index, 1]).integers(0, 8, size=idx.size)
        pixels = self.side * self.side
        flat = (idx[:, None].astype(np.int64) * pixels + self._perms[t]).reshape(-1)  # window-and-pixel rows
        flat = keras.ops.convert_to_tensor(flat.astype(self._index_dtype))
        win = keras.ops.convert_to_tensor(idx)
        out = {}
        for k, v in self.arrays.items():
            if k in self.pixel_keys:
                got = keras.ops.take(v, flat, axis=0)
                out[k] = keras.ops.reshape(got, (idx.size, pixels, *got.shape[1:]))
            else:
                out[k] = keras.ops.take(v, win, axis=0)
        return (out,)

    def on_epoch_end(self) -> None:
        """Draw the next epoch's permutation (Keras calls this after every epoch)."""
        self.epoch += 1
        self._order = self._permutation()
