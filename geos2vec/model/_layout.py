"""The files of a saved model (:mod:`geos2vec.model.io`): their names, checksums and the weights' shapes.

What :func:`~geos2vec.model.io.save_model` writes and :func:`~geos2vec.model.io.read_model` checks:
the files of a full and of a compact save, the SHA-256 recorded for them in ``metadata.json``, and the shape of
every array of a compact model's ``weights.npz`` for its config.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from typing import TYPE_CHECKING

from ..errors import ModelFormatError

if TYPE_CHECKING:
    from pathlib import Path

    from .config import S2VecConfig

_FILES = ("model.keras", "config.json", "feature_stats.json", "metadata.json")
_COMPACT_FILES = ("weights.npz", "config.json", "feature_stats.json", "metadata.json")
_EXTRA_FILES = ("MODEL_CARD.md", "training_report.json", "training_curve.png")


def _sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks of 1 MiB (model files and training backups)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_shapes(config: S2VecConfig, n_features: int, n_patches: int) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of every array of a compact model's ``weights.npz`` (see ``numpy_encoder``).

    Parameters
    ----------
    config : S2VecConfig
        The model's hyper-parameters.
    n_features : int
        Number of channels.
    n_patches : int
        Pixels per image (``rows * cols``).

    Returns
    -------
    dict of str to tuple of int
        Array name (e.g. ``"encoder_block_0/attn/qkv/kernel"``) to shape; ``"encoder_layers"`` is a scalar
        (shape ``()``), ``"missing_embed"`` is present only with ``config.missing_token``.
    """
    d, dd, f = config.embedding_dim, config.decoder_dim, n_features
    out = {"pos_embed": (1, n_patches, d), "decoder_pos_embed": (1, n_patches, dd), "mask_token": (1, 1, dd),
           "encoder_layers": ()}
    if getattr(config, "missing_token", False):
        out["missing_embed"] = (1, 1, d)

    def dense(name, a, b):
        out[f"{name}/kernel"], out[f"{name}/bias"] = (a, b), (b,)

    def norm(name, a):
        out[f"{name}/gamma"], out[f"{name}/beta"] = (a,), (a,)

    def block(prefix, dim):
        hidden = int(round(dim * config.mlp_ratio))
        norm(prefix + "/norm1", dim)
        dense(prefix + "/attn/qkv", dim, 3 * dim)
        dense(prefix + "/attn/proj", dim, dim)
        norm(prefix + "/norm2", dim)
        dense(prefix + "/fc1", dim, hidden)
        dense(prefix + "/fc2", hidden, dim)

    dense("patch_embed", f, d)
    for i in range(config.encoder_layers):
        block(f"encoder_block_{i}", d)
    norm("encoder_norm", d)
    dense("decoder_embed", d, dd)
    for i in range(config.decoder_layers):
        block(f"decoder_block_{i}", dd)
    norm("decoder_norm", dd)
    dense("decoder_pred", dd, f)
    return out


def _check_weight_shapes(npz: Path, config, n_features: int, n_patches: int) -> None:
    """Compare every array's shape (read from the file's headers, nothing decompressed) with the config's."""
    import numpy as np

    want = expected_shapes(config, n_features, n_patches)
    try:
        with zipfile.ZipFile(npz) as zf:
            have = {}
            for info in zf.infolist():
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(fh)
                if dtype.kind not in "fiu":
                    raise ModelFormatError(f"{npz}: array {info.filename} has dtype {dtype}")
                have[info.filename.removesuffix(".npy")] = tuple(shape)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        if isinstance(exc, ModelFormatError):
            raise
        raise ModelFormatError(f"{npz} is damaged: not a readable weights file ({exc})") from None
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if missing or extra or wrong:
        detail = "; ".join(filter(None, [
            f"missing {missing[:3]}" if missing else "", f"unexpected {extra[:3]}" if extra else "",
            ", ".join(f"{k} is {have[k]}, config says {want[k]}" for k in wrong[:3])]))
        raise ModelFormatError(f"{npz} does not match config.json / metadata.json: {detail}")
