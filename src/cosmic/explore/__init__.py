"""explore stack."""
