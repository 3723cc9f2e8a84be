"""Qualify over HTTP: a lead driven by real events (a form, Segment identify and a batch of pages,
downloads and email clicks) crosses the MQL line; the CRM and the email platform hear its stage
and score; its welcome nurture pauses. What ops see in the Temporal UI is checked through the
same search attributes."""

from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from devstack.stack import DevStack
from domain.nurture import NurtureState
from runtime.temporal import connect
from tests.helpers.e2e import make_mql, submit_form
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

Call = dict[str, Any]


async def test_real_events_make_an_mql_push_it_and_pause_its_nurture(
    stack: DevStack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    lead, mql = await make_mql(api)
    email, lead_id = lead.email, lead.lead_id
    assert lead.state["journey"]["stage"] == "lead"
    enrollment = lead.state["journey"]["enrollments"][0]
    assert enrollment["sequence_id"] == "welcome_nurture" and enrollment["status"] == "active"
    journey = mql["journey"]
    assert journey["fit"]["fit"] and journey["timezone"] == "Europe/Berlin"
    assert journey["email_engagement"] >= 70 and journey["content_pieces"] == 3
    assert journey["stage_history"][-1]["reason"].startswith("MQL rule: ")

    # The CRM and the email platform were told: HubSpot's MQL stage and score, Klaviyo's segment fields.
    async def told() -> tuple[list[Call], list[Call]]:
        calls = (await sandbox.get("/_calls")).json()["calls"]
        mine = [c for c in calls if email in str(c["body"]).lower()]
        crm = [c for c in mine if c["provider"] == "hubspot" and "marketingqualifiedlead" in str(c["body"])]
        segmentation = [
            c for c in mine if c["provider"] == "klaviyo" and "'lifecycle_stage': 'mql'" in str(c["body"])
        ]
        assert crm and segmentation, [(c["provider"], c["path"], c["body"]) for c in mine]
        return crm, segmentation

    crm, _ = await eventually(told, timeout=30, interval=0.2)
    assert str(journey["score"]) in str(crm[-1]["body"])

    # The nurture paused, and ops find the lead by stage and score in the UI's search.
    client = await connect(stack.settings.model_copy(update={"codec_keys": SecretStr(stack.codec_keys)}))
    nurture = client.get_workflow_handle(enrollment["workflow_id"])

    async def paused() -> NurtureState:
        state = NurtureState.model_validate(await nurture.query("state"))
        assert state.status == "paused", state
        return state

    state = await eventually(paused, interval=0.2)
    assert state.pause_reason == "lead became mql"
    query = f"LeadId = '{lead_id}' AND LifecycleStage = 'mql' AND LeadScore >= {journey['score']}"

    async def found() -> None:
        assert [w.id async for w in client.list_workflows(query)] == [f"lead-{lead_id}"]

    await eventually(found, timeout=10, interval=0.3, what=query)
    described = await client.get_workflow_handle(f"lead-{lead_id}").describe()
    assert described.status is not None and described.status.name == "RUNNING"


async def test_a_form_lead_without_a_zone_gets_the_one_its_phone_names(api: httpx.AsyncClient):
    # Only the form's fields: no browser context, no timezone trait. Sends and working hours then
    # keep to the zone of its phone number's area code.
    west = await submit_form(
        api, phone="+1 415 555 0100", until=lambda body: body["journey"]["timezone"] is not None
    )
    assert west.state["journey"]["timezone"] == "America/Los_Angeles"
    # Once its facts are in (its fit is known), a toll-free number has still named no zone.
    toll_free = await submit_form(api, phone="+1 800 555 0100", until=lambda body: body["journey"]["fit"])
    assert toll_free.state["journey"]["timezone"] is None, "a toll-free number names no zone"
