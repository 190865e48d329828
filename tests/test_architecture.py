"""The shape of the core: layers import only downward, and the core names no built-in plugin.

Both checks read the source with ``ast`` (docstrings and comments are not
code), so they hold for every module under ``interpret_core/``, imported or not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import interpret_core
from interpret_core.registry.loader import get_registry

CORE = Path(interpret_core.__file__).parent
#: The layers, lowest first (docs/architecture.md draws them). A module may
#: import its own layer and any lower one; the package's top-level modules
#: (``interpret_core/__init__.py``, ``__main__.py``) are the public face above all.
LAYERS = ("api", "util", "nn", "registry", "analysis", "render", "workflows", "cli")
#: The distribution whose entry points are the built-in plugins.
BUILT_IN_DISTRIBUTION = "interp"


def _modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _layer(path: Path) -> str | None:
    parts = path.relative_to(CORE).parts
    return parts[0] if len(parts) > 1 else None


def _imported(path: Path, tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the module, at any depth."""
    package = ["interpret_core", *path.relative_to(CORE).parent.parts]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.append((node.lineno, ".".join([*base, node.module] if node.module else base)))
            else:
                found.append((node.lineno, node.module or ""))
    return found


def _code_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every string constant that is not a docstring."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _built_ins() -> tuple[set[str], set[str]]:
    """(packages of the built-in plugins, every name they register), read from the registry."""
    rows = [r for r in get_registry().rows() if r.source.distribution == BUILT_IN_DISTRIBUTION]
    packages = {r.source.entry_point.split(":")[0].split(".")[0] for r in rows if r.source.entry_point}
    names = {r.name for r in rows if r.name}
    return packages, names


def test_the_built_in_plugins_are_found_in_the_registry():
    packages, names = _built_ins()
    assert packages == {"interp_datasets", "interp_models", "interp_attributions", "interp_metrics"}
    assert {"fer-cnn", "fer-resnet", "synthfacs", "ckplus", "deconv", "guided-backprop", "captum", "au-distance"} <= names


def test_no_layer_imports_a_higher_one():
    rank = {layer: number for number, layer in enumerate(LAYERS)}
    assert {p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(LAYERS)
    upward = []
    for path in _modules():
        layer = _layer(path)
        if layer is None:
            continue
        for line, module in _imported(path, ast.parse(path.read_text(encoding="utf-8"))):
            parts = module.split(".")
            if parts[0] == "interpret_core" and len(parts) > 1 and parts[1] in rank and rank[parts[1]] > rank[layer]:
                upward.append(f"{path.relative_to(CORE.parent)}:{line} ({layer}) imports {module}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_the_core_imports_no_built_in_plugin_and_names_none_in_code():
    packages, names = _built_ins()
    words = sorted(names | packages, key=len, reverse=True)
    pattern = re.compile(r"(?<![A-Za-z0-9_-])(" + "|".join(map(re.escape, words)) + r")(?![A-Za-z0-9_-])")
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(CORE.parent)
        for line, module in _imported(path, tree):
            if module.split(".")[0] in packages:
                found.append(f"{where}:{line} imports {module}")
        for line, text in _code_strings(tree):
            for match in pattern.finditer(text):
                found.append(f"{where}:{line} names {match.group(1)!r} in {text[:60]!r}")
    assert not found, "the core knows built-in plugins:\n" + "\n".join(found)


@pytest.mark.parametrize("source, hits", [
    ('"""Uses deconv."""\nx = 1  # deconv\n', []),
    ('x = "deconv"\n', ["deconv"]),
    ('def f():\n    """fer-cnn"""\n    return f"--model fer-cnn"\n', ["fer-cnn"]),
    ('x = "deconvnet and my-deconv"\n', []),
])
def test_the_name_check_reads_code_not_docstrings_or_comments(source, hits):
    pattern = re.compile(r"(?<![A-Za-z0-9_-])(deconv|fer-cnn)(?![A-Za-z0-9_-])")
    texts = [text for _, text in _code_strings(ast.parse(source))]
    assert [m.group(1) for text in texts for m in pattern.finditer(text)] == hits
