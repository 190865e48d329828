"""``interp data inspect``: open a data set, decode every sample, print its summary.

Works for any data set plugin: the counts come from the declared
:meth:`interpret_core.Dataset.summary`, the decoding is one pass over the
samples (progress on stderr); a ``streaming`` data set (samples generated
on demand, nothing on disk) has only its first sample decoded. Problems a reader logs under the ``interp``
logger are warned about on stderr; readers list what they skipped under
``skipped``. Reader-specific switches arrive as plugin flags (the CK+ reader
adds ``--protocol``, ``--size`` and ``--strict``) or as ``--dataset-option``.
"""

from __future__ import annotations

import time
from typing import Any

import typer

from . import params
from .output import emit, plugin_warnings


def _render(summary: dict[str, Any]):
    """A report of any summary: known counts as sentences, mappings as tables, the rest as lines."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    shown = {"dataset", "root", "decode_seconds", "from_cache"}
    head = Text.assemble((f"{summary.get('dataset', '?')}", "bold"), f"  {summary.get('root', '')}".rstrip())
    lines: list[str] = []
    if "protocol" in summary and "size" in summary:
        lines.append(f"protocol {summary['protocol']!r}, {summary['size']}x{summary['size']} crops, "
                     f"{len(summary.get('class_names', []))} classes")
        shown |= {"protocol", "size", "class_names"}
    if {"subjects", "sequences", "emotion_labelled", "frames"} <= set(summary):
        lines.append(f"{summary['subjects']} subjects, {summary['sequences']} sequences "
                     f"({summary['emotion_labelled']} emotion-labelled), {summary['frames']} frames on disk")
        shown |= {"subjects", "sequences", "emotion_labelled", "frames"}
    if {"unlabelled_samples", "sample_subjects"} <= set(summary):
        lines.append(f"{summary['images']} samples under the protocol "
                     f"({summary['unlabelled_samples']} without an emotion), from {summary['sample_subjects']} subjects")
        shown |= {"images", "unlabelled_samples", "sample_subjects"}
    parts: list[Any] = [head] + [Text(line) for line in lines]
    if isinstance(summary.get("emotions"), dict):
        per_class = summary.get("samples_per_class") or {}
        emotions = Table(title="emotion-labelled sequences", title_justify="left")
        emotions.add_column("emotion")
        emotions.add_column("sequences", justify="right")
        emotions.add_column("samples", justify="right")
        for name, count in summary["emotions"].items():
            emotions.add_row(name, str(count), str(per_class.get(name, "-")))
        parts.append(emotions)
        shown |= {"emotions", "samples_per_class"}
    if isinstance(summary.get("aus"), dict):
        aus = Table(title="AUs (count as the data set reports it)", title_justify="left")
        aus.add_column("AU")
        aus.add_column("count", justify="right")
        for au, count in summary["aus"].items():
            aus.add_row(f"AU{au}", str(count))
        parts.append(aus)
        shown.add("aus")
    if summary.get("au_masks"):
        parts.append(Text(f"{summary['au_masks']} samples carry ground-truth AU masks"))
    shown.add("au_masks")
    skipped = summary.get("skipped") or []
    if skipped:
        table = Table(title=f"skipped ({len(skipped)})", title_justify="left")
        named = any("warning" in row for row in skipped)  # readers may name each skip (docs/datasets.md)
        table.add_column("path", overflow="fold")
        if named:
            table.add_column("warning", no_wrap=True)
        table.add_column("reason", overflow="fold")
        for row in skipped:
            cells = [str(row.get("path", ""))] + ([str(row.get("warning", ""))] if named else [])
            table.add_row(*cells, str(row.get("reason", "")))
        parts.append(table)
    else:
        parts.append(Text("nothing skipped", style="green"))
    ignored = summary.get("ignored") or []
    if ignored:
        parts.append(Text(f"ignored {len(ignored)} unexpected file(s), e.g. {ignored[0]}"))
    shown |= {"skipped", "ignored"}
    for key, value in summary.items():  # whatever else a reader reports
        if key not in shown and value is not None:
            parts.append(Text(f"{key}: {value}"))
    cache = " (from the crop cache)" if summary.get("from_cache") else ""
    if summary.get("decode_seconds") is None:
        parts.append(Text("streaming: samples are generated on demand; the first one was decoded, not all"))
    else:
        parts.append(Text(f"decoded in {summary['decode_seconds']:.2f} s{cache}"))
    return Group(*parts)


def inspect_command(
    dataset: params.DatasetName = ...,
    data_root: params.DataRoot = None,
    dataset_option: params.DatasetOption = [],
    legacy_option: params.LegacyDatasetOption = [],
    as_json: params.Json = False,
) -> None:
    """Read a data set, decode every sample, and report its counts and problems."""
    from interpret_core.util.progress import track
    from interpret_core.workflows.setup import choices_from_flags, load_dataset

    _, choice = choices_from_flags(
        dataset=dataset, data_root=data_root, dataset_option=params.merge_legacy(dataset_option, legacy_option)
    )
    with plugin_warnings():
        data = load_dataset(choice)
        start = time.perf_counter()
        seconds: float | None = None
        if data.streaming:  # nothing on disk to check; decoding all N would generate all N
            if len(data):
                data[0]
        else:
            for _ in track(data, f"decoding {choice.name}"):
                pass
            seconds = round(time.perf_counter() - start, 3)
    summary = dict(data.summary())
    summary["decode_seconds"] = seconds
    summary.setdefault("from_cache", None)
    emit(summary, as_json, _render)


def register(app: typer.Typer) -> None:
    """Add ``inspect`` to the ``interp data`` sub-app."""
    from .plugin_commands import add_command

    add_command(app, "data inspect", inspect_command)
