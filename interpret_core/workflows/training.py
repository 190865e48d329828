"""Training with subject-independent k-fold cross-validation.

:func:`train` is what ``interp train`` runs:

1. Load the data set's labelled crops once (``Dataset.arrays`` when the plugin
   has the bulk accessor, else by iterating samples).
2. Split subjects into ``k`` folds (:func:`interpret_core.analysis.splits.subject_kfold`): no subject is in
   two folds. In each fold, hold out ``val_fraction`` of the *training*
   subjects as an inner validation split (subject-disjoint from both the rest
   of the training set and the test fold) and train with early stopping on it,
   keeping the weights of the best validation epoch. Evaluate on the test fold.
3. Save each fold's result as soon as it is finished (``folds/fold-NN.json``),
   so an interrupted run resumes at the first unfinished fold
   (``resume=True``) and reaches the same numbers as an uninterrupted run.
4. Write ``metrics.json`` (per-fold and pooled results, mean and std).
5. Train the **final model** on all labelled subjects for the median
   best-epoch count of the folds (there is no held-out data left to stop on),
   and save it as ``model.safetensors`` + ``model.json``. Its card carries the
   cross-validation metrics, which estimate how well *this training recipe*
   generalises to unseen subjects.

Determinism: the same seed, data, thread count and package versions give the
same weights and numbers, bit for bit. Each fold (and the final model) seeds
its own torch generator for initialisation, dropout, shuffling and
augmentation from ``(seed, fold)``, so skipping finished folds changes
nothing. ``torch.use_deterministic_algorithms(True)`` is on during training.
Floating-point sums in multi-threaded CPU kernels may depend on the thread
count, so the thread count is part of the recipe (``threads``; recorded in the
card's command line).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interpret_core.api.errors import DataError, UsageError
from interpret_core.util.io import read_json, write_json

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from interpret_core.api.interfaces import Dataset, Model

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "load_labelled_arrays",
    "augment_batch",
    "class_weights",
    "confusion_matrix",
]

#: Bump when a change to this module changes trained weights for the same config.
RECIPE_VERSION = 1

Callback = Callable[[str, dict[str, Any]], None]


@dataclasses.dataclass
class TrainConfig:
    """One training recipe. Every field that changes results is in :meth:`fingerprint`.

    Attributes:
        model: model plugin name.
        dataset: dataset plugin name.
        data_root: the data set's folder (None: the plugin's default).
        dataset_options: options for the dataset plugin (e.g. ``{"include_neutral": False}``
            for the 7-class CK+ protocol).
        subjects: use only the first ``subjects`` subject ids (sorted), for quick runs; None: all.
        folds: k of the subject-independent k-fold cross-validation.
        epochs: maximum epochs per fold (early stopping may end sooner).
        patience: stop after this many epochs without a better validation score.
        seed: seeds the folds, the inner splits, initialisation, dropout,
            shuffling and augmentation.
        batch_size: images per optimiser step.
        lr: Adam learning rate.
        weight_decay: Adam L2 weight decay.
        val_fraction: share of each fold's training subjects used for early stopping (>= 1 subject).
        augment: apply the light augmentation (rotation, shift, scale, brightness, contrast, flips).
        cosine: decay the learning rate from ``lr`` to 0 along a cosine over ``epochs`` (per step).
        threads: torch CPU threads per fold (None: torch's default). Part of the
            recipe (see module doc). The default 1 is reproducible on any machine
            and fastest for these small nets (parallelism comes from ``jobs``).
    """

    model: str = "fer-cnn"
    dataset: str = "synthfacs"
    data_root: str | None = None
    #: keyword options of the model plugin (``--model-option``); class_names come from the data set
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    subjects: int | None = None
    folds: int = 10
    epochs: int = 12
    patience: int = 4
    seed: int = 0
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.15
    augment: bool = True
    cosine: bool = True
    threads: int | None = 1

    def validate(self) -> None:
        checks = [
            (self.folds >= 2, "--folds must be at least 2"),
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.patience >= 1, "--patience must be at least 1"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.lr > 0, "--lr must be positive"),
            (self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (0 < self.val_fraction < 1, "--val-fraction must be between 0 and 1"),
            (self.threads is None or self.threads >= 1, "--threads must be at least 1"),
            (self.subjects is None or self.subjects >= 2, "--subjects must be at least 2"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message, "see `interp train --help`")

    def recipe(self) -> dict[str, Any]:
        """The fields that decide the results: everything but the data's path
        (the data's identity is its sha256, kept beside the recipe)."""
        fields = dataclasses.asdict(self)
        fields.pop("data_root")
        if not fields["model_options"]:
            fields.pop("model_options")  # recipes from before --model-option keep their fingerprint
        fields["recipe_version"] = RECIPE_VERSION
        return fields

    def command(self, out: str | Path) -> str:
        """The ``interp train`` command line that reruns this recipe, every option explicit."""
        parts = ["interp", "train", "--model", self.model, "--dataset", self.dataset]
        for key, value in sorted(self.model_options.items()):
            parts += ["--model-option", f"{key}={value}"]
        if self.data_root is not None:
            parts += ["--data-root", str(self.data_root)]
        for key, value in sorted(self.dataset_options.items()):
            parts += ["--dataset-option", f"{key}={value}"]
        if self.subjects is not None:
            parts += ["--subjects", str(self.subjects)]
        parts += [
            "--folds", str(self.folds), "--epochs", str(self.epochs), "--patience", str(self.patience),
            "--seed", str(self.seed), "--batch-size", str(self.batch_size), "--lr", repr(self.lr),
            "--weight-decay", repr(self.weight_decay), "--val-fraction", repr(self.val_fraction),
        ]
        if not self.augment:
            parts.append("--no-augment")
        if not self.cosine:
            parts.append("--constant-lr")
        if self.threads is not None:
            parts += ["--threads", str(self.threads)]
        parts += ["--out", str(out)]
        return shlex.join(parts)


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the metrics and the files it wrote."""

    metrics: dict[str, Any]
    out: Path
    metrics_path: Path
    weights_path: Path
    card_path: Path
    resumed_folds: list[int]
    seconds: float


# -- data ---------------------------------------------------------------------------


def load_labelled_arrays(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every labelled crop of ``dataset``.

    Returns:
        (indices int64 [N] into the data set, images float32 [N, H, W],
        emotions int64 [N], subjects object [N]). Samples without an emotion
        label (``None`` or negative) are left out.
    """
    count = len(dataset)
    if count == 0:
        raise DataError(f"data set {getattr(dataset, 'name', '?')!r} is empty", "check --data-root")
    subjects = np.asarray(list(dataset.subjects), dtype=object)
    arrays = getattr(dataset, "arrays", None)
    if callable(arrays):
        import inspect

        from interpret_core.util.progress import progress_enabled

        wants_progress = "progress" in inspect.signature(arrays).parameters
        images, emotions = arrays(np.arange(count), **({"progress": progress_enabled()} if wants_progress else {}))
        images = np.asarray(images, dtype=np.float32)
        emotions = np.asarray([-1 if e is None else int(e) for e in np.asarray(emotions, dtype=object).tolist()], dtype=np.int64)
    else:
        image_list, emotion_list = [], []
        for index in range(count):
            sample = dataset[index]
            image_list.append(np.asarray(sample.image, dtype=np.float32))
            emotion_list.append(-1 if sample.emotion is None else int(sample.emotion))
        images = np.stack(image_list)
        emotions = np.asarray(emotion_list, dtype=np.int64)
    if images.ndim != 3 or len(images) != count or len(emotions) != count or len(subjects) != count:
        raise DataError(
            f"data set {getattr(dataset, 'name', '?')!r} returned images {images.shape}, {len(emotions)} labels "
            f"and {len(subjects)} subjects for {count} samples",
            "the plugin's arrays()/subjects disagree with its length; report this to its author",
        )
    labelled = np.flatnonzero(emotions >= 0)
    if labelled.size == 0:
        raise DataError(f"data set {getattr(dataset, 'name', '?')!r} has no emotion-labelled samples", "training needs emotion labels")
    classes = len(dataset.class_names)
    if emotions.max() >= classes:
        raise DataError(
            f"data set {getattr(dataset, 'name', '?')!r} has emotion index {int(emotions.max())} but only {classes} class names",
            "report this to the plugin's author",
        )
    return labelled.astype(np.int64), images[labelled], emotions[labelled], subjects[labelled]


def _fingerprint_data(images: np.ndarray, emotions: np.ndarray, subjects: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(images, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(emotions, dtype=np.int64).tobytes())
    digest.update("\n".join(map(str, subjects.tolist())).encode())
    return digest.hexdigest()


# -- augmentation ---------------------------------------------------------------------


def augment_batch(
    images: torch.Tensor,
    generator: torch.Generator,
    masks: torch.Tensor | None = None,
    *,
    max_rotation_deg: float = 3.0,
    max_shift: float = 0.02,
    scale_range: tuple[float, float] = (0.97, 1.03),
    brightness: float = 0.05,
    contrast: float = 0.1,
    flip_probability: float = 0.5,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Light, label-preserving augmentation of a batch.

    One random similarity transform per image (rotation within
    ``+-max_rotation_deg`` degrees, shift within ``+-max_shift`` of the crop
    size, isotropic scale in ``scale_range``) and, with ``flip_probability``, a
    horizontal flip; then a brightness offset in ``+-brightness`` and a
    contrast factor in ``1 +- contrast`` about mid-grey, clipped to [0, 1].

    The flip keeps the emotion label: every CK+ emotion, contempt included, is
    defined by AUs regardless of the side on which a unilateral AU shows. The
    left and right halves of the face swap, so per-AU localisation masks or
    landmark regions must be mirrored with the image: pass them as ``masks``
    and they go through the *same* geometric transform (nearest neighbour),
    so each left-side region ends up on the right and vice versa. Training
    itself uses only images and emotion labels.

    Args:
        images: float32 [N, C, H, W] in [0, 1].
        generator: the torch generator that draws the random parameters.
        masks: optional bool [N, K, H, W] masks to transform geometrically with the images.

    Returns:
        augmented images (and masks, if given), same shapes.
    """
    import torch
    import torch.nn.functional as F

    count = images.shape[0]
    if count == 0:
        return (images, masks) if masks is not None else images

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float32)

    angle = uniform(-max_rotation_deg, max_rotation_deg) * (math.pi / 180.0)
    scale = uniform(*scale_range)
    # affine_grid works in [-1, 1] coordinates, so a shift of f x size is 2f.
    shift_x = uniform(-max_shift, max_shift) * 2.0
    shift_y = uniform(-max_shift, max_shift) * 2.0
    flip = torch.where(torch.rand(count, generator=generator) < flip_probability, -1.0, 1.0)
    offset = uniform(-brightness, brightness)
    gain = uniform(1.0 - contrast, 1.0 + contrast)
    # theta maps output coordinates to input coordinates: rotate and scale by
    # 1/scale (so scale > 1 enlarges the face), mirror x when flipping.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, shift_x], dim=1),
            torch.stack([sin * flip, cos, shift_y], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    warped = ((warped - 0.5) * gain.view(-1, 1, 1, 1) + 0.5 + offset.view(-1, 1, 1, 1)).clamp_(0.0, 1.0)
    if masks is None:
        return warped
    mask_grid = F.affine_grid(theta, [count, masks.shape[1], *masks.shape[2:]], align_corners=False)
    warped_masks = F.grid_sample(masks.to(torch.float32), mask_grid, mode="nearest", padding_mode="zeros", align_corners=False) > 0.5
    return warped, warped_masks


# -- metrics ---------------------------------------------------------------------------


def class_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """Class-balanced loss weights ``n / (classes_present * n_c)``; 0 for absent classes.

    With these weights each present class contributes equally to the loss.
    """
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """int64 [classes, classes]; rows are true classes, columns predictions."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def _balanced_accuracy(matrix: np.ndarray) -> float | None:
    support = matrix.sum(axis=1)
    present = support > 0
    if not present.any():
        return None
    return float(np.mean(np.diag(matrix)[present] / support[present]))


# -- the training loop ------------------------------------------------------------------


def _seeds(seed: int, stream: int) -> tuple[int, np.random.Generator]:
    """A torch seed and a numpy generator for one fold (stream = fold index; -1: final model)."""
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=(int(stream) + 1,))
    torch_seed = int(sequence.generate_state(1, dtype=np.uint64)[0] % (2**63 - 1))
    return torch_seed, np.random.default_rng(sequence)


@contextlib.contextmanager
def _deterministic_torch(threads: int | None):
    import torch

    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_deterministic)
        torch.set_num_threads(old_threads)


def _predict(module: torch.nn.Module, inputs: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class int64 [N], logits float32 [N, classes]) in eval mode."""
    import torch

    module.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, inputs.shape[0], batch_size):
            outputs.append(module(inputs[start : start + batch_size]))
    logits = torch.cat(outputs) if outputs else torch.zeros(0)
    return logits.argmax(dim=1).numpy().astype(np.int64), logits.numpy()


def _fit(
    model: Model,
    inputs: torch.Tensor,
    labels: np.ndarray,
    config: TrainConfig,
    torch_seed: int,
    epochs: int,
    val_inputs: torch.Tensor | None = None,
    val_labels: np.ndarray | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``model.module`` in place; with a validation set, stop early and keep the best epoch.

    Returns:
        {"best_epoch", "epochs_run", "history": [{"epoch", "train_loss", "val_loss", "val_accuracy"}]}
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(torch_seed)
    generator = torch.Generator().manual_seed(torch_seed)
    module = model.module
    classes = len(model.class_names)
    weight = torch.from_numpy(class_weights(labels, classes))
    targets = torch.from_numpy(labels)
    optimiser = torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    count = inputs.shape[0]
    steps_per_epoch = max(1, math.ceil(count / config.batch_size))
    # Cosine decay over the full ``config.epochs`` schedule, per step. The
    # final model runs the same schedule and stops at the folds' median best
    # epoch, so it follows the trajectory the folds validated.
    total_steps = config.epochs * steps_per_epoch if config.cosine else 0
    step_index = 0
    history: list[dict[str, Any]] = []
    best: tuple[float, float] | None = None  # (-val loss, val accuracy)
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch = epochs
    for epoch in range(1, epochs + 1):
        module.train()
        order = torch.randperm(count, generator=generator)
        total_loss = 0.0
        for start in range(0, count, config.batch_size):
            batch = order[start : start + config.batch_size]
            if batch.numel() < 2 and count > 1:
                continue  # a batch of one breaks BatchNorm; it is at most one image per epoch
            images = inputs[batch]
            if total_steps:
                for group in optimiser.param_groups:
                    group["lr"] = config.lr * 0.5 * (1.0 + math.cos(math.pi * min(step_index, total_steps) / total_steps))
            step_index += 1
            if config.augment:
                images = augment_batch(images, generator)
            loss = F.cross_entropy(module(images), targets[batch], weight=weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total_loss += float(loss.detach()) * batch.numel()
        record: dict[str, Any] = {"epoch": epoch, "train_loss": total_loss / max(count, 1)}
        if val_inputs is not None and val_labels is not None and len(val_labels):
            predicted, logits = _predict(module, val_inputs)
            val_loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(val_labels)))
            val_accuracy = float(np.mean(predicted == val_labels))
            record.update(val_loss=val_loss, val_accuracy=val_accuracy)
            # Loss, not accuracy: on a few validation subjects accuracy jumps
            # by whole images and picks noisy early peaks.
            score = (-val_loss, val_accuracy)
            if best is None or score > best:
                best = score
                best_epoch = epoch
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if best is not None and epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return {"best_epoch": best_epoch, "epochs_run": len(history), "history": history}


def _inner_split(train_subjects: Sequence[str], fraction: float, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(fit subjects, validation subjects), disjoint; at least one of each."""
    subjects = sorted(train_subjects)
    if len(subjects) < 2:
        raise UsageError(
            f"a fold has only {len(subjects)} training subject(s); an inner validation split needs 2",
            "use fewer --folds or more subjects",
        )
    count = min(len(subjects) - 1, max(1, int(round(fraction * len(subjects)))))
    order = rng.permutation(len(subjects))
    validation = sorted(subjects[i] for i in order[:count])
    fit = sorted(subjects[i] for i in order[count:])
    return fit, validation


def _build_model(config: TrainConfig, class_names: Sequence[str], torch_seed: int) -> Model:
    import torch

    from interpret_core.registry.loader import get_registry

    cls = get_registry().get_class("model", config.model)
    torch.manual_seed(torch_seed)  # initialisation
    return cls(**{**config.model_options, "class_names": list(class_names)})


def _fold_file(out: Path, index: int) -> Path:
    return out / "folds" / f"fold-{index:02d}.json"


def _run_fold(
    fold_index: int,
    fold_test: np.ndarray,
    fold_train: np.ndarray,
    inputs: torch.Tensor,
    labels: np.ndarray,
    subjects: np.ndarray,
    class_names: list[str],
    config: TrainConfig,
    on_epoch: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    torch_seed, rng = _seeds(config.seed, fold_index)
    train_subjects = sorted(set(subjects[fold_train].tolist()))
    test_subjects = sorted(set(subjects[fold_test].tolist()))
    fit_subjects, val_subjects = _inner_split(train_subjects, config.val_fraction, rng)
    val_set = set(val_subjects)
    is_val = np.array([s in val_set for s in subjects[fold_train].tolist()], dtype=bool)
    fit_idx, val_idx = fold_train[~is_val], fold_train[is_val]
    import torch

    model = _build_model(config, class_names, torch_seed)
    fit = _fit(
        model, inputs[torch.from_numpy(fit_idx)], labels[fit_idx], config, torch_seed, config.epochs,
        val_inputs=inputs[torch.from_numpy(val_idx)], val_labels=labels[val_idx], on_epoch=on_epoch,
    )
    predicted, _ = _predict(model.module, inputs[torch.from_numpy(fold_test)])
    true = labels[fold_test]
    matrix = confusion_matrix(true, predicted, len(class_names))
    return {
        "fold": fold_index,
        "accuracy": float(np.mean(predicted == true)) if len(true) else None,
        "balanced_accuracy": _balanced_accuracy(matrix),
        "confusion_matrix": matrix.tolist(),
        "n_train": int(len(fit_idx)),
        "n_validation": int(len(val_idx)),
        "n_test": int(len(fold_test)),
        "train_subjects": train_subjects,
        "fit_subjects": fit_subjects,
        "validation_subjects": val_subjects,
        "test_subjects": test_subjects,
        "best_epoch": fit["best_epoch"],
        "epochs_run": fit["epochs_run"],
        "history": fit["history"],
        "seconds": time.perf_counter() - started,
    }


def _folds_in_process(pending, inputs, labels, subjects, class_names, config, on_start, on_epoch):
    """Yield (fold index, record) for each pending fold, one after the other, in this process."""
    for fold_index, train_pos, test_pos in pending:
        on_start(fold_index)
        record = _run_fold(
            fold_index, test_pos, train_pos, inputs, labels, subjects, class_names, config,
            lambda r, _f=fold_index: on_epoch(_f, r),
        )
        yield fold_index, record


_WORKER: dict[str, Any] = {}


def _worker_init(inputs: np.ndarray, labels: np.ndarray, subjects: np.ndarray, class_names: list[str], config: TrainConfig, queue: Any) -> None:
    import torch

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    _WORKER.update(inputs=torch.from_numpy(inputs), labels=labels, subjects=subjects, class_names=class_names, config=config, queue=queue)


def _worker_fold(fold_index: int, train_pos: np.ndarray, test_pos: np.ndarray) -> tuple[int, dict[str, Any]]:
    w = _WORKER
    w["queue"].put(("start", fold_index, None))
    record = _run_fold(
        fold_index, test_pos, train_pos, w["inputs"], w["labels"], w["subjects"], w["class_names"], w["config"],
        lambda r: w["queue"].put(("epoch", fold_index, r)),
    )
    return fold_index, record


def _folds_in_workers(pending, workers, inputs, labels, subjects, class_names, config, on_start, on_epoch):
    """Yield (fold index, record) as worker processes finish the pending folds.

    Each fold is seeded on its own and runs with ``config.threads`` threads
    either way, so the records equal those of :func:`_folds_in_process`
    (tested). Workers are spawned (never forked: a forked OpenMP runtime can
    hang), so a script that calls :func:`train` with ``jobs > 1`` needs the
    usual ``if __name__ == "__main__":`` guard.
    """
    import multiprocessing
    import queue as queue_module

    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    pool = context.Pool(
        workers,
        initializer=_worker_init,
        initargs=(inputs.numpy(), labels, subjects, class_names, config, events),
    )

    def drain() -> None:
        while True:
            try:
                kind, fold_index, record = events.get_nowait()
            except queue_module.Empty:
                return
            if kind == "start":
                on_start(fold_index)
            else:
                on_epoch(fold_index, record)

    try:
        remaining = [pool.apply_async(_worker_fold, fold) for fold in pending]
        while remaining:
            drain()
            done = [r for r in remaining if r.ready()]
            if not done:
                time.sleep(0.05)
                continue
            for result in done:
                remaining.remove(result)
                fold_index, record = result.get()
                drain()
                yield fold_index, record
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _summarise(folds: list[dict[str, Any]], class_names: list[str]) -> dict[str, Any]:
    accuracies = np.array([f["accuracy"] for f in folds if f["accuracy"] is not None], dtype=np.float64)
    balanced = np.array([f["balanced_accuracy"] for f in folds if f["balanced_accuracy"] is not None], dtype=np.float64)
    pooled = np.sum([np.asarray(f["confusion_matrix"]) for f in folds], axis=0)
    std = float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0
    return {
        "mean_accuracy": float(accuracies.mean()),
        "std_accuracy": std,
        "std_ddof": 1,
        "min_accuracy": float(accuracies.min()),
        "max_accuracy": float(accuracies.max()),
        "mean_balanced_accuracy": float(balanced.mean()) if len(balanced) else None,
        "pooled_accuracy": float(np.trace(pooled) / pooled.sum()),
        "pooled_confusion_matrix": pooled.tolist(),
        "per_class_recall": {
            name: (float(pooled[i, i] / pooled[i].sum()) if pooled[i].sum() else None) for i, name in enumerate(class_names)
        },
        "median_best_epoch": int(math.ceil(float(np.median([f["best_epoch"] for f in folds])))),
    }


def _open_dataset(config: TrainConfig) -> Dataset:
    from interpret_core.registry.loader import open_dataset

    return open_dataset(config.dataset, config.data_root, config.dataset_options)


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    dataset: Dataset | None = None,
    callback: Callback | None = None,
    argv: Sequence[str] | None = None,
    jobs: int = 1,
) -> TrainResult:
    """Cross-validate ``config`` and train the final model; write everything into ``out``.

    Args:
        config: the recipe.
        out: output folder (created).
        resume: reuse finished folds found in ``out/folds`` (they must come
            from the same recipe and data; otherwise a UsageError says which field differs).
        overwrite: discard earlier results in ``out`` instead of refusing.
        dataset: use this Dataset instead of opening ``config.dataset`` (tests, notebooks).
        callback: ``callback(event, info)`` for ``"fold_start"``, ``"epoch_end"``,
            ``"fold_end"``, ``"final_start"``, ``"final_end"``; may raise to stop
            (finished files stay complete).
        argv: the command line as typed, recorded in the card beside the canonical one.
        jobs: folds trained at once, each in its own spawned process with
            ``config.threads`` threads. Does not change any result.
    """
    import torch

    config.validate()
    if dataset is not None:
        config = dataclasses.replace(config, dataset=getattr(dataset, "name", config.dataset))
    started = time.perf_counter()
    out = Path(out)
    folds_dir = out / "folds"
    existing = sorted(folds_dir.glob("fold-*.json")) if folds_dir.is_dir() else []
    if existing and not (resume or overwrite):
        raise UsageError(
            f"{out} already holds {len(existing)} finished fold(s) of a training run",
            "pass --resume to continue it, --overwrite to start again, or choose another --out",
        )
    if overwrite:
        for path in existing + [out / "metrics.json", out / "model.safetensors", out / "model.json"]:
            path.unlink(missing_ok=True)
        existing = []
    emit = callback or (lambda event, info: None)

    if dataset is None:
        dataset = _open_dataset(config)
    class_names = list(dataset.class_names)
    indices, images, labels, subjects = load_labelled_arrays(dataset)
    if config.subjects is not None:
        unique = sorted(set(subjects.tolist()))
        if config.subjects > len(unique):
            raise UsageError(
                f"--subjects {config.subjects} but the data set has {len(unique)} subjects with labelled samples",
                f"choose at most {len(unique)}",
            )
        keep = np.isin(subjects, np.asarray(unique[: config.subjects], dtype=object))
        indices, images, labels, subjects = indices[keep], images[keep], labels[keep], subjects[keep]
    data_sha = _fingerprint_data(images, labels, subjects)
    dataset_info = {
        "name": getattr(dataset, "name", config.dataset),
        "data_root": config.data_root,
        "options": dict(config.dataset_options),
        "subject_subset": config.subjects,
        "samples": int(len(labels)),
        "subjects": int(len(set(subjects.tolist()))),
        "class_names": class_names,
        "class_counts": np.bincount(labels, minlength=len(class_names)).tolist(),
        "sha256": data_sha,
    }
    fingerprint = {"recipe": config.recipe(), "data_sha256": data_sha}

    # Folds split every sample's subject (subject_kfold), restricted to
    # labelled samples; with a subject subset, subject_kfold on the subset.
    from interpret_core.analysis.splits import subject_kfold

    folds = []
    if config.subjects is None:
        labelled_position = {int(i): p for p, i in enumerate(indices.tolist())}
        for fold in subject_kfold(list(dataset.subjects), k=config.folds, seed=config.seed):
            train_pos = np.array([labelled_position[int(i)] for i in fold.train if int(i) in labelled_position], dtype=np.int64)
            test_pos = np.array([labelled_position[int(i)] for i in fold.test if int(i) in labelled_position], dtype=np.int64)
            folds.append((fold.index, train_pos, test_pos))
    else:
        folds = [(f.index, f.train, f.test) for f in subject_kfold(subjects.tolist(), k=config.folds, seed=config.seed)]

    results: dict[int, dict[str, Any]] = {}
    resumed: list[int] = []
    for path in existing:
        record = read_json(path)
        if record.get("fingerprint") != fingerprint:
            field = _first_difference(record.get("fingerprint") or {}, fingerprint)
            raise UsageError(
                f"{path} was made by a different recipe or data ({field} differs), so --resume cannot reuse it",
                "rerun with the original options, or pass --overwrite to start again",
            )
        results[int(record["fold"])] = record
        resumed.append(int(record["fold"]))

    with _deterministic_torch(config.threads):
        threads = torch.get_num_threads()
        probe = _build_model(config, class_names, 0)
        inputs = probe.to_input(images)
        architecture = probe.architecture()
        del probe
        from interpret_core.util.progress import progress_bar

        with progress_bar() as progress:
            fold_task = progress.add_task("folds", total=len(folds), completed=len(results))
            epoch_task = progress.add_task("epochs", total=config.epochs)
            pending = [fold for fold in folds if fold[0] not in results]
            workers = max(1, min(int(jobs), len(pending)))
            epoch_tasks: dict[int, Any] = {}

            def on_start(fold_index: int) -> None:
                emit("fold_start", {"fold": fold_index, "folds": len(folds)})
                if workers == 1:
                    progress.reset(epoch_task, total=config.epochs, description=f"fold {fold_index}/{len(folds) - 1} epochs")
                    epoch_tasks[fold_index] = epoch_task
                else:
                    epoch_tasks[fold_index] = progress.add_task(f"fold {fold_index}/{len(folds) - 1} epochs", total=config.epochs)

            def on_epoch(fold_index: int, record: dict[str, Any]) -> None:
                progress.advance(epoch_tasks[fold_index])
                emit("epoch_end", {"fold": fold_index, **record})

            if workers == 1:
                finished = _folds_in_process(pending, inputs, labels, subjects, class_names, config, on_start, on_epoch)
            else:
                progress.update(epoch_task, visible=False)
                finished = _folds_in_workers(pending, workers, inputs, labels, subjects, class_names, config, on_start, on_epoch)
            try:
                for fold_index, record in finished:
                    record["fingerprint"] = fingerprint
                    write_json(_fold_file(out, fold_index), record)
                    results[fold_index] = record
                    if workers > 1:
                        progress.remove_task(epoch_tasks[fold_index])
                    progress.advance(fold_task)
                    emit("fold_end", {"fold": fold_index, "accuracy": record["accuracy"], "best_epoch": record["best_epoch"]})
            finally:
                finished.close()  # stops worker processes at once if we leave early
            progress.update(epoch_task, visible=True)

            ordered = [results[i] for i, _, _ in folds]
            summary = _summarise(ordered, class_names)
            final_epochs = summary["median_best_epoch"]
            metrics: dict[str, Any] = {
                "class_names": class_names,
                **{k: v for k, v in summary.items()},
                "folds": [{k: v for k, v in r.items() if k != "fingerprint"} for r in ordered],
                "protocol": _protocol(config),
                "dataset": dataset_info,
                "final_model": {
                    "what": "retrained on all labelled subjects (no held-out data) for the median best epoch of the folds",
                    "epochs": final_epochs,
                    "samples": int(len(labels)),
                },
                "threads": threads,
                "command": config.command(out),
            }
            write_json(out / "metrics.json", metrics)

            weights_path = out / "model.safetensors"
            from interpret_core.nn.weights import card_path, read_card, save_weights

            card_ok = False
            if resume and weights_path.is_file() and card_path(weights_path).is_file():
                with contextlib.suppress(Exception):
                    card_ok = read_card(weights_path).get("fingerprint") == fingerprint
            if not card_ok:
                emit("final_start", {"epochs": final_epochs})
                progress.reset(epoch_task, total=final_epochs, description="final model epochs")
                torch_seed, _ = _seeds(config.seed, -1)
                model = _build_model(config, class_names, torch_seed)
                _fit(model, inputs, labels, config, torch_seed, final_epochs, on_epoch=lambda r: progress.advance(epoch_task))
                card = {
                    "dataset": dataset_info,
                    "protocol": _protocol(config),
                    "seed": config.seed,
                    "recipe": config.recipe(),
                    "fingerprint": fingerprint,
                    "command": config.command(out),
                    "argv": list(argv) if argv is not None else None,
                    "threads": threads,
                    "metrics": {
                        k: summary[k]
                        for k in ("mean_accuracy", "std_accuracy", "std_ddof", "min_accuracy", "max_accuracy",
                                  "mean_balanced_accuracy", "pooled_accuracy", "per_class_recall")
                    }
                    | {"fold_accuracies": [r["accuracy"] for r in ordered], "folds": len(ordered)},
                    "notes": (
                        f"Final model: {architecture['model']} retrained on all {len(labels)} labelled crops of "
                        f"{dataset_info['subjects']} subjects for {final_epochs} epochs (the median best epoch of the "
                        f"{len(ordered)} cross-validation folds). The metrics are the subject-independent "
                        f"{len(ordered)}-fold cross-validation estimate of this recipe; the final model itself has "
                        "seen every subject. Made by `interp train`."
                    ),
                }
                save_weights(model, weights_path, card)
                emit("final_end", {"path": str(weights_path)})
    return TrainResult(
        metrics=metrics,
        out=out,
        metrics_path=out / "metrics.json",
        weights_path=weights_path,
        card_path=card_path(weights_path),
        resumed_folds=sorted(resumed),
        seconds=time.perf_counter() - started,
    )


def _protocol(config: TrainConfig) -> dict[str, Any]:
    return {
        "name": "subject-independent k-fold cross-validation",
        "folds": config.folds,
        "split_seed": config.seed,
        "inner_validation": f"{config.val_fraction:g} of each fold's training subjects (>= 1), subject-disjoint",
        "early_stopping": f"lowest validation cross-entropy (ties: higher accuracy), patience {config.patience}, at most {config.epochs} epochs",
        "loss": "class-balanced cross-entropy (weights n / (classes_present * n_c))",
        "optimiser": f"Adam lr={config.lr:g} weight_decay={config.weight_decay:g} batch={config.batch_size}"
        + (f", cosine decay to 0 over {config.epochs} epochs" if config.cosine else ", constant lr"),
        "augmentation": (
            "rotation +-3 deg, shift +-2%, scale 0.97-1.03, brightness +-0.05, contrast +-10%, horizontal flip p=0.5"
            if config.augment
            else "none"
        ),
        "std": "sample standard deviation over folds (ddof=1)",
    }


def _first_difference(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key} ({a!r} then, {b!r} now)"
    return ""
