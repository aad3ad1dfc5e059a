"""collective stack."""
