"""Rendering: images, figures and pages."""
