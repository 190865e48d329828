"""interp: open up facial-expression CNNs.

The core holds the abstract interfaces (:class:`Dataset`, :class:`Model`,
:class:`Attribution`, :class:`UnitMetric`, :class:`AttributionMetric`), the
pluggy hook specifications and the plugin registry. Everything concrete is a
plugin registered through the ``interp`` entry-point group.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

from interpret_core.api.errors import (
    CapabilityError,
    DataError,
    InterpError,
    PluginError,
    UnknownNameError,
    UsageError,
    WeightsError,
)
from interpret_core.registry.hookspecs import hookimpl
from interpret_core.api.interfaces import (
    AUInfo,
    Attribution,
    AttributionMetric,
    Dataset,
    MetricResult,
    Model,
    ReportTable,
    Sample,
    UnitMetric,
    UnitMetricResult,
)
from interpret_core.analysis.splits import Fold
from interpret_core.registry.loader import (
    get_attribution,
    get_attribution_metric,
    get_dataset,
    get_model,
    get_registry,
    get_unit_metric,
    plugins,
    reset_registry,
)

try:
    __version__ = _version("interp")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "AUInfo",
    "Attribution",
    "AttributionMetric",
    "CapabilityError",
    "DataError",
    "Dataset",
    "Fold",
    "InterpError",
    "MetricResult",
    "Model",
    "PluginError",
    "ReportTable",
    "Sample",
    "UnitMetric",
    "UnitMetricResult",
    "UnknownNameError",
    "UsageError",
    "WeightsError",
    "__version__",
    "get_attribution",
    "get_attribution_metric",
    "get_dataset",
    "get_model",
    "get_registry",
    "get_unit_metric",
    "hookimpl",
    "plugins",
    "reset_registry",
]
