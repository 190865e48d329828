"""Your own model, no plugin needed: ``python:FILE.py:Class`` and ``package.module:Class``.

``get_model("python:nets/my_net.py:MyNet", weights="my_net.safetensors")``
(``--model python:nets/my_net.py:MyNet`` on the command line) imports the
class from the file (or ``"my_pkg.nets:MyNet"`` from an installed module) and
builds it:

* a subclass of :class:`~interpret_core.api.interfaces.Model` is used as is,
  exactly like a registered plugin;
* any other ``torch.nn.Module`` subclass is wrapped in :class:`ModuleModel`:
  it is built with no arguments (or ``module_options``), its class names and
  input size come from the weights' card or from the ``class_names`` /
  ``input_size`` options (or the class's own ``class_names`` /
  ``input_size`` attributes; class names are required), and its analysable layers are, unless
  ``layers`` is given, every ``nn.ReLU`` module whose output is a feature map
  [N, C, h, w], in execution order.

Weights are ``.safetensors`` only. A module without a card may load a bare
safetensors file (tensor names and shapes are still checked; a warning says
no card vouches for it). Deconvnet and guided backprop check the module's
rectifiers as for every model.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from interpret_core.api.errors import UsageError
from interpret_core.api.interfaces import Model

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["is_model_spec", "model_class_from_spec", "ModuleModel", "RectifiedLayers", "wrap_module", "rectified_layers"]

_MODULE_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_model_spec(name: str) -> bool:
    """True for ``python:FILE.py:Class`` and ``package.module:Class`` (not plugin names)."""
    return name.startswith("python:") or bool(_MODULE_SPEC.match(name))


def _import_object(spec: str) -> Any:
    if spec.startswith("python:"):
        location, _, attr = spec[len("python:"):].rpartition(":")
        path = Path(location)
        if not location or not attr:
            raise UsageError(f"model {spec!r} is not of the form python:FILE.py:Class", "e.g. --model python:nets/my_net.py:MyNet")
        if not path.is_file():
            raise UsageError(f"model {spec!r}: file {path} not found", "give the path of the .py file that defines the class")
        module_name = f"_interp_user_model_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(module_name)
        if module is None:
            file_spec = importlib.util.spec_from_file_location(module_name, path)
            if file_spec is None or file_spec.loader is None:
                raise UsageError(f"model {spec!r}: {path} cannot be imported", "give a .py file")
            module = importlib.util.module_from_spec(file_spec)
            sys.modules[module_name] = module  # dataclasses and pickling-free helpers look modules up here
            try:
                file_spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[module_name]
                raise UsageError(f"model {spec!r}: importing {path} failed ({type(exc).__name__}: {exc})", "fix the file, or run it with python to see the error") from exc
    else:
        module_path, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_path)
        except ImportError as exc:
            raise UsageError(f"model {spec!r}: module {module_path!r} cannot be imported ({exc})", "install it, or use python:FILE.py:Class") from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            found = sorted(n for n, v in vars(module).items() if isinstance(v, type) and not n.startswith("_"))
            raise UsageError(f"model {spec!r}: no {attr!r} in {getattr(module, '__file__', module)}", f"classes there: {', '.join(found) or 'none'}")
        target = getattr(target, part)
    return target


def rectified_layers(module: nn.Module, input_size: Sequence[int]) -> list[str]:
    """Names of the ``nn.ReLU`` modules whose output is a feature map, in execution order.

    One no-grad probe pass on a zero input of shape [1, *input_size].
    """
    import torch
    from torch import nn

    order: list[str] = []
    handles = []
    names = {m: n for n, m in module.named_modules() if n}

    def hook(relu: nn.Module, _args: Any, output: Any) -> None:
        name = names.get(relu)
        if name and isinstance(output, torch.Tensor) and output.ndim == 4 and name not in order:
            order.append(name)

    try:
        for sub in module.modules():
            if isinstance(sub, nn.ReLU):
                handles.append(sub.register_forward_hook(hook))
        with torch.no_grad():
            module(torch.zeros(1, *[int(v) for v in input_size]))
    finally:
        for handle in handles:
            handle.remove()
    return order


class RectifiedLayers:
    """Mixin for a :class:`Model` that finds its layers: ``_layers`` if set, else :func:`rectified_layers`."""

    _layers: list[str] | None = None

    @property
    def layers(self) -> list[str]:
        if self._layers is None:
            self._layers = rectified_layers(self.module, self.input_size)  # type: ignore[attr-defined]
        return list(self._layers)


class ModuleModel(RectifiedLayers, Model):
    """Wraps any ``nn.Module`` class as an interp :class:`Model`.

    Options:
        class_names: output class names (default: the weights' card's, else the
            class's ``class_names`` attribute; required otherwise).
        input_size: (C, H, W) (default: the class's ``input_size``, else the card's, else (1, 64, 64)).
        layers: analysable layers (default: :func:`rectified_layers`).
        module_options: keyword arguments for the module's constructor.
    """

    name: ClassVar[str] = "python-module"
    module_class: ClassVar[type]
    spec: ClassVar[str]
    #: Weights without a card may be loaded (names and shapes checked).
    card_optional: ClassVar[bool] = True

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        input_size: Sequence[int] | None = None,
        layers: Sequence[str] | str | None = None,
        module_options: dict[str, Any] | None = None,
    ):
        self.module_options = dict(module_options or {})
        self._layers = [layers] if isinstance(layers, str) else (list(layers) if layers else None)
        names = class_names if class_names is not None else getattr(self.module_class, "class_names", None)
        size = input_size if input_size is not None else getattr(self.module_class, "input_size", (1, 64, 64))
        super().__init__(class_names=None if names is None else list(names), input_size=tuple(int(v) for v in size))

    def build(self) -> nn.Module:
        return self.module_class(**self.module_options)

    def architecture(self) -> dict[str, Any]:
        found = super().architecture()
        found["model"] = self.spec_id()
        return found

    @classmethod
    def spec_id(cls) -> str:
        """What a card records as the model: the class, not the file's location."""
        if cls.spec.startswith("python:"):
            return f"python:{cls.spec.rpartition(':')[2]}"
        return cls.spec


def wrap_module(
    module_class: type,
    *,
    class_names: Sequence[str] | None = None,
    input_size: Sequence[int] | None = None,
    layers: Sequence[str] | None = None,
    spec: str | None = None,
    **module_options: Any,
) -> ModuleModel:
    """An interp :class:`Model` around a new ``module_class(**module_options)`` (untrained).

    The documented Python route for any ``nn.Module``: wrap it, load a
    state dict into ``model.module`` yourself (or save it with
    :func:`interpret_core.nn.weights.save_weights` to get a card), then use
    ``model`` with ``scan_units``, ``get_attribution(...).attribute_units``
    and the unit metrics.
    """
    cls = _module_model_class(module_class, spec or f"{module_class.__module__}:{module_class.__qualname__}")
    return cls(class_names=class_names, input_size=input_size, layers=layers, module_options=module_options or None)


def _module_model_class(module_class: type, spec: str) -> type[ModuleModel]:
    return type(
        f"ModuleModel[{module_class.__qualname__}]",
        (ModuleModel,),
        {"module_class": module_class, "spec": spec, "name": spec, "description": (module_class.__doc__ or "").strip().split("\n")[0]},
    )


def model_class_from_spec(spec: str) -> type[Model]:
    """The :class:`Model` class a ``python:``/``module:`` spec names (nn.Modules are wrapped)."""
    from torch import nn

    target = _import_object(spec)
    if isinstance(target, type) and issubclass(target, Model):
        return target
    if isinstance(target, type) and issubclass(target, nn.Module):
        return _module_model_class(target, spec)
    raise UsageError(
        f"model {spec!r} is {target!r}, neither an interpret_core.Model nor a torch.nn.Module subclass",
        "point at the class itself (python:FILE.py:Class)",
    )
