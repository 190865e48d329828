"""Layer 5 of 8: the unit scan, statistics and subject-independent splits."""
