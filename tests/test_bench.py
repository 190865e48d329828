"""``interp bench``: outputs, resume, selection and intervals, on tiny stand-ins (a fast CI run)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import interpret_core
from interpret_core import Attribution, AttributionMetric, Dataset, Model, Sample, hookimpl
from interpret_core.analysis.sampling import stratified_indices
from interpret_core.workflows.bench import mean_ci, parse_metric_options, parse_names
from interpret_core.cli import main

torch.set_num_threads(1)

CLASSES = ("neutral", "happy", "surprise")


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 8 * 8, len(CLASSES))

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


class TinyModel(Model):
    name = "test-bench-tiny"

    def __init__(self, **options):
        super().__init__(class_names=CLASSES, input_size=(1, 16, 16), **options)

    def build(self):
        torch.manual_seed(0)
        return TinyNet()

    @property
    def layers(self):
        return ["relu"]


class FakeFaces(Dataset):
    """12 random 16x16 'faces'; AU12 in the lower half for happy, AU1 on top for surprise, none for neutral."""

    name = "test-bench-faces"
    has_au_masks = True

    def __init__(self, data_root=None, seed=0):
        rng = np.random.default_rng(seed)
        self.images = rng.random((12, 16, 16)).astype(np.float32)

    @property
    def class_names(self):
        return list(CLASSES)

    def __len__(self):
        return 12

    def __getitem__(self, index):
        emotion = index % 3
        aus, masks = {}, {}
        if emotion == 1:
            aus = {12: 3}
            masks[12] = np.zeros((16, 16), dtype=bool)
            masks[12][10:14, 4:12] = True
        elif emotion == 2:
            aus = {1: 2}
            masks[1] = np.zeros((16, 16), dtype=bool)
            masks[1][2:5, 3:13] = True
        return Sample(image=self.images[index], emotion=emotion, aus=aus, landmarks=None,
                      subject=f"S{index // 3:03d}", sequence=f"S{index // 3:03d}_001", frame=1,
                      au_masks=masks)


class InputGradient(Attribution):
    name = "test-bench-gradient"

    def attribute(self, module, inputs, target):
        inputs = inputs.detach().clone().requires_grad_(True)
        logits = module(inputs)
        index = torch.as_tensor(target).view(-1, 1).expand(inputs.shape[0], 1)
        (grad,) = torch.autograd.grad(logits.gather(1, index).sum(), inputs)
        return grad


class GradientTimesInput(InputGradient):
    name = "test-bench-grad-x-input"

    def attribute(self, module, inputs, target):
        return super().attribute(module, inputs, target) * inputs


class Broken(Attribution):
    name = "test-bench-broken"

    def attribute(self, module, inputs, target):
        raise interpret_core.CapabilityError("test-bench-broken cannot explain this model")


class Infinite(InputGradient):
    """The gradient with one inf pixel per map: a broken method that must never rank."""

    name = "test-bench-inf"

    def attribute(self, module, inputs, target):
        grad = super().attribute(module, inputs, target)
        grad[:, :, 0, 0] = float("inf")
        return grad


class AllNaN(Attribution):
    name = "test-bench-nan"

    def attribute(self, module, inputs, target):
        return torch.full_like(inputs, float("nan"))


class Interrupting(AttributionMetric):
    """Raises KeyboardInterrupt while ``armed`` (simulates Ctrl-C in the middle of a bench)."""

    name = "test-bench-interrupt"
    armed = True

    def evaluate_batch(self, *, inputs, **_):
        if Interrupting.armed:
            raise KeyboardInterrupt
        return interpret_core.MetricResult(torch.zeros(inputs.shape[0]))


class _Plugin:
    @hookimpl
    def interp_register_models(self, register):
        register(TinyModel)

    @hookimpl
    def interp_register_datasets(self, register):
        register(FakeFaces)

    @hookimpl
    def interp_register_attributions(self, register):
        for cls in (InputGradient, GradientTimesInput, Broken, Infinite, AllNaN):
            register(cls)

    @hookimpl
    def interp_register_attribution_metrics(self, register):
        register(Interrupting)


@pytest.fixture
def stand_ins():
    registry = interpret_core.get_registry()
    assert registry.register_plugin(_Plugin(), "test-bench-plugin")
    try:
        yield
    finally:
        registry.unregister_plugin("test-bench-plugin")


def _bench(out, methods, metrics="au-pointing-game,au-relevance-mass,deletion,randomization", extra=()):
    return [
        "bench", "--model", "test-bench-tiny", "--dataset", "test-bench-faces", "--methods", methods,
        "--metrics", metrics, "--limit", "9", "--out", str(out), "--json", *extra,
    ]


def _mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in sorted((folder / "cells").glob("*.json"))}


def test_bench_cli_outputs_and_resume(stand_ins, tmp_path, capsys):
    out = tmp_path / "bench"
    methods = "test-bench-gradient,centre-gaussian"
    assert main(_bench(out, methods, extra=["--no-baselines"])) == 0
    result = json.loads(capsys.readouterr().out)
    for name in ("bench.json", "bench.csv", "bench.md"):
        assert (out / name).is_file()
    assert json.loads((out / "bench.json").read_text()) == result
    assert [row["method"] for row in result["methods"]] == ["test-bench-gradient", "centre-gaussian"]
    assert result["computed"] == 8 and result["reused"] == 0
    assert result["images"]["n"] == 9
    # neutral images carry no AU: 6 of the 9 selected images score the localisation metrics
    assert result["images"]["n_with_masks"] == 6
    metrics = result["metrics"]
    assert metrics["deletion"]["higher_is_better"] is False and metrics["au-pointing-game"]["higher_is_better"] is True
    assert metrics["randomization"]["extras"][:4] == ["ssim", "signed_spearman", "spearman_final", "ssim_final"]
    assert "spearman_stage1" in metrics["randomization"]["extras"]  # the per-stage curve
    for row in result["methods"]:
        assert row["time_per_image_s"] > 0
        for name, cell in row["cells"].items():
            assert {"mean", "ci_low", "ci_high", "n", "n_undefined", "std"} <= set(cell)
            assert cell["n"] == (6 if metrics[name]["needs_masks"] else 9)
            assert cell["ci_low"] <= cell["mean"] <= cell["ci_high"]
    # weight-independent baseline: randomization similarity 1 (no interval width)
    gaussian = result["methods"][1]["cells"]["randomization"]
    assert gaussian["mean"] == pytest.approx(1.0) and gaussian["extras"]["ssim"]["mean"] == pytest.approx(1.0)
    assert result["methods"][0]["cells"]["randomization"]["mean"] < 0.9
    with open(out / "bench.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["metric"] for r in rows} >= {"deletion", "randomization", "randomization.ssim"}
    assert len([r for r in rows if r["metric"] == "deletion"]) == 2
    markdown = (out / "bench.md").read_text()
    assert "| method |" in markdown and "randomization ↓" in markdown and "test-bench-gradient" in markdown
    # Per-image scores are kept in the cell files.
    cell_file = json.loads((out / "cells" / "test-bench-gradient__deletion.json").read_text())
    assert len(cell_file["scores"]) == 9 and cell_file["key"]

    # Same command again: nothing is recomputed, files untouched.
    before = _mtimes(out)
    assert len(before) == 8
    assert main(_bench(out, methods, extra=["--no-baselines"])) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["computed"] == 0 and again["reused"] == 8
    assert again["attributions_computed"] == 0
    assert _mtimes(out) == before
    assert [r["cells"] for r in again["methods"]] == [
        {k: {**v, "reused": True} for k, v in r["cells"].items()} for r in result["methods"]
    ]

    # Adding a method computes only its own cells.
    assert main(_bench(out, methods + ",test-bench-grad-x-input", extra=["--no-baselines"])) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["computed"] == 4 and added["reused"] == 8
    after = _mtimes(out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(set(after) - set(before)) == sorted(
        f"test-bench-grad-x-input__{m}.json" for m in ("au-pointing-game", "au-relevance-mass", "deletion", "randomization")
    )

    # A different metric option is a different cell: only that column is recomputed.
    assert main(_bench(out, methods, extra=["--no-baselines", "--metric-option", "deletion.steps=8"])) == 0
    changed = json.loads(capsys.readouterr().out)
    assert changed["computed"] == 2 and changed["reused"] == 6


def test_bench_resumes_after_an_interrupt(stand_ins, tmp_path, capsys):
    out = tmp_path / "interrupted"
    metrics = "au-relevance-rank,test-bench-interrupt"
    Interrupting.armed = True
    try:
        assert main(_bench(out, "test-bench-gradient", metrics=metrics)) == 130
    finally:
        Interrupting.armed = False
    finished = _mtimes(out)
    assert list(finished) == ["test-bench-gradient__au-relevance-rank.json"]
    assert not (out / "bench.json").exists()
    capsys.readouterr()
    assert main(_bench(out, "test-bench-gradient", metrics=metrics)) == 0
    result = json.loads(capsys.readouterr().out)
    # baselines are added by default: 3 methods x 2 metrics, one cell already done
    assert [r["method"] for r in result["methods"]] == ["test-bench-gradient", "centre-gaussian", "random-map"]
    assert result["reused"] == 1 and result["computed"] == 5
    assert _mtimes(out)["test-bench-gradient__au-relevance-rank.json"] == finished["test-bench-gradient__au-relevance-rank.json"]


def test_bench_errors_are_clear(stand_ins, tmp_path, capsys):
    assert main(_bench(tmp_path / "a", "test-bench-broken")) == 2  # CapabilityError is a usage error
    assert "test-bench-broken cannot explain" in capsys.readouterr().err
    assert main(_bench(tmp_path / "b", "no-such-method")) == 2
    assert "no-such-method" in capsys.readouterr().err
    assert main(_bench(tmp_path / "c", "test-bench-gradient", metrics="no-such-metric")) == 2
    assert "no-such-metric" in capsys.readouterr().err
    assert main(_bench(tmp_path / "d", "test-bench-gradient", extra=["--metric-option", "deletion.colour=red"])) == 2
    assert "colour" in capsys.readouterr().err
    assert main(_bench(tmp_path / "e", "test-bench-gradient", extra=["--metric-option", "deletion"])) == 2
    assert main(_bench(tmp_path / "g", "test-bench-gradient", extra=["--dataset-option", "colour=1"])) == 2
    assert "colour" in capsys.readouterr().err
    assert main(_bench(tmp_path / "h", "test-bench-gradient", extra=["--dataset-option", "seed"])) == 2
    assert "--dataset-option 'seed'" in capsys.readouterr().err
    assert main(_bench(tmp_path / "f", "test-bench-gradient", extra=["--limit", "0"])) == 2


def test_bench_dataset_options_reach_the_data_set(stand_ins, tmp_path, capsys):
    results = []
    for seed in ("0", "1"):
        args = _bench(tmp_path / seed, "test-bench-gradient", metrics="au-pointing-game",
                      extra=["--no-baselines", "--dataset-option", f"seed={seed}"])
        assert main(args) == 0, capsys.readouterr().err
        results.append(json.loads(capsys.readouterr().out))
    assert [r["config"]["dataset_options"] for r in results] == [{"seed": 0}, {"seed": 1}]
    # Other images (seed 1), so another data hash and other scores.
    assert results[0]["config"]["key"] != results[1]["config"]["key"]
    assert results[0]["methods"][0]["cells"]["au-pointing-game"]["mean"] != results[1]["methods"][0]["cells"]["au-pointing-game"]["mean"]


def test_bench_table_output(stand_ins, tmp_path, capsys):
    args = [a for a in _bench(tmp_path / "t", "test-bench-gradient", metrics="au-pointing-game,class-sensitivity") if a != "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "interp bench" in captured.out and "sensitivity" in captured.out and "random-map" in captured.out
    assert "computed" in captured.err


def test_all_methods_skips_those_that_fail(stand_ins, tmp_path):
    from interpret_core.workflows.bench import BenchConfig, run_bench

    warnings = []
    result = run_bench(
        BenchConfig(methods=None, metrics=["au-pointing-game"], model="test-bench-tiny", dataset="test-bench-faces",
                    limit=6, out=str(tmp_path / "all")),
        warn=warnings.append,
    )
    names = [row["method"] for row in result["methods"]]
    assert {"test-bench-gradient", "test-bench-grad-x-input", "centre-gaussian", "random-map"} <= set(names)
    assert names[-2:] == ["centre-gaussian", "random-map"]
    assert "test-bench-broken" in result["skipped_methods"]
    assert any("test-bench-broken" in w for w in warnings)


def test_a_chance_column_is_shown_but_never_ranked_or_best(stand_ins, tmp_path):
    from interpret_core.workflows.bench import BenchConfig, best_methods, render_markdown, run_bench
    from interpret_core.workflows.bench_report import rank_matrix

    result = run_bench(
        BenchConfig(methods=["test-bench-gradient", "test-bench-grad-x-input"], metrics=["au-pointing-game"],
                    model="test-bench-tiny", dataset="test-bench-faces", limit=6, out=str(tmp_path / "chance")),
        warn=lambda message: None,
    )
    chances = {row["method"]: row["cells"]["au-pointing-game"]["extras"]["chance"]["mean"] for row in result["methods"]}
    assert len(set(chances.values())) == 1  # the same masks and tolerance: one chance level for every method
    assert set(best_methods(result)) == {("au-pointing-game", None)}  # the hit rate has a best; its chance has none
    ranks, methods, labels = rank_matrix(result)
    assert labels == ["au-pointing-game"] and ranks.shape == (len(methods), 1)
    header = render_markdown(result).splitlines()[0]
    assert "au-pointing-game chance (ref.)" in header and "chance ↑" not in header
    assert result["metrics"]["au-pointing-game"]["reference_extras"] == ["chance"]


def test_undefined_maps_are_counted_shown_never_best_and_warned(stand_ins, tmp_path):
    from interpret_core.workflows.bench import BenchConfig, best_methods, run_bench

    warnings = []
    result = run_bench(
        BenchConfig(methods=["test-bench-gradient", "test-bench-inf", "test-bench-nan"],
                    metrics=["au-pointing-game", "deletion", "class-sensitivity", "completeness"], model="test-bench-tiny",
                    dataset="test-bench-faces", limit=9, out=str(tmp_path / "undefined")),
        warn=warnings.append,
    )
    rows = {row["method"]: row for row in result["methods"]}
    # completeness does not apply to methods that do not claim it: n/a, not a failure, no warning
    assert all(row["cells"]["completeness"].get("not_applicable") for row in rows.values())
    assert not result["failed_cells"] and not any("completeness" in w for w in warnings)
    for row in rows.values():
        del row["cells"]["completeness"]
    for broken in ("test-bench-inf", "test-bench-nan"):
        for metric, cell in rows[broken]["cells"].items():
            assert cell["n_undefined"] == cell["n_scored"] > 0 and cell["n"] == 0, (broken, metric)
        assert any(broken in w and "undefined" in w for w in warnings), warnings
    assert all(cell["n_undefined"] == 0 for cell in rows["test-bench-gradient"]["cells"].values())
    assert "test-bench-inf" not in best_methods(result).values()
    assert "test-bench-nan" not in best_methods(result).values()
    out = tmp_path / "undefined"
    markdown = (out / "bench.md").read_text()
    assert "(9 undef.)" in markdown and "constant, NaN or inf" in markdown
    with open(out / "bench.csv") as handle:
        table = [r for r in csv.DictReader(handle) if r["method"] == "test-bench-nan" and r["metric"] == "deletion"]
    assert table[0]["n_undefined"] == "9"
    assert json.loads((out / "bench.json").read_text())["methods"][2]["cells"]["deletion"]["n_undefined"] == 9


# -- helpers ------------------------------------------------------------------------------------
def test_mean_ci_matches_scipy_t_interval():
    rng = np.random.default_rng(0)
    values = rng.normal(0.4, 0.2, size=25)
    values_with_nan = np.append(values, np.nan)
    summary = mean_ci(values_with_nan)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert summary["mean"] == pytest.approx(values.mean())
    assert summary["ci_low"] == pytest.approx(low) and summary["ci_high"] == pytest.approx(high)
    assert summary["n"] == 25 and summary["n_undefined"] == 1
    single = mean_ci([0.5])
    assert single["mean"] == 0.5 and np.isnan(single["ci_low"])
    assert mean_ci([])["n"] == 0


def test_stratified_selection_is_balanced_and_seeded():
    labels = [0] * 50 + [1] * 30 + [2] * 5 + [None] * 3
    chosen = stratified_indices(labels, 20, seed=3)
    assert len(chosen) == 20 and len(set(chosen.tolist())) == 20
    counts = {k: sum(labels[i] == k for i in chosen) for k in (0, 1, 2, None)}
    assert counts == {0: 6, 1: 6, 2: 5, None: 3}
    np.testing.assert_array_equal(chosen, stratified_indices(labels, 20, seed=3))
    assert not np.array_equal(chosen, stratified_indices(labels, 20, seed=4))
    np.testing.assert_array_equal(stratified_indices(labels, 1000, seed=0), np.arange(len(labels)))


def test_option_parsing():
    assert parse_names("all") is None and parse_names("a, b,a") == ["a", "b"]
    assert parse_metric_options(["deletion.steps=8", "deletion.baseline=mean", "au-pointing-game.tolerance=0"]) == {
        "deletion": {"steps": 8, "baseline": "mean"}, "au-pointing-game": {"tolerance": 0}}


def test_method_lists_keep_options_with_their_method():
    from interpret_core.workflows.bench import canonical_spec, parse_method_list

    assert parse_method_list("all") is None
    assert parse_method_list("deconv, occlusion:window=12,stride=6,captum:NoiseTunnel(Saliency,x),nt_samples=8,saliency") == [
        "deconv", "occlusion:window=12,stride=6", "captum:NoiseTunnel(Saliency,x),nt_samples=8", "saliency"]
    assert canonical_spec("occlusion:window=12,stride=6") == canonical_spec("occlusion:stride=6, window=12")
