"""Hook implementations of this built-in plugin. Keep this module light: no torch at import."""

from __future__ import annotations

from interpret_core import hookimpl


@hookimpl
def interp_register_models(register):
    from .models import FerCNNModel, FerMiniXceptionModel, FerResNet18Model, FerResNetModel
    from .onnx_model import OnnxModel

    register(FerCNNModel)
    register(FerResNetModel)
    register(FerResNet18Model)
    register(FerMiniXceptionModel)
    register(OnnxModel)


@hookimpl
def interp_register_defaults(register):
    """``fer-cnn`` (it ships trained weights) is the model commands use unless told otherwise;
    ``interp explain`` uses ``fer2013-minixception``, trained on real faces."""
    register("model", "fer-cnn")
    register("explain-model", "fer2013-minixception")
