"""Layer 6 of 8: images, figures and pages (mapping.md, report.html)."""
