"""The hand-off over HTTP: events push a lead over the MQL line; within seconds a rep (the stack's
reps are on duty around the clock) gets the Slack message in the sandbox; the rep accepts through
the API and the lead becomes an SQL; the SLA report counts it."""

from datetime import datetime
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from devstack.stack import DevStack
from runtime.temporal import connect
from tests.helpers.e2e import get_until, lead_state, make_mql
from tests.helpers.waiting import eventually
from tests.helpers.webhooks import deal_won, post_hubspot

pytestmark = pytest.mark.e2e


async def test_an_mql_reaches_a_rep_on_slack_and_acceptance_makes_an_sql(
    stack: DevStack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    hooks: httpx.AsyncClient,
):
    submitted, mql = await make_mql(api)
    lead_id = submitted.lead_id
    body = await lead_state(api, lead_id, lambda s: s["journey"]["active_handoff"] is not None, timeout=45)
    handoff_id = body["journey"]["active_handoff"]
    mql_at = datetime.fromisoformat(mql["journey"]["stage_history"][-1]["at"])

    async def posted() -> dict[str, Any]:
        calls = (await sandbox.get("/_calls", params={"provider": "slack"})).json()["calls"]
        posts = [c for c in calls if c["path"] == "/api/chat.postMessage" and lead_id in str(c["body"])]
        assert posts, "no Slack message for the MQL"
        return posts[0]

    message = await eventually(posted, timeout=30, interval=0.1)
    posted_at = datetime.fromisoformat(message["time"])
    assert (posted_at - mql_at).total_seconds() < 30
    assert "Example Corp" in message["body"]["text"] and handoff_id in message["body"]["text"]

    # The stack's reps are on duty around the clock (tests/e2e/conftest.py), so a rep has it, by
    # DM: posted to the conversation opened with the rep's user id (opened once per worker and
    # remembered, so an earlier test may have opened it).
    state = (await api.get(f"/v1/handoffs/{handoff_id}")).json()
    holder = state["assignment"]["rep_id"]
    assert holder and not state["assignment"]["queue"], state["assignment"]
    assert message["body"]["channel"].startswith("D")
    wrong = await api.post(f"/v1/handoffs/{handoff_id}/accept", json={"rep_id": "nobody-here"})
    assert wrong.status_code == 409 and "does not hold this lead" in wrong.json()["detail"]
    click = {"rep_id": holder, "note": "calling now"}
    async with stack.worker_down(kill=True):
        # Nobody to take the click: a clear "resend" in bounded time, never a hang or a 500.
        unanswered = await api.post(f"/v1/handoffs/{handoff_id}/accept", json=click, timeout=30)
        assert unanswered.status_code == 503, unanswered.text
        assert "resend" in unanswered.json()["detail"] and unanswered.headers["Retry-After"]

    # The worker is back: the rep's page resends the same click, as the 503 asked, until the
    # hand-off answers (a worker just started may take longer than one wait to pick it up).
    async def taken() -> httpx.Response:
        answer = await api.post(f"/v1/handoffs/{handoff_id}/accept", json=click, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer

    accepted = await eventually(taken, timeout=60, interval=0.5, what="the resent click to be taken")
    assert accepted.json()["rep_id"] == holder
    # The same rep's click again (a double click, a resend after a lost answer): the same acceptance;
    # anyone else's: refused.
    again = await api.post(f"/v1/handoffs/{handoff_id}/accept", json={"rep_id": holder})
    assert again.status_code == 200 and again.json() == accepted.json()
    other = await api.post(f"/v1/handoffs/{handoff_id}/accept", json={"rep_id": "nobody-here"})
    assert other.status_code == 409 and f"already accepted by {holder}" in other.json()["detail"]
    audit = (await api.get(f"/v1/handoffs/{handoff_id}")).json()["audit"]
    assert sum(entry["what"].startswith("accepted") for entry in audit) == 1, audit

    lead = await lead_state(api, lead_id, lambda s: s["journey"]["stage"] == "sql", timeout=20)
    assert lead["journey"]["owner"] == holder
    assert lead["journey"]["stage_history"][-1]["reason"].startswith(f"accepted by {holder}")
    # Once the hand-off's run has finished, its history answers the same click the same way.
    run = (await connect(stack.settings)).get_workflow_handle(handoff_id)

    async def finished() -> None:
        assert (await run.describe()).status != WorkflowExecutionStatus.RUNNING

    await eventually(finished, timeout=30, interval=0.2, what="the hand-off's run to finish after acceptance")
    late = await api.post(f"/v1/handoffs/{handoff_id}/accept", json={"rep_id": holder})
    assert late.status_code == 200 and late.json() == accepted.json()

    # Acceptance opened the deal in the CRM; the rep wins it there: the lead is a customer, and
    # its account's customer journey starts (the CSM is told at once).
    try:
        lead = await lead_state(
            api, lead_id, lambda s: bool(s.get("identities", {}).get("hubspot_deal")), timeout=45
        )
    except AssertionError:
        raise AssertionError((await api.get(f"/v1/handoffs/{handoff_id}")).json()["audit"]) from None
    deal_id = lead["identities"]["hubspot_deal"][0]
    assert (await post_hubspot(stack, hooks, [deal_won(deal_id)])).status_code == 200
    await lead_state(api, lead_id, lambda s: s["journey"]["stage"] == "customer", timeout=20)
    await get_until(
        api, f"/v1/customers/lead-{lead_id}", lambda account: account.get("status") == "onboarding"
    )
    handoff = (await api.get(f"/v1/handoffs/{handoff_id}")).json()
    assert handoff["status"] == "accepted"  # a won deal does not reopen anything

    report = (await api.get("/v1/reports/sla", params={"window_hours": 1})).json()
    assert report["handoffs"] >= 1 and report["accepted"] >= 1
    assert report["seconds_from_mql"]["notified"]["p50"] is not None
    assert report["seconds_from_mql"]["notified"]["p99"] < 30


async def test_the_roster_is_read_replaced_and_reset_through_the_api(api: httpx.AsyncClient):
    start = (await api.get("/v1/roster")).json()
    assert start["source"] == "file" and start["roster"]["reps"]
    roster = start["roster"]
    bad = {**roster, "reps": [{**roster["reps"][0], "timezone": "Mars/Olympus"}, *roster["reps"][1:]]}
    refused = await api.put("/v1/roster", json=bad)
    assert refused.status_code == 422 and "reps[0]" in refused.json()["detail"]
    assert (await api.get("/v1/roster")).json()["source"] == "file"
    away = {"start": "2026-12-24T00:00:00+00:00", "end": "2026-12-28T00:00:00+00:00"}
    changed = {**roster, "reps": [{**roster["reps"][0], "out_of_office": [away]}, *roster["reps"][1:]]}
    accepted = await api.put("/v1/roster", json=changed)
    assert accepted.status_code == 200, accepted.text
    now = (await api.get("/v1/roster")).json()
    assert now["source"] == "api" and now["updated_by"].startswith("key ")
    assert len(now["roster"]["reps"][0]["out_of_office"]) == 1
    assert (await api.delete("/v1/roster")).status_code == 204
    assert (await api.get("/v1/roster")).json()["source"] == "file"
