"""The sandbox: answers on each platform's real paths under `/{provider}/...`.

`GET /_calls` is the call log (JSON) and `GET /` the same as a page a person reads;
`PUT /_faults/{provider}` injects errors, 429s, latency and held answers; `POST /_reset` clears
the calls, faults and records, keeping only the accounts' configuration (registered webhooks) and
the id counters (no id is handed out twice). With a state folder, calls and platform records
survive restarts. This package imports nothing of the product's: it stands in for the outside
world.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from sandbox.calllog import render_call_log
from sandbox.core import ENGAGEMENT, HANDLERS, Faults, ProviderHandler, SandboxState, now_iso
from sandbox.salesforce import MergeError, merge_records

__all__ = ["Faults", "create_app"]

# Each module registers its provider's handler when imported.
PROVIDER_MODULES = (
    "hubspot",
    "salesforce",
    "klaviyo",
    "kit",
    "slack",
    "google_calendar",
    "ga4",
    "meta",
    "linkedin",
    "webhook",
    "enrichment",
)
for _module in PROVIDER_MODULES:
    importlib.import_module(f"sandbox.{_module}")

LOGGED_HEADERS = (
    "idempotency-key",
    "content-type",
    "revision",
    "accept",
    "user-agent",
    "traceparent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)


class LinkedInLeadSubmission(BaseModel):
    form_id: str = "123456"
    campaign: str = "urn:li:sponsoredCampaign:600001"
    answers: dict[str, str]


class Engagement(BaseModel):
    email: str
    action: Literal["open", "click", "unsubscribe", "bounce", "spam"]
    provider: str | None = None


def not_an_email_platform(provider: str) -> JSONResponse:
    return JSONResponse(
        {"error": f"provider: {provider!r} is not an email platform here (one of {sorted(ENGAGEMENT)})"},
        status_code=422,
    )


class CampaignSend(BaseModel):
    email: str
    provider: str = "klaviyo"


class LeadAdSubmission(BaseModel):
    page_id: str = "516540199134611"
    form_id: str = "551111744595541"
    ad_id: str = "6021234567890"
    campaign_id: str = "6021234567000"
    answers: dict[str, str]


def create_app(state_dir: Path | None = None, seed: int | None = None) -> FastAPI:
    state = SandboxState(state_dir, seed)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.flush_records()  # the last second's writes, on a clean stop

    app = FastAPI(
        title="journeys platform sandbox", docs_url="/_docs", openapi_url="/_openapi.json", lifespan=lifespan
    )
    app.state.sandbox = state

    @app.get("/_calls")
    async def list_calls(provider: str | None = None, since: int = 0) -> dict[str, Any]:
        calls = [
            c for c in state.calls if c["seq"] > since and (provider is None or c["provider"] == provider)
        ]
        return {"calls": calls}

    @app.get("/", response_class=HTMLResponse)
    async def call_log_page(provider: str | None = None, limit: int = 200) -> HTMLResponse:
        """The call log for a person: newest first, each write with what it did."""
        calls = [c for c in state.calls if provider is None or c["provider"] == provider]
        return HTMLResponse(render_call_log(calls[-limit:][::-1], sorted(HANDLERS), provider))

    @app.get("/_faults")
    async def get_faults() -> dict[str, Any]:
        return {p: f.model_dump() for p, f in state.faults.items()}

    @app.put("/_faults/{provider}")
    async def set_faults(provider: str, faults: Faults) -> Response:
        if provider not in HANDLERS:
            return JSONResponse({"error": f"unknown provider {provider!r}"}, status_code=404)
        state.faults[provider] = faults
        return JSONResponse(faults.model_dump())

    @app.post("/_reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    @app.post("/_meta/leadgen")
    async def new_lead_ad(lead: LeadAdSubmission) -> dict[str, Any]:
        """Someone submits a Lead Ads form: the lead is stored for the Graph API, and the answer
        carries the Page webhook Meta would send for it."""
        leadgen_id = str(state.random.randrange(10**14, 10**15))
        created = datetime.now(UTC)
        state.table("facebook_leads")[leadgen_id] = {
            "id": leadgen_id,
            "created_time": created.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "form_id": lead.form_id,
            "ad_id": lead.ad_id,
            "campaign_id": lead.campaign_id,
            "is_organic": False,
            "platform": "fb",
            "field_data": [{"name": k, "values": [v]} for k, v in lead.answers.items()],
        }
        state.save_records()
        change = {
            "field": "leadgen",
            "value": {
                "ad_id": lead.ad_id,
                "form_id": lead.form_id,
                "leadgen_id": leadgen_id,
                "created_time": int(created.timestamp()),
                "page_id": lead.page_id,
                "adgroup_id": lead.ad_id,
            },
        }
        webhook = {
            "object": "page",
            "entry": [{"id": lead.page_id, "time": int(created.timestamp()), "changes": [change]}],
        }
        return {"leadgen_id": leadgen_id, "webhook": webhook}

    @app.post("/_linkedin/leads")
    async def new_linkedin_lead(lead: LinkedInLeadSubmission) -> dict[str, Any]:
        """Someone submits a LinkedIn Lead Gen form: the form and the response are stored for the
        API, and the answer carries the notification LinkedIn would send."""
        form_id = lead.form_id
        fields = sorted(lead.answers)
        questions = [
            {"questionId": n + 1, "name": field.lower(), "predefinedField": field}
            for n, field in enumerate(fields)
        ]
        state.table("linkedin_forms")[form_id] = {"id": int(form_id), "content": {"questions": questions}}
        response_id = str(uuid.uuid4())
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        state.table("linkedin_responses")[response_id] = {
            "id": response_id,
            "submittedAt": now_ms,
            "testLead": False,
            "versionedLeadGenFormUrn": f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form_id},1)",
            "leadMetadata": {"sponsoredLeadMetadata": {"campaign": lead.campaign}},
            "formResponse": {
                "answers": [
                    {
                        "questionId": n + 1,
                        "answerDetails": {"textQuestionAnswer": {"answer": lead.answers[field]}},
                    }
                    for n, field in enumerate(fields)
                ]
            },
        }
        state.save_records()
        notification = {
            "type": "LEAD_ACTION",
            "leadAction": "CREATED",
            "occurredAt": now_ms,
            "leadType": "SPONSORED",
            "leadGenFormResponse": f"urn:li:leadGenFormResponse:{response_id}",
            "leadGenForm": f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form_id},1)",
            "owner": {"sponsoredAccount": "urn:li:sponsoredAccount:507000001"},
        }
        return {"response_id": response_id, "notification": notification}

    @app.post("/_engagement")
    async def engagement(action: Engagement) -> Response:
        """A recipient acts on the latest message sent to their address (by `provider`, or by
        whichever email platform sent last; a campaign's message when none was sent yet): the
        platform then reports it as the real one does (its events API, or its webhook)."""
        if action.provider is not None and action.provider not in ENGAGEMENT:
            return not_an_email_platform(action.provider)
        candidates = [action.provider] if action.provider else sorted(ENGAGEMENT)
        sent = {name: ENGAGEMENT[name].last_sent_at(state, action.email) or "" for name in candidates}
        # The platform that sent last; with none, the first that knows the address.
        refusals = []
        for name in sorted(candidates, key=lambda n: sent[n], reverse=True):
            try:
                reported = await asyncio.to_thread(
                    ENGAGEMENT[name].engage, state, action.email, action.action
                )
                break
            except LookupError as exc:
                refusals.append(str(exc))
        else:
            return JSONResponse({"error": "; ".join(refusals)}, status_code=404)
        return JSONResponse(reported)

    @app.post("/_campaign")
    async def campaign(send: CampaignSend) -> Response:
        """A marketer sends a campaign to `email` from the email platform's own UI (not through the
        engine): the platform records the message, and engagement with it reads as the platform's."""
        if send.provider not in ENGAGEMENT:
            return not_an_email_platform(send.provider)
        try:
            sent = await asyncio.to_thread(ENGAGEMENT[send.provider].send_campaign, state, send.email)
        except LookupError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse(sent)

    @app.post("/_salesforce/merge")
    async def salesforce_merge(request: Request) -> Response:
        """A Salesforce user merges duplicate leads or contacts in the UI (the REST API has no
        merge): `{"sobject", "master_id", "merged_ids", "username"}`; a request Salesforce would
        refuse is a 400 naming its field, and changes nothing."""
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return JSONResponse({"error": "body: not JSON", "field": "body"}, status_code=400)
        try:
            merged = await asyncio.to_thread(merge_records, state, body)
        except MergeError as exc:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        return JSONResponse(merged)

    @app.get("/_health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/{provider}/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def platform(provider: str, path: str, request: Request) -> Response:
        handler_class = HANDLERS.get(provider)
        if handler_class is None:
            return JSONResponse({"error": f"unknown provider {provider!r}"}, status_code=404)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        call: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "provider": provider,
            "method": request.method,
            "path": "/" + path,
            "query": str(request.url.query),
            "headers": {k: v for k, v in request.headers.items() if k.lower() in LOGGED_HEADERS},
            "idempotency_key": write_key(request.headers, body),
            "body": body,
            "time": now_iso(),
        }
        faults = state.faults_for(provider)
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        timeout = _injected_timeout(state, faults)
        if timeout is not None:
            call["timeout"] = timeout
        if timeout == "before":
            await asyncio.sleep(faults.timeout_ms / 1000)
            if await request.is_disconnected():
                # The client gave up before the platform got to its request: nothing is done (as
                # the fault promises), so a retry that found no earlier write is the only write.
                call.update(status=504, fault=True)
                state.log(call)
                return JSONResponse({"error": "the client went away before the request was served"}, 504)
        injected = _injected_fault(state, handler_class, faults)
        if injected is not None:
            call.update(status=injected.status_code, fault=True)
            state.log(call)
            return injected
        handler = handler_class(state, request, call["path"], body, call)
        answered = handler.answer()
        response = await answered if inspect.isawaitable(answered) else answered
        call.update(status=response.status_code, fault=False)
        state.log(call)
        # Only writes (calls that changed a record) are held: token fetches and reads pass.
        matches = faults.hold_matching is None or faults.hold_matching.encode() in raw
        if call.get("effect") and response.status_code < 300 and matches:
            held_ms = _take_hold(faults, state)
            if held_ms:
                await asyncio.sleep(held_ms / 1000)
        if timeout == "after":
            await asyncio.sleep(faults.timeout_ms / 1000)
        return response

    return app


def write_key(headers: Any, body: Any) -> str | None:
    """The key a client made its write idempotent with, wherever its platform carries it: the
    `Idempotency-Key` header, Standard Webhooks' `webhook-id`, Slack's message metadata, Google's
    private extended property, Salesforce's external-key field. The log shows it per call, so a
    test can tell one write retried from two writes."""
    for header in ("idempotency-key", "webhook-id"):
        if headers.get(header):
            return str(headers[header])
    if not isinstance(body, dict):
        return None
    metadata = body.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            metadata = None
    candidates = (
        _dig(metadata, "event_payload", "idempotency_key"),
        _dig(body, "extendedProperties", "private", "journeysIdempotencyKey"),
        body.get("Journeys_Idempotency_Key__c"),
    )
    return next((str(c) for c in candidates if c), None)


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _injected_timeout(state: SandboxState, faults: Faults) -> str | None:
    if not faults.timeout_rate:
        return None
    with state.lock:
        if state.random.random() >= faults.timeout_rate:
            return None
        return state.random.choice(["before", "after"])


def _take_hold(faults: Faults, state: SandboxState) -> int:
    with state.lock:
        held_ms = faults.hold_after_write_ms
        if held_ms and faults.hold_next > 0:
            faults.hold_next -= 1
            if faults.hold_next == 0:
                faults.hold_after_write_ms = 0
        return held_ms


def _injected_fault(
    state: SandboxState, handler_class: type[ProviderHandler], faults: Faults
) -> Response | None:
    with state.lock:
        if faults.fail_next > 0:
            faults.fail_next -= 1
            status = faults.fail_status
        elif state.random.random() < faults.rate_limit_rate:
            status = 429
        elif state.random.random() < faults.error_rate:
            status = state.random.choice([500, 502, 503])
        else:
            return None
    return handler_class.fault_response(status, faults.retry_after_seconds)
