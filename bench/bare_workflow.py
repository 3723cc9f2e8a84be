"""The bare stack's workflow: one activity call, nothing else (its own module: a workflow module
imports only temporalio, as the worker's sandbox requires)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow


@workflow.defn(name="BareNotify")
class BareNotify:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            "bare.post", text, result_type=str, start_to_close_timeout=timedelta(seconds=20)
        )


@workflow.defn(name="BareCounter")
class BareCounter:
    """Counts the events it is signalled, and answers the count: what Temporal alone costs for
    "an event arrives -> its effect can be read"."""

    def __init__(self) -> None:
        self.events = 0

    @workflow.signal(name="event")
    def event(self) -> None:
        self.events += 1

    @workflow.query(name="count")
    def count(self) -> int:
        return self.events

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.events >= 1_000_000, timeout=timedelta(hours=1))
        return self.events
