"""Ground layer: the interfaces plugins implement and the errors everything raises. Imports nothing above it."""
