"""Nothing stale, nothing mixed, no crash on bad input, no plugin that takes interp down (issue 13).

Each test meets a case as a user would (a tree, a file, a plugin, a signal)
and checks the exit code, the first line of stderr and what is left on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from plugin_dists import make_dist

from interpret_core.cli import main
from interpret_core.registry.loader import reset_registry

ROOT = Path(__file__).resolve().parents[1]
#: Tiny `interp run` on a SynthFACS copy: one layer, few images, low AU minimum.
TINY_RUN = ["run", "--limit", "16", "--layers", "conv1", "--top-k", "2", "--metric-option", "min_observations=2",
            "--metric-option", "min_subjects=1"]


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def _interp(*args: str, env: dict | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """``interp ARGS`` in a fresh process (a fresh plugin registry), as a user types it."""
    full_env = dict(os.environ, **(env or {}))
    code = "import sys\nfrom interpret_core.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, **kwargs)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- stale caches -------------------------------------------------------------------------------
def test_run_resume_recomputes_the_scan_after_the_images_change(synthfacs_root, tmp_path, capsys):
    from PIL import Image

    data = tmp_path / "data"
    shutil.copytree(synthfacs_root, data)
    out = tmp_path / "run"
    args = [*TINY_RUN, "--data-root", str(data), "--out", str(out), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["scan"]["reused"] is False
    assert main([*args, "--resume"]) == 0  # nothing changed: the scan is reused
    captured = capsys.readouterr()
    assert json.loads(captured.out)["scan"] == {**first["scan"], "reused": True}
    assert "stale" not in captured.err
    for png in (data / "cohn-kanade-images").rglob("*.png"):
        with Image.open(png) as image:
            inverted = Image.fromarray(255 - np.asarray(image))
        inverted.save(png)
    assert main([*args, "--resume"]) == 0
    captured = capsys.readouterr()
    resumed = json.loads(captured.out)
    assert resumed["scan"]["reused"] is False
    assert resumed["scan"]["recomputed_because"].startswith("the data set's files changed: data_fingerprint")
    assert _first_line(captured.err).startswith(f"warning: {out / 'scan.npz'} is stale, so the scan is recomputed")
    # the same numbers as a fresh run on the inverted images
    fresh_out = tmp_path / "fresh"
    assert main([*TINY_RUN, "--data-root", str(data), "--out", str(fresh_out), "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)
    assert resumed["scores"] == fresh["scores"] and resumed["scores"] != first["scores"]


EDITABLE_METRIC = '''
import torch
from interpret_core import AttributionMetric, MetricResult, hookimpl


class MeanAbs(AttributionMetric):
    name = "test-mean-abs"
    description = "mean absolute attribution (test plugin)"

    def evaluate_batch(self, *, inputs, targets, attributions, masks=None, model=None, method=None):
        return MetricResult(attributions.abs().flatten(1).mean(1) * {scale})


@hookimpl
def interp_register_attribution_metrics(register):
    register(MeanAbs)
'''


def _editable_dist(site: Path, name: str, module: str, source: str) -> None:
    """An editable install of a one-module plugin, as ``pip install -e`` records it (PEP 610 direct_url.json)."""
    make_dist(site, name, "0.1", {name: module}, {module: source})
    info = next(site.glob(f"{name.replace('-', '_')}-0.1.dist-info"))
    (info / "direct_url.json").write_text(json.dumps({"url": site.as_uri(), "dir_info": {"editable": True}}))


@pytest.fixture()
def fresh_registry():
    reset_registry()
    yield
    reset_registry()


def test_bench_recomputes_cells_after_a_plugin_method_is_edited(synthfacs_root, tmp_path, monkeypatch, capsys, fresh_registry):
    site = tmp_path / "site"
    _editable_dist(site, "interp-test-mean-abs", "test_mean_abs_plugin", EDITABLE_METRIC.format(scale="1.0"))
    monkeypatch.syspath_prepend(str(site))
    out = tmp_path / "bench"
    args = ["bench", "--data-root", str(synthfacs_root), "--limit", "4", "--methods", "deconv", "--metrics",
            "test-mean-abs", "--no-baselines", "--out", str(out), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["computed"], first["reused"]) == (1, 0)
    assert main(args) == 0  # unchanged: reused
    assert (json.loads(capsys.readouterr().out)["reused"]) == 1
    # the plugin's author edits the method (an editable install: same version number)
    (site / "test_mean_abs_plugin.py").write_text(textwrap.dedent(EDITABLE_METRIC.format(scale="2.0 + 0.0")))
    sys.modules.pop("test_mean_abs_plugin", None)
    reset_registry()
    assert main(args) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    assert (again["computed"], again["reused"]) == (1, 0)
    (stale,) = again["recomputed"]
    assert stale["file"].startswith("cells/") and "metric_code.source_sha256" in stale["reason"]
    status, warning = [line for line in captured.err.splitlines() if line.strip()][:2]
    assert status == "loading model and data"
    assert warning == ("warning: recomputing cells/deconv__test-mean-abs.json and any other cached file whose "
                       + stale["reason"])
    cell, old = again["methods"][0]["cells"]["test-mean-abs"], first["methods"][0]["cells"]["test-mean-abs"]
    assert cell["mean"] == pytest.approx(2 * old["mean"])


EDITABLE_MODEL = '''
from interp_models.models import FerCNNModel
from interpret_core import hookimpl


class EditedCNN(FerCNNModel):
    name = "test-edited-cnn"
    default_weights = None
    # {edit}


@hookimpl
def interp_register_models(register):
    register(EditedCNN)
'''


def test_train_resume_retrains_folds_after_the_model_plugin_or_interp_changes(synthfacs_root, tmp_path, monkeypatch,
                                                                              capsys, fresh_registry):
    import importlib.metadata

    site = tmp_path / "site"
    _editable_dist(site, "interp-test-edited-cnn", "test_edited_cnn_plugin", EDITABLE_MODEL.format(edit="first"))
    monkeypatch.syspath_prepend(str(site))
    out = tmp_path / "train"
    args = ["train", "--model", "test-edited-cnn", "--dataset", "synthfacs", "--data-root", str(synthfacs_root),
            "--subjects", "4", "--folds", "2", "--epochs", "1", "--workers", "1", "--out", str(out), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*args, "--resume"]) == 0  # unchanged: both folds reused, nothing stale
    captured = capsys.readouterr()
    assert (json.loads(captured.out)["resumed_folds"], json.loads(captured.out)["stale_folds"]) == ([0, 1], [])
    assert "stale" not in captured.err
    # the plugin's author edits the model's module (an editable install: same version number)
    (site / "test_edited_cnn_plugin.py").write_text(EDITABLE_MODEL.format(edit="second"))
    sys.modules.pop("test_edited_cnn_plugin", None)
    reset_registry()
    assert main([*args, "--resume"]) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    assert again["resumed_folds"] == [] and [fold["fold"] for fold in again["stale_folds"]] == [0, 1]
    reason = again["stale_folds"][0]["reason"]
    assert reason.startswith("interp's or a plugin's code or version changed: code.model:test-edited-cnn.source_sha256")
    assert _first_line(captured.err) == f"warning: {out / 'folds' / 'fold-00.json'} is stale, so fold 0 is retrained ({reason})"
    assert again["mean_accuracy"] == first["mean_accuracy"]  # a comment changed: the same arithmetic
    fold = json.loads((out / "folds" / "fold-00.json").read_text())
    assert f"'{fold['fingerprint']['code']['model:test-edited-cnn']['source_sha256'][:30]}" in reason.split(" then, ")[1]
    assert json.loads((out / "model.json").read_text())["fingerprint"] == fold["fingerprint"]  # the final model too
    # interp itself is upgraded: its version is part of the key
    installed = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "99.0" if name == "interp" else installed(name))
    assert main([*args, "--resume"]) == 0
    upgraded = json.loads(capsys.readouterr().out)
    assert upgraded["resumed_folds"] == [] and "code.interp.version ('" in upgraded["stale_folds"][0]["reason"]
    assert "'99.0' now" in upgraded["stale_folds"][0]["reason"]


# -- one writer per output folder ------------------------------------------------------------------
HOLDER = """
import sys, time
from interpret_core.util.io import claim_output_dir
with claim_output_dir(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys, synthfacs_root):
    out = tmp_path / "shared"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        code = main(["bench", "--data-root", str(synthfacs_root), "--limit", "2", "--methods", "centre-gaussian",
                     "--metrics", "au-pointing-game", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 1
        assert _first_line(err) == (f"error: {out} is being written by another interp process (PID {holder.pid}, "
                                    f"`interp {str(out)}`)")
        assert "choose another --out" in err
        assert sorted(p.name for p in out.iterdir()) == [".interp.lock", ".interp.lock.owner"]  # only the holder's
    finally:
        holder.kill()
        holder.wait()
    # the holder died: the kernel dropped its lock, the next writer takes over and leaves no lock file behind
    from interpret_core.util.io import claim_output_dir

    with claim_output_dir(out):
        (out / "x.txt").write_text("mine")
    assert [p.name for p in out.iterdir()] == ["x.txt"]


def test_a_later_run_into_the_same_out_leaves_only_its_own_figures(synthfacs_root, tmp_path, capsys):
    out = tmp_path / "run"
    args = [*TINY_RUN, "--data-root", str(synthfacs_root), "--out", str(out), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    fewer = [("8" if value == "16" and before == "--limit" else value) for before, value in zip(["", *args], args)]
    assert main([*fewer, "--resume"]) == 0  # 8 images instead of 16: fewer AUs are testable
    second = json.loads(capsys.readouterr().out)
    listed = {panel["file"] for panel in second["figures"]["per_au"].values()}
    assert listed < {panel["file"] for panel in first["figures"]["per_au"].values()}, "the test needs fewer AUs"
    drawn = {f"figures/{p.name}" for p in (out / "figures").iterdir()}
    assert {name for name in drawn if name.startswith("figures/AU")} == listed  # none of the first run's left
    assert drawn == listed | set(second["figures"]["heatmaps"].values()) | set(second["figures"]["densities"].values()) \
        | {second["figures"]["agreement"], second["figures"]["layers"]}
    report = (out / "report.html").read_text()
    assert all(name in report for name in listed)


def test_sigint_during_run_leaves_no_empty_output_folder(tmp_path, capsys, monkeypatch):
    import interpret_core.analysis.unit_scan as unit_scan

    def interrupted_scan(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C during the scan
        raise AssertionError("SIGINT did not interrupt")

    monkeypatch.setattr(unit_scan, "scan_units", interrupted_scan)
    out = tmp_path / "new" / "run"
    from interp_metrics.planted import PlantedDataset, PlantedModel, UnitMaxGradient  # fast stand-ins
    from test_run import _registered

    with _registered("test-planted-sigint", interp_register_datasets=[PlantedDataset],
                     interp_register_models=[PlantedModel], interp_register_attributions=[UnitMaxGradient]):
        code = main(["run", "--method", "unit-max-gradient", "--model", "planted-aus-net", "--dataset", "planted-aus",
                     "--out", str(out)])
    assert code == 130
    assert _first_line(capsys.readouterr().err) == "interrupted; finished files are kept"
    assert not (tmp_path / "new").exists()  # nothing was written: the folders it created are gone


# -- plugins that misbehave at import ------------------------------------------------------------
def test_misbehaving_plugins_become_failed_rows(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "interp-exits", "0.1", {"exits": "exits_plugin"}, {"exits_plugin": "import sys\nsys.exit(3)\n"})
    make_dist(site, "interp-ctrlc", "0.1", {"ctrlc": "ctrlc_plugin"}, {"ctrlc_plugin": "raise KeyboardInterrupt\n"})
    make_dist(site, "interp-chatty", "0.1", {"chatty": "chatty_plugin"},
              {"chatty_plugin": "print('hello from chatty')\n"})
    make_dist(site, "interp-hangs", "0.1", {"hangs": "hangs_plugin"}, {"hangs_plugin": "import time\ntime.sleep(600)\n"})
    make_dist(site, "interp-slow", "0.1", {"slow": "slow_plugin"}, {"slow_plugin": "import time\ntime.sleep(1.2)\n"})
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "INTERP_PLUGIN_IMPORT_TIMEOUT": "4"}
    started = time.monotonic()
    result = _interp("plugins", "--json", env=env)
    assert time.monotonic() - started < 120  # the hanging import was abandoned, not waited for
    assert result.returncode == 0, result.stderr
    rows = {row["plugin"]: row for row in json.loads(result.stdout)}  # valid JSON despite the print
    assert rows["exits"]["status"] == "failed" and rows["exits"]["error"] == "import failed: SystemExit: 3"
    assert rows["ctrlc"]["status"] == "failed" and "KeyboardInterrupt" in rows["ctrlc"]["error"]
    assert rows["hangs"]["status"] == "failed"
    assert rows["hangs"]["error"] == ("import did not finish within 4 s (INTERP_PLUGIN_IMPORT_TIMEOUT) and was "
                                      "abandoned; disable it with INTERP_DISABLE_PLUGINS=hangs")
    assert rows["chatty"]["status"] == "ok" and rows["slow"]["status"] == "ok"
    assert "hello from chatty" in result.stderr
    assert "plugin 'slow' took" in result.stderr
    assert {r["status"] for r in json.loads(result.stdout) if r["distribution"] == "interp"} == {"ok"}


def test_a_plugin_that_prints_at_import_leaves_the_json_of_models_and_run_valid(tmp_path, synthfacs_root):
    site = tmp_path / "site"
    make_dist(site, "interp-chatty", "0.1", {"chatty": "chatty_plugin"}, {"chatty_plugin": "print('hello from chatty')\n"})
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    models = _interp("models", "--json", env=env)
    assert models.returncode == 0, models.stderr
    assert "fer-cnn" in {row["name"] for row in json.loads(models.stdout)}
    run = _interp(*TINY_RUN, "--data-root", str(synthfacs_root), "--out", str(tmp_path / "run"), "--json", env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["dataset"]["images"] == 16
    assert "hello from chatty" in models.stderr and "hello from chatty" in run.stderr


def test_a_real_ctrl_c_during_a_plugin_import_stops_interp(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "interp-sleepy", "0.1", {"sleepy": "sleepy_plugin"},
              {"sleepy_plugin": "import sys, time\nprint('sleepy importing', flush=True)\ntime.sleep(60)\n"})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    code = "import sys\nfrom interpret_core.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    process = subprocess.Popen([sys.executable, "-c", code, "plugins", "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in process.stderr:  # the plugin's print was sent to stderr
            if "sleepy importing" in line:
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert _first_line(err) == "interrupted; finished files are kept"
    assert out == ""


# -- weights and cards ---------------------------------------------------------------------------
@pytest.fixture()
def saved_weights(tmp_path):
    from interpret_core.nn.weights import save_weights
    from interpret_core.registry.loader import get_model

    with pytest.warns(UserWarning, match="shipped default weights"):  # they are for other class names
        model = get_model("fer-cnn", weights=None, class_names=[f"c{i}" for i in range(8)], input_size=(1, 64, 64))
    return save_weights(model, tmp_path / "model.safetensors"), model


def _edit_card(weights: Path, **architecture) -> None:
    card_file = weights.with_suffix(".json")
    card = json.loads(card_file.read_text())
    card["architecture"].update(architecture)
    card_file.write_text(json.dumps(card))


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("class_names", 5, "field 'architecture.class_names' must be a list of 2 to 1000 class-name strings, got int 5"),
    ("input_size", "abc", "field 'architecture.input_size' must be [channels, height, width] as three integers, got str 'abc'"),
    ("input_size", [1, 1_000_000, 1_000_000],
     "field 'architecture.input_size' must be [channels 1-16, height 1-4096, width 1-4096], got list [1, 1000000, 1000000]"),
    ("class_names", ["a", "a"], "field 'architecture.class_names' must be distinct names (repeated: a)"),
])
def test_a_damaged_card_is_refused_naming_the_field(saved_weights, tmp_path, capsys, field, value, expected):
    weights, _ = saved_weights
    _edit_card(weights, **{field: value})
    code = main(["run", "--weights", str(weights), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert _first_line(err).startswith(f"error: {weights.with_suffix('.json')}: {expected}")
    assert not (tmp_path / "out").exists()


def test_nan_weights_are_refused_at_load(tmp_path, capsys):
    import torch

    from interpret_core.nn.weights import save_weights
    from interpret_core.registry.loader import get_model

    model = get_model("fer-cnn")
    name, tensor = next((n, t) for n, t in model.module.state_dict().items() if t.is_floating_point())
    with torch.no_grad():
        tensor.view(-1)[:3] = float("nan")
        tensor.view(-1)[3] = float("inf")
    weights = save_weights(model, tmp_path / "nan.safetensors")
    code = main(["run", "--weights", str(weights), "--out", str(tmp_path / "out")])
    assert code == 1
    assert _first_line(capsys.readouterr().err) == (
        f"error: {weights}: tensor {name!r} holds 4 NaN or infinite value(s) of {tensor.numel()}")
    assert not (tmp_path / "out").exists()


def test_seven_class_weights_on_eight_class_data_are_reported(synthfacs_root, tmp_path, capsys):
    from interpret_core.nn.weights import save_weights
    from interpret_core.registry.loader import get_model

    seven = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
    with pytest.warns(UserWarning, match="shipped default weights"):  # they are for 8 classes
        weights = save_weights(get_model("fer-cnn", weights=None, class_names=seven), tmp_path / "seven.safetensors")
    code = main([*TINY_RUN, "--weights", str(weights), "--data-root", str(synthfacs_root), "--out",
                 str(tmp_path / "run"), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    assert _first_line(captured.err) == (
        "warning: data set 'synthfacs''s neutral has no class in model 'fer-cnn' (classes are matched by name "
        "through interpret_core.api.class_names.EMOTION_SYNONYMS); unit scores do not use the classes")
    result = json.loads(captured.out)
    assert "neutral has no class" in result["model"]["class_mismatch"]


# -- smaller ---------------------------------------------------------------------------------------
def test_a_killed_writers_temp_file_is_removed_by_the_next_write_and_a_live_writers_is_kept(tmp_path):
    import fcntl

    from interpret_core.util.io import write_json

    killed = tmp_path / ".results.json.a1b2c3d4.tmp"  # no process holds its lock: its writer died
    live = tmp_path / ".results.json.e5f6g7h8.tmp"  # another process is still writing it
    other = tmp_path / ".scores.csv.a1b2c3d4.tmp"  # another target's
    for path in (killed, live, other):
        path.write_bytes(b"x" * 1000)
    with open(live, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # what atomic_open holds until its rename
        write_json(tmp_path / "results.json", {"a": 1})
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "results.json"])
    write_json(tmp_path / "results.json", {"a": 2})  # the live writer has finished (or died) meanwhile
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, "results.json"])


def test_writes_into_one_folder_list_it_once_per_process_and_still_clean_their_own_leftovers(tmp_path, monkeypatch):
    import fcntl

    import interpret_core.util.io as atomic_io

    listed = []
    real = atomic_io._temp_files
    monkeypatch.setattr(atomic_io, "_temp_files", lambda folder, recursive: listed.append(folder) or real(folder, recursive))
    live = tmp_path / ".figure-0001.png.e5f6g7h8.tmp"
    live.write_bytes(b"x")
    with open(live, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        for index in range(200):
            atomic_io.write_bytes(tmp_path / f"figure-{index:04d}.png", b"png", durable=False)
        assert live.exists()  # its writer is alive
    assert listed == [str(tmp_path)]  # once, not 200 times: writing N files was O(N^2)
    atomic_io.write_bytes(tmp_path / "figure-0001.png", b"png2", durable=False)
    assert not live.exists()  # the next write of that target removes its dead writer's file without a listing
    assert listed == [str(tmp_path)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"figure-{index:04d}.png" for index in range(200)]


def test_without_flock_temp_files_go_once_a_day_old(tmp_path, monkeypatch):
    import interpret_core.util.io as atomic_io

    monkeypatch.setattr(atomic_io, "fcntl", None)  # e.g. Windows: the lock cannot be tested
    old, new = tmp_path / ".results.json.a1b2c3d4.tmp", tmp_path / ".results.json.e5f6g7h8.tmp"
    for path in (old, new):
        path.write_bytes(b"x" * 1000)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    atomic_io.write_json(tmp_path / "results.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([new.name, "results.json"])


def test_train_on_an_unwritable_out_fails_before_any_fold(tmp_path, capsys, synthfacs_root):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["train", "--dataset", "synthfacs", "--data-root", str(synthfacs_root), "--out", str(blocker / "run"),
                 "--folds", "2", "--epochs", "1"])
    assert code == 2
    assert _first_line(capsys.readouterr().err).startswith(f"error: cannot create output folder {blocker / 'run'}:")
    assert blocker.read_text() == "not a folder"


def test_preview_into_a_missing_folder_is_an_error(tmp_path, capsys):
    target = Path("/nonexistent-interp-test-dir") / "p.png"
    code = main(["data", "preview", "--dataset", "synthfacs", "--out", str(target)])
    assert code == 2
    assert _first_line(capsys.readouterr().err) == (
        f"error: --out {target}: folder {target.parent} does not exist")
    assert not target.parent.exists()


@pytest.mark.parametrize(("units", "message"), [
    ("3-1", "error: --units '3-1': range '3-1' is empty (it ends before it starts)"),
    (",", "error: --units ',' names no unit"),
])
def test_visualize_rejects_an_empty_unit_range_before_any_work(tmp_path, capsys, units, message):
    out = tmp_path / "vis"
    code = main(["visualize", "--layer", "conv1", "--units", units, "--out", str(out)])
    assert code == 2
    assert _first_line(capsys.readouterr().err) == message
    assert not out.exists()
