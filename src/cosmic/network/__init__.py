"""network stack."""
