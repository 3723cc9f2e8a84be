"""`NightlyReports`: attribution for every model and the integration-health rollup over a range of
days, started by the nightly schedule (yesterday) or on demand (`POST /v1/reports/runs`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.reports import (
        REPORTS_WORKFLOW_TYPE,
        AttributionRunInput,
        AttributionRunResult,
        ReportsInput,
        ReportsResult,
    )
    from domain.search_attributes import JOURNEY
    from workflows.calls import CallPolicy, call
    from workflows.policies import PLATFORM_RETRY

# A day's report: long attempts, retried until the database answers.
BATCH = CallPolicy(start_to_close=timedelta(minutes=30), retry=PLATFORM_RETRY)


@workflow.defn(name=REPORTS_WORKFLOW_TYPE)
class NightlyReportsWorkflow:
    @workflow.run
    async def run(self, input: ReportsInput) -> ReportsResult:
        workflow.upsert_search_attributes([JOURNEY.value_set("reports")])
        if input.start is None or input.end is None:
            # The schedule's run: the whole of yesterday, by the time the run was due.
            end = workflow.now().date()
            start = end - timedelta(days=1)
        else:
            start, end = input.start, input.end
        workflow.set_current_details(
            f"Reports for {start} to {end}: attribution ({len(input.models)} models), health"
        )
        attribution = await asyncio.gather(
            *(
                call(
                    "reports.attribution",
                    AttributionRunInput(start=start, end=end, model=model),
                    AttributionRunResult,
                    f"Attribution: {model}",
                    policy=BATCH,
                )
                for model in input.models
            )
        )
        days = [start + timedelta(days=n) for n in range((end - start).days)]
        for day in days:
            await call("reports.integration_rollup", day, None, f"Integration health: {day}", policy=BATCH)
        return ReportsResult(start=start, end=end, attribution=list(attribution), health_days=len(days))
