"""Exactly-once writes under a worker crash.

Each platform accepts a write and then holds its answer; the worker is killed (SIGKILL) while
it waits. The replacement worker retries every step with the same idempotency key, and each
platform's log shows exactly one write that created something: the retry found it through the
platform's own mechanism (natural key, client-chosen id, unique id, read before the write).
"""

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from devstack.stack import DevStack
from domain.connectors import ConnectorStepsResult, connector_steps_workflow_id
from domain.ids import lead_id_for_email
from runtime.temporal import connect
from tests.helpers.e2e import demo_form, new_email
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

HOLD_MS = 120_000


def steps(sandbox_url: str, *, deal_stage: str, template_id: str) -> list[dict[str, Any]]:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    return [
        {
            "activity": "crm.create_task",
            "input": {"subject": "Call {name} at {company}", "due_at": start.isoformat(), "priority": "HIGH"},
        },
        {
            "activity": "crm.upsert_deal",
            "input": {
                "deal_key": f"deal-{uuid.uuid4().hex[:8]}",
                "name": "{company} pilot",
                "stage": deal_stage,
            },
        },
        {"activity": "email.send", "input": {"template_id": template_id, "variables": {"topic": "pricing"}}},
        {
            "activity": "notify.post_message",
            "input": {"channel": "C0SALESALERT", "text": "New MQL: {name} ({company})"},
        },
        {
            "activity": "calendar.create_event",
            "input": {
                "summary": "Intro call with {company}",
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=30)).isoformat(),
            },
        },
        {
            "activity": "webhook.deliver",
            "input": {
                "url": f"{sandbox_url}/webhook/crm-mirror",
                "event_type": "lead.qualified",
                "payload": {"stage": "mql"},
            },
        },
    ]


async def _calls(sandbox: httpx.AsyncClient, since: int) -> list[dict[str, Any]]:
    return (await sandbox.get("/_calls", params={"since": since})).json()["calls"]


@pytest.mark.parametrize(
    ("env", "held", "platform_ids"),
    [
        (
            {},
            ["hubspot", "klaviyo", "slack", "google", "webhook"],
            {"deal_stage": "qualifiedtobuy", "template_id": "nurture-1"},
        ),
        (
            {"JOURNEYS_CRM_PROVIDER": "salesforce", "JOURNEYS_EMAIL_PROVIDER": "kit"},
            ["salesforce", "kit"],
            {"deal_stage": "Qualification", "template_id": "sequence:7001"},
        ),
    ],
    ids=["hubspot-klaviyo-slack-google-webhook", "salesforce-kit"],
)
async def test_a_worker_killed_after_the_platform_accepted_leaves_exactly_one_write(
    stack: DevStack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    env: dict[str, str],
    held: list[str],
    platform_ids: dict[str, str],
):
    if not env:
        # The stack's worker already serves the default providers.
        await _crash_and_check(stack, api, sandbox, env, held, platform_ids)
        return
    await stack.restart_worker(kill=False, extra_env=env)
    try:
        await _crash_and_check(stack, api, sandbox, env, held, platform_ids)
    finally:
        # The other tests expect the default providers.
        await stack.restart_worker(kill=False)


async def _crash_and_check(
    stack: DevStack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    env: dict[str, str],
    held: list[str],
    platform_ids: dict[str, str],
) -> None:
    email = new_email()
    assert (await api.post("/v1/forms/demo/submissions", json=demo_form(email))).status_code == 202
    lead_id = lead_id_for_email(email)
    await eventually(lambda: _lead_synced(api, lead_id), timeout=60, what="the form to reach the platforms")
    since = (await sandbox.get("/_calls")).json()["calls"][-1]["seq"]
    for provider in held:
        faults = {"hold_after_write_ms": HOLD_MS, "hold_next": 1}
        assert (await sandbox.put(f"/_faults/{provider}", json=faults)).status_code == 200

    request_id = uuid.uuid4().hex[:12]
    started = await api.post(
        "/v1/journeys/connector_steps",
        json={
            "lead_id": lead_id,
            "request_id": request_id,
            "steps": steps(stack.settings.sandbox_url, **platform_ids),
            "parallel": True,
            "step_timeout_seconds": 5,
        },
    )
    assert started.status_code == 201, started.text

    async def every_held_write_accepted() -> bool:
        calls = await _calls(sandbox, since)
        accepted = {c["provider"] for c in calls if c.get("effect") and c["status"] < 300}
        return set(held) <= accepted

    await eventually(every_held_write_accepted, timeout=60, what=f"writes to {held} to be accepted")
    await stack.restart_worker(kill=True, extra_env=env)

    client = await connect(stack.settings.model_copy(update={"codec_keys": SecretStr(stack.codec_keys)}))
    handle = client.get_workflow_handle(connector_steps_workflow_id(lead_id, request_id))
    result = ConnectorStepsResult.model_validate(await asyncio.wait_for(handle.result(), timeout=90))
    failed = [o for o in result.outcomes if o.status != "done"]
    assert not failed, failed

    calls = await _calls(sandbox, since)
    for provider in held:
        assert any(c["provider"] == provider and c.get("fault") is False for c in calls)
    # Each step writes one object on one platform under its idempotency key, so each key may have
    # created once; the retries found their earlier writes instead. (The lead's welcome email is another
    # key.)
    # Custom fields a platform needs first (Kit's, for the email's variables) are set-up, not steps.
    written = [
        c for c in calls if c.get("effect") and c["status"] < 300 and c.get("object_type") != "custom_field"
    ]
    created = Counter(
        (c["provider"], c.get("object_type"), c.get("idempotency_key"))
        for c in written
        if c["effect"] == "created"
    )
    assert created and all(n == 1 for n in created.values()), created
    assert set(held) <= {provider for provider, _, _ in created}, created
    # The crash did make the new worker go back to each held platform (else this proves nothing):
    # after the held write, the same provider was called again, to write or to look.
    for provider in held:
        mine = [c for c in calls if c["provider"] == provider and not c.get("fault")]
        first_write = next(n for n, c in enumerate(mine) if c.get("effect") and c["status"] < 300)
        assert len(mine) > first_write + 1, f"{provider} was not retried: {mine}"
    for outcome in result.outcomes:
        assert outcome.result is not None and outcome.result.id


async def _lead_synced(api: httpx.AsyncClient, lead_id: str) -> bool:
    """The form's CRM and email writes are done (else the holds below would catch them)."""
    lead = await api.get(f"/v1/leads/{lead_id}")
    if lead.status_code != 200:
        return False
    journey = lead.json()["journey"] or {}
    return bool(journey.get("crm_contact_id") and journey.get("welcome_enrolled"))
