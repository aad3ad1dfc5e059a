"""report stack."""
