"""Forms: submissions and abandonments from servers (an ingest key) and from the pages of a
site (a browser key, cross-origin, with `forms.js` or a page's own code), the definition a page
renders, and the script that renders it.

A browser's post passes the bot check first (domain/webforms.py): a bot is answered as if its
post were accepted, and nothing is recorded. The field-level 422 holds for everyone.
"""

from __future__ import annotations

import html
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import Counter

from api.auth import Principal
from api.context import AppContext, context
from domain.consent import CONFIRMED_SOURCE, TokenError, confirmed_submission
from domain.events import EventType, IncomingEvent, LeadEvent, Touch
from domain.forms import (
    PROFILE_FIELDS,
    FieldError,
    FormDefinition,
    NormalizedSubmission,
    validate_partial,
    validate_submission,
)
from domain.ids import email_hash, lead_id_for_email, lead_workflow_id
from domain.webforms import (
    FormPage,
    bot_reason,
    form_page,
    without_bot_fields,
)

router = APIRouter(tags=["forms"])
FORMS_JS = Path(__file__).resolve().parents[1] / "static" / "forms.js"
MAX_FORM_BYTES = 64 * 1024

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
BOT_POSTS = Counter(
    "journeys_form_bot_posts",
    "Form posts from pages answered as accepted and not recorded (bot check)",
    ["form"],
)
EXAMPLE_PAGE = form_page(
    FormDefinition(form_id="demo", name="Request a demo"),
    now=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
    secret=b"example",
).model_dump(mode="json")
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


def _body_schema(example: dict[str, Any]) -> dict[str, Any]:
    """Forms take JSON as `application/json`, or as `text/plain` (what `sendBeacon` can send
    without a preflight)."""
    schema = {"type": "object", "additionalProperties": True}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema, "example": example},
                "text/plain": {"schema": {"type": "string"}, "example": json.dumps(example)},
            },
        }
    }


async def _fields(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise HTTPException(status_code=413, detail=f"a form is at most {MAX_FORM_BYTES // 1024} KB")
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(
            status_code=422, detail=[{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}]
        ) from exc
    if not isinstance(parsed, dict):
        raise HTTPException(
            status_code=422, detail=[{"loc": ["body"], "msg": "must be a JSON object", "type": "type_error"}]
        )
    return parsed


def _looks_like_a_bot(
    ctx: AppContext, principal: Principal, form: FormDefinition, fields: dict[str, Any]
) -> bool:
    if not principal.is_browser:
        return False  # a server's own form handler: its visitors passed its own checks
    reason = bot_reason(
        form.form_id,
        fields,
        now=datetime.now(UTC),
        secret=ctx.auth.form_secret,
        min_fill=ctx.forms.page(form.form_id).min_fill,
    )
    if reason is not None:
        BOT_POSTS.labels(form.form_id).inc()
    return reason is not None


def _as_if_accepted(fields: dict[str, Any], *, submission: bool) -> JSONResponse:
    """What an accepted post answers, for a bot: it learns nothing, and nothing was recorded."""
    email = fields.get("email")
    lead_id = lead_id_for_email(email) if isinstance(email, str) and "@" in email else str(uuid.uuid4())
    body: dict[str, Any] = {"lead_id": lead_id, "duplicate": False}
    if submission:
        body |= {"workflow_id": lead_workflow_id(lead_id), "submission_id": str(uuid.uuid4())}
    else:
        body["event_id"] = str(uuid.uuid4())
    return JSONResponse(body, status_code=202)


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
    openapi_extra=_body_schema(EXAMPLE_FORM),
)
async def submit_form(
    form_id: str,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ctx: AppContext = Depends(context),
) -> JSONResponse:
    principal = await ctx.auth.require(request, "browser")
    form = _form(ctx, form_id)
    fields = await _fields(request)
    if _looks_like_a_bot(ctx, principal, form, fields):
        return _as_if_accepted(fields, submission=True)
    submission, errors = validate_submission(form, without_bot_fields(fields))
    if submission is None:
        return _field_errors(errors)
    submission_id = str(uuid.uuid4())
    pending = form.double_opt_in and submission.consent
    fields_json = submission.model_dump(mode="json")
    event = _form_event(
        form,
        EventType.FORM_SUBMITTED,
        submission,
        event_id=submission_id,
        idempotency_key=idempotency_key,
        properties={
            "form_id": form_id,
            "lead_source": submission.lead_source,
            **submission.custom_fields,
            # Double opt-in: the consent is asked for by email and counts once confirmed.
            **({"consent_requested": True} if pending else {}),
        },
        profile_fields=PROFILE_FIELDS,
        payload=fields_json,
        submission_id=submission_id,
        consent=submission.consent and not pending,
        welcome_list=form.welcome_list,
    )
    event.consent = submission.consent and not pending
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
    openapi_extra=_body_schema({"email": "ada@example-corp.com", "company": "Example Corp"}),
)
async def abandon_form(
    form_id: str,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ctx: AppContext = Depends(context),
) -> JSONResponse:
    principal = await ctx.auth.require(request, "browser")
    form = _form(ctx, form_id)
    fields = await _fields(request)
    if _looks_like_a_bot(ctx, principal, form, fields):
        return _as_if_accepted(fields, submission=False)
    partial, errors = validate_partial(form, without_bot_fields(fields))
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


@router.get(
    "/v1/forms/{form_id}",
    summary="A form's definition, for a page to render: fields, required rules, consent text, bot check",
    response_model=FormPage,
    responses={
        200: {"content": {"application/json": {"example": EXAMPLE_PAGE}}},
        404: {"description": "unknown form"},
    },
)
async def form_definition(form_id: str, request: Request, ctx: AppContext = Depends(context)) -> FormPage:
    await ctx.auth.require(request, "browser")
    form = _form(ctx, form_id)
    page = ctx.forms.page(form_id)
    return form_page(
        form,
        now=datetime.now(UTC),
        secret=ctx.auth.form_secret,
        consent_text=page.consent_text,
        min_fill=page.min_fill,
        labels=page.labels,
    )


@router.get("/js/forms.js", include_in_schema=False)
async def forms_script() -> Response:
    """The embeddable form script (plain JavaScript, no build step); see docs/website.md."""
    return Response(
        FORMS_JS.read_bytes(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


CONFIRMED_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
    "<body style='font-family:system-ui;max-width:32rem;margin:4rem auto'><h1>{title}</h1><p>{text}</p>"
)


@router.get(
    "/v1/consent/confirm",
    summary="Double opt-in: the person confirms the consent a form asked for (the link in their email)",
    responses={
        200: {
            "content": {"text/html": {"example": "<!doctype html>...<h1>You are subscribed</h1>..."}},
            "description": "confirmed (again: still confirmed)",
        },
        400: {"description": "not a confirmation link, altered, or expired"},
        404: {"description": "the submission is gone (the person was erased)"},
    },
)
async def confirm_consent(
    token: Annotated[str, Query(max_length=200)],
    ctx: AppContext = Depends(context),
) -> HTMLResponse:
    """No key: the person clicks it from their mailbox. The token is the engine's own (an HMAC
    under `JOURNEYS_CONSENT_LINK_SECRET`), so the link confirms only the submission it was sent for."""
    secret = ctx.settings.consent_link_secret.get_secret_value()
    try:
        submission_id = confirmed_submission(secret, token, int(time.time()))
    except TokenError as exc:
        page = CONFIRMED_PAGE.format(title="This link does not work", text=html.escape(str(exc)))
        return HTMLResponse(page, status_code=400)
    found = await ctx.leads.get_submission(submission_id)
    if found is None or found[0].email is None:
        page = CONFIRMED_PAGE.format(title="Nothing to confirm", text="This sign-up is no longer on record.")
        return HTMLResponse(page, status_code=404)
    lead, submission = found
    address = str(lead.email)
    form = ctx.forms.get(submission.form_id)
    now = datetime.now(UTC)
    event = IncomingEvent(
        source=f"consent:{CONFIRMED_SOURCE}",
        # One confirmation per submission: a second click is the same event.
        message_id=submission_id,
        lead_event=LeadEvent(
            event_id=str(uuid.uuid4()),
            type=EventType.CONSENT_CONFIRMED,
            source=CONFIRMED_SOURCE,
            occurred_at=now,
            name=form.name if form else submission.form_id,
            form_id=submission.form_id,
            submission_id=submission_id,
            consent=True,
            welcome_list=form.welcome_list if form else None,
            email_hash=email_hash(address),
        ),
        received_at=now,
        payload={"submission_id": submission_id},
        email=address,
        consent=True,
    )
    await ctx.ingest([event])
    page = CONFIRMED_PAGE.format(
        title="You are subscribed", text="Thank you: your subscription is confirmed."
    )
    return HTMLResponse(page)
