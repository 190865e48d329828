"""HTML pages from Jinja2 templates (``interpret_core/render/templates``), all extending one ``base.html``.

Pages are self-contained (inline CSS, nothing fetched) and link their figures
relatively, so an output folder can be moved or zipped whole. Autoescaping is on.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["render_page", "docs_link"]


def docs_link(page: str) -> str:
    """Where a report links for its definitions: ``docs/<page>`` of this installation's source tree.

    A source checkout (or editable install) links the file itself (``file://``
    URI, anchors work in browsers that render Markdown as text); otherwise the
    path relative to the project's repository root, ``docs/<page>``.
    """
    from pathlib import Path

    candidate = Path(__file__).resolve().parents[2] / "docs" / page
    return candidate.as_uri() if candidate.is_file() else f"docs/{page}"


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("interpret_core.render", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.ChainableUndefined,  # a results dict may lack optional keys: render them empty
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_page(template: str, **context: Any) -> str:
    """Render ``template`` (a file in the templates folder) with ``context`` plus ``version``."""
    from interpret_core import __version__

    return _environment().get_template(template).render(version=__version__, **context)
