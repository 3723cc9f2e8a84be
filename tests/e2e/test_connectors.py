"""Connectors on the running stack: the shared throttle in PostgreSQL, integration health."""

import asyncio
import time
from typing import Any

import httpx
import pytest

from devstack.stack import DevStack
from domain.ids import lead_id_for_email
from domain.ratelimits import OverRateLimit, RateLimit
from store.db import create_engine, session_factory
from store.ratelimit import PostgresThrottle
from tests.helpers.e2e import demo_form, lead_state, new_email
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e


async def test_two_workers_share_one_bucket(stack: DevStack):
    """Two throttles (as two worker processes would hold) over one database keep one rate."""
    engine = create_engine(stack.database_url, pool_size=4)
    try:
        sessions = session_factory(engine)
        limits = {"test-shared": RateLimit(per_second=20, burst=1)}
        first, second = PostgresThrottle(sessions, limits), PostgresThrottle(sessions, limits)
        started = time.monotonic()
        await asyncio.gather(*(t.acquire("test-shared") for t in [first, second] * 15))
        elapsed = time.monotonic() - started
        # 30 slots at 20/s with no burst: the last is 29 intervals after the first, whichever
        # process asked. Alone, each would have passed its 15 in 0.7 s.
        assert elapsed >= 29 / 20 * 0.95, elapsed

        strict = PostgresThrottle(sessions, {"test-far": RateLimit(per_second=1)}, max_wait=0.5)
        await strict.acquire("test-far")
        with pytest.raises(OverRateLimit) as caught:
            await asyncio.gather(strict.acquire("test-far"), strict.acquire("test-far"))
        assert caught.value.retry_after > 0.5
        # The slot too far out was given back: a request a second later waits no more than one interval.
        await asyncio.sleep(1.0)
        before = time.monotonic()
        await strict.acquire("test-far")
        assert time.monotonic() - before < 1.5
    finally:
        await engine.dispose()


async def test_integration_health_counts_calls_and_syncs(
    stack: DevStack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    """A 429 retried to success is a rate-limited call and a healthy sync; a 400 is a failed sync."""
    faults = {"fail_next": 1, "fail_status": 429, "retry_after_seconds": 0.2}
    assert (await sandbox.put("/_faults/hubspot", json=faults)).status_code == 200
    email = new_email()
    assert (await api.post("/v1/forms/demo/submissions", json=demo_form(email))).status_code == 202
    await lead_state(api, lead_id_for_email(email), lambda s: s["journey"]["crm_contact_id"], timeout=30)

    async def counted() -> tuple[dict[str, Any], dict[str, Any]]:
        report = (await api.get("/v1/reports/integrations", params={"window_hours": 1})).json()
        hubspot = next((p for p in report["providers"] if p["provider"] == "hubspot"), None)
        assert hubspot and hubspot["calls"]["rate_limited"] >= 1 and hubspot["syncs"]["ok"] >= 1, report
        return report, hubspot

    report, hubspot = await eventually(counted, interval=0.5)
    assert report["target_sync_success_rate"] == 0.99
    assert hubspot["sync_success_rate"] is not None and hubspot["meets_target"] is not None
    operations = {(o["operation"], o["kind"]) for o in hubspot["operations"]}
    assert ("crm.upsert_contact", "sync") in operations
    assert hubspot["call_latency_ms"]["max"] >= hubspot["call_latency_ms"]["mean"] > 0
    klaviyo = next(p for p in report["providers"] if p["provider"] == "klaviyo")
    assert klaviyo["calls"]["ok"] >= 2

    unauthorized = await httpx.AsyncClient(base_url=stack.settings.api_url).get("/v1/reports/integrations")
    assert unauthorized.status_code == 401
