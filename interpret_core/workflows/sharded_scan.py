"""The unit scan sharded over an executor's workers (``interp run --executor dask``).

The images to scan are cut into consecutive shards of whole batches
(:func:`~interpret_core.analysis.unit_scan.scan_shards`). Each worker loads
the model from its weights file once (checked by sha256,
:func:`~interpret_core.workflows.setup.load_shared_model`), opens the data
set from its root once, and scans the sample indices of its shards; the
shards come back as small per-image maxima and top-k lists and are merged
(:func:`~interpret_core.analysis.unit_scan.merge_scans`) into exactly the
arrays of a scan in one process. Only indices go out, never images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from interpret_core.util.progress import ProgressLike, start_task

if TYPE_CHECKING:  # pragma: no cover
    from interpret_core.analysis.unit_scan import UnitScan
    from interpret_core.api.interfaces import Dataset, Model
    from interpret_core.workflows.executors import Executor
    from interpret_core.workflows.setup import DataChoice, SharedModel

#: Shards per worker: enough to even out slow and fast workers, few enough that each is many batches.
SHARDS_PER_WORKER = 4


def _scan_shard(indices: np.ndarray, model: SharedModel, data: DataChoice, layers: list[str], batch_size: int, top_k: int) -> UnitScan:
    from interpret_core.analysis.unit_scan import scan_units
    from interpret_core.workflows.setup import load_shared_dataset, load_shared_model

    return scan_units(load_shared_model(model), load_shared_dataset(data), layers, batch_size=batch_size, top_k=top_k, indices=indices)


def sharded_scanner(executor: Executor, model: SharedModel, data: DataChoice) -> Callable[..., UnitScan]:
    """A drop-in for :func:`~interpret_core.analysis.unit_scan.scan_units` (the ``scan`` of ``cached_scan``) on ``executor``."""

    def scan(
        local_model: Model, dataset: Dataset, layers: Sequence[str], *, batch_size: int, top_k: int,
        indices: np.ndarray, progress: ProgressLike = None,
    ) -> UnitScan:
        from interpret_core.analysis.unit_scan import merge_scans, scan_shards, scan_units

        if executor.in_process:
            return scan_units(local_model, dataset, layers, batch_size=batch_size, top_k=top_k, indices=indices, progress=progress)
        shards = scan_shards(indices, batch_size, executor.workers * SHARDS_PER_WORKER)
        task = start_task(progress, "scanning units", len(indices))
        handle = executor.share(model)
        parts: dict[int, Any] = {}
        for position, part in executor.map(
            _scan_shard, shards, shared=(handle, data, list(layers), batch_size, top_k), name="scan shard"
        ):
            parts[position] = part
            task.advance(len(part))
        task.close()
        return merge_scans([parts[i] for i in range(len(shards))], top_k)

    return scan
