"""The durability contract under injected faults: 202 means recorded; an outage answers 503 and
records nothing; an event recorded but not yet routed is routed later by the outbox sweeper."""

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from devstack.stack import DevStack
from domain.events import EventType, IncomingEvent, LeadEvent
from domain.ids import email_hash, lead_id_for_email
from store.db import create_engine, session_factory
from store.ingest import OUTBOX_CHANNEL, IngestStore, RouterDoorbell
from tests.e2e.test_form_slice import demo_form, lead_state, new_email, synced, wait_for_calls

pytestmark = pytest.mark.e2e


def identify_event(email: str) -> IncomingEvent:
    now = datetime.now(UTC)
    event_id = str(uuid.uuid4())
    return IncomingEvent(
        source="test",
        message_id=event_id,
        lead_event=LeadEvent(
            event_id=event_id,
            type=EventType.IDENTIFY,
            source="test",
            occurred_at=now,
            email_hash=email_hash(email),
        ),
        received_at=now,
        payload={},
        email=email,
    )


async def test_an_event_recorded_but_not_routed_is_routed_by_the_sweeper(stack: DevStack, api, sandbox):
    """As if the notification were lost (a router restarting): the row waits in the outbox and
    the router's once-a-second sweep delivers it."""
    email = new_email()
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        await IngestStore(session_factory(engine), RouterDoorbell(stack.database_url)).record(
            [identify_event(email)], notify=False
        )
    finally:
        await engine.dispose()
    lead = await lead_state(api, lead_id_for_email(email), lambda s: s["journey"]["stage"] == "lead")
    assert lead["journey"]["email_hash"] == email_hash(email)


async def test_the_router_is_woken_after_the_commit_not_inside_it(stack: DevStack):
    """No trigger NOTIFYs inside the ingest transaction (that holds PostgreSQL's notification lock
    through the commit's flush, one commit after another); the store rings once it has committed."""
    listener = await asyncpg.connect(
        host="127.0.0.1", port=stack.settings.pg_port, user="postgres", database="journeys"
    )
    engine = create_engine(stack.database_url, pool_size=2)
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        triggers = await listener.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'outbox'::regclass AND NOT tgisinternal"
        )
        assert triggers == 0, "a trigger on outbox would NOTIFY inside the committing transaction"
        await listener.add_listener(OUTBOX_CHANNEL, lambda *_args: heard.put_nowait("rang"))
        store = IngestStore(session_factory(engine), RouterDoorbell(stack.database_url))
        await store.record([identify_event(new_email())], notify=False)
        await store.doorbell.close()
        await asyncio.sleep(0.3)
        assert heard.empty(), "nothing rang for a record told not to"
        await store.record([identify_event(new_email())])
        assert await asyncio.wait_for(heard.get(), timeout=10) == "rang"
        await store.doorbell.close()
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
