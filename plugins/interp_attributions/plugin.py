"""Hook implementations of this built-in plugin. Keep this module light: no torch at import."""

from __future__ import annotations

from interpret_core import hookimpl


@hookimpl
def interp_register_attributions(register):
    from .backprop import Deconvolution, GuidedBackprop
    from .cam import EigenCam, GradCamPlusPlus, HiResCam, LayerCam, ScoreCam, XGradCam
    from .lrp import LRPAlphaBeta, LRPEpsilon, LRPEpsilonPlusFlat
    from .captum_methods import (
        CaptumAdapter,
        DeepLift,
        GradCam,
        GuidedGradCam,
        InputXGradient,
        IntegratedGradients,
        Occlusion,
        Saliency,
    )

    for cls in (
        Deconvolution,
        GuidedBackprop,
        Saliency,
        IntegratedGradients,
        InputXGradient,
        DeepLift,
        Occlusion,
        GradCam,
        GuidedGradCam,
        GradCamPlusPlus,
        ScoreCam,
        LayerCam,
        HiResCam,
        EigenCam,
        XGradCam,
        LRPEpsilon,
        LRPAlphaBeta,
        LRPEpsilonPlusFlat,
        CaptumAdapter,
    ):
        register(cls)


@hookimpl
def interp_register_defaults(register):
    """``deconv`` (Zeiler & Fergus) is the default method, as in the paper whose figures `interp run` draws."""
    register("method", "deconv")
