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
