"""A user running long jobs in notebooks, scripts, cron jobs and dask workers: long work shows progress, and one
switch (``geos2vec.set_options(progress=False)``, a function's ``progress=``, the command line's ``--quiet``)
turns all of it off; bars are closed when the work fails; nothing floods a log that is not a terminal.

What each test writes is captured (capsys / capfd) and asserted exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import latlng_to_cell


@pytest.fixture(scope="module")
def model():
    return geos2vec.load_model("default")


def _toy_suite(model, monkeypatch):
    """run_suite on a toy task (6 x 6 San José points) without the shared data."""
    from geos2vec.evaluate import suite
    from geos2vec.evaluate.tasks import Task

    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(6), -121.95 + 0.02 * np.arange(6), indexing="ij")
    cells = np.unique(latlng_to_cell(lat.ravel(), lng.ravel(), 12))
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(rng.poisson(0.7, (len(cells), len(model.channels))).astype(float),
                          index=pd.Index(cells, name="cell_id"), columns=list(model.channels))
    target = pd.Series(rng.normal(size=len(cells)), index=pd.Index(cells, name="cell_id"), name="y")
    task = Task(name="toy", target=target, pooling=None, regions=pd.Series("a", index=target.index),
                block_level=9, features="toy-source")
    monkeypatch.setattr(suite, "load_task", lambda name, data_dir=None, states=None: task)
    monkeypatch.setattr(suite, "load_features", lambda source, data_dir=None: (counts, None))

    def run(**kw):
        return suite.run_suite(["toy"], splits=["random"], probes=["ridge"], model=model, modes=["patch"],
                               untrained=False, n_splits=2, log=None, location_params={"frequency_num": 2}, **kw)
    return run


# --------------------------------------------------------------------------- run_suite
@pytest.mark.parametrize(("option", "arg", "bars"), [
    (True, False, []),                                                  # showed "embedding (patch)" anyway
    (False, True, ["embedding (patch)", "evaluate y (random)"]),        # the argument wins both ways
    (True, None, ["embedding (patch)", "evaluate y (random)"]),         # None follows the option
    (False, None, []),
])
def test_run_suite_progress_argument_reaches_the_embedding_bars(model, monkeypatch, capsys, option, arg, bars):
    run = _toy_suite(model, monkeypatch)
    capsys.readouterr()
    with geos2vec.set_options(progress=option):
        scores, _ = run(progress=arg)
        assert geos2vec.get_options()["progress"] is option            # the block's option is back
    assert set(scores.method) >= {"S2Vec (patch)", "counts"}
    out, err = capsys.readouterr()
    assert out == ""
    shown = [name for name in ("embedding (patch)", "evaluate y (random)") if name in err]
    assert shown == bars
    if not bars:
        assert err == ""


# --------------------------------------------------------------------------- S2VecModel.fit (Keras)
@pytest.fixture(scope="module")
def small_images():
    """4 level-10 images of 4 x 4 level-12 cells with two channels of random counts (Los Angeles): one batch."""
    from geos2vec.raster import rasterize

    rng = np.random.default_rng(1)
    lat, lng = np.meshgrid(34.0 + 0.05 * np.arange(6), -118.5 + 0.05 * np.arange(6), indexing="ij")
    cells = np.unique(latlng_to_cell(lat.ravel(), lng.ravel(), 12))
    table = pd.DataFrame(rng.poisson(2.0, (cells.size, 2)).astype(float), columns=["food", "road"],
                         index=pd.Index(cells, name="cell_id"))
    return rasterize(table, image_level=10).isel(image=slice(0, 4))


def _fit(images, **kw):
    pytest.importorskip("tensorflow")
    from geos2vec.model import S2VecConfig, S2VecModel

    cfg = S2VecConfig(embedding_dim=8, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2, batch_size=4,
                      epochs=2, shuffle_buffer=0, validation_split=0.0, seed=3, mixed_precision="float32")
    model = S2VecModel(cfg)
    model.fit(images, **kw)
    return model


def test_fit_auto_writes_one_line_per_epoch_into_a_log(small_images, capsys):
    """Standard output that is not a terminal (a log file, cron's mail, pytest's capture): Keras 3's bar redrew
    itself with backspaces and colour codes every 50 ms there (it counts any POSIX system as a terminal)."""
    capsys.readouterr()
    with geos2vec.set_options(progress=True):
        history = _fit(small_images).history
    out = capsys.readouterr().out
    assert "\b" not in out and "\x1b" not in out and "\r" not in out    # was the bar's redrawing
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("Epoch")] == ["Epoch 1/2", "Epoch 2/2"]
    losses = [line for line in lines if " - loss: " in line]
    assert len(losses) == 2                                             # one line per epoch
    for line, loss in zip(losses, history.history["loss"]):
        assert line.startswith("1/1 - ") and line.endswith(f"/step - loss: {loss:.4f}")


def test_fit_is_silent_under_the_option_and_evaluate_shows_a_bar_the_switch_turns_off(small_images, capsys):
    """``S2VecModel.evaluate``: every image under every mask, minutes on a state's images without a sign of life."""
    capsys.readouterr()
    with geos2vec.set_options(progress=False):
        model = _fit(small_images)
    assert capsys.readouterr() == ("", "")
    with geos2vec.set_options(progress=True):
        shown = model.evaluate(small_images, n_masks=2, batch_size=2)
    out, err = capsys.readouterr()
    assert out == "" and "evaluate (2 masks): 100%" in err and "| 4/4 [" in err   # 4 images, in 2 batches
    with geos2vec.set_options(progress=True):
        hidden = model.evaluate(small_images, n_masks=2, batch_size=2, progress=False)
    with geos2vec.set_options(progress=False):
        pd.testing.assert_frame_equal(model.evaluate(small_images, n_masks=2, batch_size=2), hidden)
    assert capsys.readouterr() == ("", "")
    pd.testing.assert_frame_equal(shown, hidden)                        # the bar changes nothing else


def test_fit_auto_is_a_bar_on_a_terminal_and_in_a_notebook(monkeypatch):
    import sys

    from geos2vec.model.train import _auto_verbose

    class Terminal:
        def isatty(self):
            return True

        def write(self, text):
            return len(text)

    with geos2vec.set_options(progress=True):
        monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
        assert _auto_verbose("auto") == 2                               # pytest's captured output: a log
        monkeypatch.setattr(sys, "stdout", Terminal())
        assert _auto_verbose("auto") == 1
        monkeypatch.undo()
        monkeypatch.setitem(sys.modules, "ipykernel", object())         # Jupyter: output is no tty, bars work
        assert _auto_verbose("auto") == 1
        assert [_auto_verbose(v) for v in (0, 1, 2, True, "x")] == [0, 1, 2, True, "x"]  # checked later
    with geos2vec.set_options(progress=False):
        assert _auto_verbose("auto") == "auto"                          # check_verbose makes it 0


# --------------------------------------------------------------------------- the command line's --quiet
@pytest.fixture(scope="module")
def embed_inputs(tmp_path_factory):
    """A file of 5 points and a feature table of 300 random POIs around them (Los Angeles)."""
    import geopandas as gpd

    from geos2vec import count_features

    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(2)
    pois = gpd.GeoDataFrame({"fclass": rng.choice(["restaurant", "cafe", "school"], 300)},
                            geometry=gpd.points_from_xy(rng.uniform(-118.3, -118.2, 300), rng.uniform(34.0, 34.1, 300)),
                            crs="EPSG:4326")
    pois.iloc[:5][["geometry"]].to_parquet(d / "rows.parquet")
    count_features(pois).to_parquet(d / "table.parquet")
    return d


def test_cli_quiet_is_for_the_command_only(embed_inputs, tmp_path, capsys, option=True):
    """``geos2vec.cli.main([..., "--quiet"])`` from a notebook or a script left every bar of the session off."""
    from geos2vec.cli import main

    d = embed_inputs
    args = ["embed", str(d / "rows.parquet"), "--features", str(d / "table.parquet"), "--mode", "patch"]
    geos2vec.set_options(progress=option)
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "a.parquet"), "--quiet"]) == 0
    assert capsys.readouterr() == (f"5 rows (5 embedded) -> {tmp_path / 'a.parquet'}\n", "")   # no bar
    assert geos2vec.get_options()["progress"] is option                 # was False after the command
    assert main(args + ["--out", str(tmp_path / "b.parquet")]) == 0
    out, err = capsys.readouterr()
    assert out == f"5 rows (5 embedded) -> {tmp_path / 'b.parquet'}\n"
    assert ("embedding (patch)" in err) is option                       # the session's option again
    # argparse takes an abbreviation: "--qui" was --quiet for the command and left the session's bars off
    assert main(args + ["--out", str(tmp_path / "c.parquet"), "--qui"]) == 0
    assert capsys.readouterr()[1] == ""
    assert geos2vec.get_options()["progress"] is option


# --------------------------------------------------------------------------- evaluate's bar
def test_evaluate_mlp_bar_ends_at_its_total_when_splits_go_in_chunks(monkeypatch):
    """Splits too big to hold at once go through the MLP in chunks; each chunk's tick counted every split, so the
    bar of a large task ran past its total (200 %, 400 %) and said nothing about how far the run was."""
    import tqdm.auto

    from geos2vec.evaluate import mlp_training, protocol

    bars = []

    class Recorder(tqdm.auto.tqdm):
        def close(self):
            if not self.disable and self not in [b for b, _ in bars]:
                bars.append((self, (self.n, self.total)))
            super().close()

    monkeypatch.setattr(tqdm.auto, "tqdm", lambda *a, **k: Recorder(*a, **{**k, "file": __import__("io").StringIO()}))
    monkeypatch.setattr(mlp_training, "_require_mlp", lambda: None)     # no Keras: the training is faked below
    heads_seen = []

    def fake_train_group(xs, ys, train_idx, val_idx, *, eval_idx, **kw):
        heads_seen.append(len(eval_idx))
        return np.zeros(eval_idx.shape), np.ones(len(eval_idx)), None

    monkeypatch.setattr(protocol, "_train_group", fake_train_group)
    monkeypatch.setattr(protocol, "_MLP_CHUNK_VALUES", 200 * 3 * 2)      # two splits of 200 x 3 values at once
    rng = np.random.default_rng(0)
    cells = np.unique(latlng_to_cell(rng.uniform(34, 34.5, 400), rng.uniform(-118.5, -118, 400), 12))[:200]
    x = pd.DataFrame(rng.normal(size=(cells.size, 3)), index=pd.Index(cells, name="cell_id"))
    y = pd.Series(x[0] + rng.normal(size=cells.size), index=x.index, name="y")
    res = protocol.evaluate(y, {"a": x}, n_splits=5, probes=["mlp"], progress=True,
                            sweep={"hidden": [8, 16], "lr": [1e-3], "dropout": [0.0, 0.1]})
    assert heads_seen == [2 * 2, 2 * 2, 2 * 2, 2 * 2, 1 * 2, 1 * 2]    # chunks of 2, 2, 1 splits x 2 configs
    assert len(res.scores) == 5
    assert [counts for _, counts in bars] == [(10, 10)]                 # 5 splits x 2 widths; was (30, 10)


def test_cli_features_counts_the_osm_objects_it_reads_and_quiet_hides_it(tmp_path, capsys):
    """``geos2vec features country.osm.pbf`` read for minutes without a sign of life, and had no --quiet."""
    pytest.importorskip("osmium")
    import osmium

    from geos2vec.cli import main

    pbf = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "osm" / "campo-grande.osm.pbf"
    if not pbf.exists():
        pytest.skip("shared data not available")
    n_objects = sum(1 for _ in osmium.FileProcessor(str(pbf)).with_locations().with_areas())
    geos2vec.set_options(progress=True)
    capsys.readouterr()
    assert main(["features", str(pbf), "--out", str(tmp_path / "a.parquet")]) == 0
    out, err = capsys.readouterr()
    n_cells = len(pd.read_parquet(tmp_path / "a.parquet"))
    assert out.startswith(f"{n_cells:,} cells x ")
    assert f"campo-grande.osm.pbf: {n_objects} objects [" in err        # the counter's last state, on stderr
    assert main(["features", str(pbf), "--out", str(tmp_path / "b.parquet"), "--quiet"]) == 0
    warnings = "".join(line + "\n" for line in err.split("\n") if line.startswith("geos2vec: warning: "))
    assert "outside the ontology" in warnings                           # --quiet leaves the warnings, no bar
    assert capsys.readouterr() == (out.replace("a.parquet", "b.parquet"), warnings)
    assert geos2vec.get_options()["progress"] is True
