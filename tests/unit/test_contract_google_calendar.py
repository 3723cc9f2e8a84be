"""Google Calendar connector: the requests it sends and how it reads Google's answers (respx), then
the same client against the sandbox's emulation of Calendar API v3 and the OAuth token endpoint."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from platforms.errors import PermanentPlatformError, RateLimitedError, TransientPlatformError
from platforms.google_calendar import GoogleCalendarClient, event_id_for
from platforms.ports import CalendarEvent
from sandbox.app import Faults, create_app
from tests.helpers.platforms import in_process

API = "https://www.googleapis.com"
EVENTS_URL = f"{API}/calendar/v3/calendars/primary/events"
TOKEN_URL = "https://oauth2.googleapis.com/token"
KEY = "wf-42/book-meeting"


def meeting(**changes: Any) -> CalendarEvent:
    fields: dict[str, Any] = {
        "summary": "Intro call: Acme x Journeys",
        "description": "Booked from the demo form",
        "start": datetime(2025, 3, 4, 15, 0, tzinfo=UTC),
        "end": datetime(2025, 3, 4, 15, 30, tzinfo=UTC),
        "time_zone": "Europe/Berlin",
        "attendees": ["ada@acme.example", "rep@journeys.example"],
    }
    fields.update(changes)
    return CalendarEvent(**fields)


def google_error(status: int, reason: str, message: str, domain: str = "global") -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error": {
                "code": status,
                "message": message,
                "errors": [{"domain": domain, "reason": reason, "message": message}],
                "status": "X",
            }
        },
    )


def event_body(event_id: str, key: str = KEY) -> dict[str, Any]:
    return {
        "kind": "calendar#event",
        "id": event_id,
        "status": "confirmed",
        "extendedProperties": {"private": {"journeysIdempotencyKey": key}},
    }


def client(http: httpx.AsyncClient, **options: Any) -> GoogleCalendarClient:
    options.setdefault("access_token", "ya29.given")
    return GoogleCalendarClient(http, base_url=API, **options)


def refreshing(http: httpx.AsyncClient, **options: Any) -> GoogleCalendarClient:
    return GoogleCalendarClient(
        http,
        base_url=API,
        refresh_token="1//refresh",
        client_id="cid.apps.googleusercontent.com",
        client_secret="secret",
        **options,
    )


def test_event_ids_are_base32hex_and_stable():
    first = event_id_for(KEY)
    assert first == event_id_for(KEY) != event_id_for(KEY + "x")
    assert re.fullmatch(r"[a-v0-9]{5,1024}", first) and len(first) == 52


async def test_credentials_are_required():
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError):
            GoogleCalendarClient(http, base_url=API)
        with pytest.raises(ValueError):
            GoogleCalendarClient(http, base_url=API, refresh_token="r", client_id="c")


# --- contract -------------------------------------------------------------------------------------


@respx.mock
async def test_insert_sends_the_documented_request():
    insert = respx.post(EVENTS_URL).mock(return_value=httpx.Response(200, json=event_body(event_id_for(KEY))))
    async with httpx.AsyncClient() as http:
        result = await client(http).create_event(meeting(), idempotency_key=KEY)

    assert result.provider == "google" and result.object_type == "event"
    assert result.created and result.id == event_id_for(KEY)
    sent = insert.calls.last.request
    assert sent.url.params["sendUpdates"] == "all"
    assert sent.headers["Authorization"] == "Bearer ya29.given"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.content) == {
        "id": event_id_for(KEY),
        "summary": "Intro call: Acme x Journeys",
        "description": "Booked from the demo form",
        "start": {"dateTime": "2025-03-04T15:00:00+00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2025-03-04T15:30:00+00:00", "timeZone": "Europe/Berlin"},
        "attendees": [{"email": "ada@acme.example"}, {"email": "rep@journeys.example"}],
        "extendedProperties": {"private": {"journeysIdempotencyKey": KEY}},
    }


@respx.mock
async def test_calendar_ids_are_escaped_in_the_path():
    url = f"{API}/calendar/v3/calendars/team%40group.calendar.google.com/events"
    insert = respx.post(url).mock(return_value=httpx.Response(200, json=event_body(event_id_for(KEY))))
    async with httpx.AsyncClient() as http:
        await client(http).create_event(
            meeting(calendar_id="team@group.calendar.google.com"), idempotency_key=KEY
        )
    assert insert.called


@respx.mock
async def test_409_duplicate_reads_the_earlier_event_back():
    event_id = event_id_for(KEY)
    respx.post(EVENTS_URL).mock(
        return_value=google_error(409, "duplicate", "The requested identifier already exists.")
    )
    read = respx.get(f"{EVENTS_URL}/{event_id}").mock(
        return_value=httpx.Response(200, json=event_body(event_id))
    )
    async with httpx.AsyncClient() as http:
        result = await client(http).create_event(meeting(), idempotency_key=KEY)
    assert not result.created and result.id == event_id
    assert read.calls.last.request.headers["Authorization"] == "Bearer ya29.given"


@respx.mock
async def test_409_for_an_event_of_another_key_is_permanent():
    event_id = event_id_for(KEY)
    respx.post(EVENTS_URL).mock(
        return_value=google_error(409, "duplicate", "The requested identifier already exists.")
    )
    respx.get(f"{EVENTS_URL}/{event_id}").mock(
        return_value=httpx.Response(200, json=event_body(event_id, key="someone-else"))
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(PermanentPlatformError, match="another key"):
            await client(http).create_event(meeting(), idempotency_key=KEY)


@respx.mock
async def test_409_whose_event_cannot_be_read_yet_is_transient():
    respx.post(EVENTS_URL).mock(
        return_value=google_error(409, "duplicate", "The requested identifier already exists.")
    )
    respx.get(f"{EVENTS_URL}/{event_id_for(KEY)}").mock(
        return_value=google_error(404, "notFound", "Not Found")
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(TransientPlatformError) as caught:
            await client(http).create_event(meeting(), idempotency_key=KEY)
    assert caught.value.status == 409


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            google_error(400, "timeRangeEmpty", "The specified time range is empty.", "calendar"),
            "timeRangeEmpty",
        ),
        (google_error(400, "invalid", "Invalid attendee email."), "Invalid attendee email."),
        (google_error(403, "forbidden", "Forbidden"), "403 forbidden: Forbidden"),
        (
            google_error(403, "requiredAccessLevel", "You need to have writer access to this calendar."),
            "writer",
        ),
        (google_error(404, "notFound", "Not Found"), "404 notFound: Not Found"),
        (google_error(410, "deleted", "Resource has been deleted"), "deleted"),
    ],
)
@respx.mock
async def test_client_errors_are_permanent_with_googles_reason(response, expected):
    respx.post(EVENTS_URL).mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PermanentPlatformError) as caught:
            await client(http).create_event(meeting(), idempotency_key=KEY)
    assert expected in str(caught.value) and caught.value.status == response.status_code
    assert not isinstance(caught.value, TransientPlatformError)


@pytest.mark.parametrize(
    ("response", "retry_after"),
    [
        (google_error(403, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"), 5.0),
        (google_error(403, "userRateLimitExceeded", "User Rate Limit Exceeded", "usageLimits"), 5.0),
        (google_error(429, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"), 5.0),
        (google_error(403, "quotaExceeded", "Calendar usage limits exceeded.", "usageLimits"), 3600.0),
    ],
)
@respx.mock
async def test_rate_limits_in_googles_ways(response, retry_after):
    respx.post(EVENTS_URL).mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(RateLimitedError) as caught:
            await client(http).create_event(meeting(), idempotency_key=KEY)
    assert caught.value.retry_after == retry_after and caught.value.status == response.status_code


@respx.mock
async def test_429_retry_after_header_wins():
    limited = google_error(429, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits")
    limited.headers["Retry-After"] = "12"
    respx.post(EVENTS_URL).mock(return_value=limited)
    async with httpx.AsyncClient() as http:
        with pytest.raises(RateLimitedError) as caught:
            await client(http).create_event(meeting(), idempotency_key=KEY)
    assert caught.value.retry_after == 12


@pytest.mark.parametrize("status", [500, 502, 503])
@respx.mock
async def test_server_errors_are_transient(status):
    respx.post(EVENTS_URL).mock(return_value=google_error(status, "backendError", "Backend Error"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(TransientPlatformError) as caught:
            await client(http).create_event(meeting(), idempotency_key=KEY)
    assert not isinstance(caught.value, RateLimitedError) and "backendError" in str(caught.value)


@respx.mock
async def test_401_with_a_given_token_is_permanent_and_asks_no_token():
    respx.post(EVENTS_URL).mock(return_value=google_error(401, "authError", "Invalid Credentials"))
    token = respx.post(TOKEN_URL)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PermanentPlatformError, match="authError: Invalid Credentials") as caught:
            await client(http).create_event(meeting(), idempotency_key=KEY)
    assert caught.value.status == 401 and not token.called


@respx.mock
async def test_refresh_token_flow_gets_and_caches_an_access_token():
    token = respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            200, json={"access_token": "ya29.fresh", "expires_in": 3599, "token_type": "Bearer", "scope": "x"}
        )
    )
    insert = respx.post(EVENTS_URL).mock(return_value=httpx.Response(200, json=event_body("abcde")))
    throttle_keys: list[str] = []

    class Throttle:
        async def acquire(self, key: str) -> None:
            throttle_keys.append(key)

    async with httpx.AsyncClient() as http:
        calendar = refreshing(http, throttle=Throttle())
        await calendar.create_event(meeting(), idempotency_key="a")
        await calendar.create_event(meeting(), idempotency_key="b")

    assert token.call_count == 1
    asked = token.calls.last.request
    assert asked.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in asked.headers
    assert parse_qs(asked.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["1//refresh"],
        "client_id": ["cid.apps.googleusercontent.com"],
        "client_secret": ["secret"],
    }
    assert [c.request.headers["Authorization"] for c in insert.calls] == ["Bearer ya29.fresh"] * 2
    assert throttle_keys == ["google:oauth", "google", "google"]


@respx.mock
async def test_a_401_refreshes_once_and_repeats_the_call():
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(200, json={"access_token": "ya29.new", "expires_in": 3599})
    )
    insert = respx.post(EVENTS_URL).mock(
        side_effect=[
            google_error(401, "authError", "Invalid Credentials"),
            httpx.Response(200, json=event_body(event_id_for(KEY))),
        ]
    )
    async with httpx.AsyncClient() as http:
        result = await refreshing(http, access_token="ya29.stale").create_event(
            meeting(), idempotency_key=KEY
        )
    assert result.created
    assert [c.request.headers["Authorization"] for c in insert.calls] == [
        "Bearer ya29.stale",
        "Bearer ya29.new",
    ]


@respx.mock
async def test_a_second_401_after_the_refresh_is_permanent():
    token = respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(200, json={"access_token": "ya29.new", "expires_in": 3599})
    )
    respx.post(EVENTS_URL).mock(return_value=google_error(401, "authError", "Invalid Credentials"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PermanentPlatformError, match="Invalid Credentials"):
            await refreshing(http, access_token="ya29.stale").create_event(meeting(), idempotency_key=KEY)
    assert token.call_count == 1


@pytest.mark.parametrize(
    ("response", "error_type", "expected"),
    [
        (
            httpx.Response(
                400,
                json={"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
            ),
            PermanentPlatformError,
            "invalid_grant: Token has been expired or revoked.",
        ),
        (
            httpx.Response(
                401, json={"error": "invalid_client", "error_description": "The OAuth client was not found."}
            ),
            PermanentPlatformError,
            "invalid_client",
        ),
        (httpx.Response(503, text="unavailable"), TransientPlatformError, "503"),
    ],
)
@respx.mock
async def test_token_endpoint_errors(response, error_type, expected):
    respx.post(TOKEN_URL).mock(return_value=response)
    insert = respx.post(EVENTS_URL)
    async with httpx.AsyncClient() as http:
        with pytest.raises(error_type) as caught:
            await refreshing(http).create_event(meeting(), idempotency_key=KEY)
    assert expected in str(caught.value) and not insert.called


async def test_timeouts_are_transient():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as http:
        with pytest.raises(TransientPlatformError, match="timeout"):
            await client(http).create_event(meeting(), idempotency_key=KEY)


# --- against the sandbox --------------------------------------------------------------------------


@pytest.fixture
def sandbox():
    return create_app(seed=1)


@pytest.fixture
async def http(sandbox):
    async with in_process(sandbox) as client:
        yield client


def calendar(http: httpx.AsyncClient, **options: Any) -> GoogleCalendarClient:
    if "refresh_token" in options:
        options.setdefault("client_id", "cid")
        options.setdefault("client_secret", "secret")
        options.setdefault("token_url", "http://sandbox/google/token")
    elif "access_token" not in options:
        options["access_token"] = "ya29.sandbox"
    return GoogleCalendarClient(http, base_url="http://sandbox/google", **options)


def effects(sandbox, kind: str) -> list[dict[str, Any]]:
    return [c for c in sandbox.state.sandbox.calls if c.get("effect") == kind]


async def test_sandbox_insert_is_idempotent(http, sandbox):
    first = await calendar(http).create_event(meeting(), idempotency_key=KEY)
    again = await calendar(http).create_event(meeting(), idempotency_key=KEY)
    other = await calendar(http).create_event(meeting(), idempotency_key=KEY + "-2")

    assert first.created and not again.created and other.created
    assert first.id == again.id == event_id_for(KEY) != other.id
    assert len(sandbox.state.sandbox.records["google_events"]) == 2
    assert [c["object_id"] for c in effects(sandbox, "created")] == [first.id, other.id]
    assert [c["object_id"] for c in effects(sandbox, "duplicate")] == [first.id]
    # The replay sent no second invitation: two attendees, two events.
    assert len(sandbox.state.sandbox.records["google_invitations"]) == 4
    paths = [(c["method"], c["path"]) for c in sandbox.state.sandbox.calls]
    assert ("GET", f"/calendar/v3/calendars/primary/events/{first.id}") in paths
    insert = sandbox.state.sandbox.calls[0]
    assert insert["query"] == "sendUpdates=all"


async def test_sandbox_refresh_flow(http, sandbox):
    result = await calendar(http, refresh_token="1//sandbox").create_event(meeting(), idempotency_key=KEY)
    assert result.created
    calls = sandbox.state.sandbox.calls
    assert [c["path"] for c in calls] == ["/token", "/calendar/v3/calendars/primary/events"]
    assert "access_token" not in str(calls[0]["body"])


async def test_sandbox_stale_token_is_refreshed_once(http, sandbox):
    result = await calendar(http, refresh_token="1//sandbox", access_token="ya29.expired").create_event(
        meeting(), idempotency_key=KEY
    )
    assert result.created
    statuses = [(c["path"], c["status"]) for c in sandbox.state.sandbox.calls]
    assert statuses == [
        ("/calendar/v3/calendars/primary/events", 401),
        ("/token", 200),
        ("/calendar/v3/calendars/primary/events", 200),
    ]


async def test_sandbox_auth_failures(http, sandbox):
    with pytest.raises(PermanentPlatformError, match="401 authError: Invalid Credentials"):
        await calendar(http, access_token="ya29.expired").create_event(meeting(), idempotency_key=KEY)
    with pytest.raises(PermanentPlatformError, match="invalid_grant"):
        await calendar(http, refresh_token="1//revoked").create_event(meeting(), idempotency_key=KEY)
    assert not effects(sandbox, "created")


async def test_sandbox_injected_faults_are_classified(http, sandbox):
    sandbox.state.sandbox.faults["google"] = Faults(fail_next=1, fail_status=429, retry_after_seconds=7)
    with pytest.raises(RateLimitedError) as caught:
        await calendar(http).create_event(meeting(), idempotency_key=KEY)
    assert caught.value.retry_after == 7 and "rateLimitExceeded" in str(caught.value)
    sandbox.state.sandbox.faults["google"] = Faults(fail_next=1, fail_status=503)
    with pytest.raises(TransientPlatformError, match="backendError"):
        await calendar(http).create_event(meeting(), idempotency_key=KEY)
    result = await calendar(http).create_event(meeting(), idempotency_key=KEY)
    assert result.created and len(effects(sandbox, "created")) == 1


async def test_sandbox_validation_errors(http, sandbox):
    backwards = meeting(start=datetime(2025, 3, 4, 16, 0, tzinfo=UTC))
    with pytest.raises(PermanentPlatformError, match="timeRangeEmpty") as caught:
        await calendar(http).create_event(backwards, idempotency_key=KEY)
    assert caught.value.status == 400
    with pytest.raises(PermanentPlatformError, match="Invalid attendee email"):
        await calendar(http).create_event(meeting(attendees=["not-an-email"]), idempotency_key=KEY)
    with pytest.raises(PermanentPlatformError, match="404 notFound") as missing:
        await calendar(http).create_event(meeting(calendar_id="no-such-calendar"), idempotency_key=KEY)
    assert missing.value.status == 404
    assert not effects(sandbox, "created")


async def test_sandbox_rejects_ids_outside_base32hex(http):
    answer = await http.post(
        "/google/calendar/v3/calendars/primary/events",
        headers={"Authorization": "Bearer ya29.x"},
        json={
            "id": "Not-Base32hex!",
            "start": {"dateTime": "2025-03-04T15:00:00Z"},
            "end": {"dateTime": "2025-03-04T16:00:00Z"},
        },
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["errors"][0]["message"] == "Invalid resource id value."
