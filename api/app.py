"""The FastAPI app. 2xx on ingestion means the event is durably recorded in PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Authenticator, KeyGate
from api.context import UNAVAILABLE_RETRY_AFTER, AppContext
from api.cors import SiteCors
from api.forms import FormCatalog
from api.funnel import count_journeys
from api.limits import RequestSizeLimit
from api.routes import (
    admin,
    codec,
    customers,
    experiments,
    forms,
    handoffs,
    health,
    journeys,
    leads,
    measure,
    reports,
    roster,
    segment,
    sequences,
    webhooks,
)
from platforms.facebook import FacebookGraphClient
from platforms.linkedin import LinkedInClient
from runtime.availability import TemporalAvailability
from runtime.metrics import API_REQUEST_SECONDS
from runtime.settings import Settings
from runtime.temporal import connect
from store.db import create_engine, session_factory
from store.ingest import IngestStore
from store.keys import KeyStore
from store.repository import LeadStore

log = logging.getLogger("journeys.api")

DESCRIPTION = """
Durable B2B marketing and sales journeys on Temporal.

Authenticate with `Authorization: Bearer <key>`; Segment endpoints also take the key as
Segment's write key (Basic auth, key as user name, empty password, or `writeKey` in the body).
Ingest keys may only send events; admin keys (and `JOURNEYS_API_KEY`) may do everything.
Every accepted event is durably recorded before the answer; retries with the same `messageId`
(Segment) or `Idempotency-Key` (forms) are recorded once.
"""


async def _watch_loop_lag(every: float = 0.05, warn_after: float = 0.2) -> None:
    """Logs when the event loop was blocked: every request in flight waited that long."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(every)
        lag = loop.time() - started - every
        if lag > warn_after:
            log.warning("event loop blocked for %.0f ms", lag * 1000)


class ServerTiming:
    """The time the API spent, apart from the network and the client (a `Server-Timing` header and
    a histogram per route): what to compare first when a client sees slow answers. Plain ASGI, as
    the decorator form runs every request in a task and streams of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                spent = time.perf_counter() - started
                headers = MutableHeaders(scope=message)
                headers.append("Server-Timing", f"app;dur={spent * 1000:.1f}")
                route = scope.get("route")
                API_REQUEST_SECONDS.labels(
                    scope["method"], getattr(route, "path", "unmatched"), str(message["status"])
                ).observe(spent)
            await send(message)

        await self.app(scope, receive, timed_send)


def create_app(settings: Settings, *, api_key: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # No ping before each transaction (a round trip per request): the ingest store retries
        # a transaction whose connection died with a restarted PostgreSQL.
        engine = create_engine(settings.effective_database_url, pool_size=20, pre_ping=False)
        sessions = session_factory(engine)
        # Lazy: the API starts, and answers 503, even while Temporal is still coming up.
        client = await connect(settings, lazy=True)
        availability = TemporalAvailability(client)
        http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0))
        keys = KeyStore(sessions)
        ingest_store = IngestStore(sessions, settings.effective_database_url)
        app.state.temporal = client
        app.state.ctx = AppContext(
            settings=settings,
            leads=LeadStore(sessions),
            sessions=sessions,
            ingest_store=ingest_store,
            keys=keys,
            auth=Authenticator(keys, api_key),
            forms=FormCatalog(settings.forms_file),
            availability=availability,
            facebook=FacebookGraphClient(
                http,
                base_url=settings.facebook_url,
                version=settings.facebook_graph_version,
                access_token=settings.facebook_page_access_token.get_secret_value(),
            ),
            linkedin=LinkedInClient(
                http,
                base_url=settings.linkedin_url,
                token=settings.linkedin_access_token.get_secret_value(),
                version=settings.linkedin_version,
            ),
        )
        tasks = [
            asyncio.create_task(availability.watch(), name="temporal-availability"),
            asyncio.create_task(_watch_loop_lag(), name="loop-lag"),
        ]
        # Everything built so far lives as long as the process: keep it out of the collector's
        # way, and collect less often. Full collections over a large heap were stalling every
        # request in flight for a few hundred milliseconds under load (docs/performance.md).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task
            await ingest_store.close()
            await http.aclose()
            await engine.dispose()

    app = FastAPI(title="journeys", version="0.2.0", description=DESCRIPTION, lifespan=lifespan)

    @app.exception_handler(SQLAlchemyError)
    async def database_unavailable(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        original = getattr(exc, "orig", None)
        sqlstate = str(getattr(original, "sqlstate", None) or "")
        if isinstance(exc, DataError) or sqlstate.startswith("22"):
            # PostgreSQL refused a value (a NUL character in text, a number out of range): the
            # input's fault, and the transaction rolled back whole.
            log.info("value refused by the database on %s: %s", request.url.path, original)
            return JSONResponse(
                {"detail": f"a value cannot be stored ({type(original).__name__}); nothing was recorded"},
                status_code=422,
            )
        log.error("database error on %s: %s", request.url.path, exc)
        return JSONResponse(
            {"detail": "the database is unavailable; nothing was recorded, retry later"},
            status_code=503,
            headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
        )

    @app.exception_handler(OSError)
    async def dependency_unreachable(request: Request, exc: OSError) -> JSONResponse:
        log.error("dependency unreachable on %s: %s", request.url.path, exc)
        return JSONResponse(
            {"detail": f"a dependency is unreachable ({type(exc).__name__}); retry later"},
            status_code=503,
            headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
        )

    app.add_middleware(KeyGate)
    app.add_middleware(RequestSizeLimit)
    # The sites of the browser keys on the paths a page may call; the Temporal UI on the codec.
    app.add_middleware(SiteCors, temporal_ui_origin=settings.temporal_ui_origin)

    app.add_middleware(ServerTiming)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics (admin key): events ingested, duplicates, 503s, request times",
        responses={
            200: {
                "content": {
                    "text/plain": {
                        "example": 'journeys_events_ingested_total{source="segment",type="track"} 42.0'
                    }
                }
            }
        },
    )
    async def metrics(request: Request) -> Response:
        await request.app.state.ctx.auth.require(request, "metrics:read")
        await count_journeys(request.app.state.temporal)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for module in (
        health,
        forms,
        segment,
        webhooks,
        leads,
        journeys,
        sequences,
        reports,
        measure,
        experiments,
        handoffs,
        customers,
        roster,
        admin,
        codec,
    ):
        app.include_router(module.router)
    # One span per request: the ASGI send/receive spans cost more than they tell.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,codec,metrics", exclude_spans=["receive", "send"]
    )
    return app
