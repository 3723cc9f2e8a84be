"""GA4 Measurement Protocol: the exact requests the client makes, the answers it is fed as Google
gives them, and the sandbox's emulation (collect always 2xx, the validation server's messages)."""

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from platforms.errors import PermanentPlatformError, RateLimitedError, TransientPlatformError
from platforms.ga4 import EVENT_ID_PARAM, GA4Client, event_id_for
from platforms.ports import AnalyticsEvent
from sandbox.app import Faults, create_app
from tests.helpers.platforms import in_process

GOOGLE = "https://www.google-analytics.com"
COLLECT = f"{GOOGLE}/mp/collect"
DEBUG = f"{GOOGLE}/debug/mp/collect"
MID = "G-TEST123"
SECRET = "s3cr3t-api"
KEY = "lead-5f1c:form:sub-1:ga4-form-submit"


def ga4(http: httpx.AsyncClient, base_url: str = GOOGLE, **kwargs) -> GA4Client:
    return GA4Client(http, base_url=base_url, measurement_id=MID, api_secret=SECRET, **kwargs)


def event(**overrides) -> AnalyticsEvent:
    fields = {"client_id": "123456.7654321", "user_id": "lead-5f1c", "name": "generate_lead", "params": {}}
    return AnalyticsEvent(**{**fields, **overrides})


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client


# --- the request, as the Measurement Protocol reference describes it ---------------------------


@respx.mock
async def test_send_event_posts_the_documented_payload(http):
    route = respx.post(COLLECT).mock(return_value=httpx.Response(204))
    occurred = datetime.now(UTC) - timedelta(hours=1)
    result = await ga4(http).send_event(
        event(
            params={"form_id": "demo", "value": 10, "currency": "EUR", "empty": None}, occurred_at=occurred
        ),
        idempotency_key=KEY,
    )
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.url.params["measurement_id"] == MID and request.url.params["api_secret"] == SECRET
    assert "authorization" not in request.headers
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "client_id": "123456.7654321",
        "user_id": "lead-5f1c",
        "timestamp_micros": int(occurred.timestamp() * 1_000_000),
        "events": [
            {
                "name": "generate_lead",
                "params": {"form_id": "demo", "value": 10, "currency": "EUR", EVENT_ID_PARAM: KEY},
            }
        ],
    }
    assert result.provider == "ga4" and result.object_type == "event"
    assert result.id == KEY and result.created


@respx.mock
async def test_optional_fields_are_left_out_and_non_personalized_ads_is_sent_when_set(http):
    route = respx.post(COLLECT).mock(return_value=httpx.Response(204))
    await ga4(http, non_personalized_ads=True).send_event(event(user_id=None), idempotency_key=KEY)
    body = json.loads(route.calls.last.request.content)
    assert "user_id" not in body and "timestamp_micros" not in body
    assert body["non_personalized_ads"] is True


@respx.mock
async def test_purchase_carries_a_transaction_id_so_ga4_dedupes_it(http):
    route = respx.post(COLLECT).mock(return_value=httpx.Response(204))
    await ga4(http).send_event(event(name="purchase", params={"value": 99.0}), idempotency_key=KEY)
    await ga4(http).send_event(
        event(name="purchase", params={"transaction_id": "ORDER-7"}), idempotency_key=KEY
    )
    first, second = (json.loads(call.request.content)["events"][0]["params"] for call in route.calls)
    assert first["transaction_id"] == KEY
    assert second["transaction_id"] == "ORDER-7"


@respx.mock
async def test_a_long_key_becomes_a_stable_hashed_event_id(http):
    route = respx.post(COLLECT).mock(return_value=httpx.Response(204))
    long_key = "lead-" + "x" * 200 + ":step"
    first = await ga4(http).send_event(event(), idempotency_key=long_key)
    again = await ga4(http).send_event(event(), idempotency_key=long_key)
    assert first.id == again.id == event_id_for(long_key) != long_key
    assert len(first.id) <= 100
    assert json.loads(route.calls.last.request.content)["events"][0]["params"][EVENT_ID_PARAM] == first.id


@respx.mock
async def test_a_batch_shares_one_request_and_derives_an_id_per_event(http):
    route = respx.post(COLLECT).mock(return_value=httpx.Response(204))
    await ga4(http).send_events([event(name="a_step"), event(name="b_step")], idempotency_key=KEY)
    events = json.loads(route.calls.last.request.content)["events"]
    assert [e["params"][EVENT_ID_PARAM] for e in events] == [KEY, f"{KEY}:1"]


# --- the documented limits, enforced before sending ---------------------------------------------

TOO_OLD = datetime.now(UTC) - timedelta(hours=73)


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (event(name="session_start"), "reserved"),
        (event(name="firebase_thing"), "reserved"),
        (event(name="1st_visit"), "start with a letter"),
        (event(name="has space"), "start with a letter"),
        (event(name="n" * 41), "at most 40"),
        (event(params={f"p{i}": i for i in range(25)}), "26 parameters"),
        (event(params={"ga_source": "x"}), "reserved"),
        (event(params={"bad-name": "x"}), "parameter 'bad-name'"),
        (event(params={"note": "v" * 101}), "101 characters"),
        (event(params={"nested": {"a": 1}}), "values are strings or numbers"),
        (event(params={"items": "sku-1"}), "list of objects"),
        (event(user_id="ada@example.com"), "user_id looks like an email"),
        (event(client_id="ada@example.com"), "client_id looks like an email"),
        (event(params={"contact": "mail ada@example.com now"}), "holds an email address"),
        (event(occurred_at=TOO_OLD), "72 hours"),
    ],
)
@respx.mock
async def test_what_ga4_would_silently_drop_is_refused_before_sending(http, bad, said):
    route = respx.post(COLLECT).mock(return_value=httpx.Response(204))
    with pytest.raises(PermanentPlatformError) as caught:
        await ga4(http).send_event(bad, idempotency_key=KEY)
    assert said in str(caught.value)
    assert not route.called


@respx.mock
async def test_limits_are_inclusive(http):
    route = respx.post(COLLECT).mock(return_value=httpx.Response(204))
    params = {f"p{i}": "v" * 100 for i in range(24)}  # 24 + journeys_event_id = 25
    await ga4(http).send_event(event(name="n" * 40, params=params), idempotency_key=KEY)
    await ga4(http).send_event(
        event(params={"page_location": "https://x.test/" + "a" * 900}), idempotency_key=KEY
    )
    assert route.call_count == 2


@respx.mock
async def test_at_most_25_events_per_request_of_one_user(http):
    route = respx.post(COLLECT).mock(return_value=httpx.Response(204))
    with pytest.raises(PermanentPlatformError, match="26 events"):
        await ga4(http).send_events([event()] * 26, idempotency_key=KEY)
    with pytest.raises(PermanentPlatformError, match="share client_id"):
        await ga4(http).send_events([event(), event(user_id="lead-other")], idempotency_key=KEY)
    await ga4(http).send_events([event()] * 25, idempotency_key=KEY)
    assert route.call_count == 1


def test_the_measurement_id_and_secret_are_checked_at_construction():
    http = httpx.AsyncClient()
    with pytest.raises(ValueError, match="G-"):
        GA4Client(http, base_url=GOOGLE, measurement_id="UA-1234-1", api_secret="s")
    with pytest.raises(ValueError, match="api_secret"):
        GA4Client(http, base_url=GOOGLE, measurement_id=MID, api_secret="")


# --- the validation server ------------------------------------------------------------------------


@respx.mock
async def test_validate_asks_the_validation_server_without_client_side_checks(http):
    messages = {
        "validationMessages": [
            {
                "fieldPath": "events",
                "description": "Event at index: [0] has name [session_start] which is reserved.",
                "validationCode": "NAME_RESERVED",
            }
        ]
    }
    route = respx.post(DEBUG).mock(return_value=httpx.Response(200, json=messages))
    found = await ga4(http).validate(event(name="session_start"), idempotency_key=KEY)
    assert [m.validationCode for m in found] == ["NAME_RESERVED"]
    assert found[0].fieldPath == "events" and "session_start" in found[0].description
    sent = route.calls.last.request
    assert sent.url.params["measurement_id"] == MID
    assert json.loads(sent.content)["events"][0]["params"] == {EVENT_ID_PARAM: KEY}


@respx.mock
async def test_validate_of_a_valid_event_is_empty(http):
    respx.post(DEBUG).mock(return_value=httpx.Response(200, json={"validationMessages": []}))
    assert await ga4(http).validate(event()) == []


# --- Google's error answers -----------------------------------------------------------------------

GFE_500 = "<!DOCTYPE html><html><title>Error 500 (Server Error)!!1</title><p>That's an error.</html>"


@respx.mock
async def test_server_errors_are_transient_with_the_page_title(http):
    respx.post(COLLECT).mock(
        return_value=httpx.Response(500, text=GFE_500, headers={"content-type": "text/html"})
    )
    with pytest.raises(TransientPlatformError) as caught:
        await ga4(http).send_event(event(), idempotency_key=KEY)
    assert caught.value.status == 500
    assert "Error 500 (Server Error)!!1" in str(caught.value) and "<html>" not in str(caught.value)


@respx.mock
async def test_429_is_rate_limited_with_google_retry_after(http):
    respx.post(COLLECT).mock(
        return_value=httpx.Response(429, text="Too Many Requests", headers={"Retry-After": "30"})
    )
    with pytest.raises(RateLimitedError) as caught:
        await ga4(http).send_event(event(), idempotency_key=KEY)
    assert caught.value.retry_after == 30


@pytest.mark.parametrize("status", [400, 401, 403, 404])
@respx.mock
async def test_other_client_errors_are_permanent(http, status):
    page = f"<html><title>Error {status} (Not Allowed)!!1</title></html>"
    respx.post(COLLECT).mock(return_value=httpx.Response(status, text=page))
    with pytest.raises(PermanentPlatformError) as caught:
        await ga4(http).send_event(event(), idempotency_key=KEY)
    assert caught.value.status == status and f"Error {status}" in str(caught.value)


@respx.mock
async def test_timeouts_are_transient(http):
    respx.post(COLLECT).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientPlatformError, match="timeout"):
        await ga4(http).send_event(event(), idempotency_key=KEY)


# --- against the sandbox ----------------------------------------------------------------------------


@pytest.fixture
def sandbox():
    return create_app(seed=1)


@pytest.fixture
async def sandbox_http(sandbox):
    async with in_process(sandbox) as client:
        yield client


def on_sandbox(http: httpx.AsyncClient) -> GA4Client:
    return ga4(http, base_url="http://sandbox/ga4")


def ga4_calls(sandbox) -> list[dict]:
    return [c for c in sandbox.state.sandbox.calls if c["provider"] == "ga4"]


async def test_sandbox_collect_stores_the_event(sandbox_http, sandbox):
    result = await on_sandbox(sandbox_http).send_event(event(params={"form_id": "demo"}), idempotency_key=KEY)
    stored = list(sandbox.state.sandbox.records["ga4_events"].values())
    assert len(stored) == 1
    assert stored[0]["name"] == "generate_lead" and stored[0]["params"]["form_id"] == "demo"
    assert stored[0]["event_id"] == result.id == KEY
    call = ga4_calls(sandbox)[-1]
    assert call["path"] == "/mp/collect" and call["status"] == 204
    assert call["effect"] == "created" and call["object_id"] == KEY


async def test_sandbox_shows_at_least_once_a_repeat_is_counted_again(sandbox_http, sandbox):
    """GA4 does not dedupe: a replay is stored again, with the same journeys_event_id to remove it by."""
    first = await on_sandbox(sandbox_http).send_event(event(), idempotency_key=KEY)
    again = await on_sandbox(sandbox_http).send_event(event(), idempotency_key=KEY)
    assert first.id == again.id
    stored = list(sandbox.state.sandbox.records["ga4_events"].values())
    assert [s["event_id"] for s in stored] == [KEY, KEY]
    assert len({s["id"] for s in stored}) == 2


async def test_sandbox_dedupes_a_purchase_by_transaction_id(sandbox_http, sandbox):
    client = on_sandbox(sandbox_http)
    first = await client.send_event(event(name="purchase", params={"value": 5}), idempotency_key=KEY)
    again = await client.send_event(event(name="purchase", params={"value": 5}), idempotency_key=KEY)
    assert first.id == again.id
    assert len(sandbox.state.sandbox.records["ga4_events"]) == 1
    assert [c["effect"] for c in ga4_calls(sandbox)] == ["created", "duplicate"]
    # Another user's purchase with the same transaction id is a purchase of its own.
    await client.send_event(
        event(name="purchase", user_id="lead-other", params={"transaction_id": KEY}), idempotency_key="k2"
    )
    assert len(sandbox.state.sandbox.records["ga4_events"]) == 2


async def test_sandbox_drops_events_of_a_wrong_secret_but_still_answers_2xx(sandbox_http, sandbox):
    registered = await sandbox_http.put(f"/ga4/_streams/{MID}", json={"api_secret": "the-real-one"})
    assert registered.status_code == 200
    result = await on_sandbox(sandbox_http).send_event(event(), idempotency_key=KEY)
    assert result.created  # Google says nothing either
    assert sandbox.state.sandbox.records.get("ga4_events", {}) == {}
    call = ga4_calls(sandbox)[-1]
    assert call["status"] == 204 and "effect" not in call and "api_secret" in call["ga4_dropped"]


async def test_sandbox_collect_drops_invalid_events_silently(sandbox_http, sandbox):
    raw = {"client_id": "1.2", "events": [{"name": "session_start"}, {"name": "ok_event", "params": {}}]}
    answer = await sandbox_http.post(f"/ga4/mp/collect?measurement_id={MID}&api_secret=x", json=raw)
    assert answer.status_code == 204
    assert [e["name"] for e in sandbox.state.sandbox.records["ga4_events"].values()] == ["ok_event"]


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (event(name="session_start"), "NAME_RESERVED"),
        (event(name="1st"), "NAME_INVALID"),
        (event(params={f"p{i}": i for i in range(25)}), "EXCEEDED_MAX_ENTITIES"),
        (event(params={"google_x": 1}), "NAME_RESERVED"),
        (event(params={"note": "v" * 101}), "VALUE_OUT_OF_BOUNDS"),
        (event(params={"nested": {"a": 1}}), "VALUE_INVALID"),
        (event(occurred_at=TOO_OLD), "VALUE_OUT_OF_BOUNDS"),
    ],
)
async def test_client_rules_and_the_validation_server_agree(sandbox_http, bad, code):
    client = on_sandbox(sandbox_http)
    with pytest.raises(PermanentPlatformError):
        await client.send_event(bad, idempotency_key=KEY)
    found = await client.validate(bad, idempotency_key=KEY)
    assert code in [m.validationCode for m in found]


async def test_the_validation_server_accepts_a_valid_event_and_stores_nothing(sandbox_http, sandbox):
    assert await on_sandbox(sandbox_http).validate(event(), idempotency_key=KEY) == []
    assert sandbox.state.sandbox.records.get("ga4_events", {}) == {}
    assert "effect" not in ga4_calls(sandbox)[-1]


async def test_the_validation_server_requires_client_id_and_events(sandbox_http):
    answer = await sandbox_http.post(f"/ga4/debug/mp/collect?measurement_id={MID}&api_secret=x", json={})
    codes = {(m["fieldPath"], m["validationCode"]) for m in answer.json()["validationMessages"]}
    assert codes == {("client_id", "VALUE_REQUIRED"), ("events", "VALUE_REQUIRED")}


async def test_sandbox_429_carries_the_retry_delay(sandbox_http, sandbox):
    sandbox.state.sandbox.faults["ga4"] = Faults(fail_next=1, fail_status=429, retry_after_seconds=7)
    with pytest.raises(RateLimitedError) as caught:
        await on_sandbox(sandbox_http).send_event(event(), idempotency_key=KEY)
    assert caught.value.retry_after == 7 and "Too Many Requests" in str(caught.value)
    # The fault was the answer: nothing was recorded, and the retry goes through.
    assert sandbox.state.sandbox.records.get("ga4_events", {}) == {}
    await on_sandbox(sandbox_http).send_event(event(), idempotency_key=KEY)
    assert len(sandbox.state.sandbox.records["ga4_events"]) == 1


async def test_sandbox_server_errors_are_transient(sandbox_http, sandbox):
    sandbox.state.sandbox.faults["ga4"] = Faults(fail_next=1, fail_status=502)
    with pytest.raises(TransientPlatformError) as caught:
        await on_sandbox(sandbox_http).send_event(event(), idempotency_key=KEY)
    assert caught.value.status == 502 and "Bad Gateway" in str(caught.value)
