"""Prometheus metrics: the API's own (admin key) and the worker's Temporal SDK metrics."""

import uuid

import httpx
import pytest

from devstack.stack import DevStack
from tests.helpers.e2e import demo_form, lead_state

pytestmark = pytest.mark.e2e


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{wanted}}} in the metrics")


async def test_api_and_worker_metrics(stack: DevStack, api):
    before = (await api.get("/metrics")).text
    try:
        ingested_before = sample(before, "journeys_events_ingested_total", source="segment", type="track")
    except AssertionError:
        ingested_before = 0.0
    async with httpx.AsyncClient(base_url=stack.settings.sandbox_url) as sandbox:
        await sandbox.put("/_faults/hubspot", json={"fail_next": 1, "fail_status": 503})
    user = f"u-{uuid.uuid4().hex[:8]}"
    message = {"userId": user, "event": "Metered", "messageId": f"m-{uuid.uuid4()}"}
    await api.post("/v1/track", json=message)
    await api.post("/v1/track", json=message)
    response = await api.post(
        "/v1/forms/demo/submissions", json=demo_form(f"m.{uuid.uuid4().hex[:8]}@example-corp.com")
    )
    await lead_state(api, response.json()["lead_id"], lambda s: s["journey"]["crm_contact_id"])

    metrics = await api.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert (
        sample(text, "journeys_events_ingested_total", source="segment", type="track") == ingested_before + 1
    )
    assert sample(text, "journeys_events_duplicate_total", source="segment") >= 1
    assert (
        sample(
            text, "journeys_api_request_seconds_count", route="/v1/forms/{form_id}/submissions", status="202"
        )
        >= 1
    )
    # The funnel now, from Temporal's visibility.
    assert sample(text, "journeys_leads_by_stage", stage="lead") >= 1
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(f"{stack.settings.api_url}/metrics")).status_code == 401
        worker = await anonymous.get(f"http://127.0.0.1:{stack.worker_metrics_port}/metrics")
    assert worker.status_code == 200
    assert "temporal_workflow_task" in worker.text, "the SDK's own metrics"
    assert "journeys_connector_errors{" in worker.text and 'provider="hubspot"' in worker.text
    # The journeys' own, counted inside the workflows (replays count nothing).
    assert sample(worker.text, "journeys_lead_stage_reached", stage="lead") >= 1
