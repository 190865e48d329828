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
   and save it as ``model.safetensors`` + ``model.json``. On workers it
   starts before the last folds are back and stops when they have decided
   (:func:`_final_task`). Its card carries the
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
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from interpret_core.api.errors import DataError, UsageError
from interpret_core.util.fingerprint import first_difference as _first_difference
from interpret_core.util.io import claim_output_dir, read_json, write_json
from interpret_core.util.progress import Progress, TaskId

if TYPE_CHECKING:  # pragma: no cover
    from interpret_core.workflows.executors import Announcement, Executor, ExecutorChoice
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

    #: None: the configured default model / data set (`interp config get model`)
    model: str | None = None
    dataset: str | None = None
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
    #: where the model trains (``--device``, :func:`interpret_core.nn.device.resolve_device`); not part of the
    #: recipe: batches, augmentation and shuffling are drawn on the CPU, so only the arithmetic moves
    device: str = "cpu"

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
        fields.pop("device")
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
    from interpret_core.util.progress import progress_enabled

    subjects = np.asarray(list(dataset.subjects), dtype=object)
    images, emotions = dataset.arrays(np.arange(count), progress=progress_enabled())  # declared, with a decoding default
    images = np.asarray(images, dtype=np.float32)
    emotions = np.asarray([-1 if e is None else int(e) for e in np.asarray(emotions, dtype=object).tolist()], dtype=np.int64)
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
    old_mode = torch.get_deterministic_debug_mode()
    if threads is not None:
        torch.set_num_threads(threads)
    # "error" is torch.use_deterministic_algorithms(True), without its import of torch._inductor
    # (to set the compiler's flag, which eager training never reads): 1-2 s in every process that
    # trains, serial before the first fold in the command and in each worker's first fold.
    torch.set_deterministic_debug_mode("error")
    try:
        yield
    finally:
        torch.set_deterministic_debug_mode(old_mode)
        torch.set_num_threads(old_threads)


def _predict(model: Model, inputs: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class int64 [N], logits float32 [N, classes]) in eval mode; ``inputs`` on any device."""
    import torch

    module, device = model.module, model.device
    module.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, inputs.shape[0], batch_size):
            outputs.append(module(inputs[start : start + batch_size].to(device)).cpu())
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
    stop: Callable[[int], bool] | None = None,
) -> dict[str, Any]:
    """Train ``model.module`` in place; with a validation set, stop early and keep the best epoch.

    ``stop(epoch)``, if given, is asked after each epoch (1-based) and ends training when it says True.

    Returns:
        {"best_epoch", "epochs_run", "history": [{"epoch", "train_loss", "val_loss", "val_accuracy"}]}
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(torch_seed)
    generator = torch.Generator().manual_seed(torch_seed)
    module, device = model.module, model.device
    classes = len(model.class_names)
    weight = torch.from_numpy(class_weights(labels, classes)).to(device)
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
                images = cast("torch.Tensor", augment_batch(images, generator))  # no masks: one tensor back
            # Drawn and augmented on the CPU (same random stream on every device), then moved.
            loss = F.cross_entropy(module(images.to(device)), targets[batch].to(device), weight=weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total_loss += float(loss.detach()) * batch.numel()
        record: dict[str, Any] = {"epoch": epoch, "train_loss": total_loss / max(count, 1)}
        if val_inputs is not None and val_labels is not None and len(val_labels):
            predicted, logits = _predict(model, val_inputs)
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
        if stop is not None and stop(epoch):
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

    from interpret_core.nn.device import resolve_device

    cls = get_registry().get_class("model", config.model)
    torch.manual_seed(torch_seed)  # initialisation, on the CPU: the same initial weights on every device
    model = cls(**{**config.model_options, "class_names": list(class_names)})
    model.module.to(resolve_device(config.device))
    return model


def _fold_file(out: Path, index: int) -> Path:
    return out / "folds" / f"fold-{index:02d}.json"


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


# -- one training run, step by step ------------------------------------------------------


@dataclasses.dataclass
class LabelledData:
    """The labelled crops one training run uses (after ``config.subjects``).

    Attributes:
        indices: int64 [N], data-set index of each crop.
        images: float32 [N, H, W].
        labels: int64 [N], emotion class of each crop.
        subjects: object [N], subject id of each crop.
        class_names: the data set's classes (what ``labels`` index).
        info: the ``dataset`` record of ``metrics.json`` and the card
            (name, root, options, counts, ``sha256`` of pixels, labels and subjects).
    """

    indices: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    class_names: list[str]
    info: dict[str, Any]


def _labelled_data(dataset: Dataset, config: TrainConfig) -> LabelledData:
    """Step 1: the labelled crops of ``dataset``, limited to the first ``config.subjects`` subjects."""
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
    info = {
        "name": getattr(dataset, "name", config.dataset),
        "data_root": config.data_root,
        "options": dict(config.dataset_options),
        "subject_subset": config.subjects,
        "samples": int(len(labels)),
        "subjects": int(len(set(subjects.tolist()))),
        "class_names": class_names,
        "class_counts": np.bincount(labels, minlength=len(class_names)).tolist(),
        "sha256": _fingerprint_data(images, labels, subjects),
    }
    return LabelledData(indices, images, labels, subjects, class_names, info)


@dataclasses.dataclass(frozen=True)
class FoldSplit:
    """One outer fold: positions into :class:`LabelledData` (not data-set indices)."""

    index: int
    train: np.ndarray  # int64 positions of the fold's training crops (fit + inner validation)
    test: np.ndarray  # int64 positions of its test crops


def _fold_splits(dataset: Dataset, config: TrainConfig, data: LabelledData) -> list[FoldSplit]:
    """Step 2: the subject-independent folds.

    Folds split every sample's subject (subject_kfold), restricted to labelled
    samples; with a subject subset, subject_kfold on the subset.
    """
    from interpret_core.analysis.splits import subject_kfold

    if config.subjects is not None:
        return [FoldSplit(f.index, f.train, f.test) for f in subject_kfold(data.subjects.tolist(), k=config.folds, seed=config.seed)]
    labelled_position = {int(i): p for p, i in enumerate(data.indices.tolist())}

    def positions(indices: np.ndarray) -> np.ndarray:
        return np.array([labelled_position[int(i)] for i in indices if int(i) in labelled_position], dtype=np.int64)

    return [
        FoldSplit(fold.index, positions(fold.train), positions(fold.test))
        for fold in subject_kfold(list(dataset.subjects), k=config.folds, seed=config.seed)
    ]


def _earlier_folds(out: Path, resume: bool, overwrite: bool) -> list[Path]:
    """Step 3a: the fold files an earlier run left in ``out`` (none after ``overwrite``, which deletes them)."""
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
        return []
    return existing


def _code(config: TrainConfig, dataset: Dataset) -> dict[str, Any]:
    """The code the folds depend on (interp's and the model and data set plugins' versions and sources), as
    bench cells and unit scans record it."""
    from interpret_core.registry.loader import code_provenance

    return code_provenance(("model", config.model), ("dataset", getattr(dataset, "name", config.dataset)))


def _resumed_folds(existing: list[Path], fingerprint: dict[str, Any], emit: Callback) -> dict[int, dict[str, Any]]:
    """Step 3b: the finished fold records to reuse.

    A record of another recipe or data is a UsageError naming the field; one
    made by other code (interp's or a plugin's version or source, or from
    before the code was recorded) is stale: it is left out, so the fold is
    retrained, and ``emit("fold_stale", {"fold", "file", "reason"})`` says why.
    """
    from interpret_core.analysis.unit_scan import stale_reason

    results: dict[int, dict[str, Any]] = {}
    for path in existing:
        record = read_json(path)
        found = record.get("fingerprint") or {}
        if found != fingerprint:
            without_code = {k: v for k, v in found.items() if k != "code"}
            field = _first_difference(without_code, {k: v for k, v in fingerprint.items() if k != "code"})
            if field:
                raise UsageError(
                    f"{path} was made by a different recipe or data ({field} differs), so --resume cannot reuse it",
                    "rerun with the original options, or pass --overwrite to start again",
                )
            emit("fold_stale", {"fold": int(record["fold"]), "file": str(path),
                                "reason": stale_reason({"code": found.get("code")}, {"code": fingerprint["code"]})})
            continue
        results[int(record["fold"])] = record
    return results


@dataclasses.dataclass(frozen=True)
class FoldJob:
    """What training any fold needs besides its split; sent once to each worker process.

    Attributes:
        inputs: float32 [N, C, H, W], the model's inputs for :attr:`LabelledData.images`.
        labels: int64 [N]; subjects: object [N]; class_names: the classes.
        config: the recipe.
    """

    inputs: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    class_names: list[str]
    config: TrainConfig

    def tensor(self) -> torch.Tensor:
        """:attr:`inputs` as a torch tensor (no copy)."""
        import torch

        return torch.from_numpy(self.inputs)


EpochCallback = Callable[[dict[str, Any]], None]


def _run_fold(job: FoldJob, split: FoldSplit, on_epoch: EpochCallback | None) -> dict[str, Any]:
    """Train and test one fold; returns its record (``folds/fold-NN.json`` without the fingerprint)."""
    import torch

    started = time.perf_counter()
    config, subjects, labels, inputs = job.config, job.subjects, job.labels, job.tensor()
    torch_seed, rng = _seeds(config.seed, split.index)
    train_subjects = sorted(set(subjects[split.train].tolist()))
    test_subjects = sorted(set(subjects[split.test].tolist()))
    fit_subjects, val_subjects = _inner_split(train_subjects, config.val_fraction, rng)
    val_set = set(val_subjects)
    is_val = np.array([s in val_set for s in subjects[split.train].tolist()], dtype=bool)
    fit_idx, val_idx = split.train[~is_val], split.train[is_val]

    model = _build_model(config, job.class_names, torch_seed)
    fit = _fit(
        model, inputs[torch.from_numpy(fit_idx)], labels[fit_idx], config, torch_seed, config.epochs,
        val_inputs=inputs[torch.from_numpy(val_idx)], val_labels=labels[val_idx], on_epoch=on_epoch,
    )
    predicted, _ = _predict(model, inputs[torch.from_numpy(split.test)])
    true = labels[split.test]
    matrix = confusion_matrix(true, predicted, len(job.class_names))
    return {
        "fold": split.index,
        "accuracy": float(np.mean(predicted == true)) if len(true) else None,
        "balanced_accuracy": _balanced_accuracy(matrix),
        "confusion_matrix": matrix.tolist(),
        "n_train": int(len(fit_idx)),
        "n_validation": int(len(val_idx)),
        "n_test": int(len(split.test)),
        "train_subjects": train_subjects,
        "fit_subjects": fit_subjects,
        "validation_subjects": val_subjects,
        "test_subjects": test_subjects,
        "best_epoch": fit["best_epoch"],
        "epochs_run": fit["epochs_run"],
        "history": fit["history"],
        "seconds": time.perf_counter() - started,
    }


def _fold_task(split: FoldSplit, job: FoldJob) -> dict[str, Any]:
    """One fold as an executor task: seeded on its own, ``config.threads`` threads, deterministic kernels.

    So a fold's record is the same wherever it runs (this process, a local
    worker, a Dask worker; tested). Start and epochs are reported with
    :func:`~interpret_core.workflows.executors.emit`.
    """
    from interpret_core.workflows.executors import emit

    with _deterministic_torch(job.config.threads):
        emit(("start", split.index, None))
        return _run_fold(job, split, lambda record: emit(("epoch", split.index, record)))


#: Announced to a final model in flight when the command leaves before the folds decide (0 epochs).
ABANDONED = 0


@dataclasses.dataclass(frozen=True)
class FinalModelItem:
    """The final model, as the last item of the folds' map (so it can start before they finish)."""


def _final_task(job: FoldJob, decided: Announcement) -> dict[str, Any]:
    """The final model as an executor task (seed stream -1), started with the folds; trains until they have decided.

    The final model trains for the folds' median best epoch ``m``, which is
    known only when the last fold is done. Its schedule does not depend on
    ``m`` (the cosine runs over ``config.epochs``, and each epoch's shuffle and
    augmentation come from one seeded generator in order), so its weights
    after ``k`` epochs of a longer run are those of a ``k``-epoch run, byte for
    byte (tested). So it starts as soon as a worker is free after every fold
    has started, keeps its weights after each epoch while ``m`` is unknown
    (``decided`` not yet announced), and stops at ``max(k, m)`` once it is
    known. A worker is never kept from a fold: the map hands the items out in
    order. In one process it starts after the last fold, with ``m`` known.

    Returns:
        ``{"epochs": m, "state": bytes}`` (safetensors), or, when it ran all
        ``config.epochs`` before ``m`` was announced, ``{"states": [bytes]}``,
        one per epoch (1-based epoch ``e`` at ``e - 1``), for the caller to pick
        from; ``{"abandoned": True}`` after the first epoch that hears
        :data:`ABANDONED` (the command left early and does not wait for it).
    """
    from interpret_core.nn.weights import state_dict_bytes
    from interpret_core.workflows.executors import emit

    with _deterministic_torch(job.config.threads):
        emit(("start", -1, None))
        torch_seed, _ = _seeds(job.config.seed, -1)
        model = _build_model(job.config, job.class_names, torch_seed)
        states: dict[int, bytes] = {}  # epoch -> weights after it, while the epochs to keep are unknown
        answer: dict[str, Any] = {}

        def stop(epoch: int) -> bool:
            epochs = decided.heard()
            if epochs == ABANDONED:  # the command stopped early (Ctrl-C, a failed fold): nobody waits for it
                answer["abandoned"] = True
                return True
            if epochs is None or epoch == epochs:
                states[epoch] = state_dict_bytes(model.module)
            if epochs is not None and epoch >= epochs:
                answer.update(epochs=int(epochs), state=states[int(epochs)])
                return True
            if epochs is not None:
                states.clear()  # the weights to return are a later epoch's
            return False

        _fit(model, job.tensor(), job.labels, job.config, torch_seed, job.config.epochs,
             on_epoch=lambda record: emit(("epoch", -1, record)), stop=stop)
        return answer or {"states": [states[epoch] for epoch in sorted(states)]}


def _training_task(item: FoldSplit | FinalModelItem, job: FoldJob, decided: Announcement) -> dict[str, Any]:
    """A fold (:func:`_fold_task`) or the final model (:func:`_final_task`): the items of one map."""
    if isinstance(item, FinalModelItem):
        return _final_task(job, decided)
    return _fold_task(item, job)


def _task_name(item: FoldSplit | FinalModelItem) -> str:
    return "final model" if isinstance(item, FinalModelItem) else "fold"


class _FoldProgress:
    """Progress of the folds and their epochs, and the ``fold_*``/``epoch_end`` events.

    In one process one epoch bar is reused fold after fold; with workers each
    running fold has its own bar. The epoch bar then counts the final model's epochs.
    """

    def __init__(self, progress: Progress, folds: int, finished: int, epochs: int, workers: int, emit: Callback):
        self.progress, self.folds, self.epochs, self.workers, self.emit = progress, folds, epochs, workers, emit
        self.fold_task = progress.add_task("folds", total=folds, completed=finished)
        self.epoch_task = progress.add_task("epochs", total=epochs)
        self.epoch_tasks: dict[int, TaskId] = {}
        self.final_task: TaskId | None = None
        self.final_epochs: int | None = None
        if workers > 1:
            progress.update(self.epoch_task, visible=False)

    def started(self, fold_index: int) -> None:
        self.emit("fold_start", {"fold": fold_index, "folds": self.folds})
        description = f"fold {fold_index}/{self.folds - 1} epochs"
        if self.workers == 1:
            self.progress.reset(self.epoch_task, total=self.epochs, description=description)
            self.epoch_tasks[fold_index] = self.epoch_task
        else:
            self.epoch_tasks[fold_index] = self.progress.add_task(description, total=self.epochs)

    def epoch(self, fold_index: int, record: dict[str, Any]) -> None:
        self.progress.advance(self.epoch_tasks[fold_index])
        self.emit("epoch_end", {"fold": fold_index, **record})

    def finished(self, fold_index: int, record: dict[str, Any]) -> None:
        if self.workers > 1:
            self.progress.remove_task(self.epoch_tasks[fold_index])
        self.progress.advance(self.fold_task)
        self.emit("fold_end", {"fold": fold_index, "accuracy": record["accuracy"], "best_epoch": record["best_epoch"]})

    def final_started(self) -> None:
        """The final model's task started (perhaps before the last folds end): its own bar, or the epoch bar in one process."""
        total = self.final_epochs or self.epochs
        if self.workers == 1:
            self.progress.update(self.epoch_task, visible=True)
            self.progress.reset(self.epoch_task, total=total, description="final model epochs")
            self.final_task = self.epoch_task
        else:
            self.final_task = self.progress.add_task("final model epochs", total=total)

    def final_decided(self, epochs: int) -> None:
        """The folds have decided the final model's epochs (``final_start``)."""
        self.final_epochs = epochs
        self.emit("final_start", {"epochs": epochs})
        if self.final_task is not None:
            self.progress.update(self.final_task, total=epochs)

    def final_epoch(self, record: dict[str, Any]) -> None:
        if self.final_task is not None:  # epochs past the decided ones (run while the folds decided) are not counted
            self.progress.update(self.final_task, completed=min(record["epoch"], self.final_epochs or self.epochs))


def _train_all(
    executor: Executor, job: Any, items: list[FoldSplit | FinalModelItem], decided: Announcement,
    shown: _FoldProgress, save_fold: Callable[[int, dict[str, Any]], None], on_folds_done: Callable[[], None],
) -> dict[str, Any] | None:
    """Steps 4-6 as one map: the pending folds, then (if ``items`` ends with it) the final model.

    ``job``: the :class:`FoldJob` as ``executor.share`` returned it (its arrays
    are sent to each worker once, for the folds and the final model).
    ``save_fold`` saves each fold's record as it comes back; ``on_folds_done``
    runs when the last fold is saved (it writes the metrics and announces the
    final model's epochs on ``decided``). Returns the final model's task result
    (see :func:`_final_task`), or None without it.
    """
    folds_left = sum(isinstance(item, FoldSplit) for item in items)
    if not folds_left:
        on_folds_done()

    def on_event(event: tuple[str, int, Any]) -> None:
        kind, fold_index, record = event
        if fold_index < 0:
            shown.final_started() if kind == "start" else shown.final_epoch(record)
        elif kind == "start":
            shown.started(fold_index)
        else:
            shown.epoch(fold_index, record)

    final: dict[str, Any] | None = None
    finished = executor.map(_training_task, items, shared=(job, decided), on_event=on_event, name=_task_name)
    try:
        for position, record in finished:
            item = items[position]
            if isinstance(item, FinalModelItem):
                final = record
                continue
            save_fold(item.index, record)
            shown.finished(item.index, record)
            folds_left -= 1
            if not folds_left:
                on_folds_done()
    finally:
        left_early = final is None and bool(items) and isinstance(items[-1], FinalModelItem) and decided.heard() is None
        if left_early:
            # A final model already training would otherwise run all its epochs: a local pool waits
            # for it on the way out, and a Dask worker cannot stop a running task from outside.
            decided.announce(ABANDONED)
        finished.close()  # stops worker tasks at once if we leave early
        if not left_early:  # (left early, the announcement stays, for a task that has yet to ask)
            decided.close()
    return final


@dataclasses.dataclass(frozen=True)
class _RunFacts:
    """What the metrics and the card of one run say about it, fixed before the folds run."""

    config: TrainConfig
    out: Path
    data: LabelledData
    fingerprint: dict[str, Any]
    threads: int
    architecture: dict[str, Any]


def _write_metrics(facts: _RunFacts, ordered: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Step 5: pool the folds; write ``metrics.json``. Returns (summary, metrics)."""
    summary = _summarise(ordered, facts.data.class_names)
    metrics: dict[str, Any] = {
        "class_names": facts.data.class_names,
        **{k: v for k, v in summary.items()},
        "folds": [{k: v for k, v in r.items() if k != "fingerprint"} for r in ordered],
        "protocol": _protocol(facts.config),
        "dataset": facts.data.info,
        "final_model": {
            "what": "retrained on all labelled subjects (no held-out data) for the median best epoch of the folds",
            "epochs": summary["median_best_epoch"],
            "samples": int(len(facts.data.labels)),
        },
        "threads": facts.threads,
        "command": facts.config.command(facts.out),
    }
    write_json(facts.out / "metrics.json", metrics)
    return summary, metrics


def _final_model_is_current(weights_path: Path, fingerprint: dict[str, Any]) -> bool:
    """Whether ``weights_path`` and its card are this recipe's final model on this data (resume skips it then)."""
    from interpret_core.nn.weights import card_path, read_card

    if not (weights_path.is_file() and card_path(weights_path).is_file()):
        return False
    with contextlib.suppress(Exception):
        return read_card(weights_path).get("fingerprint") == fingerprint
    return False


def _final_card(facts: _RunFacts, summary: dict[str, Any], ordered: list[dict[str, Any]], argv: Sequence[str] | None) -> dict[str, Any]:
    config, info, epochs = facts.config, facts.data.info, summary["median_best_epoch"]
    return {
        "dataset": info,
        "protocol": _protocol(config),
        "seed": config.seed,
        "recipe": config.recipe(),
        "fingerprint": facts.fingerprint,
        "command": config.command(facts.out),
        "argv": list(argv) if argv is not None else None,
        "threads": facts.threads,
        "metrics": {
            k: summary[k]
            for k in ("mean_accuracy", "std_accuracy", "std_ddof", "min_accuracy", "max_accuracy",
                      "mean_balanced_accuracy", "pooled_accuracy", "per_class_recall")
        }
        | {"fold_accuracies": [r["accuracy"] for r in ordered], "folds": len(ordered)},
        "notes": (
            f"Final model: {facts.architecture['model']} retrained on all {len(facts.data.labels)} labelled crops of "
            f"{info['subjects']} subjects for {epochs} epochs (the median best epoch of the "
            f"{len(ordered)} cross-validation folds). The metrics are the subject-independent "
            f"{len(ordered)}-fold cross-validation estimate of this recipe; the final model itself has "
            "seen every subject. Made by `interp train`."
        ),
    }


def _final_model(facts: _RunFacts, answer: dict[str, Any], epochs: int) -> Model:
    """The final model from its task's answer (:func:`_final_task`): the weights after ``epochs`` epochs."""
    from safetensors.torch import load as load_tensors

    state = answer["state"] if "state" in answer else answer["states"][epochs - 1]
    if answer.get("epochs", epochs) != epochs:  # pragma: no cover - an announcement is set once
        raise AssertionError(f"the final model stopped at {answer['epochs']} epochs, not {epochs}")
    model = _build_model(facts.config, facts.data.class_names, 0)
    model.module.load_state_dict(load_tensors(state))
    model.module.eval()
    return model


def _open_dataset(config: TrainConfig) -> Dataset:
    from interpret_core.workflows.setup import DataChoice, load_dataset

    return load_dataset(DataChoice(config.dataset, config.data_root, config.dataset_options))


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
    executor: ExecutorChoice | None = None,
) -> TrainResult:
    """Cross-validate ``config`` and train the final model; write everything into ``out``.

    The steps (see the module doc): the labelled data, the folds, what a
    resumed run already finished, the folds that remain (in this process or
    in ``jobs`` workers), ``metrics.json``, and the final model.

    Args:
        config: the recipe.
        out: output folder (created).
        resume: reuse finished folds found in ``out/folds`` (they must come
            from the same recipe and data; otherwise a UsageError says which field differs;
            folds made by other code, interp's or a plugin's, are retrained).
        overwrite: discard earlier results in ``out`` instead of refusing.
        dataset: use this Dataset instead of opening ``config.dataset`` (tests, notebooks).
        callback: ``callback(event, info)`` for ``"fold_stale"`` (a finished fold
            retrained: ``fold``, ``file``, ``reason``), ``"fold_start"``, ``"epoch_end"``,
            ``"fold_end"``, ``"final_start"``, ``"final_end"``; may raise to stop
            (finished files stay complete).
        argv: the command line as typed, recorded in the card beside the canonical one.
        jobs: folds trained at once in local spawned processes, each with
            ``config.threads`` threads, when no ``executor`` is given (the
            same as ``ExecutorChoice("local", workers=jobs)``).
        executor: where the folds and the final model run
            (:mod:`interpret_core.workflows.executors`; on workers the final
            model starts before the last folds are back). Neither changes any result.

    ``out`` is created (an unwritable path fails here, before any fold) and
    locked for the whole run (:func:`~interpret_core.util.io.claim_output_dir`).
    """
    from interpret_core.workflows.executors import ExecutorChoice

    config.validate()
    with claim_output_dir(out):
        return _train(config, Path(out), resume=resume, overwrite=overwrite, dataset=dataset, callback=callback,
                      argv=argv, executor=executor or ExecutorChoice("local", workers=max(1, int(jobs))))


def _train(config: TrainConfig, out: Path, *, resume: bool, overwrite: bool, dataset: Dataset | None,
           callback: Callback | None, argv: Sequence[str] | None, executor: ExecutorChoice) -> TrainResult:
    import torch

    from interpret_core.nn.weights import card_path, save_weights
    from interpret_core.util.progress import progress_bar
    from interpret_core.workflows.executors import open_executor
    from interpret_core.registry.defaults import default

    if dataset is not None:
        config = dataclasses.replace(config, dataset=getattr(dataset, "name", config.dataset))
    config = dataclasses.replace(config, model=config.model or default("model"), dataset=config.dataset or default("dataset"))
    started = time.perf_counter()
    existing = _earlier_folds(out, resume, overwrite)
    emit: Callback = callback or (lambda event, info: None)

    if dataset is None:
        dataset = _open_dataset(config)
    data = _labelled_data(dataset, config)
    fingerprint = {"recipe": config.recipe(), "data_sha256": data.info["sha256"], "code": _code(config, dataset)}
    splits = _fold_splits(dataset, config, data)
    results = _resumed_folds(existing, fingerprint, emit)
    resumed = sorted(results)

    with _deterministic_torch(config.threads):
        probe = _build_model(config, data.class_names, 0)
        job = FoldJob(probe.to_input(data.images).cpu().numpy(), data.labels, data.subjects, data.class_names, config)
        facts = _RunFacts(config, out, data, fingerprint, torch.get_num_threads(), probe.architecture())
        del probe

        pending = [split for split in splits if split.index not in results]
        weights_path = out / "model.safetensors"
        final_needed = not (resume and _final_model_is_current(weights_path, fingerprint))
        items: list[FoldSplit | FinalModelItem] = [*pending, *([FinalModelItem()] if final_needed else [])]
        step5: dict[str, Any] = {}

        def save_fold(fold_index: int, record: dict[str, Any]) -> None:
            record["fingerprint"] = fingerprint
            write_json(_fold_file(out, fold_index), record)
            results[fold_index] = record

        with progress_bar() as progress, open_executor(_fewer_workers(executor, len(items))) as runner:
            shown = _FoldProgress(progress, len(splits), len(results), config.epochs, runner.workers, emit)
            decided = runner.announcement()

            def folds_done() -> None:  # step 5, then the final model's epochs to its task
                ordered = [results[split.index] for split in splits]
                step5["summary"], step5["metrics"] = _write_metrics(facts, ordered)
                if final_needed:
                    epochs = step5["summary"]["median_best_epoch"]
                    decided.announce(epochs)
                    shown.final_decided(epochs)

            answer = _train_all(runner, runner.share(job), items, decided, shown, save_fold, folds_done)
            summary, metrics = step5["summary"], step5["metrics"]
            if answer is not None:
                model = _final_model(facts, answer, summary["median_best_epoch"])
                ordered = [results[split.index] for split in splits]
                save_weights(model, weights_path, _final_card(facts, summary, ordered, argv))
                emit("final_end", {"path": str(weights_path)})
    return TrainResult(
        metrics=metrics,
        out=out,
        metrics_path=out / "metrics.json",
        weights_path=weights_path,
        card_path=card_path(weights_path),
        resumed_folds=resumed,
        seconds=time.perf_counter() - started,
    )


def _fewer_workers(choice: ExecutorChoice, tasks: int) -> ExecutorChoice:
    """``choice`` with no more local worker processes than folds to train (a Dask cluster is left as it is)."""
    if choice.kind != "local":
        return choice
    return dataclasses.replace(choice, workers=max(1, min(choice.workers or 1, tasks)))


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
