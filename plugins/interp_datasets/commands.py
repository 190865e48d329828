"""The commands and flags this plugin adds to ``interp`` (through ``interp_register_commands``).

- ``interp data generate``: write a SynthFACS release (CK+ layout plus
  ground-truth AU masks) into a folder; the summary goes to stdout, progress to stderr.
- ``--protocol``, ``--size`` and ``--strict`` on ``interp data inspect``:
  shortcuts for the CK+ reader's options (SynthFACS is read by the same reader).

No torch here; the generator is imported when the command runs.
"""

from __future__ import annotations

from typing import Any

from interpret_core.api.errors import UsageError
from interpret_core.cli import params
from interpret_core.cli.output import emit, info
from interpret_core.registry.commands import CommandFlag

#: The data sets the CK+ reader reads (their options are the reader's).
READER_DATASETS = ("ckplus", "synthfacs")

FLAGS = (
    CommandFlag("--protocol", key="protocol", kind="dataset", commands=("data inspect",), plugins=READER_DATASETS,
                help="Which frames become samples: default, peak, sequence or all."),
    CommandFlag("--size", key="size", kind="dataset", commands=("data inspect",), plugins=READER_DATASETS, type=int,
                help="Crop side in pixels (default 64)."),
    CommandFlag("--strict", key="strict", kind="dataset", commands=("data inspect",), plugins=READER_DATASETS, type=bool,
                help="Fail on the first malformed file or undecodable image."),
)


def _render_generate(summary: dict[str, Any]):
    from rich.table import Table

    table = Table(title=f"SynthFACS release in {summary['root']}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key in ("subjects", "sequences", "frames", "seed", "version"):
        table.add_row(key, str(summary[key]))
    table.add_row("frame size", "x".join(str(v) for v in summary["frame_size"]))
    table.add_row("seconds", f"{summary['seconds']:.1f}")
    for name, count in summary["emotions"].items():
        table.add_row(f"sequences: {name}", str(count))
    return table


def generate_command(
    out: params.Out = ...,
    dataset: params.DatasetName = "synthfacs",
    subjects: params.Subjects = 120,
    seed: params.Seed = 0,
    executor: params.Executor = "local",
    workers: params.Workers = None,
    scheduler: params.Scheduler = None,
    as_json: params.Json = False,
) -> None:
    """Generate a SynthFACS release in the CK+ layout, with ground-truth AU masks.

    --out is the release folder: new, empty, or an unfinished release to
    resume. --subjects is the number of identities (1-999); the same --seed
    gives byte-identical files, however many --workers (default: the CPUs,
    at most 8) or whichever --executor render the subjects (with dask, --out must be on a file
    system the workers share).
    """
    from interpret_core.registry.loader import get_registry

    get_registry().get_class("dataset", dataset)  # unknown names: the registry's error
    if dataset != "synthfacs":
        raise UsageError(
            f"dataset {dataset!r} cannot be generated; it is read from a copy you provide",
            f"generatable: synthfacs; read {dataset} with --data-root DIR",
        )
    from interpret_core.util.progress import progress_bar

    from .synthfacs import generate

    from interpret_core.util.io import claim_output_dir
    from interpret_core.workflows.setup import executor_from_flags

    choice = executor_from_flags(executor, workers, scheduler)
    with claim_output_dir(out), progress_bar() as bar:  # one writer per --out
        summary = generate(out, subjects=subjects, seed=seed, progress=bar, executor=choice)
    info(f"wrote {summary['frames']} frames of {summary['sequences']} sequences to {summary['root']}")
    emit(summary, as_json, _render_generate)
