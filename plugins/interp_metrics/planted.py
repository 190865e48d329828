"""A planted ground truth for unit metrics: units built to detect given AUs.

:class:`PlantedDataset` draws small grey images in which each present AU
leaves one oriented bar inside its own rectangular region; :class:`PlantedModel`
is a conv net whose unit k of ``act1`` is a fixed matched filter for AU k's
bar. A correct unit metric must map AU k to unit k, with high spatial
agreement; AU :data:`INVISIBLE_AU` leaves no trace in the image (no unit can
detect it) and AU :data:`SHADOW_AU` co-occurs with AU 1 without being drawn
(a co-occurrence control must expose it).

:class:`UnitMaxGradient` is a minimal unit projection (the input gradient of
a unit's maximal activation) so the pipeline can be checked without the
attribution plugins. Used by the tests and benchmarks of ``au-distance``;
none of these is registered as a plugin (tests register them temporarily).
No torch at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from interpret_core.api.interfaces import Attribution, Dataset, Model, Sample

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["PlantedDataset", "PlantedModel", "UnitMaxGradient", "PLANTED_AUS", "INVISIBLE_AU", "SHADOW_AU", "SIZE"]

SIZE = 32
#: visible AU -> (bar pattern kind, region (y0, y1, x0, x1) half-open)
PLANTED_AUS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    1: ("horizontal", (2, 12, 2, 14)),
    2: ("vertical", (2, 12, 18, 30)),
    4: ("diagonal", (18, 30, 2, 14)),
    12: ("antidiagonal", (18, 30, 18, 30)),
}
INVISIBLE_AU = 5
SHADOW_AU = 6
_BAR = 5


def bar(kind: str) -> np.ndarray:
    """A 5x5 float pattern: a one-pixel line of the given orientation."""
    pattern = np.zeros((_BAR, _BAR), dtype=np.float32)
    centre = _BAR // 2
    if kind == "horizontal":
        pattern[centre, :] = 1
    elif kind == "vertical":
        pattern[:, centre] = 1
    elif kind == "diagonal":
        np.fill_diagonal(pattern, 1)
    elif kind == "antidiagonal":
        np.fill_diagonal(np.fliplr(pattern), 1)
    else:  # pragma: no cover - internal
        raise ValueError(kind)
    return pattern


class PlantedDataset(Dataset):
    """``count`` images with random AUs; AU k draws its bar at a random place in its region."""

    name = "planted-aus"
    description = "synthetic images whose AUs are oriented bars in fixed regions (a unit-metric ground truth)"
    has_au_masks = True

    def __init__(self, count: int = 240, seed: int = 0, prevalence: float = 0.4, repeats: int = 1, **options):
        """``repeats > 1``: each sequence is ``repeats`` near-copies (same AUs and bars, fresh pixel noise),
        one sequence per subject, as the apex frames of a CK+ sequence are."""
        if options:
            from interpret_core.api.errors import UsageError

            raise UsageError(f"planted-aus does not take {sorted(options)}", "options: count, seed, prevalence, repeats")
        count, seed, repeats = int(count), int(seed), int(repeats)
        rng = np.random.default_rng(seed)
        self._samples: list[Sample] = []
        if repeats > 1:
            self._draw_sequences(count, rng, prevalence, repeats)
            return
        for index in range(count):
            aus = self._draw_aus(rng, prevalence)
            image = (0.1 + 0.02 * rng.standard_normal((SIZE, SIZE))).astype(np.float32)
            placed = self._draw_places(rng, aus)
            emotion = 1 if 1 in aus else int(rng.integers(0, 3))
            self._samples.append(self._sample(image, aus, placed, emotion, f"P{index // 4:03d}", f"P{index // 4:03d}_001", index % 4 + 1))

    @staticmethod
    def _draw_aus(rng, prevalence: float) -> dict[int, int]:
        """The AUs of one sample (or sequence)."""
        aus: dict[int, int] = {}
        for au in PLANTED_AUS:
            if rng.random() < prevalence:
                aus[au] = int(rng.integers(0, 6))  # 0 = present, intensity not coded
        if rng.random() < 0.3:
            aus[INVISIBLE_AU] = 2
        if rng.random() < (0.9 if 1 in aus else 0.05):
            aus[SHADOW_AU] = 3
        return aus

    @staticmethod
    def _draw_places(rng, aus: dict[int, int]) -> dict[int, tuple[int, int]]:
        """Top-left (y, x) of each drawn AU's bar inside its region."""
        placed: dict[int, tuple[int, int]] = {}
        for au in sorted(aus):
            if au in PLANTED_AUS:
                _, (y0, y1, x0, x1) = PLANTED_AUS[au]
                placed[au] = (int(rng.integers(y0, y1 - _BAR + 1)), int(rng.integers(x0, x1 - _BAR + 1)))
        return placed

    @staticmethod
    def _sample(image, aus, placed, emotion, subject, sequence, frame) -> Sample:
        masks: dict[int, np.ndarray] = {}
        for au in sorted(aus):
            region = np.zeros((SIZE, SIZE), dtype=bool)
            if au in PLANTED_AUS:
                kind, (y0, y1, x0, x1) = PLANTED_AUS[au]
                region[y0:y1, x0:x1] = True
                y, x = placed[au]
                image[y : y + _BAR, x : x + _BAR] += 0.8 * bar(kind)
            else:  # invisible AUs still get a region, the image centre
                region[12:20, 12:20] = True
            masks[au] = region
        return Sample(image=np.clip(image, 0, 1), emotion=emotion, aus=aus, landmarks=None, subject=subject,
                      sequence=sequence, frame=frame, au_masks=masks)

    def _draw_sequences(self, count: int, rng, prevalence: float, repeats: int) -> None:
        for sequence in range(-(-count // repeats)):
            aus = self._draw_aus(rng, prevalence)
            placed = self._draw_places(rng, aus)
            emotion = 1 if 1 in aus else int(rng.integers(0, 3))
            # A sequence-level background: what a null unit responds to, the same in every frame.
            level = 0.05 + 0.3 * rng.random()
            for frame in range(min(repeats, count - sequence * repeats)):
                image = (level + 0.02 * rng.standard_normal((SIZE, SIZE))).astype(np.float32)
                self._samples.append(self._sample(image, dict(aus), placed, emotion, f"Q{sequence:03d}",
                                                  f"Q{sequence:03d}_001", frame + 1))

    @property
    def class_names(self) -> list[str]:
        return ["neutral", "happy", "surprise"]

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, index: int) -> Sample:
        return self._samples[index]


class PlantedModel(Model):
    """``act1``: ReLU(conv 5x5) with unit k the matched filter of the k-th planted AU
    (then two random units); ``act2``: ReLU(1x1 conv) of max-pooled ``act1``
    that swaps units 0 and 1 and mixes in a little of the others."""

    name = "planted-aus-net"
    description = "matched-filter conv net for the planted-aus data set"

    def __init__(self, class_names=("neutral", "happy", "surprise"), input_size=(1, SIZE, SIZE), **options):
        super().__init__(class_names=class_names, input_size=input_size, **options)

    def build(self) -> nn.Module:
        import torch
        from torch import nn

        generator = torch.Generator().manual_seed(0)
        units = len(PLANTED_AUS) + 2
        conv1 = nn.Conv2d(1, units, _BAR, padding=_BAR // 2)
        with torch.no_grad():
            for k, (kind, _) in enumerate(PLANTED_AUS.values()):
                pattern = torch.from_numpy(bar(kind))
                conv1.weight[k, 0] = pattern - pattern.mean()  # flat background -> 0
            conv1.weight[len(PLANTED_AUS) :] = 0.1 * torch.randn(2, 1, _BAR, _BAR, generator=generator)
            conv1.bias.zero_()
        conv2 = nn.Conv2d(units, units, 1)
        with torch.no_grad():
            mix = 0.02 * torch.rand(units, units, generator=generator)
            order = list(range(units))
            order[0], order[1] = 1, 0
            for out_unit, in_unit in enumerate(order):
                mix[out_unit, in_unit] = 1.0
            conv2.weight.copy_(mix[:, :, None, None])
            conv2.bias.zero_()
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(units, len(self.class_names)))
        with torch.no_grad():  # deterministic weights: the same model every time
            head[2].weight.copy_(0.1 * torch.randn(head[2].weight.shape, generator=generator))
            head[2].bias.zero_()
        return _named_sequential(
            conv1=conv1, act1=nn.ReLU(), pool=nn.MaxPool2d(2), conv2=conv2, act2=nn.ReLU(), head=head
        )

    @property
    def layers(self) -> list[str]:
        return ["act1", "act2"]


def _named_sequential(**modules) -> nn.Module:
    from collections import OrderedDict

    from torch import nn

    return nn.Sequential(OrderedDict(modules))


class UnitMaxGradient(Attribution):
    """Unit projection by the input gradient of each unit's maximal activation."""

    name = "unit-max-gradient"
    description = "input gradient of a unit's maximal activation (a minimal unit projection)"
    supports_units = True

    def attribute(self, module, inputs, target):
        import torch

        x = inputs.detach().clone().requires_grad_(True)
        logits = module(x)
        index = torch.as_tensor(target).expand(x.shape[0]) if torch.as_tensor(target).ndim == 0 else torch.as_tensor(target)
        logits.gather(1, index.view(-1, 1)).sum().backward()
        return x.grad.detach()

    def attribute_units(self, module, inputs, layer, units):
        import torch

        from interpret_core.nn.hooks import capture_outputs

        maps = []
        for unit in units:
            x = inputs.detach().clone().requires_grad_(True)
            with capture_outputs(module, [layer], detach=False) as captured:
                module(x)
            captured[layer][:, unit].flatten(1).max(dim=1).values.sum().backward()
            maps.append(x.grad.detach())
        return torch.stack(maps, dim=1)
