"""Layer 2 of 8: atomic file IO, cache and config paths, progress reporting. Imports only ``api``."""
