"""The `journeys` command."""
