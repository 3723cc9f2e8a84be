"""The sandbox's Salesforce as the records' life goes on: deletes to the recycle bin and queryAll
finding them, a rep merging duplicates in the UI (`POST /_salesforce/merge`), an owner change in
the field history as Salesforce writes it (two `Owner` rows), and a rep's logged calls and
completed tasks found by `IsClosed`."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandbox.app import create_app
from tests.helpers.platforms import in_process

DATA = "/salesforce/services/data/v62.0"
REP = "chloe.martin@example.com"
CLOSED_TASKS = (
    "SELECT Id, WhoId, TaskSubtype, Status, IsClosed, CompletedDateTime, CallType, CallDisposition, "
    "CallDurationInSeconds, LastModifiedById, SystemModstamp FROM Task "
    "WHERE IsClosed = true AND SystemModstamp >= 2026-01-01T00:00:00Z ORDER BY SystemModstamp ASC LIMIT 200"
)


@pytest.fixture
def sandbox() -> Any:
    return create_app(seed=7)


@pytest.fixture
async def http(sandbox: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(sandbox) as client:
        yield client


async def login(http: httpx.AsyncClient, client_id: str = "3MVG9.engine") -> dict[str, str]:
    """A token's header: a connected app's (the integration user), or `ui:<username>`'s."""
    granted = await http.post(
        "/salesforce/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "s"},
    )
    assert granted.status_code == 200, granted.text
    return {"Authorization": f"Bearer {granted.json()['access_token']}"}


async def create(http: httpx.AsyncClient, auth: dict[str, str], sobject: str, **fields: Any) -> str:
    made = await http.post(f"{DATA}/sobjects/{sobject}", headers=auth, json=fields)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def soql(
    http: httpx.AsyncClient, auth: dict[str, str], q: str, resource: str = "query"
) -> dict[str, Any]:
    answered = await http.get(f"{DATA}/{resource}", headers=auth, params={"q": q})
    assert answered.status_code == 200, answered.text
    return dict(answered.json())


async def user_id(http: httpx.AsyncClient, auth: dict[str, str], username: str) -> str:
    found = await soql(http, auth, f"SELECT Id, Name FROM User WHERE Username = '{username}'")
    return str(found["records"][0]["Id"])


async def lead(http: httpx.AsyncClient, auth: dict[str, str], name: str) -> str:
    return await create(http, auth, "Lead", LastName=name, Company="Acme", Email=f"{name.lower()}@acme.com")


# ---- deletes and queryAll ------------------------------------------------------------------------


async def test_a_deleted_record_is_in_the_recycle_bin_queryall_alone_sees(sandbox, http):
    engine = await login(http)
    rep = await login(http, f"ui:{REP}")
    kept, gone = await lead(http, engine, "Kept"), await lead(http, engine, "Gone")

    deleted = await http.delete(f"{DATA}/sobjects/Lead/{gone}", headers=rep)
    assert deleted.status_code == 204 and deleted.content == b""
    [call] = [c for c in sandbox.state.sandbox.calls if c["method"] == "DELETE"]
    assert (call["effect"], call["object_type"], call["object_id"]) == ("deleted", "Lead", gone)

    read = await http.get(f"{DATA}/sobjects/Lead/{gone}", headers=engine)
    assert read.status_code == 404 and read.json()[0]["errorCode"] == "NOT_FOUND"
    again = await http.delete(f"{DATA}/sobjects/Lead/{gone}", headers=engine)
    assert again.status_code == 404
    assert again.json() == [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}]
    patched = await http.patch(f"{DATA}/sobjects/Lead/{gone}", headers=engine, json={"Title": "CTO"})
    assert patched.status_code == 404 and patched.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    unknown = await http.delete(f"{DATA}/sobjects/Lead/00Q000000009999AAA", headers=engine)
    assert unknown.status_code == 404 and unknown.json()[0]["errorCode"] == "NOT_FOUND"

    live = await soql(http, engine, "SELECT Id FROM Lead")
    assert [r["Id"] for r in live["records"]] == [kept]
    assert (await soql(http, engine, "SELECT Id FROM Lead WHERE IsDeleted = true"))["totalSize"] == 0
    everything = await soql(http, engine, "SELECT Id, IsDeleted FROM Lead", "queryAll")
    assert {r["Id"]: r["IsDeleted"] for r in everything["records"]} == {kept: False, gone: True}
    [bin_row] = (
        await soql(
            http,
            engine,
            "SELECT Id, IsDeleted, MasterRecordId, LastModifiedById, SystemModstamp FROM Lead "
            "WHERE IsDeleted = true AND SystemModstamp >= 2026-01-01T00:00:00Z",
            "queryAll",
        )
    )["records"]
    assert bin_row["Id"] == gone and bin_row["MasterRecordId"] is None
    assert bin_row["LastModifiedById"] == await user_id(http, engine, REP)  # the rep deleted it
    stored = sandbox.state.sandbox.records["salesforce_lead"][gone]
    assert stored["SystemModstamp"] == stored["LastModifiedDate"] >= stored["CreatedDate"]

    # An upsert by the external id no longer finds the deleted lead: it makes a new one.
    key = f"{DATA}/sobjects/Lead/Journeys_Lead_Id__c"
    first = await http.patch(f"{key}/L-9", headers=engine, json={"LastName": "X", "Company": "Y"})
    await http.delete(f"{DATA}/sobjects/Lead/{first.json()['id']}", headers=engine)
    second = await http.patch(f"{key}/L-9", headers=engine, json={"LastName": "X", "Company": "Y"})
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]


async def test_queryall_pages_like_query_its_next_url_saying_query(http):
    engine = await login(http)
    ids = [await lead(http, engine, f"P{n}") for n in range(7)]
    for gone in ids[:3]:
        assert (await http.delete(f"{DATA}/sobjects/Lead/{gone}", headers=engine)).status_code == 204

    first = await soql(http, engine, "SELECT Id FROM Lead ORDER BY LastName ASC", "queryAll")
    assert first["totalSize"] == 7 and not first["done"] and len(first["records"]) == 5
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    assert first["nextRecordsUrl"] == f"/services/data/v62.0/query/{locator}"  # as Salesforce's says
    pages = []
    for resource in ("query", "queryAll"):  # either resource pages a queryAll
        page = await http.get(f"{DATA}/{resource}/{locator}", headers=engine)
        assert page.status_code == 200, page.text
        pages.append(page.json())
    assert pages[0] == pages[1] and pages[0]["done"]
    assert [r["Id"] for r in first["records"] + pages[0]["records"]] == ids
    assert (await soql(http, engine, "SELECT Id FROM Lead"))["totalSize"] == 4


# ---- merges ---------------------------------------------------------------------------------------


async def test_a_reps_merge_leaves_the_loser_in_the_bin_with_its_master(sandbox, http):
    engine = await login(http)
    master, loser, other = [await lead(http, engine, n) for n in ("Master", "Loser", "Other")]
    task = await create(http, engine, "Task", Subject="Call back", WhoId=loser)

    merged = await http.post(
        "/_salesforce/merge",
        json={"sobject": "Lead", "master_id": master, "merged_ids": [loser], "username": REP},
    )
    assert merged.status_code == 200, merged.text
    assert merged.json() == {"master_id": master, "merged_ids": [loser]}

    chloe = await user_id(http, engine, REP)
    [found] = (
        await soql(
            http,
            engine,
            "SELECT Id, MasterRecordId, LastModifiedById, IsDeleted, SystemModstamp FROM Lead "
            "WHERE IsDeleted = true AND MasterRecordId != null AND SystemModstamp >= 2026-01-01T00:00:00Z",
            "queryAll",
        )
    )["records"]
    assert (found["Id"], found["MasterRecordId"], found["LastModifiedById"]) == (loser, master, chloe)
    live = await soql(http, engine, "SELECT Id, LastModifiedById FROM Lead ORDER BY LastName ASC")
    assert {r["Id"]: r["LastModifiedById"] for r in live["records"]} == {
        master: chloe,
        other: await user_id(http, engine, "integration@journeys.example"),
    }
    read = await http.get(f"{DATA}/sobjects/Lead/{loser}", headers=engine)
    assert read.status_code == 404
    # The loser's activities are the master's now.
    moved = await http.get(f"{DATA}/sobjects/Task/{task}", headers=engine, params={"fields": "WhoId"})
    assert moved.json()["WhoId"] == master
    # MasterRecordId is Salesforce's to set.
    refused = await http.patch(
        f"{DATA}/sobjects/Lead/{other}", headers=engine, json={"MasterRecordId": master}
    )
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert sandbox.state.sandbox.records["salesforce_lead"][master]["IsDeleted"] is False


async def test_contacts_merge_up_to_three_records(http):
    engine = await login(http)
    ids = [await create(http, engine, "Contact", LastName=f"C{n}") for n in range(3)]
    merged = await http.post(
        "/_salesforce/merge",
        json={"sobject": "contact", "master_id": ids[0], "merged_ids": ids[1:], "username": REP},
    )
    assert merged.status_code == 200, merged.text
    bin_rows = await soql(
        http, engine, "SELECT Id, MasterRecordId FROM Contact WHERE IsDeleted = true", "queryAll"
    )
    assert {r["Id"]: r["MasterRecordId"] for r in bin_rows["records"]} == {ids[1]: ids[0], ids[2]: ids[0]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sobject": "Account"}, "sobject"),
        ({"sobject": None}, "sobject"),
        ({"username": "nobody@example.com"}, "username"),
        ({"username": "edsger@journeys.example"}, "username"),  # inactive
        ({"master_id": "00Q000000009999AAA"}, "master_id"),
        ({"merged_ids": ["00Q000000009999AAA"]}, "merged_ids"),
        ({"merged_ids": []}, "merged_ids"),
        ({"merged_ids": "00Q"}, "merged_ids"),
        ("too many", "merged_ids"),
        ("master merged", "merged_ids"),
        ("deleted master", "master_id"),
        ("contact id as a lead", "merged_ids"),
    ],
)
async def test_a_merge_salesforce_would_refuse_names_the_field_and_changes_nothing(
    sandbox, http, change, field
):
    engine = await login(http)
    master, a, b, c = [await lead(http, engine, n) for n in ("M", "A", "B", "C")]
    contact = await create(http, engine, "Contact", LastName="Person")
    gone = await lead(http, engine, "Gone")
    await http.delete(f"{DATA}/sobjects/Lead/{gone}", headers=engine)
    request: dict[str, Any] = {"sobject": "Lead", "master_id": master, "merged_ids": [a], "username": REP}
    if isinstance(change, dict):
        request.update(change)
    else:
        named: dict[str, dict[str, Any]] = {
            "too many": {"merged_ids": [a, b, c]},
            "master merged": {"merged_ids": [master]},
            "deleted master": {"master_id": gone},
            "contact id as a lead": {"merged_ids": [contact]},
        }
        request.update(named[str(change)])
    await user_id(http, engine, REP)  # the seeded users are there before
    before = copy.deepcopy(sandbox.state.sandbox.records)

    refused = await http.post("/_salesforce/merge", json=request)
    assert refused.status_code == 400
    assert refused.json()["field"] == field and refused.json()["error"].startswith(f"{field}: ")
    assert sandbox.state.sandbox.records == before


async def test_a_merge_body_not_json_is_a_400(http):
    refused = await http.post(
        "/_salesforce/merge", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert refused.status_code == 400 and refused.json()["field"] == "body"
    listed = await http.post("/_salesforce/merge", json=["Lead"])
    assert listed.status_code == 400 and listed.json()["field"] == "body"


# ---- field history --------------------------------------------------------------------------------


async def test_an_owner_change_is_two_owner_rows_ids_and_names(http):
    engine = await login(http)
    rep = await login(http, f"ui:{REP}")
    made = await lead(http, engine, "Owned")
    chloe = await user_id(http, engine, REP)
    integration = await user_id(http, engine, "integration@journeys.example")

    moved = await http.patch(
        f"{DATA}/sobjects/Lead/{made}", headers=rep, json={"OwnerId": chloe, "Status": "Working - Contacted"}
    )
    assert moved.status_code == 204, moved.text
    rows = (
        await soql(
            http,
            engine,
            "SELECT Id, LeadId, Field, DataType, OldValue, NewValue, CreatedById FROM LeadHistory "
            "ORDER BY Id ASC",
        )
    )["records"]
    shaped = [(r["Field"], r["DataType"], r["OldValue"], r["NewValue"]) for r in rows]
    assert shaped == [
        ("Owner", "EntityId", integration, chloe),
        ("Owner", "Text", "Integration User", "Chloe Martin"),
        ("Status", "DynamicEnum", "Open - Not Contacted", "Working - Contacted"),
    ]
    assert {r["LeadId"] for r in rows} == {made} and {r["CreatedById"] for r in rows} == {chloe}
    numbers = [int(r["Id"][3:15]) for r in rows]
    assert numbers == list(range(numbers[0], numbers[0] + 3))  # one sequence, one id per row
    owner_rows = await soql(http, engine, "SELECT Id FROM LeadHistory WHERE Field = 'Owner'")
    assert owner_rows["totalSize"] == 2
    assert (await soql(http, engine, "SELECT Id FROM LeadHistory WHERE Field = 'OwnerId'"))["totalSize"] == 0

    contact = await create(http, engine, "Contact", LastName="Person")
    await http.patch(f"{DATA}/sobjects/Contact/{contact}", headers=rep, json={"OwnerId": chloe})
    deal = await create(
        http, engine, "Opportunity", Name="Deal", StageName="Prospecting", CloseDate="2026-12-31", Amount=100
    )
    await http.patch(
        f"{DATA}/sobjects/Opportunity/{deal}", headers=rep, json={"Amount": 250, "StageName": "Closed Won"}
    )
    contact_rows = (
        await soql(http, engine, "SELECT Id, Field, DataType, NewValue FROM ContactHistory ORDER BY Id ASC")
    )["records"]
    assert [(r["Field"], r["DataType"], r["NewValue"]) for r in contact_rows] == [
        ("Owner", "EntityId", chloe),
        ("Owner", "Text", "Chloe Martin"),
    ]
    deal_rows = (
        await soql(
            http,
            engine,
            "SELECT Id, Field, DataType, OldValue, NewValue FROM OpportunityFieldHistory ORDER BY Id ASC",
        )
    )["records"]
    assert [(r["Field"], r["DataType"], r["OldValue"], r["NewValue"]) for r in deal_rows] == [
        ("Amount", "Currency", 100, 250),
        ("StageName", "DynamicEnum", "Prospecting", "Closed Won"),
    ]
    all_numbers = sorted(int(r["Id"][3:15]) for r in rows + contact_rows + deal_rows)
    assert all_numbers == list(range(all_numbers[0], all_numbers[0] + 7))


# ---- tasks and logged calls -----------------------------------------------------------------------


async def test_a_reps_logged_call_and_completed_task_are_found_closed(sandbox, http):
    engine = await login(http)
    rep = await login(http, f"ui:{REP}")
    chloe = await user_id(http, engine, REP)
    person = await lead(http, engine, "Called")
    to_do = await create(http, engine, "Task", Subject="Send the deck", WhoId=person, TaskSubtype="Task")
    still_open = await create(http, engine, "Task", Subject="Later", WhoId=person)
    fresh = sandbox.state.sandbox.records["salesforce_task"][to_do]
    assert fresh["IsClosed"] is False and fresh["CompletedDateTime"] is None
    assert (await soql(http, engine, CLOSED_TASKS))["totalSize"] == 0

    # The rep logs a call in the UI: a task done as it is made.
    call = await create(
        http,
        rep,
        "Task",
        Subject="Call",
        WhoId=person,
        TaskSubtype="Call",
        Status="Completed",
        CallType="Outbound",
        CallDurationInSeconds=240,
        CallDisposition="Interested: demo next week",
    )
    # ...then completes the task the engine made.
    done = await http.patch(f"{DATA}/sobjects/Task/{to_do}", headers=rep, json={"Status": "Completed"})
    assert done.status_code == 204, done.text

    found = (await soql(http, engine, CLOSED_TASKS))["records"]
    assert {r["Id"] for r in found} == {call, to_do} and still_open not in {r["Id"] for r in found}
    assert [r["SystemModstamp"] for r in found] == sorted(r["SystemModstamp"] for r in found)
    found.sort(key=lambda r: r["Id"] != call)
    logged, completed = found
    assert logged["TaskSubtype"] == "Call" and logged["IsClosed"] is True and logged["Status"] == "Completed"
    assert (logged["CallType"], logged["CallDurationInSeconds"], logged["CallDisposition"]) == (
        "Outbound",
        240,
        "Interested: demo next week",
    )
    assert completed["TaskSubtype"] == "Task" and completed["LastModifiedById"] == chloe
    assert logged["LastModifiedById"] == chloe
    for row in found:
        assert row["CompletedDateTime"] and row["CompletedDateTime"] == row["SystemModstamp"]

    # Reopened, it is open again and its completion gone.
    reopened = await http.patch(f"{DATA}/sobjects/Task/{to_do}", headers=rep, json={"Status": "In Progress"})
    assert reopened.status_code == 204
    stored = sandbox.state.sandbox.records["salesforce_task"][to_do]
    assert stored["IsClosed"] is False and stored["CompletedDateTime"] is None
    assert [r["Id"] for r in (await soql(http, engine, CLOSED_TASKS))["records"]] == [call]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"IsClosed": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", "IsClosed"),
        (
            {"CompletedDateTime": "2026-12-01T10:00:00Z"},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "CompletedDateTime",
        ),
        ({"TaskSubtype": "Email"}, "INVALID_FIELD_FOR_INSERT_UPDATE", "TaskSubtype"),  # set on create only
        ({"CallType": "Sideways"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "CallType"),
        ({"CallDurationInSeconds": "long"}, "JSON_PARSER_ERROR", None),
    ],
)
async def test_a_tasks_computed_and_restricted_fields_are_checked(http, body, code, field):
    engine = await login(http)
    task = await create(http, engine, "Task", Subject="x", TaskSubtype="Call")
    refused = await http.patch(f"{DATA}/sobjects/Task/{task}", headers=engine, json=body)
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == code
    assert refused.json()[0].get("fields") == ([field] if field else None)
    bad_subtype = await http.post(f"{DATA}/sobjects/Task", headers=engine, json={"TaskSubtype": "Fax"})
    assert bad_subtype.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
