"""The engine's Temporal Schedules, made to match the code at each worker start (create, or update
in place): the nightly reports. Several workers starting at once converge on the same schedule."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.reports import NIGHTLY_CRON, NIGHTLY_SCHEDULE_ID, REPORTS_WORKFLOW_TYPE, ReportsInput

log = logging.getLogger(__name__)


def nightly_schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            REPORTS_WORKFLOW_TYPE,
            ReportsInput(),
            id="reports-nightly",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=[NIGHTLY_CRON]),
        # A night's run still going is not doubled; a night missed while Temporal was down is run
        # when it is back, up to a day late (older ones: `POST /v1/reports/runs` for their range).
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_schedules(client: Client, task_queue: str) -> None:
    schedule = nightly_schedule(task_queue)
    try:
        await client.create_schedule(NIGHTLY_SCHEDULE_ID, schedule)
        log.info("created schedule %s (%s)", NIGHTLY_SCHEDULE_ID, NIGHTLY_CRON)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(NIGHTLY_SCHEDULE_ID).update(replace)
