"""Layer 4 of 8: hook specifications, the entry-point loader, plugin options and the configured defaults."""
