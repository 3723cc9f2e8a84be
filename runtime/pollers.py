"""The engine's long-running pollers, started at each worker start when the settings ask for them:
one `EngagementPoll` per email platform read through an events API (Klaviyo, HubSpot). Several
workers starting at once converge on the one run (the workflow id is fixed; an open run is left as it is)."""

from __future__ import annotations

import logging

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from domain.engagement import (
    ENGAGEMENT_POLL_WORKFLOW,
    HUBSPOT_CRM_POLL,
    EngagementPollInput,
    poller_workflow_id,
)
from runtime.settings import Settings

log = logging.getLogger(__name__)


def wanted_pollers(settings: Settings) -> list[EngagementPollInput]:
    """The email platform's poller when it reports engagement through an events API (Kit and
    Resend call in by webhook instead), and the CRM's when it reports changes only to a query
    (Salesforce), or its reps' tasks and calls (HubSpot calls in with the rest)."""
    if settings.engagement_poll_seconds <= 0:
        return []
    every = settings.engagement_poll_seconds
    wanted = []
    if settings.email_provider in ("klaviyo", "hubspot"):
        wanted.append(EngagementPollInput(provider=settings.email_provider, interval_seconds=every))
    if settings.crm_provider == "salesforce":
        wanted.append(EngagementPollInput(provider="salesforce", interval_seconds=every))
    if settings.crm_provider == "hubspot":
        wanted.append(EngagementPollInput(provider=HUBSPOT_CRM_POLL, interval_seconds=every))
    return wanted


async def ensure_pollers(client: Client, settings: Settings) -> None:
    for poller in wanted_pollers(settings):
        workflow_id = poller_workflow_id(poller.provider)
        await client.start_workflow(
            ENGAGEMENT_POLL_WORKFLOW,
            poller,
            id=workflow_id,
            task_queue=settings.temporal_task_queue,
            # An open run keeps its cursor; a run that ended (terminated by ops) starts again
            # from a day back, and ingestion's dedupe keeps what it re-reads from counting twice.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        log.info("engagement poller %s running (every %.0f s)", workflow_id, poller.interval_seconds)
