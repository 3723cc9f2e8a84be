"""One trace from the HTTP request, through the outbox and the signal, into the workflow, its
activity and the activity's HTTP call to the platform. In process, with an in-memory exporter,
against the stack's Temporal, PostgreSQL (a database of its own) and sandbox."""

import asyncio
import uuid

import asyncpg
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from temporalio.worker import Worker

from api.app import create_app
from devstack.stack import DevStack
from routing.dispatcher import OutboxDispatcher
from runtime.availability import TemporalAvailability
from runtime.heartbeat import keep_alive_options
from runtime.temporal import connect
from store.db import create_engine, session_factory
from store.migrate import upgrade
from store.repository import LeadStore
from tests.helpers.e2e import demo_form, wait_for_calls
from tests.helpers.waiting import eventually
from workers.main import build_activities
from workers.registry import WORKFLOWS

pytestmark = pytest.mark.e2e


async def test_one_trace_from_request_to_platform_call(stack: DevStack):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    database = f"trace_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(
        host="127.0.0.1", port=stack.settings.pg_port, user="postgres", database="postgres"
    )
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    url = stack.database_url.rsplit("/", 1)[0] + f"/{database}"
    await asyncio.to_thread(upgrade, url)
    settings = stack.settings.model_copy(
        update={
            "database_url": url,
            "temporal_task_queue": f"trace-{uuid.uuid4().hex[:6]}",
            "api_key": SecretStr("k"),
        }
    )

    app = create_app(settings, api_key="k")
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    client = await connect(settings)
    dispatcher = OutboxDispatcher(
        client, sessions, TemporalAvailability(client), task_queue=settings.temporal_task_queue
    )
    email = f"traced.{uuid.uuid4().hex[:8]}@example-corp.com"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://api",
            headers={"Authorization": "Bearer k"},
        ) as api,
        httpx.AsyncClient(timeout=10) as http,
        httpx.AsyncClient(base_url=stack.settings.sandbox_url) as sandbox,
        Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=WORKFLOWS,
            activities=build_activities(settings, http, LeadStore(sessions)),
            **keep_alive_options(),
        ),
    ):
        response = await api.post("/v1/forms/demo/submissions", json=demo_form(email))
        assert response.status_code == 202
        assert await dispatcher.dispatch_once() == 1
        await wait_for_calls(sandbox, email, lambda calls: len({c["path"] for c in calls}) >= 3)

        def activities_ended() -> None:
            ended = {s.name for s in exporter.get_finished_spans()}
            assert {"RunActivity:crm.upsert_contact", "RunActivity:email.enroll_welcome"} <= ended, ended

        # The platforms answered; the activities' spans end as they return.
        await eventually(activities_ended, timeout=10)
    await engine.dispose()
    provider.force_flush()

    spans = exporter.get_finished_spans()
    request = next(
        s for s in spans if s.name.startswith("POST /v1/forms/{form_id}/submissions") and s.parent is None
    )
    in_trace = [s for s in spans if s.context.trace_id == request.context.trace_id]
    names = {s.name for s in in_trace}
    assert any(n.startswith("route events to lead-") for n in names), names
    assert "SignalWithStartWorkflow:LeadJourney" in names, names
    assert "RunWorkflow:LeadJourney" in names, names
    assert "RunActivity:crm.upsert_contact" in names and "RunActivity:email.enroll_welcome" in names, names
    platform_calls = [
        s
        for s in in_trace
        if s.kind == trace.SpanKind.CLIENT
        and "batch/upsert"
        in str((s.attributes or {}).get("url.full", (s.attributes or {}).get("http.url", "")))
    ]
    assert platform_calls, f"no HTTP client span to HubSpot in the trace: {names}"
