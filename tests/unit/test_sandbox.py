"""The sandbox's own contract: providers registered, effects logged, faults and held answers."""

import asyncio

import pytest

from runtime.settings import Settings
from sandbox.app import PROVIDER_MODULES, create_app
from sandbox.core import HANDLERS
from tests.helpers.platforms import in_process


@pytest.fixture
def app():
    return create_app(seed=3)


@pytest.fixture
async def sandbox(app):
    async with in_process(app) as client:
        yield client


def test_every_provider_module_registers_a_handler():
    names = set(HANDLERS)
    assert {"hubspot", "salesforce", "klaviyo", "kit", "slack", "google", "ga4", "webhook"} <= names
    assert len(PROVIDER_MODULES) == len(names)


async def test_the_call_log_page_shows_each_call_with_what_it_did(sandbox):
    await sandbox.post("/webhook/crm-mirror", json={"hello": "<world>"}, headers={"webhook-id": "msg_1"})
    await sandbox.post("/webhook/crm-mirror", json={"hello": "<world>"}, headers={"webhook-id": "msg_1"})
    page = await sandbox.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "POST /crm-mirror" in page.text
    assert "created" in page.text and "duplicate" in page.text
    assert "&lt;world&gt;" in page.text and "<world>" not in page.text
    filtered = await sandbox.get("/", params={"provider": "slack"})
    assert "/crm-mirror" not in filtered.text


async def test_unknown_providers_are_refused(sandbox):
    assert (await sandbox.post("/nowhere/x")).status_code == 404
    assert (await sandbox.put("/_faults/nowhere", json={})).status_code == 404


async def test_only_writes_are_held_and_only_as_many_as_asked(app, sandbox):
    faults = {"hold_after_write_ms": 1000, "hold_next": 1}
    assert (await sandbox.put("/_faults/webhook", json=faults)).status_code == 200
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await sandbox.get("/webhook/anything")).status_code == 405
    assert loop.time() - started < 0.8
    held = loop.time()
    await sandbox.post("/webhook/a", json={}, headers={"webhook-id": "msg_h1"})
    assert loop.time() - held >= 1.0
    after = loop.time()
    await sandbox.post("/webhook/a", json={}, headers={"webhook-id": "msg_h2"})
    assert loop.time() - after < 0.8
    calls = app.state.sandbox.calls
    assert [c.get("effect") for c in calls if c["method"] == "POST"] == ["created", "created"]


async def test_injected_faults_speak_the_platforms_error_shape(sandbox):
    await sandbox.put("/_faults/hubspot", json={"fail_next": 1, "fail_status": 429, "retry_after_seconds": 3})
    answer = await sandbox.post(
        "/hubspot/crm/v3/objects/contacts/batch/upsert", headers={"Authorization": "Bearer t"}, json={}
    )
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
    assert answer.json()["category"] == "RATE_LIMITS"
    logged = (await sandbox.get("/_calls", params={"provider": "hubspot"})).json()["calls"]
    assert logged[-1]["fault"] is True and logged[-1]["status"] == 429


async def test_timeouts_hold_a_share_of_answers_some_after_the_write(app, sandbox):
    faults = {"timeout_rate": 1.0, "timeout_ms": 300}
    assert (await sandbox.put("/_faults/webhook", json=faults)).status_code == 200
    loop = asyncio.get_running_loop()
    for n in range(8):
        started = loop.time()
        await sandbox.post("/webhook/t", json={}, headers={"webhook-id": f"msg_t{n}"})
        assert loop.time() - started >= 0.3
    written = [c for c in app.state.sandbox.calls if c["method"] == "POST"]
    # Every call was held, before or after the write; either way the write happened once.
    assert [c["effect"] for c in written] == ["created"] * 8


def test_the_log_names_each_write_by_the_key_its_platform_carries():
    from sandbox.app import write_key

    assert write_key({"idempotency-key": "k1"}, {}) == "k1"
    assert write_key({"webhook-id": "msg_2"}, None) == "msg_2"
    slack = {"channel": "C1", "metadata": '{"event_type": "x", "event_payload": {"idempotency_key": "k3"}}'}
    assert write_key({}, slack) == "k3"
    google = {"extendedProperties": {"private": {"journeysIdempotencyKey": "k4"}}}
    assert write_key({}, google) == "k4"
    assert write_key({}, {"Subject": "Call", "Journeys_Idempotency_Key__c": "k5"}) == "k5"
    assert write_key({}, {"metadata": "not json"}) is None


async def test_the_sandboxs_linkedin_refuses_a_version_it_no_longer_serves(sandbox):
    headers = {"Authorization": "Bearer t", "X-Restli-Protocol-Version": "2.0.0"}
    retired = await sandbox.get(
        "/linkedin/rest/leadForms/1", headers={**headers, "LinkedIn-Version": "202411"}
    )
    assert retired.status_code == 426 and "not active" in retired.json()["message"]
    malformed = await sandbox.get("/linkedin/rest/leadForms/1", headers={**headers, "LinkedIn-Version": "v2"})
    assert malformed.status_code == 426
    current = await sandbox.get(
        "/linkedin/rest/leadForms/1", headers={**headers, "LinkedIn-Version": Settings().linkedin_version}
    )
    assert current.status_code == 404 and current.json()["code"] == "NOT_FOUND"


async def test_a_reset_clears_the_records_but_never_hands_an_id_out_twice(sandbox):
    auth = {"Authorization": "Bearer pat-sandbox"}

    async def new_contact(email: str) -> str:
        made = await sandbox.post(
            "/hubspot/crm/v3/objects/contacts", headers=auth, json={"properties": {"email": email}}
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    before = await new_contact("ada@example-corp.com")
    assert (await sandbox.post("/_reset")).status_code == 200
    gone = await sandbox.get(f"/hubspot/crm/v3/objects/contacts/{before}", headers=auth)
    after = await new_contact("grace@example-corp.com")
    assert gone.status_code == 404 and after != before, "a platform id names one record, ever"
