"""HubSpot: the requests the client sends and how it reads HubSpot's answers (respx, shapes as
documented), then the client against the sandbox's emulation, in process."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import respx

from platforms.errors import PermanentPlatformError, RateLimitedError, TransientPlatformError
from platforms.hubspot import (
    LIFECYCLE_STAGES,
    HubSpotClient,
    marker_token,
    normalize_domain,
)
from platforms.ports import Company, CrmPort, Deal, EmailMessage, EmailPort, Meeting, Note, Person, Task
from sandbox.app import Faults, create_app
from tests.helpers.platforms import RecordingObserver, RecordingThrottle, in_process

API = "https://api.hubapi.com"
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
WHEN = datetime(2025, 3, 4, 15, 30, tzinfo=UTC)


def only(route: respx.Route) -> httpx.Request:
    assert route.call_count == 1
    request: httpx.Request = route.calls.last.request
    return request


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def upserted(object_id: str, properties: dict[str, str], *, new: bool) -> dict[str, Any]:
    """A batch upsert answer as documented: status, results with `new`, timestamps."""
    return {
        "status": "COMPLETE",
        "results": [
            {
                "id": object_id,
                "properties": {**properties, "hs_object_id": object_id},
                "createdAt": "2025-03-04T15:30:00.000Z",
                "updatedAt": "2025-03-04T15:30:00.000Z",
                "archived": False,
                "new": new,
            }
        ],
        "startedAt": "2025-03-04T15:30:00.000Z",
        "completedAt": "2025-03-04T15:30:00.100Z",
    }


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": "a43683b0-5717-4ceb-80b4-104d02915d8c",
        "category": category,
        **extra,
    }


@pytest.fixture
async def real() -> Any:
    async with httpx.AsyncClient() as http:
        yield http


def client(http: httpx.AsyncClient, **kwargs: Any) -> HubSpotClient:
    return HubSpotClient(http, base_url=API, token=TOKEN, **kwargs)


# -- contract: requests and answers -----------------------------------------------------------


@pytest.mark.parametrize("port", [CrmPort, EmailPort])
def test_the_client_has_every_port_method_with_its_signature(port: type) -> None:
    # CrmPort and EmailPort declare `provider` as an instance attribute while PlatformClient makes it a
    # ClassVar, so mypy refuses the assignment to the protocol: the methods are compared here instead.
    assert HubSpotClient.provider == "hubspot"
    for name, member in vars(port).items():
        if name.startswith("_") or not inspect.iscoroutinefunction(member):
            continue
        mine = inspect.signature(getattr(HubSpotClient, name))
        assert list(mine.parameters) == list(inspect.signature(member).parameters), name
        assert inspect.iscoroutinefunction(getattr(HubSpotClient, name)), name


@respx.mock
async def test_upsert_person_sends_a_contact_upsert_by_email(real: httpx.AsyncClient) -> None:
    route = respx.post(f"{API}/crm/v3/objects/contacts/batch/upsert").mock(
        return_value=httpx.Response(
            200, json=upserted("101", {"lifecyclestage": "marketingqualifiedlead"}, new=True)
        )
    )
    person = Person(
        email=" Ada@Example.com ",
        lead_id="lead-1",
        first_name="Ada",
        last_name="Lovelace",
        job_title="CTO",
        lifecycle_stage="mql",
        lead_score=42,
        owner_id="71000001",
        properties={"journeys_segment": "enterprise"},
    )
    result = await client(real).upsert_person(person, idempotency_key="lead-1/crm/1")

    assert result.model_dump() == {
        "provider": "hubspot",
        "object_type": "contact",
        "id": "101",
        "created": True,
    }
    request = only(route)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Idempotency-Key"] == "lead-1/crm/1"
    assert request.headers["Content-Type"] == "application/json"
    assert body(request) == {
        "inputs": [
            {
                "idProperty": "email",
                "id": "ada@example.com",
                "properties": {
                    "email": "ada@example.com",
                    "firstname": "Ada",
                    "lastname": "Lovelace",
                    "jobtitle": "CTO",
                    "journeys_lead_id": "lead-1",
                    "lifecyclestage": "marketingqualifiedlead",
                    "journeys_lead_score": "42",
                    "hubspot_owner_id": "71000001",
                    "journeys_segment": "enterprise",
                },
            }
        ]
    }


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("anonymous", "subscriber"),
        ("lead", "lead"),
        ("mql", "marketingqualifiedlead"),
        ("sql", "salesqualifiedlead"),
        ("customer", "customer"),
        ("advocate", "evangelist"),
        ("disqualified", "other"),
        ("recycled", "lead"),
    ],
)
def test_every_lifecycle_stage_maps_to_a_hubspot_internal_value(ours: str, theirs: str) -> None:
    from domain.lead import LifecycleStage

    assert set(LIFECYCLE_STAGES) == {stage.value for stage in LifecycleStage}
    assert LIFECYCLE_STAGES[ours] == theirs
    assert (
        HubSpotClient.person_properties(Person(email="a@x.com", lifecycle_stage=ours))["lifecyclestage"]
        == theirs
    )


@respx.mock
async def test_a_recycle_clears_the_stage_then_sets_it(real: httpx.AsyncClient) -> None:
    route = respx.post(f"{API}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=[
            httpx.Response(200, json=upserted("101", {"lifecyclestage": ""}, new=False)),
            httpx.Response(200, json=upserted("101", {"lifecyclestage": "lead"}, new=False)),
        ]
    )
    person = Person(email="ada@example.com", lifecycle_stage="recycled", lead_score=5)
    result = await client(real).upsert_person(person, idempotency_key="k")

    assert not result.created and result.id == "101"
    first, second = (body(call.request)["inputs"][0]["properties"] for call in route.calls)
    assert first == {"email": "ada@example.com", "lifecyclestage": "", "journeys_lead_score": "5"}
    assert second == {"lifecyclestage": "lead"}


@respx.mock
async def test_a_forward_stage_is_one_upsert_even_when_hubspot_holds_a_later_one(
    real: httpx.AsyncClient,
) -> None:
    route = respx.post(f"{API}/crm/v3/objects/contacts/batch/upsert").mock(
        return_value=httpx.Response(200, json=upserted("101", {"lifecyclestage": "opportunity"}, new=False))
    )
    await client(real).upsert_person(Person(email="ada@x.com", lifecycle_stage="sql"), idempotency_key="k")
    assert route.call_count == 1


@respx.mock
async def test_upsert_company_uses_the_normalized_domain_as_unique_key(real: httpx.AsyncClient) -> None:
    route = respx.post(f"{API}/crm/v3/objects/companies/batch/upsert").mock(
        return_value=httpx.Response(200, json=upserted("5001", {}, new=True))
    )
    company = Company(
        domain="https://WWW.Acme.com/about", name="Acme", employees=250, industry="COMPUTER_SOFTWARE"
    )
    result = await client(real).upsert_company(company, idempotency_key="acct-1")

    assert result.object_type == "company" and result.id == "5001" and result.created
    assert body(only(route)) == {
        "inputs": [
            {
                "idProperty": "journeys_company_key",
                "id": "acme.com",
                "properties": {
                    "journeys_company_key": "acme.com",
                    "domain": "acme.com",
                    "name": "Acme",
                    "industry": "COMPUTER_SOFTWARE",
                    "numberofemployees": "250",
                },
            }
        ]
    }


@pytest.mark.parametrize(
    ("raw", "key"),
    [("acme.com", "acme.com"), ("http://www.acme.com:8080/x?y", "acme.com"), ("ada@Acme.COM", "acme.com")],
)
def test_domains_normalize(raw: str, key: str) -> None:
    assert normalize_domain(raw) == key


@respx.mock
async def test_upsert_deal_then_associates_contact_and_company_with_v4_types(real: httpx.AsyncClient) -> None:
    upsert = respx.post(f"{API}/crm/v3/objects/deals/batch/upsert").mock(
        return_value=httpx.Response(200, json=upserted("9001", {}, new=True))
    )
    link = {
        "fromObjectTypeId": "0-3",
        "fromObjectId": 9001,
        "toObjectTypeId": "0-1",
        "toObjectId": 101,
        "labels": [],
    }
    contact = respx.put(f"{API}/crm/v4/objects/deals/9001/associations/contacts/101").mock(
        return_value=httpx.Response(200, json=link)
    )
    company = respx.put(f"{API}/crm/v4/objects/deals/9001/associations/companies/5001").mock(
        return_value=httpx.Response(200, json={**link, "toObjectTypeId": "0-2", "toObjectId": 5001})
    )
    deal = Deal(
        key="handoff-lead-1-1",
        name="Acme - platform",
        stage="appointmentscheduled",
        amount=1234567.5,
        currency="EUR",
        close_date=date(2025, 3, 31),
        owner_id="71000002",
        person_id="101",
        company_id="5001",
    )
    result = await client(real, deal_pipeline="default").upsert_deal(deal, idempotency_key="k")

    assert result.model_dump() == {
        "provider": "hubspot",
        "object_type": "deal",
        "id": "9001",
        "created": True,
    }
    assert body(only(upsert))["inputs"][0] == {
        "idProperty": "journeys_deal_key",
        "id": "handoff-lead-1-1",
        "properties": {
            "journeys_deal_key": "handoff-lead-1-1",
            "dealname": "Acme - platform",
            "pipeline": "default",
            "dealstage": "appointmentscheduled",
            "amount": "1234567.5",
            "deal_currency_code": "EUR",
            "closedate": "2025-03-31T00:00:00.000Z",
            "hubspot_owner_id": "71000002",
        },
    }
    assert body(only(contact)) == [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]
    assert body(only(company)) == [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]


@respx.mock
async def test_create_task_searches_for_its_marker_then_creates_with_associations(
    real: httpx.AsyncClient,
) -> None:
    search = respx.post(f"{API}/crm/v3/objects/tasks/search").mock(
        return_value=httpx.Response(200, json={"total": 0, "results": []})
    )
    create = respx.post(f"{API}/crm/v3/objects/tasks").mock(
        return_value=httpx.Response(201, json={"id": "20001", "properties": {}, "archived": False})
    )
    task = Task(
        subject="Call Ada", body="She asked for a demo.", due_at=WHEN, owner_id="71000001", person_id="101"
    )
    throttle, observer = RecordingThrottle(), RecordingObserver()
    result = await client(real, throttle=throttle, observer=observer).create_task(task, idempotency_key="t-1")

    token = marker_token("t-1")
    assert result.model_dump() == {
        "provider": "hubspot",
        "object_type": "task",
        "id": "20001",
        "created": True,
    }
    assert body(only(search)) == {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_task_body", "operator": "CONTAINS_TOKEN", "value": token}]}
        ],
        "properties": ["hs_task_body"],
        "sorts": [{"propertyName": "hs_createdate", "direction": "ASCENDING"}],
        "limit": 1,
    }
    sent = body(only(create))
    assert sent["properties"] == {
        "hs_task_subject": "Call Ada",
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": "MEDIUM",
        "hs_task_type": "TODO",
        "hs_timestamp": "2025-03-04T15:30:00.000Z",
        "hubspot_owner_id": "71000001",
        "hs_task_body": f"She asked for a demo.\n\n[journeys ref {token}]",
    }
    assert sent["associations"] == [
        {"to": {"id": "101"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]}
    ]
    assert throttle.keys == ["hubspot:search", "hubspot"]
    assert observer.calls == [("hubspot", "tasks.search", "ok"), ("hubspot", "tasks.create", "ok")]


@respx.mock
async def test_a_task_found_by_its_marker_is_not_created_again(real: httpx.AsyncClient) -> None:
    respx.post(f"{API}/crm/v3/objects/tasks/search").mock(
        return_value=httpx.Response(200, json={"total": 1, "results": [{"id": "20001", "properties": {}}]})
    )
    create = respx.post(f"{API}/crm/v3/objects/tasks")
    task = Task(subject="Call Ada", due_at=WHEN)
    result = await client(real).create_task(task, idempotency_key="t-1")
    assert not result.created and result.id == "20001"
    assert not create.called


@respx.mock
async def test_notes_and_meetings_carry_their_marker_and_contact_association(real: httpx.AsyncClient) -> None:
    respx.post(f"{API}/crm/v3/objects/notes/search").mock(
        return_value=httpx.Response(200, json={"results": []})
    )
    respx.post(f"{API}/crm/v3/objects/meetings/search").mock(
        return_value=httpx.Response(200, json={"results": []})
    )
    note = respx.post(f"{API}/crm/v3/objects/notes").mock(
        return_value=httpx.Response(201, json={"id": "30001"})
    )
    meeting = respx.post(f"{API}/crm/v3/objects/meetings").mock(
        return_value=httpx.Response(201, json={"id": "40001"})
    )
    hubspot = client(real)
    await hubspot.add_note(
        Note(body="Visited pricing", occurred_at=WHEN, person_id="101"), idempotency_key="n"
    )
    await hubspot.log_meeting(
        Meeting(subject="Demo", start=WHEN, end=WHEN.replace(hour=16), person_id="101", owner_id="71000001"),
        idempotency_key="m",
    )
    sent_note = body(only(note))
    assert sent_note["properties"] == {
        "hs_timestamp": "2025-03-04T15:30:00.000Z",
        "hs_note_body": f"Visited pricing\n\n[journeys ref {marker_token('n')}]",
    }
    assert sent_note["associations"][0]["types"][0]["associationTypeId"] == 202
    sent_meeting = body(only(meeting))
    assert sent_meeting["properties"] == {
        "hs_meeting_title": "Demo",
        "hs_meeting_start_time": "2025-03-04T15:30:00.000Z",
        "hs_meeting_end_time": "2025-03-04T16:30:00.000Z",
        "hs_timestamp": "2025-03-04T15:30:00.000Z",
        "hs_meeting_outcome": "SCHEDULED",
        "hubspot_owner_id": "71000001",
        "hs_meeting_body": f"[journeys ref {marker_token('m')}]",
    }
    assert sent_meeting["associations"][0]["types"][0]["associationTypeId"] == 200


@respx.mock
async def test_list_owners_reads_every_page(real: httpx.AsyncClient) -> None:
    owner = {"email": "ava@x.com", "firstName": "Ava", "lastName": "Lind", "archived": False, "userId": 1}
    route = respx.get(f"{API}/crm/v3/owners").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "results": [{**owner, "id": "1"}],
                    "paging": {"next": {"after": "MQ==", "link": f"{API}/crm/v3/owners?after=MQ=="}},
                },
            ),
            httpx.Response(200, json={"results": [{**owner, "id": "2", "firstName": None}]}),
        ]
    )
    owners = await client(real).list_owners()

    assert [(o.id, o.first_name) for o in owners] == [("1", "Ava"), ("2", None)]
    first, second = (call.request.url.params for call in route.calls)
    assert dict(first) == {"limit": "100", "archived": "false"}
    assert dict(second) == {"limit": "100", "archived": "false", "after": "MQ=="}


@respx.mock
async def test_add_to_list_looks_the_contact_up_by_email_then_adds_its_record_id(
    real: httpx.AsyncClient,
) -> None:
    read = respx.get(f"{API}/crm/v3/objects/contacts/ada@x.com").mock(
        return_value=httpx.Response(200, json={"id": "101", "properties": {"email": "ada@x.com"}})
    )
    add = respx.put(f"{API}/crm/v3/lists/7/memberships/add").mock(
        side_effect=[
            httpx.Response(200, json={"recordsIdsAdded": ["101"], "recordIdsMissing": []}),
            httpx.Response(200, json={"recordsIdsAdded": [], "recordIdsMissing": []}),
        ]
    )
    hubspot = client(real)
    first = await hubspot.add_to_list("Ada@x.com", "7", idempotency_key="l")
    again = await hubspot.add_to_list("ada@x.com", "7", idempotency_key="l")

    assert first.created and not again.created and first.id == again.id == "7:101"
    assert dict(read.calls[0].request.url.params) == {"idProperty": "email", "properties": "email"}
    assert body(add.calls[0].request) == ["101"]
    assert add.calls[0].request.headers["Idempotency-Key"] == "l"


@respx.mock
async def test_remove_from_list_of_an_unknown_contact_changes_nothing(real: httpx.AsyncClient) -> None:
    respx.get(f"{API}/crm/v3/objects/contacts/ghost@x.com").mock(
        return_value=httpx.Response(404, json=error_body("Object not found.", "OBJECT_NOT_FOUND"))
    )
    remove = respx.put(f"{API}/crm/v3/lists/7/memberships/remove")
    result = await client(real).remove_from_list("ghost@x.com", "7", idempotency_key="r")
    assert not result.created and not remove.called


@respx.mock
async def test_a_missing_record_in_a_membership_answer_is_permanent(real: httpx.AsyncClient) -> None:
    respx.get(f"{API}/crm/v3/objects/contacts/ada@x.com").mock(
        return_value=httpx.Response(200, json={"id": "101"})
    )
    respx.put(f"{API}/crm/v3/lists/7/memberships/remove").mock(
        return_value=httpx.Response(200, json={"recordIdsRemoved": [], "recordIdsMissing": ["101"]})
    )
    with pytest.raises(PermanentPlatformError, match="record 101 does not exist"):
        await client(real).remove_from_list("ada@x.com", "7", idempotency_key="r")


def send_answer(result: str) -> dict[str, Any]:
    return {
        "statusId": "s-1",
        "status": "COMPLETE",
        "sendResult": result,
        "requestedAt": "2025-03-04T15:30:00Z",
        "eventId": {"id": "e-1", "created": "2025-03-04T15:30:00Z"},
    }


@pytest.mark.parametrize(
    ("email_api", "path"),
    [
        ("marketing", "/marketing/v4/email/single-send"),
        ("transactional", "/marketing/v3/transactional/single-email/send"),
    ],
)
async def test_send_email_passes_the_key_as_send_id(
    real: httpx.AsyncClient, email_api: Any, path: str
) -> None:
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"{API}{path}").mock(
            side_effect=[
                httpx.Response(200, json=send_answer("SENT")),
                httpx.Response(200, json=send_answer("IDEMPOTENT_IGNORE")),
            ]
        )
        hubspot = client(real, email_api=email_api)
        message = EmailMessage(
            to="ada@x.com", template_id="123456", variables={"first": "Ada", "n": 2, "xs": [1]}
        )
        first = await hubspot.send_email(message, idempotency_key="lead-1/welcome/1")
        again = await hubspot.send_email(message, idempotency_key="lead-1/welcome/1")

    assert first.created and not again.created and first.id == again.id == "lead-1/welcome/1"
    assert body(route.calls[0].request) == {
        "emailId": 123456,
        "message": {"to": "ada@x.com", "sendId": "lead-1/welcome/1"},
        "customProperties": {"first": "Ada", "n": 2, "xs": "[1]"},
    }


@respx.mock
async def test_a_refused_send_is_permanent_and_a_throttled_one_is_rate_limited(
    real: httpx.AsyncClient,
) -> None:
    respx.post(f"{API}/marketing/v4/email/single-send").mock(
        side_effect=[
            httpx.Response(200, json=send_answer("PREVIOUSLY_UNSUBSCRIBED_PORTAL")),
            httpx.Response(200, json=send_answer("THROTTLED")),
        ]
    )
    message = EmailMessage(to="ada@x.com", template_id="1")
    with pytest.raises(PermanentPlatformError, match="PREVIOUSLY_UNSUBSCRIBED_PORTAL"):
        await client(real).send_email(message, idempotency_key="k")
    with pytest.raises(RateLimitedError):
        await client(real).send_email(message, idempotency_key="k")


async def test_a_template_id_that_is_no_number_is_refused_before_any_call(real: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_mocked=True):
        with pytest.raises(PermanentPlatformError, match="not a HubSpot email id"):
            await client(real).send_email(
                EmailMessage(to="a@x.com", template_id="welcome"), idempotency_key="k"
            )


@respx.mock
async def test_suppress_unsubscribes_from_each_type_still_subscribed(real: httpx.AsyncClient) -> None:
    respx.get(f"{API}/communication-preferences/v3/status/email/ada@x.com").mock(
        return_value=httpx.Response(
            200,
            json={
                "recipient": "ada@x.com",
                "subscriptionStatuses": [
                    {
                        "id": "1001",
                        "name": "Marketing",
                        "status": "SUBSCRIBED",
                        "sourceOfStatus": "SUBSCRIPTION_STATUS",
                    },
                    {"id": "1002", "name": "One to One", "status": "NOT_SUBSCRIBED"},
                ],
            },
        )
    )
    unsubscribe = respx.post(f"{API}/communication-preferences/v3/unsubscribe").mock(
        return_value=httpx.Response(200, json={"id": "1001", "status": "NOT_SUBSCRIBED"})
    )
    result = await client(real).suppress("Ada@x.com", "spam_complaint", idempotency_key="s")

    assert result.model_dump() == {
        "provider": "hubspot",
        "object_type": "subscription",
        "id": "ada@x.com",
        "created": True,
    }
    assert body(only(unsubscribe)) == {"emailAddress": "ada@x.com", "subscriptionId": "1001"}


@respx.mock
async def test_an_unsubscribe_that_lost_a_race_counts_as_done(real: httpx.AsyncClient) -> None:
    respx.get(f"{API}/communication-preferences/v3/status/email/ada@x.com").mock(
        return_value=httpx.Response(
            200, json={"subscriptionStatuses": [{"id": "1001", "status": "SUBSCRIBED"}]}
        )
    )
    respx.post(f"{API}/communication-preferences/v3/unsubscribe").mock(
        return_value=httpx.Response(
            400,
            json=error_body("ada@x.com is already unsubscribed from subscription 1001", "VALIDATION_ERROR"),
        )
    )
    result = await client(real).suppress("ada@x.com", "unsubscribed", idempotency_key="s")
    assert not result.created


@respx.mock
async def test_a_validation_error_is_permanent_with_hubspots_words(real: httpx.AsyncClient) -> None:
    respx.post(f"{API}/crm/v3/objects/contacts/batch/upsert").mock(
        return_value=httpx.Response(
            400,
            json=error_body(
                "Property values were not valid",
                "VALIDATION_ERROR",
                errors=[
                    {
                        "message": '"99" is not a valid owner id',
                        "code": "INVALID_OWNER_ID",
                        "in": "hubspot_owner_id",
                    }
                ],
            ),
        )
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await client(real).upsert_person(Person(email="a@x.com", owner_id="99"), idempotency_key="k")
    assert caught.value.status == 400
    message = str(caught.value)
    assert "VALIDATION_ERROR: Property values were not valid" in message
    assert '"99" is not a valid owner id' in message
    assert "a43683b0-5717-4ceb-80b4-104d02915d8c" in message


@respx.mock
async def test_a_207_with_errors_is_permanent(real: httpx.AsyncClient) -> None:
    respx.post(f"{API}/crm/v3/objects/deals/batch/upsert").mock(
        return_value=httpx.Response(
            207,
            json={
                "status": "COMPLETE",
                "results": [],
                "numErrors": 1,
                "errors": [
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": "Property values were not valid",
                        "context": {"ids": ["d-1"]},
                        "errors": [
                            {"message": "bogus was not one of the allowed options", "code": "INVALID_OPTION"}
                        ],
                    }
                ],
            },
        )
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await client(real).upsert_deal(Deal(key="d-1", name="D", stage="bogus"), idempotency_key="k")
    assert caught.value.status == 207
    assert "bogus was not one of the allowed options" in str(caught.value) and "d-1" in str(caught.value)


@respx.mock
async def test_a_401_is_permanent(real: httpx.AsyncClient) -> None:
    respx.get(f"{API}/crm/v3/owners").mock(
        return_value=httpx.Response(
            401, json=error_body("Authentication credentials not found.", "INVALID_AUTHENTICATION")
        )
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await client(real).list_owners()
    assert (
        caught.value.status == 401
        and "INVALID_AUTHENTICATION: Authentication credentials not found" in str(caught.value)
    )


@respx.mock
async def test_a_404_on_the_contact_lookup_is_permanent(real: httpx.AsyncClient) -> None:
    respx.get(f"{API}/crm/v3/objects/contacts/ghost@x.com").mock(
        return_value=httpx.Response(404, json=error_body("Object not found.", "OBJECT_NOT_FOUND"))
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await client(real).add_to_list("ghost@x.com", "7", idempotency_key="k")
    assert caught.value.status == 404 and "OBJECT_NOT_FOUND" in str(caught.value)


RATE_HEADERS = {
    "X-HubSpot-RateLimit-Max": "100",
    "X-HubSpot-RateLimit-Remaining": "0",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
}


@pytest.mark.parametrize(
    ("headers", "policy", "delay"),
    [
        (RATE_HEADERS, "TEN_SECONDLY_ROLLING", 10.0),
        ({**RATE_HEADERS, "Retry-After": "3"}, "TEN_SECONDLY_ROLLING", 3.0),
        (
            {"X-HubSpot-RateLimit-Daily": "250000", "X-HubSpot-RateLimit-Daily-Remaining": "0"},
            "DAILY",
            3600.0,
        ),
    ],
)
async def test_a_429_carries_hubspots_delay(
    real: httpx.AsyncClient, headers: dict[str, str], policy: str, delay: float
) -> None:
    answer = error_body(
        f"You have reached your {policy.lower()} limit.",
        "RATE_LIMITS",
        errorType="RATE_LIMIT",
        policyName=policy,
    )
    observer = RecordingObserver()
    with respx.mock(assert_all_called=True) as router:
        router.post(f"{API}/crm/v3/objects/companies/batch/upsert").mock(
            return_value=httpx.Response(429, json=answer, headers=headers)
        )
        with pytest.raises(RateLimitedError) as caught:
            await client(real, observer=observer).upsert_company(
                Company(domain="acme.com"), idempotency_key="k"
            )
    assert caught.value.retry_after == delay
    assert f"[policy {policy}]" in str(caught.value)
    assert observer.calls == [("hubspot", "companies.upsert", "rate_limited")]


@respx.mock
async def test_the_search_limit_has_its_own_bucket_and_delay(real: httpx.AsyncClient) -> None:
    respx.post(f"{API}/crm/v3/objects/notes/search").mock(
        return_value=httpx.Response(
            429,
            json=error_body("You have reached your secondly limit.", "RATE_LIMITS", policyName="SECONDLY"),
        )
    )
    throttle = RecordingThrottle()
    with pytest.raises(RateLimitedError) as caught:
        await client(real, throttle=throttle).add_note(Note(body="x", occurred_at=WHEN), idempotency_key="k")
    assert caught.value.retry_after == 1.0
    assert throttle.keys == ["hubspot:search"]


@respx.mock
async def test_server_errors_and_timeouts_are_transient(real: httpx.AsyncClient) -> None:
    respx.get(f"{API}/crm/v3/owners").mock(
        side_effect=[
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            httpx.ReadTimeout("slow"),
        ]
    )
    with pytest.raises(TransientPlatformError) as caught:
        await client(real).list_owners()
    assert caught.value.status == 502 and "Bad Gateway" in str(caught.value)
    with pytest.raises(TransientPlatformError, match="timeout"):
        await client(real).list_owners()


# -- against the sandbox ----------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Any:
    return create_app(seed=1)


@pytest.fixture
async def http(sandbox: Any) -> Any:
    async with in_process(sandbox) as client:
        yield client


def hubspot(http: httpx.AsyncClient, token: str = "t", **kwargs: Any) -> HubSpotClient:
    return HubSpotClient(http, base_url="http://sandbox/hubspot", token=token, **kwargs)


def effects(sandbox: Any, object_type: str) -> list[str]:
    return [c.get("effect") for c in sandbox.state.sandbox.calls if c.get("object_type") == object_type]


def record(sandbox: Any, table: str, object_id: str) -> dict[str, Any]:
    found: dict[str, Any] = sandbox.state.sandbox.records[f"hubspot_{table}"][object_id]
    return found


async def test_sandbox_person_upsert_is_idempotent(http: httpx.AsyncClient, sandbox: Any) -> None:
    person = Person(email="ada@x.com", first_name="Ada", lifecycle_stage="lead", owner_id="71000001")
    first = await hubspot(http).upsert_person(person, idempotency_key="p-1")
    again = await hubspot(http).upsert_profile(person, idempotency_key="p-1")

    assert first.created and not again.created and first.id == again.id
    assert effects(sandbox, "contact") == ["created", "unchanged"]
    assert record(sandbox, "contacts", first.id)["properties"]["hubspot_owner_id"] == "71000001"


async def test_sandbox_stages_move_back_only_when_cleared(http: httpx.AsyncClient, sandbox: Any) -> None:
    client = hubspot(http)
    contact = (
        await client.upsert_person(Person(email="ada@x.com", lifecycle_stage="customer"), idempotency_key="a")
    ).id
    await client.upsert_person(Person(email="ada@x.com", lifecycle_stage="sql"), idempotency_key="b")
    # Backwards without clearing: the sandbox, as HubSpot, keeps the later stage.
    assert record(sandbox, "contacts", contact)["properties"]["lifecyclestage"] == "customer"
    await client.upsert_person(Person(email="ada@x.com", lifecycle_stage="recycled"), idempotency_key="c")
    assert record(sandbox, "contacts", contact)["properties"]["lifecyclestage"] == "lead"
    # The method activities use today takes our stage values too.
    legacy = await client.upsert_contact("ada@x.com", {"lifecyclestage": "mql"})
    assert legacy.properties["lifecyclestage"] == "marketingqualifiedlead"


async def test_sandbox_company_upsert_is_idempotent_by_domain(http: httpx.AsyncClient, sandbox: Any) -> None:
    first = await hubspot(http).upsert_company(
        Company(domain="https://www.acme.com", name="Acme"), idempotency_key="c"
    )
    again = await hubspot(http).upsert_company(Company(domain="ACME.com", employees=40), idempotency_key="c")
    assert first.created and not again.created and first.id == again.id
    assert effects(sandbox, "company") == ["created", "updated"]
    assert record(sandbox, "companies", first.id)["properties"]["name"] == "Acme"


async def test_sandbox_deal_upsert_and_its_associations_happen_once(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    client = hubspot(http)
    person = await client.upsert_person(Person(email="ada@x.com"), idempotency_key="p")
    company = await client.upsert_company(Company(domain="acme.com"), idempotency_key="c")
    deal = Deal(
        key="handoff-1",
        name="Acme",
        stage="qualifiedtobuy",
        amount=5000,
        person_id=person.id,
        company_id=company.id,
    )
    first = await client.upsert_deal(deal, idempotency_key="d")
    again = await client.upsert_deal(deal, idempotency_key="d")

    assert first.created and not again.created and first.id == again.id
    assert effects(sandbox, "deal") == ["created", "unchanged"]
    assert effects(sandbox, "association") == ["created", "created", "unchanged", "unchanged"]
    linked = (
        await http.get(
            f"/hubspot/crm/v4/objects/contacts/{person.id}/associations/deals",
            headers={"Authorization": "Bearer t"},
        )
    ).json()
    assert linked["results"] == [
        {
            "toObjectId": int(first.id),
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 4, "label": None}],
        }
    ]


async def test_sandbox_engagements_are_created_once_per_key(http: httpx.AsyncClient, sandbox: Any) -> None:
    client = hubspot(http)
    person = await client.upsert_person(Person(email="ada@x.com"), idempotency_key="p")
    task = Task(subject="Call", body="Demo asked", due_at=WHEN, owner_id="71000002", person_id=person.id)
    first = await client.create_task(task, idempotency_key="t-1")
    again = await client.create_task(task, idempotency_key="t-1")
    other = await client.create_task(task, idempotency_key="t-2")
    note = await client.add_note(Note(body="n", occurred_at=WHEN, person_id=person.id), idempotency_key="n")
    note_again = await client.add_note(
        Note(body="n", occurred_at=WHEN, person_id=person.id), idempotency_key="n"
    )
    meeting = Meeting(subject="Demo", start=WHEN, end=WHEN, person_id=person.id)
    booked = await client.log_meeting(meeting, idempotency_key="m")
    booked_again = await client.log_meeting(meeting, idempotency_key="m")

    assert first.created and not again.created and first.id == again.id and other.id != first.id
    assert note.created and not note_again.created and note.id == note_again.id
    assert booked.created and not booked_again.created and booked.id == booked_again.id
    assert effects(sandbox, "task") == ["created", "created"]
    assert effects(sandbox, "note") == ["created"] and effects(sandbox, "meeting") == ["created"]
    stored = record(sandbox, "tasks", first.id)["properties"]
    assert stored["hs_task_body"].endswith(f"[journeys ref {marker_token('t-1')}]")
    associations = sandbox.state.sandbox.records["hubspot_associations"]
    assert associations[f"tasks/{first.id}/contacts/{person.id}"]["types"] == [204]


async def test_sandbox_owners_are_read_across_pages(http: httpx.AsyncClient, sandbox: Any) -> None:
    client = hubspot(http)
    client.owners_page_size = 2
    owners = await client.list_owners()
    assert [o.email for o in owners][:2] == ["ava.lind@example.com", "ben.okafor@example.com"]
    assert len(owners) == 5 and "former.rep@example.com" not in {o.email for o in owners}
    pages = [c for c in sandbox.state.sandbox.calls if c["path"] == "/crm/v3/owners"]
    assert len(pages) == 3 and pages[1]["query"].endswith("after=2")


async def test_sandbox_list_membership_is_idempotent(http: httpx.AsyncClient, sandbox: Any) -> None:
    client = hubspot(http)
    contact = await client.upsert_person(Person(email="ada@x.com"), idempotency_key="p")
    added = await client.add_to_list("ada@x.com", "101", idempotency_key="l")
    added_again = await client.add_to_list("ADA@x.com", "101", idempotency_key="l")
    removed = await client.remove_from_list("ada@x.com", "101", idempotency_key="r")
    removed_again = await client.remove_from_list("ada@x.com", "101", idempotency_key="r")

    assert added.created and not added_again.created and added.id == added_again.id == f"101:{contact.id}"
    assert removed.created and not removed_again.created
    assert effects(sandbox, "list_membership") == ["created", "unchanged", "deleted", "unchanged"]
    with pytest.raises(PermanentPlatformError, match="DYNAMIC") as dynamic:
        await client.add_to_list("ada@x.com", "103", idempotency_key="x")
    assert dynamic.value.status == 400
    with pytest.raises(PermanentPlatformError, match="does not exist") as unknown:
        await client.add_to_list("ada@x.com", "999", idempotency_key="x")
    assert unknown.value.status == 404


async def test_sandbox_sends_once_per_send_id(http: httpx.AsyncClient, sandbox: Any) -> None:
    message = EmailMessage(to="ada@x.com", template_id="4242", variables={"first": "Ada"})
    first = await hubspot(http).send_email(message, idempotency_key="lead-1/welcome/1")
    again = await hubspot(http).send_email(message, idempotency_key="lead-1/welcome/1")

    assert first.created and not again.created and first.id == again.id
    assert effects(sandbox, "email") == ["sent", "duplicate"]
    assert len(sandbox.state.sandbox.records["hubspot_email_sends"]) == 1


async def test_sandbox_suppress_then_marketing_send_is_refused(http: httpx.AsyncClient, sandbox: Any) -> None:
    client = hubspot(http)
    first = await client.suppress("ada@x.com", "unsubscribed", idempotency_key="s")
    again = await client.suppress("ada@x.com", "unsubscribed", idempotency_key="s")
    assert first.created and not again.created
    assert effects(sandbox, "subscription_status") == ["updated", "updated"]
    with pytest.raises(PermanentPlatformError, match="PREVIOUSLY_UNSUBSCRIBED_PORTAL"):
        await client.send_email(EmailMessage(to="ada@x.com", template_id="1"), idempotency_key="e")
    # A transactional send ignores subscriptions, as HubSpot's does.
    sent = await hubspot(http, email_api="transactional").send_email(
        EmailMessage(to="ada@x.com", template_id="1"), idempotency_key="e"
    )
    assert sent.created


async def test_sandbox_suppress_narrowed_to_one_subscription(http: httpx.AsyncClient, sandbox: Any) -> None:
    await hubspot(http, subscription_id="1001").suppress("bo@x.com", "manual", idempotency_key="s")
    statuses = (
        await http.get(
            "/hubspot/communication-preferences/v3/status/email/bo@x.com",
            headers={"Authorization": "Bearer t"},
        )
    ).json()["subscriptionStatuses"]
    assert {s["id"]: s["status"] for s in statuses} == {"1001": "NOT_SUBSCRIBED", "1002": "SUBSCRIBED"}


async def test_sandbox_refuses_an_unknown_owner(http: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentPlatformError, match="not a valid owner id") as caught:
        await hubspot(http).upsert_person(Person(email="ada@x.com", owner_id="nobody"), idempotency_key="k")
    assert caught.value.status == 400


async def test_sandbox_faults_are_classified(http: httpx.AsyncClient, sandbox: Any) -> None:
    sandbox.state.sandbox.faults["hubspot"] = Faults(fail_next=1, fail_status=429, retry_after_seconds=7)
    with pytest.raises(RateLimitedError) as limited:
        await hubspot(http).create_task(Task(subject="x", due_at=WHEN), idempotency_key="k")
    assert limited.value.retry_after == 7 and "TEN_SECONDLY_ROLLING" in str(limited.value)
    sandbox.state.sandbox.faults["hubspot"] = Faults(fail_next=1, fail_status=503)
    with pytest.raises(TransientPlatformError) as down:
        await hubspot(http).list_owners()
    assert down.value.status == 503


async def test_sandbox_without_a_token_answers_401(http: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentPlatformError) as caught:
        await hubspot(http, token="").list_owners()
    assert caught.value.status == 401 and "Authentication credentials not found" in str(caught.value)


async def test_sandbox_search_filters_and_pages(http: httpx.AsyncClient) -> None:
    auth = {"Authorization": "Bearer t"}
    client = hubspot(http)
    for n in range(3):
        await client.upsert_person(
            Person(email=f"p{n}@acme.com", job_title=f"VP Sales {n}"), idempotency_key=f"{n}"
        )
    await client.upsert_person(Person(email="z@other.com", job_title="CTO"), idempotency_key="z")

    def search(filters: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"filterGroups": [{"filters": filters}], "properties": ["email", "jobtitle"], **extra}

    page = await http.post(
        "/hubspot/crm/v3/objects/contacts/search",
        json=search([{"propertyName": "jobtitle", "operator": "CONTAINS_TOKEN", "value": "sales"}], limit=2),
        headers=auth,
    )
    assert page.status_code == 200 and "X-HubSpot-RateLimit-Max" not in page.headers
    first = page.json()
    assert first["total"] == 3 and len(first["results"]) == 2 and first["paging"]["next"]["after"] == "2"
    rest = await http.post(
        "/hubspot/crm/v3/objects/contacts/search",
        json=search(
            [{"propertyName": "jobtitle", "operator": "CONTAINS_TOKEN", "value": "sales"}], limit=2, after="2"
        ),
        headers=auth,
    )
    assert len(rest.json()["results"]) == 1 and "paging" not in rest.json()
    exact = await http.post(
        "/hubspot/crm/v3/objects/contacts/search",
        json=search([{"propertyName": "email", "operator": "EQ", "value": "Z@other.com"}]),
        headers=auth,
    )
    assert [r["properties"]["jobtitle"] for r in exact.json()["results"]] == ["CTO"]
    bad = await http.post(
        "/hubspot/crm/v3/objects/contacts/search",
        json=search([{"propertyName": "email", "operator": "LIKE", "value": "x"}]),
        headers=auth,
    )
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR"


async def test_sandbox_batch_with_a_bad_input_answers_207(http: httpx.AsyncClient, sandbox: Any) -> None:
    answer = await http.post(
        "/hubspot/crm/v3/objects/contacts/batch/upsert",
        json={
            "inputs": [
                {"idProperty": "email", "id": "ok@x.com", "properties": {"firstname": "Ok"}},
                {"idProperty": "email", "id": "bad@x.com", "properties": {"lifecyclestage": "mql"}},
            ]
        },
        headers={"Authorization": "Bearer t"},
    )
    assert answer.status_code == 207
    payload = answer.json()
    assert [r["properties"]["email"] for r in payload["results"]] == ["ok@x.com"]
    assert payload["numErrors"] == 1 and payload["errors"][0]["context"] == {"ids": ["bad@x.com"]}
    assert payload["errors"][0]["errors"][0]["code"] == "INVALID_OPTION"
