"""``interp data inspect``: read a data set as the protocol uses it, decode every image, count.

Output: the data set's summary (subjects, sequences, emotion-labelled
sequences, emotions, AUs, samples under the protocol, skipped files) as a
rich report, or JSON with ``--json``. Decoding shows a progress bar on stderr;
problems found are warned about on stderr and listed under ``skipped``.
``--strict`` turns the first problem into an error (exit code 1).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional

import typer

from .output import emit, warn


def _render(summary: dict[str, Any]):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Text.assemble(
        (f"{summary['dataset']}", "bold"),
        f"  {summary['root']}\n",
        f"protocol {summary['protocol']!r}, {summary['size']}x{summary['size']} crops, "
        f"{len(summary['class_names'])} classes\n",
        f"{summary['subjects']} subjects, {summary['sequences']} sequences "
        f"({summary['emotion_labelled']} emotion-labelled), {summary['frames']} frames on disk\n",
        f"{summary['images']} samples under the protocol "
        f"({summary['unlabelled_samples']} without an emotion), from {summary['sample_subjects']} subjects",
    )
    emotions = Table(title="emotion-labelled sequences", title_justify="left")
    emotions.add_column("emotion")
    emotions.add_column("sequences", justify="right")
    emotions.add_column("samples", justify="right")
    for name, count in summary["emotions"].items():
        emotions.add_row(name, str(count), str(summary["samples_per_class"].get(name, "-")))
    aus = Table(title="AUs (sequences whose FACS file lists them)", title_justify="left")
    aus.add_column("AU")
    aus.add_column("sequences", justify="right")
    for au, count in summary["aus"].items():
        aus.add_row(f"AU{au}", str(count))
    parts: list[Any] = [head, emotions, aus]
    if summary.get("au_masks"):
        parts.append(Text(f"{summary['au_masks']} samples carry ground-truth AU masks"))
    if summary["skipped"]:
        skipped = Table(title=f"skipped ({len(summary['skipped'])})", title_justify="left")
        skipped.add_column("path", overflow="fold")
        skipped.add_column("reason", overflow="fold")
        for row in summary["skipped"]:
            skipped.add_row(row["path"], row["reason"])
        parts.append(skipped)
    else:
        parts.append(Text("nothing skipped", style="green"))
    if summary["ignored"]:
        parts.append(Text(f"ignored {len(summary['ignored'])} unexpected file(s), e.g. {summary['ignored'][0]}"))
    parts.append(Text(f"decoded in {summary['decode_seconds']:.2f} s" + (" (from the crop cache)" if summary["from_cache"] else "")))
    return Group(*parts)


class _WarnHandler(logging.Handler):
    """Route the data set's skip warnings through the CLI's warning style."""

    def emit(self, record: logging.LogRecord) -> None:
        warn(record.getMessage())


def inspect_command(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Data set plugin, e.g. ckplus or synthfacs."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="The data set's root folder (synthfacs: the default set if omitted)."),
    protocol: str = typer.Option("default", "--protocol", help="Which frames become samples: default, peak, sequence or all."),
    size: int = typer.Option(64, "--size", help="Crop side in pixels."),
    strict: bool = typer.Option(False, "--strict", help="Fail on the first malformed file or undecodable image."),
    option: Optional[list[str]] = typer.Option(
        None, "--option", help="Other data set option key=value (e.g. include_neutral=false, cache=false); repeatable."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a report."),
) -> None:
    """Read a data set, decode every image the protocol uses, and report counts and problems."""
    from interpret_core.registry.loader import open_dataset
    from interpret_core.registry.options import parse_options

    # Only options the user changed: a third-party data set need not take them.
    options: dict[str, Any] = parse_options(option)
    if protocol != "default":
        options["protocol"] = protocol
    if size != 64:
        options["size"] = size
    if strict:
        options["strict"] = True
    logger = logging.getLogger("interp.datasets")
    handler = _WarnHandler(logging.WARNING)
    logger.addHandler(handler)
    propagate = logger.propagate
    logger.propagate = False
    try:
        data = open_dataset(dataset, data_root, options)
        from_cache = bool(getattr(data, "_decoded", None) is not None and len(data) and data._decoded.all())
        start = time.perf_counter()
        if hasattr(data, "decode_all"):
            data.decode_all(progress=True)
        else:  # a third-party data set: decode sample by sample
            from interpret_core.util.progress import track

            for _ in track(data, f"decoding {dataset}"):
                pass
        seconds = time.perf_counter() - start
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    if hasattr(data, "summary"):
        summary = dict(data.summary())
    else:
        summary = {"dataset": dataset, "images": len(data), "skipped": []}
    summary["decode_seconds"] = round(seconds, 3)
    summary["from_cache"] = from_cache
    emit(summary, as_json, _render if hasattr(data, "summary") else None)


def register(app: typer.Typer) -> None:
    """Add ``inspect`` to the ``interp data`` sub-app."""
    app.command("inspect")(inspect_command)
