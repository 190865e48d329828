"""`interp train`: subject-independent CV, augmentation, outputs, interrupts and --resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp_datasets.emotions import EMOTIONS
from interpret_core import Dataset, Sample, UsageError, get_model
from interpret_core.cli import main
from interpret_core.workflows.executors import Announcement
from interpret_core.workflows.training import (
    ABANDONED,
    FoldJob,
    TrainConfig,
    _build_model,
    _deterministic_torch,
    _final_task,
    _fit,
    _seeds,
    augment_batch,
    class_weights,
    confusion_matrix,
    load_labelled_arrays,
    train,
)
from interpret_core.nn.weights import sha256_file, state_dict_bytes


class FakeFaces(Dataset):
    """Tiny learnable stand-in: class c draws a bright bar at row 8 + 6c on a per-subject grey."""

    name = "fake-faces"

    def __init__(self, subjects: int = 6, per_class: int = 2, unlabelled: int = 0, bulk: bool = True, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.items = []
        for s in range(subjects):
            base = rng.uniform(0.3, 0.5)
            for c in range(len(EMOTIONS)):
                for _ in range(per_class):
                    image = base + rng.normal(0, 0.03, (64, 64))
                    image[8 + 6 * c : 12 + 6 * c, 12:52] += 0.4
                    self.items.append((np.clip(image, 0, 1).astype(np.float32), c, f"S{s:03d}"))
            self.items += [(np.full((64, 64), base, np.float32), None, f"S{s:03d}")] * unlabelled
        if not bulk:
            # exercise the per-sample path: the base class's arrays(), which decodes each sample
            self.arrays = lambda indices=None, progress=False: Dataset.arrays(self, indices, progress)

    @property
    def class_names(self):
        return list(EMOTIONS)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        image, emotion, subject = self.items[index]
        return Sample(image=image, emotion=emotion, aus={}, landmarks=None, subject=subject, sequence=f"{subject}_001", frame=index + 1)

    @property
    def subjects(self):
        return [subject for _, _, subject in self.items]

    @property
    def emotions(self):
        return [emotion for _, emotion, _ in self.items]

    def arrays(self, indices=None, progress=False):
        chosen = [self.items[i] for i in np.asarray(indices)]
        return np.stack([c[0] for c in chosen]), np.array([-1 if c[1] is None else c[1] for c in chosen], np.int64)


QUICK = dict(folds=3, epochs=3, patience=2, threads=1, batch_size=16, lr=3e-3)


def _strip_times(value):
    """metrics.json without wall-clock fields (they differ between runs)."""
    if isinstance(value, dict):
        return {k: _strip_times(v) for k, v in value.items() if k not in ("seconds", "command")}
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    return value


# -- pieces ------------------------------------------------------------------------------


def test_load_labelled_arrays_skips_unlabelled_and_matches_per_sample_path():
    bulk = load_labelled_arrays(FakeFaces(unlabelled=2))
    slow = load_labelled_arrays(FakeFaces(unlabelled=2, bulk=False))
    for a, b in zip(bulk, slow):
        np.testing.assert_array_equal(a, b)
    indices, images, emotions, subjects = bulk
    assert len(indices) == 6 * 16 and images.shape == (96, 64, 64) and (emotions >= 0).all()
    assert len(set(subjects.tolist())) == 6


def test_class_weights_balance_the_loss():
    labels = np.array([0, 0, 0, 1, 2, 2])
    weights = class_weights(labels, 4)
    # every present class carries the same total weight; absent classes none
    totals = np.bincount(labels, weights=weights[labels], minlength=4)
    np.testing.assert_allclose(totals[:3], totals[0])
    assert weights[3] == 0 and np.isclose(totals.sum(), len(labels))


def test_confusion_matrix_counts_pairs():
    true = np.array([0, 1, 1, 2, 2, 2])
    predicted = np.array([0, 1, 2, 2, 2, 0])
    expected = np.zeros((3, 3), int)
    for t, p in zip(true, predicted):
        expected[t, p] += 1
    np.testing.assert_array_equal(confusion_matrix(true, predicted, 3), expected)


def test_augmentation_is_seeded_bounded_and_label_free():
    images = torch.rand(8, 1, 64, 64)
    a = augment_batch(images, torch.Generator().manual_seed(1))
    b = augment_batch(images, torch.Generator().manual_seed(1))
    c = augment_batch(images, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == images.shape and a.min() >= 0 and a.max() <= 1


def test_pure_flip_mirrors_image_and_masks_together():
    image = torch.zeros(1, 1, 64, 64)
    image[..., 20:30, 5:15] = 1.0  # a "left" region
    masks = image.bool().expand(1, 2, 64, 64).clone()
    flipped, flipped_masks = augment_batch(
        image, torch.Generator().manual_seed(0), masks,
        max_rotation_deg=0, max_shift=0, scale_range=(1, 1), brightness=0, contrast=0, flip_probability=1.0,
    )
    torch.testing.assert_close(flipped, torch.flip(image, dims=[-1]))
    assert torch.equal(flipped_masks, torch.flip(masks, dims=[-1]))


def test_geometric_augmentation_moves_masks_with_the_image():
    image = torch.zeros(16, 1, 64, 64)
    image[..., 18:34, 8:24] = 1.0
    masks = image.bool()
    warped, warped_masks = augment_batch(image, torch.Generator().manual_seed(3), masks, brightness=0, contrast=0)
    # where the warped image is clearly inside / outside the region the mask agrees
    inside, outside = warped > 0.9, warped < 0.1
    assert warped_masks[inside].all() and not warped_masks[outside].any()
    assert not torch.equal(warped_masks, masks)


# -- the protocol ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    result = train(TrainConfig(**QUICK), out, dataset=FakeFaces(unlabelled=1))
    return out, result


def test_outputs_and_subject_independence(trained):
    out, result = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result.metrics))
    assert metrics["class_names"] == list(EMOTIONS)
    assert len(metrics["folds"]) == 3 and sorted((out / "folds").iterdir())[-1].name == "fold-02.json"
    every_test_subject = []
    for fold in metrics["folds"]:
        train_s, test_s = set(fold["train_subjects"]), set(fold["test_subjects"])
        fit_s, val_s = set(fold["fit_subjects"]), set(fold["validation_subjects"])
        assert train_s and test_s and not train_s & test_s
        assert fit_s | val_s == train_s and not fit_s & val_s and val_s
        assert sum(map(sum, fold["confusion_matrix"])) == fold["n_test"]
        assert np.isclose(fold["accuracy"], np.trace(fold["confusion_matrix"]) / fold["n_test"])
        assert 1 <= fold["best_epoch"] <= fold["epochs_run"] <= QUICK["epochs"]
        every_test_subject += fold["test_subjects"]
    assert sorted(every_test_subject) == [f"S{s:03d}" for s in range(6)], "each subject is tested exactly once"
    accuracies = [f["accuracy"] for f in metrics["folds"]]
    assert np.isclose(metrics["mean_accuracy"], np.mean(accuracies))
    assert np.isclose(metrics["std_accuracy"], np.std(accuracies, ddof=1))
    # no unlabelled sample is counted
    assert sum(f["n_test"] for f in metrics["folds"]) == 96


def test_final_model_card_and_loading(trained):
    out, result = trained
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"]["model"] == "fer-cnn"
    assert card["weights"]["sha256"] == sha256_file(out / "model.safetensors")
    assert card["metrics"]["mean_accuracy"] == result.metrics["mean_accuracy"]
    assert card["protocol"]["folds"] == 3 and card["seed"] == 0
    assert card["command"].startswith("interp train --model fer-cnn --dataset fake-faces")
    assert "--threads 1" in card["command"] and card["dataset"]["samples"] == 96
    assert card["dataset"]["sha256"] and card["versions"]["torch"] == torch.__version__
    model = get_model("fer-cnn", weights=out / "model.safetensors")
    assert model.card["metrics"]["fold_accuracies"] == [f["accuracy"] for f in result.metrics["folds"]]


def test_the_data_is_learnable_by_the_recipe(trained):
    # The fake bars are trivially separable; if the training loop were broken
    # (no optimiser step, labels shuffled) accuracy would stay near 1/8.
    _, result = trained
    assert result.metrics["pooled_accuracy"] > 0.4  # chance: 0.125


def test_resume_after_interrupt_gives_the_same_results(trained, tmp_path):
    reference_out, reference = trained
    out = tmp_path / "run"

    def interrupt_after_first_fold(event, info):
        if event == "fold_end" and info["fold"] == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**QUICK), out, dataset=FakeFaces(unlabelled=1), callback=interrupt_after_first_fold)
    # Ctrl-C leaves complete files only: one finished fold, nothing else, no temp files
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["folds", "folds/fold-00.json"]
    with pytest.raises(UsageError, match="--resume"):
        train(TrainConfig(**QUICK), out, dataset=FakeFaces(unlabelled=1))
    events = []
    resumed = train(TrainConfig(**QUICK), out, dataset=FakeFaces(unlabelled=1), resume=True, callback=lambda e, i: events.append((e, i.get("fold"))))
    assert resumed.resumed_folds == [0]
    assert ("fold_start", 0) not in events and ("fold_start", 1) in events
    assert _strip_times(resumed.metrics) == _strip_times(reference.metrics)
    assert sha256_file(out / "model.safetensors") == sha256_file(reference_out / "model.safetensors")


def test_folds_in_worker_processes_give_identical_results(trained, tmp_path):
    reference_out, reference = trained
    events = []
    result = train(TrainConfig(**QUICK), tmp_path, dataset=FakeFaces(unlabelled=1), jobs=2, callback=lambda e, i: events.append(e))
    assert _strip_times(result.metrics) == _strip_times(reference.metrics)
    assert sha256_file(tmp_path / "model.safetensors") == sha256_file(reference_out / "model.safetensors")
    assert events.count("fold_start") == events.count("fold_end") == 3 and "epoch_end" in events


class _HeardFrom(Announcement):
    """The folds' decision as a final model in flight hears it: from its ``after``-th question on (None: never)."""

    def __init__(self, value: int, after: int | None):
        super().__init__()
        self.value, self.after, self.asked = value, after, 0

    def heard(self):
        self.asked += 1
        return None if self.after is None or self.asked <= self.after else self.value


def _final_job(epochs: int) -> FoldJob:
    config = TrainConfig(**{**QUICK, "epochs": epochs, "model": "fer-cnn"})
    _, images, labels, subjects = load_labelled_arrays(FakeFaces())
    probe = get_model("fer-cnn")
    return FoldJob(probe.to_input(images).cpu().numpy(), labels, subjects, list(EMOTIONS), config)


def _weights_of_a_run_of(job: FoldJob, epochs: int) -> bytes:
    """What the final model was before it could start with the folds: a run of exactly ``epochs`` epochs."""
    with _deterministic_torch(job.config.threads):
        torch_seed, _ = _seeds(job.config.seed, -1)
        model = _build_model(job.config, job.class_names, torch_seed)
        _fit(model, job.tensor(), job.labels, job.config, torch_seed, epochs)
        return state_dict_bytes(model.module)


@pytest.mark.parametrize("decided, heard_after", [(2, 0), (3, 1), (2, 3)],
                         ids=["known-from-the-start", "heard-before-it-is-reached", "heard-after-it-passed"])
def test_a_final_model_started_before_the_folds_decided_stops_at_their_epochs_with_the_weights_of_that_many(decided, heard_after):
    job = _final_job(epochs=4)
    answer = _final_task(job, _HeardFrom(decided, heard_after))
    assert set(answer) == {"epochs", "state"} and answer["epochs"] == decided
    assert answer["state"] == _weights_of_a_run_of(job, decided)


def test_a_final_model_that_ran_every_epoch_undecided_returns_each_epochs_weights_equal_to_a_run_of_that_many():
    # The argument that lets the final model start with the folds: its schedule (the cosine over
    # config.epochs, one seeded generator for shuffles and augmentation) does not depend on the epochs it
    # stops at, so the weights after k epochs of a longer run are those of a k-epoch run, byte for byte.
    job = _final_job(epochs=3)
    answer = _final_task(job, _HeardFrom(2, None))
    assert set(answer) == {"states"} and len(answer["states"]) == 3
    runs = [_weights_of_a_run_of(job, epochs) for epochs in (1, 2, 3)]
    assert answer["states"] == runs and len(set(runs)) == 3  # and training moved the weights every epoch


def test_a_final_model_told_the_command_left_early_stops_after_its_current_epoch():
    job = _final_job(epochs=4)
    question = _HeardFrom(ABANDONED, 1)  # the command leaves during the second epoch
    assert _final_task(job, question) == {"abandoned": True} and question.asked == 2


def test_ctrl_c_after_the_last_fold_with_the_final_model_training_on_a_worker_resumes_to_the_same_weights(trained, tmp_path):
    # 3 folds on 2 workers: the final model starts beside the last fold, before the folds decide its epochs
    reference_out, reference = trained
    out, ended = tmp_path / "run", []

    def interrupt_after_the_last_fold(event, info):
        ended.append(event) if event == "fold_end" else None
        if len(ended) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**QUICK), out, dataset=FakeFaces(unlabelled=1), jobs=2, callback=interrupt_after_the_last_fold)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "folds", "folds/fold-00.json", "folds/fold-01.json", "folds/fold-02.json"]  # no metrics, no half a model
    resumed = train(TrainConfig(**QUICK), out, dataset=FakeFaces(unlabelled=1), resume=True, jobs=2)
    assert resumed.resumed_folds == [0, 1, 2]
    assert _strip_times(resumed.metrics) == _strip_times(reference.metrics)
    assert sha256_file(out / "model.safetensors") == sha256_file(reference_out / "model.safetensors")


def test_resume_refuses_results_of_another_recipe(trained, tmp_path):
    out = tmp_path / "run"

    def stop(event, info):
        if event == "fold_end":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**QUICK), out, dataset=FakeFaces(), callback=stop)
    with pytest.raises(UsageError, match="lr"):
        train(TrainConfig(**{**QUICK, "lr": 0.01}), out, dataset=FakeFaces(), resume=True)
    with pytest.raises(UsageError, match="data_sha256"):
        train(TrainConfig(**QUICK), out, dataset=FakeFaces(seed=1), resume=True)


def test_bad_options_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="--folds"):
        train(TrainConfig(folds=1), tmp_path, dataset=FakeFaces())
    with pytest.raises(UsageError, match="cannot make 7"):
        train(TrainConfig(folds=7), tmp_path, dataset=FakeFaces())


# -- through the CLI, on SynthFACS -------------------------------------------------------


def test_interp_train_end_to_end_on_synthfacs(synthfacs_root, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "train", "--model", "fer-cnn", "--dataset", "synthfacs", "--data-root", str(synthfacs_root),
        "--folds", "2", "--epochs", "2", "--jobs", "1", "--out", str(out), "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert summary["mean_accuracy"] == metrics["mean_accuracy"]
    assert {p.name for p in out.iterdir()} == {"folds", "metrics.json", "model.safetensors", "model.json"}
    for fold in metrics["folds"]:
        assert not set(fold["train_subjects"]) & set(fold["test_subjects"])
    assert metrics["dataset"]["subjects"] == 6
    card = json.loads((out / "model.json").read_text())
    assert card["dataset"]["name"] == "synthfacs" and card["architecture"]["class_names"] == metrics["class_names"]
    model = get_model("fer-cnn", weights=out / "model.safetensors")
    assert model.card["weights"]["sha256"] == sha256_file(out / "model.safetensors")
    # a second run into the same folder refuses; --resume finishes at once with the same numbers
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(argv + ["--resume"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["resumed_folds"] == [0, 1] and again["mean_accuracy"] == summary["mean_accuracy"]


def test_subject_subset_and_per_sample_fallback(tmp_path):
    result = train(
        TrainConfig(folds=2, epochs=1, patience=1, threads=1, subjects=4),
        tmp_path,
        dataset=FakeFaces(bulk=False),
    )
    metrics = result.metrics
    assert metrics["dataset"]["subjects"] == 4 and metrics["dataset"]["subject_subset"] == 4
    tested = sorted(s for fold in metrics["folds"] for s in fold["test_subjects"])
    assert tested == ["S000", "S001", "S002", "S003"]
    assert "--subjects 4" in metrics["command"]
    with pytest.raises(UsageError, match="--subjects 9"):
        train(TrainConfig(folds=2, subjects=9), tmp_path / "x", dataset=FakeFaces())


def test_dataset_options_are_parsed_like_every_other_command_and_round_trip(capsys, tmp_path):
    from interpret_core.cli import main
    from interpret_core.registry.options import parse_options
    from interpret_core.workflows.training import TrainConfig

    assert main(["train", "--model", "fer-cnn", "--dataset", "synthfacs", "--dataset-option", "include-neutral", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--dataset-option 'include-neutral' is not key=value" in err and "include_neutral=false" in err

    options = parse_options(["include_neutral=false", "size=48"], "--dataset-option")
    assert options == {"include_neutral": False, "size": 48}
    command = TrainConfig(model="fer-cnn", dataset="synthfacs", dataset_options=options).command(tmp_path)
    words = command.split()
    again = [words[i + 1] for i, word in enumerate(words) if word == "--dataset-option"]
    assert parse_options(again, "--dataset-option") == options


def test_training_runs_with_deterministic_kernels_and_restores_the_mode_without_importing_the_compiler():
    # torch.use_deterministic_algorithms imports torch._inductor (1-2 s per process, before the first
    # fold); the same flag is set through the debug mode instead, and put back afterwards.
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from interpret_core.workflows.training import _deterministic_torch\n"
        "torch.set_deterministic_debug_mode('warn')\n"
        "with _deterministic_torch(1):\n"
        "    assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()\n"
        "    assert torch.get_num_threads() == 1\n"
        "assert torch.get_deterministic_debug_mode() == 1\n"
        "assert 'torch._inductor' not in sys.modules, 'the compiler was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
