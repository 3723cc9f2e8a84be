"""A lead's data can be exported whole, and erased: profile, events, identities, journey."""

import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus

from devstack.stack import DevStack
from runtime.temporal import connect
from tests.helpers.e2e import demo_form, lead_state

pytestmark = pytest.mark.e2e


async def test_export_then_erase(stack: DevStack, api):
    email = f"forget.{uuid.uuid4().hex[:8]}@example-corp.com"
    anonymous = f"a-{uuid.uuid4().hex[:8]}"
    await api.post("/v1/page", json={"anonymousId": anonymous, "name": "Pricing"})
    response = await api.post("/v1/forms/demo/submissions", json=demo_form(email, anonymous_id=anonymous))
    lead_id = response.json()["lead_id"]
    # Until the welcome email's delivery, as Klaviyo reports it, is in: nothing else arrives after.
    await lead_state(
        api,
        lead_id,
        lambda s: (
            s["journey"]["activity"]["page_views"] == 1
            and s["journey"]["crm_contact_id"]
            and s["events"].get("email_delivered") == 1
        ),
    )

    exported = await api.get(f"/v1/leads/{lead_id}/export")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    body = exported.json()
    assert body["profile"]["email"] == email
    assert {"kind": "anonymous", "value": anonymous} in body["identities"]
    assert body["form_submissions"][0]["fields"]["email"] == email
    assert sorted(e["type"] for e in body["events"]) == ["email_delivered", "form_submitted", "page"]
    assert body["journey"]["stage"] == "lead"

    erased = await api.delete(f"/v1/leads/{lead_id}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["events"] == 3 and erased.json()["journey_ended"] is True
    assert (await api.get(f"/v1/leads/{lead_id}")).status_code == 404
    assert (await api.get(f"/v1/leads/{lead_id}/export")).status_code == 404
    assert (await api.get("/v1/leads", params={"email": email})).json()["leads"] == []
    assert (await api.delete(f"/v1/leads/{lead_id}")).status_code == 404
    client = await connect(stack.settings)
    described = await client.get_workflow_handle(f"lead-{lead_id}").describe()
    assert described.status == WorkflowExecutionStatus.TERMINATED
