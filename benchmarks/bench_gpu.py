"""The training step on an accelerator: Keras ``fit`` against a plain JAX step; bfloat16 against float32; XLA on/off.

Runs on a machine with Keras 3 + JAX and no TensorFlow (a GPU lent through the ``device`` tool; the model
modules are imported without ``geos2vec/__init__.py`` as in ``scripts/train_gpu.py``), on the packed training
views of ``scripts/prepare_training_data.py`` (``gpu/data.npz``: 16 x 16 windows x 116 channels), with the
model the bundled one was trained as (``--config``, default ``paper-sincos-activity``: the paper's size). All in
one process, one after the other, each timing repeated (best of ``--repeat``):

* ``fit``: the package's ``MaskedAutoencoder`` through ``model.fit`` for ``mixed_bfloat16`` and ``float32``,
  ``jit_compile=True`` (XLA, Keras' default on JAX) and ``False`` (op by op, a few batches only): the first
  ``fit`` call (tracing + compilation) and steady-state windows/s over whole epochs; fed from NumPy arrays
  with 0/1 weights as uint8 (and as float32, as 0.2 measured), or from arrays kept on the device
  (``DeviceBatches``, ``--feed device`` of ``scripts/train_gpu.py``);
* plain JAX: the same model and optimizer in a hand-written ``jax.jit`` step (``stateless_call`` +
  ``compute_loss`` + ``optimizer.stateless_apply``, the Keras guide's custom loop), batches already on the
  device, and batches put there from host memory each step as ``fit`` does; ``fit ÷ plain`` is the price of
  Keras' loop.

The number of windows is cut to whole batches so that no step sees a second batch shape (a partial last batch
makes JAX compile the step again). Prints a table and writes ``--out`` (JSON) after every measurement.

    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --data gpu/data.npz --out bench_gpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv=None):
    import train_gpu

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "gpu" / "data.npz")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--config", default="paper-sincos-activity", choices=sorted(train_gpu.SWEEP))
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per timed fit call")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="use only this many windows (smoke tests)")
    ap.add_argument("--eager-batches", type=int, default=3, help="batches per timed call with jit_compile=False")
    ap.add_argument("--spe", type=int, default=0,
                    help="also time fit from the device with compile(steps_per_execution=SPE) (Keras runs SPE "
                         "steps per call of the compiled function; 0: off; must divide the batches per epoch)")
    ap.add_argument("--skip", default="",
                    help="comma-separated measurements to skip: device, f32-weights, fit-float32, eager, plain")
    args = ap.parse_args(argv)
    mae, config, train, _ = train_gpu.import_model_modules()
    import keras

    skip = set(filter(None, args.skip.split(",")))
    data = np.load(args.data)
    meta = json.loads(str(data["meta"]))
    mean, std = np.asarray(meta["mean"], np.float32), np.asarray(meta["std"], np.float32)
    x, w, c, _ = train_gpu.dense(data, "train", mean, std, meta["channels"].index("road"))
    n = len(x) if args.limit is None else min(args.limit, len(x))
    n = (n // args.batch_size) * args.batch_size
    if n == 0:
        raise SystemExit(f"fewer windows than one batch of {args.batch_size}")
    inputs = {"x": x[:n], "w": w[:n], "c": c[:n].astype(np.uint8)}  # 0/1 weights as uint8 (a quarter the bytes)
    inputs_f32 = {"x": x[:n], "w": w[:n].astype(np.float32), "c": c[:n].astype(np.float32)}  # as before 0.2
    steps = n // args.batch_size
    cfg = config.S2VecConfig(**{"ignore_unobserved": True, "seed": 0, "batch_size": args.batch_size,
                                **train_gpu.SWEEP[args.config]})
    report = {"device": train_gpu._device(), "host": f"{platform.machine()}, {os.cpu_count()} cores",
              "load_before": os.getloadavg()[0], "backend": keras.backend.backend(), "config": args.config,
              "windows": n, "batch_size": args.batch_size, "window_shape": list(x.shape[1:]), "rows": []}
    print(f"{report['device']}; {report['host']}; load {report['load_before']:.2f}; {n} windows of "
          f"{x.shape[1:]}, batch {args.batch_size}, config {args.config}", flush=True)

    def save(row):
        report["rows"].append(row)
        print(json.dumps(row), flush=True)
        if args.out is not None:
            train_gpu._write_json(args.out, {**report, "load_after": os.getloadavg()[0]})

    def fresh(precision, jit=True, spe=1):
        keras.utils.set_random_seed(0)
        model = mae.build_mae(cfg, x.shape[1], x.shape[2], dtype=precision)
        model.compile(optimizer=train.make_optimizer(cfg, steps, 100), jit_compile=jit, steps_per_execution=spe)
        return model

    def timed_fit(precision, jit=True, data=inputs, epochs=args.epochs, repeat=args.repeat, feed="host", spe=1):
        """``feed``: "host" (NumPy arrays; Keras gathers and copies each batch) or "device" (DeviceBatches)."""
        model = fresh(precision, jit=jit, spe=spe)
        source = train_gpu.device_batches(data, args.batch_size, 0) if feed == "device" else data
        kwargs = {} if feed == "device" else {"batch_size": args.batch_size}
        t0 = time.perf_counter()
        model.fit(source, epochs=1, verbose=0, **kwargs)
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            model.fit(source, epochs=epochs, verbose=0, **kwargs)
            times.append(time.perf_counter() - t0)
        k = len(data["x"])
        save({"what": "fit", "precision": precision, "jit_compile": jit, "feed": feed, "weights": str(data["w"].dtype),
              **({"steps_per_execution": spe} if spe > 1 else {}),
              "first_fit_s": round(first, 2), "epoch_s": round(min(times) / epochs, 4),
              "windows_per_s": round(epochs * k / min(times), 1), "times_s": [round(t, 3) for t in times]})

    def attempt(what, fn, *a, **kw):
        """Run one measurement; a failure is recorded (and printed) instead of ending the benchmark."""
        try:
            fn(*a, **kw)
        except Exception as exc:  # noqa: BLE001 - one failed row must not cost the lease the other rows
            report.setdefault("errors", []).append({"what": what, "error": repr(exc)[:500]})
            print(f"{what} failed: {exc!r}", flush=True)

    def plain_rows():
        for row in plain_jax(fresh("mixed_bfloat16"), inputs, args, "mixed_bfloat16"):
            save(row)

    # most wanted first: the benchmark runs under a time limit on a lent GPU
    attempt("fit, host", timed_fit, "mixed_bfloat16")
    if "device" not in skip:
        attempt("fit, device", timed_fit, "mixed_bfloat16", feed="device")
    if args.spe > 1 and steps % args.spe:
        print(f"--spe {args.spe} does not divide {steps} batches per epoch: skipped", flush=True)
    elif args.spe > 1:
        attempt(f"fit, device, steps_per_execution={args.spe}", timed_fit, "mixed_bfloat16", feed="device",
                spe=args.spe)
    if "plain" not in skip and keras.backend.backend() == "jax":
        attempt("plain JAX step", plain_rows)
    elif "plain" not in skip:
        print(f"plain JAX step skipped: the backend is {keras.backend.backend()}", flush=True)
    if "f32-weights" not in skip:
        attempt("fit, float32 weights", timed_fit, "mixed_bfloat16", data=inputs_f32)
    if "fit-float32" not in skip:
        attempt("fit, float32", timed_fit, "float32")
    if "eager" not in skip:  # op by op is slow: a few batches, one epoch per timed call
        k = min(args.eager_batches, steps) * args.batch_size
        attempt("fit, op by op", timed_fit, "mixed_bfloat16", jit=False,
                data={key: v[:k] for key, v in inputs.items()}, epochs=1, repeat=max(2, args.repeat - 1))

    fit_bf16 = next((r for r in report["rows"] if r["what"] == "fit" and r["jit_compile"]
                     and r["precision"] == "mixed_bfloat16"), None)
    print("\n| measurement | windows/s | first call (s) | ÷ fit bf16 XLA time |\n|---|---:|---:|---:|")
    for r in report["rows"]:
        name = (f"{r['what']} {r['precision']}" + (", XLA" if r.get("jit_compile") else
                                                   (", op by op" if r["what"] == "fit" else ""))
                + (f" ({r['feed']}" + (f", {r['weights']} weights" if "weights" in r else "")
                   + (f", steps_per_execution={r['steps_per_execution']}" if "steps_per_execution" in r else "")
                   + ")" if "feed" in r else ""))
        ratio = fit_bf16["windows_per_s"] / r["windows_per_s"] if fit_bf16 else math.nan
        first = r.get("first_fit_s", r.get("first_call_s", math.nan))
        print(f"| {name} | {r['windows_per_s']:,.0f} | {first:.1f} | {ratio:.2f} |")
    print(f"load after: {os.getloadavg()[0]:.2f}")


def plain_jax(model, inputs, args, precision):
    """A hand-written ``jax.jit`` training step of the same model: the reference for ``fit``'s loop."""
    import functools

    import jax

    b = args.batch_size
    steps = len(inputs["x"]) // b
    model.optimizer.build(model.trainable_variables)
    opt = model.optimizer
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    ov = [v.value for v in opt.variables]

    def loss_fn(tv, ntv, batch):
        out, ntv = model.stateless_call(tv, ntv, {"x": batch["x"], "c": batch["c"]}, training=True)
        return model.compute_loss(x=batch, y_pred=out), ntv

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    # the state's buffers are donated, as Keras' JAX trainer does (without it every step allocates new ones)
    @functools.partial(jax.jit, donate_argnums=0)
    def step(state, batch):
        tv, ntv, ov = state
        (loss, ntv), grads = grad_fn(tv, ntv, batch)
        tv, ov = opt.stateless_apply(ov, grads, tv)
        return loss, (tv, ntv, ov)

    host = [{k: v[i * b:(i + 1) * b] for k, v in inputs.items()} for i in range(steps)]
    dev = [jax.device_put(h) for h in host]
    state = (tv, ntv, ov)
    t0 = time.perf_counter()
    loss, state = step(state, dev[0])
    jax.block_until_ready(loss)
    first = time.perf_counter() - t0
    rows = {}
    for feed, batches in (("batches on the device", dev), ("batches from host memory", host)):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for _ in range(args.epochs):
                for batch in batches:
                    loss, state = step(state, batch)
            jax.block_until_ready(loss)
            times.append(time.perf_counter() - t0)
        rows[feed] = times
    if not np.isfinite(float(loss)):
        raise SystemExit(f"plain JAX step: loss {float(loss)}")
    return [{"what": "plain JAX step", "precision": precision, "feed": feed, "first_call_s": round(first, 2),
             "windows_per_s": round(args.epochs * steps * b / min(t), 1), "times_s": [round(v, 3) for v in t],
             "final_loss": round(float(loss), 5)} for feed, t in rows.items()]


if __name__ == "__main__":
    main()
