"""agents stack."""
