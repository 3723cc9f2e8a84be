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
from platforms.ports import Deal, Person
from platforms.salesforce import SalesforceClient
from sandbox.app import create_app
from sandbox.salesforce import parse_soql
from store.ingest import RecordResult
from tests.helpers.platforms import in_process

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ENGINE_USER = "005000000000001AAA"
REP_USER = "005000000000002AAA"
_ids = itertools.count()


def new_id() -> str:
    return f"e{next(_ids)}"


def record(sobject: str = "Lead", by: str = REP_USER, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": sobject}, "Id": "00Q000000000001AAA", "LastModifiedById": by,
            "SystemModstamp": "2026-12-04T12:00:00.000+0000", **fields}  # fmt: skip


def mapped(sobject: str, *records: dict[str, Any]) -> list[IncomingEvent]:
    events, _ = salesforce_changes(
        sobject, list(records), own_user_id=ENGINE_USER, person_object="Lead", received_at=T0, new_id=new_id
    )
    return events


def test_a_rep_working_the_lead_is_an_acceptance_keyed_by_its_value():
    [accepted] = mapped("Lead", record(Status="Working - Contacted"))
    assert accepted.lead_event.type is EventType.SALES_ACCEPTED and accepted.source == "poll:salesforce"
    assert accepted.message_id == "Lead:00Q000000000001AAA:Status:Working - Contacted"
    assert accepted.external_ids == {"salesforce_contact": "00Q000000000001AAA"}
    assert accepted.lead_event.occurred_at == T0
    assert mapped("Lead", record(Status="Open - Not Contacted")) == []


def test_an_opportunitys_stage_and_amount_are_the_deal_changes():
    stage, amount = mapped(
        "Opportunity", record("Opportunity", Id="006000000000001AAA", StageName="Closed Won", Amount=48000)
    )
    assert (
        stage.lead_event.type is EventType.DEAL_STAGE_CHANGED
        and stage.lead_event.properties["stage"] == "closed_won"
    )
    assert amount.lead_event.properties["amount"] == 48000.0
    assert stage.external_ids == {"salesforce_deal": "006000000000001AAA"}
    assert stage_key("Id. Decision Makers") == "id._decision_makers"


def test_the_engines_own_writes_are_read_but_not_applied():
    events, read = salesforce_changes(
        "Lead", [record(by=ENGINE_USER, Status="Working - Contacted")],
        own_user_id=ENGINE_USER, person_object="Lead", received_at=T0, new_id=new_id,
    )  # fmt: skip
    [(key, at)] = read
    assert events == [] and at == T0 and key.startswith("00Q000000000001AAA@2026-12-04T12:00:00.000+0000@")


def test_two_changes_within_one_second_are_two_reads():
    """SystemModstamp has a second's resolution: the engine's write and a rep's change in the same
    second share it, and the rep's must not pass for the read before."""
    engine = record("Opportunity", by=ENGINE_USER, StageName="Qualification")
    rep = record("Opportunity", by=REP_USER, StageName="Closed Won")
    (_, [(first, _)]), (events, [(second, _)]) = (
        salesforce_changes(
            "Opportunity", [r], own_user_id=ENGINE_USER, person_object="Lead", received_at=T0, new_id=new_id
        )
        for r in (engine, rep)
    )
    assert first != second and [e.lead_event.properties["stage"] for e in events] == ["closed_won"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"Id": None}, "records.0.Id"), ({"SystemModstamp": "noon"}, "records[].SystemModstamp")],
)
def test_a_record_not_in_salesforces_shape_names_the_field(bad, field):
    with pytest.raises(PayloadError) as raised:
        mapped("Lead", record(**bad))
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


async def test_the_client_reads_what_changed_since_and_knows_its_own_user(http):
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
    [changed] = await sf.changed_since("Lead", ("Status",), start)
    assert changed["Status"] == "Working - Contacted" and changed["LastModifiedById"] != own
    assert own == ENGINE_USER
    assert await sf.changed_since("Lead", ("Status",), datetime.now(UTC) + timedelta(minutes=5)) == []
    [accepted] = mapped("Lead", changed)
    assert accepted.lead_event.type is EventType.SALES_ACCEPTED


class RecordingIngest:
    def __init__(self) -> None:
        self.recorded: list[IncomingEvent] = []

    async def record(self, events: list[IncomingEvent]) -> list[RecordResult]:
        seen = {e.message_id for e in self.recorded}
        self.recorded += events
        return [
            RecordResult(event_id=e.lead_event.event_id, lead_id=None, duplicate=e.message_id in seen)
            for e in events
        ]


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
    ingest = RecordingIngest()
    polls = CrmChangeActivities(ingest, salesforce=sf)  # type: ignore[arg-type]
    env = ActivityEnvironment()
    first = await env.run(polls.poll_salesforce, PollCursor(since=start))
    kinds = sorted((e.lead_event.type.value, e.lead_event.name or "") for e in ingest.recorded)
    assert kinds == [
        ("deal_stage_changed", "closed_won"),
        ("sales_accepted", "Status=Working - Contacted"),
        ("track", "Deal Amount Changed"),
    ]
    assert first.recorded == 3 and first.cursor.since > start
    again = await env.run(polls.poll_salesforce, first.cursor)
    assert again.recorded == 0 and len(ingest.recorded) == 3, "the overlap's re-read is known"


async def test_a_page_filled_holds_the_cursor_at_its_last_record(http):
    sf = engine_client(http)
    start = datetime.now(UTC) - timedelta(seconds=2)
    for n in range(3):
        await sf.upsert_person(
            Person(email=f"p{n}@acme.com", lead_id=f"lead-{n}", company="Acme"), idempotency_key=f"k{n}"
        )
    polls = CrmChangeActivities(RecordingIngest(), salesforce=sf, page=2)  # type: ignore[arg-type]
    result = await ActivityEnvironment().run(polls.poll_salesforce, PollCursor(since=start))
    assert result.more is True
