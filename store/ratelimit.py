"""The shared throttle: GCRA schedules in PostgreSQL, so every worker draws from one bucket.

One statement reserves a slot: it moves the key's schedule one interval forward from
max(schedule, now) and returns how far ahead of now it stands. A request whose slot is within the
burst tolerance goes at once; one a little later sleeps until its slot; one too far out gives its
slot back and raises `domain.ratelimits.OverRateLimit`, which the platform client turns into its
`RateLimitedError`, so the activity is retried later by Temporal rather than holding a worker slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sqlalchemy import text

from domain.ratelimits import DEFAULT_RATE_LIMITS, OverRateLimit, RateLimit, limit_for
from store.db import SessionFactory

_RESERVE = text(
    """
    INSERT INTO connector_rate_limits (key, tat)
    VALUES (:key, clock_timestamp() + make_interval(secs => :interval))
    ON CONFLICT (key) DO UPDATE
        SET tat = greatest(connector_rate_limits.tat, clock_timestamp()) + make_interval(secs => :interval)
    RETURNING extract(epoch FROM tat - clock_timestamp())
    """
)
_GIVE_BACK = text(
    "UPDATE connector_rate_limits SET tat = tat - make_interval(secs => :interval) WHERE key = :key"
)


class PostgresThrottle:
    def __init__(
        self,
        sessions: SessionFactory,
        limits: Mapping[str, RateLimit] | None = None,
        *,
        max_wait: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self._limits = dict(DEFAULT_RATE_LIMITS if limits is None else limits)
        self._max_wait = max_wait

    async def acquire(self, key: str) -> None:
        limit = limit_for(self._limits, key)
        if limit is None:
            return
        async with self._sessions() as session, session.begin():
            ahead = float(
                (await session.execute(_RESERVE, {"key": key, "interval": limit.interval})).scalar_one()
            )
            wait = ahead - limit.interval - limit.tolerance
            if wait > self._max_wait:
                await session.execute(_GIVE_BACK, {"key": key, "interval": limit.interval})
        if wait > self._max_wait:
            raise OverRateLimit(key, retry_after=wait)
        if wait > 0:
            await asyncio.sleep(wait)
