"""Saving and loading model weights: safetensors plus a JSON model card.

A trained model is two files side by side::

    model.safetensors   tensors only (safetensors format: never pickled code)
    model.json          the model card: architecture, data, protocol, seed,
                        command line, package versions, metrics, and the
                        sha256 of ``model.safetensors``

Loading refuses (:class:`~interpret_core.api.errors.WeightsError`, naming the file
and the field) a missing card, a card field of the wrong type or out of
bounds, a card whose model name, class names or input size disagree with the
model, a sha256 that does not match the tensors file, tensors whose names or
shapes differ from the module's, and NaN or infinite weights. Nothing is ever
unpickled: ``.pt``/``.pth`` files are refused.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interpret_core.api.errors import WeightsError
from interpret_core.util.io import read_json, write_bytes, write_json

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from interpret_core.api.interfaces import Model

__all__ = [
    "CARD_FORMAT",
    "card_path",
    "default_weights_path",
    "read_card",
    "check_card",
    "check_architecture",
    "save_weights",
    "load_weights_into",
    "sha256_file",
    "state_dict_bytes",
    "state_dict_sha256",
    "package_versions",
]

#: Identifies our model cards (``card["format"]``) and their layout version.
CARD_FORMAT = "interp-model-card"
CARD_VERSION = 1
#: Bounds of a card's architecture fields (:func:`check_architecture`).
MAX_CLASSES = 1000
MAX_CHANNELS = 16
MAX_INPUT_SIDE = 4096


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def state_dict_bytes(module: nn.Module) -> bytes:
    """``module``'s state dict as safetensors bytes: what :func:`save_weights` writes."""
    from safetensors.torch import save as save_tensors

    state = {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}
    # One metadata key only: safetensors stores metadata in a hash map, so the
    # order of several keys (and hence the file's sha256) varies between runs.
    return save_tensors(state, metadata={"format": "pt"})


def state_dict_sha256(module: nn.Module) -> str:
    """Hex sha256 identifying ``module``'s weights (names, dtypes, shapes and values).

    It is the sha256 of the safetensors file :func:`save_weights` would write,
    so for a model loaded from a file it equals the card's ``weights.sha256``.
    """
    return hashlib.sha256(state_dict_bytes(module)).hexdigest()


def card_path(weights: str | os.PathLike) -> Path:
    """The model card that belongs to ``weights``: same stem, ``.json``."""
    return Path(weights).with_suffix(".json")


def package_versions() -> dict[str, str]:
    """Versions that decide whether a training run reproduces bit for bit."""
    import numpy

    from interpret_core import __version__

    versions = {"interp": __version__, "numpy": numpy.__version__, "python": platform.python_version()}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        import safetensors

        versions["safetensors"] = safetensors.__version__
    except (ImportError, AttributeError):  # pragma: no cover
        pass
    versions["platform"] = platform.platform()
    return versions


def default_weights_path(spec: str | None) -> Path | None:
    """Resolve ``"package:relative/path"`` (``Model.default_weights``) to a file, or None if absent."""
    if not spec:
        return None
    import importlib.resources

    package, _, relative = spec.partition(":")
    if not relative:
        raise WeightsError(
            f"default_weights {spec!r} is not of the form 'package:relative/path.safetensors'",
            "fix the model plugin's default_weights attribute",
        )
    try:
        resource = importlib.resources.files(package).joinpath(relative)
    except ModuleNotFoundError as exc:
        raise WeightsError(f"default_weights {spec!r}: package {package!r} is not installed", None) from exc
    if not resource.is_file():
        return None
    return Path(os.fspath(resource))


def read_card(weights: str | os.PathLike) -> dict[str, Any]:
    """Read and sanity-check the model card beside ``weights``."""
    card_file = card_path(weights)
    if not card_file.is_file():
        raise WeightsError(
            f"{weights}: model card {card_file} is missing",
            "weights travel with their card (same name, .json); re-export them with interpret_core.nn.weights.save_weights",
        )
    try:
        card = read_json(card_file)
    except Exception as exc:
        raise WeightsError(f"{card_file}: not a readable model card ({exc})", "restore the card that came with the weights") from exc
    if not isinstance(card, dict) or not isinstance(card.get("architecture"), dict):
        raise WeightsError(f"{card_file}: field 'architecture' is missing", "restore the card that came with the weights")
    architecture = card["architecture"]
    for field in ("model", "class_names", "input_size"):
        if field not in architecture:
            raise WeightsError(f"{card_file}: field 'architecture.{field}' is missing", "restore the card that came with the weights")
    check_architecture(architecture, card_file)
    return card


def card_model_name(weights: str | os.PathLike) -> str:
    """The model name the card beside ``weights`` declares (``architecture.model``): what
    ``--weights FILE`` alone resolves to, in the loader and in every command's load step."""
    return str(read_card(weights)["architecture"]["model"])


def _field_error(card_file: str | os.PathLike, field: str, expected: str, value: Any) -> WeightsError:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return WeightsError(
        f"{card_file}: field 'architecture.{field}' must be {expected}, got {type(value).__name__} {shown}",
        "restore the card that came with the weights, or re-export them with interpret_core.nn.weights.save_weights",
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_architecture(architecture: dict[str, Any], card_file: str | os.PathLike) -> None:
    """Check each architecture field's type and bounds; WeightsError names the file and the field.

    ``model``: a non-empty string; ``class_names``: 2 to :data:`MAX_CLASSES`
    distinct non-empty strings; ``input_size``: [channels, height, width]
    integers, channels 1 to :data:`MAX_CHANNELS`, sides 1 to
    :data:`MAX_INPUT_SIDE` pixels (so a damaged card cannot make the model
    allocate terabytes).
    """
    model = architecture.get("model")
    if not isinstance(model, str) or not model:
        raise _field_error(card_file, "model", "a model plugin name (a string)", model)
    names = architecture.get("class_names")
    if (
        not isinstance(names, (list, tuple))
        or not 2 <= len(names) <= MAX_CLASSES
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise _field_error(card_file, "class_names", f"a list of 2 to {MAX_CLASSES} class-name strings", names)
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if list(names).count(n) > 1})
        raise _field_error(card_file, "class_names", f"distinct names (repeated: {', '.join(duplicates)})", names)
    size = architecture.get("input_size")
    if not isinstance(size, (list, tuple)) or len(size) != 3 or not all(_is_int(v) for v in size):
        raise _field_error(card_file, "input_size", "[channels, height, width] as three integers", size)
    channels, height, width = size
    if not 1 <= channels <= MAX_CHANNELS or not 1 <= height <= MAX_INPUT_SIDE or not 1 <= width <= MAX_INPUT_SIDE:
        raise _field_error(
            card_file, "input_size",
            f"[channels 1-{MAX_CHANNELS}, height 1-{MAX_INPUT_SIDE}, width 1-{MAX_INPUT_SIDE}]", size,
        )


def check_card(model: Model, card: dict[str, Any], card_file: str | os.PathLike) -> None:
    """Refuse a card whose architecture disagrees with ``model``; the message names the field."""
    expected = model.architecture()
    found = card.get("architecture", {})
    for field in ("model", "class_names", "input_size"):
        theirs = found.get(field)
        ours = expected[field]
        if isinstance(ours, (list, tuple)):
            theirs_cmp = list(theirs) if isinstance(theirs, (list, tuple)) else theirs
            ours_cmp = list(ours)
        else:
            theirs_cmp, ours_cmp = theirs, ours
        if theirs_cmp != ours_cmp:
            if field == "model":
                hint = f"load these weights with --model {theirs}" if isinstance(theirs, str) else "use weights made for this model"
            else:
                hint = (
                    f"build the model with {field}={theirs!r} (get_model without options takes it from the card), "
                    "or use weights trained for this configuration"
                )
            raise WeightsError(
                f"{card_file}: field 'architecture.{field}' is {theirs!r} but model {model.name!r} has {ours_cmp!r}",
                hint,
            )


def save_weights(model: Model, path: str | os.PathLike, card: dict[str, Any] | None = None) -> Path:
    """Write ``model.module``'s tensors to ``path`` (.safetensors) and its card beside it.

    Both files are written atomically, tensors first, so an interrupted save
    never leaves a card describing other tensors. ``card`` adds to (and may
    not override) the fields this function fills in: ``format``,
    ``architecture``, ``weights`` (file, sha256, bytes, parameters),
    ``versions`` and ``created``. Typical extra fields: ``dataset``,
    ``protocol``, ``seed``, ``command``, ``metrics``, ``notes``.

    Returns:
        the weights path.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: weights are saved as .safetensors", "give a path ending in .safetensors")
    data = state_dict_bytes(model.module)
    write_bytes(path, data)
    full_card: dict[str, Any] = {"format": CARD_FORMAT, "format_version": CARD_VERSION}
    full_card.update(card or {})
    full_card.update(
        {
            "architecture": model.architecture(),
            "weights": {
                "file": path.name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "parameters": int(sum(t.numel() for t in model.module.state_dict().values() if t.is_floating_point())),
                "dtype": "float32",
            },
            "versions": (card or {}).get("versions") or package_versions(),
            "created": (card or {}).get("created") or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    write_json(card_path(path), full_card)
    return path


def _load_tensors(path: Path, card: dict[str, Any] | None, card_file: Path, model: Model) -> None:
    """Load ``path`` into ``model.module``; ``card=None`` (a card-optional model) skips the sha256 check."""
    from safetensors.torch import load as load_tensors

    data = path.read_bytes()
    if card is not None:
        weights_field = card.get("weights")
        if not isinstance(weights_field, dict):
            raise WeightsError(f"{card_file}: field 'weights' must be an object with 'sha256', got {type(weights_field).__name__}",
                               "restore the card that came with the weights")
        expected_sha = weights_field.get("sha256")
        if not expected_sha:
            raise WeightsError(f"{card_file}: field 'weights.sha256' is missing", "restore the card that came with the weights")
        actual_sha = hashlib.sha256(data).hexdigest()
        if actual_sha != expected_sha:
            raise WeightsError(
                f"{path}: sha256 {actual_sha[:16]}... does not match field 'weights.sha256' {str(expected_sha)[:16]}... of {card_file}",
                "the tensors or the card were changed or swapped; restore the pair that belongs together",
            )
    try:
        tensors = load_tensors(data)
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise WeightsError(f"{path}: not a valid safetensors file ({exc})", "re-export the weights") from exc
    expected = model.module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"{path}: tensor names do not match model {model.name!r}"
            + (f"; missing {missing[:5]}" if missing else "")
            + (f"; unexpected {unexpected[:5]}" if unexpected else ""),
            "these weights were made for another architecture or version of the model",
        )
    for name, tensor in expected.items():
        if tuple(tensors[name].shape) != tuple(tensor.shape):
            raise WeightsError(
                f"{path}: tensor {name!r} has shape {tuple(tensors[name].shape)} but model {model.name!r} expects {tuple(tensor.shape)}",
                "these weights were made for another configuration of the model",
            )
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            bad = int((~tensor.isfinite()).sum())
            raise WeightsError(
                f"{path}: tensor {name!r} holds {bad} NaN or infinite value(s) of {tensor.numel()}",
                "the training that wrote it diverged or the file was damaged; retrain, or use other weights",
            )
    model.module.load_state_dict(tensors, strict=True)


def load_weights_into(model: Model, weights: str | os.PathLike | None) -> None:
    """Load ``weights`` (or the plugin's shipped default) into ``model``; set ``model.card``.

    ``weights=None`` loads ``model.default_weights`` when the plugin ships a
    file. When it ships none, a card the plugin set itself while building
    (a plugin that loads its own weights, e.g. from an option) is kept: the
    model counts as trained. Otherwise (or when the shipped card is for other
    class names or input size than the model was built with) the model stays
    untrained and ``model.card`` is None (the latter case warns).
    """
    if weights is None:
        path = default_weights_path(model.default_weights)
        if path is None:
            # The plugin's own card (set in build() or __init__), or None.
            model.card = getattr(model, "card", None)
            return
        card = read_card(path)
        try:
            check_card(model, card, card_path(path))
        except WeightsError as exc:
            warnings.warn(
                f"shipped default weights of {model.name!r} do not fit this model ({exc.message}); the model stays untrained",
                stacklevel=3,
            )
            model.card = None
            return
    else:
        path = Path(weights)
        if path.suffix in (".pt", ".pth", ".pkl", ".ckpt", ".bin"):
            raise WeightsError(
                f"{path}: interp loads only .safetensors weights (never unpickles {path.suffix} files)",
                "convert the state dict with safetensors.torch.save_file and write a model card with interpret_core.nn.weights.save_weights",
            )
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found", "give the path of a .safetensors file made by `interp train`")
        if getattr(model, "card_optional", False) and not card_path(path).is_file():
            # Your own nn.Module (python:FILE.py:Class) may come with a bare state dict.
            warnings.warn(
                f"{path} has no model card beside it; its tensor names and shapes are checked, nothing else "
                "(write one with interpret_core.nn.weights.save_weights)",
                stacklevel=3,
            )
            _load_tensors(path, None, card_path(path), model)
            model.card = {
                "architecture": model.architecture(),
                "weights": {"file": path.name, "sha256": sha256_file(path)},
                "notes": "no model card: bare safetensors state dict",
                "path": str(path),
            }
            model.module.eval()
            return
        card = read_card(path)
        check_card(model, card, card_path(path))
    _load_tensors(path, card, card_path(path), model)
    model.card = dict(card)
    model.card["path"] = str(path)
    model.module.eval()
