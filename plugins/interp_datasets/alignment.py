"""Face alignment from 68 landmarks: one similarity transform per frame.

Every frame is mapped onto a square crop so that the two eye centres land at
fixed positions: the eyes are level and the inter-ocular distance is fixed.
The same transform moves the image (bilinear), the landmarks and any masks
(area-weighted, thresholded at 0.5), so the three always agree.

The template (fractions of the crop side, measured from the crop's top-left
corner, pixel edges):

* eye centres (mean of landmarks 36-41 and 42-47) at x = 0.30 and 0.70, y = 0.32,
  so the inter-ocular distance D is 0.40 of the side (the side is 2.5 D);
* that leaves 0.8 D above the eye line (brows and the AU1/AU2 regions above
  them) and 1.7 D below it (mouth, chin, and the AU17 region under the lips).

Coordinates: landmark (x, y) are pixel coordinates with the origin at the
centre of the top-left pixel (the convention of :mod:`interpret_core.api.interfaces`);
internally we work in pixel-edge coordinates (origin at the top-left corner,
``edge = centre + 0.5``), which is what PIL's affine transform uses.

Downscaling a 640x490 CK+ frame to a 64-pixel crop shrinks the face about
four-fold; plain bilinear sampling would alias, so the frame is first reduced
by the largest integer factor that keeps the remaining scale >= 1 (a box
filter, ``Image.reduce``) and only the remaining factor (< 2) is bilinear.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image

__all__ = [
    "LEFT_EYE",
    "RIGHT_EYE",
    "EYE_LEFT_POSITION",
    "EYE_RIGHT_POSITION",
    "EYE_DISTANCE",
    "Alignment",
    "eye_centres",
    "align_from_landmarks",
]

#: 68-point indices (0-based, iBUG/Multi-PIE scheme as used by CK+) of the eye
#: on the image's left (the subject's right eye) and on the image's right.
LEFT_EYE = tuple(range(36, 42))
RIGHT_EYE = tuple(range(42, 48))

#: Template eye centres as fractions of the crop side (x, y), pixel-edge coordinates.
EYE_LEFT_POSITION = (0.30, 0.32)
EYE_RIGHT_POSITION = (0.70, 0.32)
#: Inter-ocular distance (between eye centres) as a fraction of the crop side.
EYE_DISTANCE = EYE_RIGHT_POSITION[0] - EYE_LEFT_POSITION[0]


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (x, y) of the image-left and image-right eyes from [68, 2] landmarks."""
    points = np.asarray(landmarks, dtype=np.float64)
    return points[list(LEFT_EYE)].mean(axis=0), points[list(RIGHT_EYE)].mean(axis=0)


@dataclasses.dataclass(frozen=True)
class Alignment:
    """A similarity transform from a source frame onto a ``size`` x ``size`` crop.

    Attributes:
        matrix: float64 [2, 3], crop = matrix @ [x, y, 1] in pixel-edge coordinates.
        size: crop side in pixels.
        scale: crop pixels per source pixel.
        angle: rotation removed from the frame, radians (positive = the
            image-right eye was lower than the image-left one).
    """

    matrix: np.ndarray
    size: int
    scale: float
    angle: float

    # -- points ---------------------------------------------------------------
    def points(self, xy: np.ndarray) -> np.ndarray:
        """Map source points [K, 2] (pixel-centre coordinates) into the crop's (float32)."""
        points = np.asarray(xy, dtype=np.float64) + 0.5
        mapped = points @ self.matrix[:, :2].T + self.matrix[:, 2]
        return (mapped - 0.5).astype(np.float32)

    # -- rasters --------------------------------------------------------------
    def _inverse_for(self, reduction: int) -> tuple[float, ...]:
        """PIL's AFFINE data: crop (edge) -> source reduced by ``reduction`` (edge)."""
        linear = self.matrix[:, :2]
        inverse = np.linalg.inv(linear)
        offset = -inverse @ self.matrix[:, 2]
        inverse = inverse / reduction
        offset = offset / reduction
        return (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])

    def _reduction(self) -> int:
        return max(1, int(math.floor(1.0 / self.scale))) if self.scale > 0 else 1

    def _warp(self, picture: Image.Image, fill: int) -> Image.Image:
        # Image.reduce takes a C int: absurd landmarks (a face 1e12 pixels wide)
        # would overflow it, and reducing beyond the frame's size gains nothing.
        reduction = min(self._reduction(), *picture.size)
        if reduction > 1:
            picture = picture.reduce(reduction)
        return picture.transform(
            (self.size, self.size),
            Image.Transform.AFFINE,
            self._inverse_for(reduction),
            resample=Image.Resampling.BILINEAR,
            fillcolor=fill,
        )

    def image(self, picture: Image.Image | np.ndarray, fill: int | None = None) -> np.ndarray:
        """Warp a grey frame (PIL 'L' image or uint8 [H, W]) into a uint8 [size, size] crop.

        Crop pixels that fall outside the frame get ``fill`` (default: the
        frame's mean grey, so the border does not look like an edge).
        """
        if isinstance(picture, np.ndarray):
            picture = Image.fromarray(np.ascontiguousarray(picture, dtype=np.uint8))
        if picture.mode != "L":
            picture = picture.convert("L")
        if fill is None:
            fill = int(round(float(np.asarray(picture.reduce(8) if min(picture.size) >= 16 else picture).mean())))
        return np.asarray(self._warp(picture, fill), dtype=np.uint8)

    def mask(self, mask: np.ndarray) -> np.ndarray:
        """Warp a boolean [H, W] mask into the crop: area-weighted, kept where >= 0.5."""
        grey = Image.fromarray(np.asarray(mask, dtype=bool).astype(np.uint8) * np.uint8(255))
        return np.asarray(self._warp(grey, 0)) >= 128


def align_from_landmarks(landmarks: np.ndarray, size: int) -> Alignment:
    """The similarity transform that puts the eye centres at the template positions.

    Args:
        landmarks: [68, 2] (x, y) in the source frame, pixel-centre coordinates.
        size: crop side in pixels.

    Raises:
        ValueError: if the two eye centres coincide (degenerate landmarks).
    """
    left, right = eye_centres(landmarks)
    left = left + 0.5
    right = right + 0.5
    delta = right - left
    distance = float(math.hypot(delta[0], delta[1]))
    if not math.isfinite(distance) or distance < 1e-6:
        raise ValueError("the eye centres coincide; the landmarks cannot define a face box")
    angle = math.atan2(delta[1], delta[0])
    scale = EYE_DISTANCE * size / distance
    cos, sin = math.cos(-angle) * scale, math.sin(-angle) * scale
    linear = np.array([[cos, -sin], [sin, cos]])
    source_mid = (left + right) / 2.0
    target_mid = np.array(
        [
            (EYE_LEFT_POSITION[0] + EYE_RIGHT_POSITION[0]) / 2.0 * size,
            (EYE_LEFT_POSITION[1] + EYE_RIGHT_POSITION[1]) / 2.0 * size,
        ]
    )
    offset = target_mid - linear @ source_mid
    matrix = np.concatenate([linear, offset[:, None]], axis=1)
    return Alignment(matrix=matrix, size=int(size), scale=float(scale), angle=float(angle))
