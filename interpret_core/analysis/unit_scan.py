"""One streaming pass that reduces every unit's activation map to its maximum.

:func:`scan_units` runs a data set through a model once (no gradients,
batched, forward hooks on the chosen layers) and keeps, per image and unit,
only the maximal activation and where it occurred, plus a running top-k of
images per unit. Whole activation maps are never stored: memory grows with
the data set by O(images x units) scalars.

The result, :class:`UnitScan`, feeds the ``au-distance`` unit metric,
``interp run`` (top-k figures) and ``interp visualize`` (top-k grids). It can
be saved to / loaded from an ``.npz`` file so a long run can be resumed;
:func:`cached_scan` is that resume step, shared by ``run`` and ``visualize``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interpret_core.api.errors import DataError, UsageError
from interpret_core.api.interfaces import Dataset
from interpret_core.util.progress import ProgressLike, start_task

if TYPE_CHECKING:  # pragma: no cover
    from interpret_core.api.interfaces import Model

__all__ = [
    "UnitScan", "scan_units", "cached_scan", "load_batch", "annotations", "scan_shards", "merge_scans",
    "grouping", "observations", "Observations", "STATISTICAL_UNITS",
]

#: Version of the ``.npz`` layout written by :meth:`UnitScan.save`.
SCAN_FORMAT = 1


@dataclasses.dataclass
class UnitScan:
    """Per-image, per-unit maxima of some layers over a data set.

    Attributes:
        layers: the scanned layers, in the order given.
        indices: int64 [N], the data-set indices scanned (row n of every
            array below is sample ``indices[n]``).
        maxima: {layer: float32 [N, U]} maximal activation of each unit.
        argmax: {layer: int32 [N, U, 2]} (row, col) of that maximum in the
            layer's output grid (0, 0 for outputs without a spatial grid).
        topk: {layer: int64 [U, k]} data-set indices (values of ``indices``)
            of each unit's k images with the largest maxima, descending; ties
            go to the earlier image. k = min(top_k, N).
        shapes: {layer: (U, h, w)} the layer's output shape per image.
        aus: per scanned image its {AU: intensity}, or None when the scan
            did not decode samples (bulk array access without annotations).
        emotions: int64 [N] emotion index per image (-1 if unlabelled), or None.
        input_size: the model's (C, H, W).
        meta: free-form provenance (model, dataset, ...) kept with the file.
    """

    layers: list[str]
    indices: np.ndarray
    maxima: dict[str, np.ndarray]
    argmax: dict[str, np.ndarray]
    topk: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, int, int]]
    aus: list[dict[int, int]] | None = None
    emotions: np.ndarray | None = None
    input_size: tuple[int, int, int] | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def units(self, layer: str) -> int:
        """Number of units (channels) of ``layer``."""
        return int(self.shapes[layer][0])

    # -- persistence -----------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the scan as a compressed ``.npz`` (atomically)."""
        from interpret_core.util.io import atomic_open, dumps_json

        arrays: dict[str, np.ndarray] = {"indices": self.indices.astype(np.int64)}
        for i, layer in enumerate(self.layers):
            arrays[f"maxima_{i}"] = self.maxima[layer]
            arrays[f"argmax_{i}"] = self.argmax[layer]
            arrays[f"topk_{i}"] = self.topk[layer]
        if self.emotions is not None:
            arrays["emotions"] = self.emotions.astype(np.int64)
        header = {
            "format": SCAN_FORMAT,
            "layers": self.layers,
            "shapes": {layer: list(self.shapes[layer]) for layer in self.layers},
            "aus": None if self.aus is None else [{str(k): int(v) for k, v in a.items()} for a in self.aus],
            "input_size": None if self.input_size is None else list(self.input_size),
            "meta": self.meta,
        }
        arrays["header"] = np.frombuffer(dumps_json(header).encode("utf-8"), dtype=np.uint8)
        with atomic_open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "UnitScan":
        """Read a scan written by :meth:`save`; a damaged file raises DataError."""
        import json
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode("utf-8"))
                if header.get("format") != SCAN_FORMAT:
                    raise DataError(f"{path}: unit-scan format {header.get('format')!r}, expected {SCAN_FORMAT}", "delete the file to rescan")
                layers = list(header["layers"])
                return cls(
                    layers=layers,
                    indices=data["indices"],
                    maxima={layer: data[f"maxima_{i}"] for i, layer in enumerate(layers)},
                    argmax={layer: data[f"argmax_{i}"] for i, layer in enumerate(layers)},
                    topk={layer: data[f"topk_{i}"] for i, layer in enumerate(layers)},
                    shapes={layer: tuple(int(s) for s in header["shapes"][layer]) for layer in layers},
                    aus=None if header["aus"] is None else [{int(k): int(v) for k, v in a.items()} for a in header["aus"]],
                    emotions=data["emotions"] if "emotions" in data.files else None,
                    input_size=None if header["input_size"] is None else tuple(header["input_size"]),
                    meta=header.get("meta") or {},
                )
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a readable unit scan ({type(exc).__name__}: {exc})", "delete the file to rescan") from exc


def annotations(dataset: Dataset, indices: Sequence[int] | np.ndarray) -> tuple[list[dict[int, int]], np.ndarray]:
    """AUs and emotion (-1 if none) of the samples at ``indices``, from the data set's AU table.

    Reads :meth:`Dataset.au_presence` / :meth:`Dataset.au_matrix` and
    :attr:`Dataset.emotions`, which a reader such as CK+'s answers without
    decoding images (the base class decodes samples).
    """
    indices = np.asarray(indices, dtype=np.int64)
    numbers, presence = dataset.au_presence()
    _, intensity = dataset.au_matrix(numbers)
    all_emotions = dataset.emotions  # a property: read it once
    emotions = [all_emotions[int(i)] for i in indices.tolist()]
    aus = [{int(numbers[j]): int(intensity[i, j]) for j in np.flatnonzero(presence[i])} for i in indices.tolist()]
    return aus, np.asarray([-1 if e is None else int(e) for e in emotions], dtype=np.int64)


def grouping(dataset: Dataset, indices: Sequence[int] | np.ndarray) -> tuple[list[str], list[str] | None]:
    """Subject id and sequence id (None where the data set has none) of the samples at ``indices``.

    Uses the data set's ``subjects`` / ``sequences`` properties when it has
    them (CK+ and SynthFACS do, without decoding), else decodes the samples.
    Sequences are None when no sample names one (empty ids).
    """
    indices = np.asarray(indices, dtype=np.int64).tolist()
    subjects_all = getattr(type(dataset), "subjects", None)
    sequences_all = getattr(dataset, "sequences", None) if hasattr(type(dataset), "sequences") else None
    if isinstance(subjects_all, property) and sequences_all is not None and not callable(sequences_all):
        every_subject = dataset.subjects
        subjects = [str(every_subject[i]) for i in indices]
        sequences = [str(sequences_all[i]) if sequences_all[i] else "" for i in indices]
    else:
        samples = [dataset[i] for i in indices]
        subjects = [str(sample.subject) for sample in samples]
        sequences = [str(sample.sequence) if sample.sequence else "" for sample in samples]
    if not any(sequences):
        return subjects, None
    return subjects, sequences


#: statistical unit -> what one observation is.
STATISTICAL_UNITS: dict[str, str] = {
    "sequence": "one value per sequence and label set: the mean of the unit's maxima over the sequence's frames "
    "that share emotion and AUs (a data set without sequence ids falls back to subject)",
    "subject": "one value per subject and label set: the mean of the unit's maxima over the subject's frames "
    "that share emotion and AUs",
    "frame": "FRAME-LEVEL: every image is its own observation (near-copies of one face counted as independent)",
}


@dataclasses.dataclass
class Observations:
    """Frames grouped into the statistical unit of the tests.

    Attributes:
        unit: the statistical unit actually used (``sequence``, ``subject`` or ``frame``).
        of_frame: int64 [N] observation of each scanned frame, -1 if left out.
        subjects: [G] subject id of each observation.
        emotions: int64 [G] emotion of each observation (-1 unlabelled).
        presence: bool [A, G] AU presence of each observation.
        frames: int64 [G] number of frames averaged into each observation.
    """

    unit: str
    of_frame: np.ndarray
    subjects: list[str]
    emotions: np.ndarray
    presence: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return len(self.subjects)

    def means(self, values: np.ndarray) -> np.ndarray:
        """float64 [G, U] per-observation mean of frame values [N, U]."""
        from interpret_core.analysis.stats import group_means

        return group_means(values, self.of_frame, len(self))


def observations(
    unit: str,
    subjects: Sequence[str],
    sequences: Sequence[str] | None,
    presence: np.ndarray,
    emotions: np.ndarray,
    keep: np.ndarray | None = None,
) -> Observations:
    """Group frames into observations of ``unit`` (see :data:`STATISTICAL_UNITS`).

    Frames of one sequence (or subject) that share emotion and AU set are one
    observation; the frame order of first appearance fixes the observation
    order, so the grouping is deterministic. ``keep`` (bool [N]) leaves frames
    out (e.g. neutral ones).

    Args:
        presence: bool [A, N] AU presence per frame.
        emotions: int64 [N].
    """
    if unit not in STATISTICAL_UNITS:
        raise UsageError(f"unknown statistical unit {unit!r}; valid: {', '.join(STATISTICAL_UNITS)}", "e.g. unit=sequence")
    presence = np.asarray(presence, dtype=bool)
    emotions = np.asarray(emotions, dtype=np.int64)
    count = presence.shape[1]
    keep = np.ones(count, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    if unit == "sequence" and sequences is None:
        unit = "subject"
    owners = sequences if unit == "sequence" else subjects
    of_frame = np.full(count, -1, dtype=np.int64)
    index: dict[Any, int] = {}
    first: list[int] = []
    packed = np.packbits(presence, axis=0).T  # [N, bytes]: the AU set of each frame
    for n in np.flatnonzero(keep).tolist():
        key = n if unit == "frame" else (owners[n], int(emotions[n]), packed[n].tobytes())  # type: ignore[index]
        g = index.get(key)
        if g is None:
            g = index[key] = len(first)
            first.append(n)
        of_frame[n] = g
    first_frame = np.asarray(first, dtype=np.int64)
    return Observations(
        unit=unit,
        of_frame=of_frame,
        subjects=[str(subjects[n]) for n in first],
        emotions=emotions[first_frame] if first else np.zeros(0, dtype=np.int64),
        presence=presence[:, first_frame] if first else np.zeros((presence.shape[0], 0), dtype=bool),
        frames=np.bincount(of_frame[of_frame >= 0], minlength=len(first)).astype(np.int64),
    )


def _has_own_arrays(dataset: Dataset) -> bool:
    """Whether ``dataset.arrays`` is the plugin's own bulk accessor rather than the base class's decoding loop."""
    return getattr(dataset.arrays, "__func__", None) is not Dataset.arrays


def load_batch(dataset: Dataset, indices: np.ndarray) -> tuple[np.ndarray, list[dict[int, int]] | None, np.ndarray | None]:
    """Images float32 [B, H, W] of ``indices``, with AUs and emotions when they come for free.

    A data set with its own :meth:`Dataset.arrays` gives pixels only (AUs and
    emotions None: read them from its AU table, :func:`annotations`); any
    other is decoded sample by sample, once, keeping each sample's AUs and
    emotion on the way.
    """
    if _has_own_arrays(dataset):
        images, _ = dataset.arrays(indices)
        return np.asarray(images, dtype=np.float32), None, None
    images_list, aus_list, emotion_list = [], [], []
    for index in indices:
        sample = dataset[int(index)]
        images_list.append(np.asarray(sample.image, dtype=np.float32))
        aus_list.append(dict(sample.aus))
        emotion_list.append(-1 if sample.emotion is None else int(sample.emotion))
    if not images_list:
        return np.zeros((0, 1, 1), dtype=np.float32), [], np.zeros(0, dtype=np.int64)
    shapes = {image.shape for image in images_list}
    if len(shapes) > 1:
        raise DataError(
            f"{type(dataset).__name__}: samples {indices[0]}..{indices[-1]} have different image sizes {sorted(shapes)}",
            "crop every sample to one size (the data set plugin's job)",
        )
    return np.stack(images_list), aus_list, np.asarray(emotion_list, dtype=np.int64)


def _merge_topk(
    best_values: np.ndarray, best_index: np.ndarray, values: np.ndarray, index: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge running top-k [U, k'] with a batch [U, B]; keeps the earlier image on ties."""
    all_values = np.concatenate([best_values, values], axis=1)
    all_index = np.concatenate([best_index, index], axis=1)
    # lexsort: last key is primary -> descending value, then ascending index.
    order = np.lexsort((all_index, -all_values.astype(np.float64)), axis=1)[:, :k]
    return np.take_along_axis(all_values, order, axis=1), np.take_along_axis(all_index, order, axis=1)


def scan_units(
    model: Model,
    dataset: Dataset,
    layers: Sequence[str],
    *,
    batch_size: int = 64,
    top_k: int = 9,
    indices: Sequence[int] | np.ndarray | None = None,
    progress: ProgressLike = None,
) -> UnitScan:
    """Stream ``dataset`` through ``model`` once; keep each unit's max and argmax per image.

    Args:
        model: the wrapped network (eval mode); ``model.to_input`` preprocesses.
        dataset: the images; its own ``arrays(indices)`` bulk accessor is used if it has one.
        layers: dotted layer names (default in callers: ``model.layers``).
        batch_size: images per forward pass.
        top_k: images kept per unit, by descending maximum.
        indices: data-set indices to scan (default: all, in order).
        progress: a :class:`~interpret_core.util.progress.Progress` (a task is added),
            ``callable(done, total)`` or None.

    Returns:
        A :class:`UnitScan`.
    """
    import torch

    from interpret_core.nn.hooks import capture_outputs, resolve_layer

    layers = list(layers)
    if not layers:
        raise UsageError("no layers to scan", "pass at least one layer, e.g. the model's `layers`")
    if len(set(layers)) != len(layers):
        raise UsageError(f"layers repeat: {layers}", "name each layer once")
    for layer in layers:
        resolve_layer(model.module, layer, model.layers)  # a clear error before any work
    if batch_size < 1 or top_k < 1:
        raise UsageError(f"batch_size and top_k must be >= 1 (got {batch_size}, {top_k})", "pass positive values")
    if indices is None:
        indices = np.arange(len(dataset), dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1:
        raise UsageError("indices must be a 1-D sequence of sample indices", "pass e.g. range(100)")
    total = int(indices.shape[0])
    if total == 0:
        raise DataError(f"{type(dataset).__name__}: nothing to scan (0 samples)", "check the data root and --limit")
    if total and (indices.min() < 0 or indices.max() >= len(dataset)):
        raise UsageError(f"sample indices must lie in [0, {len(dataset)})", "check --limit / indices")

    task = start_task(progress, "scanning units", total)
    k = min(top_k, total)
    module = model.module
    was_training = module.training
    module.eval()
    maxima: dict[str, np.ndarray] = {}
    argmax: dict[str, np.ndarray] = {}
    best_values: dict[str, np.ndarray] = {}
    best_index: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, int, int]] = {}
    aus_all: list[dict[int, int]] | None = []
    emotions_all: list[np.ndarray] | None = []
    done = 0
    try:
        with torch.inference_mode(), capture_outputs(module, layers) as captured:
            for start in range(0, total, batch_size):
                batch_indices = indices[start : start + batch_size]
                images, aus, emotions = load_batch(dataset, batch_indices)
                if aus is None or aus_all is None:
                    aus_all = emotions_all = None
                else:
                    aus_all.extend(aus)
                    emotions_all.append(emotions)  # type: ignore[union-attr]
                inputs = model.to_input(images)  # on the model's device
                captured.clear()
                module(inputs)
                count = len(batch_indices)
                for layer in layers:
                    if layer not in captured:
                        raise UsageError(
                            f"layer {layer!r} produced no output in the forward pass",
                            "choose layers that run in forward(), see the model's `layers`",
                        )
                    output = captured[layer]
                    if output.ndim == 2:  # [B, U]: no spatial grid
                        output = output[:, :, None, None]
                    if output.ndim != 4:
                        raise UsageError(
                            f"layer {layer!r} outputs shape {tuple(output.shape)}; unit scans need [N, U, h, w] or [N, U]",
                            "choose convolutional or linear layers",
                        )
                    units, height, width = (int(s) for s in output.shape[1:])
                    if layer not in maxima:
                        shapes[layer] = (units, height, width)
                        maxima[layer] = np.empty((total, units), dtype=np.float32)
                        argmax[layer] = np.empty((total, units, 2), dtype=np.int32)
                        best_values[layer] = np.empty((units, 0), dtype=np.float32)
                        best_index[layer] = np.empty((units, 0), dtype=np.int64)
                    flat = output.reshape(count, units, height * width)
                    values, position = flat.max(dim=2)
                    values_np = values.float().cpu().numpy()
                    position_np = position.cpu().numpy()
                    maxima[layer][start : start + count] = values_np
                    argmax[layer][start : start + count, :, 0] = position_np // width
                    argmax[layer][start : start + count, :, 1] = position_np % width
                    best_values[layer], best_index[layer] = _merge_topk(
                        best_values[layer],
                        best_index[layer],
                        values_np.T,
                        np.broadcast_to(batch_indices[None, :], (units, count)),
                        k,
                    )
                captured.clear()
                done += count
                task.set(done)
    finally:
        module.train(was_training)

    return UnitScan(
        layers=layers,
        indices=indices,
        maxima=maxima,
        argmax=argmax,
        topk={layer: best_index[layer].astype(np.int64) for layer in layers},
        shapes=shapes,
        aus=aus_all,
        emotions=None if emotions_all is None else np.concatenate(emotions_all).astype(np.int64),
        input_size=tuple(model.input_size),
    )


def scan_shards(indices: Sequence[int] | np.ndarray, batch_size: int, shards: int) -> list[np.ndarray]:
    """``indices`` cut into at most ``shards`` consecutive pieces of whole batches.

    Every piece but the last holds a multiple of ``batch_size`` images, so
    each piece's batches are exactly the batches :func:`scan_units` forms
    over all of ``indices``: scanning the pieces apart and :func:`merge_scans`
    give the same arrays, bit for bit.
    """
    indices = np.asarray(indices, dtype=np.int64)
    batches = max(1, -(-len(indices) // batch_size))
    per_shard = -(-batches // max(1, min(shards, batches)))
    step = per_shard * batch_size
    return [indices[start : start + step] for start in range(0, len(indices), step)]


def merge_scans(parts: Sequence[UnitScan], top_k: int) -> UnitScan:
    """One scan of consecutive pieces (:func:`scan_shards`), as if scanned in one pass.

    Per-image maxima, argmaxima, AUs and emotions concatenate in order; each
    unit's top-k is re-drawn from the pieces' top-k candidates by the same
    rule as :func:`scan_units` (descending maximum, then the earlier image),
    which is the top-k over all images because a piece's k best contain every
    image of the piece that can be among the k best of all.
    """
    if not parts:
        raise UsageError("no scans to merge", "scan at least one shard")
    first = parts[0]
    indices = np.concatenate([part.indices for part in parts]).astype(np.int64)
    k = min(top_k, len(indices))
    maxima = {layer: np.concatenate([part.maxima[layer] for part in parts]) for layer in first.layers}
    argmax = {layer: np.concatenate([part.argmax[layer] for part in parts]) for layer in first.layers}
    row_of = {int(index): row for row, index in enumerate(indices.tolist())}
    topk: dict[str, np.ndarray] = {}
    for layer in first.layers:
        candidates = np.concatenate([part.topk[layer] for part in parts], axis=1)  # [U, sum of k's]
        rows = np.vectorize(row_of.__getitem__, otypes=[np.int64])(candidates)
        values = np.take_along_axis(maxima[layer].T, rows, axis=1)
        empty_values, empty_index = np.empty((len(values), 0), dtype=np.float32), np.empty((len(values), 0), dtype=np.int64)
        topk[layer] = _merge_topk(empty_values, empty_index, values, candidates, k)[1].astype(np.int64)
    every_aus = all(part.aus is not None for part in parts)
    every_emotion = all(part.emotions is not None for part in parts)
    return UnitScan(
        layers=list(first.layers),
        indices=indices,
        maxima=maxima,
        argmax=argmax,
        topk=topk,
        shapes=dict(first.shapes),
        aus=[aus for part in parts for aus in part.aus] if every_aus else None,  # type: ignore[union-attr]
        emotions=np.concatenate([part.emotions for part in parts]).astype(np.int64) if every_emotion else None,  # type: ignore[misc]
        input_size=first.input_size,
        meta=dict(first.meta),
    )


#: Why a cached scan is not reused, by the first field of its key that differs.
STALE_REASONS = {
    "data_fingerprint": "the data set's files changed",
    "weights_sha256": "the model weights changed",
    "code": "interp's or a plugin's code or version changed",
    "layers": "other layers",
    "indices": "other images",
}


def scan_provenance(model: Model, dataset: Dataset, *, top_k: int, batch_size: int) -> dict[str, Any]:
    """What every unit scan depends on beyond its caller's options, as part of its cache key.

    The weights (state-dict sha256), the data's content
    (:meth:`~interpret_core.api.interfaces.Dataset.fingerprint`), ``top_k``,
    ``batch_size`` and the code: interp's version and the model and data set
    plugins' distributions and versions, with source hashes for path or
    editable installs (:func:`~interpret_core.registry.loader.code_provenance`).
    """
    from interpret_core.nn.weights import state_dict_sha256
    from interpret_core.registry.loader import code_provenance

    return {
        "weights_sha256": state_dict_sha256(model.module),
        "data_fingerprint": dataset.fingerprint(),
        "top_k": int(top_k),
        "batch_size": int(batch_size),
        "code": code_provenance(("model", model.name), ("dataset", dataset.name)),
    }


def stale_reason(cached: dict[str, Any], key: dict[str, Any]) -> str:
    """Why a cached entry keyed ``cached`` does not serve ``key``: the first differing field, explained."""
    from interpret_core.util.fingerprint import first_difference

    field = first_difference(cached, key)
    because = STALE_REASONS.get(field.split(" ", 1)[0].split(".", 1)[0])
    return f"{because}: {field}" if because else f"{field} differs"


def cached_scan(
    path: str | os.PathLike,
    model: Model,
    dataset: Dataset,
    layers: Sequence[str],
    *,
    indices: np.ndarray,
    meta: dict[str, Any],
    resume: bool,
    batch_size: int = 64,
    top_k: int = 9,
    progress: ProgressLike = None,
    on_stale: Callable[[str], None] | None = None,
    scan: Callable[..., UnitScan] | None = None,
) -> tuple[UnitScan, bool]:
    """The scan of ``layers`` over ``indices``, reused from ``path`` or computed and saved there.

    With ``resume`` a scan saved at ``path`` is reused when its key (``meta``,
    the caller's options, plus :func:`scan_provenance`: weights, data content,
    code, ``top_k``, ``batch_size``), its layers and its indices are those
    asked for; otherwise ``on_stale(reason)`` is told why, and an unreadable
    file is recomputed.
    Otherwise :func:`scan_units` runs (or ``scan``, called with the same
    arguments: e.g. the scan sharded over workers, which gives the same
    arrays) and the result, with ``meta``, is saved to ``path`` (atomically)
    for a later resume.

    Returns:
        (scan, whether it was reused).
    """
    from interpret_core.api.errors import InterpError
    from interpret_core.util.io import to_jsonable

    meta = to_jsonable({**scan_provenance(model, dataset, top_k=top_k, batch_size=batch_size), **meta})
    layers = list(layers)
    indices = np.asarray(indices, dtype=np.int64)
    path = Path(path)
    if resume and path.exists():
        try:
            cached: UnitScan | None = UnitScan.load(path)
        except InterpError as exc:
            cached, reason = None, f"it is unreadable ({exc.message})"
        if cached is not None:
            if cached.meta == meta and cached.layers == layers and np.array_equal(cached.indices, indices):
                return cached, True
            reason = stale_reason(
                {**cached.meta, "layers": cached.layers, "indices": cached.indices.tolist()},
                {**meta, "layers": layers, "indices": indices.tolist()},
            )
        if on_stale is not None:
            on_stale(reason)
    result = (scan or scan_units)(model, dataset, layers, batch_size=batch_size, top_k=top_k, indices=indices, progress=progress)
    result.meta = meta
    result.save(path)
    return result, False
