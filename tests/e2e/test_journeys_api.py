"""Journey control over HTTP: start by type with a validated input, read, signal, update, cancel."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.e2e


async def test_start_read_signal_cancel(api):
    lead_id = str(uuid.uuid4())
    started = await api.post("/v1/journeys/lead", json={"lead_id": lead_id})
    assert started.status_code == 201, started.text
    workflow_id = started.json()["workflow_id"]
    assert workflow_id == f"lead-{lead_id}"
    assert (await api.post("/v1/journeys/lead", json={"lead_id": lead_id})).status_code == 409
    bad = await api.post("/v1/journeys/lead", json={"lead": "x"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "lead_id"]
    assert (await api.post("/v1/journeys/nope", json={})).status_code == 404

    event = {
        "event_id": str(uuid.uuid4()),
        "type": "page",
        "source": "ops",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    sent = await api.post(f"/v1/journeys/{workflow_id}/signals/events", json={"events": [event]})
    assert sent.status_code == 202, sent.text
    assert (await api.post(f"/v1/journeys/{workflow_id}/signals/explode", json={})).status_code == 422
    wrong = await api.post(f"/v1/journeys/{workflow_id}/signals/events", json={"events": [{"type": "page"}]})
    assert wrong.status_code == 422

    for _ in range(50):
        body = (await api.get(f"/v1/journeys/{workflow_id}")).json()
        if body["state"] and body["state"]["activity"]["page_views"] == 1:
            break
        await asyncio.sleep(0.1)
    assert body["status"] == "RUNNING" and body["type"] == "LeadJourney"
    assert body["state"]["activity"]["page_views"] == 1
    assert body["search_attributes"].get("LeadId") == lead_id, body["search_attributes"]

    # Updates: validated here, then by the workflow's own validator, its answer returned.
    updates = f"/v1/journeys/{workflow_id}/updates"
    refused = await api.post(
        f"{updates}/change_stage", json={"stage": "recycled", "reason": "not yet", "by": "ops"}
    )
    assert refused.status_code == 409 and "cannot move to recycled" in refused.json()["detail"]
    moved = await api.post(f"{updates}/change_stage", json={"stage": "lead", "reason": "known", "by": "ops"})
    assert moved.status_code == 200, moved.text
    assert moved.json() == {"stage": "lead", "previous": "anonymous", "changed": True}
    assert (await api.post(f"{updates}/change_stage", json={"stage": "nowhere"})).status_code == 422
    assert (await api.post(f"{updates}/explode", json={})).status_code == 422
    assert (await api.post("/v1/journeys/handoff", json={})).status_code == 404  # the engine starts those

    assert (await api.post(f"/v1/journeys/{workflow_id}/cancel")).status_code == 202
    for _ in range(50):
        body = (await api.get(f"/v1/journeys/{workflow_id}")).json()
        if body["status"] != "RUNNING":
            break
        await asyncio.sleep(0.1)
    assert body["status"] == "CANCELED"
    assert (await api.post(f"/v1/journeys/{workflow_id}/cancel")).status_code == 409
    assert (await api.get("/v1/journeys/lead-does-not-exist")).status_code == 404
    assert (await api.get("/v1/journeys/x' OR '1'='1")).status_code == 404
