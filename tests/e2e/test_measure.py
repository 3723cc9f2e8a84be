"""Measure over HTTP: a lead from a paid campaign buys; attribution and the funnel show it; the
nightly schedule exists on the dev server; the batch runs on demand for a range and a rerun
replaces its results instead of adding to them."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.stack import DevStack
from domain.ids import lead_id_for_email
from domain.reports import NIGHTLY_CRON, NIGHTLY_SCHEDULE_ID
from tests.helpers.e2e import demo_form, get_until, lead_state, new_email
from tests.helpers.waiting import eventually
from tests.helpers.webhooks import checkout, post_stripe

pytestmark = pytest.mark.e2e


async def test_a_paid_lead_that_buys_shows_in_attribution_and_the_funnel(
    stack: DevStack,
    api: httpx.AsyncClient,
    hooks: httpx.AsyncClient,
):
    email = new_email()
    lead_id = lead_id_for_email(email)
    campaign = f"spring-{uuid.uuid4().hex[:6]}"
    anonymous = f"a-{uuid.uuid4().hex[:8]}"
    page = {
        "anonymousId": anonymous,
        "properties": {"path": "/pricing"},
        "context": {"campaign": {"source": "google", "medium": "cpc", "name": campaign}},
    }
    assert (await api.post("/v1/page", json=page)).status_code == 200
    form = demo_form(email, utm_source="google", utm_medium="cpc", utm_campaign=campaign)
    assert (await api.post("/v1/forms/demo/submissions", json=form)).status_code == 202
    alias = {"previousId": anonymous, "userId": f"u-{uuid.uuid4().hex[:8]}", "traits": {"email": email}}
    assert (await api.post("/v1/identify", json={**alias, "anonymousId": anonymous})).status_code == 200
    await lead_state(api, lead_id, lambda s: s["journey"]["stage"] == "lead")
    assert (await post_stripe(hooks, checkout(email, f"cus_{uuid.uuid4().hex[:8]}"))).status_code == 200
    await lead_state(api, lead_id, lambda s: s["journey"]["stage"] == "customer")

    today = datetime.now(UTC).date()
    window = {
        "start": (today - timedelta(days=1)).isoformat(),
        "end": (today + timedelta(days=1)).isoformat(),
    }
    found = (
        await api.get("/v1/reports/attribution", params={**window, "model": "first_touch", "by": "campaign"})
    ).json()
    row = next(r for r in found["rows"] if r["campaign"] == campaign)
    assert row["channel"] == "Paid Search" and row["revenue"] == pytest.approx(
        499.0
    )  # the checkout's 49,900 cents
    for model in ("last_touch", "linear", "time_decay", "u_shaped", "w_shaped", "stage"):
        answer = await api.get("/v1/reports/attribution", params={**window, "model": model})
        assert answer.status_code == 200 and answer.json()["revenue"] >= 499.0
    assert (await api.get("/v1/reports/attribution", params={"model": "magic"})).status_code == 422
    backwards = await api.get("/v1/reports/attribution", params={"start": "2026-03-02", "end": "2026-03-01"})
    assert backwards.status_code == 422 and "end" in backwards.text

    # The seed's flows, timed: the form reached the email platform and the CRM within 30 s.
    async def flows_timed() -> dict[str, Any]:
        timed = {f["flow"]: f for f in (await api.get("/v1/reports/flows")).json()["flows"]}
        assert timed["purchase_to_customer_success"]["count"] >= 1, timed  # the CSM's note follows
        return timed

    timed = await eventually(flows_timed, timeout=30, interval=0.3)
    for flow in ("form_to_email", "form_to_crm", "purchase_to_customer_success"):
        assert timed[flow]["count"] >= 1 and timed[flow]["p99_seconds"] < 30, timed[flow]

    report = (await api.get("/v1/reports/funnel", params=window)).json()
    stages = {s["stage"]: s["count"] for s in report["stages"]}
    assert stages["lead"] >= 1 and stages["customer"] >= 1
    assert any(r["campaign"] == campaign and r["stages"]["customer"] == 1 for r in report["by_first_touch"])

    # The nightly schedule is on the server, as the worker set it up.
    from runtime.temporal import connect

    client = await connect(stack.settings)
    schedule = client.get_schedule_handle(NIGHTLY_SCHEDULE_ID)
    described = await schedule.describe()
    assert described.schedule.spec.cron_expressions == [NIGHTLY_CRON] or described.schedule.spec.calendars
    # The schedule runs on the dev server: triggered now, its run (yesterday's reports) completes.
    await schedule.trigger()
    query = (
        "WorkflowType = 'NightlyReports' AND ExecutionStatus = 'Completed' "
        "AND WorkflowId STARTS_WITH 'reports-nightly'"
    )

    async def scheduled_run_completed() -> bool:
        return bool([w async for w in client.list_workflows(query, limit=1)])

    await eventually(scheduled_run_completed, timeout=60, interval=0.5, what="the scheduled run")

    # On demand for a range; rerun: the same range's results are replaced, not added to.
    for attempt in (1, 2):
        started = await api.post("/v1/reports/runs", json=window)
        assert started.status_code == 202, started.text
        # Through the journey API (it decrypts with the codec keys the stack made).
        workflow_id = started.json()["workflow_id"]
        await get_until(
            api, f"/v1/journeys/{workflow_id}", lambda body: body.get("status") == "COMPLETED", timeout=60
        )
        for model in ("first_touch", "w_shaped", "stage"):
            stored = (await api.get("/v1/reports/attribution", params={**window, "model": model})).json()
            assert stored["last_batch_run"]["runs"] == attempt, (model, stored["last_batch_run"])
    bad = await api.post("/v1/reports/runs", json={"start": window["end"], "end": window["start"]})
    assert bad.status_code == 422

    # The worker flushes its connector stats every few seconds; the rollup sums them per day.
    async def rolled_up() -> None:
        await api.post("/v1/reports/runs", json=window)
        daily = (await api.get("/v1/reports/integrations/daily", params=window)).json()
        assert any(d["provider"] == "hubspot" and d.get("syncs") for d in daily["days"]), daily

    await eventually(rolled_up, timeout=30, interval=2)
