"""Baseline "attribution methods" that know nothing about the model: the floor of every score.

``centre-gaussian``
    A Gaussian bump at the image centre (faces are centred by alignment, so
    this is the "the face is in the middle" prior). Deterministic.
``random-map``
    Uniform noise in [0, 1), optionally smoothed. Deterministic for a given
    image and seed (the noise is seeded from the image's bytes), so it is
    the same map whatever the model or target: a sanity check must flag it.

Both ignore ``module`` and ``target``; they are unsigned.
"""

from __future__ import annotations

from typing import Any

from interpret_core import Attribution, UsageError


class CentreGaussian(Attribution):
    """A centred Gaussian map; ``sigma`` is a fraction of the image side (default 0.25 = 16 px at 64 px)."""

    name = "centre-gaussian"
    is_baseline = True
    description = "Baseline: a Gaussian bump at the image centre (ignores model and target)."
    signed = False

    def __init__(self, sigma: float = 0.25, **unknown: Any):
        super().__init__(**unknown)
        try:
            sigma = float(sigma)
        except (TypeError, ValueError):
            sigma = -1.0
        if not sigma > 0:
            raise UsageError(f"attribution {self.name!r}: sigma must be a positive fraction of the image side, got {sigma!r}")
        self.sigma = sigma

    def attribute(self, module, inputs, target):
        import torch

        n, channels, height, width = inputs.shape
        ys = torch.arange(height, dtype=torch.float32) - (height - 1) / 2
        xs = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
        sigma_y, sigma_x = self.sigma * height, self.sigma * width
        bump = torch.exp(-0.5 * ((ys[:, None] / sigma_y) ** 2 + (xs[None, :] / sigma_x) ** 2))
        return bump.to(inputs.device).expand(n, channels, height, width).clone()


class RandomMap(Attribution):
    """Uniform noise per image, seeded from the image bytes and ``seed``; ``sigma`` px smoothing (0 = none)."""

    name = "random-map"
    is_baseline = True
    description = "Baseline: a random map, fixed per image (ignores model and target)."
    signed = False

    def __init__(self, seed: int = 0, sigma: float = 0.0, **unknown: Any):
        super().__init__(**unknown)
        try:
            seed, sigma = int(seed), float(sigma)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"attribution {self.name!r}: seed must be an integer and sigma a number ({exc})") from exc
        if sigma < 0:
            raise UsageError(f"attribution {self.name!r}: sigma must be >= 0, got {sigma}")
        self.seed, self.sigma = seed, sigma

    def image_seed(self, image) -> int:
        """A 63-bit seed from the image's float32 bytes and ``seed``."""
        import numpy as np

        from interpret_core.util.fingerprint import content_seed

        return content_seed(np.ascontiguousarray(image.detach().cpu().numpy().astype(np.float32)).tobytes(), self.seed)

    def attribute(self, module, inputs, target):
        import torch

        maps = torch.empty(inputs.shape, dtype=torch.float32)
        for i in range(inputs.shape[0]):
            generator = torch.Generator().manual_seed(self.image_seed(inputs[i]))
            maps[i] = torch.rand(inputs.shape[1:], generator=generator)
        if self.sigma > 0:
            from .kernels import gaussian_blur

            maps = gaussian_blur(maps, self.sigma)
        return maps.to(inputs.device)
