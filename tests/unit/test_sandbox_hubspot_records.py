"""The sandbox HubSpot's records beyond create-and-update, as HubSpot's CRM v3 API keeps them: a
contact merge (into a new record with a new id, both old ids reading as it), a delete (archive),
calls logged with their associations, and the task and call searches the engine polls with (a
status and a last-modified cursor in epoch milliseconds, oldest first, paged); the webhook events
a merge and a delete send; and every answer checked against HubSpot's published definitions
(cuts in `tests/specs/hubspot/`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from sandbox.hubspot import CALL_DISPOSITIONS
from sandbox.hubspot_webhooks import UI_USER
from tests.helpers.receiver import Receiver, receiver
from tests.helpers.specs import Exchanges, PublishedApi, recorded_sandbox
from tests.helpers.waiting import eventually

APP_ID = "1160452"
ENGINE = {"Authorization": "Bearer sandbox-hubspot-token"}
REP = {"Authorization": "Bearer pat-rep-in-the-ui"}
CRM = "/hubspot/crm/v3/objects"
API = PublishedApi("hubspot/contacts-v3-cut.json", "hubspot/tasks-v3-cut.json", "hubspot/calls-v3-cut.json")
ERROR = {"$ref": "#/components/schemas/Error"}


@pytest.fixture
def engine() -> Iterator[Receiver]:
    with receiver() as box:
        yield box


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[httpx.AsyncClient, Exchanges]]:
    async with recorded_sandbox(seed=47) as exchanged:
        yield exchanged


async def subscribe(http: httpx.AsyncClient, engine: Receiver, *event_types: str) -> None:
    settings = {"targetUrl": f"{engine.url}/v1/webhooks/hubspot", "throttling": {"maxConcurrentRequests": 10}}
    answer = await http.put(f"/hubspot/webhooks/v3/{APP_ID}/settings", headers=ENGINE, json=settings)
    assert answer.status_code == 200, answer.text
    for event_type in event_types:
        made = await http.post(
            f"/hubspot/webhooks/v3/{APP_ID}/subscriptions",
            headers=ENGINE,
            json={"eventType": event_type, "active": True},
        )
        assert made.status_code == 201, made.text


async def events(engine: Receiver, n: int) -> list[dict[str, Any]]:
    async def arrived() -> list[dict[str, Any]]:
        got = [event for delivery in engine.received for event in json.loads(delivery.body)]
        assert len(got) >= n, got
        return got

    return await eventually(arrived, timeout=10, what=f"{n} webhook events")


async def contact(http: httpx.AsyncClient, **properties: str) -> dict[str, Any]:
    made = await http.post(f"{CRM}/contacts", headers=ENGINE, json={"properties": properties})
    assert made.status_code == 201, made.text
    return dict(made.json())


def ms(at: float | None = None) -> str:
    return str(int((time.time() if at is None else at) * 1000))


def answer_in_published_shape(response: httpx.Response) -> None:
    """The answer alone checked (for a request the engine sends in the form HubSpot's guides
    show, `sorts` as objects, where the published definition types `sorts` as strings)."""
    path = response.request.url.path.removeprefix("/hubspot")
    index, operation = API.operation(response.request.method, path)
    schema = operation["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
    API.validate(index, schema, response.json(), f"the answer to {path}")


def published_contact_operations(recorded: Exchanges) -> set[str]:
    """Every successful exchange with one contact (read, merge, delete) checked, request and
    answer, against HubSpot's published contacts definition; the operations they were."""
    checked = set()
    for response in recorded.seen:
        path = response.request.url.path
        if (
            path.startswith(f"{CRM}/contacts/")
            and not path.endswith("/search")
            and response.status_code < 300
        ):
            checked.add(API.check(response, "/hubspot", "application/json"))
    return checked


def an_error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = dict(response.json())
    API.validate(0, ERROR, body, "the error answer")
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    return body


# -- merge ----------------------------------------------------------------------------------------


async def test_a_merge_makes_a_new_record_that_both_old_ids_read_as_and_sends_the_merge_event(
    sandbox, engine
):
    http, recorded = sandbox
    await subscribe(http, engine, "contact.merge")
    primary = await contact(http, email="ada@example-corp.com", firstname="Ada", lifecyclestage="lead")
    secondary = await contact(
        http,
        email="ada.l@example-mail.com",
        firstname="Augusta",
        phone="+44 20 7946 0000",
        jobtitle="Analyst",
        lifecyclestage="customer",
    )
    task = await http.post(
        f"{CRM}/tasks",
        headers=ENGINE,
        json={
            "properties": {"hs_timestamp": "2026-12-04T09:00:00Z", "hs_task_subject": "Call back"},
            "associations": [
                {
                    "to": {"id": secondary["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
                }
            ],
        },
    )
    listed = await http.put(
        "/hubspot/crm/v3/lists/101/memberships/add", headers=ENGINE, json=[secondary["id"]]
    )
    assert task.status_code == 201 and listed.status_code == 200

    merged = await http.post(
        f"{CRM}/contacts/merge",
        headers=REP,
        json={"primaryObjectId": primary["id"], "objectIdToMerge": secondary["id"]},
    )

    assert merged.status_code == 200, merged.text
    assert API.check(merged, "/hubspot", "application/json") == "post-/crm/v3/objects/contacts/merge_merge"
    record = merged.json()
    new_id = record["id"]
    assert new_id not in (primary["id"], secondary["id"]), "HubSpot merges contacts into a new record"
    props = record["properties"]
    assert props["hs_object_id"] == new_id
    assert (props["email"], props["firstname"]) == ("ada@example-corp.com", "Ada"), "the primary's values"
    assert (props["phone"], props["jobtitle"]) == ("+44 20 7946 0000", "Analyst"), "the secondary fills gaps"
    assert props["hs_additional_emails"] == "ada.l@example-mail.com"
    assert props["lifecyclestage"] == "customer", "the stage furthest down the funnel"
    assert props["hs_merged_object_ids"] == f"{primary['id']};{secondary['id']}"

    for old in (primary["id"], secondary["id"]):
        read = await http.get(f"{CRM}/contacts/{old}", headers=ENGINE)
        assert read.status_code == 200 and read.json()["id"] == new_id
    found = await http.post(
        f"{CRM}/contacts/search",
        headers=ENGINE,
        json={
            "filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "ada*"}]}
            ]
        },
    )
    assert [r["id"] for r in found.json()["results"]] == [new_id], "the old records are gone"
    linked = await http.get(
        f"/hubspot/crm/v4/objects/tasks/{task.json()['id']}/associations/contacts", headers=ENGINE
    )
    assert [r["toObjectId"] for r in linked.json()["results"]] == [int(new_id)]
    members = await http.get("/hubspot/crm/v3/lists/101/memberships", headers=ENGINE)
    assert [m["recordId"] for m in members.json()["results"]] == [new_id]
    again = await http.post(
        f"{CRM}/contacts", headers=ENGINE, json={"properties": {"email": "ada.l@example-mail.com"}}
    )
    assert again.status_code == 409 and new_id in again.json()["message"], "the merged email is still taken"
    assert published_contact_operations(recorded) == {
        "post-/crm/v3/objects/contacts/merge_merge",
        "get-/crm/v3/objects/contacts/{contactId}_getById",
    }

    [event] = await events(engine, 1)
    assert event["subscriptionType"] == "contact.merge"
    assert event["objectId"] == int(primary["id"])
    assert event["primaryObjectId"] == int(primary["id"])
    assert event["mergedObjectIds"] == [int(secondary["id"])]
    assert event["newObjectId"] == int(new_id)
    assert event["numberOfPropertiesMoved"] == 2, "phone and jobtitle came from the secondary"
    assert (event["changeSource"], event["sourceId"]) == ("CRM_UI", UI_USER)
    assert {"eventId", "subscriptionId", "portalId", "appId", "occurredAt", "attemptNumber"} <= event.keys()
    assert event["appId"] == int(APP_ID)
    assert "propertyName" not in event


async def test_a_merge_the_engine_makes_comes_back_as_the_apps(sandbox, engine):
    http, _ = sandbox
    await subscribe(http, engine, "contact.merge")
    one, two = (
        await contact(http, email="grace@example-corp.com"),
        await contact(http, email="g@example-mail.com"),
    )
    merged = await http.post(
        f"{CRM}/contacts/merge",
        headers=ENGINE,
        json={"primaryObjectId": two["id"], "objectIdToMerge": one["id"]},
    )
    assert merged.status_code == 200, merged.text
    [event] = await events(engine, 1)
    assert (event["changeSource"], event["sourceId"]) == ("INTEGRATION", APP_ID)
    assert (event["primaryObjectId"], event["mergedObjectIds"]) == (int(two["id"]), [int(one["id"])])
    assert merged.json()["properties"]["email"] == "g@example-mail.com"


async def test_a_merged_record_merges_again_under_any_of_its_ids(sandbox):
    http, _ = sandbox
    a, b, c = [await contact(http, email=f"{n}@example-corp.com") for n in ("a", "b", "c")]
    first = (
        await http.post(
            f"{CRM}/contacts/merge",
            headers=REP,
            json={"primaryObjectId": a["id"], "objectIdToMerge": b["id"]},
        )
    ).json()
    second = await http.post(
        f"{CRM}/contacts/merge", headers=REP, json={"primaryObjectId": c["id"], "objectIdToMerge": a["id"]}
    )
    assert second.status_code == 200, second.text
    last = second.json()
    assert last["properties"]["hs_merged_object_ids"] == ";".join(
        sorted({a["id"], b["id"], c["id"], first["id"]}, key=int)
    )
    for old in (a["id"], b["id"], c["id"], first["id"]):
        assert (await http.get(f"{CRM}/contacts/{old}", headers=REP)).json()["id"] == last["id"]
    assert set(last["properties"]["hs_additional_emails"].split(";")) == {
        "a@example-corp.com",
        "b@example-corp.com",
    }


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"primaryObjectId": "{one}"}, "objectIdToMerge"),
        ({"objectIdToMerge": "{one}"}, "primaryObjectId"),
        ({"primaryObjectId": "{one}", "objectIdToMerge": "{one}"}, "objectIdToMerge"),
        ({"primaryObjectId": "{one}", "objectIdToMerge": "999999"}, "objectIdToMerge"),
        ({"primaryObjectId": "not-an-id", "objectIdToMerge": "{two}"}, "primaryObjectId"),
        ({"primaryObjectId": True, "objectIdToMerge": "{two}"}, "primaryObjectId"),
    ],
)
async def test_a_merge_hubspot_would_refuse_is_a_400_naming_what_is_wrong_and_changes_nothing(
    sandbox, engine, body, named
):
    http, _ = sandbox
    await subscribe(http, engine, "contact.merge", "contact.deletion")
    one, two = (
        await contact(http, email="ada@example-corp.com"),
        await contact(http, email="ada2@example-corp.com"),
    )
    ids = {"{one}": one["id"], "{two}": two["id"]}
    sent = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}

    refused = await http.post(f"{CRM}/contacts/merge", headers=REP, json=sent)

    error = an_error(refused)
    assert named in error["message"] and named in {e.get("in") for e in error["errors"]}
    for record in (one, two):
        read = await http.get(f"{CRM}/contacts/{record['id']}", headers=REP)
        assert read.status_code == 200 and read.json()["id"] == record["id"], "nothing was merged"
    # The first event to arrive is the delete's: the refused merge sent none.
    assert (await http.delete(f"{CRM}/contacts/{one['id']}", headers=REP)).status_code == 204
    [event] = await events(engine, 1)
    assert event["subscriptionType"] == "contact.deletion"


# -- delete ---------------------------------------------------------------------------------------


async def test_a_deleted_contact_is_gone_from_reads_searches_and_lists_and_sends_its_deletion(
    sandbox, engine
):
    http, recorded = sandbox
    await subscribe(http, engine, "contact.deletion")
    made = await contact(http, email="linus@example-corp.com", firstname="Linus")
    await http.put("/hubspot/crm/v3/lists/102/memberships/add", headers=ENGINE, json=[made["id"]])

    deleted = await http.delete(f"{CRM}/contacts/{made['id']}", headers=REP)

    assert deleted.status_code == 204 and deleted.content == b""
    assert (await http.get(f"{CRM}/contacts/{made['id']}", headers=REP)).status_code == 404
    archived = await http.get(f"{CRM}/contacts/{made['id']}", headers=REP, params={"archived": "true"})
    assert (
        archived.status_code == 200 and archived.json()["archived"] is True and archived.json()["archivedAt"]
    )
    search = await http.post(
        f"{CRM}/contacts/search",
        headers=REP,
        json={
            "filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "EQ", "value": "linus@example-corp.com"}]}
            ]
        },
    )
    assert search.json()["total"] == 0
    members = await http.get("/hubspot/crm/v3/lists/102/memberships", headers=REP)
    assert members.json()["results"] == []
    again = await http.delete(f"{CRM}/contacts/{made['id']}", headers=REP)
    assert again.status_code == 204, "HubSpot answers 204 for an id that names no record too"
    remade = await contact(http, email="linus@example-corp.com")
    assert remade["id"] != made["id"], "the email is free again, for a new record"
    assert published_contact_operations(recorded) == {
        "delete-/crm/v3/objects/contacts/{contactId}_archive",
        "get-/crm/v3/objects/contacts/{contactId}_getById",
    }

    [event] = await events(engine, 1)
    assert (event["subscriptionType"], event["objectId"]) == ("contact.deletion", int(made["id"]))
    assert (event["changeSource"], event["sourceId"]) == ("CRM_UI", UI_USER)
    await asyncio.sleep(0.3)
    assert len(await events(engine, 1)) == 1, "deleting nothing sends nothing"


async def test_deals_and_companies_are_deleted_the_same_way(sandbox):
    http, _ = sandbox
    deal = await http.post(
        f"{CRM}/deals",
        headers=ENGINE,
        json={
            "properties": {"dealname": "Example", "pipeline": "default", "dealstage": "appointmentscheduled"}
        },
    )
    company = await http.post(
        f"{CRM}/companies", headers=ENGINE, json={"properties": {"name": "Example Corp"}}
    )
    for kind, made in (("deals", deal), ("companies", company)):
        record_id = made.json()["id"]
        assert (await http.delete(f"{CRM}/{kind}/{record_id}", headers=REP)).status_code == 204
        assert (await http.get(f"{CRM}/{kind}/{record_id}", headers=REP)).status_code == 404


# -- calls ----------------------------------------------------------------------------------------


async def log_call(
    http: httpx.AsyncClient, contact_id: str, status: str = "COMPLETED", **extra: str
) -> httpx.Response:
    return await http.post(
        f"{CRM}/calls",
        headers=REP,
        json={
            "properties": {
                "hs_timestamp": "2026-12-04T10:30:00.000Z",
                "hs_call_status": status,
                "hs_call_direction": "OUTBOUND",
                "hs_call_disposition": CALL_DISPOSITIONS["Connected"],
                "hs_call_duration": "420000",
                "hubspot_owner_id": "71000002",
                **extra,
            },
            "associations": [
                {
                    "to": {"id": contact_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
                }
            ],
        },
    )


async def test_a_logged_call_is_a_calls_record_associated_with_its_contact(sandbox):
    http, _ = sandbox
    person = await contact(http, email="ada@example-corp.com")

    made = await log_call(http, person["id"], hs_call_title="Discovery call")

    assert made.status_code == 201, made.text
    assert API.check(made, "/hubspot", "application/json") == "post-/crm/v3/objects/calls_create"
    call = made.json()
    assert int(call["id"]) >= 50001
    props = call["properties"]
    assert props["hs_call_status"] == "COMPLETED" and props["hs_call_duration"] == "420000"
    assert props["hs_createdate"] and props["hs_lastmodifieddate"] and props["hs_object_id"] == call["id"]
    read = await http.get(f"{CRM}/calls/{call['id']}", headers=REP)
    assert read.json()["properties"]["hs_call_disposition"] == CALL_DISPOSITIONS["Connected"]
    assert API.check(read, "/hubspot", "application/json") == "get-/crm/v3/objects/calls/{callId}_getById"
    linked = await http.get(f"/hubspot/crm/v4/objects/calls/{call['id']}/associations/contacts", headers=REP)
    assert linked.json()["results"] == [
        {
            "toObjectId": int(person["id"]),
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 194, "label": None}],
        }
    ]
    back = await http.get(f"/hubspot/crm/v4/objects/contacts/{person['id']}/associations/calls", headers=REP)
    assert back.json()["results"][0]["associationTypes"][0]["typeId"] == 193


async def test_a_call_hubspot_would_refuse_is_a_400_naming_the_property(sandbox):
    http, _ = sandbox
    person = await contact(http, email="ada@example-corp.com")
    bad_status = an_error(await log_call(http, person["id"], status="DONE"))
    assert bad_status["errors"][0]["context"]["propertyName"] == ["hs_call_status"]
    assert bad_status["errors"][0]["code"] == "INVALID_OPTION"
    no_time = an_error(
        await http.post(f"{CRM}/calls", headers=REP, json={"properties": {"hs_call_status": "COMPLETED"}})
    )
    assert no_time["errors"][0]["context"]["propertyName"] == ["hs_timestamp"]
    wrong_type = await http.post(
        f"{CRM}/calls",
        headers=REP,
        json={
            "properties": {"hs_timestamp": ms()},
            "associations": [
                {
                    "to": {"id": person["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
                }
            ],
        },
    )
    an_error(wrong_type)
    assert (await http.post(f"{CRM}/calls/search", headers=REP, json={})).json()["total"] == 0, (
        "nothing was made"
    )


# -- task and call search -------------------------------------------------------------------------


def since_search(status_property: str, since: str, **more: Any) -> dict[str, Any]:
    """The search the engine polls with: completed, changed at or after `since` (epoch ms)."""
    return {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": status_property, "operator": "EQ", "value": "COMPLETED"},
                    {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since},
                ]
            }
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": [status_property, "hubspot_owner_id", "hs_timestamp", "hs_lastmodifieddate"],
        "limit": 200,
        **more,
    }


async def found_ids(http: httpx.AsyncClient, object_type: str, body: dict[str, Any]) -> list[str]:
    found = await http.post(f"{CRM}/{object_type}/search", headers=ENGINE, json=body)
    assert found.status_code == 200, found.text
    return [str(r["id"]) for r in found.json()["results"]]


async def new_task(http: httpx.AsyncClient, subject: str) -> str:
    made = await http.post(
        f"{CRM}/tasks",
        headers=ENGINE,
        json={
            "properties": {
                "hs_task_subject": subject,
                "hs_task_status": "NOT_STARTED",
                "hs_timestamp": "2026-12-05T09:00:00.000Z",
                "hubspot_owner_id": "71000001",
            }
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def complete(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    done = await http.patch(
        f"{CRM}/tasks/{task_id}", headers=REP, json={"properties": {"hs_task_status": "COMPLETED"}}
    )
    assert done.status_code == 200, done.text
    return dict(done.json())


async def test_a_task_a_rep_completes_is_found_by_status_and_an_epoch_ms_cursor(sandbox):
    http, _ = sandbox
    open_id, done_id = await new_task(http, "Call Ada"), await new_task(http, "Email Grace")
    created = (await http.get(f"{CRM}/tasks/{done_id}", headers=REP)).json()["properties"]
    await asyncio.sleep(0.02)
    cursor = ms()
    await asyncio.sleep(0.02)

    completed = await complete(http, done_id)

    assert completed["properties"]["hs_lastmodifieddate"] > created["hs_lastmodifieddate"], (
        "the change moves it"
    )
    assert completed["properties"]["hs_task_completion_date"]
    found = await http.post(
        f"{CRM}/tasks/search", headers=ENGINE, json=since_search("hs_task_status", cursor)
    )
    assert found.status_code == 200, found.text
    answer_in_published_shape(found)
    [hit] = found.json()["results"]
    assert hit["id"] == done_id and hit["id"] != open_id
    assert set(hit["properties"]) == {
        "hs_object_id",
        "hs_task_status",
        "hubspot_owner_id",
        "hs_timestamp",
        "hs_lastmodifieddate",
    }
    await asyncio.sleep(0.02)
    later = since_search("hs_task_status", ms())
    assert await found_ids(http, "tasks", later) == [], "a cursor after the change finds nothing (instants)"
    in_an_hour = since_search("hs_task_status", ms(time.time() + 3600))
    assert await found_ids(http, "tasks", in_an_hour) == []
    iso_cursor = since_search("hs_task_status", created["hs_lastmodifieddate"])
    assert await found_ids(http, "tasks", iso_cursor) == [done_id], "an ISO value is a cursor too"
    before = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "LT", "value": cursor}]}
        ]
    }
    assert await found_ids(http, "tasks", before) == [open_id]


async def test_completed_tasks_come_oldest_change_first_and_page_with_after(sandbox):
    http, _ = sandbox
    cursor = ms()
    ids = [await new_task(http, f"Task {n}") for n in range(5)]
    for task_id in (ids[3], ids[0], ids[4], ids[1]):
        await asyncio.sleep(0.005)
        await complete(http, task_id)

    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        body = since_search("hs_task_status", cursor, limit=3, **({"after": after} if after else {}))
        page = await http.post(f"{CRM}/tasks/search", headers=ENGINE, json=body)
        answer_in_published_shape(page)
        assert page.json()["total"] == 4
        seen += [r["id"] for r in page.json()["results"]]
        pages += 1
        after = (page.json().get("paging") or {}).get("next", {}).get("after")
        if not after:
            break
    assert seen == [ids[3], ids[0], ids[4], ids[1]] and pages == 2
    too_many = await http.post(
        f"{CRM}/tasks/search", headers=ENGINE, json=since_search("hs_task_status", cursor, limit=201)
    )
    an_error(too_many)
    # The search in the published definition's own form (`sorts` as strings, every field given).
    published = {
        "filterGroups": since_search("hs_task_status", cursor)["filterGroups"],
        "sorts": ["-hs_lastmodifieddate"],
        "properties": ["hs_task_status"],
        "limit": 2,
        "after": "",
    }
    newest = await http.post(f"{CRM}/tasks/search", headers=ENGINE, json=published)
    assert API.check(newest, "/hubspot", "application/json") == "post-/crm/v3/objects/tasks/search_doSearch"
    assert [r["id"] for r in newest.json()["results"]] == [ids[1], ids[4]]


async def test_calls_search_by_status_and_cursor_like_tasks(sandbox):
    http, _ = sandbox
    person = await contact(http, email="ada@example-corp.com")
    cursor = ms()
    first = (await log_call(http, person["id"])).json()["id"]
    await asyncio.sleep(0.005)
    missed = (await log_call(http, person["id"], status="NO_ANSWER")).json()["id"]
    await asyncio.sleep(0.005)
    second = (
        await log_call(http, person["id"], hs_call_disposition=CALL_DISPOSITIONS["Left voicemail"])
    ).json()["id"]

    body = since_search("hs_call_status", cursor)
    body["properties"] = [
        "hs_call_status",
        "hs_call_direction",
        "hs_call_disposition",
        "hs_call_duration",
        "hubspot_owner_id",
        "hs_timestamp",
        "hs_lastmodifieddate",
    ]
    found = await http.post(f"{CRM}/calls/search", headers=ENGINE, json=body)

    assert found.status_code == 200, found.text
    answer_in_published_shape(found)
    results = found.json()["results"]
    assert [r["id"] for r in results] == [first, second] and missed not in {r["id"] for r in results}
    assert results[1]["properties"]["hs_call_disposition"] == CALL_DISPOSITIONS["Left voicemail"]
    assert results[0]["properties"]["hs_call_direction"] == "OUTBOUND"
    published = {
        "filterGroups": body["filterGroups"],
        "sorts": ["hs_lastmodifieddate"],
        "properties": ["hs_call_status"],
        "limit": 1,
        "after": "",
    }
    page = await http.post(f"{CRM}/calls/search", headers=ENGINE, json=published)
    assert API.check(page, "/hubspot", "application/json") == "post-/crm/v3/objects/calls/search_doSearch"
    assert [r["id"] for r in page.json()["results"]] == [first] and page.json()["paging"]["next"][
        "after"
    ] == "1"


async def test_a_between_filter_takes_epoch_ms_and_iso_bounds(sandbox):
    http, _ = sandbox
    person = await contact(http, email="ada@example-corp.com")
    early = (await log_call(http, person["id"], hs_timestamp="2026-12-01T08:00:00Z")).json()["id"]
    await log_call(http, person["id"], hs_timestamp="1797724800000")  # 2026-12-20, as epoch ms
    window = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_timestamp",
                        "operator": "BETWEEN",
                        "value": "2026-11-30T00:00:00Z",
                        "highValue": ms(1_796_169_600),  # 2026-12-02T00:00:00Z
                    }
                ]
            }
        ]
    }
    assert await found_ids(http, "calls", window) == [early]
