"""``interp train``: subject-independent k-fold cross-validation, then the final model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from .output import emit, info


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
    model: str = typer.Option("fer-cnn", "--model", help="Model plugin to train (see `interp models`)."),
    dataset: str = typer.Option(..., "--dataset", help="Dataset plugin: synthfacs or ckplus."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="The data set's folder (synthfacs: default set in the cache if omitted)."),
    dataset_option: list[str] = typer.Option([], "--dataset-option", help="KEY=VALUE option for the dataset plugin (repeatable), e.g. include_neutral=false for 7 classes."),
    subjects: Optional[int] = typer.Option(None, "--subjects", help="Use only the first N subjects (sorted ids), for quick runs."),
    folds: int = typer.Option(10, "--folds", help="k of subject-independent k-fold cross-validation."),
    epochs: int = typer.Option(12, "--epochs", help="Maximum epochs per fold (early stopping on the inner validation split)."),
    patience: int = typer.Option(4, "--patience", help="Stop after this many epochs without a better validation score."),
    seed: int = typer.Option(0, "--seed", help="Seeds folds, splits, initialisation, dropout, shuffling and augmentation."),
    batch_size: int = typer.Option(32, "--batch-size", help="Images per optimiser step."),
    lr: float = typer.Option(3e-3, "--lr", help="Adam learning rate."),
    weight_decay: float = typer.Option(1e-4, "--weight-decay", help="Adam weight decay."),
    val_fraction: float = typer.Option(0.15, "--val-fraction", help="Share of each fold's training subjects held out for early stopping."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Light augmentation (rotation, shift, scale, brightness, flips)."),
    cosine: bool = typer.Option(True, "--cosine/--constant-lr", help="Cosine learning-rate decay over --epochs, or a constant rate."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads per fold; part of the recipe (results depend on it bit-wise)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="Folds trained at once in worker processes [default: min(2, CPUs)]; never changes results."),
    out: Path = typer.Option(..., "--out", help="Output folder: metrics.json, folds/, model.safetensors, model.json."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out from its finished folds."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard earlier results in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train a model with subject-independent k-fold cross-validation, then the final model on all subjects."""
    from interpret_core.workflows.training import TrainConfig, train

    if resume and overwrite:
        from interpret_core.api.errors import UsageError

        raise UsageError("--resume and --overwrite contradict each other", "pass one of them")
    from interpret_core.registry.options import parse_options

    dataset_options = parse_options(dataset_option, "--dataset-option", "include_neutral=false")
    config = TrainConfig(
        model=model,
        dataset=dataset,
        data_root=None if data_root is None else str(data_root),
        dataset_options=dataset_options,
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
    )

    def report(event: str, details: dict[str, Any]) -> None:
        if event == "fold_end":
            info(f"fold {details['fold']}: accuracy {details['accuracy']:.3f} (best epoch {details['best_epoch']})")
        elif event == "final_start":
            info(f"final model: {details['epochs']} epochs on all subjects")

    argv = sys.argv[1:] if Path(sys.argv[0]).name in ("interp", "interp.exe") else None
    if jobs is None:
        import os

        jobs = min(2, os.cpu_count() or 1)
    if jobs < 1:
        from interpret_core.api.errors import UsageError

        raise UsageError("--jobs must be at least 1", "e.g. --jobs 2")
    result = train(config, out, resume=resume, overwrite=overwrite, callback=report, argv=argv, jobs=jobs)
    metrics = result.metrics
    summary = {
        "model": model,
        "dataset": dataset,
        "out": str(result.out),
        "mean_accuracy": metrics["mean_accuracy"],
        "std_accuracy": metrics["std_accuracy"],
        "pooled_accuracy": metrics["pooled_accuracy"],
        "folds": [
            {k: f[k] for k in ("fold", "accuracy", "balanced_accuracy", "best_epoch", "n_test", "test_subjects")}
            for f in metrics["folds"]
        ],
        "resumed_folds": result.resumed_folds,
        "final_epochs": metrics["final_model"]["epochs"],
        "metrics": str(result.metrics_path),
        "weights": str(result.weights_path),
        "card": str(result.card_path),
        "seconds": round(result.seconds, 2),
    }
    emit(summary, as_json, _render)


def register(app: typer.Typer) -> None:
    """Add ``interp train`` to ``app``."""
    app.command("train")(train_command)
