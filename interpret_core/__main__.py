"""``python -m interpret_core`` runs the CLI."""

from .cli import run

run()
