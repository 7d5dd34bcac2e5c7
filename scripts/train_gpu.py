"""Train coverage-aware S2Vec models: on a GPU machine with Keras + JAX (or torch) and no TensorFlow, or on CPU.

Reads the packed views of ``scripts/prepare_training_data.py`` and trains each configuration of a small
sweep with the package's own ``MaskedAutoencoder`` (imported without ``geos2vec/__init__.py``, see
``docs/model.md`` "Backends"). The loss counts covered pixels and the channels their source has (no
``road`` channel in Who's On First states), so places outside a data box are not taught as empty.

For each configuration and seed it writes ``<name>-s<seed>.npz`` (``get_weights()`` in order, float16) and,
in ``report.json``, the training curve and the held-out reconstruction over 20 seeded masks: the model against
the zero / empty-cell / visible-image-mean / local-mean predictors (``geos2vec.model.reconstruction``), on
covered pixels. The checkpoint kept has the lowest training objective on the held-out views over
``--val-masks`` fixed masks, checked after every ``fit`` call of ``--chunk`` epochs (Keras' own ``val_loss``
draws new masks every epoch and is logged beside it). ``-token`` configurations feed uncovered pixels to the
encoder as the learned missing token.

    KERAS_BACKEND=jax python scripts/train_gpu.py --data gpu/data.npz --out $OUT --minutes 2
    python scripts/train_gpu.py --out cpu-sweep --configs cpu-small,cpu-small-token --seeds 0,1,2 \
        --minutes 4 --precision float32                                # this CPU (TensorFlow backend)
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# name -> S2VecConfig overrides (the paper's Table 1 is the base)
SWEEP = {
    "paper": {},
    "paper-mask50": {"mask_ratio": 0.5},
    "small": {"embedding_dim": 128, "encoder_layers": 4, "decoder_dim": 128, "decoder_layers": 2},
    "paper-nodrop": {"dropout": 0.0},
    "paper-token": {"missing_token": True},
    "paper-activity": {"activity_weight": 1.0},
    "paper-token-activity": {"missing_token": True, "activity_weight": 1.0},
    "paper-activity-mask50": {"activity_weight": 1.0, "mask_ratio": 0.5},
    "paper-sincos-activity": {"position_init": "sincos", "activity_weight": 1.0},
    "paper-sincos-nodrop-activity": {"position_init": "sincos", "activity_weight": 1.0, "dropout": 0.0},
    # masked cells with counts weigh 3x (empty cells 1x) in the per-channel loss: not yet run on a GPU
    "paper-sincos-activity-nonempty3": {"position_init": "sincos", "activity_weight": 1.0, "nonempty_weight": 3.0},
    # small enough for a 2-core CPU
    "cpu-small": {"embedding_dim": 64, "encoder_layers": 2, "decoder_dim": 64, "decoder_layers": 1, "num_heads": 4},
    "cpu-small-token": {"embedding_dim": 64, "encoder_layers": 2, "decoder_dim": 64, "decoder_layers": 1,
                        "num_heads": 4, "missing_token": True},
    "cpu-small-activity": {"embedding_dim": 64, "encoder_layers": 2, "decoder_dim": 64, "decoder_layers": 1,
                           "num_heads": 4, "activity_weight": 1.0},
}


def import_model_modules():
    """geos2vec.model.{mae,config,train,reconstruction} without running geos2vec/__init__.py."""
    for name in ("geos2vec", "geos2vec.model"):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(ROOT.joinpath(*name.split(".")))]
        sys.modules.setdefault(name, pkg)
    return [importlib.import_module(f"geos2vec.model.{m}") for m in ("mae", "config", "train", "reconstruction")]


def device_batches(arrays, batch_size, seed, augment=False):
    """:class:`geos2vec.model.device_data.DeviceBatches` (imported as the model modules are)."""
    import_model_modules()
    return importlib.import_module("geos2vec.model.device_data").DeviceBatches(arrays, batch_size, seed=seed,
                                                                               augment=augment)


def _device():
    import keras

    if keras.backend.backend() == "jax":
        import jax

        d = jax.devices()[0]
        return f"{d.platform}: {getattr(d, 'device_kind', d)}; jax {jax.__version__}"
    return keras.backend.backend()


def dense(data, part, mean, std, road, groups=None):
    """Normalized views (views, pixels, channels), their per-value loss weights (uint8 0/1), covered mask and
    counts. ``groups``: the file's ``meta["avail_groups"]`` as channel indices, each masked by its
    ``{part}_avail`` row; without them (older files) only the road channel, by ``{part}_road_ok``."""
    shape = tuple(int(v) for v in data[f"{part}_shape"])
    counts = np.zeros(int(np.prod(shape)), np.float32)
    counts[data[f"{part}_idx"]] = data[f"{part}_val"]
    counts = counts.reshape(shape)
    x = ((np.log1p(counts) - mean) / std).astype(np.float32)
    covered = data[f"{part}_covered"].astype(bool)
    w = np.repeat(covered[..., None].astype(np.uint8), shape[-1], axis=-1)  # 0/1: masked_mse casts
    if groups:
        avail = data[f"{part}_avail"]
        for g, chans in enumerate(groups):
            w[..., chans] *= avail[g][..., None]
    else:
        w[..., road] *= data[f"{part}_road_ok"]
    return x, w, covered, counts


def avail_groups(meta):
    """``meta["avail_groups"]`` (channel names) as lists of channel indices; None for files without it."""
    groups = meta.get("avail_groups")
    return None if groups is None else [[meta["channels"].index(c) for c in chans] for chans in groups]


def _write_json(path, obj):
    """Write ``obj`` so that an interrupted write leaves the previous file, never a truncated one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def compiled_reconstruct(model):
    """``f(batch, noise) -> (pred, mask, loss)``: ``model.reconstruct`` (no dropout) and ``compute_loss`` of a
    batch dict with given masks, one compiled function on JAX (``jax.jit`` over the weights' current values;
    called op by op, JAX compiles every primitive on its first call, which is what made scoring slow on the
    GPU), plain calls on the other backends."""
    import keras

    def run(batch, noise):
        out = model.reconstruct(batch["x"], noise, training=False, covered=batch["c"])
        return out["pred"], out["mask"], model.compute_loss(batch, y_pred=out)

    if keras.backend.backend() != "jax":
        return run
    import jax

    variables = list(model.variables)

    @jax.jit
    def pure(values, batch, noise):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return run(batch, noise)

    return lambda batch, noise: pure([v.value for v in variables], batch, noise)


def fixed_val_loss(model, val_in, noises, fn=None):
    """The training objective (``compute_loss``) on the held-out views, averaged over fixed masks (one per
    ``noises`` entry); ``fn``: :func:`compiled_reconstruct` of ``model`` (made here when not given)."""
    fn = fn or compiled_reconstruct(model)
    return float(np.mean([float(np.asarray(fn(val_in, noise)[2])) for noise in noises]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "gpu" / "data.npz")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--configs", default=",".join(SWEEP))
    ap.add_argument("--minutes", type=float, default=2.0, help="training time per configuration")
    ap.add_argument("--max-epochs", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--precision", default="mixed_bfloat16")
    ap.add_argument("--limit", type=int, default=None, help="use only this many training views (smoke tests)")
    ap.add_argument("--masks", type=int, default=20)
    ap.add_argument("--val-masks", type=int, default=4,
                    help="choose the checkpoint on the held-out loss over this many fixed masks (0: Keras' "
                         "val_loss of the last two epochs, new masks every epoch)")
    ap.add_argument("--init", type=Path, help="start from these weights (.npz, get_weights order; e.g. "
                    "scripts/renormalize_model.py --weights) instead of a random initialisation: fine-tuning")
    ap.add_argument("--lr", type=float, help="peak learning rate (default: the configuration's)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds; each configuration runs once per seed")
    ap.add_argument("--feed", choices=("host", "device"), default="host",
                    help="host: fit NumPy arrays (Keras copies each batch to the device); device: the training "
                         "arrays are put on the device once and batches gathered there (DeviceBatches)")
    ap.add_argument("--augment", action="store_true",
                    help="each training window in a random one of its eight flips/rotations per batch "
                         "(DeviceBatches(augment=True); needs --feed device); runs are named <config>-d4-s<seed>")
    ap.add_argument("--chunk", type=int, default=5,
                    help="epochs per fit call: the time limit and the best-checkpoint choice are checked between calls")
    args = ap.parse_args(argv)
    if args.augment and args.feed != "device":
        ap.error("--augment needs --feed device (the flips/rotations are drawn where the batches are gathered)")
    mae, config, train, recon = import_model_modules()
    import keras

    args.out.mkdir(parents=True, exist_ok=True)
    data = np.load(args.data)
    meta = json.loads(str(data["meta"]))
    mean, std = np.asarray(meta["mean"], np.float32), np.asarray(meta["std"], np.float32)
    road = meta["channels"].index("road")
    groups = avail_groups(meta)
    xt, wt, ct, nt = dense(data, "train", mean, std, road, groups)
    xv, wv, cv, nv = dense(data, "val", mean, std, road, groups)
    if args.limit:
        xt, wt, ct, nt = xt[: args.limit], wt[: args.limit], ct[: args.limit], nt[: args.limit]
    empty = ((np.log1p(np.zeros_like(mean)) - mean) / std).astype(np.float32)
    print(f"backend {keras.backend.backend()}; train {xt.shape}, val {xv.shape}; held out {meta['holdout']}",
          flush=True)
    report = {"backend": keras.backend.backend(), "device": _device(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join(sys.argv), "meta": {k: meta[k] for k in ("holdout", "sources", "stride")},
              "train_views": int(len(xt)), "val_views": int(len(xv)), "configs": {}}
    runs = [(name, int(seed)) for name in args.configs.split(",") for seed in args.seeds.split(",")]
    train_in = {"x": xt, "w": wt, "c": ct.astype(np.uint8), "e": (nt > 0).any(-1).astype(np.uint8)}
    val_in = {"x": xv, "w": wv, "c": cv.astype(np.uint8), "e": (nv > 0).any(-1).astype(np.uint8)}
    init = None
    if args.init:  # read once, for every run
        with np.load(args.init) as f:
            init = [f[f"arr_{i}"] for i in range(len(f.files))]
    for name, seed in runs:
        run = f"{name}{'-d4' if args.augment else ''}-s{seed}"
        cfg = config.S2VecConfig(**{"ignore_unobserved": True, "seed": seed, "batch_size": args.batch_size,
                                    **SWEEP[name], **({"learning_rate": args.lr} if args.lr else {})})
        keras.utils.set_random_seed(cfg.seed)
        model = mae.build_mae(cfg, xt.shape[1], xt.shape[2], dtype=args.precision)
        if init is not None:
            model.set_weights(init)
        # whole batches only (a random subset of the windows per fit call): a partial last batch, and a
        # validation set split in batches, would each make JAX compile its step for a second shape
        steps = len(xt) // args.batch_size
        whole = steps * args.batch_size
        model.compile(optimizer=train.make_optimizer(cfg, steps, args.max_epochs))
        val_noise = [np.random.default_rng([1, k]).random(xv.shape[:2]).astype(np.float32)
                     for k in range(args.val_masks)]
        held_out = compiled_reconstruct(model)  # one compilation for validation and scoring
        on_device = device_batches(train_in, args.batch_size, seed, args.augment) if args.feed == "device" else None
        t0 = time.perf_counter()
        history, best, best_w = [], np.inf, None
        epoch = 0
        while epoch < args.max_epochs and time.perf_counter() - t0 < 60 * args.minutes:
            n_ep = min(args.chunk, args.max_epochs - epoch)
            if on_device is not None:  # a new random subset of whole batches every epoch
                h = model.fit(on_device, epochs=epoch + n_ep, initial_epoch=epoch, validation_data=(val_in,),
                              validation_batch_size=len(xv), verbose=0)
            else:
                pick = np.sort(np.random.default_rng([seed, epoch]).permutation(len(xt))[:whole])
                h = model.fit({k: v[pick] for k, v in train_in.items()}, batch_size=args.batch_size,
                              epochs=epoch + n_ep, initial_epoch=epoch, validation_data=(val_in,),
                              validation_batch_size=len(xv), verbose=0)
            epoch += n_ep
            for loss, val in zip(h.history["loss"], h.history["val_loss"]):
                history.append({"loss": float(loss), "val_loss": float(val)})
            if val_noise:  # the same masks after every fit call: a choice of epoch that is not a draw of masks
                val = fixed_val_loss(model, val_in, val_noise, held_out)
                history[-1]["val_fixed"] = val
            else:
                val = float(np.mean(h.history["val_loss"][-min(2, n_ep):]))
            if val < best:
                best, best_w = val, [np.asarray(w) for w in model.get_weights()]
            print(f"{run}: epoch {epoch}, loss {history[-1]['loss']:.4f}, val {history[-1]['val_loss']:.4f}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        train_s = time.perf_counter() - t0
        model.set_weights(best_w)
        # weights and curve first: a run stopped while it is scored (a lease's time limit) keeps them
        tmp = args.out / f"{run}.npz.tmp"
        with open(tmp, "wb") as fh:  # then renamed: an interrupted write leaves no truncated .npz
            np.savez(fh, *[w.astype(np.float16) for w in best_w])
        tmp.replace(args.out / f"{run}.npz")
        report["configs"][run] = {
            "config": name, "seed": seed, "overrides": SWEEP[name], "augment": args.augment, "epochs": epoch, "train_s": round(train_s, 1),
            "best_val_loss": best, "params": int(model.count_params()), "history": history,
            "s_per_epoch": round(train_s / epoch, 3), "holdout_covered": None,
        }
        _write_json(args.out / "report.json", report)
        # held-out reconstruction on covered pixels: the model vs the parameter-free predictors, same masks
        rows, activity_rows = [], []
        for k in range(args.masks):
            rng = np.random.default_rng([0, k])
            noise = rng.random((len(xv), xv.shape[1])).astype(np.float32)
            preds, masks = [], []
            for s in range(0, len(xv), 512):
                pred, mask, _ = held_out({k: v[s:s + 512] for k, v in val_in.items()}, noise[s:s + 512])
                preds.append(np.asarray(keras.ops.convert_to_numpy(pred), np.float32))
                masks.append(np.asarray(keras.ops.convert_to_numpy(mask), np.float32))
            keep = np.arange(xv.shape[-1]) != road  # held-out states have no roads: score the POI channels
            rows.append(recon.reconstruction_losses(xv[..., keep], None, np.concatenate(masks),
                                                    empty=empty[keep], pred=np.concatenate(preds)[..., keep],
                                                    c=cv.astype(np.float32), v=wv[..., keep]))
            # the cell's activity: its mean over the POI channels (predicted the same way)
            activity_rows.append(recon.reconstruction_losses(
                xv[..., keep].mean(-1, keepdims=True), None, np.concatenate(masks),
                empty=empty[keep].mean(keepdims=True), pred=np.concatenate(preds)[..., keep].mean(-1, keepdims=True),
                c=cv.astype(np.float32))[["loss_covered"]])
        table = sum(r[["loss_covered", "loss_all"]] for r in rows) / len(rows)
        table["ratio_covered_to_visible_mean"] = table["loss_covered"] / table.loc["visible_mean", "loss_covered"]
        act = sum(r for r in activity_rows) / len(activity_rows)
        table["activity_covered"] = act["loss_covered"]
        table["activity_ratio"] = act["loss_covered"] / act.loc["visible_mean", "loss_covered"]
        report["configs"][run]["holdout_covered"] = table.to_dict()
        print(run, "held-out, POI channels, covered pixels:\n", table.round(4).to_string(), flush=True)
        _write_json(args.out / "report.json", report)
    print("done", flush=True)


if __name__ == "__main__":
    main()


def to_model(weights_npz, name: str, data=ROOT / "gpu" / "data.npz", out=None):
    """Here, with geos2vec installed: the weights of one trained configuration as an ``S2VecModel``
    (the packed data's channels and normalization), saved in the compact format to ``out`` if given."""
    from geos2vec import FeatureStats
    from geos2vec.model import S2VecModel
    from geos2vec.model.config import S2VecConfig
    from geos2vec.model.numpy_encoder import weights_from_keras

    meta = json.loads(str(np.load(data)["meta"]))
    arrays = np.load(weights_npz)
    weights = [arrays[f"arr_{i}"].astype(np.float32) for i in range(len(arrays.files))]
    model = S2VecModel(S2VecConfig(**{"ignore_unobserved": True, "seed": 0, "log_counts": True, **SWEEP[name]}))
    model.stats = FeatureStats.from_dict(meta["stats"])
    model.channels, model.grid, model.image_level, model.patch_level = list(meta["channels"]), (16, 16), 8, 12
    model._build_keras(weights=weights)
    model.numpy_weights = weights_from_keras(model.keras_model)
    if out is not None:
        model.save(out, compact=True)
    return model
