"""One httpx client per external platform, speaking that platform's real API."""
