"""The bare stack's worker for the memory comparison: a plain SDK worker whose workflows wait for
a signal, as a lead's journey waits for its next event, with the SDK's default cache. Run as a
child process so its RSS is its own.

    python -m bench.bare_worker ADDRESS TASK_QUEUE
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker


@workflow.defn(name="BareWaiting")
class BareWaiting:
    def __init__(self) -> None:
        self.events = 0

    @workflow.signal(name="event")
    def event(self, _payload: dict) -> None:
        self.events += 1

    @workflow.run
    async def run(self, _input: dict) -> int:
        await workflow.wait_condition(lambda: self.events > 1_000_000, timeout=timedelta(days=30))
        return self.events


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    async with Worker(client, task_queue=task_queue, workflows=[BareWaiting]):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
