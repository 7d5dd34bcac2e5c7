"""scripts/bundle_model.py reads the planned epochs and batch size from a run's recorded command (review of 8deb2ba)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bundle_model():
    spec = importlib.util.spec_from_file_location("bundle_model_card2", ROOT / "scripts" / "bundle_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_recorded_command_with_an_apostrophe_is_read():
    # train_gpu.py records " ".join(sys.argv), unquoted: shlex.split stopped bundle_model.py with
    # "No closing quotation" before it wrote anything, even with --planned-epochs / --batch-size given
    bm = _bundle_model()
    cmd = "scripts/train_gpu.py --data /home/o'brien/data.npz --out /x --max-epochs 100 --batch-size 128"
    assert bm._train_args({"command": cmd}) == (100, 128)


def test_abbreviated_flags_are_those_train_gpu_took():
    # argparse took --max 100 as --max-epochs 100 and --b=64 as --batch-size 64; the card said 400 planned
    # epochs (and "the schedule did not finish") for a run that finished its 100
    bm = _bundle_model()
    assert bm._train_args({"command": "scripts/train_gpu.py --out /x --max 100 --b=64 --masks 20"}) == (100, 64)
    assert bm._train_args({"command": "scripts/train_gpu.py --out /x --masks 20 --max-epochs=120"}) == (120, 256)
