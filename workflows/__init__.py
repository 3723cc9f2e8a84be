"""Temporal workflows, one module per journey. Deterministic; light imports only."""
