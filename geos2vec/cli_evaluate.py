"""`geos2vec evaluate`: the command line of :mod:`geos2vec.evaluate`.

Two ways in: named tasks on the shared data (``--task zcta:per_capita_income --task nyc-tracts:medianinco``),
or your own labelled points (``--labels FILE --target COLUMN --features ...``); what the second reads (tables,
count files, embedding files, labels) is :mod:`geos2vec._cli_evaluate_inputs`.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from ._cli_evaluate_inputs import (
    _as_cell_table,
    _bbox,
    _label_lnglat,
    _load_counts,
    _parse_floats,
    _parse_ints,
    _read_table,
    _samples,
)
from ._cli_help import DefaultsHelpFormatter
from .cli_features import check_out
from .errors import InvalidInputError
from .evaluate import (
    DEFAULT_SWEEP,
    DEFAULT_TASKS,
    PROBES,
    SPLITS,
    TARGET_SCALES,
    evaluate,
    model_embeddings,
    run_suite,
    standard_methods,
    summary_markdown,
    write_report,
)
from .evaluate.report import merge_configs


def _kinds(text, allowed, what):
    kinds = list(dict.fromkeys(k.strip() for k in str(text).split(",") if k.strip()))  # each kind once
    bad = [k for k in kinds if k not in allowed]
    if bad or not kinds:
        raise InvalidInputError(f"{what} must be a comma-separated subset of {','.join(allowed)}, got {text!r}")
    return kinds


# options of the --labels path; a --task brings its own labels, features, regions and filters
_DEFAULT_SPLITS = ",".join(SPLITS)
_LABELS_ONLY = ("target", "lat", "lon", "features", "category", "embedding", "within", "holdout_bbox", "holdout_lon",
                "holdout_side", "holdout_polygon")
# options of the --task path only
_TASK_ONLY = ("untrained", "cache", "states", "data_dir")


def add_parser(subparsers):
    """The ``evaluate`` subcommand's parser."""
    p = subparsers.add_parser(
        "evaluate",
        help="downstream evaluation: tasks, spatial splits, strong baselines, ridge + MLP probes, report",
        description="Evaluate S2Vec (and any cell embedding) against strong baselines on spatially separated "
                    "splits. Named tasks (--task) read ../shared/data; --labels evaluates your own points.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--config", help="config.json of an earlier run: its options are the defaults")
    p.add_argument("--task", action="append", default=[], metavar="NAME",
                   help="a named task, repeatable: ca-housing, ca-tracts:<col>, zcta:<col>, nyc-tracts:<col>, "
                        "chicago-tracts:<col>; 'default' = " + ",".join(DEFAULT_TASKS))
    p.add_argument("--data-dir", default=None,
                   help="(--task only) the shared data folder (default $GEOS2VEC_DATA or ../shared/data)")
    p.add_argument("--states", default=None,
                   help="(--task only) zcta tasks: only these Who's On First states, e.g. ks,ia")
    p.add_argument("--labels", help="your own CSV/Parquet/GeoJSON of labelled points, or of polygons (pooled over "
                   "the cells they cover with area weights), instead of --task")
    p.add_argument("--target", help="numeric label column of --labels")
    p.add_argument("--lat", default=None, help="latitude column of --labels (default: found by name)")
    p.add_argument("--lon", default=None, help="longitude column of --labels (default: found by name)")
    p.add_argument("--features", nargs="*", default=[],
                   help="with --labels: cell count tables (cell_id + count columns) or POI/road files (GeoParquet)")
    p.add_argument("--category", default=None, help="category column of POI point files (default: the first of "
                   "fclass, category, osm_value, as geos2vec features)")
    p.add_argument("--embedding", action="append", default=[], metavar="NAME=FILE",
                   help="with --labels: an embedding table to evaluate (cell_id: S2 cell ids or tokens, + float "
                        "columns; or a cell_embeddings table); repeatable")
    p.add_argument("--model", default="default",
                   help="S2Vec model to embed with: 'default' (the bundled model), a saved model path, or 'none'")
    p.add_argument("--modes", default="contextual",
                   help="embedding modes of --model, each a method 'S2Vec (MODE)': contextual, tiled, patch, "
                        "image, contextual:centred (contextual = contextual:blend, the default)")
    p.add_argument("--untrained", action=argparse.BooleanOptionalAction, default=True,
                   help="(--task only) also evaluate the same encoder with random weights (a control)")
    p.add_argument("--splits", default=_DEFAULT_SPLITS, help="split kinds: random, blocked, region (region: "
                   "--task only; --labels runs the others unless --splits asks for region)")
    p.add_argument("--n-splits", type=int, default=20, help="repetitions of each split kind")
    p.add_argument("--block-level", type=int, default=None,
                   help="level of the blocks of blocked splits (default: the task's; 10 with --labels)")
    p.add_argument("--probes", default="ridge",
                   help="probes: ridge, mlp (the paper's MLP sweep; slow on thousands of cells: ~14 min per method and "
                        "split kind on 8,500 cells on 2 cores)")
    p.add_argument("--within", action="append", default=[], metavar="MINLON,MINLAT,MAXLON,MAXLAT",
                   help="with --labels: keep only labels inside this lon/lat bbox (their geometries in any CRS, "
                   "else --lat/--lon; repeatable: union)")
    p.add_argument("--holdout-bbox", default=None, metavar="MINLON,MINLAT,MAXLON,MAXLAT",
                   help="with --labels: test on this region (a 'holdout' split instead of --splits)")
    p.add_argument("--holdout-lon", type=float, default=None,
                   help="with --labels: test on cells east (or --holdout-side west) of this longitude")
    p.add_argument("--holdout-side", default="east", choices=["east", "west"])
    p.add_argument("--holdout-polygon", default=None, help="GeoJSON/GeoParquet file: test on cells inside its union")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", default=",".join(map(str, DEFAULT_SWEEP["lr"])), help="MLP learning rates")
    p.add_argument("--hidden", default=",".join(map(str, DEFAULT_SWEEP["hidden"])), help="MLP hidden units")
    p.add_argument("--dropout", default=",".join(map(str, DEFAULT_SWEEP["dropout"])), help="MLP dropout rates")
    p.add_argument("--max-epochs", type=int, default=500, help="MLP epochs at most")
    p.add_argument("--patience", type=int, default=30, help="MLP early-stopping patience (epochs)")
    p.add_argument("--batch-size", type=int, default=512, help="MLP rows per step")
    p.add_argument("--target-scale", default=TARGET_SCALES[0], choices=list(TARGET_SCALES),
                   help="how the MLP's target is scaled per split: standard (mean 0, SD 1) or minmax ([0, 1], "
                        "before 0.3)")
    p.add_argument("--fusion", default="concat", choices=["concat", "weighted", "project"],
                   help="how -Loc methods fuse their blocks in the MLP")
    p.add_argument("--location", default="theory",
                   help="location encoder (wrap, sinusoidal, grid, theory, sphereC, sphereM)")
    p.add_argument("--location-scales", type=int, default=16, help="location encoder scales")
    p.add_argument("--min-radius", type=float, default=1e-4, help="location encoder smallest scale (radians)")
    p.add_argument("--max-radius", type=float, default=1.0, help="location encoder largest scale (radians)")
    p.add_argument("--out", default="report", help="output folder")
    p.add_argument("--cache", default=None,
                   help="(--task only) folder that keeps embedding tables between runs (default: none, embed every "
                        "time)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (and, with --task, no notes on the "
                   "shared data)")
    p.set_defaults(func=run)
    return p


def _location_params(args) -> dict:
    return dict(frequency_num=args.location_scales, min_radius=args.min_radius, max_radius=args.max_radius)


@functools.cache
def _defaults() -> dict:
    """Every option's default (a parser built once)."""
    return vars(add_parser(argparse.ArgumentParser().add_subparsers()).parse_args([]))


def _command(args) -> str:
    parts = ["geos2vec evaluate"]
    for t in args.task:
        parts.append(f"--task {t}")
    for key in ("splits", "probes", "n_splits", "model", "modes", "seed", "states"):
        value = getattr(args, key)
        if value is not None:
            parts.append(f"--{key.replace('_', '-')} {value}")
    defaults = _defaults()
    for key in ("lr", "hidden", "dropout", "max_epochs", "patience", "batch_size", "target_scale"):  # MLP, if changed
        if "mlp" in str(args.probes) and getattr(args, key) != defaults[key]:
            parts.append(f"--{key.replace('_', '-')} {getattr(args, key)}")
    for key in ("block_level", "fusion", "location", "location_scales", "min_radius", "max_radius"):  # if changed
        if getattr(args, key) != defaults[key]:
            parts.append(f"--{key.replace('_', '-')} {getattr(args, key)}")
    if not args.untrained:
        parts.append("--no-untrained")
    return " ".join(parts)


def _saved_cli(path) -> dict:
    """The ``cli`` options of an earlier run's ``config.json`` (``--config``)."""
    try:
        # JSON is UTF-8: a config.json edited by hand (a path with "ü") was read in the locale's encoding (Windows)
        saved = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:  # said "[Errno 2] No such file or directory: ...", naming no option
        raise InvalidInputError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError):  # said "Expecting value: line 1 column 1 (char 0)"
        raise InvalidInputError(f"--config {path} is not JSON: give the config.json of an earlier "
                                "`geos2vec evaluate` report") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("cli"), dict):
        raise InvalidInputError(f"--config {path} has no \"cli\" options: give the config.json of an earlier "
                                "`geos2vec evaluate` report")
    return saved["cli"]


def _run_suite(tasks, args, splits, probes, model, modes, sweep):
    return run_suite(
        tasks, splits=splits, probes=probes, model=model, modes=modes, untrained=args.untrained,
        data_dir=args.data_dir, n_splits=args.n_splits, seed=args.seed, sweep=sweep,
        states=args.states.split(",") if args.states else None, max_epochs=args.max_epochs,
        patience=args.patience, target_scale=args.target_scale, block_level=args.block_level,
        batch_size=args.batch_size, fusion=args.fusion, location=args.location,
        location_params=_location_params(args), cache_dir=args.cache, progress=not args.quiet,
        log=None if args.quiet else print,
    )


def run(args) -> int:
    """Run ``geos2vec evaluate``; the exit status."""
    if args.config:
        saved = _saved_cli(args.config)
        defaults = _defaults()
        for key, value in saved.items():
            if key in defaults and getattr(args, key) == defaults[key]:
                setattr(args, key, value)
        earlier = Path(args.config).expanduser().resolve().parent  # "--out=~/r": the shell left the "~"
        if Path(args.out).expanduser().resolve() == earlier and (earlier / "report.md").exists():  # nothing lost
            raise InvalidInputError(f"--config {args.config}: this run would write over that earlier report in "
                                    f"{earlier}; pass --out with another folder")
    if args.quiet:  # also the embedding bars inside the run
        from .options import set_options

        set_options(progress=False)
    splits = _kinds(args.splits, SPLITS, "--splits")
    probes = _kinds(args.probes, PROBES, "--probes")
    sweep = {"lr": _parse_floats(args.lr, "--lr"), "hidden": _parse_ints(args.hidden, "--hidden"),
             "dropout": _parse_floats(args.dropout, "--dropout")}
    modes = [m.strip() for m in str(args.modes).split(",") if m.strip()]  # "contextual, patch": " patch" failed
    model = None if args.model in (None, "", "none") else args.model
    if model is None and args.modes != _defaults()["modes"]:  # before, dropped without a word
        raise InvalidInputError(f"--modes {args.modes} needs a model to embed with; drop --model none (or --modes)")
    if args.seed < 0:  # numpy said only "expected non-negative integer"
        raise InvalidInputError(f"--seed must be a non-negative integer, got {args.seed}")
    check_out(args.out, folder=True)  # before the run, not after it
    cli = {k: v for k, v in vars(args).items() if k not in ("func", "config", "command")}
    if args.task:
        if args.labels:
            raise InvalidInputError("give either --task or --labels, not both")
        defaults = _defaults()
        ignored = [f"--{k.replace('_', '-')}" for k in _LABELS_ONLY if getattr(args, k) != defaults[k]]
        if ignored:
            raise InvalidInputError(f"{', '.join(ignored)} only apply with --labels; a --task brings its own "
                             "labels, features and regions (drop them, or evaluate your data with --labels)")
        tasks = [t for name in args.task for t in (DEFAULT_TASKS if name == "default" else [name])]
        with warnings.catch_warnings():
            if args.quiet:  # the notes on the shared data (venues kept, categories outside the ontology)
                warnings.simplefilter("ignore", UserWarning)
            scores, info = _run_suite(tasks, args, splits, probes, model, modes, sweep)
        command = _command(args)
        path = write_report(scores, args.out, config={"cli": cli, "tasks": info, "command": command}, command=command)
        for task in dict.fromkeys(scores["task"]):
            print(f"\n## {task}\n" + summary_markdown(scores, task))
        print(f"\nreport written to {path}")
        return 0
    if not args.labels or not args.target:
        raise InvalidInputError("give --task NAME (see --help), or --labels FILE with --target COLUMN")
    defaults = _defaults()
    ignored = [f"--{k.replace('_', '-')}" if k != "untrained" else "--no-untrained" for k in _TASK_ONLY
               if getattr(args, k) != defaults[k]]
    if ignored:
        raise InvalidInputError(f"{', '.join(ignored)} only apply with --task (the --labels path has no untrained "
                                "control, embedding cache or state filter): drop them")
    given = [f"--{k.replace('_', '-')}" for k in ("holdout_bbox", "holdout_lon", "holdout_polygon")
             if getattr(args, k) not in (None, "")]
    if len(given) > 1:  # before, the first silently won
        raise InvalidInputError(f"give one geographic hold-out, got {', '.join(given)}")
    if args.holdout_side != defaults["holdout_side"] and args.holdout_lon is None:
        raise InvalidInputError("--holdout-side only applies with --holdout-lon LON (the side of that longitude "
                                "to test on)")
    labels = _read_table(args.labels)
    if args.within:
        lng, lat = _label_lnglat(labels, args)
        from .evaluate._coverage_arg import in_lnglat_boxes

        # 178,-18,182,-16: both sides of ±180
        keep = in_lnglat_boxes(lng, lat, [_bbox(text) for text in args.within], "--within")
        if not keep.any():  # said only "labels is empty"
            raise InvalidInputError(f"no label of {args.labels} lies inside --within {' '.join(args.within)} "
                                    "(MINLON,MINLAT,MAXLON,MAXLAT in degrees; longitude first)")
        labels = labels[keep]
    target, pooling = _samples(labels, args)
    cells = target.index.to_numpy() if pooling is None else pooling["cell_id"].to_numpy(np.uint64)
    counts = _load_counts(args.features, args.category) if args.features else None
    embeddings = {}
    # the model's methods, "S2Vec (contextual)", ...: an --embedding of one of their names was replaced by it
    made = [f"S2Vec ({m})" for m in modes] if model is not None and counts is not None else []
    for spec in args.embedding:
        name, _, path = spec.partition("=")
        if not name.strip() or not path:
            raise InvalidInputError(f"--embedding needs NAME=FILE, got {spec!r}")
        if name in embeddings or name in made:  # before, the last table of a name won without a word
            raise InvalidInputError(f"--embedding {spec}: the name {name!r} is taken (by another --embedding or the "
                                    "model's methods); give each table its own name")
        embeddings[name] = _as_cell_table(_read_table(path), path)
    if made:
        embeddings.update(model_embeddings(cells, counts, model, modes))
    elif model is not None:  # before, the model was left out without a word
        print(f"note: --model {args.model} embeds from cell counts: give --features to evaluate it (or --model "
              "none); running without it", file=sys.stderr)
    methods = standard_methods(
        cells, counts, embeddings, location=args.location,
        location_params=_location_params(args),
        seed=args.seed,
    )
    holdout = None
    if args.holdout_bbox:
        holdout = {"bbox": _bbox(args.holdout_bbox)}
    elif args.holdout_lon is not None:
        holdout = {"lon": args.holdout_lon, "side": args.holdout_side}
    elif args.holdout_polygon:
        import geopandas as gpd

        from .evaluate._coverage_arg import lnglat_area

        zone_path = args.holdout_polygon
        zone = _read_table(zone_path)
        if not isinstance(zone, gpd.GeoDataFrame):
            raise InvalidInputError(f"--holdout-polygon {args.holdout_polygon} has no geometry: give a GeoJSON or "
                                    "GeoParquet file of polygons")
        # its union in degrees, split at ±180 (a zone across the antimeridian held out where it is)
        holdout = {"polygon": lnglat_area(zone, f"--holdout-polygon {zone_path}")}
    if holdout is None and "region" in splits:
        if args.splits != _DEFAULT_SPLITS:
            raise InvalidInputError("region splits need a --task (its regions); with --labels use --holdout-bbox, "
                             "--holdout-lon or --holdout-polygon for a geographic hold-out")
        print("note: region splits need a --task's regions; running the other split kinds", file=sys.stderr)
    kinds = ["holdout"] if holdout is not None else [k for k in splits if k != "region"]
    results = []
    for kind in kinds:
        with warnings.catch_warnings():  # the samples left out are said once, below, by the methods lacking them
            warnings.filterwarnings("ignore", message=r".* samples are left out for every method", category=UserWarning)
            res = evaluate(
                target, methods, split="random" if kind == "holdout" else kind, holdout=holdout, pooling=pooling,
                n_splits=args.n_splits, seed=args.seed, probes=probes, sweep=sweep, fusion=args.fusion,
                block_level=10 if args.block_level is None else args.block_level,  # 0 (faces) read as "not given"
                max_epochs=args.max_epochs, patience=args.patience,
                batch_size=args.batch_size, target_scale=args.target_scale, progress=not args.quiet,
            )
        results.append(res)
    n_target = int(np.isfinite(target.to_numpy(float)).sum())
    if n_target > results[0].n_cells:  # before, only config.json's n_dropped said so
        lacking = ", ".join(f"{k} ({v})" for k, v in results[0].config.get("missing", {}).items())
        print(f"note: {n_target - results[0].n_cells} of {n_target} labelled samples left out: some method has no "
              "data for them (outside the area of the --features files or missing from an --embedding table)"
              + (f"; samples without data: {lacking}" if lacking else ""), file=sys.stderr)
    # the report's paired comparisons: your --embedding tables too, not only names starting with "S2Vec"
    compared = [m for e in embeddings for m in (e, f"{e}-Loc", f"{e} + smoothed counts") if m in methods]
    # every split kind's settings (the first kind's alone said "split": "random", "block_level": null)
    path = write_report(results, args.out, config={"cli": cli, **merge_configs(r.config for r in results)},
                        embeddings=compared)
    print(summary_markdown(results))
    print(f"\nwall time {sum(r.wall_time_s for r in results):.1f} s; report written to {path}")
    return 0
