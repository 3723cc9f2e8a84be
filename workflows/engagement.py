"""`EngagementPoll`: one per email platform that reports engagement through an events API
(Klaviyo). It polls from its cursor, which lives in the run's state: a worker restart resumes
from the last poll that finished, and continue-as-new carries the cursor on. A poll that failed
for good (Klaviyo down for minutes, a revoked key) is kept in the run's details and tried again
at the next interval; a poll that stopped at its page limit (a backlog) is followed at once."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.engagement import (
        ENGAGEMENT_POLL_WORKFLOW,
        POLL_ACTIVITIES,
        EngagementPollInput,
        EngagementPollStatus,
        PollCursor,
        PollResult,
    )
    from domain.errors import PERMANENT_ERRORS
    from domain.search_attributes import JOURNEY
    from workflows.calls import CallPolicy, KeptFailure, call

# Where a first run starts reading: engagement of the last day is picked up, not the account's history.
FIRST_LOOKBACK = timedelta(days=1)
# A poll retries for a few minutes; past that the next interval tries again from the same cursor.
POLL = CallPolicy(
    start_to_close=timedelta(seconds=60),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=list(PERMANENT_ERRORS),
    ),
    schedule_to_close=timedelta(minutes=5),
)


@workflow.defn(name=ENGAGEMENT_POLL_WORKFLOW)
class EngagementPollWorkflow:
    def __init__(self) -> None:
        self._status = EngagementPollStatus()

    @workflow.query(name="status")
    def status(self) -> EngagementPollStatus:
        return self._status

    @workflow.run
    async def run(self, input: EngagementPollInput) -> None:
        workflow.upsert_search_attributes([JOURNEY.value_set("engagement-poll")])
        activity = POLL_ACTIVITIES[input.provider]
        cursor = input.cursor or PollCursor(since=workflow.now() - FIRST_LOOKBACK)
        self._status = input.status or EngagementPollStatus()
        self._status.cursor_since = cursor.since
        for _ in range(input.polls_per_run):
            failure = KeptFailure()
            result = await call(
                activity, cursor, PollResult, f"Poll {input.provider} events", policy=POLL, audit=failure
            )
            if result is None:
                self._status.failed_polls += 1
                self._status.last_error = failure.message
                workflow.set_current_details(f"last poll failed: {failure.message}")
                await workflow.sleep(timedelta(seconds=input.interval_seconds))
                continue
            cursor = result.cursor
            self._status.polls += 1
            self._status.read += result.read
            self._status.recorded += result.recorded
            self._status.duplicates += result.duplicates
            self._status.cursor_since = cursor.since
            self._status.last_error = None
            workflow.set_current_details(
                f"read to {cursor.since.isoformat()}; "
                f"{self._status.recorded} recorded in {self._status.polls} polls"
            )
            if not result.more:
                await workflow.sleep(timedelta(seconds=input.interval_seconds))
        workflow.continue_as_new(input.model_copy(update={"cursor": cursor, "status": self._status}))
