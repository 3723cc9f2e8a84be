"""An unmodified official Segment library (segment-analytics-python), its host pointed at our API."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from segment.analytics import Client

from devstack.stack import DevStack
from domain.ids import lead_id_for_email
from tests.helpers.e2e import get_until, journey

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
async def test_the_official_python_library_lands_every_call(stack: DevStack, api, gzip: bool):
    key = (await api.post("/v1/admin/keys", json={"name": "segment-lib", "scope": "ingest"})).json()["key"]
    errors: list[Exception] = []
    client = Client(
        write_key=key,
        host=stack.settings.api_url,
        sync_mode=True,
        gzip=gzip,
        max_retries=1,
        on_error=lambda error, batch: errors.append(error),
    )
    anonymous = f"anon-{uuid.uuid4().hex[:8]}"
    user = f"user-{uuid.uuid4().hex[:8]}"
    email = f"lin.{uuid.uuid4().hex[:8]}@example-corp.com"
    earlier = datetime.now(UTC) - timedelta(hours=3)

    def send() -> None:
        client.page(
            anonymous_id=anonymous,
            category="Docs",
            name="Quickstart",
            properties={"path": "/docs/quickstart"},
            context={"campaign": {"source": "newsletter", "medium": "email", "name": "nov"}},
            timestamp=earlier,
        )
        client.screen(anonymous_id=anonymous, name="Onboarding", timestamp=earlier + timedelta(minutes=1))
        client.track(anonymous_id=anonymous, event="Whitepaper Downloaded", properties={"topic": "temporal"})
        client.identify(
            user_id=user,
            anonymous_id=anonymous,
            traits={"email": email, "firstName": "Lin", "company": {"name": "Example Corp"}},
        )
        client.group(user_id=user, group_id="acct-lib", traits={"industry": "Fintech", "employees": 120})
        client.alias(previous_id=f"legacy-{user}", user_id=user)
        client.flush()

    await asyncio.to_thread(send)
    assert errors == []
    body = await get_until(
        api,
        f"/v1/leads/{lead_id_for_email(email)}",
        journey(
            lambda j: j["activity"]["page_views"] == 2 and j["activity"]["events_by_type"].get("track") == 1
        ),
    )
    assert body["journey"]["stage"] == "lead"
    assert body["journey"]["first_touch"]["source"] == "newsletter"
    assert body["account"]["traits"]["industry"] == "Fintech"
    assert body["profile"]["company"] == "Example Corp"
    assert f"legacy-{user}" in body["identities"]["anonymous"]
    events = (await api.get(f"/v1/leads/{lead_id_for_email(email)}/events")).json()["events"]
    assert sorted(e["type"] for e in events) == ["alias", "group", "identify", "page", "screen", "track"]
    page = next(e for e in events if e["type"] == "page")
    assert abs((datetime.fromisoformat(page["occurred_at"]) - earlier).total_seconds()) < 5
    assert page["properties"]["category"] == "Docs"
