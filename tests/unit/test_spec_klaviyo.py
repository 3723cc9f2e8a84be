"""The Klaviyo client and the sandbox's Klaviyo, checked against Klaviyo's own published OpenAPI
document (the cut in `tests/specs/klaviyo/`): every request the client sends is a valid request
body for its operation, and every answer the sandbox gives is a valid response of it, so the
client and the emulator cannot drift from the real API together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from domain import api_versions
from platforms.klaviyo import KlaviyoClient
from platforms.ports import EmailMessage, Person
from sandbox.app import create_app
from tests.helpers.specs import Exchanges, PublishedApi

API = PublishedApi("klaviyo/openapi-cut.json")
PREFIX = "/klaviyo"


@pytest.fixture
async def exchanges():
    recorded = Exchanges()
    transport = httpx.ASGITransport(app=create_app(seed=11))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox", event_hooks={"response": [recorded.record]}
    ) as http:
        client = KlaviyoClient(
            http,
            base_url=f"http://sandbox{PREFIX}",
            api_key="pk_test",
            revision=api_versions.default("klaviyo_revision"),
        )
        yield client, recorded


async def test_every_request_and_answer_is_in_klaviyos_published_shape(exchanges):
    client, recorded = exchanges
    person = Person(
        email="ada@example-corp.com", first_name="Ada", last_name="Lovelace", company="Example Corp"
    )
    await client.upsert_profile(person, idempotency_key="k-1")
    await client.import_profile("ada@example-corp.com", {"title": "CTO"}, {"lead_source": "webinar"})
    await client.add_to_list("ada@example-corp.com", "WELCOME", idempotency_key="k-2")
    await client.subscribe_to_list("grace@example-corp.com", "WELCOME", source="form:demo")
    await client.list_members("WELCOME")
    await client.find_profile("ada@example-corp.com")
    message = EmailMessage(
        to="ada@example-corp.com", template_id="t-welcome", variables={"n": 1}, subject="Hi"
    )
    await client.send_email(message, idempotency_key="k-3")
    await client.remove_from_list("ada@example-corp.com", "WELCOME", idempotency_key="k-4")
    page = await client.events_page(since=datetime.now(UTC) - timedelta(hours=1))
    assert {e["relationships"]["metric"]["data"]["id"] for e in page["data"]}, page
    checked = {API.check(response, PREFIX, "application/vnd.api+json") for response in recorded.seen}
    assert checked >= {
        "create_or_update_profile",
        "bulk_subscribe_profiles",
        "create_event",
        "get_events",
        "get_profiles",
        "get_profiles_for_list",
        "remove_profiles_from_list",
    }, checked


def test_the_client_sends_the_revision_it_is_checked_against():
    assert API.version() == api_versions.default("klaviyo_revision")
