"""Hook implementations of this built-in plugin. Keep this module light: no torch at import."""

from __future__ import annotations

from interpret_core import hookimpl


@hookimpl
def interp_register_attribution_metrics(register):
    """The metrics of ``interp bench`` (localisation, faithfulness, sanity)."""
    from .attribution_metrics import METRIC_CLASSES, load_classes

    for cls in load_classes(METRIC_CLASSES):
        register(cls)


@hookimpl
def interp_register_attributions(register):
    """Baseline maps for ``interp bench``: ``centre-gaussian`` and ``random-map``."""
    from .attribution_metrics import BASELINE_CLASSES, load_classes

    for cls in load_classes(BASELINE_CLASSES):
        register(cls)


@hookimpl
def interp_register_unit_metrics(register):
    """``au-distance``: which feature maps detect which action units."""
    from .au_distance import AUDistance

    register(AUDistance)


@hookimpl
def interp_register_defaults(register):
    """``au-distance`` is the unit metric ``interp run`` uses by default."""
    register("metric", "au-distance")
