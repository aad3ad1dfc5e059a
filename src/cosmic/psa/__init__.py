"""psa stack."""
