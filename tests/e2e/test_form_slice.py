"""The thin slice over HTTP: form -> PostgreSQL -> lead workflow -> CRM and email platform (sandbox)."""

import time
import uuid
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import TimeoutType
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from devstack.stack import DevStack
from domain.ids import lead_id_for_email
from runtime.temporal import connect
from tests.helpers.e2e import calls_for, demo_form, lead_state, new_email, synced, wait_for_calls
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e


async def test_health_names_every_part(api: httpx.AsyncClient):
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json()["parts"] == {"temporal": "ok", "postgres": "ok"}


async def test_requests_without_the_key_are_refused(stack: DevStack):
    async with httpx.AsyncClient(base_url=stack.settings.api_url) as anonymous:
        response = await anonymous.post("/v1/forms/demo/submissions", json=demo_form(new_email()))
        assert response.status_code == 401
        wrong = await anonymous.get("/v1/leads/x", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


async def test_bad_input_gets_field_errors_and_records_nothing(api: httpx.AsyncClient, sandbox):
    email = new_email()
    response = await api.post(
        "/v1/forms/demo/submissions", json=demo_form(email, company="", phone="12", job_title=None)
    )
    assert response.status_code == 422
    fields = sorted(error["loc"][-1] for error in response.json()["detail"])
    assert fields == ["company", "job_title", "phone"]
    assert (await api.get(f"/v1/leads/{lead_id_for_email(email)}")).status_code == 404
    assert (await api.post("/v1/forms/nope/submissions", json=demo_form(email))).status_code == 404
    not_json = await api.post(
        "/v1/forms/demo/submissions", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    # Nothing was recorded (the lead is unknown), so nothing can reach a platform: no wait needed.
    assert await calls_for(sandbox, email) == []


async def test_a_form_reaches_the_crm_and_the_email_platform(stack: DevStack, api, sandbox):
    email = new_email()
    started = time.monotonic()
    response = await api.post("/v1/forms/demo/submissions", json=demo_form(email.upper()))
    assert response.status_code == 202, response.text
    body = response.json()
    lead_id = body["lead_id"]
    assert lead_id == lead_id_for_email(email)
    assert body["workflow_id"] == f"lead-{lead_id}"

    calls = await wait_for_calls(sandbox, email, synced)
    elapsed = time.monotonic() - started
    assert elapsed < 30, "the seed's form -> email platform target"
    upsert = next(c for c in calls if c["provider"] == "hubspot")
    assert upsert["headers"]["idempotency-key"] == f"lead-{lead_id}:form:{body['submission_id']}:crm-upsert"
    properties = upsert["body"]["inputs"][0]["properties"]
    assert properties["lifecyclestage"] == "lead" and properties["phone"] == "+442079460958"
    subscription = next(c for c in calls if c["path"] == "/api/profile-subscription-bulk-create-jobs")
    assert subscription["body"]["data"]["relationships"]["list"]["data"]["id"] == "WELCOME"

    lead = await lead_state(api, lead_id, lambda s: s["journey"]["welcome_enrolled"])
    assert lead["profile"]["email"] == email and lead["profile"]["company"] == "Example Corp"
    journey = lead["journey"]
    assert journey["stage"] == "lead" and journey["crm_contact_id"] and journey["email_profile_id"]
    assert journey["first_touch"]["campaign"] == "q4-launch"

    client = await connect(stack.settings)
    found = [w async for w in client.list_workflows(f"LeadId = '{lead_id}' AND LifecycleStage = 'lead'")]
    assert [w.id for w in found] == [f"lead-{lead_id}"]
    histories = [w async for w in client.list_workflows(f"EmailHash = '{journey['email_hash']}'")]
    assert len(histories) == 1


async def test_a_retried_request_is_recorded_once(api, sandbox):
    email = new_email()
    headers = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first = await api.post("/v1/forms/demo/submissions", json=demo_form(email), headers=headers)
    second = await api.post("/v1/forms/demo/submissions", json=demo_form(email), headers=headers)
    assert first.status_code == second.status_code == 202
    assert second.json()["submission_id"] == first.json()["submission_id"]
    assert second.json()["duplicate"] is True
    await wait_for_calls(sandbox, email, synced)
    lead = await lead_state(api, first.json()["lead_id"], lambda s: s["journey"]["welcome_enrolled"])
    assert lead["submissions"] == 1 and lead["journey"]["activity"]["forms_submitted"] == 1
    # One write of the submission's contact (the form's campaign on it); the score push that
    # follows the lead's first settle is a different write and may or may not have happened yet.
    crm = [
        c
        for c in await calls_for(sandbox, email)
        if c["provider"] == "hubspot" and "journeys_utm_campaign" in str(c["body"])
    ]
    assert len(crm) == 1


async def test_a_failing_platform_is_retried_with_the_same_key(api, sandbox):
    await sandbox.put("/_faults/hubspot", json={"fail_next": 2, "fail_status": 503})
    await sandbox.put("/_faults/klaviyo", json={"fail_next": 1, "fail_status": 429, "retry_after_seconds": 1})
    email = new_email()
    response = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
    assert response.status_code == 202
    calls = await wait_for_calls(sandbox, email, synced, timeout=30)
    # The form's upsert (other HubSpot calls, such as score pushes, may draw the injected faults too).
    crm = [
        c for c in calls if c["provider"] == "hubspot" and (c["idempotency_key"] or "").endswith("crm-upsert")
    ]
    statuses = [c["status"] for c in crm]
    assert statuses[-1] == 200 and 503 in statuses and set(statuses) <= {503, 200}, statuses
    assert len({c["idempotency_key"] for c in crm}) == 1
    lead = await lead_state(api, response.json()["lead_id"], lambda s: s["journey"]["crm_contact_id"])
    assert lead["journey"]["failures"] == []


async def test_without_consent_the_profile_is_kept_but_not_subscribed(api, sandbox):
    email = new_email()
    response = await api.post("/v1/forms/demo/submissions", json=demo_form(email, consent=False))
    lead = await lead_state(
        api, response.json()["lead_id"], lambda s: s["journey"]["welcome_skipped_reason"] is not None
    )
    assert lead["journey"]["welcome_enrolled"] is False
    paths = [c["path"] for c in await calls_for(sandbox, email)]
    assert "/api/profile-import" in paths
    assert "/api/profile-subscription-bulk-create-jobs" not in paths


async def test_a_crashed_worker_loses_nothing(stack: DevStack, api, sandbox):
    email = new_email()
    async with stack.worker_down(kill=True):
        response = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
        assert response.status_code == 202, "202 needs PostgreSQL and Temporal, not a worker"
        # The submission reached its lead's run (the router started it), which no worker has taken.
        run = (await connect(stack.settings)).get_workflow_handle(f"lead-{response.json()['lead_id']}")

        async def waiting_for_a_worker() -> None:
            try:
                status = (await run.describe()).status
            except RPCError as not_yet:  # not started yet
                raise AssertionError(not_yet.message) from not_yet
            assert status == WorkflowExecutionStatus.RUNNING, status

        await eventually(waiting_for_a_worker, what="the lead's run to start")
        assert await calls_for(sandbox, email) == []
    await wait_for_calls(sandbox, email, synced, timeout=30)


async def test_a_call_in_flight_when_its_worker_dies_is_retried_at_its_heartbeat_timeout(
    stack: DevStack, api, sandbox
):
    """The CRM takes the form's contact and holds its answer; the worker dies waiting for it. The
    server notices within the call's heartbeat timeout (10 s) and the next worker retries it,
    instead of after the write's whole attempt timeout (30 s)."""
    email = new_email()
    # Held: this lead's write, not another test's lead's write in flight at the time.
    faults = {"hold_after_write_ms": 120_000, "hold_next": 1, "hold_matching": email}
    assert (await sandbox.put("/_faults/hubspot", json=faults)).status_code == 200
    try:
        response = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
        assert response.status_code == 202, response.text

        def crm_took_it(calls: list[dict[str, Any]]) -> bool:
            return any(c["provider"] == "hubspot" and c.get("effect") for c in calls)

        await wait_for_calls(sandbox, email, crm_took_it, timeout=30)
        await stack.restart_worker(kill=True)
    finally:
        await sandbox.put("/_faults/hubspot", json={})
    # The sandbox logs a held write when it takes it, so its log alone cannot show the retry: the
    # lead's history does, once the retried attempt has finished.
    run = (await connect(stack.settings)).get_workflow_handle(f"lead-{response.json()['lead_id']}")

    async def retried() -> list[Any]:
        attempts = [
            event.activity_task_started_event_attributes
            async for event in run.fetch_history_events()
            if event.HasField("activity_task_started_event_attributes")
            and event.activity_task_started_event_attributes.attempt > 1
        ]
        assert attempts, "no call was retried yet"
        return attempts

    again = await eventually(retried, timeout=45, what="the held call to be retried by the next worker")
    # The retried attempt says why the first one ended: its heartbeat stopped, the worker gone.
    why = {started.last_failure.timeout_failure_info.timeout_type for started in again}
    assert why == {TimeoutType.TIMEOUT_TYPE_HEARTBEAT}, why
    await wait_for_calls(sandbox, email, synced, timeout=45)


async def test_a_partial_form_with_an_email_is_recorded_as_abandonment(api, sandbox):
    email = new_email()
    bad = await api.post("/v1/forms/demo/abandonments", json={"company": "Example Corp"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "email"]
    response = await api.post("/v1/forms/demo/abandonments", json={"email": email, "company": "Example Corp"})
    assert response.status_code == 202
    # Settled: the abandonment folded and its recovery sequence enrolled, the decisions a CRM
    # write would have come with taken.
    lead = await lead_state(
        api,
        response.json()["lead_id"],
        lambda s: any(e["sequence_id"] == "form_abandonment_recovery" for e in s["journey"]["enrollments"]),
    )
    assert lead["journey"]["timeline"][-1]["type"] == "form_abandoned"
    assert lead["profile"]["company"] == "Example Corp"
    crm = [c for c in await calls_for(sandbox, email) if c["provider"] in ("hubspot", "salesforce")]
    assert crm == [], "an abandoned form is not a submission: no CRM write yet"
