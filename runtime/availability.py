"""What a process believes about Temporal: the API refuses requests with 503 while it is down (so
nothing is recorded that could not be routed soon), and the router stops claiming outbox rows.

A health probe once a second, and every failed delivery, keeps the belief current. It lives in
`runtime/` because both the API and the router hold one, and the API may not import the router.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger("journeys.availability")

# A probe that only ran slow (a busy server, a starved process) is not an outage: Temporal is
# called down after this many slow probes in a row, or at once when the connection is refused.
SLOW_PROBES_FOR_DOWN = 3


class TemporalAvailability:
    """What the API believes about Temporal; requests are refused with 503 while it is down."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.available = True
        self.reason = ""
        self._slow = 0

    def down(self, reason: str) -> None:
        if self.available:
            log.warning("Temporal unavailable: %s", reason)
        self.available, self.reason = False, reason

    async def probe(self) -> bool:
        try:
            ok = await asyncio.wait_for(
                self._client.service_client.check_health(timeout=timedelta(seconds=2)), 2.5
            )
        except (TimeoutError, RPCError, RuntimeError, OSError) as exc:
            slow = isinstance(exc, TimeoutError) or (
                isinstance(exc, RPCError)
                and exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
            )
            self._slow = self._slow + 1 if slow else SLOW_PROBES_FOR_DOWN
            if self._slow >= SLOW_PROBES_FOR_DOWN or not self.available:
                self.down(f"{type(exc).__name__}: {exc}")
            return self.available
        self._slow = 0
        if ok and not self.available:
            log.info("Temporal available again")
        self.available, self.reason = bool(ok), "" if ok else "not serving"
        return self.available

    async def watch(self, every: float = 1.0) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(every)
