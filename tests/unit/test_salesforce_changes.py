"""Salesforce's changes read back: the sandbox's Salesforce keeps who changed each record and when
(`LastModifiedById`, `SystemModstamp`) and answers SOQL's datetime comparisons; the client reads
what changed since a time and knows its own user; the mapper keeps what a rep did (working the
lead, moving the opportunity) and leaves the engine's own writes out; the poll counts each once."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.crm_changes import CrmChangeActivities
from domain.crm_changes import salesforce_changes, stage_key
from domain.engagement import PollCursor
from domain.events import EventType, IncomingEvent
from domain.webhooks import PayloadError
from platforms.ports import Deal, Note, Person
from platforms.salesforce import SalesforceClient
from sandbox.app import create_app
from sandbox.salesforce import parse_soql
from tests.helpers.ingest import RecordingIngest
from tests.helpers.platforms import in_process

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ENGINE_USER = "005000000000001AAA"
REP_USER = "005000000000002AAA"
_ids = itertools.count()


def new_id() -> str:
    return f"e{next(_ids)}"


def row(
    field: str,
    value: Any,
    *,
    by: str = REP_USER,
    history: str = "LeadHistory",
    parent: str = "LeadId",
    record_id: str = "00Q000000000001AAA",
    row_id: str = "017000000000001AAA",
) -> dict[str, Any]:
    return {
        "attributes": {"type": history},
        "Id": row_id,
        parent: record_id,
        "Field": field,
        "OldValue": None,
        "NewValue": value,
        "CreatedById": by,
        "CreatedDate": "2026-12-04T12:00:00.000+0000",
    }


def mapped(
    *rows: dict[str, Any], history: str = "LeadHistory", parent: str = "LeadId"
) -> list[IncomingEvent]:
    events, _ = salesforce_changes(
        history, parent, list(rows), own_user_id=ENGINE_USER, received_at=T0, new_id=new_id
    )
    return events


def deal_row(field: str, value: Any, **kwargs: Any) -> dict[str, Any]:
    return row(
        field,
        value,
        history="OpportunityFieldHistory",
        parent="OpportunityId",
        record_id="006000000000001AAA",
        **kwargs,
    )


def test_a_rep_working_the_lead_is_an_acceptance_keyed_by_the_history_row():
    [accepted] = mapped(row("Status", "Working - Contacted"))
    assert accepted.lead_event.type is EventType.SALES_ACCEPTED and accepted.source == "poll:salesforce"
    assert accepted.message_id == "LeadHistory:017000000000001AAA"
    assert accepted.external_ids == {"salesforce_contact": "00Q000000000001AAA"}
    assert accepted.lead_event.occurred_at == T0
    assert mapped(row("Status", "Open - Not Contacted")) == [] and mapped(row("Owner", "Chloe Martin")) == []


def test_a_rep_closing_the_lead_unconverted_disqualifies_it():
    [ruled_out] = mapped(row("Status", "Closed - Not Converted"))
    assert ruled_out.lead_event.type is EventType.SALES_DISQUALIFIED


def test_an_opportunitys_stage_and_amount_are_the_deal_changes():
    history = {"history": "OpportunityFieldHistory", "parent": "OpportunityId"}
    [stage] = mapped(deal_row("StageName", "Closed Won"), **history)
    [amount] = mapped(deal_row("Amount", 48000, row_id="017000000000002AAA"), **history)
    assert (
        stage.lead_event.type is EventType.DEAL_STAGE_CHANGED
        and stage.lead_event.properties["stage"] == "closed_won"
    )
    assert amount.lead_event.properties["amount"] == 48000.0
    assert stage.external_ids == {"salesforce_deal": "006000000000001AAA"}
    assert stage_key("Id. Decision Makers") == "id._decision_makers"


def test_the_engines_own_writes_are_read_but_not_applied():
    events, read = salesforce_changes(
        "LeadHistory", "LeadId", [row("Status", "Working - Contacted", by=ENGINE_USER)],
        own_user_id=ENGINE_USER, received_at=T0, new_id=new_id,
    )  # fmt: skip
    assert events == [] and read == [("017000000000001AAA", T0)]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"Id": None}, "records.0.Id"),
        ({"LeadId": None}, "records.0.LeadId"),
        ({"CreatedDate": "noon"}, "records[].CreatedDate"),
    ],
)
def test_a_row_not_in_salesforces_shape_names_the_field(bad, field):
    with pytest.raises(PayloadError) as raised:
        mapped({**row("Status", "Working - Contacted"), **bad})
    assert raised.value.field == field


def test_the_sandboxs_soql_compares_datetimes():
    query = parse_soql(
        "SELECT Id FROM Lead WHERE SystemModstamp >= 2026-12-04T12:00:00Z ORDER BY SystemModstamp ASC LIMIT 5"
    )
    assert query.where == [("SystemModstamp", ">=", datetime(2026, 12, 4, 12, 0, tzinfo=UTC))]


# -- against the sandbox's Salesforce, in process -------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_app(seed=41)) as client:
        yield client


def engine_client(http: httpx.AsyncClient) -> SalesforceClient:
    return SalesforceClient(
        http, base_url="http://sandbox/salesforce", client_id="3MVG9.engine", client_secret="s"
    )


async def as_rep(http: httpx.AsyncClient, username: str = "ada@journeys.example") -> dict[str, str]:
    granted = await http.post(
        "/salesforce/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": f"ui:{username}", "client_secret": "x"},
    )
    assert granted.status_code == 200, granted.text
    return {"Authorization": f"Bearer {granted.json()['access_token']}"}


DATA = "/salesforce/services/data/v62.0"


async def test_the_client_reads_each_change_and_who_made_it_and_knows_its_own_user(http):
    sf = engine_client(http)
    start = datetime.now(UTC) - timedelta(seconds=2)
    made = await sf.upsert_person(
        Person(email="ada@acme.com", lead_id="lead-1", company="Acme"), idempotency_key="k1"
    )
    own = await sf.own_user_id()
    rep = await as_rep(http)
    moved = await http.patch(
        f"{DATA}/sobjects/Lead/{made.id}", headers=rep, json={"Status": "Working - Contacted"}
    )
    assert moved.status_code == 204, moved.text
    # The engine writes the lead again at once (its score): the rep's change stays in the history.
    await sf.upsert_person(
        Person(email="ada@acme.com", lead_id="lead-1", lead_score=50), idempotency_key="k2"
    )
    changes = await sf.history_since("LeadHistory", "LeadId", start)
    [status] = [c for c in changes if c["Field"] == "Status"]
    assert status["NewValue"] == "Working - Contacted" and status["CreatedById"] != own == ENGINE_USER
    assert await sf.history_since("LeadHistory", "LeadId", datetime.now(UTC) + timedelta(minutes=5)) == []
    [accepted] = mapped(*changes)
    assert accepted.lead_event.type is EventType.SALES_ACCEPTED


async def test_the_poll_records_a_reps_changes_once_and_not_the_engines(http):
    sf = engine_client(http)
    start = datetime.now(UTC) - timedelta(seconds=2)
    lead = await sf.upsert_person(
        Person(email="ada@acme.com", lead_id="lead-1", company="Acme"), idempotency_key="k1"
    )
    deal = await sf.upsert_deal(
        Deal(key="handoff-lead-1-1", name="Acme", stage="qualifiedtobuy", amount=1000.0), idempotency_key="k2"
    )
    rep = await as_rep(http)
    await http.patch(f"{DATA}/sobjects/Lead/{lead.id}", headers=rep, json={"Status": "Working - Contacted"})
    await http.patch(f"{DATA}/sobjects/Opportunity/{deal.id}", headers=rep, json={"StageName": "Closed Won"})
    # The engine's own later write to the lead (its score) hides nothing: the history has the rep's.
    await sf.upsert_person(
        Person(email="ada@acme.com", lead_id="lead-1", lead_score=70), idempotency_key="k3"
    )
    ingest = RecordingIngest()
    polls = CrmChangeActivities(ingest, salesforce=sf)  # type: ignore[arg-type]
    env = ActivityEnvironment()
    first = await env.run(polls.poll_salesforce, PollCursor(since=start))
    kinds = sorted((e.lead_event.type.value, e.lead_event.name or "") for e in ingest.recorded)
    # The amount the engine set is not a change a rep made.
    assert kinds == [("deal_stage_changed", "closed_won"), ("sales_accepted", "Status=Working - Contacted")]
    assert first.recorded == 2 and first.cursor.since > start
    again = await env.run(polls.poll_salesforce, first.cursor)
    assert again.recorded == 0 and len(ingest.recorded) == 2, "the overlap's re-read is known"


async def test_a_page_filled_holds_the_cursor_at_its_last_record(http):
    sf = engine_client(http)
    start = datetime.now(UTC) - timedelta(seconds=2)
    rep = await as_rep(http)
    for n in range(3):
        made = await sf.upsert_person(
            Person(email=f"p{n}@acme.com", lead_id=f"lead-{n}", company="Acme"), idempotency_key=f"k{n}"
        )
        await http.patch(
            f"{DATA}/sobjects/Lead/{made.id}", headers=rep, json={"Status": "Working - Contacted"}
        )
    polls = CrmChangeActivities(RecordingIngest(), salesforce=sf, page=2)  # type: ignore[arg-type]
    result = await ActivityEnvironment().run(polls.poll_salesforce, PollCursor(since=start))
    assert result.more is True


async def test_the_poll_reads_owners_calls_merges_and_deletions_once_and_not_the_engines_notes(http):
    sf = engine_client(http)
    start = datetime.now(UTC) - timedelta(seconds=2)
    people = [
        await sf.upsert_person(
            Person(email=f"p{n}@acme.com", lead_id=f"lead-{n}", company="Acme"), idempotency_key=f"k{n}"
        )
        for n in range(3)
    ]
    # The engine's own note is a Task created closed: its own, not a rep's work.
    await sf.add_note(Note(person_id=people[0].id, body="MQL", occurred_at=start), idempotency_key="n1")
    chloe = await as_rep(http, "chloe.martin@example.com")
    [user] = (
        await http.get(
            f"{DATA}/query",
            params={"q": "SELECT Id FROM User WHERE Username = 'chloe.martin@example.com'"},
            headers=chloe,
        )
    ).json()["records"]
    await http.patch(f"{DATA}/sobjects/Lead/{people[0].id}", headers=chloe, json={"OwnerId": user["Id"]})
    logged = await http.post(
        f"{DATA}/sobjects/Task",
        headers=chloe,
        json={"WhoId": people[0].id, "Subject": "Call", "TaskSubtype": "Call", "Status": "Completed"},
    )
    assert logged.status_code == 201, logged.text
    merged = await http.post(
        "/_salesforce/merge",
        json={
            "sobject": "Lead",
            "master_id": people[0].id,
            "merged_ids": [people[1].id],
            "username": "chloe.martin@example.com",
        },
    )
    assert merged.status_code == 200, merged.text
    assert (await http.delete(f"{DATA}/sobjects/Lead/{people[2].id}", headers=chloe)).status_code == 204
    ingest = RecordingIngest()
    polls = CrmChangeActivities(ingest, salesforce=sf)  # type: ignore[arg-type]
    env = ActivityEnvironment()
    first = await env.run(polls.poll_salesforce, PollCursor(since=start))
    kinds = sorted(e.lead_event.type.value for e in ingest.recorded)
    assert kinds == ["crm_owner_changed", "crm_record_deleted", "crm_record_merged", "sales_activity"], kinds
    by_type = {e.lead_event.type: e for e in ingest.recorded}
    assert by_type[EventType.CRM_OWNER_CHANGED].lead_event.properties["crm_owner_id"] == user["Id"]
    assert by_type[EventType.CRM_RECORD_MERGED].retired_ids == [("salesforce_contact", people[1].id)]
    assert by_type[EventType.CRM_RECORD_MERGED].external_ids == {"salesforce_contact": people[0].id}
    assert by_type[EventType.CRM_RECORD_DELETED].retired_ids == [("salesforce_contact", people[2].id)]
    assert by_type[EventType.SALES_ACTIVITY].lead_event.name == "call logged"
    again = await env.run(polls.poll_salesforce, first.cursor)
    assert again.recorded == 0 and len(ingest.recorded) == 4, "the overlap's re-read is known"
