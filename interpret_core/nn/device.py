"""The one place a ``--device`` / ``device=`` spec becomes a :class:`torch.device`.

Specs: ``auto`` (CUDA if available, else Apple MPS if available, else the
CPU), ``cpu``, ``cuda`` (CUDA device 0), ``cuda:N``, ``mps``. A device this
machine does not have is a :class:`~interpret_core.api.errors.UsageError`
(exit code 2) naming the devices it does have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interpret_core.api.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: The spellings :func:`resolve_device` accepts, for help texts.
DEVICE_SPECS = "auto|cpu|cuda|cuda:N|mps"


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """The devices this machine can run a model on, e.g. ``['cpu', 'cuda:0', 'cuda:1']``."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append("mps")
    return devices


def _unavailable(spec: str, why: str) -> UsageError:
    return UsageError(
        f"--device {spec}: {why}; available here: {', '.join(available_devices())}",
        "pass --device auto (the best device available) or --device cpu",
    )


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The :class:`torch.device` of ``spec`` (``None`` means ``auto``), checked against this machine."""
    import torch

    if isinstance(spec, torch.device):
        spec = str(spec)
    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise _unavailable(text, "Apple MPS is not available")
        return torch.device("mps")
    kind, _, index_text = text.partition(":")
    if kind != "cuda" or (index_text and not index_text.isdigit()):
        raise UsageError(f"--device {spec}: unknown device", f"pass one of {DEVICE_SPECS}, e.g. --device cuda:0")
    if not torch.cuda.is_available():
        raise _unavailable(text, "CUDA is not available")
    index = int(index_text) if index_text else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise _unavailable(text, f"this machine has {count} CUDA device{'s' if count != 1 else ''} (cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)
