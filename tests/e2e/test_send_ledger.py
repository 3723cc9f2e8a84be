"""The send ledger on PostgreSQL: the cap across journeys, suppression from recorded events,
idempotent reservations, and journeys asking at the same moment."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities
from devstack.stack import DevStack
from domain.connectors import SendEmailInput, SendReservationInput, WriteResult
from domain.errors import SEND_REFUSED
from domain.ids import lead_id_for_email
from platforms.ports import EmailMessage
from store.db import create_engine, session_factory
from store.repository import LeadStore
from store.sends import SendLedger
from tests.helpers.e2e import demo_form, get_until, lead_state, new_email

pytestmark = pytest.mark.e2e


def ask(lead_id: str, key: str, journey: str = "welcome_nurture", **extra) -> SendReservationInput:
    return SendReservationInput(lead_id=lead_id, idempotency_key=key, journey=journey, max_sends=3, **extra)


async def test_the_cap_counts_every_journey_and_a_retry_is_the_same_reservation(
    stack: DevStack, api: httpx.AsyncClient
):
    email = new_email()
    assert (await api.post("/v1/forms/demo/submissions", json=demo_form(email))).status_code == 202
    lead_id = lead_id_for_email(email)
    await lead_state(api, lead_id, lambda s: s["journey"] is not None)
    engine = create_engine(stack.database_url, pool_size=8)
    try:
        ledger = SendLedger(session_factory(engine))
        now = datetime.now(UTC)
        assert (await ledger.reserve(ask(lead_id, "k1"), now=now)).status == "granted"
        assert (await ledger.reserve(ask(lead_id, "k1"), now=now)).reason == "already reserved"
        assert (await ledger.reserve(ask(lead_id, "k2", "content_followup"), now=now)).status == "granted"
        assert (
            await ledger.reserve(ask(lead_id, "k3", "form_abandonment_recovery"), now=now)
        ).status == "granted"
        over = await ledger.reserve(ask(lead_id, "k4"), now=now + timedelta(hours=1))
        assert over.status == "deferred" and over.retry_at == now + timedelta(days=7)
        # Transactional mail (marketing=False) is not capped.
        assert (await ledger.reserve(ask(lead_id, "k5", marketing=False), now=now)).status == "granted"
        # A week later the first send has left the window.
        later = await ledger.reserve(ask(lead_id, "k4"), now=now + timedelta(days=7, seconds=1))
        assert later.status == "granted"
        assert await ledger.count(lead_id) == 5

        # Eight journeys asking at once for a fresh lead: exactly three get a place.
        other = new_email()
        assert (await api.post("/v1/forms/demo/submissions", json=demo_form(other))).status_code == 202
        other_id = lead_id_for_email(other)
        await lead_state(api, other_id, lambda s: s["journey"] is not None)
        answers = await asyncio.gather(*(ledger.reserve(ask(other_id, f"c{n}"), now=now) for n in range(8)))
        assert sorted(a.status for a in answers) == ["deferred"] * 5 + ["granted"] * 3
    finally:
        await engine.dispose()


async def test_an_unsubscribe_recorded_by_ingestion_suppresses_every_later_send(
    stack: DevStack, api: httpx.AsyncClient
):
    email = new_email()
    user = f"u-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/v1/forms/demo/submissions", json=demo_form(email))).status_code == 202
    assert (
        await api.post("/v1/identify", json={"userId": user, "traits": {"email": email}})
    ).status_code == 200
    assert (await api.post("/v1/track", json={"userId": user, "event": "Unsubscribed"})).status_code == 200
    lead_id = lead_id_for_email(email)
    engine = create_engine(stack.database_url, pool_size=2)
    try:
        ledger = SendLedger(session_factory(engine))
        answer = await ledger.reserve(ask(lead_id, "after-unsubscribe"))
        assert answer.status == "suppressed" and (answer.reason or "").startswith("unsubscribed at ")
        gone = await ledger.reserve(ask(str(uuid.uuid4()), "no-lead"))
        assert gone.status == "suppressed" and "not found" in (gone.reason or "")
    finally:
        await engine.dispose()


class RecordingEmail:
    """An email platform that records what it was asked to send (the gate must stop it first)."""

    provider = "klaviyo"

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> WriteResult:
        self.sent.append(message)
        return WriteResult(provider="klaviyo", object_type="event", id=idempotency_key)


async def test_every_send_passes_the_gate_by_purpose_and_a_refusal_is_on_the_lead(
    stack: DevStack, api: httpx.AsyncClient
):
    unconsented = new_email()
    answer = await api.post("/v1/forms/demo/submissions", json=demo_form(unconsented, consent=False))
    assert answer.status_code == 202
    lead_id = lead_id_for_email(unconsented)
    body = await lead_state(api, lead_id, lambda s: s["journey"] is not None)
    assert body["profile"]["consent"] is False and body["profile"]["consent_at"] is None
    consented = await lead_state(
        api,
        (await api.post("/v1/forms/demo/submissions", json=demo_form(new_email()))).json()["lead_id"],
        lambda s: s["journey"] is not None,
    )
    assert consented["profile"]["consent_source"] == "form:demo:Request a demo"
    assert consented["profile"]["consent_at"] is not None
    engine = create_engine(stack.database_url, pool_size=2)
    try:
        store = LeadStore(session_factory(engine))
        platform = RecordingEmail()
        activities = EmailActivities(platform, store, default_welcome_list="WELCOME")  # type: ignore[arg-type]
        env = ActivityEnvironment()

        def send(key: str, purpose: str | None, journey: str = "win_back") -> SendEmailInput:
            return SendEmailInput(
                lead_id=lead_id, idempotency_key=key, template_id="t", purpose=purpose, journey=journey
            )

        # A marketing email (also one that names no purpose: the strictest) is refused, the
        # platform never asked; a service email to the same person goes.
        for key, purpose in (("m1", "marketing"), ("m2", None)):
            with pytest.raises(ApplicationError) as refused:
                await env.run(activities.send, send(key, purpose))
            assert refused.value.type == SEND_REFUSED and "no marketing consent" in str(refused.value)
            assert refused.value.non_retryable
        await env.run(activities.send, send("s1", "service", "onboarding"))
        assert [m.template_id for m in platform.sent] == ["t"]
        # One-to-one sales mail needs no marketing consent either.
        await env.run(activities.send, send("o1", "sales", "sales_outreach"))
        assert len(platform.sent) == 2
        body = await get_until(api, f"/v1/leads/{lead_id}", lambda b: len(b["sends_refused"]) == 2)
        assert {r["purpose"] for r in body["sends_refused"]} == {"marketing"}
        assert {r["reason"] for r in body["sends_refused"]} == {"no marketing consent"}
        assert {r["journey"] for r in body["sends_refused"]} == {"win_back"}
        # A retry of a refused send is refused again, and recorded once.
        with pytest.raises(ApplicationError):
            await env.run(activities.send, send("m1", "marketing"))
        body = (await api.get(f"/v1/leads/{lead_id}")).json()
        assert len(body["sends_refused"]) == 2
    finally:
        await engine.dispose()
