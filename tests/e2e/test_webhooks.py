"""Platform webhooks over HTTP, signed as each provider signs, into the lead's timeline."""

import time
import uuid

import httpx
import pytest

from devstack.stack import DEV_APP_IDS, DEV_WEBHOOK_SECRETS, DevStack
from domain import api_versions
from domain.ids import lead_id_for_email
from domain.signatures import (
    linkedin_challenge_response,
    sign_hub_signature,
    sign_linkedin,
    sign_standard_webhook,
    sign_timestamped_hmac,
)
from store.db import create_engine, session_factory
from store.repository import LeadStore
from tests.helpers.e2e import get_until, journey
from tests.helpers.webhooks import (
    body_of,
    checkout,
    deal_won,
    post_hubspot,
    post_kit,
    post_stripe,
    subscription_deleted,
)

pytestmark = pytest.mark.e2e


async def test_stripe_purchase_then_cancellation_by_customer_id(api, hooks):
    email = f"buyer.{uuid.uuid4().hex[:8]}@example-corp.com"
    customer = f"cus_{uuid.uuid4().hex[:10]}"
    purchase = checkout(email, customer)
    first = await post_stripe(hooks, purchase)
    assert first.status_code == 200, first.text
    assert first.json()["received"] == 1 and first.json()["duplicates"] == 0
    replay = await post_stripe(hooks, purchase)
    assert replay.status_code == 200 and replay.json()["duplicates"] == 1, (
        "a replayed delivery records nothing"
    )
    cancelled = subscription_deleted(customer)
    assert (await post_stripe(hooks, cancelled)).status_code == 200
    lead_id = lead_id_for_email(email)
    body = await get_until(
        api,
        f"/v1/leads/{lead_id}",
        journey(lambda j: {"purchase", "subscription_cancelled"} <= set(j["activity"]["events_by_type"])),
    )
    assert body["identities"]["stripe_customer"] == [customer]
    assert body["events"] == {"purchase": 1, "subscription_cancelled": 1}


async def test_bad_stale_and_unauthenticated_deliveries_are_refused(stack: DevStack, api, hooks):
    email = f"x.{uuid.uuid4().hex[:8]}@example-corp.com"
    forged = await post_stripe(hooks, checkout(email, "cus_x"), secret="whsec_wrong")
    assert forged.status_code == 401 and "signature" in forged.json()["detail"]
    stale = await post_stripe(hooks, checkout(email, "cus_x"), at=int(time.time()) - 3600)
    assert stale.status_code == 401 and "tolerance" in stale.json()["detail"]
    async with httpx.AsyncClient(base_url=stack.settings.api_url) as keyless:
        raw = body_of(checkout(email, "cus_x"))
        header = sign_timestamped_hmac(
            raw, DEV_WEBHOOK_SECRETS["JOURNEYS_STRIPE_WEBHOOK_SECRET"], int(time.time())
        )
        unauthenticated = await keyless.post(
            "/v1/webhooks/stripe", content=raw, headers={"Stripe-Signature": header}
        )
        assert unauthenticated.status_code == 401
    assert (await api.get("/v1/leads", params={"email": email})).json()["leads"] == [], "nothing recorded"


async def test_calendly_booking_reaches_the_lead(api, hooks):
    email = f"meet.{uuid.uuid4().hex[:8]}@example-corp.com"
    payload = {
        "event": "invitee.created",
        "created_at": "2026-11-27T10:00:00.000000Z",
        "payload": {
            "email": email,
            "name": "Ada Lovelace",
            "uri": f"https://api.calendly.com/scheduled_events/EV/invitees/{uuid.uuid4().hex}",
            "scheduled_event": {
                "name": "Product demo",
                "start_time": "2026-11-28T15:00:00Z",
                "end_time": "2026-11-28T15:30:00Z",
            },
        },
    }
    raw = body_of(payload)
    header = sign_timestamped_hmac(
        raw, DEV_WEBHOOK_SECRETS["JOURNEYS_CALENDLY_WEBHOOK_SIGNING_KEY"], int(time.time())
    )
    response = await hooks.post(
        "/v1/webhooks/calendly", content=raw, headers={"Calendly-Webhook-Signature": header}
    )
    assert response.status_code == 200, response.text
    body = await get_until(
        api,
        f"/v1/leads/{lead_id_for_email(email)}",
        journey(lambda j: j["activity"]["events_by_type"].get("meeting_booked") == 1),
    )
    assert body["journey"]["timeline"][-1]["name"] == "Product demo"


async def test_hubspot_deal_stage_change_finds_the_lead_by_deal(stack: DevStack, api, hooks):
    email = f"deal.{uuid.uuid4().hex[:8]}@example-corp.com"
    form = {"email": email, "company": "Example Corp", "job_title": "CTO", "lead_source": "webinar"}
    lead_id = (await api.post("/v1/forms/demo/submissions", json=form)).json()["lead_id"]
    deal = str(uuid.uuid4().int % 10**9)
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        await LeadStore(session_factory(engine)).link_identity("hubspot_deal", deal, lead_id)
    finally:
        await engine.dispose()
    response = await post_hubspot(stack, hooks, [deal_won(deal)])
    assert response.status_code == 200, response.text
    await get_until(
        api,
        f"/v1/leads/{lead_id}",
        journey(lambda j: j["activity"]["events_by_type"].get("deal_stage_changed") == 1),
    )


async def test_a_deal_change_the_engine_wrote_itself_is_not_applied_again(stack: DevStack, api, hooks):
    email = f"echo.{uuid.uuid4().hex[:8]}@example-corp.com"
    form = {"email": email, "company": "Example Corp", "job_title": "CTO", "lead_source": "webinar"}
    lead_id = (await api.post("/v1/forms/demo/submissions", json=form)).json()["lead_id"]
    deal = str(uuid.uuid4().int % 10**9)
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        await LeadStore(session_factory(engine)).link_identity("hubspot_deal", deal, lead_id)
    finally:
        await engine.dispose()
    ours = DEV_APP_IDS["JOURNEYS_HUBSPOT_APP_ID"]
    # Our own write, echoed in the generic format: recognized by its source, nothing recorded.
    echo = {
        **deal_won(deal),
        "subscriptionType": "object.propertyChange",
        "objectTypeId": "0-3",
        "propertyValue": "appointmentscheduled",
        "changeSource": "INTEGRATION",
        "sourceId": ours,
    }
    echoed = await post_hubspot(stack, hooks, [echo])
    assert echoed.status_code == 200 and echoed.json()["received"] == 0, echoed.text
    # A rep moving the same deal in HubSpot is applied.
    moved = await post_hubspot(stack, hooks, [deal_won(deal)])
    assert moved.status_code == 200 and moved.json()["received"] == 1, moved.text
    body = await get_until(
        api,
        f"/v1/leads/{lead_id}",
        journey(lambda j: j["activity"]["events_by_type"].get("deal_stage_changed") == 1),
    )
    stages = [e["name"] for e in body["journey"]["timeline"] if e["type"] == "deal_stage_changed"]
    assert stages == ["closedwon"], "only the rep's change reached the journey"


async def test_resend_click_counts_as_email_engagement(api, hooks):
    email = f"reader.{uuid.uuid4().hex[:8]}@example-corp.com"
    payload = {
        "type": "email.clicked",
        "created_at": "2026-11-27T10:00:00.000Z",
        "data": {
            "email_id": "e-1",
            "to": [email],
            "subject": "Welcome",
            "click": {"link": "https://example.com/pricing"},
        },
    }
    raw = body_of(payload)
    message_id = f"msg_{uuid.uuid4().hex}"
    signed = sign_standard_webhook(
        message_id, int(time.time()), raw, DEV_WEBHOOK_SECRETS["JOURNEYS_RESEND_WEBHOOK_SECRET"]
    )
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": signed,
    }
    assert (await hooks.post("/v1/webhooks/resend", content=raw, headers=headers)).status_code == 200
    again = await hooks.post("/v1/webhooks/resend", content=raw, headers=headers)
    assert again.json()["duplicates"] == 1
    body = await get_until(
        api,
        f"/v1/leads/{lead_id_for_email(email)}",
        journey(lambda j: j["activity"]["email_engagements"] == 1),
    )
    assert body["events"] == {"email_clicked": 1}


async def test_kit_unsubscribe_bounce_and_link_click_reach_the_lead_once(stack: DevStack, api, hooks):
    email = f"kit.{uuid.uuid4().hex[:8]}@example-corp.com"

    def kit_event(kind: str) -> dict:
        return {
            "id": str(uuid.uuid4()),
            "type": kind,
            "created": "2026-12-04T14:32:10Z",
            "data": {
                "subscriber": {
                    "id": 987654,
                    "first_name": "Kit",
                    "email_address": email,
                    "state": "cancelled",
                    "created_at": "2026-11-29T14:32:10Z",
                    "fields": {},
                }
            },
        }

    click = await hooks.post(
        "/v1/webhooks/kit/link_click",
        params={**hooks.params, "url": "https://example.com/pricing"},
        json={"subscriber": kit_event("x")["data"]["subscriber"] | {"state": "active"}},
    )
    assert click.status_code == 200 and click.json()["received"] == 1, click.text
    delivery = {
        "delivery_id": 77,
        "events": [kit_event("subscriber.unsubscribed"), kit_event("subscriber.tag_added")],
    }
    secret = stack.kit_webhook_secret
    assert secret.startswith("whsec_"), "dev connected the sandbox's Kit and took its secret"
    first = await post_kit(hooks, delivery, secret=secret)
    assert first.status_code == 200 and first.json()["received"] == 1, first.text
    retried = await post_kit(
        hooks, delivery, secret=secret
    )  # Kit's retry of the same delivery: same event ids
    assert retried.json()["duplicates"] == 1

    forged = await post_kit(
        hooks, {"delivery_id": 78, "events": [kit_event("subscriber.bounced")]}, secret="wrong"
    )
    assert forged.status_code == 401
    stale = await post_kit(
        hooks,
        {"delivery_id": 79, "events": [kit_event("subscriber.bounced")]},
        secret=secret,
        at=int(time.time()) - 600,
    )
    assert stale.status_code == 401
    malformed = await post_kit(hooks, {"delivery_id": 80, "events": []}, secret=secret)
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["loc"] == ["body", "events"]

    await get_until(
        api,
        f"/v1/leads/{lead_id_for_email(email)}",
        lambda b: b.get("events") == {"email_clicked": 1, "email_unsubscribed": 1},
    )
    timeline = (await api.get(f"/v1/leads/{lead_id_for_email(email)}/events?limit=50")).json()["events"]
    sources = {e["type"]: e["source"] for e in timeline}
    assert sources == {"email_clicked": "webhook:kit", "email_unsubscribed": "webhook:kit"}


async def test_a_facebook_lead_ad_is_read_from_the_graph_api_and_becomes_a_lead(
    stack: DevStack, api, hooks, sandbox
):
    verify = await hooks.get(
        "/v1/webhooks/facebook",
        params={
            **hooks.params,
            "hub.mode": "subscribe",
            "hub.verify_token": "dev-facebook-verify-token",
            "hub.challenge": "42",
        },
    )
    assert verify.status_code == 200 and verify.text == "42"
    script = await hooks.get(
        "/v1/webhooks/facebook",
        params={
            **hooks.params,
            "hub.mode": "subscribe",
            "hub.verify_token": "dev-facebook-verify-token",
            "hub.challenge": "<script>alert(1)</script>",
        },
    )
    # Not a number Meta would send: refused, never echoed back as the answer.
    assert script.status_code == 422 and script.headers["content-type"].startswith("application/json")
    wrong = await hooks.get(
        "/v1/webhooks/facebook", params={**hooks.params, "hub.mode": "subscribe", "hub.verify_token": "x"}
    )
    assert wrong.status_code == 403

    email = f"ads.{uuid.uuid4().hex[:8]}@example-corp.com"
    answers = {
        "email": email,
        "full_name": "Grace Hopper",
        "company_name": "Navy Labs",
        "job_title": "Rear Admiral",
    }
    submitted = (await sandbox.post("/_meta/leadgen", json={"answers": answers})).json()
    raw = body_of(submitted["webhook"])
    signature = sign_hub_signature(raw, "dev-facebook-app-secret")
    headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}

    await sandbox.put("/_faults/facebook", json={"fail_next": 1, "fail_status": 503})
    unavailable = await hooks.post("/v1/webhooks/facebook", content=raw, headers=headers)
    assert unavailable.status_code == 503, "Meta retries; nothing recorded"
    delivered = await hooks.post("/v1/webhooks/facebook", content=raw, headers=headers)
    assert delivered.status_code == 200 and delivered.json()["received"] == 1
    forged = await hooks.post(
        "/v1/webhooks/facebook", content=raw, headers={**headers, "X-Hub-Signature-256": "sha256=00"}
    )
    assert forged.status_code == 401

    body = await get_until(
        api, f"/v1/leads/{lead_id_for_email(email)}", journey(lambda j: j["stage"] == "lead")
    )
    assert body["profile"]["company"] == "Navy Labs" and body["profile"]["first_name"] == "Grace"
    assert body["journey"]["first_touch"]["source"] == "facebook"
    graph = [c for c in (await sandbox.get("/_calls", params={"provider": "facebook"})).json()["calls"]]
    assert graph[-1]["path"] == f"/{api_versions.default('facebook_graph_version')}/{submitted['leadgen_id']}"


async def test_a_linkedin_lead_gen_form_is_read_from_the_api_and_becomes_a_lead(api, hooks, sandbox):
    secret = DEV_WEBHOOK_SECRETS["JOURNEYS_LINKEDIN_CLIENT_SECRET"]
    code = str(uuid.uuid4())
    challenge = await hooks.get("/v1/webhooks/linkedin", params={**hooks.params, "challengeCode": code})
    assert challenge.status_code == 200
    assert challenge.json() == {
        "challengeCode": code,
        "challengeResponse": linkedin_challenge_response(code, secret),
    }
    # Not a challenge of LinkedIn's shape (a body to be signed): refused, nothing signed.
    forged = '{"type": "LEAD_ACTION", "leadGenFormResponse": "urn:li:leadGenFormResponse:1"}'
    refused = await hooks.get("/v1/webhooks/linkedin", params={**hooks.params, "challengeCode": forged})
    assert refused.status_code == 422 and "challengeResponse" not in refused.text

    email = f"li.{uuid.uuid4().hex[:8]}@example-corp.com"
    answers = {
        "EMAIL": email,
        "FIRST_NAME": "Alan",
        "LAST_NAME": "Turing",
        "COMPANY_NAME": "Bletchley",
        "JOB_TITLE": "Head of Research",
    }
    submitted = (await sandbox.post("/_linkedin/leads", json={"answers": answers})).json()
    raw = body_of(submitted["notification"])
    headers = {"X-LI-Signature": sign_linkedin(raw, secret), "Content-Type": "application/json"}
    await sandbox.put(
        "/_faults/linkedin", json={"fail_next": 1, "fail_status": 429, "retry_after_seconds": 1}
    )
    assert (await hooks.post("/v1/webhooks/linkedin", content=raw, headers=headers)).status_code == 503
    delivered = await hooks.post("/v1/webhooks/linkedin", content=raw, headers=headers)
    assert delivered.status_code == 200 and delivered.json()["received"] == 1, delivered.text
    replayed = await hooks.post("/v1/webhooks/linkedin", content=raw, headers=headers)
    assert replayed.json()["duplicates"] == 1
    forged = await hooks.post(
        "/v1/webhooks/linkedin", content=raw, headers={**headers, "X-LI-Signature": "hmacsha256=00"}
    )
    assert forged.status_code == 401

    body = await get_until(
        api, f"/v1/leads/{lead_id_for_email(email)}", journey(lambda j: j["stage"] == "lead")
    )
    assert body["profile"]["company"] == "Bletchley" and body["profile"]["job_title"] == "Head of Research"
    assert body["identities"]["linkedin_lead"] == [submitted["response_id"]]
    assert body["journey"]["first_touch"]["source"] == "linkedin"


@pytest.mark.parametrize("status", [426, 401], ids=["retired-version", "revoked-token"])
async def test_a_linkedin_lead_whose_read_fails_on_our_side_is_redelivered_not_dropped(
    api, hooks, sandbox, status
):
    """A retired API version or a bad token is ours to fix: LinkedIn is asked to deliver again
    (503), nothing is recorded, and the next delivery after the fix becomes the lead."""
    secret = DEV_WEBHOOK_SECRETS["JOURNEYS_LINKEDIN_CLIENT_SECRET"]
    email = f"li.{uuid.uuid4().hex[:8]}@example-corp.com"
    submitted = (await sandbox.post("/_linkedin/leads", json={"answers": {"EMAIL": email}})).json()
    raw = body_of(submitted["notification"])
    headers = {"X-LI-Signature": sign_linkedin(raw, secret), "Content-Type": "application/json"}
    await sandbox.put("/_faults/linkedin", json={"fail_next": 1, "fail_status": status})
    refused = await hooks.post("/v1/webhooks/linkedin", content=raw, headers=headers)
    assert refused.status_code == 503, refused.text
    assert "nothing was recorded" in refused.json()["detail"] and email not in refused.text
    assert (await api.get(f"/v1/leads/{lead_id_for_email(email)}")).status_code == 404
    delivered = await hooks.post("/v1/webhooks/linkedin", content=raw, headers=headers)
    assert delivered.status_code == 200 and delivered.json()["received"] == 1, delivered.text
    await get_until(api, f"/v1/leads/{lead_id_for_email(email)}", journey(lambda j: j["stage"] == "lead"))


async def test_a_linkedin_notification_for_a_deleted_response_is_acknowledged(hooks):
    secret = DEV_WEBHOOK_SECRETS["JOURNEYS_LINKEDIN_CLIENT_SECRET"]
    notification = {
        "type": "LEAD_ACTION",
        "leadAction": "CREATED",
        "occurredAt": int(time.time() * 1000),
        "leadType": "SPONSORED",
        "leadGenFormResponse": f"urn:li:leadGenFormResponse:{uuid.uuid4()}",
        "leadGenForm": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:123456,1)",
        "owner": {"sponsoredAccount": "urn:li:sponsoredAccount:507000001"},
    }
    raw = body_of(notification)
    headers = {"X-LI-Signature": sign_linkedin(raw, secret), "Content-Type": "application/json"}
    gone = await hooks.post("/v1/webhooks/linkedin", content=raw, headers=headers)
    assert gone.status_code == 200 and gone.json() == {
        "received": 0,
        "ignored": True,
        "reason": "the form response no longer exists",
    }
