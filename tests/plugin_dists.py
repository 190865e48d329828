"""Make throwaway installed distributions (a dist-info plus modules) for plugin tests."""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path


def make_dist(
    site: Path,
    dist_name: str,
    version: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
) -> list[importlib.metadata.EntryPoint]:
    """Write ``modules`` and a ``<dist>-<version>.dist-info`` with ``interp`` entry points into ``site``.

    Returns the distribution's ``interp`` entry points (with ``.dist`` set), as
    ``importlib.metadata`` sees them once ``site`` is on ``sys.path``.
    """
    site.mkdir(parents=True, exist_ok=True)
    for module_name, source in modules.items():
        (site / f"{module_name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
    lines = ["[interp]"] + [f"{name} = {value}" for name, value in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (info / "RECORD").write_text("")
    return [
        ep
        for dist in importlib.metadata.distributions(path=[str(site)])
        if dist.metadata["Name"] == dist_name
        for ep in dist.entry_points
        if ep.group == "interp"
    ]


ATTRIBUTION_PLUGIN = '''
from interpret_core import Attribution, hookimpl


class {cls}(Attribution):
    name = "{name}"
    description = "returns the input itself (test plugin)"

    def attribute(self, module, inputs, target):
        return inputs.clone()


@hookimpl
def interp_register_attributions(register):
    register({cls})
'''
