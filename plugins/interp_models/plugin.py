"""Hook implementations of this built-in plugin. Keep this module light: no torch at import."""

from __future__ import annotations

from interpret_core import hookimpl


@hookimpl
def interp_register_models(register):
    from .models import FerCNNModel, FerMiniXceptionModel, FerResNetModel
    from .onnx_model import OnnxModel

    register(FerCNNModel)
    register(FerResNetModel)
    register(FerMiniXceptionModel)
    register(OnnxModel)


@hookimpl
def interp_register_defaults(register):
    """``fer-cnn`` (it ships trained weights) is the model commands use unless told otherwise."""
    register("model", "fer-cnn")
