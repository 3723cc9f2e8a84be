"""`GET /v1/sequences` and `POST /v1/sequences/{id}/simulate`, in process: no database, no Temporal.

The route's context is a stand-in with settings and the admin key; the preview itself runs, as in
production, in a `journeys simulate` child process with its own time-skipping test server."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from api.auth import Authenticator
from api.routes import sequences
from domain.sequences import load_sequences
from runtime.settings import Settings
from store.keys import KeyStore

ADMIN = {"Authorization": "Bearer admin-key"}
WELCOME_STEPS = load_sequences(Settings().sequences_dir)["welcome_nurture"].steps


def client_for(settings: Settings) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(sequences.router)
    # Only the admin key is used: the key store (PostgreSQL) is never asked.
    auth = Authenticator(KeyStore(None), "admin-key")  # type: ignore[arg-type]
    app.state.ctx = SimpleNamespace(settings=settings, auth=auth)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=120)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(Settings()) as test_client:
        yield test_client


def next_monday_morning() -> str:
    # 8 to 14 days ahead: in the future in Berlin whatever the hour or the day the test runs at.
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=14 - today.weekday())
    return datetime.combine(monday, time(7), tzinfo=ZoneInfo("Europe/Berlin")).isoformat()


async def test_the_loaded_sequences_are_listed(client: httpx.AsyncClient):
    assert (await client.get("/v1/sequences")).status_code == 401
    answer = await client.get("/v1/sequences", headers=ADMIN)
    assert answer.status_code == 200
    listed = {item["id"]: item for item in answer.json()["sequences"]}
    assert sorted(listed) == [
        "abm_outreach",
        "content_followup",
        "customer_reengagement",
        "expansion",
        "form_abandonment_recovery",
        "sales_outreach",
        "welcome_nurture",
        "win_back",
    ]
    welcome = listed["welcome_nurture"]
    assert welcome["version"] == 1 and welcome["name"] == "Welcome nurture"
    assert welcome["trigger"]["kind"] == "lead_created" and welcome["steps"] == len(WELCOME_STEPS)


async def test_a_broken_sequence_directory_is_a_server_error(tmp_path: Path):
    (tmp_path / "bad.toml").write_text('id = "x"\n')
    async with client_for(Settings(sequences_dir=tmp_path)) as broken:
        answer = await broken.get("/v1/sequences", headers=ADMIN)
    assert answer.status_code == 500 and "bad.toml" in answer.json()["detail"]


async def test_simulating_an_unknown_sequence_is_404(client: httpx.AsyncClient):
    answer = await client.post("/v1/sequences/nope/simulate", json={}, headers=ADMIN)
    assert answer.status_code == 404
    assert "welcome_nurture" in answer.json()["detail"]
    assert (await client.post("/v1/sequences/welcome_nurture/simulate", json={})).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"timezone": "Mars/Olympus"},
        {"stage": "mqll"},
        {"score_band": "tepid"},
        {"surprise": 1},
        {"start": "2020-01-01T00:00:00+00:00"},
        {"start": "2030-01-01T00:00:00"},
        {"events": [{"after": "3d", "type": "klicked"}]},
        {"events": [{"after": "3x", "type": "email_clicked"}]},
        {"events": [{"after": "3d", "type": "context", "properties": {"stagex": "mql"}}]},
    ],
)
async def test_a_bad_body_is_422(client: httpx.AsyncClient, body: dict):
    answer = await client.post("/v1/sequences/welcome_nurture/simulate", json=body, headers=ADMIN)
    assert answer.status_code == 422, answer.text


async def test_a_stage_the_context_refuses_is_422_from_the_simulation(client: httpx.AsyncClient):
    # The body's own checks pass; the simulator refuses the changed context (exit code 2).
    body = {"events": [{"after": "2d", "type": "context", "properties": {"stage": "mqll"}}]}
    answer = await client.post("/v1/sequences/welcome_nurture/simulate", json=body, headers=ADMIN)
    assert answer.status_code == 422
    assert "stage 'mqll' is not one of" in answer.json()["detail"]


async def test_a_sequence_is_simulated_for_the_sample_lead(client: httpx.AsyncClient):
    body = {
        "timezone": "Europe/Berlin",
        "preferred_topic": "security",
        "start": next_monday_morning(),
        "events": [
            {"after": "8d", "type": "email_clicked"},
            {"after": "10d", "type": "context", "properties": {"stage": "mql"}},
            {"after": "13d", "type": "context", "properties": {"stage": "recycled"}},
        ],
    }
    answer = await client.post("/v1/sequences/welcome_nurture/simulate", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["sequence_id"] == "welcome_nurture" and result["status"] == "completed"
    assert result["context"]["preferred_topic"] == "security" and result["timezone"] == "Europe/Berlin"
    sent = [item["step_id"] for item in result["timeline"] if item["kind"] == "sent"]
    assert sent[:4] == ["welcome", "security_track", "invite_question", "demo_offer"]
    assert [item["kind"] for item in result["timeline"]].count("pause") == 1
