"""The one "load the model and the data set" step of run, bench, visualize and train.

Every command that builds a model or opens a data set goes through here, so
the same flags mean the same thing and the same mistake gives the same error
(a usage error, exit code 2, naming the flag) everywhere:

- ``--weights FILE`` alone is enough: the model's name is read from the card
  beside the weights (:func:`model_name`); ``--model`` is then optional, and
  a ``--model`` that disagrees with the card is refused by the weights loader.
- ``--model-option KEY=VALUE`` goes to the model plugin, ``--dataset-option``
  to the data set plugin.
- a ``--weights`` or ``--data-root`` that does not exist is a usage error.
- ``--device`` (default ``cpu``) is checked here, before anything loads, and
  the model is moved there; the workflows' tensors follow ``model.device``.
- ``--executor``, ``--workers`` and ``--scheduler`` become one
  :class:`~interpret_core.workflows.executors.ExecutorChoice`
  (:func:`executor_from_flags`); a workflow opens it with
  :func:`~interpret_core.workflows.executors.open_executor`, and a worker
  loads the command's model with :func:`load_shared_model`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interpret_core.api.errors import UsageError
from interpret_core.registry.defaults import default

if TYPE_CHECKING:  # pragma: no cover
    from interpret_core.api.interfaces import Dataset, Model
    from interpret_core.workflows.executors import ExecutorChoice

@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """A model as the command line names it: ``--model``, ``--weights``, ``--model-option``, ``--seed``.

    ``name`` None: the model named by the weights' card, else the default.
    ``seed`` initialises a model that gets no trained weights; ``device`` is a
    ``--device`` spec (:func:`interpret_core.nn.device.resolve_device`).
    """

    name: str | None = None
    weights: str | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"


@dataclasses.dataclass(frozen=True)
class DataChoice:
    """A data set as the command line names it: ``--dataset``, ``--data-root``, ``--dataset-option``."""

    name: str | None = None
    data_root: str | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


def model_name(name: str | None, weights: str | os.PathLike | None) -> str:
    """``name``, else the model named in the card beside ``weights``, else the default model."""
    if name:
        return name
    if weights is not None:
        from interpret_core.nn.weights import card_model_name

        check_weights(weights)
        return card_model_name(weights)
    return default("model")


def check_weights(weights: str | os.PathLike | None) -> None:
    """UsageError if ``--weights`` names no file."""
    if weights is not None and not Path(weights).is_file():
        raise UsageError(
            f"--weights {weights}: no such file",
            "give a .safetensors file with its model card beside it, e.g. model.safetensors from `interp train`",
        )


def check_data_root(data_root: str | os.PathLike | None, dataset: str) -> None:
    """UsageError if ``--data-root`` names nothing on disk (what belongs inside is the plugin's to check)."""
    if data_root is not None and not Path(data_root).expanduser().exists():
        raise UsageError(
            f"--data-root {data_root}: no such folder",
            f"give the root folder of your {dataset} copy; `interp data inspect --dataset {dataset} --data-root DIR` checks one",
        )


def load_model(choice: ModelChoice) -> Model:
    """Build the model of ``choice``, load its weights (or the shipped ones), eval mode."""
    from interpret_core.registry.loader import get_model

    check_weights(choice.weights)
    name = model_name(choice.name, choice.weights)
    return get_model(name, weights=choice.weights, seed=choice.seed, device=choice.device, **dict(choice.options))


def load_dataset(choice: DataChoice) -> Dataset:
    """Open the data set of ``choice`` (``data_root`` None: the plugin's default set)."""
    from interpret_core.registry.loader import open_dataset

    name = choice.name or default("dataset")
    check_data_root(choice.data_root, name)
    return open_dataset(name, choice.data_root, dict(choice.options))


def load_model_and_data(model: ModelChoice, data: DataChoice) -> tuple[Model, Dataset]:
    """The model and the data set of one command, checked in the order a user reads the flags."""
    check_weights(model.weights)
    check_data_root(data.data_root, data.name or default("dataset"))
    return load_model(model), load_dataset(data)


def choices_from_flags(
    *,
    model: str | None = None,
    weights: str | os.PathLike | None = None,
    model_option: Iterable[str] = (),
    seed: int = 0,
    device: str = "cpu",
    dataset: str | None = None,
    data_root: str | os.PathLike | None = None,
    dataset_option: Iterable[str] = (),
) -> tuple[ModelChoice, DataChoice]:
    """The model and data choices of the shared flags as typed: KEY=VALUE options parsed,
    names resolved (the model from ``--weights``' card, else the default; the default data set),
    ``--device`` resolved on this machine (``auto`` becomes e.g. ``cuda:0``)."""
    from interpret_core.nn.device import resolve_device
    from interpret_core.registry.options import parse_options

    resolved = str(resolve_device(device))  # a device this machine lacks fails before anything loads

    return (
        ModelChoice(
            name=model_name(model, weights),
            weights=None if weights is None else os.fspath(weights),
            options=parse_options(list(model_option), where="--model-option", example="class_names=\"['a','b']\""),
            seed=seed,
            device=resolved,
        ),
        DataChoice(
            name=dataset or default("dataset"),
            data_root=None if data_root is None else os.fspath(data_root),
            options=parse_options(list(dataset_option), where="--dataset-option", example="include_neutral=false"),
        ),
    )


def executor_from_flags(executor: str = "local", workers: int | None = None, scheduler: str | None = None) -> ExecutorChoice:
    """``--executor``, ``--workers`` and ``--scheduler`` as one choice, checked (a contradiction is a usage error)."""
    from interpret_core.workflows.executors import ExecutorChoice

    choice = ExecutorChoice(kind=executor, workers=workers, scheduler=scheduler)
    choice.validate()
    return choice


# -- the model on a worker -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SharedModel:
    """What a worker needs to load the command's model itself: its choice and the weights' sha256.

    The weights travel as a path (``choice.weights``, or the plugin's shipped
    file), not as tensors: every worker loads them once and checks that the
    state dict's sha256 is the one the command loaded, so a worker that sees
    another file (another machine, another interp version) fails loudly
    instead of scoring another network.
    """

    choice: ModelChoice
    sha256: str


_WORKER_MODELS: dict[str, Model] = {}


def shared_model(model: Model, choice: ModelChoice) -> SharedModel:
    """The :class:`SharedModel` of ``model``, loaded from ``choice`` in this process."""
    from interpret_core.nn.weights import state_dict_sha256

    return SharedModel(choice, state_dict_sha256(model.module))


def load_shared_model(shared: SharedModel) -> Model:
    """The model of ``shared``, loaded once per worker process; WeightsError if its weights differ."""
    from interpret_core.api.errors import WeightsError
    from interpret_core.nn.weights import state_dict_sha256

    key = f"{shared.sha256}:{shared.choice!r}"
    model = _WORKER_MODELS.get(key)
    if model is None:
        model = load_model(shared.choice)
        found = state_dict_sha256(model.module)
        if found != shared.sha256:
            raise WeightsError(
                f"a worker loaded other weights for model {shared.choice.name!r} "
                f"(sha256 {found[:12]}..., the command's {shared.sha256[:12]}...) from {shared.choice.weights or 'the shipped file'}",
                "workers must see the same --weights file and the same interp version as the command",
            )
        _WORKER_MODELS.clear()  # one model per worker process at a time
        _WORKER_MODELS[key] = model
    return model


_WORKER_DATASETS: dict[str, Dataset] = {}


def load_shared_dataset(choice: DataChoice) -> Dataset:
    """The data set of ``choice``, opened once per worker process (workers get its root, never its images)."""
    key = repr(choice)
    dataset = _WORKER_DATASETS.get(key)
    if dataset is None:
        dataset = load_dataset(choice)
        _WORKER_DATASETS.clear()
        _WORKER_DATASETS[key] = dataset
    return dataset
