"""Shared fixtures."""

from __future__ import annotations

import os

import pytest

# tests/torchvision/ needs torchvision, Zennit and Quantus, which do not install beside the
# CPU torch wheel of the main environment; tests/run_torchvision_suite.sh runs them in .venv-tv.
if os.environ.get("INTERP_TORCHVISION_SUITE") != "1":
    collect_ignore = ["torchvision"]

# Tests never draw progress bars and never touch the user's cache.
os.environ.setdefault("INTERP_NO_PROGRESS", "1")


@pytest.fixture(autouse=True)
def _isolated_interp_home(tmp_path_factory, monkeypatch):
    """Each test session gets its own INTERP_HOME unless one is set (CI shares one)."""
    if "INTERP_HOME" not in os.environ:
        monkeypatch.setenv("INTERP_HOME", str(tmp_path_factory.getbasetemp() / "interp-home"))


@pytest.fixture(scope="session")
def synthfacs_root(tmp_path_factory):
    """A small SynthFACS release (6 subjects, seed 0) in the CK+ layout, made once per session."""
    from interp_datasets.synthfacs import generate

    root = tmp_path_factory.mktemp("synthfacs-small")
    generate(root, subjects=6, seed=0)
    return root
