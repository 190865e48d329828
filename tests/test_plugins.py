"""The plugin system: discovery through entry points, failures, clashes, disabling, lookup."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from plugin_dists import ATTRIBUTION_PLUGIN, make_dist

import interpret_core
from interpret_core.api.errors import PluginError, UnknownNameError
from interpret_core.registry.loader import KINDS, Registry


def _rows(registry: Registry, plugin: str) -> list[dict]:
    return [r.as_row() for r in registry.rows() if r.source.plugin == plugin]


def test_throwaway_plugin_is_discovered_through_its_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site"
    eps = make_dist(
        site, "interp-throwaway", "1.2.3", {"throwaway": "throwaway_plugin"},
        {"throwaway_plugin": ATTRIBUTION_PLUGIN.format(cls="Echo", name="echo-input")},
    )
    monkeypatch.syspath_prepend(str(site))
    registry = Registry()
    registry.load_entry_points(eps)

    (row,) = _rows(registry, "throwaway")
    assert row == {
        "kind": "attribution",
        "name": "echo-input",
        "plugin": "throwaway",
        "entry_point": "throwaway_plugin",
        "distribution": "interp-throwaway",
        "version": "1.2.3",
        "status": "ok",
        "error": None,
    }
    method = registry.get_class("attribution", "echo-input")()
    assert method.attribute(None, _FakeTensor(), 0).cloned


class _FakeTensor:
    cloned = False

    def clone(self):
        copy = _FakeTensor()
        copy.cloned = True
        return copy


def test_plugin_that_raises_on_import_is_listed_as_failed_and_others_keep_working(tmp_path, monkeypatch):
    site = tmp_path / "site"
    good = make_dist(
        site, "interp-good", "0.1", {"good": "good_plugin"},
        {"good_plugin": ATTRIBUTION_PLUGIN.format(cls="Good", name="good-method")},
    )
    bad = make_dist(site, "interp-bad", "0.2", {"bad": "bad_plugin"}, {"bad_plugin": "raise RuntimeError('broken on purpose')\n"})
    monkeypatch.syspath_prepend(str(site))
    registry = Registry()
    registry.load_entry_points(bad + good)

    (failed,) = _rows(registry, "bad")
    assert failed["status"] == "failed"
    assert failed["distribution"] == "interp-bad" and failed["version"] == "0.2"
    assert "RuntimeError" in failed["error"] and "broken on purpose" in failed["error"]
    assert registry.get_class("attribution", "good-method").name == "good-method"


def test_duplicate_name_names_both_plugins_and_distributions(tmp_path, monkeypatch):
    site = tmp_path / "site"
    first = make_dist(
        site, "interp-first", "1.0", {"first": "first_plugin"},
        {"first_plugin": ATTRIBUTION_PLUGIN.format(cls="A", name="same-name")},
    )
    second = make_dist(
        site, "interp-second", "2.0", {"second": "second_plugin"},
        {"second_plugin": ATTRIBUTION_PLUGIN.format(cls="B", name="same-name")},
    )
    monkeypatch.syspath_prepend(str(site))
    registry = Registry()
    registry.load_entry_points(first + second)

    rows = [r for r in registry.rows() if r.name == "same-name"]
    assert len(rows) == 2 and all(r.status == "failed" for r in rows)
    for text in ("'first'", "'second'", "interp-first", "interp-second", "same-name"):
        assert all(text in r.error for r in rows)
    with pytest.raises(PluginError) as caught:
        registry.get_class("attribution", "same-name")
    assert "interp-first" in str(caught.value) and "interp-second" in str(caught.value)


def test_disabled_plugin_is_not_imported(tmp_path, monkeypatch):
    site = tmp_path / "site"
    marker = tmp_path / "imported.txt"
    eps = make_dist(
        site, "interp-blocked", "0.1", {"blocked": "blocked_plugin"},
        {"blocked_plugin": f"open({str(marker)!r}, 'w').write('imported')\n"},
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("INTERP_DISABLE_PLUGINS", "something-else, blocked")
    registry = Registry()
    registry.load_entry_points(eps)

    assert not marker.exists()
    (row,) = _rows(registry, "blocked")
    assert row["status"] == "disabled" and "INTERP_DISABLE_PLUGINS" in row["error"]

    monkeypatch.delenv("INTERP_DISABLE_PLUGINS")
    Registry().load_entry_points(eps)
    assert marker.exists()  # the same plugin is imported once it is no longer blocked


def test_misspelled_hook_name_is_rejected_with_its_name(tmp_path, monkeypatch):
    site = tmp_path / "site"
    source = """
    from interpret_core import hookimpl

    @hookimpl
    def interp_register_attribution(register):  # missing the final s
        pass
    """
    eps = make_dist(site, "interp-typo", "0.1", {"typo": "typo_plugin"}, {"typo_plugin": source})
    monkeypatch.syspath_prepend(str(site))
    registry = Registry()
    registry.load_entry_points(eps)

    (row,) = _rows(registry, "typo")
    assert row["status"] == "failed"
    assert "interp_register_attribution" in row["error"]
    assert "interp_register_attributions" in row["error"]  # the valid names are listed
    assert registry.manager.get_plugin("typo") is None


def test_registering_a_class_of_the_wrong_kind_or_name_fails_its_row():
    class NotAnAttribution:
        name = "wrong-kind"

    class BadName(interpret_core.Attribution):
        name = "Bad_Name"

        def attribute(self, module, inputs, target):
            return inputs

    class Plugin:
        @interpret_core.hookimpl
        def interp_register_attributions(self, register):
            register(NotAnAttribution)
            register(BadName)

    registry = Registry()
    assert registry.register_plugin(Plugin(), "mixed")
    rows = _rows(registry, "mixed")
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert "not a subclass of interpret_core.Attribution" in rows[0]["error"]
    assert "lowercase words joined by dashes" in rows[1]["error"]


def test_hook_that_raises_is_reported_without_breaking_others():
    class Broken:
        @interpret_core.hookimpl
        def interp_register_models(self, register):
            raise ValueError("cannot register")

    registry = Registry()
    registry.register_plugin(Broken(), "broken")
    (row,) = _rows(registry, "broken")
    assert row["kind"] == "model" and row["status"] == "failed" and "cannot register" in row["error"]


def test_unknown_name_lists_valid_names_and_the_closest_match():
    class Plugin:
        @interpret_core.hookimpl
        def interp_register_attributions(self, register):
            for cls_name, name in (("Alpha", "alpha-method"), ("Beta", "beta-method")):
                register(type(cls_name, (interpret_core.Attribution,), {"name": name, "attribute": lambda *a: None}))

    registry = Registry()
    registry.register_plugin(Plugin(), "two")
    with pytest.raises(UnknownNameError) as caught:
        registry.get_class("attribution", "alpha-methd")
    error = caught.value
    assert "alpha-method, beta-method" in error.message
    assert error.hint == "did you mean 'alpha-method'?"
    assert isinstance(error, KeyError)


def test_every_kind_has_a_documented_hook():
    hooks_doc = open("docs/writing-plugins.md", encoding="utf-8").read()
    for kind in KINDS.values():
        assert kind.hook in hooks_doc, f"{kind.hook} is not documented in docs/writing-plugins.md"
        assert callable(getattr(interpret_core.registry.hookspecs, kind.hook))


def test_builtin_plugins_register_through_the_entry_point_group():
    rows = interpret_core.plugins()
    builtin = {r["plugin"] for r in rows if r["distribution"] == "interp"}
    assert builtin == {"interp-datasets", "interp-models", "interp-attributions", "interp-metrics"}
    failed = [r for r in rows if r["status"] != "ok"]
    assert not failed, failed


def _run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        "from interpret_core.cli import main\n"
        f"code = main({list(args)!r})\n"
        "sys.stderr.write('\\nTORCH_LOADED=%s\\n' % ('torch' in sys.modules))\n"
        "sys.exit(code)\n"
    )
    import os

    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


@pytest.mark.parametrize("args", [("--help",), ("plugins",), ("plugins", "--json"), ()])
def test_help_and_plugins_never_import_torch(args):
    result = _run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "TORCH_LOADED=False" in result.stderr


def test_plugins_json_lists_every_builtin_kind_with_the_documented_keys():
    result = _run_cli("plugins", "--json")
    rows = json.loads(result.stdout)
    assert {r["kind"] for r in rows} >= set(KINDS)
    for row in rows:
        assert {"kind", "name", "plugin", "distribution", "version", "status", "error"} <= set(row)


def test_throwaway_plugin_is_listed_by_the_cli(tmp_path):
    site = tmp_path / "site"
    make_dist(
        site, "interp-cli-demo", "0.3", {"cli-demo": "cli_demo_plugin"},
        {"cli_demo_plugin": ATTRIBUTION_PLUGIN.format(cls="Demo", name="demo-method")},
    )
    make_dist(site, "interp-crash", "0.1", {"crash": "crash_plugin"}, {"crash_plugin": "import no_such_module_xyz\n"})
    import os

    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    rows = json.loads(_run_cli("plugins", "--json", env=env).stdout)
    demo = [r for r in rows if r["plugin"] == "cli-demo"]
    assert demo == [
        {
            "kind": "attribution", "name": "demo-method", "plugin": "cli-demo", "entry_point": "cli_demo_plugin",
            "distribution": "interp-cli-demo", "version": "0.3", "status": "ok", "error": None,
        }
    ]
    crash = [r for r in rows if r["plugin"] == "crash"]
    assert crash[0]["status"] == "failed" and "no_such_module_xyz" in crash[0]["error"]
    table = _run_cli("plugins", env=dict(env, COLUMNS="200"))
    assert table.returncode == 0 and "demo-method" in table.stdout and "failed" in table.stdout
