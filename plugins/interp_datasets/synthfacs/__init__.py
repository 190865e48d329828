"""SynthFACS: procedural grey face sequences in the CK+ layout, with ground-truth AU masks.

Public API::

    from interp_datasets.synthfacs import generate, default_root, ensure_default, SynthFACSDataset, SynthFACSStream

This module stays light (no torch, no Pillow at import): the names are loaded
on first use, so the plugin registry can import it cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["generate", "default_root", "ensure_default", "SynthFACSDataset", "SynthFACSStream", "GENERATOR_VERSION"]

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .dataset import SynthFACSDataset
    from .stream import SynthFACSStream
    from .generator import GENERATOR_VERSION, default_root, ensure_default, generate


def __getattr__(name: str) -> Any:
    if name == "SynthFACSDataset":
        from .dataset import SynthFACSDataset

        return SynthFACSDataset
    if name == "SynthFACSStream":
        from .stream import SynthFACSStream

        return SynthFACSStream
    if name in ("generate", "default_root", "ensure_default", "GENERATOR_VERSION"):
        from . import generator as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
