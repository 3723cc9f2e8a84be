"""Set-ups and waits for the end-to-end tests and the benchmarks: a demo form, a lead made by it
(submitted and waited for), the behaviour that makes it an MQL, and what the sandbox recorded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from segment.analytics import Client as SegmentClient

from domain.connectors import SendReservationInput
from domain.ids import lead_id_for_email
from store.db import create_engine, session_factory
from store.sends import SendLedger
from tests.helpers.waiting import eventually

Body = dict[str, Any]


def demo_form(email: str, **overrides: Any) -> dict[str, Any]:
    """The seed's demo form, filled in as a VP at a company that fits the ICP."""
    return {
        "email": email,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Example Corp",
        "job_title": "VP Engineering",
        "phone": "+44 20 7946 0958",
        "lead_source": "webinar",
        "utm_source": "linkedin",
        "utm_medium": "paid_social",
        "utm_campaign": "q4-launch",
        "consent": True,
        **overrides,
    }


def new_email() -> str:
    return f"ada.{uuid.uuid4().hex[:10]}@example-corp.com"


def behaviour(user: str, now: datetime) -> list[dict[str, Any]]:
    """A Segment batch that crosses the seed's MQL line: 5 sessions, 3 downloads, 7 email clicks."""

    def at(delta: timedelta) -> str:
        return (now - delta).isoformat()

    pages = [
        {
            "type": "page",
            "userId": user,
            "name": "Blog",
            "properties": {"path": "/blog"},
            "timestamp": at(timedelta(hours=h)),
        }
        for h in range(1, 6)
    ]
    downloads = [
        {
            "type": "track",
            "userId": user,
            "event": "Content Downloaded",
            "properties": {"content_id": f"guide-{n}", "topic": "security"},
            "timestamp": at(timedelta(minutes=30 - n)),
        }
        for n in range(3)
    ]
    clicks = [
        {
            "type": "track",
            "userId": user,
            "event": "Email Link Clicked",
            "properties": {"link_id": str(n)},
            "timestamp": at(timedelta(minutes=20 - n)),
        }
        for n in range(7)
    ]
    return [*pages, *downloads, *clicks]


def firmographics(user: str, email: str) -> dict[str, Any]:
    """A Segment identify that makes the lead an ICP fit in Berlin."""
    return {
        "userId": user,
        "traits": {"email": email, "industry": "Software", "employees": 420, "country": "DE"},
        "context": {"timezone": "Europe/Berlin"},
    }


def journey(predicate: Callable[[Body], Any]) -> Callable[[Body], bool]:
    """A predicate on a lead's body that holds once it has a journey and `predicate` holds on it."""
    return lambda body: body.get("journey") is not None and bool(predicate(body["journey"]))


async def get_until(
    api: httpx.AsyncClient, path: str, predicate: Callable[[Body], Any], timeout: float = 20.0
) -> Body:
    """GETs `path` until it answers 200 with a body `predicate` holds on; returns that body."""

    async def matched() -> Body:
        response = await api.get(path)
        assert response.status_code == 200 and predicate(response.json()), (
            f"{response.status_code} {response.text[:2000]}"
        )
        return dict(response.json())

    return await eventually(matched, timeout=timeout, interval=0.1, what=f"GET {path}")


async def lead_state(
    api: httpx.AsyncClient, lead_id: str, predicate: Callable[[Body], Any], timeout: float = 20.0
) -> Body:
    """The lead's body once it has a journey and `predicate` holds on the body."""
    return await get_until(
        api, f"/v1/leads/{lead_id}", lambda body: bool(body["journey"]) and predicate(body), timeout
    )


@dataclass
class SubmittedLead:
    email: str
    lead_id: str
    submission_id: str
    state: Body


async def submit_form(
    api: httpx.AsyncClient,
    email: str | None = None,
    *,
    until: Callable[[Body], Any] = lambda body: body["journey"]["stage"] == "lead",
    timeout: float = 20.0,
    **fields: Any,
) -> SubmittedLead:
    """Submits the demo form (`fields` override it) and waits for the lead's journey to hold
    `until` (by default: it is a lead)."""
    email = email or new_email()
    response = await api.post("/v1/forms/demo/submissions", json=demo_form(email, **fields))
    assert response.status_code == 202, response.text
    lead_id = response.json()["lead_id"]
    assert lead_id == lead_id_for_email(email)
    state = await lead_state(api, lead_id, until, timeout=timeout)
    return SubmittedLead(email, lead_id, response.json()["submission_id"], state)


async def make_mql(api: httpx.AsyncClient, email: str | None = None) -> tuple[SubmittedLead, Body]:
    """A lead that fits (form, identify) and is enrolled in its welcome nurture, then the behaviour
    that crosses the MQL line; returns the lead as submitted and its body once it is an MQL."""
    user = f"u-{uuid.uuid4().hex[:10]}"
    lead = await submit_form(api, email, until=lambda body: True)
    assert (await api.post("/v1/identify", json=firmographics(user, lead.email))).status_code == 200
    lead.state = await lead_state(api, lead.lead_id, lambda s: bool(s["journey"].get("enrollments")), 30)
    batch = await api.post("/v1/batch", json={"batch": behaviour(user, datetime.now(UTC))})
    assert batch.status_code == 200, batch.text
    mql = await lead_state(api, lead.lead_id, lambda s: s["journey"]["stage"] == "mql", timeout=45)
    return lead, mql


async def calls_for(sandbox: httpx.AsyncClient, email: str) -> list[dict[str, Any]]:
    """The sandbox's calls whose body names `email`."""
    calls = (await sandbox.get("/_calls")).json()["calls"]
    return [c for c in calls if email in str(c["body"]).lower()]


async def wait_for_calls(
    sandbox: httpx.AsyncClient,
    email: str,
    predicate: Callable[[list[dict[str, Any]]], Any],
    timeout: float = 20.0,
) -> list[dict[str, Any]]:
    async def matched() -> list[dict[str, Any]]:
        calls = await calls_for(sandbox, email)
        assert predicate(calls), f"sandbox calls for {email}: {calls}"
        return calls

    return await eventually(matched, timeout=timeout, what=f"the sandbox's calls for {email}")


def synced(calls: list[dict[str, Any]]) -> bool:
    """The form's contact reached the CRM, and its profile and subscription the email platform."""
    paths = {(c["provider"], c["path"], c["status"]) for c in calls}
    return {
        ("hubspot", "/crm/v3/objects/contacts/batch/upsert", 200),
        ("klaviyo", "/api/profile-import", 201),
        ("klaviyo", "/api/profile-subscription-bulk-create-jobs", 202),
    } <= paths


async def next_send_refused(
    database_url: str, lead_id: str, key: str, reason: str = "email_unsubscribed"
) -> None:
    """The send ledger, asked for the lead's next welcome send, refuses it for `reason`: the one
    gate every send passes (suppression, consent, caps) has heard the platform's report."""
    engine = create_engine(database_url, pool_size=1)
    try:
        answer = await SendLedger(session_factory(engine)).reserve(
            SendReservationInput(lead_id=lead_id, idempotency_key=key, journey="welcome_nurture")
        )
        # The gate says what stopped the send and when: "unsubscribed at 2026-...".
        said = f"{reason.removeprefix('email_')} at "
        assert answer.status == "suppressed" and (answer.reason or "").startswith(said), answer
    finally:
        await engine.dispose()


async def salesforce_session(sandbox: httpx.AsyncClient, username: str) -> dict[str, str]:
    """A user's own session, as in Salesforce's UI (the sandbox's `ui:<username>` client)."""
    granted = await sandbox.post(
        "/salesforce/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": f"ui:{username}", "client_secret": "ui"},
    )
    assert granted.status_code == 200, granted.text
    return {"Authorization": f"Bearer {granted.json()['access_token']}"}


# A rep's own HubSpot session (not the engine's app token): its changes are the CRM UI's.
HUBSPOT_REP = {"Authorization": "Bearer pat-chloe-in-the-hubspot-ui"}
SALESFORCE_DATA = "/salesforce/services/data/v62.0"


async def hubspot_search(
    sandbox: httpx.AsyncClient, object_type: str, prop: str, value: str
) -> list[dict[str, Any]]:
    """The sandbox HubSpot's records whose `prop` is `value`, as a rep searches them."""
    response = await sandbox.post(
        f"/hubspot/crm/v3/objects/{object_type}/search",
        headers=HUBSPOT_REP,
        json={
            "filterGroups": [{"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}],
            "limit": 5,
        },
    )
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


async def soql(sandbox: httpx.AsyncClient, session: dict[str, str], query: str) -> list[dict[str, Any]]:
    """A SOQL query's records in the sandbox Salesforce, in `session`'s name."""
    answer = await sandbox.get(f"{SALESFORCE_DATA}/query", params={"q": query}, headers=session)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["records"])


async def browse_with_segment(api: httpx.AsyncClient, anonymous_id: str, now: datetime) -> None:
    """What a site's Segment library sends for a visitor who reads on: five visits hours apart
    (the pricing page among them) and three guides downloaded, through the unmodified official
    Python library pointed at the API, on an ingest key of its own."""
    answer = await api.post("/v1/admin/keys", json={"name": f"site-{anonymous_id}", "scope": "ingest"})
    assert answer.status_code in (200, 201), answer.text
    errors: list[Exception] = []
    client = SegmentClient(
        write_key=answer.json()["key"],
        host=str(api.base_url).rstrip("/"),
        sync_mode=True,
        max_retries=1,
        on_error=lambda error, _batch: errors.append(error),
    )

    def send() -> None:
        for h in range(1, 6):
            client.page(
                anonymous_id=anonymous_id,
                name="Pricing" if h == 1 else "Blog",
                properties={"path": "/pricing" if h == 1 else f"/blog/post-{h}"},
                timestamp=now - timedelta(hours=h),
            )
        for n in range(3):
            client.track(
                anonymous_id=anonymous_id,
                event="Content Downloaded",
                properties={"content_id": f"guide-{n}", "topic": "security"},
                timestamp=now - timedelta(minutes=30 - n),
            )
        client.flush()

    await asyncio.to_thread(send)
    assert errors == [], errors


async def browse_then_fill_in(api: httpx.AsyncClient, anonymous_id: str, email: str, company: str) -> str:
    """A visitor reads on through the site's Segment library, then fills in the demo form with the
    seed's required fields only, on the same browser; their lead id once they are enrolled."""
    await browse_with_segment(api, anonymous_id, datetime.now(UTC))
    form = {
        "email": email,
        "company": company,
        "job_title": "VP Engineering",
        "lead_source": "website",
        "consent": True,
        "anonymous_id": anonymous_id,
    }
    submitted = await api.post("/v1/forms/demo/submissions", json=form)
    assert submitted.status_code == 202, submitted.text
    lead_id = str(submitted.json()["lead_id"])
    await lead_state(api, lead_id, lambda b: bool(b["journey"].get("enrollments")), timeout=40)
    return lead_id
