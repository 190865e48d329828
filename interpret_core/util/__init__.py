"""Ground layer: atomic file IO, cache paths and progress reporting. Imports only `api`."""
