"""Attribution metrics of ``interp bench`` and the baseline maps that give every score a floor.

Localisation (against AU masks / regions):
    ``au-pointing-game``, ``au-relevance-mass``, ``au-relevance-rank``.
Faithfulness (Petsiuk et al. 2018):
    ``deletion``, ``insertion``.
Sanity (Adebayo et al. 2018; Nie et al. 2018):
    ``randomization``, ``class-sensitivity``.
Baseline attribution "methods":
    ``centre-gaussian``, ``random-map``.

Nothing here imports torch at import time; the numeric kernels live in
:mod:`.kernels`, imported inside the methods that need them.
"""

from __future__ import annotations

from .base import BenchMetric  # noqa: F401

#: Metric classes, by module, resolved lazily by the plugin's hookimpl.
METRIC_CLASSES = (
    ("localisation", "AUPointingGame"),
    ("localisation", "AURelevanceMass"),
    ("localisation", "AURelevanceRank"),
    ("faithfulness", "Deletion"),
    ("faithfulness", "Insertion"),
    ("sanity", "ModelRandomization"),
    ("sanity", "ClassSensitivity"),
)

#: Baseline attribution classes.
BASELINE_CLASSES = (
    ("baselines", "CentreGaussian"),
    ("baselines", "RandomMap"),
)


def load_classes(spec: tuple[tuple[str, str], ...]) -> list[type]:
    """Import ``(module, class)`` pairs of this package."""
    import importlib

    return [getattr(importlib.import_module(f"{__name__}.{module}"), cls) for module, cls in spec]
