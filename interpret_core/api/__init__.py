"""Layer 1 of 8 (the ground): the interfaces plugins implement and the errors everything raises. Imports nothing above it."""
