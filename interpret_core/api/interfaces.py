"""The abstract interfaces every plugin implements.

Four ideas, each a small typed base class with capability flags (after
Captum's ``attr/_utils/attribution.py``):

* :class:`Dataset` yields :class:`Sample` objects: grey face crops with their
  emotion, action units (AUs), landmarks and AU masks.
* :class:`Model` wraps a torch ``nn.Module`` with the metadata unit analysis
  needs (analysable layers, input size, class names, model card).
* :class:`Attribution` maps inputs to pixel-space attributions, at class
  level and optionally per unit of a layer.
* :class:`UnitMetric` scores (layer, unit, concept) triples over a data set
  and returns a :class:`UnitMetricResult`; :class:`AttributionMetric` scores
  attribution maps against annotations and returns a :class:`MetricResult`.

Everything the core reads from a plugin is declared here, with a default:
capability flags are class attributes, optional abilities are methods with a
working base implementation (``Dataset.arrays`` decodes samples when a plugin
has no faster way). The core never probes a plugin with ``getattr``.

This module never imports torch at import time, so ``interp --help`` and
``interp plugins`` stay fast. Plugins follow the same rule.

Conventions: images are float32 in [0, 1]; pixel coordinates are (x, y) with
the origin at the top-left pixel's centre; tensors are NCHW.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from interpret_core.api.errors import CapabilityError, DataError, PluginError, UsageError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from torch import nn

__all__ = [
    "AUInfo",
    "Sample",
    "Dataset",
    "Model",
    "Attribution",
    "UnitMetric",
    "UnitMetricResult",
    "ReportTable",
    "AttributionMetric",
    "MetricResult",
]


class AUInfo(NamedTuple):
    """What a data set knows about an action unit: its FACS name and the face region it acts on."""

    name: str
    #: coarse face region, for grouping AUs in figures (e.g. ``brow``, ``eyes``, ``mouth``)
    region: str


@dataclasses.dataclass
class Sample:
    """One face crop and its annotations.

    Attributes:
        image: float32 array [H, W], grey levels in [0, 1].
        emotion: index into the data set's ``class_names``, or None if unlabelled.
        aus: {AU number: intensity}; intensity 1-5 means FACS A-E, 0 means
            present with intensity not coded. Absent AUs are not listed.
        landmarks: float32 [68, 2] (x, y) in the crop's pixel coordinates, or None.
        subject: subject id, e.g. ``"S005"``.
        sequence: sequence id, e.g. ``"S005_001"``.
        frame: frame index within the sequence (1-based, as in CK+ file names).
        au_masks: ground-truth {AU: bool [H, W]} of where each present AU
            changes the image (SynthFACS), or None where no ground truth exists.
        au_regions: {AU: bool [H, W]} regions derived from the landmarks
            (EAC-Net / JAA-Net rules), or None without landmarks.
        path: the source image file, for messages; may be None.
    """

    image: np.ndarray
    emotion: int | None
    aus: dict[int, int]
    landmarks: np.ndarray | None
    subject: str
    sequence: str
    frame: int
    au_masks: dict[int, np.ndarray] | None = None
    au_regions: dict[int, np.ndarray] | None = None
    path: str | None = None

    def localisation_masks(self) -> dict[int, np.ndarray] | None:
        """Where each present AU shows: ground truth if known, else landmark regions."""
        return self.au_masks if self.au_masks is not None else self.au_regions


class Dataset(abc.ABC):
    """A sequence of :class:`Sample`; subclasses register under ``name``.

    Subclasses implement ``class_names``, ``__len__`` and ``__getitem__``. The
    bulk accessors (:attr:`subjects`, :attr:`emotions`, :meth:`arrays`,
    :meth:`localisation_masks`, :meth:`au_presence`, :meth:`au_matrix`,
    :meth:`summary`) work by decoding
    samples; override them when the plugin can answer without decoding.

    Capability flags:
        has_au_masks: samples carry ground-truth ``au_masks`` (else spatial
            scores use the landmark-derived ``au_regions``); results record
            which of the two a score was measured against.
        streaming: samples are generated when asked for, not read from files
            (N may be far larger than memory). There is nothing on disk to
            check, and decoding every sample costs N generations, so commands
            skip whole-set decoding passes (``interp data inspect`` decodes one
            sample); consumers read such a set in batches
            (``arrays(indices)``), as the unit scan does, and a plugin must
            override :meth:`fingerprint` and the label accessors so that they
            generate nothing.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    has_au_masks: ClassVar[bool] = False
    streaming: ClassVar[bool] = False
    #: AU number -> :class:`AUInfo` (FACS name, face region) for every AU the
    #: data set may list; reports label and order AUs with it (empty: numbers only).
    au_table: ClassVar[Mapping[int, AUInfo]] = {}

    def au_name(self, au: int) -> str:
        """The FACS name of ``au`` (e.g. ``"inner brow raiser"``), or ``""`` if the data set does not know it."""
        info = self.au_table.get(int(au))
        return info.name if info is not None else ""

    @property
    @abc.abstractmethod
    def class_names(self) -> list[str]:
        """Emotion class names; ``Sample.emotion`` indexes this list."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of samples under the selected protocol."""

    @abc.abstractmethod
    def __getitem__(self, index: int) -> Sample:
        """Decode sample ``index`` (0-based)."""

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self)):
            yield self[index]

    @property
    def subjects(self) -> list[str]:
        """Subject id of each sample, in sample order. Override to avoid decoding."""
        return [sample.subject for sample in self]

    @property
    def sequences(self) -> list[str]:
        """Sequence id of each sample (the independent observation frames belong to). Override to avoid decoding."""
        return [sample.sequence for sample in self]

    @property
    def emotions(self) -> list[int | None]:
        """Emotion index of each sample, in sample order. Override to avoid decoding."""
        return [sample.emotion for sample in self]

    def fingerprint(self) -> str:
        """A hex string that changes whenever the samples would; cached results (scans, bench cells) are keyed by it.

        The default hashes every sample's image, labels and identity, which
        reads the whole data set once; a plugin that knows its files should
        override it with something cheaper, e.g.
        ``interpret_core.util.fingerprint.files_fingerprint`` of their sizes
        and modification times.
        """
        import hashlib

        digest = hashlib.sha256(f"{type(self).__module__}.{type(self).__qualname__}\0{len(self)}".encode())
        for sample in self:
            image = np.ascontiguousarray(sample.image)
            labels = (sample.subject, sample.sequence, sample.frame, sample.emotion, sorted(sample.aus.items()),
                      image.dtype.str, image.shape)
            digest.update(repr(labels).encode())
            digest.update(image.tobytes())
        return digest.hexdigest()

    def arrays(
        self, indices: Sequence[int] | np.ndarray | None = None, progress: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bulk pixels of ``indices`` (default: every sample).

        Args:
            progress: the plugin may draw a progress bar on stderr while decoding.

        Returns:
            (images float32 [n, H, W] in [0, 1], emotions int64 [n], -1 = unlabelled).
            Every sample must have the same size (cropping is the plugin's job).
        """
        selected = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        images, emotions = [], []
        for index in selected.tolist():
            sample = self[int(index)]
            images.append(np.asarray(sample.image, dtype=np.float32))
            emotions.append(-1 if sample.emotion is None else int(sample.emotion))
        if not images:
            return np.zeros((0, 1, 1), dtype=np.float32), np.zeros(0, dtype=np.int64)
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise DataError(
                f"data set {self.name!r}: samples {selected[0]}..{selected[-1]} have different image sizes {sorted(shapes)}",
                "crop every sample to one size (the data set plugin's job)",
            )
        return np.stack(images), np.asarray(emotions, dtype=np.int64)

    def localisation_masks(self, indices: Sequence[int] | np.ndarray) -> list[dict[int, np.ndarray] | None]:
        """:meth:`Sample.localisation_masks` of the samples at ``indices``, in order.

        The default decodes each sample; override it when the plugin can read
        masks (or derive landmark regions) without decoding images: spatial
        scores read thousands of them.
        """
        selected = np.asarray(indices, dtype=np.int64).reshape(-1)
        return [self[int(index)].localisation_masks() for index in selected.tolist()]

    def au_matrix(self, aus: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """The AU table: (AU numbers, int64 [N, A] intensities of every sample, 0 = absent or not coded).

        ``aus`` selects and orders the columns (default: every AU any sample
        lists, ascending). Presence is :meth:`au_presence` (intensity 0 can mean
        "present, intensity not coded").
        """
        table = [sample.aus for sample in self]
        numbers = sorted({int(au) for row in table for au in row}) if aus is None else [int(a) for a in aus]
        column = {au: j for j, au in enumerate(numbers)}
        matrix = np.zeros((len(table), len(numbers)), dtype=np.int64)
        for i, row in enumerate(table):
            for au, intensity in row.items():
                if int(au) in column:
                    matrix[i, column[int(au)]] = int(intensity)
        return numbers, matrix

    def au_presence(self, aus: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """(AU numbers, bool [N, A]): which AUs each sample lists (columns as in :meth:`au_matrix`)."""
        table = [sample.aus for sample in self]
        numbers = sorted({int(au) for row in table for au in row}) if aus is None else [int(a) for a in aus]
        column = {au: j for j, au in enumerate(numbers)}
        presence = np.zeros((len(table), len(numbers)), dtype=bool)
        for i, row in enumerate(table):
            for au in row:
                if int(au) in column:
                    presence[i, column[int(au)]] = True
        return numbers, presence

    def summary(self) -> dict[str, Any]:
        """Counts for ``interp data inspect``: JSON-ready, never decodes more than the AU table needs.

        The base gives ``dataset``, ``images``, ``subjects``, ``class_names``,
        ``samples_per_class``, ``aus`` ({AU number as text: samples listing it})
        and ``skipped`` (files left out, ``[{"path", "reason"}]``; none here);
        plugins add what they know (root, protocol, ...).
        """
        numbers, presence = self.au_presence()
        per_class = {name: 0 for name in self.class_names}
        for emotion in self.emotions:
            if emotion is not None and 0 <= emotion < len(self.class_names):
                per_class[self.class_names[emotion]] += 1
        return {
            "dataset": self.name,
            "images": len(self),
            "subjects": len(set(self.subjects)),
            "class_names": list(self.class_names),
            "samples_per_class": per_class,
            "aus": {str(au): int(presence[:, j].sum()) for j, au in enumerate(numbers)},
            "skipped": [],
        }


class Model(abc.ABC):
    """A network plus what unit analysis needs to know about it.

    Subclasses implement :meth:`build`; :func:`interpret_core.get_model` builds
    the module, loads weights (``weights=PATH`` or the plugin's shipped default)
    and puts it in eval mode.

    Attributes:
        module: the ``torch.nn.Module`` (eval mode once loaded).
        layers: dotted names from ``module.named_modules()`` that unit analysis
            may inspect, shallow to deep.
        input_size: (C, H, W) the module expects.
        class_names: output class names, one per logit.
        card: the model card of the loaded weights, or None if untrained.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: ``importlib.resources`` location of shipped default weights, as
    #: ``"package:relative/path.safetensors"``, or None.
    default_weights: ClassVar[str | None] = None
    #: class names used when none are given and no weights card names them.
    default_class_names: ClassVar[tuple[str, ...]] = ()
    #: True when the weights file *is* the network (e.g. an ONNX graph): get_model
    #: then passes it to the constructor as ``weights=PATH`` and the plugin sets ``card``.
    builds_from_weights: ClassVar[bool] = False

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        input_size: tuple[int, int, int] = (1, 64, 64),
        **options: Any,
    ):
        if options:
            raise UsageError(
                f"model {self.name!r} does not take option(s) {sorted(options)}",
                "check the model's options with `interp models`",
            )
        if class_names is None:
            class_names = type(self).default_class_names
        if not class_names:
            raise UsageError(
                f"model {self.name!r} needs class_names (it declares no default_class_names)",
                "pass class_names=[...], or weights whose model card names them",
            )
        self.class_names = list(class_names)
        self.input_size = tuple(input_size)
        self.card: dict[str, Any] | None = None
        self.module: nn.Module = self.build()
        self.module.eval()

    @abc.abstractmethod
    def build(self) -> nn.Module:
        """Return a freshly initialised module for ``class_names`` and ``input_size``."""

    @property
    @abc.abstractmethod
    def layers(self) -> list[str]:
        """Dotted names of the analysable layers (conv outputs after rectification)."""

    def architecture(self) -> dict[str, Any]:
        """What a model card must match: plugin name, class names, input size."""
        return {
            "model": self.name,
            "class_names": list(self.class_names),
            "input_size": list(self.input_size),
        }

    @property
    def device(self) -> torch.device:
        """The device of the module's parameters (the CPU for a module without any)."""
        import torch

        parameter = next(self.module.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def to_input(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Grey images [N, H, W] in [0, 1] -> float32 input [N, C, H, W] on the model's :attr:`device`.

        Images of another size are resized bilinearly to ``input_size``.
        """
        import torch
        import torch.nn.functional as F

        batch = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
        batch = batch.to(device=self.device, dtype=torch.float32)
        if batch.ndim == 2:
            batch = batch[None]
        if batch.ndim == 3:
            batch = batch[:, None]
        channels, height, width = self.input_size
        if batch.shape[-2:] != (height, width):
            batch = F.interpolate(batch, size=(height, width), mode="bilinear", align_corners=False)
        if batch.shape[1] != channels:
            batch = batch.expand(-1, channels, -1, -1).contiguous()
        return batch


class Attribution(abc.ABC):
    """An attribution method.

    Capability flags:
        supports_units: implements :meth:`attribute_units`. May be set per
            instance when it depends on the options (the check is on the instance).
        signed: maps carry meaningful sign (drawn with a diverging colour map).
        multiplies_by_inputs: the map is scaled by the input (as in Captum);
            recorded beside every bench row, since it shapes what a map shows.
        is_baseline: a model-agnostic reference map (a score floor), not an
            explanation; ``interp bench`` adds baselines to every table and
            never ranks them best.

    Declarations used to read method specs (``NAME:first,key=value``):
        positional_option: the option a leading item without ``=`` fills
            (``captum:Saliency`` -> ``algorithm="Saliency"``), or None.
        unit_specs: example specs of this plugin that project units although
            the bare name does not (shown in hints), e.g. an adapter whose
            options choose the algorithm.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    supports_units: ClassVar[bool] = False
    signed: ClassVar[bool] = True
    multiplies_by_inputs: ClassVar[bool] = False
    is_baseline: ClassVar[bool] = False
    positional_option: ClassVar[str | None] = None
    unit_specs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any):
        if options:
            raise UsageError(
                f"attribution {self.name!r} does not take option(s) {sorted(options)}",
                "see `interp plugins` and docs/methods.md for the options each method takes",
            )

    @abc.abstractmethod
    def attribute(self, module: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
        """Class-level attribution.

        Args:
            module: the network, in eval mode.
            inputs: float32 [N, C, H, W].
            target: a class index, or LongTensor [N] of one index per input.

        Returns:
            float32 [N, C, H, W], same shape as ``inputs``.
        """

    def attribute_units(
        self, module: nn.Module, inputs: torch.Tensor, layer: str, units: Sequence[int]
    ) -> torch.Tensor:
        """Project each unit's maximal activation back to pixel space.

        Args:
            layer: dotted module name, as in ``Model.layers``.
            units: channel indices of ``layer``'s output.

        Returns:
            float32 [N, len(units), C, H, W].
        """
        raise CapabilityError(
            f"attribution {self.name!r} cannot project units (supports_units is False)",
            "use a method with supports_units (see `interp plugins`)",
        )

    def attribute_unit_pairs(
        self,
        module: nn.Module,
        inputs: torch.Tensor,
        layer: str,
        images: Sequence[int],
        units: Sequence[int],
        starts: tuple[Any, Any, Any] | None = None,
    ) -> torch.Tensor:
        """Project chosen (image, unit) pairs, as :meth:`attribute_units` would one at a time.

        Args:
            images: index into ``inputs`` of each pair.
            units: channel of ``layer`` of each pair (as many as ``images``).
            starts: (rows, cols, values) [P] each, the unit's maximum on the
                image as a unit scan found it (argmax cell, activation), which a
                method may use instead of searching for it; this default ignores it.

        Returns:
            float32 [P, C, H, W]; entry p is ``attribute_units(module,
            inputs[images[p]][None], layer, [units[p]])[0, 0]``. This default
            makes one :meth:`attribute_units` call per unit; methods that batch
            pairs override it.
        """
        import torch

        images = [int(i) for i in images]
        units = [int(u) for u in units]
        if len(images) != len(units):
            raise UsageError(f"{len(images)} image indices for {len(units)} units", "give one image per unit")
        out = inputs.new_zeros((len(images), *inputs.shape[1:]))
        for unit in sorted(set(units)):
            pairs = [p for p, u in enumerate(units) if u == unit]
            rows = torch.as_tensor([images[p] for p in pairs], dtype=torch.long, device=inputs.device)
            out[torch.as_tensor(pairs, device=inputs.device)] = self.attribute_units(module, inputs[rows], layer, [unit])[:, 0]
        return out


@dataclasses.dataclass
class ReportTable:
    """A table a metric asks the run report to show, already formatted.

    Attributes:
        title: heading above the table.
        columns: column headers.
        rows: one list of cell texts per row, ``len(columns)`` each.
        highlight: per row, whether to emphasise it (e.g. significant); may be empty.
        formats: where it appears: ``"markdown"`` (mapping.md) and/or ``"html"`` (report.html).
        note: a line under the title, or "".
    """

    title: str
    columns: list[str]
    rows: list[list[str]]
    highlight: list[bool] = dataclasses.field(default_factory=list)
    formats: tuple[str, ...] = ("markdown", "html")
    note: str = ""


@dataclasses.dataclass
class UnitMetricResult:
    """What :meth:`UnitMetric.evaluate` returns.

    Attributes:
        scores: one row per (layer, unit, concept): at least the keys
            ``layer``, ``unit``, ``concept`` (or ``au``) and ``score`` (or ``distance``).
        mapping: concept -> unit rows (``au``, ``layer``, ``unit``, ``distance``,
            ``q_value``, ...), or None to let ``interp run`` map each concept to
            its best-scoring unit.
        tables: what the run report shows beyond the summary (default: the mapping).
        extra: metric-specific results written to ``results.json`` as they are
            (``unit_mapping``, ``layer_mapping``, ``aus``, ``definitions``, ...).
    """

    scores: list[dict[str, Any]]
    mapping: list[dict[str, Any]] | None = None
    tables: list[ReportTable] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class UnitMetric(abc.ABC):
    """Scores (layer, unit, concept) over a data set from activations and annotations.

    Metadata flags:
        higher_is_better: direction of ``score``.
        needs_aus: needs AU annotations; ``interp run`` refuses a data set
            whose samples list no AU, before any work.
        report_text: the paragraph the run report shows under "Method"
            (default: ``description``).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    needs_aus: ClassVar[bool] = True
    report_text: ClassVar[str] = ""

    def __init__(self, **options: Any):
        if options:
            raise UsageError(
                f"unit metric {self.name!r} does not take option(s) {sorted(options)}",
                "see docs/metrics.md for the metric's options",
            )

    def options(self) -> dict[str, Any]:
        """The effective options (JSON-ready), recorded in results; override when the metric takes any."""
        return {}

    @abc.abstractmethod
    def evaluate(
        self,
        model: Model,
        dataset: Dataset,
        layers: Sequence[str],
        scan: Any = None,
        *,
        method: Attribution | None = None,
        progress: Any = None,
    ) -> UnitMetricResult:
        """Score every unit of ``layers`` of ``model`` over ``dataset``.

        Args:
            scan: the run's :class:`interpret_core.analysis.unit_scan.UnitScan`
                of ``layers`` over ``dataset`` (per-image maxima, argmax, top-k);
                None when the caller has none, and the metric scans (or reads
                activations) itself. (Typed ``Any`` here because the interfaces
                sit below the analysis layer and import nothing from it.)
            method: the run's attribution method, for metrics that project units.
            progress: a rich ``Progress`` or ``callable(done, total)``, or None.
        """


@dataclasses.dataclass
class MetricResult:
    """What an :class:`AttributionMetric` measures: one score per image, plus named per-image extras.

    Tensors and sequences are converted to float64 numpy arrays.

    Attributes:
        scores: float64 [N], NaN where undefined.
        extras: {name: float64 [N]}; the names are the metric's ``extra_fields``.
        warnings: messages for the user about these scores (e.g. a method that
            misses an axiom it claims); ``interp bench`` prints them.
    """

    scores: np.ndarray
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.scores = _as_float_vector(self.scores)
        self.extras = {str(name): _as_float_vector(values) for name, values in self.extras.items()}
        for name, values in self.extras.items():
            if values.shape != self.scores.shape:
                raise ValueError(f"extra {name!r} has {values.shape[0]} values for {self.scores.shape[0]} scores")

    @property
    def undefined(self) -> np.ndarray:
        """bool [N]: the images without a score (NaN or inf)."""
        return ~np.isfinite(self.scores)

    @classmethod
    def concatenate(cls, parts: Sequence[MetricResult], extra_fields: Sequence[str] = ()) -> MetricResult:
        """Join batch results in order (an empty list gives empty arrays for ``extra_fields``)."""
        if not parts:
            return cls(np.zeros(0), {name: np.zeros(0) for name in extra_fields})
        return cls(
            np.concatenate([part.scores for part in parts]),
            {name: np.concatenate([part.extras[name] for part in parts]) for name in parts[0].extras},
            [message for part in parts for message in part.warnings],
        )


def _as_float_vector(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


class AttributionMetric(abc.ABC):
    """Scores attribution maps; batching happens once, in :meth:`evaluate` (Quantus' template method).

    Subclasses implement :meth:`evaluate_batch`; callers use :meth:`evaluate`
    (scores and extras) or call the metric (scores only).

    Metadata flags:
        higher_is_better: direction of the score.
        needs_masks: uses AU masks / regions (``masks`` must be given).
        needs_model: runs the model (``model`` must be given).
        needs_method: re-runs the attribution method (``method`` must be given).

    Declarations for tables (``interp bench``):
        family: the group the metric belongs to (``"localisation"``, ...); one table per family.
        family_rank: where the family's table comes, lowest first (metrics of
            one family share it).
        short_name: a short column header (default: ``name``).
        extra_fields: names of the extra per-image values :meth:`evaluate_batch` returns.
        column_extras: {extra field: label} of extras shown as their own table column.
        reference_extras: those of ``column_extras`` that are a reference level for
            the score (a chance rate), not a score: shown, never ranked or marked best.
        version: bump when the metric's numbers change for the same options
            (part of the bench's cell key, so old cells are recomputed).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    needs_masks: ClassVar[bool] = False
    needs_model: ClassVar[bool] = False
    needs_method: ClassVar[bool] = False
    family: ClassVar[str] = ""
    family_rank: ClassVar[int] = 100
    short_name: ClassVar[str] = ""
    extra_fields: ClassVar[tuple[str, ...]] = ()
    column_extras: ClassVar[dict[str, str]] = {}
    reference_extras: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[int] = 0
    batch_size: int = 32

    def __init__(self, **options: Any):
        if options:
            raise UsageError(
                f"attribution metric {self.name!r} does not take option(s) {sorted(options)}",
                "see docs/benchmark.md for the metric's options",
            )

    def options(self) -> dict[str, Any]:
        """The effective options (JSON-ready); bench keys its cached cells by them. Override when the metric takes any."""
        return {}

    def evaluate(
        self,
        *,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        attributions: torch.Tensor,
        masks: torch.Tensor | None = None,
        model: nn.Module | None = None,
        method: Attribution | None = None,
    ) -> MetricResult:
        """Score every input in batches of ``batch_size``.

        Args:
            inputs: float32 [N, C, H, W].
            targets: LongTensor [N] class explained per input.
            attributions: float32 [N, C, H, W] (or [N, 1, H, W]).
            masks: bool [N, H, W], union of the regions of the AUs present.
            model: the network, eval mode.
            method: the attribution method that produced ``attributions``.

        Returns:
            scores float64 [N] and the ``extra_fields``, float64 [N] each.
        """
        for flag, value, what in (
            (self.needs_masks, masks, "masks"),
            (self.needs_model, model, "model"),
            (self.needs_method, method, "method"),
        ):
            if flag and value is None:
                raise CapabilityError(f"attribution metric {self.name!r} needs {what}", f"pass {what}=...")
        parts = []
        for start in range(0, inputs.shape[0], self.batch_size):
            part = slice(start, start + self.batch_size)
            result = self.evaluate_batch(
                inputs=inputs[part],
                targets=targets[part],
                attributions=attributions[part],
                masks=None if masks is None else masks[part],
                model=model,
                method=method,
            )
            if not isinstance(result, MetricResult):
                raise PluginError(
                    f"attribution metric {self.name!r}: evaluate_batch returned {type(result).__name__}, not MetricResult",
                    "return MetricResult(scores, extras) from evaluate_batch",
                )
            if set(result.extras) != set(self.extra_fields):
                raise PluginError(
                    f"attribution metric {self.name!r} returned extras {sorted(result.extras)} "
                    f"but declares extra_fields {sorted(self.extra_fields)}",
                    "return exactly the declared extra_fields from evaluate_batch",
                )
            parts.append(result)
        return MetricResult.concatenate(parts, self.extra_fields)

    def __call__(self, **kwargs: Any) -> np.ndarray:
        """The scores alone, float64 [N] (``evaluate(**kwargs).scores``)."""
        return self.evaluate(**kwargs).scores

    @abc.abstractmethod
    def evaluate_batch(
        self,
        *,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        attributions: torch.Tensor,
        masks: torch.Tensor | None,
        model: nn.Module | None,
        method: Attribution | None,
    ) -> MetricResult:
        """Score one batch of n inputs: n scores and the ``extra_fields`` (n values each)."""
