"""One fit at a time per checkpoint folder (geos2vec.model.lock)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from geos2vec.errors import InvalidInputError
from geos2vec.model.lock import LOCK_NAME, checkpoint_lock

HOLD = textwrap.dedent("""
    import sys, time
    from geos2vec.model.lock import checkpoint_lock
    with checkpoint_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def _dead_pid() -> int:
    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                       timeout=60, check=True)
    return int(p.stdout)


@pytest.fixture
def other_process(tmp_path):
    """A second process holding ``tmp_path / 'ck'``."""
    ck = tmp_path / "ck"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(ck)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield ck, proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_second_holder_is_refused_and_the_lock_goes_with_the_first(tmp_path):
    ck = tmp_path / "ck"
    with checkpoint_lock(ck):
        record = json.loads((ck / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        with pytest.raises(InvalidInputError, match=f"in use by another fit \\(process {os.getpid()} on"):
            with checkpoint_lock(ck):
                pass
        assert (ck / LOCK_NAME).exists()  # the refused one did not remove the holder's lock
    assert not (ck / LOCK_NAME).exists()
    with pytest.raises(RuntimeError):
        with checkpoint_lock(ck):
            raise RuntimeError("a failed fit")
    assert not (ck / LOCK_NAME).exists()
    with checkpoint_lock(None):  # no folder: nothing to hold
        pass


def test_another_process_holding_the_folder_is_named(other_process):
    ck, pid = other_process
    with pytest.raises(InvalidInputError, match=f"process {pid} on"):
        with checkpoint_lock(ck):
            pass


def test_a_lock_of_a_dead_process_is_taken_over_but_not_one_of_another_host(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "since": "then"}))
    with checkpoint_lock(ck):
        assert json.loads((ck / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (ck / LOCK_NAME).exists()
    (ck / LOCK_NAME).write_text(json.dumps({"host": "elsewhere", "pid": _dead_pid(), "since": "then"}))
    with pytest.raises(InvalidInputError, match="'elsewhere'"):
        with checkpoint_lock(ck):
            pass
    (ck / LOCK_NAME).write_text("")  # being written by its owner: not taken over
    with pytest.raises(InvalidInputError, match="unknown owner"):
        with checkpoint_lock(ck):
            pass


def test_fit_refuses_a_folder_another_fit_is_using(other_process):
    pytest.importorskip("keras")
    from geos2vec.model import S2VecModel

    sys.path.insert(0, str(Path(__file__).parent))
    from test_model import TINY, synthetic_images

    ck, pid = other_process
    model = S2VecModel(TINY.replace(epochs=1, batch_size=16))
    with pytest.raises(InvalidInputError, match=f"process {pid}"):
        model.fit(synthetic_images(), checkpoint_dir=ck, verbose=0)
    assert sorted(p.name for p in ck.iterdir()) == [LOCK_NAME]  # nothing written beside the holder's lock
    model.fit(synthetic_images(), checkpoint_dir=ck.parent / "free", verbose=0)
    assert (ck.parent / "free" / "last.weights.h5").is_file() and not (ck.parent / "free" / LOCK_NAME).exists()
