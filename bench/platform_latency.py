"""A platform's report of an email click -> the lead's score changed, and a CRM's report of a
record given to another owner -> the lead's owner, through the local stack, beside the bare stack.

    .venv/bin/python -m bench.platform_latency [--leads 20]

Each lead is a demo form with consent; once its welcome email went out, its recipient clicks it
(the sandbox's `POST /_engagement`), and the clock runs until `GET /v1/leads/{id}` shows the email
engagement score up. Three paths: Klaviyo and HubSpot, whose events APIs the engine polls (every
2 s on the dev stack), and Kit, which calls the engine's webhook; then a manager reassigns a record in HubSpot
(its webhook) and in Salesforce (the engine's poll of its field history), and the clock runs
until the lead's owner is the new one. The bare stack is a plain SDK workflow that is signalled an
event and queried until its count moved: what Temporal alone costs for "an event arrives -> its
effect can be read". The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare_workflow import BareCounter
from bench.common import final_line, histogram, local_stack, percentile, progress, summary_ms
from devstack.stack import DevStack
from tests.helpers.e2e import SALESFORCE_DATA, demo_form, salesforce_session, soql

POLL_EVERY_S = 0.05
# Where each email platform's send of the welcome email shows in the sandbox's calls.
SENT_PATHS = {"klaviyo": "/api/events", "hubspot": "/marketing/v4/email/single-send", "kit": "/v4/sequences/"}
# The sandbox HubSpot's owner Chloe Martin (the roster's `chloe`).
HUBSPOT_CHLOE = "71000003"


async def engagement(api: httpx.AsyncClient, lead_id: str) -> int:
    body = (await api.get(f"/v1/leads/{lead_id}")).json()
    journey = body.get("journey") or {}
    return int(journey.get("email_engagement") or 0)


async def welcomed(api: httpx.AsyncClient, sandbox: httpx.AsyncClient, provider: str) -> tuple[str, str]:
    """A new lead whose welcome email went out through `provider`."""
    email = f"bench.{uuid.uuid4().hex[:10]}@example-corp.com"
    answer = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
    assert answer.status_code == 202, answer.text
    lead_id = answer.json()["lead_id"]
    sent_path = SENT_PATHS[provider]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        calls = (await sandbox.get("/_calls")).json()["calls"]
        if any(
            c["provider"] == provider and sent_path in c["path"] and email in str(c["body"]) for c in calls
        ):
            return email, lead_id
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no welcome email through {provider} for {email}")


async def click_to_score(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, provider: str, leads: int
) -> list[float]:
    latencies: list[float] = []
    for n in range(leads):
        email, lead_id = await welcomed(api, sandbox, provider)
        before = await engagement(api, lead_id)
        started = time.perf_counter()
        clicked = await sandbox.post(
            "/_engagement", json={"email": email, "action": "click", "provider": provider}
        )
        assert clicked.status_code == 200, clicked.text
        while await engagement(api, lead_id) <= before:
            if time.perf_counter() - started > 60:
                raise TimeoutError(f"{provider}: the click never reached the score of {lead_id}")
            await asyncio.sleep(POLL_EVERY_S)
        latencies.append(time.perf_counter() - started)
        progress(f"{provider}: {n + 1}/{leads} clicks scored (last {latencies[-1] * 1000:.0f} ms)")
    return latencies


async def crm_record(api: httpx.AsyncClient, crm: str) -> tuple[str, str]:
    """A new lead whose CRM record the form made: its email and lead id."""
    email = f"bench.{uuid.uuid4().hex[:10]}@example-corp.com"
    answer = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
    assert answer.status_code == 202, answer.text
    lead_id = answer.json()["lead_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = (await api.get(f"/v1/leads/{lead_id}")).json()
        if body.get("identities", {}).get(f"{crm}_contact") and (body.get("journey") or {}).get("fit"):
            return email, lead_id
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no {crm} record for {email}")


async def owner_of(api: httpx.AsyncClient, lead_id: str) -> str | None:
    journey = (await api.get(f"/v1/leads/{lead_id}")).json().get("journey") or {}
    return journey.get("owner_crm_id")


async def reassign(sandbox: httpx.AsyncClient, crm: str, email: str) -> str:
    """A manager gives the person's record to Chloe in the CRM (as in its UI); her owner id."""
    if crm == "hubspot":
        rep = {"Authorization": "Bearer pat-manager-in-the-hubspot-ui"}
        search = {
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}]
        }
        [contact] = (
            await sandbox.post("/hubspot/crm/v3/objects/contacts/search", headers=rep, json=search)
        ).json()["results"]
        moved = await sandbox.patch(
            f"/hubspot/crm/v3/objects/contacts/{contact['id']}",
            headers=rep,
            json={"properties": {"hubspot_owner_id": HUBSPOT_CHLOE}},
        )
        assert moved.status_code == 200, moved.text
        return HUBSPOT_CHLOE
    manager = await salesforce_session(sandbox, "ada@journeys.example")
    [person] = await soql(sandbox, manager, f"SELECT Id FROM Lead WHERE Email = '{email}'")
    [chloe] = await soql(sandbox, manager, "SELECT Id FROM User WHERE Username = 'chloe.martin@example.com'")
    moved = await sandbox.patch(
        f"{SALESFORCE_DATA}/sobjects/Lead/{person['Id']}", headers=manager, json={"OwnerId": chloe["Id"]}
    )
    assert moved.status_code == 204, moved.text
    return str(chloe["Id"])


async def reassignment_to_lead(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, crm: str, leads: int
) -> list[float]:
    """A record given to another owner in the CRM -> the lead's owner, read from the API."""
    latencies: list[float] = []
    for n in range(leads):
        email, lead_id = await crm_record(api, crm)
        started = time.perf_counter()
        owner = await reassign(sandbox, crm, email)
        while await owner_of(api, lead_id) != owner:
            if time.perf_counter() - started > 60:
                raise TimeoutError(f"{crm}: the new owner never reached {lead_id}")
            await asyncio.sleep(POLL_EVERY_S)
        latencies.append(time.perf_counter() - started)
        progress(f"{crm}: {n + 1}/{leads} reassignments followed (last {latencies[-1] * 1000:.0f} ms)")
    return latencies


async def bare(stack: DevStack, count: int) -> list[float]:
    client = await Client.connect(stack.settings.temporal_address)
    queue = f"bare-counter-{uuid.uuid4().hex[:6]}"
    latencies: list[float] = []
    async with Worker(client, task_queue=queue, workflows=[BareCounter]):
        handle = await client.start_workflow(BareCounter.run, id=f"bare-counter-{queue}", task_queue=queue)
        for n in range(count):
            started = time.perf_counter()
            await handle.signal(BareCounter.event)
            while await handle.query(BareCounter.count) <= n:
                await asyncio.sleep(POLL_EVERY_S / 10)
            latencies.append(time.perf_counter() - started)
        await handle.terminate()
    progress(f"bare: {count} signals read back")
    return latencies


async def main(leads: int) -> dict[str, Any]:
    async with local_stack(always_open=True) as stack:
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        async with (
            httpx.AsyncClient(base_url=stack.settings.api_url, headers=headers, timeout=20) as api,
            httpx.AsyncClient(base_url=stack.settings.sandbox_url, timeout=20) as sandbox,
        ):
            klaviyo = await click_to_score(api, sandbox, "klaviyo", leads)
            hubspot = await reassignment_to_lead(api, sandbox, "hubspot", leads)
            await stack.restart_worker(kill=False, extra_env={"JOURNEYS_EMAIL_PROVIDER": "hubspot"})
            hubspot_email = await click_to_score(api, sandbox, "hubspot", leads)
            await stack.restart_worker(kill=False, extra_env={"JOURNEYS_EMAIL_PROVIDER": "kit"})
            kit = await click_to_score(api, sandbox, "kit", leads)
            await stack.restart_worker(
                kill=False,
                extra_env={"JOURNEYS_EMAIL_PROVIDER": "kit", "JOURNEYS_CRM_PROVIDER": "salesforce"},
            )
            salesforce = await reassignment_to_lead(api, sandbox, "salesforce", leads)
        floor = await bare(stack, leads)
    paths = (
        ("Klaviyo (events API poll)", klaviyo),
        ("HubSpot (email events poll)", hubspot_email),
        ("Kit (webhook)", kit),
        ("HubSpot owner change (webhook)", hubspot),
        ("Salesforce owner change (history poll)", salesforce),
        ("bare", floor),
    )
    for name, values in paths:
        progress(
            f"{name}: p50 {percentile(values, 50) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms"
        )
        progress(histogram(values, buckets_ms=(50, 100, 200, 500, 1000, 2000, 3000, 5000)))
    return {
        "bench": "platform_latency",
        "leads": leads,
        "poll_interval_s": 2.0,
        "klaviyo_poll": summary_ms(klaviyo),
        "hubspot_email_poll": summary_ms(hubspot_email),
        "kit_webhook": summary_ms(kit),
        "hubspot_owner_webhook": summary_ms(hubspot),
        "salesforce_owner_poll": summary_ms(salesforce),
        "bare_signal_to_query": summary_ms(floor),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20, help="clicks measured on each path")
    arguments = parser.parse_args()
    final_line(asyncio.run(main(arguments.leads)))
