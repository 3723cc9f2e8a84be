"""Google Calendar API v3 and Google's OAuth token endpoint, as the sandbox answers them.

`POST /token` hands out access tokens for a refresh token (`invalid_grant` for one that ends in
`revoked`, `invalid_client` without client credentials). Calendar calls need `Authorization: Bearer`;
a token the sandbox issued works until it expires, and any other non-empty token works too unless it
contains `expired` or `invalid`, which is how a test plays a lapsed token.

`POST /calendar/v3/calendars/{calendarId}/events` inserts an event (200 with the event resource); a
client-chosen `id` must be base32hex (a-v, 0-9), 5 to 1024 characters, and a second insert of the same
id on the same calendar answers 409 `duplicate`, marked `duplicate` in the call log. With
`sendUpdates=all` (or `externalOnly`) each attendee's invitation is recorded in `google_invitations`.
`GET .../events/{eventId}` reads one back. Calendars are `primary` or an address-like id; anything else
is 404. Errors have Google's shape: `{"error": {"code", "message", "errors": [...], "status"}}`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox.core import ProviderHandler, now_iso, register

EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CALENDAR_ID = re.compile(r"^(primary|[^@\s/]+@[^@\s/]+)$")
SANDBOX_USER = "sales@sandbox.example"
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def google_error(status: int, reason: str, message: str, domain: str = "global", **where: str) -> Response:
    detail: dict[str, Any] = {"domain": domain, "reason": reason, "message": message, **where}
    payload = {
        "error": {
            "code": status,
            "message": message,
            "errors": [detail],
            "status": STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }
    return JSONResponse(payload, status_code=status)


@register("google")
class GoogleCalendar(ProviderHandler):
    """events.insert, events.get and the OAuth token endpoint."""

    @property
    def events(self) -> dict[str, Any]:
        return self.state.table("google_events")

    @classmethod
    def fault_response(cls, status: int, retry_after: float) -> Response:
        if status == 429:
            response = google_error(429, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits")
            response.headers["Retry-After"] = f"{retry_after:g}"
            return response
        if status >= 500:
            return google_error(status, "backendError", "Backend Error")
        return google_error(status, "badRequest", "Bad Request")

    def answer(self) -> Response:
        if self.path == "/token":
            return self.token()
        parts = self.path.split("/")
        # ["", "calendar", "v3", "calendars", calendarId, "events", eventId?]
        if len(parts) not in (6, 7) or parts[1:4] != ["calendar", "v3", "calendars"] or parts[5] != "events":
            return google_error(404, "notFound", "Not Found")
        denied = self.check_auth()
        if denied is not None:
            return denied
        calendar_id = parts[4]
        if not CALENDAR_ID.match(calendar_id):
            return google_error(404, "notFound", "Not Found")
        method = self.request.method
        if len(parts) == 6 and method == "POST":
            return self.insert(calendar_id)
        if len(parts) == 7 and method == "GET":
            return self.get(calendar_id, parts[6])
        return google_error(405, "httpMethodNotAllowed", f"Method {method} is not allowed here.")

    # --- OAuth ----------------------------------------------------------------------------------

    def token(self) -> Response:
        if self.request.method != "POST":
            return JSONResponse({"error": "invalid_request", "error_description": "POST only"}, 405)
        form = dict(parse_qsl(self.body)) if isinstance(self.body, str) else {}
        if form.get("grant_type") != "refresh_token":
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "}, 400
            )
        if not form.get("client_id") or not form.get("client_secret"):
            return JSONResponse({"error": "invalid_client", "error_description": "Unauthorized"}, 401)
        refresh = form.get("refresh_token", "")
        if not refresh or refresh.endswith("revoked"):
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, 400
            )
        token = "ya29.sandbox-" + uuid.uuid4().hex
        lifetime = 3599
        with self.state.lock:
            self.state.table("google_tokens")[token] = {"expires_at": time.time() + lifetime}
            self.state.save_records()
        return JSONResponse(
            {
                "access_token": token,
                "expires_in": lifetime,
                "scope": "https://www.googleapis.com/auth/calendar.events",
                "token_type": "Bearer",
            }
        )

    def check_auth(self) -> Response | None:
        auth = self.request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        issued = self.state.table("google_tokens").get(token)
        lapsed = issued is not None and issued["expires_at"] < time.time()
        if not token or "expired" in token or "invalid" in token or lapsed:
            if not token:
                message = (
                    "Request is missing required authentication credential. Expected OAuth 2 access token."
                )
            else:
                message = "Invalid Credentials"
            return google_error(401, "authError", message, locationType="header", location="Authorization")
        return None

    # --- events ---------------------------------------------------------------------------------

    def insert(self, calendar_id: str) -> Response:
        send_updates = self.request.query_params.get("sendUpdates", "false")
        if send_updates not in ("all", "externalOnly", "none", "false"):
            return google_error(
                400,
                "invalidParameter",
                f"Invalid value for: sendUpdates: {send_updates}",
                "global",
                locationType="parameter",
                location="sendUpdates",
            )
        body = self.body
        if not isinstance(body, dict):
            return google_error(400, "parseError", "Parse Error")
        start, problem = self.when(body.get("start"), "start")
        if problem:
            return problem
        end, problem = self.when(body.get("end"), "end")
        if problem:
            return problem
        assert start is not None and end is not None
        if end < start:
            return google_error(400, "timeRangeEmpty", "The specified time range is empty.", "calendar")
        attendees = body.get("attendees") or []
        if not isinstance(attendees, list) or not all(
            isinstance(a, dict) and EMAIL.match(str(a.get("email", ""))) for a in attendees
        ):
            return google_error(400, "invalid", "Invalid attendee email.")
        event_id = body.get("id")
        if event_id is not None and (not isinstance(event_id, str) or not EVENT_ID.match(event_id)):
            return google_error(400, "invalid", "Invalid resource id value.")
        with self.state.lock:
            if event_id is None:
                event_id = base64.b32hexencode(uuid.uuid4().bytes).decode().rstrip("=").lower()
            key = f"{calendar_id}/{event_id}"
            if key in self.events:
                self.effect("duplicate", "event", event_id)
                return google_error(409, "duplicate", "The requested identifier already exists.")
            event = self.build(calendar_id, event_id, body, attendees)
            self.events[key] = event
            if send_updates in ("all", "externalOnly"):
                invitations = self.state.table("google_invitations")
                for attendee in attendees:
                    invitations[f"{event_id}:{attendee['email']}"] = {"event": event_id, "sent": now_iso()}
            self.state.save_records()
        self.effect("created", "event", event_id)
        return JSONResponse(event)

    def when(self, value: Any, field: str) -> tuple[datetime | None, Response | None]:
        if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
            return None, google_error(400, "required", f"Missing {field} time.")
        raw = str(value.get("dateTime") or value.get("date"))
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None, google_error(400, "invalid", f"Invalid {field} time.")
        if value.get("dateTime") and moment.tzinfo is None and not value.get("timeZone"):
            return None, google_error(400, "required", f"Missing time zone definition for {field} time.")
        return moment.replace(tzinfo=None), None

    def build(
        self, calendar_id: str, event_id: str, body: dict[str, Any], attendees: list[dict[str, Any]]
    ) -> dict[str, Any]:
        now = now_iso()
        owner = SANDBOX_USER if calendar_id == "primary" else calendar_id
        etag = '"' + hashlib.sha1(f"{event_id}{now}".encode()).hexdigest()[:16] + '"'
        event: dict[str, Any] = {
            "kind": "calendar#event",
            "etag": etag,
            "id": event_id,
            "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": now,
            "updated": now,
            "summary": body.get("summary", ""),
            "description": body.get("description", ""),
            "creator": {"email": owner, "self": True},
            "organizer": {"email": owner, "self": True},
            "start": body["start"],
            "end": body["end"],
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "reminders": {"useDefault": True},
            "eventType": "default",
        }
        if attendees:
            event["attendees"] = [{**a, "responseStatus": "needsAction"} for a in attendees]
        if isinstance(body.get("extendedProperties"), dict):
            event["extendedProperties"] = body["extendedProperties"]
        return event

    def get(self, calendar_id: str, event_id: str) -> Response:
        event = self.events.get(f"{calendar_id}/{event_id}")
        if event is None:
            return google_error(404, "notFound", "Not Found")
        return JSONResponse(event)
