"""The abstract interfaces every plugin implements.

Four ideas, each a small typed base class with capability flags (after
Captum's ``attr/_utils/attribution.py``):

* :class:`Dataset` yields :class:`Sample` objects: grey face crops with their
  emotion, action units (AUs), landmarks and AU masks.
* :class:`Model` wraps a torch ``nn.Module`` with the metadata unit analysis
  needs (analysable layers, input size, class names, model card).
* :class:`Attribution` maps inputs to pixel-space attributions, at class
  level and optionally per unit of a layer.
* :class:`UnitMetric` scores (layer, unit, concept) triples over a data set;
  :class:`AttributionMetric` scores attribution maps against annotations.

This module never imports torch at import time, so ``interp --help`` and
``interp plugins`` stay fast. Plugins follow the same rule.

Conventions: images are float32 in [0, 1]; pixel coordinates are (x, y) with
the origin at the top-left pixel's centre; tensors are NCHW.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from interpret_core.api.errors import CapabilityError, UsageError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from torch import nn

__all__ = [
    "Sample",
    "Fold",
    "Dataset",
    "Model",
    "Attribution",
    "UnitMetric",
    "UnitMetricResult",
    "AttributionMetric",
    "EMOTIONS",
]

#: CK+ emotion codes 0-7, in the order of the release's ``*_emotion.txt`` files.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happy",
    "sadness",
    "surprise",
)


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


@dataclasses.dataclass(frozen=True)
class Fold:
    """One subject-independent split; indices are sample indices of a Dataset."""

    index: int
    train: np.ndarray
    test: np.ndarray
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]


class Dataset(abc.ABC):
    """A sequence of :class:`Sample`; subclasses register under ``name``.

    Capability flags:
        has_au_masks: samples carry ground-truth ``au_masks``.
        has_landmarks: samples carry landmarks and ``au_regions``.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    has_au_masks: ClassVar[bool] = False
    has_landmarks: ClassVar[bool] = True

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
    def emotions(self) -> list[int | None]:
        """Emotion index of each sample, in sample order. Override to avoid decoding."""
        return [sample.emotion for sample in self]

    def kfold(self, k: int = 10, seed: int = 0) -> list[Fold]:
        """Subject-independent k-fold splits, deterministic for ``seed``."""
        from interpret_core.analysis.splits import subject_kfold

        return subject_kfold(self.subjects, k=k, seed=seed)


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

    def __init__(
        self,
        class_names: Sequence[str] = EMOTIONS,
        input_size: tuple[int, int, int] = (1, 64, 64),
        **options: Any,
    ):
        if options:
            raise UsageError(
                f"model {self.name!r} does not take option(s) {sorted(options)}",
                "check the model's options with `interp models`",
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

    def to_input(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Grey images [N, H, W] in [0, 1] -> float32 input [N, C, H, W].

        Images of another size are resized bilinearly to ``input_size``.
        """
        import torch
        import torch.nn.functional as F

        batch = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
        batch = batch.to(torch.float32)
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
        supports_units: implements :meth:`attribute_units`.
        signed: maps carry meaningful sign (drawn with a diverging colour map).
        multiplies_by_inputs: the map is scaled by the input (as in Captum).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    supports_units: ClassVar[bool] = False
    signed: ClassVar[bool] = True
    multiplies_by_inputs: ClassVar[bool] = False

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
            "use a method with unit projections, such as 'deconv' or 'guided-backprop'",
        )


@dataclasses.dataclass
class UnitMetricResult:
    """What a :class:`UnitMetric` returns.

    Attributes:
        scores: one row per (layer, unit, concept): at least the keys
            ``layer``, ``unit``, ``concept`` and ``score``.
        extra: metric-specific results (mappings, top-k images, ...).
    """

    scores: list[dict[str, Any]]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class UnitMetric(abc.ABC):
    """Scores (layer, unit, concept) over a data set from activations and annotations.

    Metadata flags:
        higher_is_better: direction of ``score``.
        needs_aus: needs AU annotations.
        needs_masks: needs AU masks or landmark regions.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    needs_aus: ClassVar[bool] = True
    needs_masks: ClassVar[bool] = False

    def __init__(self, **options: Any):
        if options:
            raise UsageError(
                f"unit metric {self.name!r} does not take option(s) {sorted(options)}",
                "see docs/metrics.md for the metric's options",
            )

    @abc.abstractmethod
    def evaluate(self, model: Model, dataset: Dataset, layers: Sequence[str], **kwargs: Any) -> UnitMetricResult:
        """Score every unit of ``layers`` of ``model`` over ``dataset``."""


class AttributionMetric(abc.ABC):
    """Scores attribution maps; batching happens once, in :meth:`__call__`.

    Metadata flags:
        higher_is_better: direction of the score.
        needs_masks: uses AU masks / regions (``masks`` must be given).
        needs_model: runs the model (``model`` must be given).
        needs_method: re-runs the attribution method (``method`` must be given).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    needs_masks: ClassVar[bool] = False
    needs_model: ClassVar[bool] = False
    needs_method: ClassVar[bool] = False
    batch_size: int = 32

    def __init__(self, **options: Any):
        if options:
            raise UsageError(
                f"attribution metric {self.name!r} does not take option(s) {sorted(options)}",
                "see docs/benchmark.md for the metric's options",
            )

    def __call__(
        self,
        *,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        attributions: torch.Tensor,
        masks: torch.Tensor | None = None,
        model: nn.Module | None = None,
        method: Attribution | None = None,
    ) -> np.ndarray:
        """Score every input; returns float64 [N].

        Args:
            inputs: float32 [N, C, H, W].
            targets: LongTensor [N] class explained per input.
            attributions: float32 [N, C, H, W] (or [N, 1, H, W]).
            masks: bool [N, H, W], union of the regions of the AUs present.
            model: the network, eval mode.
            method: the attribution method that produced ``attributions``.
        """
        for flag, value, what in (
            (self.needs_masks, masks, "masks"),
            (self.needs_model, model, "model"),
            (self.needs_method, method, "method"),
        ):
            if flag and value is None:
                raise CapabilityError(f"attribution metric {self.name!r} needs {what}", f"pass {what}=...")
        scores = []
        for start in range(0, inputs.shape[0], self.batch_size):
            part = slice(start, start + self.batch_size)
            batch_scores = self.evaluate_batch(
                inputs=inputs[part],
                targets=targets[part],
                attributions=attributions[part],
                masks=None if masks is None else masks[part],
                model=model,
                method=method,
            )
            scores.append(np.asarray(batch_scores.detach().cpu() if hasattr(batch_scores, "detach") else batch_scores, dtype=np.float64))
        return np.concatenate(scores) if scores else np.zeros(0)

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
    ) -> np.ndarray | torch.Tensor:
        """Score one batch; returns [n] scores."""
