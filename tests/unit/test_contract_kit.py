"""Kit API v4: the requests the client sends and how it reads Kit's answers (respx), then the client
against the sandbox's emulation of Kit, in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

import platforms.kit as kit_module
from platforms.errors import PermanentPlatformError, RateLimitedError, TransientPlatformError
from platforms.kit import KitClient
from platforms.ports import EmailMessage, Person
from sandbox.app import Faults, create_app
from tests.helpers.platforms import RecordingThrottle, in_process

KIT = "https://api.kit.com"


def subscriber(id_: int = 1103, email: str = "ada@example.com", state: str = "active", **extra: Any) -> dict:
    return {
        "id": id_,
        "first_name": "Ada",
        "email_address": email,
        "state": state,
        "created_at": "2023-02-17T11:43:55Z",
        "fields": {},
        **extra,
    }


def page(key: str, items: list[dict], *, next_cursor: str | None = None) -> dict:
    return {
        key: items,
        "pagination": {
            "has_previous_page": False,
            "has_next_page": next_cursor is not None,
            "start_cursor": "WzFd",
            "end_cursor": next_cursor or "WzJd",
            "per_page": 1000,
        },
    }


def body(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(base_url=KIT, assert_all_called=False, assert_all_mocked=True)


@pytest.fixture
async def mocked(router: respx.MockRouter) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as client:
        yield client


def kit(http: httpx.AsyncClient, **options: Any) -> KitClient:
    options.setdefault("api_key", "kit_test_key")
    options.setdefault("create_missing_fields", False)
    return KitClient(http, base_url=KIT, **options)


# -- contract: requests and answers as Kit documents them ----------------------------------------


async def test_upsert_profile_posts_the_subscriber_with_custom_fields(router, mocked):
    route = router.post("/v4/subscribers").mock(
        return_value=httpx.Response(201, json={"subscriber": subscriber(349)})
    )
    person = Person(
        email="ada@example.com",
        lead_id="L-1",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical",
        job_title="CTO",
        lifecycle_stage="mql",
        lead_score=87,
        properties={"utm_source": "linkedin"},
    )
    result = await kit(mocked).upsert_profile(person, idempotency_key="wf-1:sync")

    assert result.model_dump() == {
        "provider": "kit",
        "object_type": "subscriber",
        "id": "349",
        "created": True,
    }
    request = route.calls.last.request
    assert request.method == "POST" and str(request.url) == f"{KIT}/v4/subscribers"
    assert request.headers["X-Kit-Api-Key"] == "kit_test_key"
    assert "authorization" not in request.headers
    assert request.headers["Idempotency-Key"] == "wf-1:sync"
    assert request.headers["Content-Type"] == "application/json"
    assert body(request) == {
        "email_address": "ada@example.com",
        "first_name": "Ada",
        "fields": {
            "last_name": "Lovelace",
            "company": "Analytical",
            "job_title": "CTO",
            "lifecycle_stage": "mql",
            "lead_score": "87",
            "lead_id": "L-1",
            "utm_source": "linkedin",
        },
    }


async def test_upsert_of_an_existing_subscriber_is_not_created(router, mocked):
    router.post("/v4/subscribers").mock(
        return_value=httpx.Response(200, json={"subscriber": subscriber(353)})
    )
    result = await kit(mocked).upsert_profile(Person(email="ada@example.com"), idempotency_key="k")
    assert result.id == "353" and not result.created


async def test_field_keys_rename_and_leave_out_fields(router, mocked):
    route = router.post("/v4/subscribers").mock(
        return_value=httpx.Response(200, json={"subscriber": subscriber()})
    )
    client = kit(mocked, field_keys={"lead_score": "score", "company": ""})
    await client.upsert_profile(
        Person(email="ada@example.com", company="Analytical", lead_score=5), idempotency_key="k"
    )
    assert body(route.calls.last.request)["fields"] == {"score": "5"}


async def test_missing_custom_fields_are_created_once_by_label(router, mocked):
    listed = router.get("/v4/custom_fields").mock(
        return_value=httpx.Response(
            200,
            json=page(
                "custom_fields",
                [{"id": 1, "name": "ck_field_1_company", "key": "company", "label": "Company"}],
            ),
        )
    )
    created = router.post("/v4/custom_fields").mock(
        return_value=httpx.Response(
            201,
            json={
                "custom_field": {
                    "id": 2,
                    "name": "ck_field_2_lead_score",
                    "key": "lead_score",
                    "label": "Lead score",
                }
            },
        )
    )
    upsert = router.post("/v4/subscribers").mock(
        return_value=httpx.Response(201, json={"subscriber": subscriber()})
    )
    client = kit(mocked, create_missing_fields=True)
    person = Person(email="ada@example.com", company="Analytical", lead_score=87)
    await client.upsert_profile(person, idempotency_key="k1")
    await client.upsert_profile(person, idempotency_key="k2")

    assert listed.call_count == 1 and listed.calls.last.request.url.params["per_page"] == "1000"
    assert created.call_count == 1 and body(created.calls.last.request) == {"label": "Lead score"}
    assert upsert.call_count == 2


async def test_oauth_token_goes_as_bearer_under_its_own_throttle_key(router, mocked):
    route = router.post("/v4/subscribers").mock(
        return_value=httpx.Response(201, json={"subscriber": subscriber()})
    )
    throttle = RecordingThrottle()
    client = KitClient(mocked, base_url=KIT, access_token="oauth-token", throttle=throttle)
    await client.upsert_profile(Person(email="ada@example.com"), idempotency_key="k")
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer oauth-token"
    assert "x-kit-api-key" not in request.headers
    assert throttle.keys == ["kit:oauth"]

    api_key_throttle = RecordingThrottle()
    await kit(mocked, throttle=api_key_throttle).upsert_profile(Person(email="a@b.co"), idempotency_key="k")
    assert api_key_throttle.keys == ["kit"]


def test_exactly_one_credential_is_required():
    with pytest.raises(ValueError):
        KitClient(httpx.AsyncClient(), base_url=KIT)
    with pytest.raises(ValueError):
        KitClient(httpx.AsyncClient(), base_url=KIT, api_key="k", access_token="t")


async def test_validation_error_is_permanent_with_kits_message(router, mocked):
    router.post("/v4/subscribers").mock(
        return_value=httpx.Response(422, json={"errors": ["Email address is invalid"]})
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await kit(mocked).upsert_profile(Person(email="nope"), idempotency_key="k")
    assert caught.value.status == 422
    assert "Email address is invalid" in str(caught.value)


async def test_bad_credentials_are_permanent(router, mocked):
    router.post("/v4/subscribers").mock(
        return_value=httpx.Response(401, json={"errors": ["The access token is invalid"]})
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await kit(mocked).upsert_profile(Person(email="ada@example.com"), idempotency_key="k")
    assert caught.value.status == 401 and "The access token is invalid" in str(caught.value)


async def test_429_without_retry_after_waits_out_the_60_second_window(router, mocked):
    # Kit's documented 429: a plain-text body and no Retry-After header.
    router.post("/v4/subscribers").mock(
        return_value=httpx.Response(429, text="Retry later", headers={"Content-Type": "text/plain"})
    )
    with pytest.raises(RateLimitedError) as caught:
        await kit(mocked).upsert_profile(Person(email="ada@example.com"), idempotency_key="k")
    assert caught.value.retry_after == 60
    assert "Retry later" in str(caught.value)


async def test_429_with_retry_after_is_honoured(router, mocked):
    router.post("/v4/subscribers").mock(
        return_value=httpx.Response(429, text="Retry later", headers={"Retry-After": "12"})
    )
    with pytest.raises(RateLimitedError) as caught:
        await kit(mocked).upsert_profile(Person(email="ada@example.com"), idempotency_key="k")
    assert caught.value.retry_after == 12


async def test_server_errors_and_timeouts_are_transient(router, mocked):
    router.post("/v4/subscribers").mock(
        return_value=httpx.Response(503, json={"errors": ["Service Unavailable"]})
    )
    with pytest.raises(TransientPlatformError) as caught:
        await kit(mocked).upsert_profile(Person(email="ada@example.com"), idempotency_key="k")
    assert caught.value.status == 503 and not isinstance(caught.value, RateLimitedError)

    router.post("/v4/subscribers").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientPlatformError):
        await kit(mocked).upsert_profile(Person(email="ada@example.com"), idempotency_key="k")


async def test_add_to_list_tags_by_email(router, mocked):
    route = router.post("/v4/tags/175/subscribers").mock(
        side_effect=[
            httpx.Response(201, json={"subscriber": subscriber(1103, tagged_at="2023-02-17T11:43:55Z")}),
            httpx.Response(200, json={"subscriber": subscriber(1103, tagged_at="2023-02-17T11:43:55Z")}),
        ]
    )
    first = await kit(mocked).add_to_list("ada@example.com", "175", idempotency_key="k")
    again = await kit(mocked).add_to_list("ada@example.com", "175", idempotency_key="k")

    assert (first.object_type, first.id, first.created) == ("tagging", "175:1103", True)
    assert (again.id, again.created) == ("175:1103", False)
    request = route.calls[0].request
    assert body(request) == {"email_address": "ada@example.com"}
    assert request.headers["Idempotency-Key"] == "k"


async def test_add_to_list_creates_a_subscriber_kit_does_not_know(router, mocked):
    tag = router.post("/v4/tags/175/subscribers").mock(
        side_effect=[
            httpx.Response(404, json={"errors": ["Not Found"]}),
            httpx.Response(201, json={"subscriber": subscriber(1104)}),
        ]
    )
    create = router.post("/v4/subscribers").mock(
        return_value=httpx.Response(201, json={"subscriber": subscriber(1104)})
    )
    result = await kit(mocked).add_to_list("new@example.com", "175", idempotency_key="k")
    assert result.id == "175:1104" and result.created
    assert tag.call_count == 2
    assert body(create.calls.last.request) == {"email_address": "new@example.com"}


async def test_add_to_an_unknown_tag_is_permanent(router, mocked):
    router.post("/v4/tags/999/subscribers").mock(
        return_value=httpx.Response(404, json={"errors": ["Not Found"]})
    )
    router.post("/v4/subscribers").mock(return_value=httpx.Response(200, json={"subscriber": subscriber()}))
    with pytest.raises(PermanentPlatformError) as caught:
        await kit(mocked).add_to_list("ada@example.com", "999", idempotency_key="k")
    assert caught.value.status == 404 and "Not Found" in str(caught.value)


async def test_non_numeric_ids_fail_before_any_request(router, mocked):
    with pytest.raises(PermanentPlatformError):
        await kit(mocked).add_to_list("ada@example.com", "WELCOME", idempotency_key="k")
    with pytest.raises(PermanentPlatformError):
        await kit(mocked).send_email(
            EmailMessage(to="ada@example.com", template_id="welcome"), idempotency_key="k"
        )
    assert not router.calls


async def test_remove_from_list_reads_every_tag_page_then_deletes(router, mocked):
    lookup = router.get("/v4/subscribers").mock(
        return_value=httpx.Response(200, json=page("subscribers", [subscriber(1103)]))
    )
    tags = router.get("/v4/subscribers/1103/tags").mock(
        side_effect=[
            httpx.Response(
                200, json=page("tags", [{"id": 12, "name": "A", "tagged_at": "t"}], next_cursor="WzEyXQ==")
            ),
            httpx.Response(200, json=page("tags", [{"id": 175, "name": "Welcome", "tagged_at": "t"}])),
        ]
    )
    delete = router.delete("/v4/tags/175/subscribers/1103").mock(return_value=httpx.Response(204))

    result = await kit(mocked).remove_from_list("Ada@Example.com", "175", idempotency_key="k")

    assert (result.id, result.created) == ("175:1103", True)
    assert dict(lookup.calls.last.request.url.params) == {
        "email_address": "Ada@Example.com",
        "status": "all",
        "per_page": "1000",
    }
    assert "after" not in tags.calls[0].request.url.params
    assert tags.calls[1].request.url.params["after"] == "WzEyXQ=="
    assert delete.call_count == 1 and delete.calls.last.request.headers["Idempotency-Key"] == "k"


async def test_remove_from_list_when_the_tag_is_already_gone_deletes_nothing(router, mocked):
    router.get("/v4/subscribers").mock(
        return_value=httpx.Response(200, json=page("subscribers", [subscriber(1103)]))
    )
    router.get("/v4/subscribers/1103/tags").mock(return_value=httpx.Response(200, json=page("tags", [])))
    delete = router.delete("/v4/tags/175/subscribers/1103").mock(return_value=httpx.Response(204))
    result = await kit(mocked).remove_from_list("ada@example.com", "175", idempotency_key="k")
    assert (result.id, result.created) == ("175:1103", False)
    assert delete.call_count == 0


async def test_send_email_sets_the_variables_then_adds_to_the_sequence(router, mocked):
    upsert = router.post("/v4/subscribers").mock(
        return_value=httpx.Response(200, json={"subscriber": subscriber(1029)})
    )
    sequence = router.post("/v4/sequences/324/subscribers").mock(
        side_effect=[
            httpx.Response(201, json={"subscriber": subscriber(1029, added_at="2023-02-17T11:43:55Z")}),
            httpx.Response(200, json={"subscriber": subscriber(1029, added_at="2023-02-17T11:43:55Z")}),
        ]
    )
    message = EmailMessage(
        to="ada@example.com",
        template_id="324",
        variables={"first_name": "Ada", "offer": "demo", "seats": 12, "trial": True},
    )
    first = await kit(mocked).send_email(message, idempotency_key="wf-1:email-1")
    again = await kit(mocked).send_email(message, idempotency_key="wf-1:email-1")

    assert (first.object_type, first.id, first.created) == ("sequence_subscription", "324:1029", True)
    assert (again.id, again.created) == ("324:1029", False)
    assert body(upsert.calls[0].request) == {
        "email_address": "ada@example.com",
        "first_name": "Ada",
        "fields": {"offer": "demo", "seats": "12", "trial": "true"},
    }
    assert body(sequence.calls[0].request) == {"email_address": "ada@example.com"}


async def test_send_email_through_a_tag_automation(router, mocked):
    router.post("/v4/subscribers").mock(return_value=httpx.Response(200, json={"subscriber": subscriber(7)}))
    tag = router.post("/v4/tags/45/subscribers").mock(
        return_value=httpx.Response(201, json={"subscriber": subscriber(7)})
    )
    result = await kit(mocked).send_email(
        EmailMessage(to="ada@example.com", template_id="tag:45"), idempotency_key="k"
    )
    assert (result.object_type, result.id, result.created) == ("tagging", "45:7", True)
    assert tag.call_count == 1


async def test_inactive_sequence_is_permanent(router, mocked):
    router.post("/v4/subscribers").mock(return_value=httpx.Response(200, json={"subscriber": subscriber()}))
    router.post("/v4/sequences/324/subscribers").mock(
        return_value=httpx.Response(422, json={"errors": ["Sequence is inactive"]})
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await kit(mocked).send_email(
            EmailMessage(to="ada@example.com", template_id="sequence:324"), idempotency_key="k"
        )
    assert "Sequence is inactive" in str(caught.value)


async def test_suppress_unsubscribes_an_active_subscriber(router, mocked):
    router.get("/v4/subscribers").mock(
        return_value=httpx.Response(200, json=page("subscribers", [subscriber(344)]))
    )
    unsubscribe = router.post("/v4/subscribers/344/unsubscribe").mock(return_value=httpx.Response(204))
    result = await kit(mocked).suppress("ada@example.com", "unsubscribed", idempotency_key="k")
    assert (result.object_type, result.id, result.created) == ("subscriber", "344", True)
    assert body(unsubscribe.calls.last.request) == {}


async def test_suppress_of_a_cancelled_subscriber_writes_nothing(router, mocked):
    router.get("/v4/subscribers").mock(
        return_value=httpx.Response(200, json=page("subscribers", [subscriber(344, state="cancelled")]))
    )
    unsubscribe = router.post("/v4/subscribers/344/unsubscribe").mock(return_value=httpx.Response(204))
    result = await kit(mocked).suppress("ada@example.com", "manual", idempotency_key="k")
    assert (result.id, result.created) == ("344", False)
    assert unsubscribe.call_count == 0


async def test_suppress_of_an_unknown_email_records_it_in_the_reasons_state(router, mocked):
    router.get("/v4/subscribers").mock(return_value=httpx.Response(200, json=page("subscribers", [])))
    create = router.post("/v4/subscribers").mock(
        return_value=httpx.Response(201, json={"subscriber": subscriber(400, state="bounced")})
    )
    result = await kit(mocked).suppress("gone@example.com", "bounced", idempotency_key="k")
    assert (result.id, result.created) == ("400", True)
    assert body(create.calls.last.request) == {"email_address": "gone@example.com", "state": "bounced"}


# -- against the sandbox -------------------------------------------------------------------------


@pytest.fixture
def sandbox():
    return create_app(seed=1)


@pytest.fixture
async def http(sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(sandbox) as client:
        yield client


def on_sandbox(http: httpx.AsyncClient, **options: Any) -> KitClient:
    options.setdefault("api_key", "kit_sandbox_key")
    return KitClient(http, base_url="http://sandbox/kit", **options)


def effects(sandbox, object_type: str) -> list[str]:
    return [c.get("effect") for c in sandbox.state.sandbox.calls if c.get("object_type") == object_type]


def records(sandbox, table: str) -> dict[str, Any]:
    return sandbox.state.sandbox.records.get(table, {})


async def test_sandbox_upsert_is_idempotent_by_email(http, sandbox):
    person = Person(email="ada@example.com", first_name="Ada", lead_score=87, lifecycle_stage="mql")
    first = await on_sandbox(http).upsert_profile(person, idempotency_key="wf-1:sync")
    again = await on_sandbox(http).upsert_profile(person, idempotency_key="wf-1:sync")

    assert first.created and not again.created and first.id == again.id
    assert effects(sandbox, "subscriber") == ["created", "unchanged"]
    (stored,) = records(sandbox, "kit_subscribers").values()
    assert stored["fields"] == {"lead_score": "87", "lifecycle_stage": "mql"}
    assert stored["state"] == "active"
    # The missing custom fields were created once, on the first upsert.
    assert {f["key"] for f in records(sandbox, "kit_custom_fields").values()} >= {
        "lead_score",
        "lifecycle_stage",
    }
    assert effects(sandbox, "custom_field").count("created") == len(records(sandbox, "kit_custom_fields"))
    writes = [
        c for c in sandbox.state.sandbox.calls if c["path"] == "/v4/subscribers" and c["method"] == "POST"
    ]
    assert [c["idempotency_key"] for c in writes] == ["wf-1:sync", "wf-1:sync"]


async def test_sandbox_drops_unknown_custom_fields_as_kit_does(http, sandbox):
    client = on_sandbox(http, create_missing_fields=False)
    await client.upsert_profile(Person(email="ada@example.com", lead_score=3), idempotency_key="k")
    (stored,) = records(sandbox, "kit_subscribers").values()
    assert stored["fields"] == {}

    keys = await client.ensure_custom_fields(["lead_score"])
    assert "lead_score" in keys
    await on_sandbox(http, create_missing_fields=False).ensure_custom_fields(["lead_score"])
    assert effects(sandbox, "custom_field") == ["created"]
    await client.upsert_profile(Person(email="ada@example.com", lead_score=3), idempotency_key="k")
    assert stored["fields"] == {"lead_score": "3"}


async def test_sandbox_tagging_is_idempotent(http, sandbox):
    first = await on_sandbox(http).add_to_list("ada@example.com", "175", idempotency_key="wf-1:list")
    again = await on_sandbox(http).add_to_list("ADA@example.com", "175", idempotency_key="wf-1:list")

    assert first.created and not again.created and first.id == again.id
    assert first.id.startswith("175:")
    assert effects(sandbox, "tagging") == ["created", "duplicate"]
    # The unknown email was subscribed first, once.
    assert effects(sandbox, "subscriber") == ["created"]


async def test_sandbox_removal_reads_all_pages_and_deletes_once(http, sandbox, monkeypatch):
    monkeypatch.setattr(kit_module, "PAGE_SIZE", 2)
    client = on_sandbox(http)
    for tag in ("11", "12", "13", "14", "175"):
        await client.add_to_list("ada@example.com", tag, idempotency_key=f"add-{tag}")

    # Tags are listed newest id first, so 11 sits on the third page of two.
    first = await client.remove_from_list("ada@example.com", "11", idempotency_key="wf-1:unlist")
    again = await client.remove_from_list("ada@example.com", "11", idempotency_key="wf-1:unlist")

    assert first.created and not again.created and first.id == again.id
    assert effects(sandbox, "tagging").count("deleted") == 1
    tag_reads = [c for c in sandbox.state.sandbox.calls if c["path"].endswith("/tags")]
    assert sum("after=" in c["query"] for c in tag_reads) >= 2
    (stored,) = records(sandbox, "kit_subscribers").values()
    assert sorted(stored["tags"]) == ["12", "13", "14", "175"]


async def test_sandbox_removal_of_an_unknown_email_is_a_no_op(http, sandbox):
    result = await on_sandbox(http).remove_from_list("nobody@example.com", "175", idempotency_key="k")
    assert (result.id, result.created) == ("175:none", False)
    assert not any(c.get("effect") for c in sandbox.state.sandbox.calls)


async def test_sandbox_send_email_adds_to_the_sequence_once(http, sandbox):
    message = EmailMessage(to="ada@example.com", template_id="324", variables={"offer": "demo"})
    first = await on_sandbox(http).send_email(message, idempotency_key="wf-1:email-1")
    again = await on_sandbox(http).send_email(message, idempotency_key="wf-1:email-1")

    assert first.created and not again.created and first.id == again.id
    assert effects(sandbox, "sequence_subscription") == ["created", "duplicate"]
    (stored,) = records(sandbox, "kit_subscribers").values()
    assert stored["fields"]["offer"] == "demo" and list(stored["sequences"]) == ["324"]


async def test_sandbox_inactive_sequence_is_rejected(http, sandbox):
    records_ = sandbox.state.sandbox.records
    records_.setdefault("kit_sequences", {})["77"] = {"id": 77, "name": "Paused", "active": False}
    with pytest.raises(PermanentPlatformError) as caught:
        await on_sandbox(http).send_email(
            EmailMessage(to="ada@example.com", template_id="77"), idempotency_key="k"
        )
    assert caught.value.status == 422 and "Sequence is inactive" in str(caught.value)


async def test_sandbox_suppress_is_idempotent_and_survives_a_later_upsert(http, sandbox):
    client = on_sandbox(http)
    await client.upsert_profile(Person(email="ada@example.com"), idempotency_key="sync")
    first = await client.suppress("ada@example.com", "unsubscribed", idempotency_key="wf-1:suppress")
    again = await client.suppress("ada@example.com", "unsubscribed", idempotency_key="wf-1:suppress")

    assert first.created and not again.created and first.id == again.id
    unsubscribes = [c for c in sandbox.state.sandbox.calls if c["path"].endswith("/unsubscribe")]
    assert [c["effect"] for c in unsubscribes] == ["updated"]
    await client.upsert_profile(Person(email="ada@example.com", first_name="Ada"), idempotency_key="sync-2")
    (stored,) = records(sandbox, "kit_subscribers").values()
    assert stored["state"] == "cancelled"


async def test_sandbox_suppress_of_an_unknown_email_creates_it_suppressed(http, sandbox):
    first = await on_sandbox(http).suppress("gone@example.com", "spam_complaint", idempotency_key="k")
    again = await on_sandbox(http).suppress("gone@example.com", "spam_complaint", idempotency_key="k")
    assert first.created and not again.created and first.id == again.id
    assert effects(sandbox, "subscriber") == ["created"]
    (stored,) = records(sandbox, "kit_subscribers").values()
    assert stored["state"] == "complained"


async def test_sandbox_rate_limit_fault_is_kits_plain_429(http, sandbox):
    sandbox.state.sandbox.faults["kit"] = Faults(fail_next=1, fail_status=429, retry_after_seconds=7)
    with pytest.raises(RateLimitedError) as caught:
        await on_sandbox(http).upsert_profile(Person(email="ada@example.com"), idempotency_key="k")
    # Kit sends no Retry-After, so the client waits out the whole window, whatever the fault said.
    assert caught.value.retry_after == 60 and "Retry later" in str(caught.value)
    result = await on_sandbox(http).upsert_profile(Person(email="ada@example.com"), idempotency_key="k")
    assert result.created


async def test_sandbox_server_error_fault_is_transient(http, sandbox):
    sandbox.state.sandbox.faults["kit"] = Faults(fail_next=1, fail_status=502)
    with pytest.raises(TransientPlatformError) as caught:
        await on_sandbox(http).add_to_list("ada@example.com", "175", idempotency_key="k")
    assert caught.value.status == 502 and "Internal Server Error" in str(caught.value)


async def test_sandbox_rejects_missing_credentials(http, sandbox):
    with pytest.raises(PermanentPlatformError) as caught:
        await on_sandbox(http, api_key="").upsert_profile(
            Person(email="ada@example.com"), idempotency_key="k"
        )
    assert caught.value.status == 401 and "The access token is invalid" in str(caught.value)
    result = await KitClient(http, base_url="http://sandbox/kit", access_token="oauth").upsert_profile(
        Person(email="ada@example.com"), idempotency_key="k"
    )
    assert result.created


async def test_sandbox_validates_the_email(http):
    with pytest.raises(PermanentPlatformError) as caught:
        await on_sandbox(http).upsert_profile(Person(email="not-an-email"), idempotency_key="k")
    assert caught.value.status == 422 and "Email address is invalid" in str(caught.value)


async def test_sandbox_lists_subscribers_in_cursor_pages(http, sandbox):
    client = on_sandbox(http, create_missing_fields=False)
    for n in range(5):
        await client.upsert_profile(Person(email=f"p{n}@example.com"), idempotency_key=f"k{n}")
    headers = {"X-Kit-Api-Key": "kit_sandbox_key"}
    seen: list[str] = []
    params: dict[str, Any] = {"per_page": 2}
    while True:
        answer = (await http.get("/kit/v4/subscribers", params=params, headers=headers)).json()
        seen += [s["email_address"] for s in answer["subscribers"]]
        if not answer["pagination"]["has_next_page"]:
            break
        params["after"] = answer["pagination"]["end_cursor"]
    assert seen == [f"p{n}@example.com" for n in reversed(range(5))]
    # Unsubscribed people are found only with status=all.
    await client.suppress("p0@example.com", "manual", idempotency_key="s")
    active = (
        await http.get("/kit/v4/subscribers", params={"email_address": "p0@example.com"}, headers=headers)
    ).json()
    every = (
        await http.get(
            "/kit/v4/subscribers",
            params={"email_address": "p0@example.com", "status": "all"},
            headers=headers,
        )
    ).json()
    assert active["subscribers"] == [] and every["subscribers"][0]["state"] == "cancelled"


async def test_a_template_name_is_sent_as_its_configured_sequence(http, sandbox):
    client = on_sandbox(http, templates={"welcome_1": "sequence:7029"})
    message = EmailMessage(to="ada@example.com", template_id="welcome_1", subject="Hi", variables={})
    sent = await client.send_email(message, idempotency_key="wf-1:welcome")
    assert sent.object_type == "sequence_subscription" and sent.id.startswith("7029:")
    [stored] = records(sandbox, "kit_subscribers").values()
    assert set(stored["sequences"]) == {"7029"}


async def test_a_template_name_with_no_kit_message_fails_naming_the_config(http):
    message = EmailMessage(to="ada@example.com", template_id="welcome_2", subject="Hi", variables={})
    with pytest.raises(PermanentPlatformError, match=r"email_templates\.toml"):
        await on_sandbox(http, templates={"welcome_1": "sequence:7029"}).send_email(
            message, idempotency_key="wf-1:welcome"
        )
