"""Hook implementations of this built-in plugin. Keep this module light: no torch at import."""

from __future__ import annotations

from interpret_core import hookimpl


@hookimpl
def interp_register_datasets(register):
    """Register ``ckplus`` (the CK+ release), ``synthfacs`` (generated, in the CK+ layout),
    ``synthfacs-stream`` (SynthFACS rendered on the fly, no disk) and ``faces`` (photos)."""
    from .ckplus import CKPlusDataset
    from .faces import FacesDataset
    from .synthfacs import SynthFACSDataset, SynthFACSStream

    register(CKPlusDataset)
    register(SynthFACSDataset)
    register(SynthFACSStream)
    register(FacesDataset)


@hookimpl
def interp_register_commands(register):
    """``interp data generate`` (SynthFACS) and the CK+ reader's flags on ``interp data inspect``."""
    from .commands import FLAGS, generate_command

    register(generate_command, name="generate", group="data")
    for flag in FLAGS:
        register(flag)


@hookimpl
def interp_register_defaults(register):
    """``synthfacs`` (generated on first use, so it works everywhere) is the default data set."""
    register("dataset", "synthfacs")
    register("photo-dataset", "faces")  # interp explain reads photos with it
