"""The platform clients against the sandbox's emulation of each API, in process (ASGI transport)."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from activities.errors import platform_errors
from domain import api_versions
from platforms.errors import (
    PermanentPlatformError,
    RateLimitedError,
    TransientPlatformError,
    parse_retry_after,
)
from platforms.hubspot import HubSpotClient
from platforms.klaviyo import KlaviyoClient
from sandbox.app import Faults, create_app
from tests.helpers.platforms import in_process


@pytest.fixture
def sandbox():
    return create_app(seed=1)


@pytest.fixture
async def http(sandbox):
    async with in_process(sandbox) as client:
        yield client


def hubspot(http, token="t"):
    return HubSpotClient(http, base_url="http://sandbox/hubspot", token=token)


def klaviyo(http, key="pk"):
    return KlaviyoClient(
        http,
        base_url="http://sandbox/klaviyo",
        api_key=key,
        revision=api_versions.default("klaviyo_revision"),
    )


async def test_hubspot_upsert_is_idempotent_by_email(http, sandbox):
    first = await hubspot(http).upsert_contact("ada@x.com", {"firstname": "Ada"}, idempotency_key="k1")
    second = await hubspot(http).upsert_contact("ada@x.com", {"jobtitle": "CTO"}, idempotency_key="k1")
    assert first.created and not second.created
    assert first.id == second.id
    assert second.properties["firstname"] == "Ada" and second.properties["jobtitle"] == "CTO"
    calls = sandbox.state.sandbox.calls
    assert [c["idempotency_key"] for c in calls] == ["k1", "k1"]
    assert calls[0]["path"] == "/crm/v3/objects/contacts/batch/upsert"


async def test_hubspot_without_a_token_is_a_permanent_error(http):
    with pytest.raises(PermanentPlatformError) as caught:
        await hubspot(http, token="").upsert_contact("ada@x.com", {})
    assert caught.value.status == 401
    assert "Authentication credentials not found" in str(caught.value)


async def test_hubspot_429_carries_the_retry_delay(http, sandbox):
    sandbox.state.sandbox.faults["hubspot"] = Faults(fail_next=1, fail_status=429, retry_after_seconds=7)
    with pytest.raises(RateLimitedError) as caught:
        await hubspot(http).upsert_contact("ada@x.com", {})
    assert caught.value.retry_after == 7


async def test_server_errors_are_transient(http, sandbox):
    sandbox.state.sandbox.faults["klaviyo"] = Faults(fail_next=1, fail_status=503)
    with pytest.raises(TransientPlatformError):
        await klaviyo(http).import_profile("ada@x.com", {}, {})


async def test_klaviyo_profile_upsert_and_subscription(http, sandbox):
    created = await klaviyo(http).import_profile("ada@x.com", {"first_name": "Ada"}, {"lead_source": "web"})
    again = await klaviyo(http).import_profile("ADA@x.com", {"title": "CTO"}, {})
    assert created.created and not again.created and created.id == again.id
    await klaviyo(http).subscribe_to_list("ada@x.com", "WELCOME", source="form:demo")
    await klaviyo(http).subscribe_to_list("ada@x.com", "WELCOME", source="form:demo")
    assert sandbox.state.sandbox.records["klaviyo_lists"]["WELCOME"]["members"] == ["ada@x.com"]
    headers = sandbox.state.sandbox.calls[0]["headers"]
    assert (
        headers["revision"] == api_versions.default("klaviyo_revision")
        and headers["content-type"] == "application/vnd.api+json"
    )


async def test_klaviyo_errors_name_the_field(http):
    with pytest.raises(PermanentPlatformError) as caught:
        await klaviyo(http).import_profile("not-an-email", {}, {})
    assert "/data/attributes/email" in str(caught.value)


async def test_transport_failures_are_transient():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(TransientPlatformError):
            await hubspot(client).upsert_contact("ada@x.com", {})


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3
    soon = (datetime.now(UTC) + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 < parse_retry_after(soon) <= 30
    assert parse_retry_after(None, default=2) == 2
    assert parse_retry_after("garbage", default=2) == 2


async def test_activity_errors_are_typed_for_temporal():
    from temporalio.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as caught:
        async with platform_errors():
            raise RateLimitedError("hubspot", "slow down", retry_after=4)
    assert caught.value.type == "RateLimited" and caught.value.next_retry_delay == timedelta(seconds=4)
    with pytest.raises(ApplicationError) as caught:
        async with platform_errors():
            raise PermanentPlatformError("hubspot", "bad", status=400)
    assert caught.value.non_retryable
    with pytest.raises(ApplicationError) as caught:
        async with platform_errors():
            raise TransientPlatformError("hubspot", "down", status=503)
    assert not caught.value.non_retryable and caught.value.type == "PlatformUnavailable"
