"""Every command-line parameter that more than one command takes, declared once.

A command names its parameters with these typer ``Annotated`` aliases and
gives only the default::

    from interpret_core.cli import params

    def explain_command(
        model: params.ModelName = None,
        weights: params.Weights = None,
        model_option: params.ModelOption = [],
        out: params.Out = None,
        as_json: params.Json = False,
    ) -> None: ...

so ``--out`` is the output, ``-m`` is ``--method`` and ``--dataset-option``
goes to the data set plugin in every command, built-in or from a plugin
(``tests/test_cli_params.py`` walks the whole app and fails on a long flag
declared twice with two meanings, or a short flag used for two long ones).

Plugin options say whose they are: ``--model-option``, ``--dataset-option``,
``--method-option``, ``--metric-option``, each ``KEY=VALUE`` and repeatable.

Old spellings stay accepted for one release as hidden aliases that warn on
stderr (:func:`legacy`); CHANGELOG.md lists them. This module imports no torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from interpret_core.api.errors import UsageError

#: The release that drops the old spellings accepted by :func:`legacy`.
LEGACY_REMOVED_IN = "0.3"

_OPTION_LIKE = re.compile(r"^[A-Za-z_][\w-]*=")


def _check_out(value: Optional[Path]) -> Optional[Path]:
    # `-o` used to be `--option` in run and visualize; a KEY=VALUE there now
    # would silently become an output folder named "key=value".
    if value is not None and _OPTION_LIKE.match(str(value)) and "/" not in str(value):
        raise UsageError(
            f"--out {value}: looks like a KEY=VALUE option, not an output path (-o now means --out)",
            "pass plugin options by kind: --method-option, --metric-option, --dataset-option or --model-option KEY=VALUE",
        )
    return value


# -- output ---------------------------------------------------------------------------------
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout instead of a table.")]
Out = Annotated[
    Optional[Path],
    typer.Option(
        "--out", "-o", callback=_check_out,
        help="Where the command writes its output (a folder; a .png file for `data preview`).",
    ),
]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue an interrupted run in --out, reusing the finished parts that still match.")
]

# -- the model --------------------------------------------------------------------------------
ModelName = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        help="Model plugin name (see `interp models`); with --weights, defaults to the model named in the weights' card, "
        "else to `interp config get model`.",
    ),
]
Weights = Annotated[
    Optional[Path],
    typer.Option(
        "--weights",
        help="A .safetensors file with its model card beside it, e.g. from `interp train` (default: the model's shipped weights).",
    ),
]
ModelOption = Annotated[
    list[str],
    typer.Option("--model-option", metavar="KEY=VALUE", help="Option for the model plugin (repeatable), e.g. class_names=\"['a','b']\"."),
]
Device = Annotated[
    str,
    typer.Option(
        "--device", metavar="auto|cpu|cuda|cuda:N|mps",
        help="Where the model runs: auto picks CUDA, else MPS, else the CPU. A device this machine lacks is a usage error.",
    ),
]

# -- the data set -------------------------------------------------------------------------------
DatasetName = Annotated[Optional[str], typer.Option("--dataset", "-d", help="Data set plugin name (see `interp plugins`; default: `interp config get dataset`).")]
DataRoot = Annotated[
    Optional[Path],
    typer.Option("--data-root", help="The data set's root folder (default: the plugin's own default set, if it has one)."),
]
DatasetOption = Annotated[
    list[str],
    typer.Option(
        "--dataset-option", metavar="KEY=VALUE",
        help="Option for the data set plugin (repeatable), e.g. protocol=peak or include_neutral=false.",
    ),
]
Limit = Annotated[
    Optional[int], typer.Option("--limit", min=1, help="Use N images of the data set (the command's help says how they are picked).")
]
Subjects = Annotated[Optional[int], typer.Option("--subjects", min=1, help="Number of subjects (identities) to make or use.")]

# -- methods and metrics -----------------------------------------------------------------------
Method = Annotated[
    Optional[str],
    typer.Option(
        "--method", "-m",
        help="Attribution method spec NAME[:KEY=VALUE,...] (see `interp plugins`; default: `interp config get method`).",
    ),
]
MethodOption = Annotated[
    list[str],
    typer.Option("--method-option", metavar="KEY=VALUE", help="Option for the attribution method (repeatable), e.g. max_batch=256."),
]
Metric = Annotated[Optional[str], typer.Option("--metric", help="Metric plugin name (see `interp plugins`; default: `interp config get metric`).")]
MetricOption = Annotated[
    list[str],
    typer.Option(
        "--metric-option", metavar="[METRIC.]KEY=VALUE",
        help="Option for a metric plugin (repeatable); METRIC. picks one metric where several run.",
    ),
]
Layer = Annotated[Optional[str], typer.Option("--layer", "-l", help="A layer of the model (see `interp models`).")]
Layers = Annotated[Optional[str], typer.Option("--layers", help="Comma-separated layers of the model (default: every layer it lists).")]
Target = Annotated[
    str, typer.Option("--target", help="Class whose evidence is drawn: predicted, label (the data set's, matched by name) or a class index.")
]
TopK = Annotated[int, typer.Option("--top-k", min=1, help="Images drawn per unit: its top-k by maximal activation.")]

# -- running ------------------------------------------------------------------------------------
Seed = Annotated[int, typer.Option("--seed", help="Seed of every random choice the command makes; the same seed gives the same result.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")]

# -- where the parallel work runs (interpret_core/workflows/executors.py) -------------------------
Executor = Annotated[
    str,
    typer.Option(
        "--executor", metavar="local|dask",
        help="Where the command's independent tasks run: local (this machine) or dask (a Dask cluster; "
        "needs the interp[dask] extra). Never changes the results.",
    ),
]
Workers = Annotated[
    Optional[int],
    typer.Option(
        "--workers", min=1,
        help="Worker processes, one thread each: on this machine with --executor local, a Dask LocalCluster started "
        "for the command with --executor dask [default: 1 (this process) for run and bench, min(2, CPUs) for train; "
        "a plugin command says its own]. Never changes the results.",
    ),
]
Scheduler = Annotated[
    Optional[str],
    typer.Option("--scheduler", metavar="ADDRESS", help="A running Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --executor dask)."),
]


# -- old spellings -------------------------------------------------------------------------------
def _warn_legacy(old: str, new: str):
    def callback(value: Any) -> Any:
        if value:
            from .output import warn

            warn(f"{old} is deprecated and goes in {LEGACY_REMOVED_IN}; use {new}")
        return value

    return callback


def legacy(old: str, new: str, multiple: bool = True) -> Any:
    """A hidden parameter for the old spelling ``old`` of ``new``; warns on stderr when used.

    The command merges its value into the new parameter's (see
    :func:`merge_legacy`). ``multiple`` for repeatable KEY=VALUE options.
    """
    kind = list[str] if multiple else Optional[str]
    return Annotated[kind, typer.Option(old, hidden=True, callback=_warn_legacy(old, new), help=f"Deprecated: use {new}.")]


def merge_legacy(new: list[str] | None, old: list[str] | None) -> list[str]:
    """The values of a new repeatable option followed by those given under its old spelling."""
    return list(new or []) + list(old or [])


#: ``--option`` as run, visualize and data inspect/preview took it before 0.2.
LegacyMetricOption = legacy("--option", "--metric-option")
LegacyMethodOption = legacy("--option", "--method-option")
LegacyDatasetOption = legacy("--option", "--dataset-option")
#: ``interp train --jobs N`` before 0.2: the local worker processes, now ``--workers N``.
LegacyJobs = Annotated[
    Optional[int], typer.Option("--jobs", min=1, hidden=True, callback=_warn_legacy("--jobs", "--workers"), help="Deprecated: use --workers.")
]

#: Old spellings accepted for one release, ``(command, old flag, new flag)``; CHANGELOG.md lists them.
LEGACY_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("run", "--option", "--metric-option"),
    ("visualize", "--option", "--method-option"),
    ("data inspect", "--option", "--dataset-option"),
    ("data preview", "--option", "--dataset-option"),
    ("train", "--jobs", "--workers"),
)
