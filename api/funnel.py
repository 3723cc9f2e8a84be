"""The funnel as gauges, counted in Temporal's visibility at each scrape: running lead journeys by
stage, hand-offs waiting for a rep, running customer journeys. A scrape every 15 s costs a handful of
count queries; a visibility outage leaves the last values and never fails the scrape."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client

from domain.customers import CUSTOMER_WORKFLOW_TYPE
from domain.handoff import HANDOFF_WORKFLOW_TYPE
from domain.lead import LEAD_WORKFLOW_TYPE
from domain.stages import LifecycleStage
from runtime.metrics import CUSTOMER_JOURNEYS, LEADS_BY_STAGE, OPEN_HANDOFFS

log = logging.getLogger(__name__)
COUNT_TIMEOUT = timedelta(seconds=3)
RUNNING = "ExecutionStatus = 'Running'"


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(query, rpc_timeout=COUNT_TIMEOUT)).count


async def count_journeys(client: Client) -> None:
    stages = list(LifecycleStage)
    queries = [
        f"WorkflowType = '{LEAD_WORKFLOW_TYPE}' AND {RUNNING} AND LifecycleStage = '{stage.value}'"
        for stage in stages
    ]
    queries.append(f"WorkflowType = '{HANDOFF_WORKFLOW_TYPE}' AND {RUNNING}")
    queries.append(f"WorkflowType = '{CUSTOMER_WORKFLOW_TYPE}' AND {RUNNING}")
    try:
        counts = await asyncio.gather(*(_count(client, q) for q in queries))
    except Exception:
        log.warning("funnel gauges not refreshed: Temporal visibility did not answer", exc_info=True)
        return
    for stage, count in zip(stages, counts, strict=False):
        LEADS_BY_STAGE.labels(stage.value).set(count)
    OPEN_HANDOFFS.set(counts[-2])
    CUSTOMER_JOURNEYS.set(counts[-1])
