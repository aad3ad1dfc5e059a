"""workload stack."""
