"""The HTTP API: ingestion, leads, health. Reads the store; reaches Temporal through the one factory."""
