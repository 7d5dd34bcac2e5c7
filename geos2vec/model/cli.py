"""``geos2vec train``: train an S2Vec model on rasterized images."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    """The ``train`` subcommand's parser."""
    p = subparsers.add_parser(
        "train", help="train an S2Vec masked autoencoder",
        description="Train the S2Vec masked autoencoder on images from geos2vec.raster (a zarr store, a .nc "
                    "file, or a Parquet feature table that is rasterized first into images of 16 x 16 cells: "
                    "level-12 cells in level-8 images, level-14 cells in level-10 ones) and save it to --out.")
    p.add_argument("--data", required=True, help="zarr store / .nc file / Parquet feature table")
    p.add_argument("--out", required=True, help="model directory, or a path ending in .zip")
    p.add_argument("--config", help="JSON file with S2VecConfig fields (defaults: the paper's Table 1)")
    p.add_argument("--epochs", type=int, help="number of epochs (config: 50)")
    p.add_argument("--batch-size", type=int, help="images per batch (config: 64)")
    p.add_argument("--mask-ratio", type=float, help="share of masked patches (config: 0.75)")
    p.add_argument("--learning-rate", type=float, help="initial learning rate (config: 5e-4)")
    p.add_argument("--validation-split", type=float, help="share of images held out (config: 0.1)")
    p.add_argument("--seed", type=int, help="random seed (config: 0)")
    p.add_argument("--strategy", default="default", choices=["default", "mirrored", "cpu"],
                   help="tf.distribute strategy: 'mirrored' uses every visible GPU")
    p.add_argument("--checkpoint-dir", help="checkpoints + backup; rerunning the same command resumes there")
    p.add_argument("--log-dir", help="training.csv (and TensorBoard logs with --tensorboard)")
    p.add_argument("--tensorboard", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def _check_writable(args) -> None:
    """Refuse, before training, folders the run cannot write: a read-only --out failed after the whole training."""
    from ..cli_features import check_out

    out = Path(args.out).expanduser()
    check_out(out.parent if out.suffix == ".zip" else out, "--out", folder=True)  # save_model creates folders
    for option, value in (("--checkpoint-dir", args.checkpoint_dir), ("--log-dir", args.log_dir)):
        if value:
            check_out(value, option, folder=True)


def run(args) -> int:
    """Run ``geos2vec train``; the exit status."""
    from . import S2VecConfig, S2VecModel
    from .data import open_images
    from .io import check_save_path

    check_save_path(args.out)  # before training, not after it (an --out that is a file failed at the end)
    _check_writable(args)
    if args.config and not Path(args.config).expanduser().is_file():  # said "[Errno 2] No such file or directory: 'x'"
        from ..errors import InvalidInputError

        raise InvalidInputError(f"--config {args.config}: no such file (a JSON file of S2VecConfig fields)")
    config = S2VecConfig.load(args.config) if args.config else S2VecConfig()
    overrides = {k: v for k, v in {
        "epochs": args.epochs, "batch_size": args.batch_size, "mask_ratio": args.mask_ratio,
        "learning_rate": args.learning_rate, "validation_split": args.validation_split, "seed": args.seed,
    }.items() if v is not None}
    model = S2VecModel(config.replace(**overrides))
    images = open_images(args.data)
    hist = model.fit(images, strategy=args.strategy, checkpoint_dir=args.checkpoint_dir, log_dir=args.log_dir,
                     tensorboard=args.tensorboard, verbose=0 if args.quiet else "auto")
    out = model.save(Path(args.out))
    last = {k: round(float(v[-1]), 5) for k, v in hist.history.items() if k in ("loss", "val_loss")}
    print(f"saved {model!r} to {out}; final {last}")
    return 0
