"""Delivers outbox messages to Temporal: inline after the commit, and by the sweeper for leftovers."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from domain.lead import FORM_SUBMITTED_SIGNAL, LEAD_WORKFLOW_TYPE, FormSubmitted, LeadWorkflowInput
from domain.search_attributes import EMAIL_HASH, JOURNEY, LEAD_ID, LIFECYCLE_STAGE
from store.repository import LeadStore, PendingMessage

log = logging.getLogger("journeys.outbox")
FORM_SUBMITTED = "lead.form_submitted"
DELIVERY_TIMEOUT = timedelta(seconds=5)


def form_submitted_message(
    workflow_input: LeadWorkflowInput, signal: FormSubmitted
) -> tuple[str, dict[str, Any]]:
    return FORM_SUBMITTED, {
        "input": workflow_input.model_dump(mode="json"),
        "signal": signal.model_dump(mode="json"),
    }


async def deliver(client: Client, task_queue: str, message: PendingMessage) -> None:
    if message.kind != FORM_SUBMITTED:
        raise ValueError(f"unknown outbox message kind {message.kind!r}")
    workflow_input = LeadWorkflowInput.model_validate(message.payload["input"])
    signal = FormSubmitted.model_validate(message.payload["signal"])
    await client.start_workflow(
        LEAD_WORKFLOW_TYPE,
        workflow_input,
        id=message.workflow_id,
        task_queue=task_queue,
        start_signal=FORM_SUBMITTED_SIGNAL,
        start_signal_args=[signal],
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A lead whose workflow was terminated by ops comes back to life on its next event.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(LEAD_ID, workflow_input.lead_id),
                SearchAttributePair(EMAIL_HASH, workflow_input.email_hash),
                SearchAttributePair(LIFECYCLE_STAGE, "anonymous"),
                SearchAttributePair(JOURNEY, "lead"),
            ]
        ),
        rpc_timeout=DELIVERY_TIMEOUT,
    )


async def deliver_and_mark(
    client: Client, task_queue: str, store: LeadStore, message: PendingMessage
) -> bool:
    try:
        await deliver(client, task_queue, message)
    except Exception as exc:
        log.warning("outbox message %s not delivered yet: %s", message.id, exc)
        await store.mark_failed(message.id, repr(exc))
        return False
    await store.mark_delivered(message.id)
    return True


async def sweep_forever(client: Client, task_queue: str, store: LeadStore, every: float) -> None:
    """Delivers what the request path could not (Temporal down, API crash between commit and signal)."""
    while True:
        try:
            for message in await store.pending_outbox(older_than_seconds=max(every, 2.0)):
                if not await deliver_and_mark(client, task_queue, store, message):
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("outbox sweep failed: %s", exc)
        await asyncio.sleep(every)
