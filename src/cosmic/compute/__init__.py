"""compute stack."""
