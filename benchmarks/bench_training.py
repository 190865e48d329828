"""Training throughput, and the wall time of training the shipped default model.

Rows (see benchmarks/README convention):

* ``train step <model>``: our full training step (augmentation + forward +
  class-weighted loss + backward + Adam step) against a plain step on the same
  batch (forward + loss + backward + Adam step, no augmentation), both with 1
  torch thread (what each training worker uses). ``ratio = baseline_s / ours_s`` (1.0 = augmentation is free;
  below 1 = our step is slower by that factor). ``notes`` gives images/s.
* ``default model (10-fold CV + final)`` (full run only): wall time of
  ``interp train --model fer-cnn --dataset synthfacs --folds 10 --seed 0`` on
  the default SynthFACS set (2 fold workers x 1 thread, the CLI default on 2
  cores); baseline = the 300 s target, ratio = 300 / ours.

Run alone: ``python benchmarks/bench_training.py [--quick]``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _time_interleaved(steps: dict, repeats: int) -> dict[str, float]:
    """Median seconds per call of each step, calls interleaved (A B A B ...) so
    that load from other processes hits every step alike."""
    for step in steps.values():  # warm-up (allocations, oneDNN primitive creation)
        step()
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            step()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    result = {name: statistics.median(values) for name, values in times.items()}
    # CPU seconds of this process: less disturbed by other jobs on a shared machine.
    result.update({f"{name}_cpu": statistics.median(values) for name, values in cpu.items()})
    return result


def _step_rows(quick: bool) -> list[dict]:
    import torch
    import torch.nn.functional as F

    import interpret_core
    from interpret_core.workflows.training import augment_batch, class_weights

    rows = []
    batch = 32
    repeats = 5 if quick else 30
    for name in ("fer-cnn", "fer-resnet"):
        cls = interpret_core.get_registry().get_class("model", name)
        torch.manual_seed(0)
        model = cls()
        module = model.module.train()
        images = torch.rand(batch, 1, 64, 64)
        labels = torch.randint(0, len(model.class_names), (batch,))
        weight = torch.from_numpy(class_weights(labels.numpy(), len(model.class_names)))
        optimiser = torch.optim.Adam(module.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)

        def ours() -> None:
            loss = F.cross_entropy(module(augment_batch(images, generator)), labels, weight=weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()

        def plain() -> None:
            loss = F.cross_entropy(module(images), labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()

        timed = _time_interleaved({"ours": ours, "plain": plain, "augment": lambda: augment_batch(images, generator)}, repeats)
        ours_s, baseline_s, augment_s = timed["ours"], timed["plain"], timed["augment"]
        rows.append(
            {
                "area": "training",
                "case": f"train step {name} (batch {batch}, 1 thread)",
                "ours_s": ours_s,
                "baseline": "plain forward+backward+Adam step, no augmentation",
                "baseline_s": baseline_s,
                "ratio": baseline_s / ours_s,
                "peak_mb": None,
                "notes": f"wall: ours {batch / ours_s:.0f} img/s, plain {batch / baseline_s:.0f} img/s; "
                f"CPU time: ours {batch / timed['ours_cpu']:.0f} img/s, plain {batch / timed['plain_cpu']:.0f} img/s; "
                f"augmentation alone {augment_s * 1e3:.2f} ms/batch",
            }
        )
    return rows


def _default_training_row() -> dict:
    import resource

    from interpret_core.workflows.training import TrainConfig, train

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = train(TrainConfig(model="fer-cnn", dataset="synthfacs", folds=10, seed=0), out, jobs=2)
        wall = time.perf_counter() - started
        # Reproducibility: the shipped default weights were made by this very recipe.
        from interpret_core.nn.weights import default_weights_path, read_card

        trained_sha = read_card(Path(out) / "model.safetensors")["weights"]["sha256"]
        shipped_sha = read_card(default_weights_path("interp_models:weights/fer-cnn.safetensors"))["weights"]["sha256"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics = result.metrics
    epochs = sum(f["epochs_run"] for f in metrics["folds"]) + metrics["final_model"]["epochs"]
    return {
        "area": "training",
        "case": "default model: fer-cnn, default SynthFACS, 10-fold CV + final (2 jobs x 1 thread)",
        "ours_s": wall,
        "baseline": "target 300 s",
        "baseline_s": 300.0,
        "ratio": 300.0 / wall,
        "peak_mb": peak_mb,
        "notes": f"{metrics['dataset']['samples']} crops, {epochs} epochs in all, "
        f"accuracy {metrics['mean_accuracy']:.3f} +- {metrics['std_accuracy']:.3f}; "
        f"weights {'identical to' if trained_sha == shipped_sha else 'DIFFER from'} the shipped fer-cnn",
    }


def run(quick: bool = False) -> list[dict]:
    """Benchmark rows; ``quick`` skips the full default training and repeats less."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = _step_rows(quick)
        if not quick:
            rows.append(_default_training_row())
    finally:
        torch.set_num_threads(threads)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(json.dumps(row))
