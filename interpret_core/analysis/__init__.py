"""Analysis: the unit scan, statistics and subject-independent splits."""
