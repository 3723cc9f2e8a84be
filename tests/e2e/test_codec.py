"""Payloads are encrypted at rest in Temporal; only authorized callers get them decoded."""

import base64
import json
import uuid

import httpx
import pytest
from temporalio.client import Client

from devstack.stack import DevStack
from tests.helpers.e2e import demo_form, lead_state

pytestmark = pytest.mark.e2e


async def test_the_raw_history_holds_no_clear_text_and_the_codec_endpoint_decodes_for_admins(
    stack: DevStack, api
):
    email = f"secret.{uuid.uuid4().hex[:8]}@example-corp.com"
    campaign = f"campaign-{uuid.uuid4().hex[:8]}"
    response = await api.post("/v1/forms/demo/submissions", json=demo_form(email, utm_campaign=campaign))
    lead_id = response.json()["lead_id"]
    await lead_state(api, lead_id, lambda s: s["journey"]["crm_contact_id"])

    plain = await Client.connect(stack.settings.temporal_address)  # no codec: what the database holds
    history = await plain.get_workflow_handle(f"lead-{lead_id}").fetch_history()
    raw = history.to_json()
    assert email not in raw and campaign not in raw
    payloads = [
        p
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
        for p in event.workflow_execution_signaled_event_attributes.input.payloads
    ]
    assert payloads and all(p.metadata["encoding"] == b"binary/encrypted" for p in payloads)

    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }
    decoded = await api.post("/codec/decode", json=body)
    assert decoded.status_code == 200
    clear = base64.b64decode(decoded.json()["payloads"][0]["data"])
    assert campaign in clear.decode()
    assert json.loads(clear)["events"][0]["type"] == "form_submitted"

    async with httpx.AsyncClient(base_url=stack.settings.api_url) as anonymous:
        assert (await anonymous.post("/codec/decode", json=body)).status_code == 401
        assert (await anonymous.post("/codec/wrong-token/decode", json=body)).status_code == 401
        via_ui = await anonymous.post(f"/codec/{stack.codec_ui_token}/decode", json=body)
        assert via_ui.status_code == 200 and via_ui.json() == decoded.json()
        preflight = await anonymous.options(
            f"/codec/{stack.codec_ui_token}/decode",
            headers={"Origin": "http://localhost:8233", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:8233"
