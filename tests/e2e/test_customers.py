"""Customer journeys over HTTP: a Stripe purchase webhook makes the lead a customer, and its
account's journey gives it a CSM, a CRM company owned by them, a welcome email, a kickoff in the
CSM's calendar and a Slack note, at once; the product's usage and a detractor's survey answer,
sent as Segment events, reach the journey (the CSM hears of the detractor, with a CRM task)."""

import time
import uuid
from typing import Any

import httpx
import pytest

from devstack.stack import DevStack
from domain.ids import lead_id_for_email
from tests.helpers.e2e import demo_form, get_until, lead_state, new_email
from tests.helpers.waiting import eventually
from tests.helpers.webhooks import checkout, post_stripe, subscription_deleted

pytestmark = pytest.mark.e2e


async def calls_until(
    sandbox: httpx.AsyncClient, provider: str, wanted, timeout: float = 30.0
) -> list[dict[str, Any]]:
    async def found() -> list[dict[str, Any]]:
        calls = (await sandbox.get("/_calls", params={"provider": provider})).json()["calls"]
        matching = [c for c in calls if wanted(c)]
        assert matching, f"no such {provider} call"
        return matching

    return await eventually(found, timeout=timeout, interval=0.2)


async def customer_state(api: httpx.AsyncClient, account_id: str, predicate, timeout: float = 30.0) -> dict:
    return await get_until(api, f"/v1/customers/{account_id}", predicate, timeout)


async def test_a_purchase_webhook_starts_the_customer_journey_at_once(
    stack: DevStack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    hooks: httpx.AsyncClient,
):
    email = new_email()
    lead_id = lead_id_for_email(email)
    account_id = f"lead-{lead_id}"
    assert (await api.post("/v1/forms/demo/submissions", json=demo_form(email))).status_code == 202
    await lead_state(api, lead_id, lambda s: s["journey"] is not None and s["journey"]["stage"] == "lead")

    purchased = time.monotonic()
    customer = f"cus_{uuid.uuid4().hex[:10]}"
    answer = await post_stripe(hooks, checkout(email, customer))
    assert answer.status_code == 200, answer.text

    slack = await calls_until(
        sandbox, "slack", lambda c: c["path"] == "/api/chat.postMessage" and account_id in str(c["body"])
    )
    seconds_to_csm = time.monotonic() - purchased
    assert "New customer" in slack[0]["body"]["text"] and "Example Corp" in slack[0]["body"]["text"]
    # The onboarding journey starts beside the CSM's assignment: wait for both.
    state = await customer_state(
        api, account_id, lambda s: s["csm"] is not None and s["onboarding_milestones"]
    )
    csm = state["csm"]
    assert csm["csm_id"] in ("olivia", "sam")
    # A DM: the conversation opened with the CSM's user id (remembered by the worker once opened).
    dm_channel = slack[0]["body"]["channel"]
    assert dm_channel.startswith("D")
    assert state["status"] == "onboarding" and state["buyer_lead_id"] == lead_id
    assert {m["id"] for m in state["onboarding_milestones"]} == {
        "first_login",
        "key_feature",
        "teammates_invited",
    }

    company = await calls_until(
        sandbox,
        "hubspot",
        lambda c: "/objects/companies" in c["path"] and account_id in str(c["body"]),
    )
    assert "customer" in str(company[0]["body"])
    welcome = await calls_until(sandbox, "klaviyo", lambda c: "customer_welcome" in str(c["body"]))
    assert email in str(welcome[0]["body"])
    kickoff = await calls_until(
        sandbox,
        "google",
        lambda c: c["method"] == "POST" and "/events" in c["path"] and email in str(c["body"]),
    )
    assert csm["email"].replace("@", "%40") in kickoff[0]["path"] or csm["email"] in kickoff[0]["path"]
    assert seconds_to_csm < 30  # the seed: purchase -> customer success, immediate

    lead = await lead_state(api, lead_id, lambda s: s["journey"]["stage"] == "customer")
    assert lead["journey"]["stage_history"][-1]["reason"].startswith("purchase")

    # The product reports use and a survey answer through Segment, as the user.
    user = f"u-{uuid.uuid4().hex[:8]}"
    assert (
        await api.post("/v1/identify", json={"userId": user, "traits": {"email": email}})
    ).status_code == 200
    for name, properties in (("Logged In", {}), ("Survey Responded", {"score": 3, "survey": "nps-1"})):
        sent = await api.post("/v1/track", json={"userId": user, "event": name, "properties": properties})
        assert sent.status_code == 200, sent.text
    await customer_state(api, account_id, lambda s: any(a["score"] == 3 for a in s["surveys"]))
    state = await customer_state(
        api,
        account_id,
        lambda s: any(m["done_at"] for m in s["onboarding_milestones"] if m["id"] == "first_login"),
    )
    detractor = await calls_until(
        sandbox, "slack", lambda c: c["path"] == "/api/chat.postMessage" and "Detractor" in str(c["body"])
    )
    assert detractor[0]["body"]["channel"] == dm_channel
    await calls_until(
        sandbox, "hubspot", lambda c: "/objects/tasks" in c["path"] and "nps-1 3" in str(c["body"])
    )

    # A promoter: an Advocate with a referral invitation; a friend who comes with the code counts.
    promoter = {"userId": user, "event": "Survey Responded", "properties": {"score": 10, "survey": "nps-1"}}
    assert (await api.post("/v1/track", json=promoter)).status_code == 200
    await lead_state(api, lead_id, lambda s: s["journey"]["stage"] == "advocate")
    invite = await calls_until(sandbox, "klaviyo", lambda c: "referral_invite" in str(c["body"]))
    assert lead_id in str(invite[0]["body"])  # the referral code
    friend = new_email()
    page = {"anonymousId": f"a-{uuid.uuid4().hex[:8]}", "properties": {"path": "/", "referral_code": lead_id}}
    friend_user = f"u-{uuid.uuid4().hex[:8]}"
    assert (
        await api.post("/v1/identify", json={"userId": friend_user, "traits": {"email": friend}})
    ).status_code == 200
    assert (await api.post("/v1/page", json={**page, "userId": friend_user})).status_code == 200
    state = await customer_state(api, account_id, lambda s: lead_id_for_email(friend) in s["referrals"])
    assert lead_id in state["advocates"]

    # Near the seat limit: the expansion play and a task for the account's owner.
    seats = {"userId": user, "event": "Seats Changed", "properties": {"seats": 10, "seats_used": 9}}
    assert (await api.post("/v1/track", json=seats)).status_code == 200
    await calls_until(
        sandbox, "hubspot", lambda c: "/objects/tasks" in c["path"] and "ready to grow" in str(c["body"])
    )
    await lead_state(
        api, lead_id, lambda s: any(e["sequence_id"] == "expansion" for e in s["journey"]["enrollments"])
    )

    # The subscription is cancelled (Stripe knows the customer by id only): churn, the CSM told,
    # the company marked in the CRM, the win-back play.
    cancelled = subscription_deleted(customer)
    assert (await post_stripe(hooks, cancelled)).status_code == 200
    await customer_state(api, account_id, lambda s: s["status"] == "churned")
    await calls_until(
        sandbox, "slack", lambda c: c["path"] == "/api/chat.postMessage" and "Churned" in str(c["body"])
    )
    await calls_until(
        sandbox, "hubspot", lambda c: "/objects/companies" in c["path"] and "churned" in str(c["body"])
    )
    await lead_state(
        api, lead_id, lambda s: any(e["sequence_id"] == "win_back" for e in s["journey"]["enrollments"])
    )

    unknown = await api.get("/v1/customers/no-such-account")
    assert unknown.status_code == 404
    bad = await api.get("/v1/customers/bad%20id")
    assert bad.status_code == 422 and "account_id" in bad.text
