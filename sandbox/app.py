"""The sandbox: answers on each platform's real paths under `/{provider}/...`.

`GET /_calls` is the call log; `PUT /_faults/{provider}` injects errors, 429s and latency;
`POST /_reset` clears both. With a state folder, calls and platform records survive restarts.
This module imports nothing of the product's: it stands in for the outside world.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

PROVIDERS = ("hubspot", "klaviyo", "facebook", "linkedin", "webhook")
LOGGED_HEADERS = ("idempotency-key", "content-type", "revision", "accept", "user-agent", "traceparent")


class LinkedInLeadSubmission(BaseModel):
    form_id: str = "123456"
    campaign: str = "urn:li:sponsoredCampaign:600001"
    answers: dict[str, str]


class LeadAdSubmission(BaseModel):
    page_id: str = "516540199134611"
    form_id: str = "551111744595541"
    ad_id: str = "6021234567890"
    campaign_id: str = "6021234567000"
    answers: dict[str, str]


class Faults(BaseModel):
    error_rate: float = Field(0.0, ge=0, le=1, description="share of calls answered 500..503")
    rate_limit_rate: float = Field(0.0, ge=0, le=1, description="share of calls answered 429")
    retry_after_seconds: float = Field(1.0, ge=0)
    latency_ms: int = Field(0, ge=0, le=120_000)
    fail_next: int = Field(0, ge=0, description="the next N calls fail with `fail_status`")
    fail_status: int = Field(503, ge=400, le=599)
    # A write is applied and logged, then the answer is held this long: a client timing out here has
    # had its write accepted without hearing so, the case exactly-once writes must survive.
    hold_after_write_ms: int = Field(0, ge=0, le=600_000)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SandboxState:
    def __init__(self, state_dir: Path | None, seed: int | None) -> None:
        self.state_dir = state_dir
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.faults: dict[str, Faults] = {p: Faults() for p in PROVIDERS}
        self.records: dict[str, dict[str, Any]] = {
            "hubspot_contacts": {},
            "klaviyo_profiles": {},
            "klaviyo_lists": {},
            "facebook_leads": {},
            "linkedin_forms": {},
            "linkedin_responses": {},
        }
        if state_dir:
            state_dir.mkdir(parents=True, exist_ok=True)
            calls_file = state_dir / "calls.jsonl"
            if calls_file.exists():
                self.calls = [
                    json.loads(line) for line in calls_file.read_text().splitlines() if line.strip()
                ]
            records_file = state_dir / "records.json"
            if records_file.exists():
                self.records.update(json.loads(records_file.read_text()))

    def log(self, call: dict[str, Any]) -> None:
        with self.lock:
            call["seq"] = len(self.calls) + 1
            self.calls.append(call)
            if self.state_dir:
                with (self.state_dir / "calls.jsonl").open("a") as f:
                    f.write(json.dumps(call) + "\n")

    def save_records(self) -> None:
        if self.state_dir:
            tmp = self.state_dir / "records.json.tmp"
            tmp.write_text(json.dumps(self.records))
            tmp.replace(self.state_dir / "records.json")

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults = {p: Faults() for p in PROVIDERS}
            for table in self.records.values():
                table.clear()
            if self.state_dir:
                (self.state_dir / "calls.jsonl").unlink(missing_ok=True)
            self.save_records()


def create_app(state_dir: Path | None = None, seed: int | None = None) -> FastAPI:
    app = FastAPI(title="journeys platform sandbox", docs_url="/_docs", openapi_url="/_openapi.json")
    state = SandboxState(state_dir, seed)
    app.state.sandbox = state

    @app.get("/_calls")
    async def list_calls(provider: str | None = None, since: int = 0) -> dict[str, Any]:
        calls = [
            c for c in state.calls if c["seq"] > since and (provider is None or c["provider"] == provider)
        ]
        return {"calls": calls}

    @app.get("/_faults")
    async def get_faults() -> dict[str, Any]:
        return {p: f.model_dump() for p, f in state.faults.items()}

    @app.put("/_faults/{provider}")
    async def set_faults(provider: str, faults: Faults) -> Response:
        if provider not in PROVIDERS:
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
        state.records["facebook_leads"][leadgen_id] = {
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
        state.records["linkedin_forms"][form_id] = {"id": int(form_id), "content": {"questions": questions}}
        response_id = str(uuid.uuid4())
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        state.records["linkedin_responses"][response_id] = {
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

    @app.get("/_health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/{provider}/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def platform(provider: str, path: str, request: Request) -> Response:
        if provider not in PROVIDERS:
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
            "idempotency_key": request.headers.get("idempotency-key"),
            "body": body,
            "time": _now(),
        }
        faults = state.faults[provider]
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        injected = _injected_fault(state, provider, faults)
        if injected is not None:
            call.update(status=injected.status_code, fault=True)
            state.log(call)
            return injected
        handler: HubSpot | Klaviyo | Facebook | LinkedIn | WebhookSink
        if provider == "webhook":
            handler = WebhookSink(state, request, call["path"], body)
        elif provider == "linkedin":
            handler = LinkedIn(state, request, call["path"], body)
        elif provider == "hubspot":
            handler = HubSpot(state, request, call["path"], body)
        elif provider == "klaviyo":
            handler = Klaviyo(state, request, call["path"], body)
        else:
            handler = Facebook(state, request, call["path"], body)
        response = handler.answer()
        call.update(status=response.status_code, fault=False)
        state.log(call)
        if faults.hold_after_write_ms and request.method != "GET" and response.status_code < 300:
            await asyncio.sleep(faults.hold_after_write_ms / 1000)
        return response

    return app


def _injected_fault(state: SandboxState, provider: str, faults: Faults) -> Response | None:
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
    headers = {"Retry-After": f"{faults.retry_after_seconds:g}"} if status == 429 else {}
    if provider == "hubspot":
        category = "RATE_LIMITS" if status == 429 else "INTERNAL_ERROR"
        payload: dict[str, Any] = {
            "status": "error",
            "message": "You have reached your secondly limit." if status == 429 else "internal error",
            "category": category,
            "correlationId": str(uuid.uuid4()),
        }
        headers.update(_hubspot_rate_headers())
    else:
        code = "throttled" if status == 429 else "error"
        payload = {
            "errors": [
                {"id": str(uuid.uuid4()), "status": status, "code": code, "title": code, "detail": code}
            ]
        }
    return JSONResponse(payload, status_code=status, headers=headers)


def _hubspot_rate_headers() -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "99",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }


class HubSpot:
    """CRM v3 contacts: `batch/upsert` by a unique property, create, read."""

    def __init__(self, state: SandboxState, request: Request, path: str, body: Any) -> None:
        self.state, self.request, self.path, self.body = state, request, path, body
        self.contacts: dict[str, Any] = state.records["hubspot_contacts"]

    def error(self, status: int, message: str, category: str) -> Response:
        return JSONResponse(
            {"status": "error", "message": message, "category": category, "correlationId": str(uuid.uuid4())},
            status_code=status,
            headers=_hubspot_rate_headers(),
        )

    def ok(self, payload: Any, status: int = 200) -> Response:
        return JSONResponse(payload, status_code=status, headers=_hubspot_rate_headers())

    def answer(self) -> Response:
        auth = self.request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            return self.error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
        method = self.request.method
        if method == "POST" and self.path == "/crm/v3/objects/contacts/batch/upsert":
            return self.batch_upsert()
        if method == "POST" and self.path == "/crm/v3/objects/contacts":
            return self.create()
        if method == "GET" and self.path.startswith("/crm/v3/objects/contacts/"):
            return self.read(self.path.rsplit("/", 1)[-1])
        return self.error(404, f"No route for {method} {self.path}", "OBJECT_NOT_FOUND")

    def _find(self, prop: str, value: str) -> dict[str, Any] | None:
        value = value.lower() if prop == "email" else value
        for contact in self.contacts.values():
            if prop == "hs_object_id" and contact["id"] == value:
                return contact
            if str(contact["properties"].get(prop, "")).lower() == value.lower():
                return contact
        return None

    def _write(
        self, existing: dict[str, Any] | None, properties: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        now = _now()
        clean = {k: ("" if v is None else str(v)) for k, v in properties.items()}
        if "email" in clean:
            clean["email"] = clean["email"].lower()
        if existing is None:
            contact_id = str(len(self.contacts) + 1001)
            existing = {"id": contact_id, "properties": {}, "createdAt": now, "archived": False}
            self.contacts[contact_id] = existing
            created = True
        else:
            created = False
        existing["properties"].update(clean)
        existing["properties"]["hs_object_id"] = existing["id"]
        existing["updatedAt"] = now
        self.state.save_records()
        return existing, created

    def batch_upsert(self) -> Response:
        inputs = self.body.get("inputs") if isinstance(self.body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return self.error(
                400, "Invalid input JSON: `inputs` must be a non-empty array", "VALIDATION_ERROR"
            )
        if len(inputs) > 100:
            return self.error(400, "Batch size must be at most 100", "VALIDATION_ERROR")
        started = _now()
        results = []
        with self.state.lock:
            for item in inputs:
                if not isinstance(item, dict) or not item.get("id") or not item.get("idProperty"):
                    return self.error(400, "Each input needs `id` and `idProperty`", "VALIDATION_ERROR")
                properties = item.get("properties") or {}
                if not isinstance(properties, dict):
                    return self.error(400, "`properties` must be an object", "VALIDATION_ERROR")
                prop, value = item["idProperty"], str(item["id"])
                existing = self._find(prop, value)
                contact, created = self._write(existing, {**properties, prop: value})
                results.append({**contact, "new": created})
        return self.ok(
            {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()}
        )

    def create(self) -> Response:
        properties = self.body.get("properties") if isinstance(self.body, dict) else None
        if not isinstance(properties, dict):
            return self.error(400, "Invalid input JSON: `properties` is required", "VALIDATION_ERROR")
        with self.state.lock:
            email = properties.get("email")
            if email and (existing := self._find("email", str(email))) is not None:
                return self.error(409, f"Contact already exists. Existing ID: {existing['id']}", "CONFLICT")
            contact, _ = self._write(None, properties)
        return self.ok(contact, status=201)

    def read(self, key: str) -> Response:
        prop = self.request.query_params.get("idProperty", "hs_object_id")
        contact = self._find(prop, key)
        if contact is None:
            return self.error(404, "Object not found.", "OBJECT_NOT_FOUND")
        return self.ok(contact)


class Klaviyo:
    """Klaviyo's JSON:API: profile import (upsert by email), list subscription jobs, profile reads."""

    def __init__(self, state: SandboxState, request: Request, path: str, body: Any) -> None:
        self.state, self.request, self.path, self.body = state, request, path, body
        self.profiles: dict[str, Any] = state.records["klaviyo_profiles"]
        self.lists: dict[str, Any] = state.records["klaviyo_lists"]

    def error(self, status: int, code: str, detail: str, pointer: str | None = None) -> Response:
        error: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "status": status,
            "code": code,
            "title": code,
            "detail": detail,
        }
        if pointer:
            error["source"] = {"pointer": pointer}
        return JSONResponse({"errors": [error]}, status_code=status, media_type="application/vnd.api+json")

    def answer(self) -> Response:
        auth = self.request.headers.get("authorization", "")
        if not auth.startswith("Klaviyo-API-Key ") or len(auth) <= len("Klaviyo-API-Key "):
            return self.error(401, "not_authenticated", "Authentication credentials were not provided.")
        if not self.request.headers.get("revision"):
            return self.error(400, "invalid", "The `revision` header is required.")
        method = self.request.method
        if method == "POST" and self.path == "/api/profile-import":
            return self.profile_import()
        if method == "POST" and self.path == "/api/profile-subscription-bulk-create-jobs":
            return self.subscribe()
        if method == "GET" and self.path == "/api/profiles":
            return self.list_profiles()
        return self.error(404, "not_found", f"No route for {method} {self.path}")

    def _profile_by_email(self, email: str) -> dict[str, Any] | None:
        for profile in self.profiles.values():
            if profile["attributes"].get("email") == email.lower():
                return profile
        return None

    def profile_import(self) -> Response:
        data = self.body.get("data") if isinstance(self.body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile":
            return self.error(400, "invalid", "`data.type` must be `profile`", "/data/type")
        attributes = data.get("attributes") or {}
        email = attributes.get("email")
        if not isinstance(email, str) or "@" not in email:
            return self.error(
                400, "invalid", "A profile needs an identifier: email", "/data/attributes/email"
            )
        with self.state.lock:
            profile = self._profile_by_email(email)
            created = profile is None
            if profile is None:
                profile_id = "01" + uuid.uuid4().hex[:24].upper()
                profile = {
                    "type": "profile",
                    "id": profile_id,
                    "attributes": {"properties": {}, "created": _now()},
                }
                self.profiles[profile_id] = profile
            properties = attributes.get("properties") or {}
            profile["attributes"].update({k: v for k, v in attributes.items() if k != "properties"})
            profile["attributes"]["email"] = email.lower()
            profile["attributes"]["properties"].update(properties)
            profile["attributes"]["updated"] = _now()
            self.state.save_records()
        return JSONResponse(
            {"data": profile, "links": {"self": f"/api/profiles/{profile['id']}/"}},
            status_code=201 if created else 200,
            media_type="application/vnd.api+json",
        )

    def subscribe(self) -> Response:
        data = self.body.get("data") if isinstance(self.body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile-subscription-bulk-create-job":
            return self.error(
                400, "invalid", "`data.type` must be `profile-subscription-bulk-create-job`", "/data/type"
            )
        try:
            list_id = data["relationships"]["list"]["data"]["id"]
            entries = data["attributes"]["profiles"]["data"]
        except (KeyError, TypeError):
            return self.error(400, "invalid", "a list relationship and profiles are required", "/data")
        with self.state.lock:
            members = self.lists.setdefault(list_id, {"members": []})["members"]
            for entry in entries:
                email = str(entry.get("attributes", {}).get("email", "")).lower()
                if not email:
                    return self.error(
                        400, "invalid", "each profile needs an email", "/data/attributes/profiles"
                    )
                profile = self._profile_by_email(email)
                if profile is None:
                    profile_id = "01" + uuid.uuid4().hex[:24].upper()
                    profile = {
                        "type": "profile",
                        "id": profile_id,
                        "attributes": {"email": email, "properties": {}},
                    }
                    self.profiles[profile_id] = profile
                profile["attributes"]["subscriptions"] = {"email": {"marketing": {"consent": "SUBSCRIBED"}}}
                if email not in members:
                    members.append(email)
            self.state.save_records()
        return Response(status_code=202)

    def list_profiles(self) -> Response:
        wanted = self.request.query_params.get("filter", "")
        profiles = list(self.profiles.values())
        if wanted.startswith("equals(email,"):
            email = wanted[len("equals(email,") : -1].strip("'\"").lower()
            profiles = [p for p in profiles if p["attributes"].get("email") == email]
        return JSONResponse({"data": profiles, "links": {}}, media_type="application/vnd.api+json")


class Facebook:
    """Meta's Graph API: reading a Lead Ads lead by its leadgen id."""

    def __init__(self, state: SandboxState, request: Request, path: str, body: Any) -> None:
        self.state, self.request, self.path = state, request, path

    def error(self, status: int, message: str, code: int, kind: str = "OAuthException") -> Response:
        return JSONResponse(
            {"error": {"message": message, "type": kind, "code": code, "fbtrace_id": uuid.uuid4().hex[:11]}},
            status_code=status,
        )

    def answer(self) -> Response:
        if not self.request.query_params.get("access_token"):
            return self.error(400, "An access token is required to request this resource.", 104)
        parts = self.path.strip("/").split("/")
        if self.request.method != "GET" or len(parts) != 2 or not parts[0].startswith("v"):
            return self.error(400, f"Unsupported {self.request.method} request.", 100, "GraphMethodException")
        lead = self.state.records["facebook_leads"].get(parts[1])
        if lead is None:
            return self.error(
                400,
                f"Unsupported get request. Object with ID '{parts[1]}' does not exist",
                100,
                "GraphMethodException",
            )
        return JSONResponse(lead)


class LinkedIn:
    """LinkedIn Lead Sync reads: form responses and forms, as `/rest/...` with a bearer token."""

    def __init__(self, state: SandboxState, request: Request, path: str, body: Any) -> None:
        self.state, self.request, self.path = state, request, path

    def error(self, status: int, message: str, code: str) -> Response:
        return JSONResponse(
            {"status": status, "serviceErrorCode": 100, "code": code, "message": message}, status_code=status
        )

    def answer(self) -> Response:
        if not self.request.headers.get("authorization", "").startswith("Bearer "):
            return self.error(401, "Empty oauth2 access token", "EMPTY_ACCESS_TOKEN")
        if not self.request.headers.get("linkedin-version"):
            return self.error(
                400,
                "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
                "VERSION_MISSING",
            )
        parts = self.path.strip("/").split("/")
        if self.request.method == "GET" and len(parts) == 3 and parts[0] == "rest":
            table = {"leadFormResponses": "linkedin_responses", "leadForms": "linkedin_forms"}.get(parts[1])
            if table is not None:
                found = self.state.records[table].get(parts[2])
                if found is not None:
                    return JSONResponse(found)
                return self.error(404, f"Not found: {parts[2]}", "NOT_FOUND")
        return self.error(404, f"No resource for {self.request.method} {self.path}", "NOT_FOUND")


class WebhookSink:
    """Any outbound webhook: accepted and logged, so journeys can post to `/webhook/<name>`."""

    def __init__(self, state: SandboxState, request: Request, path: str, body: Any) -> None:
        self.request = request

    def answer(self) -> Response:
        if self.request.method not in ("POST", "PUT"):
            return JSONResponse({"error": "webhooks are POSTed"}, status_code=405)
        return Response(status_code=202)
