"""``interp run``: scan a data set, score units with a unit metric, draw the mapped units.

The pipeline, one function per step so each can be reused or tested:

1. :func:`resolve_method` checks the attribution can project units (before any work);
2. :func:`scan_units` streams the data set once (cached as ``scan.npz`` in the
   output folder, reused with ``resume=True``);
3. the unit metric scores every (layer, unit, AU) and maps AUs to units;
4. :func:`~interpret_core.workflows.run_figures.draw_run_figures` draws one figure per AU with the
   attribution method (only the faces shown are projected) and the overview plots;
5. results are written atomically: ``figures/``, ``scores.csv``,
   ``mapping.md``, ``report.html`` and finally ``results.json`` (its presence
   marks a finished run).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as _dt
import io
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interpret_core.api.errors import CapabilityError, DataError, UsageError
from interpret_core.util.io import claim_output_dir, to_jsonable, write_json, write_text
from interpret_core.util.paths import slug
from interpret_core.util.progress import ProgressLike
from interpret_core.workflows.run_figures import au_label

if TYPE_CHECKING:  # pragma: no cover
    from interpret_core.api.interfaces import Attribution, Dataset, Model
    from interpret_core.analysis.unit_scan import UnitScan

__all__ = [
    "RunConfig",
    "run",
    "resolve_method",
    "default_out_dir",
    "RESULTS_FILE",
    "SCAN_FILE",
]

RESULTS_FILE = "results.json"
SCAN_FILE = "scan.npz"
RUNS_DIR = "interp-runs"
#: Columns of scores.csv that come first; metric-specific columns follow.
CSV_FIRST = ("layer", "unit", "au", "distance", "p_value", "q_value")


@dataclasses.dataclass
class RunConfig:
    """Everything ``interp run`` needs; the defaults are the CLI's.

    ``method``, ``metric``, ``model`` and ``dataset`` None mean the configured
    defaults (``interp config get KEY``, :func:`interpret_core.registry.defaults.default`);
    ``model`` None with ``weights`` means the model named in the weights' card.
    """

    #: attribution method spec (``NAME`` or ``NAME:key=value,...``)
    method: str | None = None
    #: unit metric name
    metric: str | None = None
    model: str | None = None
    weights: str | None = None
    #: keyword options of the model plugin (``--model-option``)
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: where the model runs (``--device``, :func:`interpret_core.nn.device.resolve_device`)
    device: str = "cpu"
    dataset: str | None = None
    data_root: str | None = None
    #: keyword options of the data set plugin (``--dataset-option``), e.g. {"protocol": "peak"}
    dataset_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    layers: Sequence[str] | None = None
    top_k: int = 9
    limit: int | None = None
    out: str | None = None
    resume: bool = False
    batch_size: int = 64
    metric_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: seeds torch before the model is built, so an untrained model is the same every run
    seed: int = 0
    #: where the scan's shards run (``--executor``/``--workers``/``--scheduler``; None: this process); never changes results
    executor: Any = None


def with_defaults(config: RunConfig) -> RunConfig:
    """``config`` with every unnamed plugin (None) replaced: the model by the weights' card's, the rest by the configured default."""
    from interpret_core.registry.defaults import default
    from interpret_core.workflows.setup import model_name

    names = {key: getattr(config, key) or default(key) for key in ("method", "metric", "dataset")}
    return dataclasses.replace(config, model=model_name(config.model, config.weights), **names)


def resolve_method(spec: str) -> Attribution:
    """The attribution method of a spec (``deconv``, ``captum:NeuronDeconvolution``, ``deconv:max_batch=64``).

    CapabilityError unless it projects units. The check is on the instance:
    whether a method projects units can depend on its options (an adapter's
    options may choose a class that does); the hint lists the methods whose
    class projects units and the ``unit_specs`` the others declare.
    """
    from interpret_core.registry.options import parse_method_spec
    from interpret_core.registry.loader import get_attribution, get_registry

    name, options = parse_method_spec(spec)
    attribution = get_attribution(name, **options)
    if not attribution.supports_units:
        registry = get_registry()
        units: list[str] = []
        for other in registry.names("attribution"):
            cls = registry.get_class("attribution", other)
            units += [other] if cls.supports_units else list(cls.unit_specs)
        raise CapabilityError(
            f"attribution {spec!r} cannot project units (supports_units is False), so it cannot draw feature maps",
            f"use --method with one of: {', '.join(units) or 'none installed'}",
        )
    return attribution


def default_out_dir(method: str, metric: str, base: str | os.PathLike | None = None) -> Path:
    """A new folder ``interp-runs/<UTC timestamp>-<method>-<metric>`` (never an existing one)."""
    root = Path(base) if base is not None else Path.cwd() / RUNS_DIR
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    method, metric = slug(method, unique=False), slug(metric, unique=False)  # a spec may hold ':', '=', ',' and '('
    candidate = root / f"{stamp}-{method}-{metric}"
    suffix = 2
    while candidate.exists():
        candidate = root / f"{stamp}-{method}-{metric}-{suffix}"
        suffix += 1
    return candidate


def _prepare_out(config: RunConfig, claims: contextlib.ExitStack) -> Path:  # config: names resolved (with_defaults)
    """Create and lock the output folder (held until ``claims`` closes, at the end of the run)."""
    if config.out is None:
        out = default_out_dir(config.method, config.metric)
    else:
        out = Path(config.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} exists and is not a folder", "give a new folder name")
    out = claims.enter_context(claim_output_dir(out))
    if (out / RESULTS_FILE).exists() and not config.resume:
        raise UsageError(
            f"--out {out} already holds a finished run ({RESULTS_FILE})",
            "choose a new folder, or pass --resume to recompute it from its cached scan",
        )
    return out


def _versions() -> dict[str, str]:
    import scipy
    import torch

    from interpret_core import __version__

    return {
        "interp": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def run(config: RunConfig, progress: ProgressLike = None, warn: Any = None) -> dict[str, Any]:
    """Run the whole pipeline and write the output folder; returns the results dict.

    ``progress`` is a :class:`~interpret_core.util.progress.Progress`, ``callable(done, total)`` or None;
    ``warn`` a callable taking a message (e.g. why a cached scan is recomputed), or None. The returned dict is what
    ``results.json`` holds, plus ``out`` (the folder). The output folder is
    locked for the whole run (:func:`~interpret_core.util.io.claim_output_dir`).
    """
    with contextlib.ExitStack() as claims:
        return _run(config, progress, claims, warn)


def _run(config: RunConfig, progress: Any, claims: contextlib.ExitStack, warn: Any) -> dict[str, Any]:
    from interpret_core.nn.hooks import resolve_layer
    from interpret_core.registry.loader import get_unit_metric
    from interpret_core.workflows.executors import open_executor
    from interpret_core.workflows.setup import DataChoice, ModelChoice, load_model_and_data, shared_model
    from interpret_core.workflows.sharded_scan import sharded_scanner
    from interpret_core.analysis.sampling import even_indices
    from interpret_core.analysis.unit_scan import cached_scan
    from interpret_core.nn.weights import state_dict_sha256
    from interpret_core.workflows.run_figures import draw_run_figures

    started = time.perf_counter()
    config = with_defaults(config)
    attribution = resolve_method(config.method)
    metric = get_unit_metric(config.metric, **dict(config.metric_options))
    if config.top_k < 1:
        raise UsageError(f"--top-k must be >= 1, got {config.top_k}", "pass e.g. --top-k 9")
    out = _prepare_out(config, claims)  # locked before any work; removed again if nothing gets written
    model_choice = ModelChoice(config.model, config.weights, config.model_options, config.seed, config.device)
    data_choice = DataChoice(config.dataset, config.data_root, config.dataset_options)
    model, dataset = load_model_and_data(model_choice, data_choice)
    layers = list(config.layers) if config.layers else list(model.layers)
    for layer in layers:
        resolve_layer(model.module, layer, model.layers)
    if len(dataset) == 0:
        raise DataError(f"data set {config.dataset!r} has no samples", "check --data-root")
    if metric.needs_aus and not dataset.au_presence()[0]:
        raise DataError(
            f"unit metric {config.metric!r} needs AU annotations, and no sample of data set {config.dataset!r} lists an AU",
            "use a data set with FACS coding (see `interp plugins`)",
        )
    indices = even_indices(len(dataset), config.limit)

    from interpret_core.api.class_names import match_classes

    mismatch = match_classes(model.class_names, dataset.class_names).warning(f"model {model.name!r}", f"data set {dataset.name!r}")
    if mismatch and warn is not None:  # unit analysis needs no labels, so it goes on
        warn(f"{mismatch}; unit scores do not use the classes")
    # cached_scan adds what every scan depends on (weights, data content, code, top-k, batch size)
    meta = {
        "model": config.model,
        "weights_sha256": state_dict_sha256(model.module),
        "model_options": to_jsonable(config.model_options),
        "dataset": config.dataset,
        "data_root": None if config.data_root is None else os.path.abspath(config.data_root),
        "dataset_options": to_jsonable(config.dataset_options),
        "top_k": config.top_k,
    }
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    reasons: list[str] = []

    def stale(reason: str) -> None:
        reasons.append(reason)
        if warn is not None:
            warn(f"{out / SCAN_FILE} is stale, so the scan is recomputed ({reason})")

    with open_executor(config.executor) as executor:
        scan, reused = cached_scan(
            out / SCAN_FILE, model, dataset, layers, indices=indices, meta=meta, resume=config.resume,
            batch_size=config.batch_size, top_k=config.top_k, progress=progress, on_stale=stale,
            scan=sharded_scanner(executor, shared_model(model, model_choice), data_choice),
        )
    reason = reasons[0] if reasons else None
    timings["scan_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = metric.evaluate(model, dataset, layers, scan=scan, method=attribution, progress=progress)
    timings["metric_s"] = time.perf_counter() - t0
    scores = [_score_row(row) for row in result.scores]
    mapping = result.mapping if result.mapping is not None else _best_per_concept(scores, metric.higher_is_better)

    t0 = time.perf_counter()
    figure_set = draw_run_figures(
        model, dataset, scan, scores, mapping, attribution, out,
        value_label=str(result.extra.get("definitions", {}).get("distance_name", "distance")), progress=progress,
    )
    for row in mapping:
        row["figures"] = _row_figures(row, figure_set)
    _remove_other_figures(out, figure_set.files())
    timings["figures_s"] = time.perf_counter() - t0

    results: dict[str, Any] = {
        "method": config.method,
        "metric": config.metric,
        "model": {
            "name": config.model,
            "weights": config.weights,
            "trained": model.card is not None,
            "weights_sha256": meta["weights_sha256"],
            "card": _card_summary(model.card),
            "class_mismatch": mismatch,
        },
        "dataset": {
            "name": config.dataset,
            "data_root": meta["data_root"],
            "options": meta["dataset_options"],
            "au_masks": "ground truth" if dataset.has_au_masks else "landmark regions",
            "images": int(len(scan)),
            "of": int(len(dataset)),
            "limit": config.limit,
        },
        "layers": layers,
        "top_k": config.top_k,
        "seed": config.seed,
        # What one observation of the tests is and how units were selected (a metric that declares them).
        "statistical_unit": result.extra.get("statistical_unit"),
        "selection": result.extra.get("selection"),
        "metric_options": {**to_jsonable(config.metric_options), **metric.options()},
        "definitions": result.extra.get("definitions", {"metric": metric.description}),
        "report": {
            "text": metric.report_text or metric.description,
            "tables": [dataclasses.asdict(table) for table in result.tables],
        },
        "summary": _summary(mapping),
        "au_names": {au_label(au): dataset.au_name(au) for au in sorted({r["au"] for r in scores}, key=str)
                     if str(au).isdigit() and dataset.au_name(au)},
        "figures": figure_set.as_dict(),
        "mapping": mapping,
        "unit_mapping": result.extra.get("unit_mapping", []),
        "layer_mapping": result.extra.get("layer_mapping", []),
        "aus": result.extra.get("aus", []),
        "scores": scores,
        "scan": {"file": SCAN_FILE, "reused": reused, "recomputed_because": reason, "shapes": {layer: list(scan.shapes[layer]) for layer in layers}},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "timings": timings,
    }
    write_outputs(out, results)
    timings["total_s"] = time.perf_counter() - started
    write_json(out / RESULTS_FILE, results)  # last: a results.json means a finished run
    results["out"] = str(out)
    return results


def _remove_other_figures(out: Path, drawn: set[str]) -> None:
    """Remove PNGs in ``out/figures`` this run did not draw (an earlier run's into the same --out, e.g. of AUs
    this one does not test), so the folder holds one run's figures only."""
    for png in (out / "figures").glob("*.png"):
        if f"figures/{png.name}" not in drawn:
            png.unlink(missing_ok=True)


def write_outputs(out: Path, results: dict[str, Any]) -> None:
    """scores.csv, mapping.csv, mapping.md and report.html (atomically)."""
    from interpret_core.render.report import render_html, render_mapping_markdown

    names = results.get("au_names") or {}
    write_text(out / "scores.csv", tidy_csv(results["scores"], CSV_FIRST, names))
    write_text(out / "mapping.csv", mapping_csv(results["mapping"], names))
    write_text(out / "mapping.md", render_mapping_markdown(results))
    write_text(out / "report.html", render_html(results))


#: columns that hold nested values (lists, dicts) and stay in results.json only
_NESTED = ("figures",)


def tidy_csv(rows: list[dict[str, Any]], first: Sequence[str], au_names: dict[str, str] | None = None) -> str:
    """CSV text, one row per observation: ``first`` columns, then every other scalar key in first-seen order.

    Tidy for pandas without options: every AU column holds integers and gets
    an ``AU01``-style label beside it (``au_label``, ``partner_au`` -> ``partner_label``),
    a missing value is an empty cell, booleans are ``True``/``False``, nested
    values (lists, dicts) stay in results.json. An integer column with missing
    values is written as its label column only, so no integer column turns float.
    """
    names = au_names or {}
    prepared = []
    for row in rows:
        out = {key: value for key, value in row.items() if key not in _NESTED and not isinstance(value, (list, dict))}
        out["au_label"] = au_label(row["au"])
        out["au_name"] = names.get(out["au_label"], "")
        prepared.append(out)
    # an AU-valued column with gaps (e.g. no partner AU) becomes its label column alone
    for key in [k for k in prepared[0] if k.endswith("_au")] if prepared else []:
        if any(row.get(key) is None for row in prepared):
            for row in prepared:
                value = row.pop(key, None)
                row[key[:-3] + "_label"] = "" if value is None else au_label(value)
    columns = [c for c in first if any(c in row for row in prepared)]
    for row in prepared:
        for key in row:
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in prepared:
        writer.writerow({key: ("" if row.get(key) is None else row.get(key)) for key in columns})
    return buffer.getvalue()


#: Columns of mapping.csv that come first (one row per AU).
MAPPING_FIRST = ("au", "au_label", "au_name", "verdict", "layer", "unit", "statistical_unit", "selected_on", "delta", "q_value",
                 "spatial_agreement", "chance", "null_agreement", "n_with", "n_without")


def mapping_csv(mapping: list[dict[str, Any]], au_names: dict[str, str] | None = None) -> str:
    """mapping.csv text: one row per mapping row, the verdict first; nested fields (stability, oracle) flattened."""
    flat_rows = []
    for row in mapping:
        flat: dict[str, Any] = {}
        for key, value in row.items():
            if key == "figures":
                continue
            if isinstance(value, dict):
                for inner, item in value.items():
                    flat[f"{key}_{inner}"] = " ".join(map(str, item)) if isinstance(item, list) else item
            elif isinstance(value, list):
                flat[key] = " ".join(f"{v['layer']}/{v['unit']}" if isinstance(v, dict) and "unit" in v else str(v) for v in value)
            else:
                flat[key] = value
        flat_rows.append(flat)
    return tidy_csv(flat_rows, MAPPING_FIRST, au_names)


def _score_row(row: dict[str, Any]) -> dict[str, Any]:
    """Normalise a metric's row to the results schema (``au``/``distance`` present)."""
    out = dict(row)
    score = out.pop("score", None)
    out.setdefault("distance", score)
    concept = out.pop("concept", None)
    if "au" not in out:
        concept = str(concept or "")
        out["au"] = int(concept[2:]) if concept.upper().startswith("AU") and concept[2:].isdigit() else concept
    out.setdefault("p_value", None)
    out.setdefault("q_value", None)
    return out


def _best_per_concept(scores: list[dict[str, Any]], higher_is_better: bool) -> list[dict[str, Any]]:
    best: dict[Any, dict[str, Any]] = {}
    for row in scores:
        value = row.get("distance")
        if value is None:
            continue
        current = best.get(row["au"])
        if current is None or (value > current["distance"] if higher_is_better else value < current["distance"]):
            best[row["au"]] = row
    return [
        {"au": au, "layer": r["layer"], "unit": r["unit"], "distance": r["distance"], "q_value": r.get("q_value"),
         "spatial_agreement": None, "chance": None}
        for au, r in best.items()
    ]


def _card_summary(card: dict[str, Any] | None) -> dict[str, Any] | None:
    if not card:
        return None
    keep = ("created", "training", "metrics", "dataset", "seed", "weights")
    return {key: card[key] for key in keep if key in card}


def _summary(mapping: list[dict[str, Any]]) -> dict[str, Any]:
    primary = [row for row in mapping if row.get("rank", 0) == 0]
    agreements = [row for row in primary if row.get("spatial_agreement") is not None]
    verdicts = {name: sum(1 for row in primary if row.get("verdict") == name)
                for name in ("localised", "elsewhere", "none", "untestable")}
    localised = [row for row in agreements if row.get("verdict") == "localised"]
    return {
        "verdicts": verdicts if any("verdict" in row for row in primary) else None,
        "mean_agreement_localised": float(np.mean([r["spatial_agreement"] for r in localised])) if localised else None,
        "aus_mapped": sum(1 for row in primary if row.get("layer") is not None),
        "significant": sum(1 for row in primary if row.get("significant")),
        "mean_spatial_agreement": float(np.mean([r["spatial_agreement"] for r in agreements])) if agreements else None,
        "mean_chance": float(np.mean([r["chance"] for r in agreements])) if agreements else None,
        "above_chance": sum(1 for r in agreements if r["spatial_agreement"] > r["chance"]),
        "with_agreement": len(agreements),
    }


# -- figures -------------------------------------------------------------------
def _row_figures(row: dict[str, Any], figure_set: Any) -> list[str]:
    """The files that show a mapping row: its AU's figure and where its unit fires."""
    panel = figure_set.per_au.get(au_label(row["au"]))
    files = [panel.file] if panel is not None and (panel.layer, panel.unit) == (row["layer"], int(row["unit"])) else []
    density = figure_set.densities.get(f"{row['layer']}/{row['unit']}")
    return files + ([density] if density else [])
