"""The example plugin in docs/example-plugin is installed with pip and exercised."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from interpret_core.registry.loader import ENTRY_POINT_GROUP, Registry

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "example-plugin"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """pip-install the example plugin into a private folder, as a user would into site-packages."""
    target = tmp_path_factory.mktemp("example-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return target


def _registry_with(site: Path, monkeypatch) -> Registry:
    monkeypatch.syspath_prepend(str(site))
    eps = [ep for dist in importlib.metadata.distributions(path=[str(site)]) for ep in dist.entry_points
           if ep.group == ENTRY_POINT_GROUP]
    registry = Registry()
    registry.load_entry_points(eps)
    return registry


def test_example_plugin_is_listed_by_interp_plugins(installed_example):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(installed_example), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-m", "interpret_core", "plugins", "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(out.stdout) if r["plugin"] == "feature-map"}
    assert set(rows) == {("attribution", "feature-map"), ("attribution-metric", "top-decile-share")}
    for row in rows.values():
        assert row["status"] == "ok" and row["distribution"] == "interp-feature-map" and row["version"] == "0.1.0"


def test_example_attribution_projects_units_to_their_peak(installed_example, monkeypatch):
    import torch
    from torch import nn

    registry = _registry_with(installed_example, monkeypatch)
    method = registry.get_class("attribution", "feature-map")()
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(1, 2, 3, padding=1, bias=False))
    net.add_module("relu", nn.ReLU())
    net.add_module("pool", nn.AdaptiveAvgPool2d(1))
    net.add_module("flat", nn.Flatten())
    with torch.no_grad():
        net.conv.weight.zero_()
        net.conv.weight[0, 0, 1, 1] = 1.0   # unit 0 copies the image
        net.conv.weight[1, 0, 1, 1] = -1.0  # unit 1 copies its negative
    image = torch.zeros(1, 1, 16, 16)
    image[0, 0, 4, 11] = 1.0
    maps = method.attribute_units(net, image, "relu", [0, 1])
    assert maps.shape == (1, 2, 1, 16, 16)
    peak = divmod(int(maps[0, 0, 0].argmax()), 16)
    assert peak == (4, 11)
    assert float(maps[0, 1].abs().max()) == 0.0  # a unit that never fires projects nothing

    saliency = method.attribute(net, image, 0)
    assert saliency.shape == image.shape and float(saliency.min()) >= 0


def test_example_metric_scores_concentration(installed_example, monkeypatch):
    import torch

    registry = _registry_with(installed_example, monkeypatch)
    metric = registry.get_class("attribution-metric", "top-decile-share")()
    peaked = torch.zeros(3, 1, 10, 10)
    peaked[0, 0, 0, 0] = 5.0            # all mass in one pixel -> 1.0
    peaked[1] = 1.0                     # uniform -> 0.1
    inputs = torch.zeros(3, 1, 10, 10)
    scores = metric(inputs=inputs, targets=torch.zeros(3, dtype=torch.long), attributions=peaked)
    assert scores.tolist() == pytest.approx([1.0, 0.1, 0.0])
