"""``interp train``: subject-independent k-fold cross-validation, then the final model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from . import params
from .output import emit, info, warn


def _render(summary: dict[str, Any]):
    from rich.table import Table

    table = Table(title=f"interp train: {summary['model']} on {summary['dataset']}", title_justify="left")
    for column in ("fold", "accuracy", "balanced", "best epoch", "test subjects", "n test"):
        table.add_column(column, justify="right" if column != "test subjects" else "left", overflow="fold")
    for fold in summary["folds"]:
        table.add_row(
            str(fold["fold"]),
            "-" if fold["accuracy"] is None else f"{fold['accuracy']:.3f}",
            "-" if fold["balanced_accuracy"] is None else f"{fold['balanced_accuracy']:.3f}",
            str(fold["best_epoch"]),
            ", ".join(fold["test_subjects"]),
            str(fold["n_test"]),
        )
    table.caption = (
        f"mean accuracy {summary['mean_accuracy']:.4f} +- {summary['std_accuracy']:.4f} (std over folds, ddof=1); "
        f"final model: {summary['final_epochs']} epochs on all subjects -> {summary['weights']}"
    )
    return table


def train_command(
    model: params.ModelName = None,
    model_option: params.ModelOption = [],
    device: params.Device = "cpu",
    dataset: params.DatasetName = ...,
    data_root: params.DataRoot = None,
    dataset_option: params.DatasetOption = [],
    subjects: params.Subjects = None,
    folds: int = typer.Option(10, "--folds", help="k of subject-independent k-fold cross-validation."),
    epochs: int = typer.Option(12, "--epochs", help="Maximum epochs per fold (early stopping on the inner validation split)."),
    patience: int = typer.Option(4, "--patience", help="Stop after this many epochs without a better validation score."),
    seed: params.Seed = 0,
    batch_size: params.BatchSize = 32,
    lr: float = typer.Option(3e-3, "--lr", help="Adam learning rate."),
    weight_decay: float = typer.Option(1e-4, "--weight-decay", help="Adam weight decay."),
    val_fraction: float = typer.Option(0.15, "--val-fraction", help="Share of each fold's training subjects held out for early stopping."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Light augmentation (rotation, shift, scale, brightness, flips)."),
    cosine: bool = typer.Option(True, "--cosine/--constant-lr", help="Cosine learning-rate decay over --epochs, or a constant rate."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads per fold; part of the recipe (results depend on it bit-wise)."),
    executor: params.Executor = "local",
    workers: params.Workers = None,
    scheduler: params.Scheduler = None,
    jobs: params.LegacyJobs = None,
    out: params.Out = ...,
    resume: params.Resume = False,
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard earlier results in --out."),
    as_json: params.Json = False,
) -> None:
    """Train a model with subject-independent k-fold cross-validation, then the final model on all subjects.

    --subjects N uses only the first N subjects (sorted ids), for quick runs;
    --seed seeds folds, splits, initialisation, dropout, shuffling and
    augmentation; --out receives metrics.json, folds/, model.safetensors and
    model.json, and --resume continues from its finished folds. Folds train
    in parallel: --workers N local processes (default min(2, CPUs)), or Dask
    tasks with --executor dask (--workers N or --scheduler ADDRESS); the
    weights are the same byte for byte.
    """
    from interpret_core.workflows.training import TrainConfig, train

    if resume and overwrite:
        from interpret_core.api.errors import UsageError

        raise UsageError("--resume and --overwrite contradict each other", "pass one of them")
    from interpret_core.workflows.setup import check_data_root, choices_from_flags, executor_from_flags

    model_choice, data_choice = choices_from_flags(
        model=model, model_option=model_option, device=device, dataset=dataset, data_root=data_root, dataset_option=dataset_option,
    )
    check_data_root(data_choice.data_root, data_choice.name)
    if "class_names" in model_choice.options:
        from interpret_core.api.errors import UsageError

        raise UsageError("--model-option class_names: interp train takes the class names from the data set",
                         "drop it, or choose the classes with --dataset-option (e.g. include_neutral=false)")
    config = TrainConfig(
        model=model_choice.name,
        model_options=model_choice.options,
        dataset=data_choice.name,
        data_root=data_choice.data_root,
        dataset_options=data_choice.options,
        subjects=subjects,
        folds=folds,
        epochs=epochs,
        patience=patience,
        seed=seed,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        val_fraction=val_fraction,
        augment=augment,
        cosine=cosine,
        threads=threads,
        device=model_choice.device,
    )

    stale_folds: list[dict[str, Any]] = []

    def report(event: str, details: dict[str, Any]) -> None:
        if event == "fold_stale":
            stale_folds.append({"fold": details["fold"], "reason": details["reason"]})
            warn(f"{details['file']} is stale, so fold {details['fold']} is retrained ({details['reason']})")
        elif event == "fold_end":
            info(f"fold {details['fold']}: accuracy {details['accuracy']:.3f} (best epoch {details['best_epoch']})")
        elif event == "final_start":
            info(f"final model: {details['epochs']} epochs on all subjects")

    argv = sys.argv[1:] if Path(sys.argv[0]).name in ("interp", "interp.exe") else None
    if jobs is not None:
        if workers is not None:
            from interpret_core.api.errors import UsageError

            raise UsageError("--jobs and --workers say the same thing", "pass --workers N only")
        workers = jobs
    if workers is None and executor == "local":
        import os

        workers = min(2, os.cpu_count() or 1)  # these nets train fastest as folds in parallel, one thread each
    executor_choice = executor_from_flags(executor, workers, scheduler)
    result = train(config, out, resume=resume, overwrite=overwrite, callback=report, argv=argv, executor=executor_choice)
    metrics = result.metrics
    summary = {
        "model": model_choice.name,  # resolved: the default model when --model is not given
        "dataset": data_choice.name,
        "out": str(result.out),
        "mean_accuracy": metrics["mean_accuracy"],
        "std_accuracy": metrics["std_accuracy"],
        "pooled_accuracy": metrics["pooled_accuracy"],
        "folds": [
            {k: f[k] for k in ("fold", "accuracy", "balanced_accuracy", "best_epoch", "n_test", "test_subjects")}
            for f in metrics["folds"]
        ],
        "resumed_folds": result.resumed_folds,
        "stale_folds": stale_folds,
        "final_epochs": metrics["final_model"]["epochs"],
        "metrics": str(result.metrics_path),
        "weights": str(result.weights_path),
        "card": str(result.card_path),
        "seconds": round(result.seconds, 2),
    }
    emit(summary, as_json, _render)


def register(app: typer.Typer) -> None:
    """Add ``interp train`` to ``app``."""
    from .plugin_commands import add_command

    add_command(app, "train", train_command)
