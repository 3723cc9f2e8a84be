from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from api.context import AppContext, context
from domain.events import EventType, IncomingEvent, LeadEvent, Touch
from domain.forms import (
    PROFILE_FIELDS,
    FieldError,
    FormDefinition,
    NormalizedSubmission,
    validate_partial,
    validate_submission,
)
from domain.ids import email_hash, lead_workflow_id

router = APIRouter(tags=["forms"])

EXAMPLE_FORM = {
    "email": "ada@example-corp.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Example Corp",
    "job_title": "VP Engineering",
    "phone": "+44 20 7946 0958",
    "lead_source": "webinar",
    "utm_source": "linkedin",
    "utm_medium": "paid_social",
    "utm_campaign": "q4-launch",
    "consent": True,
    "anonymous_id": "a-5b1c9e",
}
FIELD_ERRORS = {
    "description": "field-level errors; nothing was recorded",
    "content": {
        "application/json": {
            "example": {
                "detail": [
                    {"loc": ["body", "company"], "msg": "is required on a B2B form", "type": "missing"},
                    {"loc": ["body", "phone"], "msg": "is not a valid phone number", "type": "invalid_phone"},
                ]
            }
        }
    },
}


def _form(ctx: AppContext, form_id: str) -> FormDefinition:
    form = ctx.forms.get(form_id)
    if form is None:
        raise HTTPException(status_code=404, detail=f"unknown form {form_id!r}")
    return form


def _field_errors(errors: list[FieldError]) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": ["body", e.field], "msg": e.message, "type": e.type} for e in errors]},
        status_code=422,
    )


def _form_event(
    form: FormDefinition,
    kind: EventType,
    fields: NormalizedSubmission,
    *,
    event_id: str,
    idempotency_key: str | None,
    properties: dict[str, Any],
    profile_fields: tuple[str, ...],
    payload: dict[str, Any],
    **lead_event: Any,
) -> IncomingEvent:
    """A form's event: deduped on the client's Idempotency-Key, else unique."""
    now = datetime.now(UTC)
    return IncomingEvent(
        source=f"form:{form.form_id}",
        message_id=idempotency_key or event_id,
        lead_event=LeadEvent(
            event_id=event_id,
            type=kind,
            source="form",
            occurred_at=now,
            name=form.name,
            properties=properties,
            touch=_touch(fields),
            form_id=form.form_id,
            email_hash=email_hash(fields.email),
            **lead_event,
        ),
        received_at=now,
        payload=payload,
        anonymous_id=fields.anonymous_id,
        email=fields.email,
        profile={name: getattr(fields, name) for name in profile_fields},
    )


def _touch(submission: NormalizedSubmission) -> Touch:
    return Touch(source=submission.utm_source, medium=submission.utm_medium, campaign=submission.utm_campaign)


@router.post(
    "/v1/forms/{form_id}/submissions",
    status_code=202,
    summary="Submit a form: validated, recorded durably, routed to the lead's journey",
    responses={
        202: {
            "content": {
                "application/json": {
                    "example": {
                        "lead_id": "830805f1-5d16-5e3a-9b1c-7fc0a10c9134",
                        "workflow_id": "lead-830805f1-5d16-5e3a-9b1c-7fc0a10c9134",
                        "submission_id": "7740fe24-28e8-48cc-966a-b7ce132c8e21",
                        "duplicate": False,
                    }
                }
            }
        },
        404: {"description": "unknown form"},
        422: FIELD_ERRORS,
    },
)
async def submit_form(
    form_id: str,
    request: Request,
    fields: Annotated[dict[str, Any], Body(examples=[EXAMPLE_FORM])],
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ctx: AppContext = Depends(context),
) -> JSONResponse:
    await ctx.auth.require(request, "ingest")
    form = _form(ctx, form_id)
    submission, errors = validate_submission(form, fields)
    if submission is None:
        return _field_errors(errors)
    submission_id = str(uuid.uuid4())
    fields_json = submission.model_dump(mode="json")
    event = _form_event(
        form,
        EventType.FORM_SUBMITTED,
        submission,
        event_id=submission_id,
        idempotency_key=idempotency_key,
        properties={"form_id": form_id, "lead_source": submission.lead_source, **submission.custom_fields},
        profile_fields=PROFILE_FIELDS,
        payload=fields_json,
        submission_id=submission_id,
        consent=submission.consent,
        welcome_list=form.welcome_list,
    )
    event.consent = submission.consent
    event.submission = {
        "submission_id": submission_id,
        "form_id": form_id,
        "idempotency_key": idempotency_key,
        "fields": fields_json,
    }
    (result,) = await ctx.ingest([event])
    assert result.lead_id is not None
    return JSONResponse(
        {
            "lead_id": result.lead_id,
            "workflow_id": lead_workflow_id(result.lead_id),
            "submission_id": result.event_id,
            "duplicate": result.duplicate,
        },
        status_code=202,
    )


@router.post(
    "/v1/forms/{form_id}/abandonments",
    status_code=202,
    summary="Record a partly filled form that carries an email, for the recovery journey",
    responses={404: {"description": "unknown form"}, 422: FIELD_ERRORS},
)
async def abandon_form(
    form_id: str,
    request: Request,
    fields: Annotated[
        dict[str, Any], Body(examples=[{"email": "ada@example-corp.com", "company": "Example Corp"}])
    ],
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ctx: AppContext = Depends(context),
) -> JSONResponse:
    await ctx.auth.require(request, "ingest")
    form = _form(ctx, form_id)
    partial, errors = validate_partial(form, fields)
    if partial is None:
        return _field_errors(errors)
    completed = sorted(k for k, v in partial.model_dump().items() if v not in (None, False, {}))
    event = _form_event(
        form,
        EventType.FORM_ABANDONED,
        partial,
        event_id=str(uuid.uuid4()),
        idempotency_key=idempotency_key,
        properties={"form_id": form_id, "fields_completed": completed},
        # A half-filled form does not (re)attribute the lead.
        profile_fields=tuple(f for f in PROFILE_FIELDS if f != "lead_source"),
        payload=partial.model_dump(mode="json"),
    )
    (result,) = await ctx.ingest([event])
    assert result.lead_id is not None
    return JSONResponse(
        {"lead_id": result.lead_id, "event_id": result.event_id, "duplicate": result.duplicate},
        status_code=202,
    )
