"""Plugin layer: hook specifications, the entry-point loader and plugin-option parsing."""
