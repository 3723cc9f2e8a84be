"""Kit as the other side: the engine connects its receivers through Kit's webhook APIs, the
sandbox's Kit records the emails it sends, and a recipient's action comes back the way Kit reports
it: a signed endpoint delivery for an unsubscribe, bounce or complaint, a legacy link-click webhook
for a click, nothing for an open. The receiver is a real HTTP server; the sandbox runs in process."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from itertools import count
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cli.kit import receiver_urls
from devstack.stack import DEV_KIT_TRACKED_LINKS
from domain.events import EventType
from domain.signatures import SignatureError, verify_timestamped_hmac
from domain.webhooks import kit_events, kit_link_click
from platforms.kit import KitClient
from platforms.ports import EmailMessage
from sandbox.app import create_app
from sandbox.kit import MESSAGE_LINK, MESSAGE_LINKS
from tests.helpers.platforms import in_process
from tests.helpers.receiver import Receiver, receiver

_ids = count()


def new_id() -> str:
    return f"e{next(_ids)}"


@pytest.fixture
def sandbox():
    return create_app(seed=3)


@pytest.fixture
async def http(sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(sandbox) as client:
        yield client


@pytest.fixture
def engine() -> Iterator[Receiver]:
    with receiver() as box:
        yield box


def kit(http: httpx.AsyncClient) -> KitClient:
    return KitClient(
        http,
        base_url="http://sandbox/kit",
        api_key="kit_sandbox_key",
        templates={"welcome_1": "sequence:7029"},
    )


async def connect(http: httpx.AsyncClient, engine: Receiver, key: str = "jrn_ingest_k"):
    endpoint_url, link_click_url = receiver_urls(engine.url, key)
    return await kit(http).connect_webhooks(
        endpoint_url=endpoint_url, link_click_url=link_click_url, links=[MESSAGE_LINK]
    )


async def send_welcome(http: httpx.AsyncClient, email: str) -> None:
    await kit(http).send_email(
        EmailMessage(to=email, template_id="welcome_1", subject="Welcome", variables={"first_name": "Ada"}),
        idempotency_key="wf-1:welcome",
    )


async def engage(http: httpx.AsyncClient, email: str, action: str) -> httpx.Response:
    return await http.post("/_engagement", json={"email": email, "action": action, "provider": "kit"})


async def test_connecting_registers_an_endpoint_and_a_click_webhook_and_again_rotates_the_secret(
    http, sandbox, engine
):
    first = await connect(http, engine)
    again = await connect(http, engine)

    assert first.secret.startswith("whsec_") and not first.rotated
    assert again.rotated and again.secret != first.secret, "Kit shows a secret only on create or rotate"
    assert again.endpoint_id == first.endpoint_id and again.link_webhook_ids == first.link_webhook_ids
    listed = (await http.get("/kit/v4/webhook_endpoints", headers={"X-Kit-Api-Key": "k"})).json()
    [endpoint] = listed["webhook_endpoints"]
    assert "secret" not in endpoint, "a listed endpoint never shows its secret"
    assert endpoint["events"] == ["subscriber.bounced", "subscriber.complained", "subscriber.unsubscribed"]
    assert endpoint["url"] == f"{engine.url}/v1/webhooks/kit?key=jrn_ingest_k"
    hooks = (await http.get("/kit/v4/webhooks", headers={"X-Kit-Api-Key": "k"})).json()["webhooks"]
    assert [h["event"] for h in hooks] == [{"name": "subscriber.link_click", "initiator_value": MESSAGE_LINK}]


async def test_a_click_on_the_engines_email_comes_back_as_the_links_webhook(http, engine):
    await connect(http, engine)
    await send_welcome(http, "ada@example-corp.com")

    answer = await engage(http, "ada@example-corp.com", "click")

    assert answer.status_code == 200, answer.text
    [reported] = answer.json()["deliveries"]
    assert reported["status"] == 200 and reported["url"].startswith(
        f"{engine.url}/v1/webhooks/kit/link_click?"
    )
    [delivery] = engine.received
    target = urlsplit(delivery.path)
    assert target.path == "/v1/webhooks/kit/link_click"
    assert parse_qs(target.query) == {"key": ["jrn_ingest_k"], "url": [MESSAGE_LINK]}
    [mapped] = kit_link_click(json.loads(delivery.body), MESSAGE_LINK, datetime.now(UTC), new_id)
    assert mapped.lead_event.type is EventType.EMAIL_CLICKED and mapped.email == "ada@example-corp.com"


@pytest.mark.parametrize(
    ("action", "state", "kind"),
    [
        ("unsubscribe", "cancelled", EventType.EMAIL_UNSUBSCRIBED),
        ("bounce", "bounced", EventType.EMAIL_BOUNCED),
        ("spam", "complained", EventType.EMAIL_SPAM_COMPLAINT),
    ],
)
async def test_an_email_outcome_is_delivered_signed_with_the_secret_in_force(
    http, sandbox, engine, action, state, kind
):
    await connect(http, engine)
    secret = (await connect(http, engine)).secret  # rotated: only the newest secret signs
    await send_welcome(http, "ada@example-corp.com")

    answer = await engage(http, "ada@example-corp.com", action)

    assert answer.status_code == 200, answer.text
    [delivery] = engine.received
    assert urlsplit(delivery.path).path == "/v1/webhooks/kit"
    verify_timestamped_hmac(delivery.headers["x-kit-signature"], delivery.body, secret, now=time.time())
    [mapped] = kit_events(json.loads(delivery.body), datetime.now(UTC), new_id)
    assert mapped.lead_event.type is kind and mapped.message_id == answer.json()["event_id"]
    [subscriber] = sandbox.state.sandbox.records["kit_subscribers"].values()
    assert subscriber["state"] == state


async def test_a_rotated_secret_no_longer_verifies(http, engine):
    old = (await connect(http, engine)).secret
    await connect(http, engine)
    await send_welcome(http, "ada@example-corp.com")
    await engage(http, "ada@example-corp.com", "unsubscribe")
    [delivery] = engine.received
    with pytest.raises(SignatureError):
        verify_timestamped_hmac(delivery.headers["x-kit-signature"], delivery.body, old, now=time.time())


async def test_kit_reports_no_opens_and_knows_no_stranger(http, engine):
    await connect(http, engine)
    await send_welcome(http, "ada@example-corp.com")
    opened = await engage(http, "ada@example-corp.com", "open")
    stranger = await engage(http, "nobody@example.com", "click")
    assert opened.status_code == 404 and "no opens" in opened.json()["error"]
    assert stranger.status_code == 404
    assert engine.received == []


async def test_a_click_with_no_webhook_for_its_link_reaches_nobody(http, engine):
    await send_welcome(http, "ada@example-corp.com")
    answer = await engage(http, "ada@example-corp.com", "click")
    assert answer.status_code == 200 and answer.json()["deliveries"] == []
    assert engine.received == []


async def test_a_broadcast_from_kits_own_ui_is_the_latest_message(http, engine):
    await connect(http, engine)
    await send_welcome(http, "ada@example-corp.com")
    sent = await http.post("/_campaign", json={"email": "ada@example-corp.com", "provider": "kit"})
    assert sent.status_code == 200, sent.text
    clicked = (await engage(http, "ada@example-corp.com", "click")).json()
    assert clicked["message"] == sent.json()["message"] and clicked["campaign"].startswith("Broadcast")


async def test_an_unsubscribed_subscriber_is_sent_nothing_more(http, sandbox, engine):
    await connect(http, engine)
    await send_welcome(http, "ada@example-corp.com")
    await engage(http, "ada@example-corp.com", "unsubscribe")
    refused = await http.post("/_campaign", json={"email": "ada@example-corp.com", "provider": "kit"})
    assert refused.status_code == 404 and "cancelled" in refused.json()["error"]
    assert len(sandbox.state.sandbox.records["kit_messages"]) == 1


async def test_reset_clears_the_accounts_data_and_keeps_its_integrations(http, sandbox, engine):
    connected = await connect(http, engine)
    await send_welcome(http, "ada@example-corp.com")
    assert (await http.post("/_reset")).status_code == 200
    records = sandbox.state.sandbox.records
    assert not records.get("kit_subscribers") and not records.get("kit_messages")
    listed = (await http.get("/kit/v4/webhook_endpoints", headers={"X-Kit-Api-Key": "k"})).json()
    assert [e["id"] for e in listed["webhook_endpoints"]] == [connected.endpoint_id]
    # A new registration after the reset does not take the kept one's id.
    made = await http.post(
        "/kit/v4/webhook_endpoints",
        headers={"X-Kit-Api-Key": "k"},
        json={"url": "https://hooks.example.com/other", "events": ["subscriber.created"]},
    )
    assert made.status_code == 201 and made.json()["webhook_endpoint"]["id"] != connected.endpoint_id


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "not a url", "events": ["subscriber.bounced"]}, "Url must be a valid HTTP(S) URL"),
        ({"url": "https://h.example.com", "events": []}, "Events must be a non-empty list of event types"),
        ({"url": "https://h.example.com", "events": ["subscriber.opened"]}, "not a valid event type"),
    ],
)
async def test_an_endpoint_kit_would_refuse_is_refused(http, body, message):
    answer = await http.post("/kit/v4/webhook_endpoints", headers={"X-Kit-Api-Key": "k"}, json=body)
    assert answer.status_code == 422 and message in answer.json()["errors"][0]


async def test_a_link_click_webhook_needs_its_link(http):
    answer = await http.post(
        "/kit/v4/webhooks",
        headers={"X-Kit-Api-Key": "k"},
        json={"target_url": "https://h.example.com/x", "event": {"name": "subscriber.link_click"}},
    )
    assert answer.status_code == 422 and "Initiator value" in answer.json()["errors"][0]


def test_dev_tracks_the_link_the_sandboxs_kit_emails_carry():
    assert DEV_KIT_TRACKED_LINKS == MESSAGE_LINKS


async def test_clicks_take_the_messages_links_in_turn_each_reported_by_its_own_hook(http, engine):
    endpoint_url, link_click_url = receiver_urls(engine.url, "k")
    await kit(http).connect_webhooks(
        endpoint_url=endpoint_url, link_click_url=link_click_url, links=MESSAGE_LINKS[:3]
    )
    await send_welcome(http, "ada@example-corp.com")
    clicked = [(await engage(http, "ada@example-corp.com", "click")).json()["link"] for _ in range(4)]
    assert clicked == [*MESSAGE_LINKS[:4]]
    reported = [parse_qs(urlsplit(d.path).query)["url"][0] for d in engine.received]
    assert reported == [*MESSAGE_LINKS[:3]], "the fourth link has no hook: nobody is told"
