"""The in-memory throttle: GCRA over the limits of `domain.ratelimits`, for one process (tests, a
single worker). `store.ratelimit.PostgresThrottle` keeps the same schedule in PostgreSQL so that all
workers together stay under the platform's limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from domain.ratelimits import DEFAULT_RATE_LIMITS, OverRateLimit, RateLimit, limit_for


class LocalThrottle:
    """GCRA in memory: right for one process (tests, a single worker)."""

    def __init__(self, limits: Mapping[str, RateLimit] | None = None, *, max_wait: float = 30.0) -> None:
        self._limits = dict(DEFAULT_RATE_LIMITS if limits is None else limits)
        self._max_wait = max_wait
        self._schedule: dict[str, float] = {}

    async def acquire(self, key: str) -> None:
        limit = limit_for(self._limits, key)
        if limit is None:
            return
        now = time.monotonic()
        scheduled = max(self._schedule.get(key, now), now) + limit.interval
        wait = scheduled - now - limit.interval - limit.tolerance
        if wait > self._max_wait:
            raise OverRateLimit(key, retry_after=wait)
        self._schedule[key] = scheduled
        if wait > 0:
            await asyncio.sleep(wait)
