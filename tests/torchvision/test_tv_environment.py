"""The second environment really is the one these tests need (not the main CPU-wheel venv)."""

import importlib


def test_torchvision_zennit_and_quantus_import():
    torchvision = importlib.import_module("torchvision")
    zennit = importlib.import_module("zennit.composites")
    quantus = importlib.import_module("quantus")
    assert hasattr(torchvision, "__version__") and torchvision.__version__.startswith("0.29")
    assert hasattr(zennit, "EpsilonPlusFlat")
    assert hasattr(quantus, "Sparseness")
