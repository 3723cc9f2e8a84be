"""A local emulator of the external platforms: real paths and payloads, a call log, fault injection."""
