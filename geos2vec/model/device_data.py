"""Training batches gathered on the accelerator from arrays kept there (Keras 3 ``PyDataset``, any backend).

``model.fit`` of NumPy arrays copies every batch from host memory, after a shuffled gather on the host: on a
lent H200 that made ``fit`` 0.43× a plain ``jax.jit`` step fed from device memory (``benchmarks/RESULTS.md``,
"The training step on the H200"). :class:`DeviceBatches` puts the arrays on the device once and gathers each
batch there; Keras' JAX trainer passes device arrays through unchanged. Like ``scripts/train_gpu.py`` it
yields whole batches only (a partial batch would make XLA compile the step for a second shape): each epoch is
a new seeded permutation, cut to ``len(self) * batch_size`` windows.

This module imports only ``keras`` and NumPy (no TensorFlow), as :mod:`.mae` does.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

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

    Raises
    ------
    ValueError
        No arrays, arrays of different lengths, or fewer windows than one batch.

    Examples
    --------
    >>> import numpy as np
    >>> from geos2vec.model.device_data import DeviceBatches
    >>> data = DeviceBatches({"x": np.arange(10.0)[:, None]}, batch_size=4, seed=0)
    >>> len(data), tuple(data[0][0]["x"].shape)
    (2, (4, 1))
    """

    def __init__(self, arrays: dict[str, Any], batch_size: int, *, seed: int = 0, shuffle: bool = True) -> None:
        super().__init__()
        if not arrays:
            raise ValueError("DeviceBatches needs at least one array")
        lengths = {k: int(np.shape(v)[0]) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"arrays of different lengths: {lengths}")
        self.n = next(iter(lengths.values()))
        self.batch_size = int(batch_size)
        if self.batch_size < 1 or self.n < self.batch_size:
            raise ValueError(f"{self.n} windows do not fill one batch of {batch_size}")
        self.seed, self.shuffle = int(seed), bool(shuffle)
        self.arrays = {k: keras.ops.convert_to_tensor(np.asarray(v)) for k, v in arrays.items()}
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
        idx = keras.ops.convert_to_tensor(idx)
        return ({k: keras.ops.take(v, idx, axis=0) for k, v in self.arrays.items()},)

    def on_epoch_end(self) -> None:
        """Draw the next epoch's permutation (Keras calls this after every epoch)."""
        self.epoch += 1
        self._order = self._permutation()
