"""Heartbeats for activities that do not send their own, so a dead worker's calls are retried soon.

Temporal learns that a worker died only from a timeout. Without a heartbeat, a platform call in
flight when its worker is killed waits out its whole attempt timeout (30 s for a platform write,
60 s for a CRM push) before another worker retries it, and the lead's CRM record, welcome email
or rep's DM waits with it. Every call a workflow makes through `workflows.calls.call` asks for
a heartbeat timeout (`CALL_HEARTBEAT`); this worker interceptor keeps such an activity beating
while it runs, so the server notices a lost worker within that timeout instead. Every worker
that runs real calls takes `keep_alive_options()`: without them a call longer than the timeout
would be cut.

A call that ends before the first beat (most of them) sends none: the beat is a throttled RPC
that only long calls pay for. An activity that records progress in its heartbeat details (an
import that resumes where it stopped) beats itself: name it in `SELF_BEATING`, so empty beats
never overwrite its details.
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

# Activities that send their own heartbeats with progress details (none yet): the interceptor
# must not overwrite those details with empty beats.
SELF_BEATING: frozenset[str] = frozenset()


def beat_interval(heartbeat_timeout_seconds: float) -> float:
    """A third of the timeout: two beats may be late or lost before the server gives up."""
    return max(heartbeat_timeout_seconds / 3, 0.05)


class _KeepAliveInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        timeout = info.heartbeat_timeout
        if (
            timeout is None
            or not timeout.total_seconds()
            or info.activity_type in SELF_BEATING
            or not inspect.iscoroutinefunction(input.fn)
        ):
            return await self.next.execute_activity(input)
        interval = beat_interval(timeout.total_seconds())

        async def beat() -> None:
            while True:
                await asyncio.sleep(interval)
                activity.heartbeat()

        beating = asyncio.create_task(beat())
        try:
            return await self.next.execute_activity(input)
        finally:
            beating.cancel()


class KeepAlive(Interceptor):
    """Worker interceptor: beats for every async activity scheduled with a heartbeat timeout."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _KeepAliveInbound(next)


def keep_alive_options() -> dict[str, Any]:
    """`Worker` options for a worker that runs real calls: the beats, and every one of them sent
    (three per heartbeat timeout), so a busy worker's late beat still lands before the server
    gives its call up."""
    return {"interceptors": [KeepAlive()], "max_heartbeat_throttle_interval": timedelta(seconds=3)}
