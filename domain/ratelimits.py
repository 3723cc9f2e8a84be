"""Platform rate limits as data, and what a throttle promises: GCRA (the generic cell rate
algorithm), where one timestamp per key says when the next request is on schedule and a request may
run early by at most `burst` intervals.

`limit_for` finds a key's limit by the key itself, then `provider:*`, then the provider, so
`slack:C0123` is held to Slack's per-channel limit. Two throttles keep the schedule:
`platforms.throttle.LocalThrottle` in memory (one process) and `store.ratelimit.PostgresThrottle`
in PostgreSQL (all workers together). They live here, not in `platforms/`, because the store and
the settings need the limits too, and neither may depend on a platform client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from pydantic import BaseModel, Field


class RateLimit(BaseModel):
    per_second: float = Field(gt=0)
    burst: int = Field(1, ge=1)

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second

    @property
    def tolerance(self) -> float:
        """How far ahead of now the schedule may run before a request has to wait."""
        return (self.burst - 1) * self.interval


# Each platform's published limit, with headroom; a deployment overrides them with
# JOURNEYS_RATE_LIMITS (JSON), e.g. for a HubSpot Professional portal's 190 per 10 s.
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {
    # 100 requests per rolling 10 s per private app: at most 10 + 9 x 10 = 100 in any 10 s.
    "hubspot": RateLimit(per_second=9, burst=10),
    # CRM search has its own, lower limit.
    "hubspot:search": RateLimit(per_second=4, burst=1),
    # Salesforce counts requests per 24 h per org; this spreads a daily 100,000 with room for bursts.
    "salesforce": RateLimit(per_second=5, burst=25),
    # Klaviyo limits each endpoint per second and per minute: these stay under the minute's.
    "klaviyo": RateLimit(per_second=10, burst=10),
    "klaviyo:profiles": RateLimit(per_second=11, burst=10),
    "klaviyo:lists": RateLimit(per_second=12, burst=10),
    "klaviyo:subscriptions": RateLimit(per_second=12, burst=10),
    "klaviyo:list-removals": RateLimit(per_second=2.4, burst=5),
    "klaviyo:events": RateLimit(per_second=55, burst=50),
    # Reading events (the engagement poll) has the same published limit; a poll needs few calls.
    "klaviyo:events-read": RateLimit(per_second=10, burst=10),
    # Kit: 120 requests per rolling 60 s per API key.
    "kit": RateLimit(per_second=1.8, burst=5),
    # With an OAuth token Kit allows 600 per 60 s.
    "kit:oauth": RateLimit(per_second=9, burst=20),
    # chat.postMessage: about one message per second per channel (short bursts tolerated).
    "slack:*": RateLimit(per_second=1, burst=3),
    # conversations.history, read before each post: Tier 3, about 50 a minute.
    "slack:conversations.history": RateLimit(per_second=0.8, burst=5),
    "google": RateLimit(per_second=5, burst=10),
    "google:oauth": RateLimit(per_second=1, burst=2),
    # No published Measurement Protocol limit: a modest pace.
    "ga4": RateLimit(per_second=20, burst=20),
    # Receivers set their own limits: a conservative pace per receiving host.
    "webhook:*": RateLimit(per_second=5, burst=10),
}


def limit_for(limits: Mapping[str, RateLimit], key: str) -> RateLimit | None:
    provider = key.split(":", 1)[0]
    return limits.get(key) or limits.get(f"{provider}:*") or limits.get(provider)


class OverRateLimit(Exception):
    """The next slot under `key` is `retry_after` seconds out: too long to sit through inside an
    activity. The platform client turns it into its `RateLimitedError`, so Temporal retries later."""

    def __init__(self, key: str, retry_after: float) -> None:
        super().__init__(f"{key}: over the shared limit")
        self.key = key
        self.retry_after = retry_after

    @property
    def provider(self) -> str:
        return self.key.split(":", 1)[0]


class Throttle(Protocol):
    """Waits until one more request under `key` fits the platform's limit, shared by all workers.

    Keys are a provider name (`hubspot`) or a finer bucket (`slack:C0123`); a key without a
    configured limit passes at once. Raises `OverRateLimit` when the wait would be too long to sit
    through inside an activity.
    """

    async def acquire(self, key: str) -> None: ...
