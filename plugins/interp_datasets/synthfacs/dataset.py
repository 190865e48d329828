"""The ``synthfacs`` dataset plugin: the CK+ reader pointed at a SynthFACS release."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from ..ckplus import CKPlusDataset


class SynthFACSDataset(CKPlusDataset):
    """SynthFACS read through the CK+ reader, with ground-truth AU masks.

    Takes the options of :class:`~interp_datasets.ckplus.CKPlusDataset`
    (protocol, size, include_neutral, strict, cache). ``data_root=None``
    uses the default release (120 subjects, seed 0), generated once into the
    cache (``$INTERP_HOME/datasets``, else the XDG cache) on first use.
    """

    name: ClassVar[str] = "synthfacs"
    description: ClassVar[str] = (
        "procedural grey face sequences in the CK+ layout with ground-truth AU masks "
        "(generated on first use; `interp data generate` makes others)"
    )
    has_au_masks: ClassVar[bool] = True

    root_hint: ClassVar[str] = (
        "point --data-root at a SynthFACS release (`interp data generate --out DIR` writes one; "
        "without --data-root the default set is used)"
    )

    @classmethod
    def _resolve_root(cls, data_root: str | os.PathLike | None) -> Path:
        if data_root is None or str(data_root) == "":
            from .generator import ensure_default

            return ensure_default()
        return Path(data_root).expanduser()
