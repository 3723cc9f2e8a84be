"""Leads as the outside world sends them, shared by the chaos test, the mixed benchmark and the soak.

Each lead submits the demo form; by its kind it then clicks an email, crosses the MQL line, books a
meeting through Calendly or buys through Stripe. Every request goes through `Sender`, which does what
a well-behaved client does: it sends again after a dropped connection, a 503 or a 429 (waiting the
`Retry-After`), with the same message ids and idempotency keys, so a resend never counts twice.
Anonymous visitors only view pages. What each lead was accepted for is counted, so a test can say
whether anything was lost.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devstack.stack import DEV_WEBHOOK_SECRETS, DevStack
from domain.ids import lead_id_for_email
from domain.signatures import sign_timestamped_hmac
from tests.helpers.e2e import behaviour, demo_form
from tests.helpers.webhooks import checkout

KINDS = ("form", "click", "mql", "meeting", "purchase")
RETRIED_STATUSES = {429, 502, 503, 504}


class RequestRefused(Exception):
    """The API refused a request for good (a 4xx other than 429): the workload itself is wrong."""


@dataclass
class WorkloadLead:
    n: int
    kind: str
    email: str
    user: str
    accepted: Counter[str] = field(default_factory=Counter)
    # When each flow's triggering request was accepted (epoch seconds), for latency from the client.
    sent_at: dict[str, float] = field(default_factory=dict)

    @property
    def lead_id(self) -> str:
        return lead_id_for_email(self.email)


def new_lead(n: int, kind: str, tag: str = "chaos") -> WorkloadLead:
    token = uuid.uuid4().hex[:10]
    return WorkloadLead(n=n, kind=kind, email=f"{tag}.{token}@example-corp.com", user=f"{tag}-{token}")


def kind_for(n: int, mix: dict[str, float]) -> str:
    """Deterministic spread of kinds by share: lead n of every 100 gets the kind its slot falls in."""
    slot = (n * 37) % 100
    edge = 0.0
    for kind, share in mix.items():
        edge += share * 100
        if slot < edge:
            return kind
    return "form"


@dataclass
class Sender:
    api: httpx.AsyncClient
    ingest_key: str
    give_up_after: float = 300.0
    retried: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    async def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        sign: Any = None,
    ) -> httpx.Response:
        """Sends until the API accepts; `sign(body) -> headers` re-signs each attempt (a webhook
        signature carries its time, so a resend minutes later needs a fresh one)."""
        deadline = time.monotonic() + self.give_up_after
        attempt = 0
        while True:
            attempt += 1
            extra = sign(content) if sign is not None else {}
            started = time.perf_counter()
            try:
                answer = await self.api.request(
                    method,
                    path,
                    json=json_body,
                    content=content,
                    headers={**(headers or {}), **extra},
                    params=params,
                )
            except httpx.TransportError as exc:
                self.retried[type(exc).__name__] += 1
                wait = min(0.2 * attempt, 2.0)
            else:
                if answer.status_code < 300:
                    if attempt == 1:
                        self.latencies.append(time.perf_counter() - started)
                    return answer
                if answer.status_code not in RETRIED_STATUSES:
                    raise RequestRefused(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
                self.retried[str(answer.status_code)] += 1
                told = answer.headers.get("Retry-After")
                wait = float(told) if told and told.replace(".", "", 1).isdigit() else min(0.2 * attempt, 2.0)
            if time.monotonic() + wait > deadline:
                raise RequestRefused(f"{method} {path}: still refused after {attempt} attempts")
            await asyncio.sleep(wait)


def _stripe_signer(body: bytes | None) -> dict[str, str]:
    secret = DEV_WEBHOOK_SECRETS["JOURNEYS_STRIPE_WEBHOOK_SECRET"]
    return {"Stripe-Signature": sign_timestamped_hmac(body or b"", secret, int(time.time()))}


def _calendly_signer(body: bytes | None) -> dict[str, str]:
    secret = DEV_WEBHOOK_SECRETS["JOURNEYS_CALENDLY_WEBHOOK_SIGNING_KEY"]
    return {"Calendly-Webhook-Signature": sign_timestamped_hmac(body or b"", secret, int(time.time()))}


def booking(lead: WorkloadLead) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    return {
        "event": "invitee.created",
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "payload": {
            "email": lead.email,
            "name": "Ada Lovelace",
            "uri": f"https://api.calendly.com/scheduled_events/EV{lead.user}/invitees/{lead.user}",
            "scheduled_event": {
                "name": "Product demo",
                "start_time": start.isoformat().replace("+00:00", "Z"),
                "end_time": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            },
        },
    }


def purchase(lead: WorkloadLead) -> dict[str, Any]:
    return checkout(lead.email, f"cus_{lead.user}", event_id=f"evt_{lead.user}", session_id=f"cs_{lead.user}")


# A booking or a purchase reaches the API as its platform sends it: a signed webhook delivery.
SIGNED_WEBHOOKS = {
    "meeting": ("/v1/webhooks/calendly", booking, _calendly_signer, "meeting_booked"),
    "purchase": ("/v1/webhooks/stripe", purchase, _stripe_signer, "purchase"),
}


async def run_lead(sender: Sender, lead: WorkloadLead) -> None:
    """The lead's requests, in order. Events counted by what the API was told, one per message."""
    sent = await sender.send(
        "POST",
        "/v1/forms/demo/submissions",
        json_body=demo_form(lead.email),
        headers={"Idempotency-Key": f"{lead.user}-form"},
    )
    lead.sent_at["form"] = time.time()
    lead.accepted["form_submitted"] += 1 if sent.status_code == 202 else 0
    if lead.kind in ("click", "mql"):
        identify = {
            "userId": lead.user,
            "traits": {"email": lead.email, "industry": "Software", "employees": 420, "country": "DE"},
            "context": {"timezone": "Europe/Berlin"},
            "messageId": f"{lead.user}-identify",
        }
        await sender.send("POST", "/v1/identify", json_body=identify)
        lead.accepted["identify"] += 1
    if lead.kind == "click":
        click = {
            "userId": lead.user,
            "event": "Email Link Clicked",
            "properties": {"link_id": "pricing"},
            "messageId": f"{lead.user}-click",
        }
        await sender.send("POST", "/v1/track", json_body=click)
        lead.sent_at["click"] = time.time()
        lead.accepted["track"] += 1
    elif lead.kind == "mql":
        batch = [
            {**item, "messageId": f"{lead.user}-{n}"}
            for n, item in enumerate(behaviour(lead.user, datetime.now(UTC)))
        ]
        await sender.send("POST", "/v1/batch", json_body={"batch": batch})
        lead.sent_at["mql"] = time.time()
        lead.accepted["batch"] += len(batch)
    elif lead.kind in SIGNED_WEBHOOKS:
        path, payload, signer, counted_as = SIGNED_WEBHOOKS[lead.kind]
        await sender.send(
            "POST",
            path,
            content=json.dumps(payload(lead)).encode(),
            params={"key": sender.ingest_key},
            headers={"Content-Type": "application/json"},
            sign=signer,
        )
        lead.sent_at[lead.kind] = time.time()
        lead.accepted[counted_as] += 1


async def anonymous_visit(sender: Sender, visitor: str, pages: int = 3) -> int:
    """An anonymous visitor reads a few pages (one batch): the top of the funnel, no lead yet."""
    now = datetime.now(UTC)
    batch = [
        {
            "type": "page",
            "anonymousId": visitor,
            "name": "Pricing" if n == pages - 1 else "Blog",
            "properties": {"path": "/pricing" if n == pages - 1 else f"/blog/{n}"},
            "context": {"campaign": {"source": "google", "medium": "organic"}},
            "timestamp": (now - timedelta(minutes=pages - n)).isoformat(),
            "messageId": f"{visitor}-{n}",
        }
        for n in range(pages)
    ]
    await sender.send("POST", "/v1/batch", json_body={"batch": batch})
    return pages


def expected_events(lead: WorkloadLead) -> int:
    return sum(lead.accepted.values())


async def put_roster(
    api: httpx.AsyncClient, *, reps: int, sla: str | None = None, step_timeout: str | None = None
) -> None:
    """`reps` reps on duty around the clock (through the roster API), so a figure does not depend
    on the hour it is measured at, and rep DMs spread over as many Slack channels as a team's
    would; the escalation timings asked for (the roster file's otherwise)."""
    roster = (await api.get("/v1/roster")).json()["roster"]
    manager = next(r for r in roster["reps"] if r["id"] == roster["teams"][0]["manager_id"])
    kept = {rep_id for team in roster["teams"][1:] for rep_id in team["reps"]}
    on_duty = {"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00:00", "end": "23:59:59"}
    workload_reps = [
        {
            "id": f"rep{n}",
            "name": f"Rep {n}",
            "email": f"rep{n}@example.com",
            "slack_user_id": f"U0LOADREP{n:02d}",
            "manager_id": manager["id"],
            "timezone": "UTC",
            "working_hours": on_duty,
            "capacity": 1,
        }
        for n in range(reps)
    ]
    body = {
        **roster,
        "version": roster["version"] + 1,
        "escalation": {
            **roster["escalation"],
            **({"sla": sla} if sla else {}),
            **({"step_timeout": step_timeout} if step_timeout else {}),
        },
        "reps": [*workload_reps, manager, *(r for r in roster["reps"] if r["id"] in kept)],
        "teams": [{**roster["teams"][0], "reps": [r["id"] for r in workload_reps]}, *roster["teams"][1:]],
    }
    answer = await api.put("/v1/roster", json=body)
    answer.raise_for_status()
    await asyncio.sleep(6)  # workers reread the roster within 5 s


@asynccontextmanager
async def workload_client(
    stack: DevStack, name: str, give_up_after: float = 300.0
) -> AsyncIterator[tuple[httpx.AsyncClient, Sender]]:
    """The admin API client and a `Sender` on an ingest key of its own, with ten reps on duty
    (a five-minute SLA and escalation step, so a figure is the engine's, not the escalation's)."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=stack.settings.api_url, headers=headers, limits=limits, timeout=60
    ) as api:
        await put_roster(api, reps=10, sla="5m", step_timeout="5m")
        key = (await api.post("/v1/admin/keys", json={"name": name, "scope": "ingest"})).json()["key"]
        yield api, Sender(api, key, give_up_after=give_up_after)
