"""Klaviyo: the exact requests the client sends and how it reads Klaviyo's answers (respx), then the
client against the sandbox's emulation, in process: idempotency, faults, pagination, auth."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from domain import api_versions
from platforms.errors import PermanentPlatformError, RateLimitedError, TransientPlatformError
from platforms.klaviyo import KlaviyoClient, profile_attributes
from platforms.ports import EmailMessage, Person
from sandbox import klaviyo as klaviyo_sandbox
from sandbox.app import Faults, create_app
from tests.helpers.platforms import in_process

API = "https://a.klaviyo.com"
REVISION = api_versions.default("klaviyo_revision")
JSON_API = "application/vnd.api+json"


class Keys:
    """A throttle that records the bucket each call drew from."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def acquire(self, key: str) -> None:
        self.keys.append(key)


class Seen:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def observe(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        self.calls.append((provider, operation, outcome))


def errors(status: int, code: str, detail: str, pointer: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"id": "e1", "status": status, "code": code, "title": code, "detail": detail}
    if pointer:
        error["source"] = {"pointer": pointer}
    return {"errors": [error]}


def profile_doc(profile_id: str, email: str, consent: str = "SUBSCRIBED", suppression: Any = None) -> Any:
    marketing = {
        "can_receive_email_marketing": not suppression,
        "consent": consent,
        "suppression": suppression or [],
    }
    return {
        "type": "profile",
        "id": profile_id,
        "attributes": {"email": email, "subscriptions": {"email": {"marketing": marketing}}},
    }


def collection(*items: Any, next_url: str | None = None) -> dict[str, Any]:
    return {"data": list(items), "links": {"self": "x", "next": next_url, "prev": None}}


@pytest.fixture
async def real():
    async with httpx.AsyncClient() as http:
        throttle, observer = Keys(), Seen()
        client = KlaviyoClient(
            http, base_url=API, api_key="pk_live", revision=REVISION, throttle=throttle, observer=observer
        )
        yield client, throttle, observer


def body_of(route: respx.Route, n: int = -1) -> Any:
    return json.loads(route.calls[n].request.content)


# -- contract: requests ------------------------------------------------------------------


@respx.mock
async def test_upsert_profile_posts_profile_import_with_segment_properties(real):
    client, throttle, _ = real
    route = respx.post(f"{API}/api/profile-import").mock(
        return_value=httpx.Response(201, json={"data": {"type": "profile", "id": "01P"}})
    )
    person = Person(
        email="Ada@Example.com ",
        lead_id="lead-1",
        first_name="Ada",
        company="Analytical Engines",
        job_title="CTO",
        phone="+44 20 7946 0958",
        country="GB",
        lifecycle_stage="mql",
        lead_score=72,
        properties={"journeys_score_band": "hot"},
    )
    result = await client.upsert_profile(person, idempotency_key="wf-1:sync")
    assert (result.id, result.created, result.object_type) == ("01P", True, "profile")
    request = route.calls[0].request
    assert request.headers["Authorization"] == "Klaviyo-API-Key pk_live"
    assert request.headers["revision"] == REVISION
    assert request.headers["Content-Type"] == JSON_API and request.headers["Accept"] == JSON_API
    assert request.headers["Idempotency-Key"] == "wf-1:sync"
    assert body_of(route) == {
        "data": {
            "type": "profile",
            "attributes": {
                "email": "ada@example.com",
                "first_name": "Ada",
                "organization": "Analytical Engines",
                "title": "CTO",
                "location": {"country": "GB"},
                "phone_number": "+442079460958",
                "properties": {
                    "journeys_lead_id": "lead-1",
                    "lead_score": 72,
                    "lifecycle_stage": "mql",
                    "journeys_score_band": "hot",
                },
            },
        }
    }
    assert throttle.keys == ["klaviyo:profiles"]


@respx.mock
async def test_an_existing_profile_answers_200_and_is_not_created(real):
    client, _, _ = real
    respx.post(f"{API}/api/profile-import").mock(
        return_value=httpx.Response(200, json={"data": {"type": "profile", "id": "01P"}})
    )
    result = await client.upsert_profile(Person(email="ada@x.com", lead_score=10), idempotency_key="k")
    assert result.id == "01P" and result.created is False


def test_a_phone_klaviyo_would_refuse_is_kept_as_a_property_and_none_fields_are_left_out():
    attributes = profile_attributes(Person(email="ada@x.com", phone="call me maybe", last_name=None))
    assert "phone_number" not in attributes and "last_name" not in attributes
    assert attributes["properties"] == {"phone": "call me maybe"}


@respx.mock
async def test_add_to_list_subscribes_with_consent_when_not_yet_a_member(real):
    client, throttle, _ = real
    members = respx.get(f"{API}/api/lists/Y6nRLr/profiles").mock(
        return_value=httpx.Response(200, json=collection())
    )
    profiles = respx.get(f"{API}/api/profiles").mock(
        return_value=httpx.Response(200, json=collection(profile_doc("01P", "ada@x.com", "NEVER_SUBSCRIBED")))
    )
    job = respx.post(f"{API}/api/profile-subscription-bulk-create-jobs").mock(
        return_value=httpx.Response(202)
    )
    result = await client.add_to_list("Ada@x.com", "Y6nRLr", idempotency_key="wf-1:list")
    assert (result.id, result.created, result.object_type) == ("Y6nRLr:01P", True, "list-membership")
    query = members.calls[0].request.url.params
    assert query["filter"] == 'equals(email,"ada@x.com")'
    assert query["additional-fields[profile]"] == "subscriptions"
    assert profiles.calls[0].request.url.params["filter"] == 'equals(email,"ada@x.com")'
    assert body_of(job) == {
        "data": {
            "type": "profile-subscription-bulk-create-job",
            "attributes": {
                "custom_source": "journeys",
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "id": "01P",
                            "attributes": {
                                "email": "ada@x.com",
                                "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},
                            },
                        }
                    ]
                },
            },
            "relationships": {"list": {"data": {"type": "list", "id": "Y6nRLr"}}},
        }
    }
    assert throttle.keys == ["klaviyo:lists", "klaviyo:profiles", "klaviyo:subscriptions"]


@respx.mock
async def test_add_to_list_creates_a_bare_profile_first_when_klaviyo_has_none(real):
    client, _, _ = real
    respx.get(f"{API}/api/lists/L1/profiles").mock(return_value=httpx.Response(200, json=collection()))
    respx.get(f"{API}/api/profiles").mock(return_value=httpx.Response(200, json=collection()))
    imported = respx.post(f"{API}/api/profile-import").mock(
        return_value=httpx.Response(201, json={"data": {"type": "profile", "id": "01NEW"}})
    )
    respx.post(f"{API}/api/profile-subscription-bulk-create-jobs").mock(return_value=httpx.Response(202))
    result = await client.add_to_list("new@x.com", "L1", idempotency_key="k")
    assert result.id == "L1:01NEW" and result.created
    assert body_of(imported) == {"data": {"type": "profile", "attributes": {"email": "new@x.com"}}}


@respx.mock
async def test_a_subscribed_member_is_left_alone(real):
    client, _, _ = real
    respx.get(f"{API}/api/lists/L1/profiles").mock(
        return_value=httpx.Response(200, json=collection(profile_doc("01P", "ada@x.com")))
    )
    job = respx.post(f"{API}/api/profile-subscription-bulk-create-jobs")
    result = await client.add_to_list("ada@x.com", "L1", idempotency_key="k")
    assert result.id == "L1:01P" and result.created is False
    assert not job.called


@respx.mock
async def test_remove_from_list_deletes_the_membership_relationship(real):
    client, throttle, _ = real
    respx.get(f"{API}/api/lists/L1/profiles").mock(
        return_value=httpx.Response(200, json=collection(profile_doc("01P", "ada@x.com")))
    )
    delete = respx.delete(f"{API}/api/lists/L1/relationships/profiles").mock(return_value=httpx.Response(204))
    result = await client.remove_from_list("ada@x.com", "L1", idempotency_key="k")
    assert result.id == "L1:01P" and result.created
    assert body_of(delete) == {"data": [{"type": "profile", "id": "01P"}]}
    assert delete.calls[0].request.headers["revision"] == REVISION
    assert throttle.keys == ["klaviyo:lists", "klaviyo:list-removals"]


@respx.mock
async def test_send_email_posts_an_event_whose_unique_id_is_the_key(real):
    client, throttle, _ = real
    route = respx.post(f"{API}/api/events").mock(return_value=httpx.Response(202))
    message = EmailMessage(
        to="Ada@x.com",
        template_id="nurture-1",
        variables={"topic": "pricing"},
        sequence_id="seq",
        step_id="s2",
    )
    result = await client.send_email(message, idempotency_key="wf-1:step-2")
    assert (result.id, result.object_type) == ("wf-1:step-2", "event")
    assert body_of(route) == {
        "data": {
            "type": "event",
            "attributes": {
                "properties": {
                    "topic": "pricing",
                    "template_id": "nurture-1",
                    "sequence_id": "seq",
                    "step_id": "s2",
                },
                "metric": {"data": {"type": "metric", "attributes": {"name": "Journeys Sequence Email"}}},
                "profile": {"data": {"type": "profile", "attributes": {"email": "ada@x.com"}}},
                "unique_id": "wf-1:step-2",
            },
        }
    }
    assert throttle.keys == ["klaviyo:events"]


@respx.mock
async def test_suppress_posts_a_suppression_job_unless_already_suppressed(real):
    client, _, _ = real
    profiles = respx.get(f"{API}/api/profiles").mock(
        side_effect=[
            httpx.Response(200, json=collection(profile_doc("01P", "ada@x.com"))),
            httpx.Response(
                200,
                json=collection(
                    profile_doc(
                        "01P", "ada@x.com", suppression=[{"reason": "USER_SUPPRESSED", "timestamp": "t"}]
                    )
                ),
            ),
        ]
    )
    job = respx.post(f"{API}/api/profile-suppression-bulk-create-jobs").mock(
        return_value=httpx.Response(
            202, json={"data": {"type": "profile-suppression-bulk-create-job", "id": "j"}}
        )
    )
    first = await client.suppress("ada@x.com", "unsubscribed", idempotency_key="k")
    again = await client.suppress("ada@x.com", "unsubscribed", idempotency_key="k")
    assert (first.id, first.created) == ("01P", True)
    assert (again.id, again.created) == ("01P", False)
    assert job.call_count == 1 and profiles.call_count == 2
    assert body_of(job) == {
        "data": {
            "type": "profile-suppression-bulk-create-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": {"email": "ada@x.com"}}]}},
        }
    }


@respx.mock
async def test_list_members_follows_links_next_to_the_last_page(real):
    client, _, _ = real
    first_url = f"{API}/api/lists/L1/profiles"
    page2 = f"{API}/api/lists/L1/profiles?page%5Bcursor%5D=c2&page%5Bsize%5D=2"
    page3 = f"{API}/api/lists/L1/profiles?page%5Bcursor%5D=c3&page%5Bsize%5D=2"

    def answer(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("page[cursor]")
        if cursor is None:
            return httpx.Response(
                200, json=collection(profile_doc("1", "a@x.com"), profile_doc("2", "b@x.com"), next_url=page2)
            )
        if cursor == "c2":
            return httpx.Response(
                200, json=collection(profile_doc("3", "c@x.com"), profile_doc("4", "d@x.com"), next_url=page3)
            )
        return httpx.Response(200, json=collection(profile_doc("5", "e@x.com")))

    route = respx.get(url__startswith=first_url).mock(side_effect=answer)
    members = await client.list_members("L1", page_size=2)
    assert [m.id for m in members] == ["1", "2", "3", "4", "5"]
    assert route.call_count == 3
    assert route.calls[0].request.url.params["page[size]"] == "2"


# -- contract: errors --------------------------------------------------------------------


@respx.mock
async def test_validation_errors_are_permanent_and_carry_klaviyo_message(real):
    client, _, observer = real
    respx.post(f"{API}/api/profile-import").mock(
        return_value=httpx.Response(
            400, json=errors(400, "invalid", "Invalid email address", "/data/attributes/email")
        )
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await client.upsert_profile(Person(email="nope@x"), idempotency_key="k")
    assert caught.value.status == 400
    assert "invalid: Invalid email address at /data/attributes/email" in str(caught.value)
    assert observer.calls == [("klaviyo", "profiles.import", "rejected")]


@respx.mock
@pytest.mark.parametrize(
    ("status", "code", "detail"),
    [
        (401, "authentication_failed", "Incorrect authentication credentials."),
        (403, "permission_denied", "You do not have permission to perform this action."),
        (404, "not_found", "A list with id NOPE does not exist."),
    ],
)
async def test_auth_and_not_found_are_permanent(real, status, code, detail):
    client, _, _ = real
    respx.get(f"{API}/api/lists/NOPE/profiles").mock(
        return_value=httpx.Response(status, json=errors(status, code, detail))
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await client.add_to_list("ada@x.com", "NOPE", idempotency_key="k")
    assert caught.value.status == status and code in str(caught.value) and detail in str(caught.value)


@respx.mock
async def test_429_waits_for_retry_after(real):
    client, _, observer = real
    detail = "Request was throttled. Expected available in 12 seconds."
    respx.post(f"{API}/api/events").mock(
        return_value=httpx.Response(
            429, headers={"Retry-After": "12"}, json=errors(429, "throttled", detail, "/data/")
        )
    )
    with pytest.raises(RateLimitedError) as caught:
        await client.send_email(EmailMessage(to="a@x.com", template_id="t"), idempotency_key="k")
    assert caught.value.retry_after == 12 and "throttled" in str(caught.value)
    assert observer.calls == [("klaviyo", "events.create", "rate_limited")]


@respx.mock
@pytest.mark.parametrize(
    ("headers", "detail", "expected"),
    [
        ({}, "Request was throttled. Expected available in 3 seconds.", 3.0),
        ({"Retry-After": "0"}, "Request was throttled. Expected available in 0 seconds.", 1.0),
        ({}, "slow down", 1.0),
    ],
)
async def test_429_without_a_usable_retry_after_reads_the_detail(real, headers, detail, expected):
    client, _, _ = real
    respx.post(f"{API}/api/events").mock(
        return_value=httpx.Response(429, headers=headers, json=errors(429, "throttled", detail))
    )
    with pytest.raises(RateLimitedError) as caught:
        await client.send_email(EmailMessage(to="a@x.com", template_id="t"), idempotency_key="k")
    assert caught.value.retry_after == expected


@respx.mock
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, json=errors(500, "error", "A server error occurred.")),
        httpx.Response(503, text="<html>upstream unavailable</html>"),
    ],
)
async def test_server_errors_are_transient(real, response):
    client, _, observer = real
    respx.post(f"{API}/api/profile-import").mock(return_value=response)
    with pytest.raises(TransientPlatformError) as caught:
        await client.upsert_profile(Person(email="a@x.com"), idempotency_key="k")
    assert not isinstance(caught.value, RateLimitedError)
    assert caught.value.status == response.status_code
    assert observer.calls == [("klaviyo", "profiles.import", "unavailable")]


# -- against the sandbox -----------------------------------------------------------------


@pytest.fixture
def app():
    return create_app(seed=1)


@pytest.fixture
async def http(app):
    async with in_process(app) as client:
        yield client


def sandbox_client(http: httpx.AsyncClient, key: str = "pk_sandbox") -> KlaviyoClient:
    return KlaviyoClient(http, base_url="http://sandbox/klaviyo", api_key=key, revision=REVISION)


def writes(app: Any, path: str) -> list[str]:
    return [c["effect"] for c in app.state.sandbox.calls if c["path"] == path and c["method"] != "GET"]


def profile_record(app: Any, email: str) -> dict[str, Any]:
    table = app.state.sandbox.records["klaviyo_profiles"]
    return next(p for p in table.values() if p["attributes"]["email"] == email)


async def test_sandbox_upsert_profile_is_idempotent_by_email(http, app):
    client = sandbox_client(http)
    person = Person(email="ada@x.com", first_name="Ada", lead_score=40, lifecycle_stage="lead")
    first = await client.upsert_profile(person, idempotency_key="wf:sync")
    again = await client.upsert_profile(person, idempotency_key="wf:sync")
    rescored = await client.upsert_profile(
        Person(email="ADA@x.com", lead_score=80), idempotency_key="wf:sync2"
    )
    assert first.created and not again.created and not rescored.created
    assert first.id == again.id == rescored.id
    assert writes(app, "/api/profile-import") == ["created", "unchanged", "updated"]
    stored = profile_record(app, "ada@x.com")["attributes"]
    assert stored["first_name"] == "Ada"
    assert stored["properties"]["lead_score"] == 80 and stored["properties"]["lifecycle_stage"] == "lead"
    assert [c["idempotency_key"] for c in app.state.sandbox.calls] == ["wf:sync", "wf:sync", "wf:sync2"]


async def test_sandbox_add_to_list_twice_subscribes_once(http, app):
    client = sandbox_client(http)
    await client.upsert_profile(Person(email="ada@x.com"), idempotency_key="p")
    first = await client.add_to_list("ada@x.com", "NURTURE", idempotency_key="wf:list")
    again = await client.add_to_list("ada@x.com", "NURTURE", idempotency_key="wf:list")
    assert first.created and not again.created and first.id == again.id
    assert first.id == f"NURTURE:{profile_record(app, 'ada@x.com')['id']}"
    assert writes(app, "/api/profile-subscription-bulk-create-jobs") == ["created"]
    assert app.state.sandbox.records["klaviyo_lists"]["NURTURE"]["members"] == ["ada@x.com"]
    marketing = profile_record(app, "ada@x.com")["attributes"]["subscriptions"]["email"]["marketing"]
    assert marketing["consent"] == "SUBSCRIBED" and marketing["custom_method_detail"] == "journeys"


async def test_sandbox_remove_from_list_keeps_consent_and_is_idempotent(http, app):
    client = sandbox_client(http)
    added = await client.add_to_list("ada@x.com", "NURTURE", idempotency_key="a")
    removed = await client.remove_from_list("ada@x.com", "NURTURE", idempotency_key="r")
    again = await client.remove_from_list("ada@x.com", "NURTURE", idempotency_key="r")
    assert removed.created and not again.created and removed.id == again.id == added.id
    assert writes(app, "/api/lists/NURTURE/relationships/profiles") == ["deleted"]
    assert app.state.sandbox.records["klaviyo_lists"]["NURTURE"]["members"] == []
    member = await client.find_profile("ada@x.com")
    assert member is not None and member.consent == "SUBSCRIBED"


async def test_sandbox_events_are_deduplicated_by_unique_id(http, app):
    client = sandbox_client(http)
    message = EmailMessage(to="ada@x.com", template_id="nurture-1", variables={"topic": "pricing"})
    first = await client.send_email(message, idempotency_key="wf:email-1")
    again = await client.send_email(message, idempotency_key="wf:email-1")
    other = await client.send_email(message, idempotency_key="wf:email-2")
    assert first.id == again.id == "wf:email-1" and other.id == "wf:email-2"
    assert writes(app, "/api/events") == ["created", "duplicate", "created"]
    recorded = app.state.sandbox.records["klaviyo_events"].values()
    events = [e for e in recorded if e["metric"] == "Journeys Sequence Email"]
    assert sorted(e["unique_id"] for e in events) == ["wf:email-1", "wf:email-2"]
    # Each trigger is one flow email, recorded as Klaviyo records a send.
    assert sum(e["metric"] == "Received Email" for e in recorded) == 2
    assert events[0]["properties"] == {"topic": "pricing", "template_id": "nurture-1"}


async def test_sandbox_suppress_records_the_suppression_once(http, app):
    client = sandbox_client(http)
    await client.add_to_list("ada@x.com", "NURTURE", idempotency_key="a")
    first = await client.suppress("ada@x.com", "spam_complaint", idempotency_key="s")
    again = await client.suppress("ada@x.com", "spam_complaint", idempotency_key="s")
    assert first.created and not again.created and first.id == again.id
    assert writes(app, "/api/profile-suppression-bulk-create-jobs") == ["updated"]
    marketing = profile_record(app, "ada@x.com")["attributes"]["subscriptions"]["email"]["marketing"]
    assert [s["reason"] for s in marketing["suppression"]] == ["USER_SUPPRESSED"]
    assert marketing["can_receive_email_marketing"] is False
    member = await client.find_profile("ada@x.com")
    assert member is not None and member.suppressed


async def test_sandbox_suppressing_an_unknown_email_creates_a_suppressed_profile(http, app):
    client = sandbox_client(http)
    result = await client.suppress("ghost@x.com", "bounced", idempotency_key="s")
    assert result.created and result.id == profile_record(app, "ghost@x.com")["id"]
    member = await client.find_profile("ghost@x.com")
    assert member is not None and member.suppressed


async def test_sandbox_subscribing_lifts_a_manual_suppression_as_klaviyo_does(http, app):
    client = sandbox_client(http)
    await client.suppress("ada@x.com", "manual", idempotency_key="s")
    await client.add_to_list("ada@x.com", "NURTURE", idempotency_key="a")
    member = await client.find_profile("ada@x.com")
    assert member is not None and not member.suppressed and member.consent == "SUBSCRIBED"


async def test_sandbox_list_members_reads_every_page(http, app):
    client = sandbox_client(http)
    for n in range(5):
        await client.subscribe_to_list(f"m{n}@x.com", "BIG", source="test")
    members = await client.list_members("BIG", page_size=2)
    assert [m.email for m in members] == [f"m{n}@x.com" for n in range(5)]
    reads = [c for c in app.state.sandbox.calls if c["method"] == "GET"]
    assert len(reads) == 3 and all(c["status"] == 200 for c in reads)


async def test_sandbox_429_fault_carries_retry_after(http, app):
    app.state.sandbox.faults["klaviyo"] = Faults(fail_next=1, fail_status=429, retry_after_seconds=7)
    with pytest.raises(RateLimitedError) as caught:
        await sandbox_client(http).upsert_profile(Person(email="ada@x.com"), idempotency_key="k")
    assert caught.value.retry_after == 7 and "throttled" in str(caught.value)


async def test_sandbox_server_fault_is_transient(http, app):
    app.state.sandbox.faults["klaviyo"] = Faults(fail_next=1, fail_status=503)
    with pytest.raises(TransientPlatformError) as caught:
        await sandbox_client(http).send_email(
            EmailMessage(to="a@x.com", template_id="t"), idempotency_key="k"
        )
    assert caught.value.status == 503
    assert app.state.sandbox.records.get("klaviyo_events", {}) == {}


@pytest.mark.parametrize(
    ("key", "code"), [("", "not_authenticated"), ("6-char-public-key", "authentication_failed")]
)
async def test_sandbox_refuses_missing_or_wrong_keys(http, key, code):
    with pytest.raises(PermanentPlatformError) as caught:
        await sandbox_client(http, key=key).upsert_profile(Person(email="a@x.com"), idempotency_key="k")
    assert caught.value.status == 401 and code in str(caught.value)


async def test_sandbox_validation_errors_name_the_pointer(http):
    response = await http.post(
        "/klaviyo/api/events",
        headers={"Authorization": "Klaviyo-API-Key pk_x", "revision": REVISION},
        json={"data": {"type": "event", "attributes": {"properties": {}, "profile": {"data": {}}}}},
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "invalid" and error["source"]["pointer"].endswith("/metric/data/attributes/name")
    with pytest.raises(PermanentPlatformError) as caught:
        await sandbox_client(http).import_profile("a@x.com", {"phone_number": "555"}, {})
    assert "/data/attributes/phone_number" in str(caught.value)


async def test_sandbox_answers_carry_steady_window_headers_and_429s_only_retry_after(http, monkeypatch):
    headers = {"Authorization": "Klaviyo-API-Key pk_x", "revision": REVISION}
    monkeypatch.setattr(klaviyo_sandbox, "clock", lambda: 1_000_000.5)
    monkeypatch.setattr(klaviyo_sandbox.Klaviyo, "enforce_rate_limits", True)
    monkeypatch.setitem(klaviyo_sandbox.RATE_LIMITS, "profiles", (10, 2))
    first = await http.get("/klaviyo/api/profiles", headers=headers)
    second = await http.get("/klaviyo/api/profiles", headers=headers)
    assert first.headers["RateLimit-Limit"] == "2"
    assert (first.headers["RateLimit-Remaining"], second.headers["RateLimit-Remaining"]) == ("1", "0")
    assert 0 < int(first.headers["RateLimit-Reset"]) <= 60
    refused = await http.get("/klaviyo/api/profiles", headers=headers)
    assert refused.status_code == 429 and "RateLimit-Remaining" not in refused.headers
    assert refused.headers["Retry-After"] == str(int(refused.json()["errors"][0]["detail"].split()[-2]))
    with pytest.raises(RateLimitedError) as caught:
        await sandbox_client(http).find_profile("a@x.com")
    assert caught.value.retry_after == float(refused.headers["Retry-After"])
