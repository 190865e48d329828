"""Hook implementations of this built-in plugin. Keep this module light: no torch at import."""

from __future__ import annotations

from interpret_core import hookimpl


@hookimpl
def interp_register_models(register):
    from .models import FerCNNModel, FerMiniXceptionModel, FerResNetModel

    register(FerCNNModel)
    register(FerResNetModel)
    register(FerMiniXceptionModel)
