"""The FastAPI app: forms in, leads out, health. 202 means the event is durable in PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from temporalio.client import Client
from temporalio.service import RPCError

from api.forms import FormCatalog
from api.outbox import deliver_and_mark, form_submitted_message, sweep_forever
from domain.forms import validate_submission
from domain.ids import email_hash, lead_workflow_id
from domain.lead import LEAD_STATE_QUERY, Attribution, FormSubmitted, LeadState, LeadWorkflowInput
from runtime.settings import Settings
from runtime.temporal import connect
from store.db import create_engine, session_factory
from store.repository import LeadStore, PendingMessage

log = logging.getLogger("journeys.api")
bearer = HTTPBearer(auto_error=False)
HEALTH_TIMEOUT = 2.0
QUERY_TIMEOUT = timedelta(seconds=5)


def create_app(settings: Settings, *, api_key: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.effective_database_url)
        app.state.store = LeadStore(session_factory(engine))
        # Lazy: the API starts, and answers 503 on health, even while Temporal is still coming up.
        app.state.temporal = await connect(settings, lazy=True)
        sweeper = asyncio.create_task(
            sweep_forever(
                app.state.temporal,
                settings.temporal_task_queue,
                app.state.store,
                settings.outbox_sweep_seconds,
            )
        )
        try:
            yield
        finally:
            sweeper.cancel()
            with suppress(asyncio.CancelledError):
                await sweeper
            await engine.dispose()

    app = FastAPI(
        title="journeys",
        version="0.1.0",
        description="Durable B2B marketing and sales journeys on Temporal.",
        lifespan=lifespan,
    )
    app.state.forms = FormCatalog(settings.forms_file)

    def authorized(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if credentials is None or not secrets.compare_digest(
            credentials.credentials.encode(), api_key.encode()
        ):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong API key: send `Authorization: Bearer <JOURNEYS_API_KEY>`",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def store_of(request: Request) -> LeadStore:
        store: LeadStore = request.app.state.store
        return store

    def temporal_of(request: Request) -> Client:
        client: Client = request.app.state.temporal
        return client

    @app.exception_handler(SQLAlchemyError)
    async def database_unavailable(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("database error on %s: %s", request.url.path, exc)
        return JSONResponse({"detail": "the database is unavailable; nothing was recorded"}, status_code=503)

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> JSONResponse:
        parts: dict[str, str] = {}

        async def check_postgres() -> None:
            try:
                await asyncio.wait_for(store_of(request).ping(), HEALTH_TIMEOUT)
                parts["postgres"] = "ok"
            except (TimeoutError, OSError, SQLAlchemyError) as exc:
                parts["postgres"] = f"unavailable: {type(exc).__name__}"

        async def check_temporal() -> None:
            try:
                ok = await asyncio.wait_for(
                    temporal_of(request).service_client.check_health(
                        timeout=timedelta(seconds=HEALTH_TIMEOUT)
                    ),
                    HEALTH_TIMEOUT + 0.5,
                )
                parts["temporal"] = "ok" if ok else "unavailable: not serving"
            except (TimeoutError, RPCError, RuntimeError, OSError) as exc:
                parts["temporal"] = f"unavailable: {type(exc).__name__}"

        await asyncio.gather(check_postgres(), check_temporal())
        healthy = all(v == "ok" for v in parts.values())
        failing = sorted(k for k, v in parts.items() if v != "ok")
        body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", "parts": parts}
        if failing:
            body["failing"] = failing
        return JSONResponse(body, status_code=200 if healthy else 503)

    @app.post(
        "/v1/forms/{form_id}/submissions",
        status_code=202,
        tags=["ingestion"],
        dependencies=[Depends(authorized)],
        responses={404: {"description": "unknown form"}, 422: {"description": "field-level errors"}},
    )
    async def submit_form(
        form_id: str,
        request: Request,
        fields: Annotated[dict[str, Any], Body(description="the form's fields, as JSON")],
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> JSONResponse:
        form = request.app.state.forms.get(form_id)
        if form is None:
            raise HTTPException(status_code=404, detail=f"unknown form {form_id!r}")
        submission, errors = validate_submission(form, fields)
        if submission is None:
            return JSONResponse(
                {"detail": [{"loc": ["body", e.field], "msg": e.message, "type": e.type} for e in errors]},
                status_code=422,
            )
        hashed = email_hash(submission.email)

        def outbox_for(lead_id: str, submission_id: str, received_at: Any) -> tuple[str, str, dict[str, Any]]:
            kind, payload = form_submitted_message(
                LeadWorkflowInput(lead_id=lead_id, email_hash=hashed),
                FormSubmitted(
                    submission_id=submission_id,
                    form_id=form_id,
                    submitted_at=received_at,
                    consent=submission.consent,
                    welcome_list=form.welcome_list,
                    attribution=Attribution(
                        lead_source=submission.lead_source,
                        utm_source=submission.utm_source,
                        utm_medium=submission.utm_medium,
                        utm_campaign=submission.utm_campaign,
                    ),
                ),
            )
            return lead_workflow_id(lead_id), kind, payload

        store = store_of(request)
        try:
            recorded = await store.record_submission(
                form_id, submission, idempotency_key=idempotency_key, build_outbox=outbox_for
            )
        except (OperationalError, DBAPIError, OSError) as exc:
            log.error("could not record a submission: %s", exc)
            return JSONResponse(
                {"detail": "the database is unavailable; nothing was recorded"}, status_code=503
            )
        workflow_id = lead_workflow_id(recorded.lead_id)
        routed = False
        if recorded.outbox_id is not None:
            kind, payload = outbox_for(recorded.lead_id, recorded.submission_id, recorded.received_at)[1:]
            routed = await deliver_and_mark(
                temporal_of(request),
                settings.temporal_task_queue,
                store,
                PendingMessage(recorded.outbox_id, workflow_id, kind, payload),
            )
        return JSONResponse(
            {
                "lead_id": recorded.lead_id,
                "workflow_id": workflow_id,
                "submission_id": recorded.submission_id,
                "duplicate": recorded.duplicate,
                "routed": routed or recorded.duplicate,
            },
            status_code=202,
        )

    @app.get("/v1/leads/{lead_id}", tags=["leads"], dependencies=[Depends(authorized)])
    async def get_lead(lead_id: str, request: Request) -> dict[str, Any]:
        store = store_of(request)
        lead = await store.get_lead(lead_id)
        if lead is None:
            raise HTTPException(status_code=404, detail=f"no lead {lead_id!r}")
        workflow_id = lead_workflow_id(lead_id)
        journey: dict[str, Any] | None = None
        journey_error: str | None = None
        try:
            state = (
                await temporal_of(request)
                .get_workflow_handle(workflow_id)
                .query(LEAD_STATE_QUERY, result_type=LeadState, rpc_timeout=QUERY_TIMEOUT)
            )
            journey = state.model_dump(mode="json", exclude={"seen_submission_ids"})
        except (RPCError, RuntimeError) as exc:
            journey_error = f"journey state unavailable: {exc}"
        return {
            "lead_id": lead.lead_id,
            "workflow_id": workflow_id,
            "profile": {
                "email": lead.email,
                "first_name": lead.first_name,
                "last_name": lead.last_name,
                "company": lead.company,
                "job_title": lead.job_title,
                "phone": lead.phone,
                "lead_source": lead.lead_source,
                "consent": lead.consent,
                "custom_fields": lead.custom_fields,
                "created_at": lead.created_at.isoformat(),
                "updated_at": lead.updated_at.isoformat(),
            },
            "submissions": await store.count_submissions(lead_id),
            "journey": journey,
            "journey_error": journey_error,
        }

    return app
