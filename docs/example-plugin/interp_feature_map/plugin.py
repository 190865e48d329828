"""Hook implementations. Import nothing heavy here: interp loads this module at start-up."""

from interpret_core import hookimpl


@hookimpl
def interp_register_attributions(register):
    from .methods import FeatureMapUpsampling

    register(FeatureMapUpsampling)


@hookimpl
def interp_register_attribution_metrics(register):
    from .methods import TopDecileShare

    register(TopDecileShare)
