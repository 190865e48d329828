"""Attribution metrics of ``interp bench`` and the baseline maps that give every score a floor.

Localisation (against AU masks / regions):
    ``au-pointing-game``, ``au-relevance-mass``, ``au-relevance-rank``.
Faithfulness (Petsiuk et al. 2018):
    ``deletion``, ``insertion``.
Sanity (Adebayo et al. 2018; Nie et al. 2018):
    ``randomization``, ``class-sensitivity``.
Faithfulness, more: ``faithfulness-correlation`` (Bhatt et al. 2020),
    ``monotonicity-correlation`` (Nguyen & Martinez 2020), ``road`` (Rong et al. 2022).
Robustness: ``max-sensitivity`` (Yeh et al. 2019), ``local-lipschitz``
    (Alvarez-Melis & Jaakkola 2018).
Axioms (Sundararajan et al. 2017): ``completeness``.
Complexity: ``sparseness`` (Gini), ``complexity`` (entropy).
More localisation: ``au-top-k-intersection``, ``au-auc``.
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
    ("localisation", "TopKIntersection"),
    ("localisation", "AULocalisationAUC"),
    ("faithfulness", "Deletion"),
    ("faithfulness", "Insertion"),
    ("faithfulness", "FaithfulnessCorrelation"),
    ("faithfulness", "MonotonicityCorrelation"),
    ("faithfulness", "ROAD"),
    ("sanity", "ModelRandomization"),
    ("sanity", "ClassSensitivity"),
    ("robustness", "MaxSensitivity"),
    ("robustness", "LocalLipschitz"),
    ("axioms", "Completeness"),
    ("complexity", "Sparseness"),
    ("complexity", "Complexity"),
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
