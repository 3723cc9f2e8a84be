"""What every route needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request
from sqlalchemy.exc import SQLAlchemyError

from api.auth import Authenticator
from api.forms import FormCatalog
from domain.events import IncomingEvent
from platforms.facebook import FacebookGraphClient
from platforms.linkedin import LinkedInClient
from runtime.availability import TemporalAvailability
from runtime.metrics import EVENTS_DUPLICATE, EVENTS_INGESTED, INGEST_UNAVAILABLE
from runtime.settings import Settings
from runtime.telemetry import current_trace_carrier
from store.db import SessionFactory
from store.ingest import IngestStore, RecordResult
from store.keys import KeyStore
from store.repository import LeadStore

UNAVAILABLE_RETRY_AFTER = "5"
NOTHING_RECORDED = "nothing was recorded; retry later"


@dataclass
class AppContext:
    settings: Settings
    leads: LeadStore
    ingest_store: IngestStore
    keys: KeyStore
    auth: Authenticator
    forms: FormCatalog
    availability: TemporalAvailability
    facebook: FacebookGraphClient
    linkedin: LinkedInClient
    sessions: SessionFactory

    async def ingest(self, events: list[IncomingEvent]) -> list[RecordResult]:
        """Records events durably and queues them for their journeys; 503 if that cannot be promised."""
        if not self.availability.available:
            INGEST_UNAVAILABLE.labels("temporal").inc()
            raise HTTPException(
                status_code=503,
                detail=f"Temporal is unavailable ({self.availability.reason}); {NOTHING_RECORDED}",
                headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
            )
        try:
            results = await self.ingest_store.record(events, trace=current_trace_carrier())
        except (SQLAlchemyError, OSError) as exc:
            INGEST_UNAVAILABLE.labels("postgres").inc()
            raise HTTPException(
                status_code=503,
                detail=f"the database is unavailable ({type(exc).__name__}); {NOTHING_RECORDED}",
                headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
            ) from exc
        for event, result in zip(events, results, strict=True):
            if result.duplicate:
                EVENTS_DUPLICATE.labels(event.source).inc()
            else:
                EVENTS_INGESTED.labels(event.source, event.lead_event.type.value).inc()
        return results


async def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
