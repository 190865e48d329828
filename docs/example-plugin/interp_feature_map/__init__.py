"""Example third-party interp plugin (see docs/writing-plugins.md)."""
