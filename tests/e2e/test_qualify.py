"""Qualify over HTTP: a lead driven by real events (a form, Segment identify and a batch of pages,
downloads and email clicks) crosses the MQL line; the CRM and the email platform hear its stage
and score; its welcome nurture pauses. What ops see in the Temporal UI is checked through the
same search attributes."""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from devstack.stack import DevStack
from domain.ids import lead_id_for_email
from domain.nurture import NurtureState
from runtime.temporal import connect
from tests.e2e.test_form_slice import demo_form, lead_state, new_email

pytestmark = pytest.mark.e2e


def behaviour(user: str, now: datetime) -> list[dict[str, Any]]:
    def at(delta: timedelta) -> str:
        return (now - delta).isoformat()

    pages = [
        {
            "type": "page",
            "userId": user,
            "name": "Blog",
            "properties": {"path": "/blog"},
            "timestamp": at(timedelta(hours=h)),
        }
        for h in range(1, 6)
    ]
    downloads = [
        {
            "type": "track",
            "userId": user,
            "event": "Content Downloaded",
            "properties": {"content_id": f"guide-{n}", "topic": "security"},
            "timestamp": at(timedelta(minutes=30 - n)),
        }
        for n in range(3)
    ]
    clicks = [
        {
            "type": "track",
            "userId": user,
            "event": "Email Link Clicked",
            "properties": {"link_id": str(n)},
            "timestamp": at(timedelta(minutes=20 - n)),
        }
        for n in range(7)
    ]
    return [*pages, *downloads, *clicks]


async def test_real_events_make_an_mql_push_it_and_pause_its_nurture(
    stack: DevStack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    email = new_email()
    user = f"u-{uuid.uuid4().hex[:10]}"
    lead_id = lead_id_for_email(email)
    assert (await api.post("/v1/forms/demo/submissions", json=demo_form(email))).status_code == 202
    identify = {
        "userId": user,
        "traits": {"email": email, "industry": "Software", "employees": 420, "country": "DE"},
        "context": {"timezone": "Europe/Berlin"},
    }
    assert (await api.post("/v1/identify", json=identify)).status_code == 200
    lead = await lead_state(api, lead_id, lambda s: bool((s["journey"] or {}).get("enrollments")), timeout=30)
    assert lead["journey"]["stage"] == "lead"
    enrollment = lead["journey"]["enrollments"][0]
    assert enrollment["sequence_id"] == "welcome_nurture" and enrollment["status"] == "active"

    now = datetime.now(UTC)
    assert (await api.post("/v1/batch", json={"batch": behaviour(user, now)})).status_code == 200
    lead = await lead_state(api, lead_id, lambda s: s["journey"]["stage"] == "mql", timeout=45)
    journey = lead["journey"]
    assert journey["fit"]["fit"] and journey["timezone"] == "Europe/Berlin"
    assert journey["email_engagement"] >= 70 and journey["content_pieces"] == 3
    assert journey["stage_history"][-1]["reason"].startswith("MQL rule: ")

    # The CRM and the email platform were told: HubSpot's MQL stage and score, Klaviyo's segment fields.
    deadline = time.monotonic() + 30
    while True:
        calls = (await sandbox.get("/_calls")).json()["calls"]
        mine = [c for c in calls if email in str(c["body"]).lower()]
        crm = [c for c in mine if c["provider"] == "hubspot" and "marketingqualifiedlead" in str(c["body"])]
        segmentation = [
            c for c in mine if c["provider"] == "klaviyo" and "'lifecycle_stage': 'mql'" in str(c["body"])
        ]
        if crm and segmentation:
            break
        assert time.monotonic() < deadline, [(c["provider"], c["path"], c["body"]) for c in mine]
        await asyncio.sleep(0.2)
    assert str(journey["score"]) in str(crm[-1]["body"])

    # The nurture paused, and ops find the lead by stage and score in the UI's search.
    client = await connect(stack.settings.model_copy(update={"codec_keys": SecretStr(stack.codec_keys)}))
    nurture = client.get_workflow_handle(enrollment["workflow_id"])
    deadline = time.monotonic() + 20
    while True:
        state = NurtureState.model_validate(await nurture.query("state"))
        if state.status == "paused":
            break
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.2)
    assert state.pause_reason == "lead became mql"
    query = f"LeadId = '{lead_id}' AND LifecycleStage = 'mql' AND LeadScore >= {journey['score']}"
    deadline = time.monotonic() + 10
    while True:
        found = [w.id async for w in client.list_workflows(query)]
        if found or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert found == [f"lead-{lead_id}"]
    described = await client.get_workflow_handle(f"lead-{lead_id}").describe()
    assert described.status is not None and described.status.name == "RUNNING"
