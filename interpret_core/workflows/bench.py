"""``interp bench``: every attribution method x every attribution metric, on the same images.

The run, in order:

1. load the model (``get_model``) and the data set (``get_dataset``);
2. select ``limit`` images: a seeded draw stratified over the emotion classes;
3. explain the model's *predicted* class of each image;
4. per method: compute the attributions once (cached in ``attributions/``),
   timing them per image;
5. per (method, metric): score every image and save the cell at once to
   ``cells/<method>__<metric>.json``, keyed by a hash of everything that
   determines it (model weights, data set, selection, method spec, metric
   options). A re-run with the same configuration reuses every finished cell
   and attribution file, so an interrupted run resumes where it stopped and
   a new method or metric costs only its own cells;
6. aggregate: mean and 95 % t-interval per cell; write ``bench.json``,
   ``bench.csv`` and ``bench.md`` (atomically).

On workers (``--executor``, docs/distributed.md) steps 4 and 5 are tasks: one
per batch of a method's attributions (the batches step 4 computes in one
process, so the same maps), and one per cell, queued as soon as its method's
attributions are complete.

Localisation metrics (``needs_masks``) score only the images with at least
one AU present and a mask for it; the mask of an image is the union of
``Sample.localisation_masks()`` over its AUs (ground truth on SynthFACS,
landmark regions on CK+). Neutral images and images without masks are left
out of those cells, and the cell records how many images it used.

No torch at import time: torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interpret_core.api.class_names import match_classes
from interpret_core.api.errors import CapabilityError, DataError, InterpError, UsageError
from interpret_core.util.io import claim_output_dir, read_json, to_jsonable, write_bytes, write_json, write_text
from interpret_core.analysis.sampling import stratified_indices
from interpret_core.nn.weights import state_dict_sha256
from interpret_core.util.paths import slug
from interpret_core.util.progress import ProgressLike, start_task
from interpret_core.registry.options import parse_method_spec, parse_options, split_items, split_list

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from interpret_core.api.interfaces import Attribution, AttributionMetric, Model

#: Version of the cell / cache format; part of every key.
FORMAT_VERSION = 2
#: 64 images keep the defaults (every built-in method x every metric) well
#: under 10 minutes on 2 CPU cores and still give 95 % intervals of about
#: +-0.1 on hit rates; raise it for publication tables.
DEFAULT_LIMIT = 64
CONFIDENCE = 0.95


# -- small pure helpers ---------------------------------------------------------
def parse_names(text: str | None) -> list[str] | None:
    """``"a,b, c"`` -> ``["a", "b", "c"]``; ``"all"`` or None -> None (meaning every one)."""
    if text is None or text.strip().lower() == "all":
        return None
    names = split_list(text)
    if not names:
        raise UsageError(f"empty list {text!r}", "give comma-separated names, or 'all'")
    return list(dict.fromkeys(names))


_OPTION_ITEM = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_-]*\s*=")


def parse_method_list(text: str | None) -> list[str] | None:
    """``"deconv,occlusion:window=12,stride=6,captum:NoiseTunnel(Saliency),nt_samples=8"`` -> method specs.

    Commas separate methods, except inside parentheses and before a
    ``key=value`` item, which continues the previous method's options.
    ``"all"`` or None -> None.
    """
    if text is None or text.strip().lower() == "all":
        return None
    specs: list[str] = []
    for item in split_items(text):
        if _OPTION_ITEM.match(item) and specs:
            specs[-1] = f"{specs[-1]},{item}"
        else:
            specs.append(item)
    if not specs:
        raise UsageError(f"empty method list {text!r}", "give comma-separated methods, or 'all'")
    return list(dict.fromkeys(specs))


def parse_metric_options(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["deletion.steps=64", ...]`` -> ``{"deletion": {"steps": 64}}``."""
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        name, dot, rest = item.partition(".")
        if not dot or not name.strip() or "=" not in rest:
            raise UsageError(
                f"--metric-option {item!r} is not METRIC.KEY=VALUE",
                "for example --metric-option METRIC.baseline=mean (metric names: `interp plugins`)",
            )
        options.setdefault(name.strip(), {}).update(parse_options([rest], where="--metric-option", example="METRIC.steps=64"))
    return options


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Mean and two-sided Student-t confidence interval of the finite ``values``.

    Returns ``{"mean", "ci_low", "ci_high", "std", "n", "n_undefined"}``; NaN
    values (undefined scores) are counted in ``n_undefined`` and left out.
    With fewer than two values the interval is NaN.
    """
    from scipy import stats

    array = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = array[np.isfinite(array)]
    n = int(finite.size)
    result = {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "std": math.nan, "n": n,
              "n_undefined": int(array.size - n)}
    if n == 0:
        return result
    mean = float(finite.mean())
    result["mean"] = mean
    if n < 2:
        return result
    std = float(finite.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    result.update(std=std, ci_low=mean - half, ci_high=mean + half)
    return result


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of ``value``."""
    return hashlib.sha256(json.dumps(to_jsonable(value), sort_keys=True).encode()).hexdigest()


def make_method(spec: str) -> Attribution:
    """The attribution method named by ``spec``.

    Specs are read by :func:`interpret_core.registry.options.parse_method_spec`
    (``occlusion:window=12,stride=6``, ``captum:NoiseTunnel(Saliency),nt_samples=8``).
    """
    from interpret_core.registry.loader import get_attribution

    name, options = parse_method_spec(spec)
    return get_attribution(name, **options)


def canonical_spec(spec: str) -> list[Any]:
    """[name, options sorted]: two spellings of one method share their cells."""
    name, options = parse_method_spec(spec)
    return [name, sorted((k, to_jsonable(v)) for k, v in options.items())]


# -- configuration ----------------------------------------------------------------
@dataclasses.dataclass
class BenchConfig:
    """What ``interp bench`` runs; see the module docstring."""

    methods: list[str] | None = None  # None = every registered method that works on the model
    metrics: list[str] | None = None  # None = every registered attribution metric
    model: str | None = None  # None: the model named by the weights' card, else the configured default
    weights: str | None = None
    #: keyword options of the model plugin (``--model-option``)
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: where the model runs (``--device``, :func:`interpret_core.nn.device.resolve_device`); not part of the cell key
    device: str = "cpu"
    dataset: str | None = None  # None: the configured default (`interp config get dataset`)
    data_root: str | None = None
    #: keyword options of the data set plugin (``--dataset-option``), e.g. {"protocol": "peak"}
    dataset_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    limit: int | None = DEFAULT_LIMIT
    seed: int = 0
    out: str | None = None
    baselines: bool = True
    batch_size: int = 32
    metric_options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: where the attribution and cell tasks run (an ``ExecutorChoice``; None: this process); not part of the cell key
    executor: Any = None

    def validate(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {self.limit}", "use --limit 64, or omit it")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        from interpret_core.workflows.setup import check_data_root, check_weights

        check_weights(self.weights)
        check_data_root(self.data_root, self.dataset)


@dataclasses.dataclass
class Prepared:
    """The shared state of one bench run: model, images, targets, masks."""

    model: Model
    inputs: torch.Tensor  # float32 [N, C, H, W]
    targets: torch.Tensor  # int64 [N], predicted classes
    masks: torch.Tensor  # bool [N, H, W] at the input resolution
    has_mask: np.ndarray  # bool [N]
    indices: np.ndarray  # dataset indices of the selection
    emotions: list[int | None]
    subjects: list[str]
    key: dict[str, Any]  # what makes this selection, model and data unique
    key_hash: str
    # Each image's label as a *model* class index (matched by name), None if unlabelled or unmatched.
    labels: list[int | None] = dataclasses.field(default_factory=list)
    unmatched_classes: list[str] = dataclasses.field(default_factory=list)


def union_mask(sample: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """Union of the localisation masks of the AUs present in ``sample``, or None."""
    masks = sample.localisation_masks()
    if not masks or not sample.aus:
        return None
    union = np.zeros(shape, dtype=bool)
    found = False
    for au in sample.aus:
        mask = masks.get(au)
        if mask is None:
            continue
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != shape:
            raise DataError(
                f"sample {sample.path or sample.sequence}: mask of AU{au} has shape {mask.shape}, image {shape}",
                "regenerate or re-read the data set",
            )
        union |= mask
        found = True
    return union if found and union.any() else None


def prepare(config: BenchConfig, status: Any = None, warn: Any = None) -> Prepared:
    """Load the model and the selected images; predict the targets."""
    import torch
    import torch.nn.functional as F

    from interpret_core.registry.loader import code_provenance
    from interpret_core.workflows.setup import DataChoice, ModelChoice, load_dataset, load_model

    if status:
        status("loading model and data")
    # Seeded, so that a model without trained weights is at least the same
    # network on every run (and its cells can be reused).
    model = load_model(ModelChoice(config.model, config.weights, config.model_options, config.seed, config.device))
    if model.card is None and warn:
        warn(
            f"model {config.model!r} has no trained weights (random initialisation, seed {config.seed}); "
            "its attributions say nothing about a trained network. Pass --weights from `interp train`"
        )
    dataset = load_dataset(DataChoice(config.dataset, config.data_root, config.dataset_options))
    if len(dataset) == 0:
        raise DataError(f"data set {config.dataset!r} has no images", "check --data-root")
    emotions_all = list(dataset.emotions)
    indices = stratified_indices(emotions_all, config.limit, config.seed)
    samples = [dataset[int(i)] for i in indices]
    class_match = match_classes(model.class_names, dataset.class_names)
    unmatched = class_match.warning(f"model {config.model!r}", f"data set {config.dataset!r}")
    if unmatched and warn:
        warn(unmatched)
    images = np.stack([np.asarray(s.image, dtype=np.float32) for s in samples])
    inputs = model.to_input(images)
    height, width = inputs.shape[-2:]
    mask_list, has_mask = [], []
    for sample in samples:
        union = union_mask(sample, tuple(np.asarray(sample.image).shape))
        has_mask.append(union is not None)
        mask_list.append(union if union is not None else np.zeros(np.asarray(sample.image).shape, dtype=bool))
    masks = torch.as_tensor(np.stack(mask_list))
    if masks.shape[-2:] != (height, width):
        masks = F.interpolate(masks[:, None].float(), size=(height, width), mode="nearest")[:, 0] > 0.5
    module = model.module
    with torch.no_grad():
        logits = torch.cat([module(inputs[i : i + 256]) for i in range(0, len(inputs), 256)])
    targets = logits.argmax(dim=1)
    data_sha = hashlib.sha256()
    data_sha.update(images.tobytes())
    data_sha.update(masks.numpy().tobytes())
    key = {
        "format": FORMAT_VERSION,
        "model": config.model,
        "model_sha256": state_dict_sha256(module),
        "dataset": config.dataset,
        "data_root": None if config.data_root is None else os.path.abspath(config.data_root),
        "dataset_options": to_jsonable(config.dataset_options),
        "limit": config.limit,
        "seed": config.seed,
        "indices": indices.tolist(),
        "data_sha256": data_sha.hexdigest(),  # the pixels and masks themselves: edited images change it
        "code": code_provenance(("model", model.name), ("dataset", dataset.name)),
    }
    return Prepared(
        model=model,
        inputs=inputs,
        targets=targets,
        masks=masks.to(torch.bool),
        has_mask=np.asarray(has_mask, dtype=bool),
        indices=indices,
        emotions=[s.emotion for s in samples],
        subjects=[s.subject for s in samples],
        key=key,
        key_hash=digest(key),
        labels=[class_match.model_index(s.emotion) for s in samples],
        unmatched_classes=list(class_match.unmatched_dataset),
    )


def default_out(config: BenchConfig, key_hash: str) -> Path:
    """``./interp-runs/bench-<model>-<dataset>-<hash>``: the same configuration, the same folder."""
    return Path("interp-runs") / f"bench-{slug(config.model)}-{slug(config.dataset)}-{key_hash[:10]}"


# -- the run ----------------------------------------------------------------------
class Bench:
    """One bench run over a :class:`Prepared` selection, writing into ``out``."""

    def __init__(self, config: BenchConfig, prepared: Prepared, out: Path, progress: ProgressLike = None):
        self.config = config
        self.prepared = prepared
        self.out = Path(out)
        self.progress = progress
        self.reused = 0
        self.computed = 0
        self.attributions_reused = 0
        self.attributions_computed = 0
        self._attributions: dict[str, tuple[Any, float]] = {}
        self._code: dict[tuple[str, str], dict[str, Any]] = {}
        #: cached files not reused: {"file", "reason"} each, in the order met
        self.recomputed: list[dict[str, str]] = []
        self.warn: Any = None  # a callable taking a message: says once per reason why cached files are recomputed
        self._told: set[str] = set()

    # -- keys -----------------------------------------------------------------
    def _code_of(self, kind: str, name: str) -> dict[str, Any]:
        if (kind, name) not in self._code:
            from interpret_core.registry.loader import code_provenance

            self._code[(kind, name)] = code_provenance((kind, name))[f"{kind}:{name}"]
        return self._code[(kind, name)]

    def attribution_key_fields(self, spec: str) -> dict[str, Any]:
        """What the attributions of ``spec`` depend on: the selection, the method and options, the batch size, its code."""
        method = canonical_spec(spec)
        return {"data": self.prepared.key, "method": method, "batch_size": self.config.batch_size,
                "code": self._code_of("attribution", method[0])}

    def _stale(self, path: Path, old_fields: Any, fields: dict[str, Any]) -> str:
        """Record (and return) why the cached ``path`` is recomputed."""
        from interpret_core.util.fingerprint import first_difference

        field = first_difference(old_fields, fields) if isinstance(old_fields, dict) else ""
        reason = f"{field} differs" if field else "it was written by another version of interp bench"
        self.recomputed.append({"file": str(path.relative_to(self.out)), "reason": reason})
        if self.warn is not None and reason not in self._told:
            self._told.add(reason)
            self.warn(f"recomputing {path.relative_to(self.out)} and any other cached file whose {reason}")
        return reason

    # -- attributions ---------------------------------------------------------
    def _attribution_path(self, spec: str) -> Path:
        return self.out / "attributions" / f"{slug(spec)}.npz"

    def cached_attributions(self, spec: str) -> tuple[torch.Tensor, float] | None:
        """(attributions float32 [N, C, H, W], seconds per image) of ``spec`` from ``attributions/``, if still current."""
        import torch

        if spec in self._attributions:
            return self._attributions[spec]
        fields = self.attribution_key_fields(spec)
        key = digest(fields)
        path = self._attribution_path(spec)
        if not path.is_file():
            return None
        old_fields: Any = None
        try:
            with np.load(path, allow_pickle=False) as stored:
                if str(stored["key"]) == key:
                    result = (torch.from_numpy(stored["attributions"].copy()), float(stored["seconds_per_image"]))
                    self._attributions[spec] = result
                    self.attributions_reused += 1
                    return result
                old_fields = json.loads(str(stored["key_fields"])) if "key_fields" in stored else None
        except (OSError, KeyError, ValueError):
            pass  # unreadable or foreign cache: recompute
        self._stale(path, old_fields, fields)
        return None

    def save_attributions(self, spec: str, attributions: torch.Tensor, seconds: float) -> None:
        """Write the attributions of ``spec`` to ``attributions/`` (atomically), keyed for a later run."""
        fields = self.attribution_key_fields(spec)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, attributions=attributions.numpy(), key=np.array(digest(fields)), seconds_per_image=np.array(seconds),
                            key_fields=np.array(json.dumps(to_jsonable(fields), sort_keys=True)))
        write_bytes(self._attribution_path(spec), buffer.getvalue())
        self.attributions_computed += 1
        self._attributions[spec] = (attributions, seconds)

    # -- cells ------------------------------------------------------------------
    def _cell_path(self, spec: str, metric_name: str) -> Path:
        return self.out / "cells" / f"{slug(spec)}__{slug(metric_name)}.json"

    def cell_key_fields(self, spec: str, metric_name: str, metric: AttributionMetric) -> dict[str, Any]:
        """What a cell depends on: its attributions' key, the metric, its options, version and code."""
        return to_jsonable({**self.attribution_key_fields(spec), "metric": metric_name,
                            "options": metric_options(self.config, metric_name, metric), "version": metric.version,
                            "metric_code": self._code_of("attribution-metric", metric_name)})

    def cell_key(self, spec: str, metric_name: str, metric: AttributionMetric) -> str:
        return digest(self.cell_key_fields(spec, metric_name, metric))

    def cached_cell(self, spec: str, metric_name: str, key: str, fields: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The finished cell on disk if its key is ``key``; else None (a stale one is recorded with why, given ``fields``)."""
        path = self._cell_path(spec, metric_name)
        if not path.is_file():
            return None
        try:
            cell = read_json(path)
        except (DataError, OSError):
            cell = None
        if isinstance(cell, dict) and cell.get("key") == key:
            return cell
        if fields is not None:
            self._stale(path, cell.get("key_fields") if isinstance(cell, dict) else None, fields)
        return None

    def save_cell(self, spec: str, metric_name: str, fields: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
        """Write a computed cell to ``cells/`` at once (atomically), keyed by ``fields``."""
        cell["key"] = digest(fields)
        cell["key_fields"] = fields
        write_json(self._cell_path(spec, metric_name), cell)
        self.computed += 1
        cell["reused"] = False
        return cell


def attribute_all(
    module: Any, inputs: torch.Tensor, targets: torch.Tensor, spec: str, method: Attribution, batch_size: int,
    progress: ProgressLike = None,
) -> tuple[torch.Tensor, float]:
    """(attributions float32 [N, C, H, W] on the CPU, seconds per image) of ``method`` for every image, in batches."""
    import torch

    parts = []
    task = start_task(progress, f"attributions {spec}", len(inputs))
    start = time.perf_counter()
    for first in range(0, len(inputs), batch_size):
        part = slice(first, first + batch_size)
        result = method.attribute(module, inputs[part].clone(), targets[part])
        result = torch.as_tensor(result).detach().to(torch.float32).cpu()
        if result.ndim == 3:
            result = result[:, None]
        expected = inputs[part].shape
        if result.ndim != 4 or result.shape[0] != expected[0] or result.shape[-2:] != expected[-2:]:
            raise InterpError(
                f"attribution {spec!r} returned shape {tuple(result.shape)} for inputs {tuple(expected)}",
                "an Attribution must return [N, C, H, W] like its inputs",
            )
        parts.append(result)
        task.advance(result.shape[0])
    seconds = (time.perf_counter() - start) / len(inputs)
    task.close()
    return torch.cat(parts), seconds


def score_cell(
    spec: str, method: Attribution, metric_name: str, metric: AttributionMetric, options: dict[str, Any],
    attributions: torch.Tensor, model: Model, inputs: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor, has_mask: np.ndarray,
) -> dict[str, Any]:
    """Score every image of the selection with ``metric`` (only those with masks for localisation metrics); the cell's record."""
    import torch

    keep = np.ones(len(inputs), dtype=bool)
    if metric.needs_masks:
        keep = has_mask.copy()
    rows = torch.as_tensor(np.flatnonzero(keep))
    start = time.perf_counter()
    scores = np.full(len(inputs), np.nan)
    extras: dict[str, np.ndarray] = {}
    if len(rows):
        measured = metric.evaluate(
            inputs=inputs[rows],
            targets=targets[rows],
            attributions=attributions[rows],
            masks=masks[rows] if metric.needs_masks else None,
            model=model.module,
            method=method,
        )
        scores[keep] = measured.scores
        for name, extra in measured.extras.items():
            full = np.full(len(inputs), np.nan)
            full[keep] = extra
            extras[name] = full
    seconds = time.perf_counter() - start
    summary = mean_ci(scores[keep])
    return {
        "method": spec,
        "metric": metric_name,
        **summary,
        "n_scored": int(keep.sum()),
        "extras": {name: mean_ci(values[keep]) for name, values in extras.items()},
        "scores": [None if not np.isfinite(v) else float(v) for v in scores],
        "extra_scores": {name: [None if not np.isfinite(v) else float(v) for v in values] for name, values in extras.items()},
        "metric_seconds": seconds,
        "options": options,
        "warnings": list(measured.warnings) if len(rows) else [],
    }


# -- bench tasks (interpret_core.workflows.executors) ----------------------------------------
@dataclasses.dataclass
class BenchTasks:
    """What every bench task needs, sent to the workers once.

    The model goes by its weights file and sha256 (each worker loads and
    checks it once, :func:`~interpret_core.workflows.setup.load_shared_model`);
    the selection's inputs, predicted targets and masks go as arrays: they are
    the ``--limit`` images the bench scores, a few MB. In this process
    ``local`` holds the live model, tensors, methods and metrics instead (never pickled).
    """

    model: Any  # SharedModel
    inputs: np.ndarray  # float32 [N, C, H, W]
    targets: np.ndarray  # int64 [N]
    masks: np.ndarray  # bool [N, H, W]
    has_mask: np.ndarray  # bool [N]
    batch_size: int
    metric_options: dict[str, dict[str, Any]]
    options: dict[str, dict[str, Any]]  # per metric, as recorded in its cells (metric_options overlaid by the metric's own)
    local: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "local": None}

    def tensors(self) -> tuple[Model, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(model, inputs, targets, masks), the inputs and targets on the model's device."""
        if self.local is None:
            import torch

            from interpret_core.workflows.setup import load_shared_model

            model = load_shared_model(self.model)
            self.local = {"prepared": (model, torch.from_numpy(self.inputs).to(model.device),
                                       torch.from_numpy(self.targets).to(model.device), torch.from_numpy(self.masks)),
                          "methods": {}, "metrics": {}}
        return self.local["prepared"]

    def method(self, spec: str) -> Attribution:
        self.tensors()
        methods = self.local["methods"]  # type: ignore[index]
        if spec not in methods:
            methods[spec] = make_method(spec)
        return methods[spec]

    def metric(self, name: str) -> AttributionMetric:
        from interpret_core.registry.loader import get_attribution_metric

        self.tensors()
        metrics = self.local["metrics"]  # type: ignore[index]
        if name not in metrics:
            metrics[name] = get_attribution_metric(name, **self.metric_options.get(name, {}))
        return metrics[name]


def _outcome(function: Any, *args: Any) -> tuple[Any, BaseException | None]:
    """(result, None), or (None, the exception) so one failed method or cell does not stop the others."""
    import pickle

    try:
        return function(*args), None
    except Exception as exc:  # noqa: BLE001 - handed to the caller, which decides
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001 - an exception that cannot travel back from a worker
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        return None, exc


def attribution_shards(count: int, batch_size: int, whole: bool) -> list[tuple[int, int]]:
    """(first, stop) image positions of each attribution task of one method: one batch each, or all of them (``whole``).

    A shard is whole batches of :func:`attribute_all`, so the sharded maps are the
    same calls on the same tensors as in one task, and join to the same array.
    """
    if whole or count <= batch_size:
        return [(0, count)]
    return [(first, min(first + batch_size, count)) for first in range(0, count, batch_size)]


def join_attribution_shards(parts: Sequence[tuple[torch.Tensor, float]], counts: Sequence[int]) -> tuple[torch.Tensor, float]:
    """(attributions [N, C, H, W], seconds per image) of one method from its shards' results, in shard order."""
    import torch

    if len(parts) == 1:
        return parts[0]
    return torch.cat([maps for maps, _ in parts]), sum(seconds * count for (_, seconds), count in zip(parts, counts)) / sum(counts)


def _attribution_task(item: tuple[str, str, tuple[int, int], ProgressLike], tasks: BenchTasks) -> tuple[Any, BaseException | None]:
    _, spec, (first, stop), progress = item
    model, inputs, targets, _ = tasks.tensors()
    return _outcome(lambda: attribute_all(model.module, inputs[first:stop], targets[first:stop], spec, tasks.method(spec),
                                          tasks.batch_size, progress))


def _cell_task(item: tuple[str, str, str, Any], tasks: BenchTasks) -> tuple[Any, BaseException | None]:
    _, spec, metric_name, attributions = item
    model, inputs, targets, masks = tasks.tensors()
    return _outcome(lambda: score_cell(spec, tasks.method(spec), metric_name, tasks.metric(metric_name), tasks.options[metric_name],
                                       attributions, model, inputs, targets, masks, tasks.has_mask))


def _bench_task(item: tuple[Any, ...], tasks: BenchTasks) -> tuple[Any, BaseException | None]:
    """One bench task: ``("attributions", spec, (first, stop), progress)`` or ``("cell", spec, metric, attributions)``."""
    return (_attribution_task if item[0] == "attributions" else _cell_task)(item, tasks)  # type: ignore[arg-type]


def _bench_task_name(item: tuple[Any, ...]) -> str:
    return "attributions of method" if item[0] == "attributions" else "bench cell"


def metric_options(config: BenchConfig, name: str, metric: AttributionMetric) -> dict[str, Any]:
    """The options a cell was scored with: those given (``--metric-option``), overlaid by the metric's effective ones."""
    return {**to_jsonable(config.metric_options.get(name, {})), **to_jsonable(metric.options())}


def _metric_instances(config: BenchConfig) -> dict[str, AttributionMetric]:
    from interpret_core.registry.loader import get_attribution_metric, get_registry

    names = config.metrics if config.metrics is not None else get_registry().names("attribution-metric")
    unknown_options = set(config.metric_options) - set(names)
    if unknown_options:
        raise UsageError(f"--metric-option names unknown metric(s) {sorted(unknown_options)}", f"metrics: {', '.join(names)}")
    metrics = {name: get_attribution_metric(name, **config.metric_options.get(name, {})) for name in names}
    if config.metrics is None:  # 'all': by the families' declared rank (localisation, faithfulness, sanity), then name
        order = sorted(metrics, key=lambda n: (metrics[n].family_rank, n))
        metrics = {name: metrics[name] for name in order}
    return metrics


def _is_baseline(spec: str) -> bool:
    """Whether the method of ``spec`` declares itself a baseline (unknown names are not)."""
    from interpret_core.api.errors import UnknownNameError
    from interpret_core.registry.loader import get_registry

    try:
        return bool(get_registry().get_class("attribution", spec.partition(":")[0].strip()).is_baseline)
    except UnknownNameError:
        return False


def _method_specs(config: BenchConfig) -> tuple[list[str], bool]:
    """(method specs in table order, whether failures are skipped rather than raised).

    Baselines (methods with ``is_baseline``) come last: every installed one
    unless ``--no-baselines``, plus any named in ``--methods``.
    """
    from interpret_core.registry.loader import get_registry

    installed = get_registry().names("attribution")
    every_baseline = [n for n in installed if _is_baseline(n)]
    if config.methods is None:
        names = [n for n in installed if n not in every_baseline]
        skip_failures = True
    else:
        names = [n for n in config.methods if not _is_baseline(n)]
        skip_failures = False
    chosen = [n for n in config.methods or () if _is_baseline(n)]
    baselines = list(dict.fromkeys((every_baseline if config.baselines else []) + chosen))
    return names + baselines, skip_failures


def run_bench(config: BenchConfig, progress: ProgressLike = None, status: Any = None, warn: Any = None) -> dict[str, Any]:
    """Run (or resume) a bench; returns the result written to ``bench.json``.

    Args:
        progress: a :class:`~interpret_core.util.progress.Progress`, ``callable(done, total)`` or None (silence).
        status, warn: callables taking a message (or None).
    """
    with contextlib.ExitStack() as claims:
        return _run_bench(config, progress, status, warn, claims)


def _run_bench(config: BenchConfig, progress: Any, status: Any, warn: Any, claims: contextlib.ExitStack) -> dict[str, Any]:
    from interpret_core.registry.defaults import default
    from interpret_core.workflows.executors import open_executor
    from interpret_core.workflows.setup import ModelChoice, model_name, shared_model

    config = dataclasses.replace(config, model=model_name(config.model, config.weights), dataset=config.dataset or default("dataset"))
    config.validate()
    wall_start = time.perf_counter()
    metrics = _metric_instances(config)
    specs, skip_failures = _method_specs(config)
    if config.out:  # lock a given folder before any work, so a second writer fails at once
        claims.enter_context(claim_output_dir(config.out))
    prepared = prepare(config, status, warn)
    out = Path(config.out) if config.out else claims.enter_context(claim_output_dir(default_out(config, prepared.key_hash)))
    bench = Bench(config, prepared, out, progress)
    bench.warn = warn
    rows: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    needs_options: dict[str, str] = {}  # plugins that are not a method without options (e.g. 'captum')
    failed_cells: list[dict[str, str]] = []
    cells_task = start_task(progress, "bench cells", len(specs) * len(metrics))
    from interpret_core.workflows.bench_report import example_positions

    examples = example_positions(prepared.has_mask, prepared.subjects)
    example_maps: dict[str, np.ndarray] = {}
    methods: dict[str, Attribution] = {}
    for spec in specs:
        try:
            methods[spec] = make_method(spec)
        except UsageError as exc:
            if not skip_failures:
                raise
            # e.g. the generic 'captum' adapter, which needs a class name: not a method on its own
            needs_options[spec] = exc.message
            cells_task.advance(len(metrics))
    model_choice = ModelChoice(config.model, config.weights, config.model_options, config.seed, config.device)
    tasks = BenchTasks(
        model=shared_model(prepared.model, model_choice),
        inputs=prepared.inputs.cpu().numpy(), targets=prepared.targets.cpu().numpy(), masks=prepared.masks.cpu().numpy(),
        has_mask=prepared.has_mask, batch_size=config.batch_size, metric_options=config.metric_options,
        options={name: metric_options(config, name, metric) for name, metric in metrics.items()},
        local={"prepared": (prepared.model, prepared.inputs, prepared.targets, prepared.masks), "methods": methods, "metrics": metrics},
    )
    attributions: dict[str, tuple[Any, float]] = {}
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    with open_executor(config.executor) as executor:
        shared = (executor.share(tasks),)
        # One list of tasks (interpret_core.workflows.executors), extended as results come back:
        # step 4, each method's attributions not cached, one task per batch (shard) on workers;
        # step 5, each (method, metric) cell not cached, queued the moment its method's
        # attributions are complete (never waiting for the other methods). Everything is
        # saved the moment it is back.
        items: list[tuple[Any, ...]] = []
        cell_fields: dict[tuple[str, str], dict[str, Any]] = {}

        def queue_cells(spec: str) -> None:
            maps: Any = None
            for metric_name, metric in metrics.items():
                fields = bench.cell_key_fields(spec, metric_name, metric)
                cached_cell = bench.cached_cell(spec, metric_name, digest(fields), fields)
                if cached_cell is None:
                    maps = maps if maps is not None else executor.share(attributions[spec][0])
                    cell_fields[(spec, metric_name)] = fields
                    items.append(("cell", spec, metric_name, maps))
                    continue
                bench.reused += 1
                cells[(spec, metric_name)] = {**cached_cell, "reused": True}
                cells_task.advance()

        for spec in methods:
            cached = bench.cached_attributions(spec)
            if cached is not None:
                attributions[spec] = cached
        shards = {spec: attribution_shards(len(prepared.inputs), config.batch_size, executor.in_process)
                  for spec in methods if spec not in attributions}
        parts: dict[str, dict[int, tuple[Any, float]]] = {spec: {} for spec in shards}
        items += [("attributions", spec, shard, progress if executor.in_process else None) for spec in shards for shard in shards[spec]]
        for spec in (spec for spec in methods if spec in attributions):
            queue_cells(spec)
        for position, (result, exc) in executor.map(_bench_task, items, shared=shared, name=_bench_task_name):
            if items[position][0] == "attributions":
                spec, shard = items[position][1], items[position][2]
                if spec in skipped:
                    continue  # another shard of this method failed already
                if exc is None:
                    parts[spec][shard[0]] = result
                    if len(parts[spec]) == len(shards[spec]):
                        joined = join_attribution_shards([parts[spec][first] for first, _ in shards[spec]],
                                                         [stop - first for first, stop in shards[spec]])
                        bench.save_attributions(spec, *joined)
                        attributions[spec] = joined
                        del parts[spec]
                        queue_cells(spec)
                    continue
                if not skip_failures or methods[spec].is_baseline:
                    if isinstance(exc, InterpError):
                        raise exc
                    raise InterpError(f"attribution {spec!r} failed on model {config.model!r}: {type(exc).__name__}: {exc}",
                                      "drop it from --methods, or run with INTERP_DEBUG=1 for the traceback") from exc
                skipped[spec] = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
                if warn:
                    warn(f"skipping method {spec!r}: {skipped[spec]}")
                cells_task.advance(len(metrics))
                continue
            _, spec, metric_name, _ = items[position]
            cell = result
            if exc is None:
                cells[(spec, metric_name)] = bench.save_cell(spec, metric_name, cell_fields[(spec, metric_name)], cell)
            elif isinstance(exc, UsageError) and not isinstance(exc, CapabilityError):
                raise exc
            else:
                cell = {"method": spec, "metric": metric_name, "mean": math.nan,
                        "ci_low": math.nan, "ci_high": math.nan, "n": 0, "reused": False}
                if isinstance(exc, CapabilityError):  # the metric does not apply to this method (e.g. completeness)
                    cell["not_applicable"] = getattr(exc, "message", str(exc))
                else:
                    cell["error"] = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
                cells[(spec, metric_name)] = cell
            cells_task.advance()
    # The table, in method and metric order whatever order the tasks finished in.
    for spec in (spec for spec in methods if spec in attributions):
        method, (maps_of_spec, seconds) = methods[spec], attributions[spec]
        example_maps[spec] = maps_of_spec[examples].sum(dim=1).numpy()
        row = {"method": spec, "baseline": bool(method.is_baseline), "signed": bool(method.signed),
               "multiplies_by_inputs": bool(method.multiplies_by_inputs), "time_per_image_s": seconds, "cells": {}}
        for metric_name in metrics:
            cell = cells[(spec, metric_name)]
            if cell.get("error"):
                failed_cells.append({"method": spec, "metric": metric_name, "error": cell["error"]})
                if warn:
                    warn(f"cell {spec} x {metric_name} failed: {cell['error']}")
            for message in cell.get("warnings") or ():
                if warn:
                    warn(message)
            row["cells"][metric_name] = {k: v for k, v in cell.items() if k not in ("scores", "extra_scores", "key", "key_fields")}
        undefined = {m: c.get("n_undefined", 0) for m, c in row["cells"].items() if c.get("n_undefined")}
        if undefined and warn:
            warn(f"method {spec!r} has undefined maps (constant, NaN or inf), left out of its means: "
                 + ", ".join(f"{m} {k}/{row['cells'][m].get('n_scored', k)}" for m, k in undefined.items()))
        rows[spec] = row
    cells_task.close()
    targets = prepared.targets.cpu().numpy()
    # Labels are data-set classes mapped to the model's by name (never by index);
    # images whose class the model lacks do not count.
    labelled = [(int(t), label) for t, label in zip(targets, prepared.labels) if label is not None]
    accuracy = float(np.mean([t == label for t, label in labelled])) if labelled else None
    result = {
        "command": "bench",
        "out": str(out),
        "config": {
            "model": config.model,
            "weights": config.weights,
            "model_sha256": prepared.key["model_sha256"],
            "dataset": config.dataset,
            "data_root": prepared.key["data_root"],
            "dataset_options": to_jsonable(config.dataset_options),
            "limit": config.limit,
            "seed": config.seed,
            "batch_size": config.batch_size,
            "target": "predicted class",
            "confidence": CONFIDENCE,
            "interval": "Student t over the images' finite scores",
            "key": prepared.key_hash,
        },
        "images": {
            "n": int(len(prepared.indices)),
            "n_with_masks": int(prepared.has_mask.sum()),
            "indices": prepared.indices.tolist(),
            "subjects": sorted(set(prepared.subjects)),
            "accuracy_on_selection": accuracy,
            "accuracy_classes_matched_by": "name",
            "n_labelled_matched": len(labelled),
            "unmatched_classes": list(prepared.unmatched_classes),
        },
        "metrics": {
            name: {
                "higher_is_better": bool(metric.higher_is_better),
                "family": metric.family,
                "family_rank": int(metric.family_rank),
                "short_name": metric.short_name or name,
                "needs_masks": bool(metric.needs_masks),
                "description": metric.description,
                "options": metric_options(config, name, metric),
                "extras": list(metric.extra_fields),
                "column_extras": dict(metric.column_extras),
                "reference_extras": list(metric.reference_extras),
            }
            for name, metric in metrics.items()
        },
        "methods": list(rows.values()),
        "skipped_methods": skipped,
        "not_run_without_options": needs_options,
        "failed_cells": failed_cells,
        "reused": bench.reused,
        "computed": bench.computed,
        "attributions_reused": bench.attributions_reused,
        "attributions_computed": bench.attributions_computed,
        "recomputed": bench.recomputed,
        "wall_s": time.perf_counter() - wall_start,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_outputs(result, out)
    from interpret_core.render.imaging import unit_range
    from interpret_core.workflows.bench_report import write_bench_html

    faces = prepared.inputs[examples].mean(dim=1).numpy()
    write_bench_html(result, out, faces=unit_range(faces), masks=prepared.masks[examples].numpy(), maps=example_maps,
                     captions=[prepared.subjects[i] for i in examples])
    return result



# -- outputs ----------------------------------------------------------------------
def _arrow(higher_is_better: bool) -> str:
    return "↑" if higher_is_better else "↓"


#: The last word of a reference column's header, where a score's has its direction arrow.
REFERENCE_MARK = "(ref.)"


def is_reference(result: dict[str, Any], metric: str, extra: str | None) -> bool:
    """Whether the column is a reference level (a chance rate) beside a metric's score, never ranked."""
    return extra is not None and extra in (result["metrics"][metric].get("reference_extras") or ())


def column_title(header: str) -> str:
    """A column header without its last word (the direction arrow or :data:`REFERENCE_MARK`)."""
    return header.rsplit(" ", 1)[0]


def format_cell(cell: dict[str, Any] | None, digits: int = 3, separator: str = " ± ") -> str:
    """``mean ± half-width``, then ``(k undef.)`` when k images had undefined maps (``n/a``: none defined)."""
    if not cell:
        return "-"
    if cell.get("error"):
        return "failed"
    if cell.get("not_applicable"):
        return "n/a"
    mean, low, high = cell.get("mean"), cell.get("ci_low"), cell.get("ci_high")
    undefined = int(cell.get("n_undefined") or 0)
    suffix = f" ({undefined} undef.)" if undefined else ""
    if mean is None or not np.isfinite(mean):
        return "n/a" + suffix
    if low is None or high is None or not np.isfinite(low) or not np.isfinite(high):
        return f"{mean:.{digits}f}{suffix}"
    return f"{mean:.{digits}f}{separator}{(high - low) / 2:.{digits}f}{suffix}"


def table_columns(result: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """(metric, extra or None, header) for every column of the tables.

    A header ends in the score's direction arrow, or in :data:`REFERENCE_MARK`
    for a reference column (see :func:`is_reference`).
    """
    columns = []
    for name, info in result["metrics"].items():
        columns.append((name, None, f"{name} {_arrow(info['higher_is_better'])}"))
        for extra, label in (info.get("column_extras") or {}).items():
            mark = REFERENCE_MARK if is_reference(result, name, extra) else _arrow(info["higher_is_better"])
            columns.append((name, extra, f"{name} {label} {mark}"))
    return columns


def _cell_of(row: dict[str, Any], metric: str, extra: str | None) -> dict[str, Any] | None:
    cell = row["cells"].get(metric)
    if cell is None or extra is None:
        return cell
    return (cell.get("extras") or {}).get(extra)


def best_methods(result: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    """The non-baseline method with the best mean in each column.

    A cell with undefined maps (constant, NaN or inf; ``n_undefined > 0``) is
    never best: its mean is over the images the method could be scored on,
    which is not the same selection as the other methods'. Reference columns
    (a chance rate) have no best.
    """
    best: dict[tuple[str, str | None], str] = {}
    for metric, extra, _ in table_columns(result):
        if is_reference(result, metric, extra):
            continue
        higher = result["metrics"][metric]["higher_is_better"]
        candidates = []
        for row in result["methods"]:
            cell = _cell_of(row, metric, extra)
            if (not row["baseline"] and cell and cell.get("mean") is not None and np.isfinite(cell["mean"])
                    and not (row["cells"].get(metric) or {}).get("n_undefined")):
                candidates.append((cell["mean"] if higher else -cell["mean"], row["method"]))
        if candidates:
            best[(metric, extra)] = max(candidates)[1]
    return best


def render_markdown(result: dict[str, Any]) -> str:
    """``bench.md``: the table plus how it was made."""
    columns = table_columns(result)
    best = best_methods(result)
    header = ["method", *[c[2] for c in columns], "time / image (ms)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for row in result["methods"]:
        name = f"*{row['method']}* (baseline)" if row["baseline"] else f"`{row['method']}`"
        cells = []
        for metric, extra, _ in columns:
            text = format_cell(_cell_of(row, metric, extra))
            cells.append(f"**{text}**" if best.get((metric, extra)) == row["method"] else text)
        lines.append("| " + " | ".join([name, *cells, f"{row['time_per_image_s'] * 1000:.1f}"]) + " |")
    config, images = result["config"], result["images"]
    notes = [
        "",
        f"Model `{config['model']}` (state-dict sha256 `{config['model_sha256'][:12]}`), data set `{config['dataset']}`, "
        f"{images['n']} images (seed {config['seed']}, stratified over classes; {images['n_with_masks']} with AU masks "
        f"score the localisation metrics). Target: the predicted class"
        + (f" (accuracy on these images {images['accuracy_on_selection']:.3f})." if images.get("accuracy_on_selection") is not None else "."),
        "Cells: mean ± half-width of the 95 % Student-t interval over images. ↑ higher is better, ↓ lower is better; "
        "(ref.): a reference level beside a score (a chance rate), never ranked; "
        "bold = best non-baseline method among cells without undefined maps; \"(k undef.)\": k images whose map "
        "was constant, NaN or inf (or whose comparison map was), left out of that cell's mean; n/a: the metric does "
        "not apply to the method (a property the method does not claim). "
        "Time: attribution wall time per image on this machine.",
    ]
    if result.get("skipped_methods"):
        notes.append("Skipped: " + "; ".join(f"`{k}` ({v})" for k, v in result["skipped_methods"].items()))
    return "\n".join(lines + notes) + "\n"


def render_csv(result: dict[str, Any]) -> str:
    """``bench.csv``: one row per (method, metric[.extra])."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "baseline", "metric", "higher_is_better", "mean", "ci_low", "ci_high", "std", "n",
                     "n_undefined", "time_per_image_s", "error"])
    for row in result["methods"]:
        for metric, info in result["metrics"].items():
            cell = row["cells"].get(metric) or {}
            entries = [(metric, cell)] + [(f"{metric}.{k}", v) for k, v in (cell.get("extras") or {}).items()]
            for label, values in entries:
                writer.writerow([
                    row["method"], row["baseline"], label, info["higher_is_better"],
                    *(_csv_number(values.get(k)) for k in ("mean", "ci_low", "ci_high", "std")),
                    values.get("n", 0), values.get("n_undefined", 0), f"{row['time_per_image_s']:.6g}",
                    cell.get("error") or "",
                ])
    return buffer.getvalue()


def _csv_number(value: Any) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.6g}"


def write_outputs(result: dict[str, Any], out: Path) -> None:
    """Write ``bench.json``, ``bench.csv`` and ``bench.md`` atomically."""
    write_json(out / "bench.json", result)
    write_text(out / "bench.csv", render_csv(result))
    write_text(out / "bench.md", render_markdown(result))


def render_table(result: dict[str, Any], max_columns: int = 3) -> Any:
    """Rich tables of the result: rows methods, columns metrics, one table per metric family.

    Families (in the order of their declared ``family_rank``) are split into
    tables of at most ``max_columns`` metric columns so each fits an
    80-column terminal; the first carries the time per image.
    """
    from rich.console import Group
    from rich.table import Table

    best = best_methods(result)
    images = result["images"]
    groups: dict[str, list[tuple[str, str | None, str]]] = {}
    for column in table_columns(result):
        family = result["metrics"][column[0]].get("family") or "other"
        groups.setdefault(family, []).append(column)
    chunks: list[tuple[str, list[tuple[str, str | None, str]]]] = []
    rank = {family: min(result["metrics"][c[0]].get("family_rank", 100) for c in columns) for family, columns in groups.items()}
    for family in sorted(groups, key=lambda f: (rank[f], f)):
        current: list[tuple[str, str | None, str]] = []
        for metric in dict.fromkeys(c[0] for c in groups[family]):  # a metric's columns stay together
            own = [c for c in groups[family] if c[0] == metric]
            if current and len(current) + len(own) > max_columns:
                chunks.append((family, current))
                current = []
            current.extend(own)
        if current:
            chunks.append((family, current))
    tables: list[Any] = []
    for number, (family, columns) in enumerate(chunks):
        first, last = number == 0, number == len(chunks) - 1
        table = Table(
            title=(
                f"interp bench: {result['config']['model']} on {result['config']['dataset']} "
                f"({images['n']} images, {images['n_with_masks']} with AU masks)\n{family}" if first else family
            ),
            title_justify="left",
            caption=("mean ± 95% CI half-width; ↑/↓ direction; (ref.) = a reference level such as chance, not ranked; "
                     "bold = best method without undefined maps; "
                     "(k undef.) = k constant/NaN/inf maps left out; baselines dimmed") if last else None,
            caption_justify="left",
        )
        table.add_column("method", no_wrap=True)
        for metric, extra, _ in columns:
            # Short, wrapped headers keep the table legible in an 80-column terminal.
            info = result["metrics"][metric]
            short = (info.get("short_name") or metric).replace("-", "\n") + (f"\n{info['column_extras'][extra]}" if extra else "")
            arrow = REFERENCE_MARK if is_reference(result, metric, extra) else _arrow(info["higher_is_better"])
            table.add_column(f"{short} {arrow}", justify="right", no_wrap=True)
        if first:
            table.add_column("ms/\nimage", justify="right", no_wrap=True)
        for row in result["methods"]:
            cells = []
            for metric, extra, _ in columns:
                text = format_cell(_cell_of(row, metric, extra), digits=3, separator=" ± ")
                cells.append(f"[bold]{text}[/bold]" if best.get((metric, extra)) == row["method"] else text)
            if first:
                cells.append(f"{row['time_per_image_s'] * 1000:.1f}")
            table.add_row(row["method"], *cells, style="dim" if row["baseline"] else None)
        tables.append(table)
    return Group(*tables)
