"""The Segment-compatible API: auth, limits, dedupe, skew correction, identity and the profile."""

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.stack import DevStack
from domain.ids import email_hash, lead_id_for_email, lead_id_for_user
from tests.helpers.e2e import demo_form, get_until, journey
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
async def ingest_key(api: httpx.AsyncClient) -> str:
    response = await api.post(
        "/v1/admin/keys", json={"name": "tests", "scope": "ingest", "rate_per_second": 500}
    )
    assert response.status_code == 201
    return str(response.json()["key"])


@pytest.fixture
async def tracker(stack: DevStack, ingest_key: str):
    async with httpx.AsyncClient(
        base_url=stack.settings.api_url, headers=basic(ingest_key), timeout=15
    ) as client:
        yield client


async def test_keys_are_scoped_and_checked(stack: DevStack, api, ingest_key, tracker):
    assert (await tracker.post("/v1/track", json={"userId": "u", "event": "x"})).status_code == 200
    in_body = await httpx.AsyncClient(base_url=stack.settings.api_url).post(
        "/v1/track", json={"userId": "u", "event": "x", "writeKey": ingest_key}
    )
    assert in_body.status_code == 200
    forbidden = await tracker.get("/v1/leads?email=a@b.com")
    assert forbidden.status_code == 403 and "scope" in forbidden.json()["detail"]
    async with httpx.AsyncClient(base_url=stack.settings.api_url) as anonymous:
        assert (await anonymous.post("/v1/track", json={"userId": "u", "event": "x"})).status_code == 401
        wrong = await anonymous.post("/v1/track", json={"userId": "u", "event": "x"}, headers=basic("nope"))
        assert wrong.status_code == 401 and "API key" in wrong.json()["detail"]
    listed = (await api.get("/v1/admin/keys")).json()["keys"]
    mine = [k for k in listed if ingest_key.split("_")[2] == k["key_id"]]
    assert mine and "key" not in mine[0], "the clear key is never listed"
    assert (await api.delete(f"/v1/admin/keys/{mine[0]['key_id']}")).status_code == 204
    assert (await tracker.post("/v1/track", json={"userId": "u", "event": "x"})).status_code == 401


async def test_a_narrow_key_does_its_one_job(stack: DevStack, api):
    """A BI tool's `reports:read` key reads reports and nothing else; the DPO's `pii:erase` key
    erases and cannot read the person; neither can ingest."""

    async def key(scope: str) -> dict[str, str]:
        made = await api.post("/v1/admin/keys", json={"name": f"narrow {scope}", "scope": scope})
        assert made.status_code == 201, made.text
        return {"Authorization": f"Bearer {made.json()['key']}"}

    async with httpx.AsyncClient(base_url=stack.settings.api_url, timeout=15) as client:
        reports, erase = await key("reports:read"), await key("pii:erase")
        assert (await client.get("/v1/reports/funnel", headers=reports)).status_code == 200
        for method, path in (
            ("GET", "/v1/leads?email=a@b.com"),
            ("POST", "/v1/reports/runs"),
            ("GET", "/v1/roster"),
        ):
            refused = await client.request(method, path, headers=reports, json={})
            assert refused.status_code == 403 and "reports:read" in refused.json()["detail"], (
                path,
                refused.text,
            )
        assert (
            await client.post("/v1/track", json={"userId": "u", "event": "x"}, headers=erase)
        ).status_code == 403
        email = f"erase.{uuid.uuid4().hex[:8]}@example-corp.com"
        submitted = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
        lead_id = submitted.json()["lead_id"]
        assert (await client.get(f"/v1/leads/{lead_id}", headers=erase)).status_code == 403
        assert (await client.delete(f"/v1/leads/{lead_id}", headers=erase)).status_code == 200


async def test_a_key_over_its_rate_gets_429_with_retry_after(stack: DevStack, api):
    key = (await api.post("/v1/admin/keys", json={"name": "slow", "rate_per_second": 1})).json()["key"]
    async with httpx.AsyncClient(base_url=stack.settings.api_url, headers=basic(key)) as client:
        answers = [await client.post("/v1/track", json={"userId": "u-slow", "event": "x"}) for _ in range(4)]
    assert [a.status_code for a in answers][:2] == [200, 200]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers["Retry-After"]) >= 1


async def test_bad_messages_get_field_errors_and_record_nothing(api, tracker):
    user = f"u-{uuid.uuid4().hex[:8]}"
    missing = await tracker.post("/v1/track", json={"userId": user})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "event"]
    nobody = await tracker.post("/v1/page", json={"name": "Home"})
    assert nobody.status_code == 422 and nobody.json()["detail"][0]["loc"] == ["body", "userId"]
    bad_email = await tracker.post("/v1/identify", json={"userId": user, "traits": {"email": "nope"}})
    assert bad_email.json()["detail"][0]["loc"] == ["body", "traits", "email"]
    batch = await tracker.post(
        "/v1/batch",
        json={"batch": [{"type": "track", "userId": user, "event": "ok"}, {"type": "track", "userId": user}]},
    )
    assert batch.status_code == 422
    assert batch.json()["detail"][0]["loc"] == ["body", "batch", 1, "event"]
    assert (await api.get(f"/v1/leads/{lead_id_for_user(user)}")).status_code == 404, "nothing recorded"
    not_json = await tracker.post("/v1/track", content=b"[1,2", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422


async def test_size_limits_are_segments(tracker):
    big = await tracker.post(
        "/v1/track", json={"userId": "u", "event": "x", "properties": {"blob": "x" * 33_000}}
    )
    assert big.status_code == 413 and "32 KB" in big.json()["detail"]
    message = {"type": "track", "userId": "u", "event": "x", "properties": {"blob": "x" * 20_000}}
    too_many = await tracker.post("/v1/batch", json={"batch": [message] * 30})
    assert too_many.status_code == 413 and "500 KB" in too_many.json()["detail"]
    one_too_big = {**message, "properties": {"blob": "x" * 40_000}}
    inner = await tracker.post("/v1/batch", json={"batch": [message, one_too_big]})
    assert inner.status_code == 413 and "batch[1]" in inner.json()["detail"]


async def test_clock_skew_is_corrected_and_message_ids_dedupe(api, tracker):
    user = f"u-{uuid.uuid4().hex[:8]}"
    # The device's clock is an hour fast: both its event time and its sentAt are off by an hour.
    device_now = datetime.now(UTC) + timedelta(hours=1)
    message = {
        "userId": user,
        "event": "Pricing Viewed",
        "messageId": f"m-{uuid.uuid4()}",
        "originalTimestamp": (device_now - timedelta(seconds=30)).isoformat(),
        "sentAt": device_now.isoformat(),
    }
    for _ in range(3):
        answer = await tracker.post("/v1/track", json=message)
        assert answer.status_code == 200
        # The API's own time, for telling its share of a slow answer from the network's.
        assert float(answer.headers["Server-Timing"].removeprefix("app;dur=")) > 0
    events = (await api.get(f"/v1/leads/{lead_id_for_user(user)}/events")).json()["events"]
    assert len(events) == 1, "a retried messageId is recorded once"
    occurred = datetime.fromisoformat(events[0]["occurred_at"])
    skew = abs((occurred - (datetime.now(UTC) - timedelta(seconds=30))).total_seconds())
    assert skew < 5, f"corrected to the server's clock, off by {skew:.1f} s"


async def test_anonymous_page_views_count_once_the_visitor_is_identified(api, tracker):
    anonymous = f"a-{uuid.uuid4().hex[:8]}"
    email = f"grace.{uuid.uuid4().hex[:8]}@example-corp.com"
    pages = [
        {
            "type": "page",
            "anonymousId": anonymous,
            "name": name,
            "properties": {"path": f"/{name.lower()}"},
            "context": {
                "campaign": {"source": "google", "medium": "cpc", "name": "brand"},
                "page": {"referrer": "https://google.com"},
            },
            "timestamp": (datetime.now(UTC) - timedelta(hours=hours)).isoformat(),
        }
        for name, hours in [("Home", 5), ("Pricing", 4.9), ("Docs", 1)]
    ]
    assert (await tracker.post("/v1/batch", json={"batch": pages})).status_code == 200
    identify = {
        "anonymousId": anonymous,
        "userId": f"u-{anonymous}",
        "traits": {"email": email.upper(), "firstName": "Grace", "company": "Example Corp", "title": "CTO"},
    }
    assert (await tracker.post("/v1/identify", json=identify)).status_code == 200
    lead_id = lead_id_for_email(email)
    body = await get_until(api, f"/v1/leads/{lead_id}", journey(lambda j: j["activity"]["page_views"] == 3))
    assert body["journey"]["stage"] == "lead"
    assert body["journey"]["activity"]["sessions"] == 2
    assert body["journey"]["first_touch"]["source"] == "google"
    assert body["journey"]["email_hash"] == email_hash(email)
    assert body["profile"]["first_name"] == "Grace" and body["profile"]["job_title"] == "CTO"
    assert sorted(body["identities"]) == ["anonymous", "email", "user"]
    found = (await api.get("/v1/leads", params={"email": email})).json()["leads"]
    assert [lead["lead_id"] for lead in found] == [lead_id]


async def test_group_adds_firmographics_and_alias_merges(api, tracker):
    old_user, new_user = f"u-old-{uuid.uuid4().hex[:6]}", f"u-new-{uuid.uuid4().hex[:6]}"
    await tracker.post("/v1/track", json={"userId": old_user, "event": "Webinar Attended"})
    await tracker.post("/v1/track", json={"userId": new_user, "event": "Trial Started"})
    group = {
        "userId": new_user,
        "groupId": "acct-77",
        "traits": {"name": "Example Corp", "industry": "Software", "employees": 420},
    }
    assert (await tracker.post("/v1/group", json=group)).status_code == 200
    assert (
        await tracker.post("/v1/alias", json={"previousId": old_user, "userId": new_user})
    ).status_code == 200
    target = lead_id_for_user(new_user)
    body = await get_until(
        api, f"/v1/leads/{target}", journey(lambda j: j["activity"]["events_by_type"].get("track") == 2)
    )
    assert body["account"]["traits"]["industry"] == "Software"
    assert body["journey"]["account_id"] == "acct-77"
    assert sorted(body["identities"]["user"]) == sorted([old_user, new_user])
    old = (await api.get(f"/v1/leads/{lead_id_for_user(old_user)}")).json()
    assert old["merged_into"] == target


async def test_events_are_paged_newest_first(api, tracker):
    user = f"u-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(minutes=10)
    batch = [
        {
            "type": "track",
            "userId": user,
            "event": f"step {n}",
            "timestamp": (start + timedelta(seconds=n)).isoformat(),
        }
        for n in range(7)
    ]
    await tracker.post("/v1/batch", json={"batch": batch})
    names: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"/v1/leads/{lead_id_for_user(user)}/events", params=params)).json()
        names += [e["name"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert names == [f"step {n}" for n in reversed(range(7))]


async def test_gzip_bodies_are_accepted(tracker):
    import gzip

    body = gzip.compress(json.dumps({"userId": "u-gz", "event": "Compressed"}).encode())
    response = await tracker.post(
        "/v1/track", content=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )
    assert response.status_code == 200


async def test_keys_are_managed_from_the_cli(stack: DevStack):
    import os
    import sys

    env = {**os.environ, "JOURNEYS_DATABASE_URL": stack.database_url}

    async def journeys(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli.main",
            "keys",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        assert process.returncode == 0, out.decode()
        return out.decode()

    created = await journeys("create", "--name", "cli-made", "--scope", "ingest", "--rate", "5")
    clear = created.strip().splitlines()[-1]
    key_id = clear.split("_")[2]
    async with httpx.AsyncClient(base_url=stack.settings.api_url, headers=basic(clear)) as client:
        assert (await client.post("/v1/track", json={"userId": "u-cli", "event": "x"})).status_code == 200
        listed = await journeys("list")
        assert key_id in listed and "cli-made" in listed and clear not in listed
        await journeys("revoke", key_id)

        async def refused() -> None:
            answer = await client.post("/v1/track", json={"userId": "u-cli", "event": "x"})
            assert answer.status_code == 401, answer.status_code

        # The API caches a key's lookup for 5 s: refused once that has run out.
        await eventually(refused, timeout=10, interval=0.5, what="the revoked key to be refused")
