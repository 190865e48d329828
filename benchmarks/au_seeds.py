"""How the default AU -> unit answer moves with the model: several training seeds and an untrained control.

For each model, the default ``au-distance`` metric (sequence observations,
5-fold held-out selection, projection peaks with deconvnet, bootstrap) on the
default SynthFACS set, exactly as ``interp run --method deconv --metric
au-distance`` computes it (without figures). One JSON line per model:
verdict counts, mean held-out agreement / dilated chance / shuffled-mask
null over the AUs that have one, mean bootstrap selection frequency, and the
per-AU verdicts; then one line summarising the trained models (mean and
sample standard deviation over seeds).

Models: the shipped ``fer-cnn`` (training seed 0), every ``model.safetensors``
given as ``--weights PATH`` (e.g. from ``interp train --model fer-cnn
--dataset synthfacs --folds 10 --seed N --out /tmp/seedN``, the shipped
recipe with another seed) and, with ``--untrained``, a randomly initialised
``fer-cnn`` (seed 0). Run: ``python benchmarks/au_seeds.py --weights
/tmp/seed1/model.safetensors --weights /tmp/seed2/model.safetensors --untrained``.
docs/metrics.md reports its output.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def evaluate(model, dataset, label: str) -> dict:
    from interpret_core import get_attribution
    from interpret_core.analysis.unit_scan import scan_units
    from interp_metrics.au_distance import AUDistance

    started = time.perf_counter()
    scan = scan_units(model, dataset, model.layers)
    result = AUDistance().evaluate(model, dataset, model.layers, scan, method=get_attribution("deconv"))
    rows = [row for row in result.mapping if row.get("rank", 0) == 0]
    counts = {name: sum(row["verdict"] == name for row in rows) for name in ("localised", "elsewhere", "none", "untestable")}
    located = [row for row in rows if row.get("spatial_agreement") is not None]
    stable = [row["stability"]["selection_frequency"] for row in rows
              if row.get("stability") and row["stability"].get("selection_frequency") is not None]

    def mean(key: str) -> float | None:
        values = [row[key] for row in located if row.get(key) is not None]
        return float(np.mean(values)) if values else None

    return {
        "model": label,
        "trained": model.card is not None,
        "verdicts": counts,
        "mean_heldout_agreement": mean("spatial_agreement"),
        "mean_chance": mean("chance"),
        "mean_null_agreement": mean("null_agreement"),
        "mean_oracle_agreement": mean("oracle_agreement"),
        "mean_selection_frequency": float(np.mean(stable)) if stable else None,
        "localised_at_or_below_chance": sum(
            row["verdict"] == "localised" and row["spatial_agreement"] <= row["chance"] for row in located
        ),
        "per_au": {f"AU{row['au']}": row["verdict"] for row in rows},
        "seconds": time.perf_counter() - started,
    }


def summarise(results: list[dict]) -> dict:
    trained = [r for r in results if r["trained"]]

    def spread(values):
        values = [v for v in values if v is not None]
        if not values:
            return None
        return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                "min": float(np.min(values)), "max": float(np.max(values))}

    return {
        "summary": f"{len(trained)} trained models",
        "localised": spread([r["verdicts"]["localised"] for r in trained]),
        "elsewhere": spread([r["verdicts"]["elsewhere"] for r in trained]),
        "none": spread([r["verdicts"]["none"] for r in trained]),
        "untestable": spread([r["verdicts"]["untestable"] for r in trained]),
        "mean_heldout_agreement": spread([r["mean_heldout_agreement"] for r in trained]),
        "mean_chance": spread([r["mean_chance"] for r in trained]),
        "mean_null_agreement": spread([r["mean_null_agreement"] for r in trained]),
        "mean_selection_frequency": spread([r["mean_selection_frequency"] for r in trained]),
    }


def main(argv: list[str]) -> list[dict]:
    import torch

    from interpret_core import get_dataset, get_model

    torch.set_num_threads(2)
    weights = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--weights"]
    dataset = get_dataset("synthfacs")
    results = [evaluate(get_model("fer-cnn"), dataset, "shipped fer-cnn (seed 0)")]
    print(json.dumps(results[-1]), flush=True)
    for path in weights:
        results.append(evaluate(get_model("fer-cnn", weights=path), dataset, path))
        print(json.dumps(results[-1]), flush=True)
    if "--untrained" in argv:
        from interpret_core.registry.loader import get_registry

        torch.manual_seed(0)
        untrained = get_registry().get_class("model", "fer-cnn")()
        untrained.module.eval()
        results.append(evaluate(untrained, dataset, "untrained fer-cnn (seed 0)"))
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps(summarise(results)), flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
