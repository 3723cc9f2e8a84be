"""The durability contract under injected faults: 202 means recorded; an outage answers 503 and
records nothing; an event recorded but not yet routed is routed later by the outbox sweeper."""

import asyncio
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from devstack.stack import DevStack
from domain.events import EventType, IncomingEvent, LeadEvent
from domain.ids import email_hash, lead_id_for_email, lead_workflow_id
from store.db import asyncpg_dsn, create_engine, session_factory
from store.ingest import OUTBOX_CHANNEL, IngestStore
from tests.helpers.e2e import demo_form, lead_state, new_email, synced, wait_for_calls

pytestmark = pytest.mark.e2e


def incoming(
    kind: EventType, *, email: str | None = None, user: str | None = None, message_id: str | None = None
) -> IncomingEvent:
    """An event as the API hands it to the store: an identify carries the email, a track a user."""
    now = datetime.now(UTC)
    event_id = str(uuid.uuid4())
    name = "Feature Used" if kind == EventType.TRACK else None
    return IncomingEvent(
        source="segment",
        message_id=message_id or event_id,
        lead_event=LeadEvent(
            event_id=event_id,
            type=kind,
            name=name,
            source="segment",
            occurred_at=now,
            email_hash=email_hash(email) if email else None,
        ),
        received_at=now,
        payload={"event": name} if name else {},
        email=email,
        user_id=user,
    )


def identify_event(email: str) -> IncomingEvent:
    return incoming(EventType.IDENTIFY, email=email)


async def test_an_event_recorded_but_not_routed_is_routed_by_the_sweeper(stack: DevStack, api, sandbox):
    """As if the notification were lost (a router restarting): the row waits in the outbox and
    the router's once-a-second sweep delivers it."""
    email = new_email()
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        await IngestStore(session_factory(engine), stack.database_url).record(
            [identify_event(email)], notify=False
        )
    finally:
        await engine.dispose()
    lead = await lead_state(api, lead_id_for_email(email), lambda s: s["journey"]["stage"] == "lead")
    assert lead["journey"]["email_hash"] == email_hash(email)


async def test_the_router_is_woken_after_the_commit_not_inside_it(stack: DevStack):
    """No trigger NOTIFYs inside the ingest transaction (that holds PostgreSQL's notification lock
    through the commit's flush, one commit after another); the store rings once it has committed."""
    listener = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    engine = create_engine(stack.database_url, pool_size=2)
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        triggers = await listener.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'outbox'::regclass AND NOT tgisinternal"
        )
        assert triggers == 0, "a trigger on outbox would NOTIFY inside the committing transaction"
        await listener.add_listener(OUTBOX_CHANNEL, lambda *_args: heard.put_nowait("rang"))
        store = IngestStore(session_factory(engine), stack.database_url)
        await store.record([identify_event(new_email())], notify=False)
        await store.doorbell.close()
        await asyncio.sleep(0.3)
        assert heard.empty(), "nothing rang for a record told not to"
        await store.record([identify_event(new_email())])
        assert await asyncio.wait_for(heard.get(), timeout=10) == "rang"
        await store.close()
    finally:
        await listener.close()
        await engine.dispose()


async def test_postgres_down_answers_503_and_records_nothing(stack: DevStack, api, sandbox):
    assert stack.postgres is not None
    await stack.postgres.stop()
    try:
        email = new_email()
        response = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
        assert response.status_code == 503, response.text
        assert "nothing was recorded" in response.json()["detail"]
        assert response.headers["Retry-After"]
        segment = await api.post("/v1/track", json={"userId": "u-pg-down", "event": "Signed Up"})
        assert segment.status_code == 503
        health = await api.get("/healthz")
        assert health.status_code == 503 and health.json()["failing"] == ["postgres"]
    finally:
        await stack.postgres.start(log_dir=stack.log_dir)
    retry = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
    assert retry.status_code == 202
    await wait_for_calls(sandbox, email, synced)


async def test_temporal_down_answers_503_and_records_nothing(stack: DevStack, api, sandbox):
    assert stack.temporal is not None
    await stack.temporal.stop()
    email = new_email()
    try:
        for _ in range(50):
            health = await api.get("/healthz")
            if health.status_code == 503:
                break
            await asyncio.sleep(0.1)
        assert health.json()["failing"] == ["temporal"]
        response = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
        assert response.status_code == 503, response.text
        assert "Temporal is unavailable" in response.json()["detail"]
        assert (await api.get(f"/v1/leads/{lead_id_for_email(email)}")).status_code == 404
    finally:
        await stack.temporal.start(log_dir=stack.log_dir)
        await stack.restart_worker(kill=True)
    for _ in range(50):
        retry = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
        if retry.status_code == 202:
            break
        await asyncio.sleep(0.2)
    assert retry.status_code == 202
    await wait_for_calls(sandbox, email, synced, timeout=60)


async def test_concurrent_retries_of_one_message_record_it_once(api: httpx.AsyncClient):
    user = f"u-{uuid.uuid4().hex[:8]}"
    message = {"userId": user, "event": "Trial Started", "messageId": f"m-{uuid.uuid4()}"}
    answers = await asyncio.gather(*(api.post("/v1/track", json=message) for _ in range(8)))
    assert {a.status_code for a in answers} == {200}
    from domain.ids import lead_id_for_user

    events = (await api.get(f"/v1/leads/{lead_id_for_user(user)}/events")).json()["events"]
    assert [e["name"] for e in events] == ["Trial Started"]


async def test_known_visitors_events_take_one_statement_and_still_count_once(stack: DevStack):
    """A known lead's tracks skip the transaction block (one statement records them and queues
    their signals): a message repeated in the request or sent again later is recorded once, and
    the lead's outbox rows carry every new event, in order, 100 to a signal."""
    engine = create_engine(stack.database_url, pool_size=2)
    store = IngestStore(session_factory(engine), stack.database_url)
    user = f"u-{uuid.uuid4().hex[:8]}"
    try:
        identify = incoming(EventType.IDENTIFY, email=new_email(), user=user)
        [identified] = await store.record([identify], notify=False)
        assert identified.lead_id is not None
        batch = [incoming(EventType.TRACK, user=user, message_id=f"{user}-{n}") for n in range(250)]
        batch.append(
            incoming(EventType.TRACK, user=user, message_id=f"{user}-0")
        )  # the same message twice in one request
        results = await store.record(batch, notify=False)
        assert [r.duplicate for r in results] == [False] * 250 + [True]
        assert results[250].event_id == results[0].event_id
        assert {r.lead_id for r in results} == {identified.lead_id}

        again = await store.record(
            [incoming(EventType.TRACK, user=user, message_id=f"{user}-{n}") for n in range(10)], notify=False
        )
        assert all(r.duplicate for r in again)
        assert store.known_visitors.requests_recorded == 2, "both track requests took the one-statement path"
        assert [r.event_id for r in again] == [r.event_id for r in results[:10]]

        database = await asyncpg.connect(asyncpg_dsn(stack.database_url))
        try:
            recorded = await database.fetchval("SELECT count(*) FROM events WHERE user_id = $1", user)
            signals = await database.fetch(
                "SELECT payload FROM outbox WHERE workflow_id = $1 AND payload->>'signal' = 'events' "
                "AND jsonb_array_length(payload->'argument'->'events') > 1 ORDER BY id",
                lead_workflow_id(identified.lead_id),
            )
        finally:
            await database.close()
        assert recorded == 251, "the identify and 250 tracks, each once"
        carried = [
            event["event_id"] for row in signals for event in json.loads(row["payload"])["argument"]["events"]
        ]
        assert [len(json.loads(row["payload"])["argument"]["events"]) for row in signals] == [100, 100, 50]
        assert carried == [r.event_id for r in results[:250]]
    finally:
        await store.close()
        await engine.dispose()
