"""Temporal activities grouped by port; classes whose clients are injected by the worker."""
