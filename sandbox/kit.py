"""Placeholder: filled in with the provider's emulation."""
