"""Klaviyo's JSON:API as the sandbox answers it.

Emulated, on the real paths: profile import (upsert by email, 201/200), profile reads with
`filter` and cursor pages, list member reads, list membership removal, the subscription and
suppression jobs (applied at once, where Klaviyo runs them shortly after), and event creation
with Klaviyo's `unique_id` dedupe (one event per profile, metric and unique_id).

Lists exist on first mention, as if made in Klaviyo's UI beforehand. Profiles keep their consent
and suppressions in `attributes.subscriptions`, shown only when asked for with
`additional-fields[profile]=subscriptions`, as Klaviyo does.

Every routed answer carries `RateLimit-Limit/Remaining/Reset` for the endpoint's steady (one
minute) window, counted per endpoint with Klaviyo's published limits. With
`Klaviyo.enforce_rate_limits` set, a call over the burst or steady limit is refused with a 429,
`Retry-After` and no RateLimit headers, as Klaviyo does; off by default, so load runs against the
sandbox meet only the faults they inject.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox.core import ProviderHandler, SandboxState, now_iso, register, register_engagement

JSON_API = "application/vnd.api+json"
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_FILTER = re.compile(r"^(equals|any)\((\w+),\s*(.+)\)$")
_LIST_PROFILES = re.compile(r"^/api/lists/([^/]+)/profiles/?$")
_LIST_RELATIONSHIPS = re.compile(r"^/api/lists/([^/]+)/relationships/profiles/?$")

# Klaviyo's published per-endpoint limits: (burst per second, steady per minute).
RATE_LIMITS: dict[str, tuple[int, int]] = {
    "profile-import": (75, 700),
    "profiles": (75, 750),
    "list-profiles": (75, 750),
    "list-remove": (10, 150),
    "subscribe": (75, 750),
    "suppress": (75, 750),
    "events": (350, 3500),
    "events-read": (350, 3500),
}

# A flow's email: an event that names a `template_id` triggers it (the flow a deployment sets up
# on its sequence-email metric); the message is recorded as this metric, as Klaviyo records sends.
RECEIVED = "Received Email"
# What a recipient can do to a message (`POST /_engagement`), as Klaviyo's own metrics.
ENGAGEMENT_METRICS = {
    "open": "Opened Email",
    "click": "Clicked Email",
    "bounce": "Bounced Email",
    "spam": "Marked Email as Spam",
    "unsubscribe": "Unsubscribed from Email Marketing",
}
_SINCE = re.compile(r"^(greater-than|greater-or-equal|less-than|less-or-equal)\(datetime,\s*([^)]+)\)$")
_METRIC_IS = re.compile(r'^equals\(metric_id,\s*"([^"]+)"\)$')
EVENTS_PAGE_MAX = 200

# Suppressions a subscription lifts (a bounce or an invalid address stays).
_LIFTED_BY_SUBSCRIBE = {"UNSUBSCRIBE", "SPAM_COMPLAINT", "SPAM_REPORT", "USER_SUPPRESSED"}

# The clock rate windows are counted on; tests replace it to stay inside one window.
clock: Callable[[], float] = time.time


def _throttled(status: int, retry_after: float) -> JSONResponse:
    seconds = max(0, math.ceil(retry_after))
    unit = "second" if seconds == 1 else "seconds"
    error = {
        "id": _error_id(),
        "status": status,
        "code": "throttled",
        "title": "Request was throttled.",
        "detail": f"Request was throttled. Expected available in {seconds} {unit}.",
        "source": {"pointer": "/data/"},
        "links": {"type": "https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling"},
        "meta": {},
    }
    return JSONResponse(
        {"errors": [error]}, status_code=status, headers={"Retry-After": str(seconds)}, media_type=JSON_API
    )


def _error_id() -> str:
    return str(uuid.uuid4())


@register("klaviyo")
class Klaviyo(ProviderHandler):
    """Klaviyo's JSON:API: profiles, lists, subscription and suppression jobs, events."""

    enforce_rate_limits: ClassVar[bool] = False
    # The steady-window headers of this call, set once the call is counted.
    _rate_headers: dict[str, str]

    @property
    def profiles(self) -> dict[str, Any]:
        return self.state.table("klaviyo_profiles")

    @property
    def lists(self) -> dict[str, Any]:
        return self.state.table("klaviyo_lists")

    @property
    def events(self) -> dict[str, Any]:
        return self.state.table("klaviyo_events")

    @property
    def metrics(self) -> dict[str, Any]:
        return self.state.table("klaviyo_metrics")

    @classmethod
    def fault_response(cls, status: int, retry_after: float) -> Response:
        if status == 429:
            return _throttled(status, retry_after)
        titles = {
            500: ("error", "A server error occurred."),
            502: ("error", "Bad gateway."),
            503: ("service_unavailable", "Service temporarily unavailable, try again later."),
            504: ("error", "Gateway timeout."),
        }
        code, title = titles.get(status, ("error", "An error occurred."))
        error = {"id": _error_id(), "status": status, "code": code, "title": title, "detail": title}
        return JSONResponse({"errors": [error]}, status_code=status, media_type=JSON_API)

    # -- answers --------------------------------------------------------------------------

    def error(
        self,
        status: int,
        code: str,
        detail: str,
        pointer: str | None = None,
        *,
        parameter: str | None = None,
        title: str | None = None,
    ) -> Response:
        error: dict[str, Any] = {
            "id": _error_id(),
            "status": status,
            "code": code,
            "title": title or code.replace("_", " ").capitalize() + ".",
            "detail": detail,
        }
        if pointer:
            error["source"] = {"pointer": pointer}
        elif parameter:
            error["source"] = {"parameter": parameter}
        return JSONResponse(
            {"errors": [error]}, status_code=status, headers=self._rate_headers, media_type=JSON_API
        )

    def ok(self, payload: Any, status: int = 200) -> Response:
        if payload is None:
            return Response(status_code=status, headers=self._rate_headers)
        return JSONResponse(payload, status_code=status, headers=self._rate_headers, media_type=JSON_API)

    def answer(self) -> Response:
        self._rate_headers = {}
        auth = self.request.headers.get("authorization", "")
        key = auth[len("Klaviyo-API-Key ") :].strip() if auth.startswith("Klaviyo-API-Key ") else ""
        if not key:
            return self.error(
                401,
                "not_authenticated",
                "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.",
                title="Authentication credentials were not provided.",
            )
        if not key.startswith("pk"):
            return self.error(
                401,
                "authentication_failed",
                "Incorrect authentication credentials.",
                title="Incorrect authentication credentials.",
            )
        if not self.request.headers.get("revision"):
            return self.error(400, "invalid", "The `revision` header is required.", parameter="revision")
        route = self._route()
        if route is None:
            return self.error(
                404, "not_found", f"No route for {self.request.method} {self.path}", title="Not found."
            )
        name, handle = route
        refused = self._count(name)
        if refused is not None:
            return refused
        return handle()

    def _route(self) -> tuple[str, Callable[[], Response]] | None:
        method, path = self.request.method, self.path.rstrip("/") or "/"
        if method == "POST" and path == "/api/profile-import":
            return "profile-import", self.profile_import
        if method == "GET" and path == "/api/profiles":
            return "profiles", self.list_profiles
        if method == "POST" and path == "/api/profile-subscription-bulk-create-jobs":
            return "subscribe", self.subscribe
        if method == "POST" and path == "/api/profile-suppression-bulk-create-jobs":
            return "suppress", self.suppress
        if method == "POST" and path == "/api/events":
            return "events", self.create_event
        if method == "GET" and path == "/api/events":
            return "events-read", self.list_events
        if method == "GET" and (match := _LIST_PROFILES.match(path)):
            list_id = match.group(1)
            return "list-profiles", lambda: self.list_members(list_id)
        if method == "DELETE" and (match := _LIST_RELATIONSHIPS.match(path)):
            list_id = match.group(1)
            return "list-remove", lambda: self.remove_members(list_id)
        return None

    def _count(self, name: str) -> Response | None:
        """Counts the call in the endpoint's fixed windows; a 429 when over and enforcing."""
        burst, steady = RATE_LIMITS[name]
        now = clock()
        second, minute = int(now), int(now // 60)
        with self.state.lock:
            windows: dict[str, tuple[int, int, int, int]] = self.state.__dict__.setdefault(
                "_klaviyo_windows", {}
            )
            seen_second, in_second, seen_minute, in_minute = windows.get(name, (second, 0, minute, 0))
            in_second = in_second if seen_second == second else 0
            in_minute = in_minute if seen_minute == minute else 0
            if self.enforce_rate_limits and (in_second >= burst or in_minute >= steady):
                wait = (second + 1 - now) if in_second >= burst else ((minute + 1) * 60 - now)
                return _throttled(429, wait)
            in_second, in_minute = in_second + 1, in_minute + 1
            windows[name] = (second, in_second, minute, in_minute)
        self._rate_headers = {
            "RateLimit-Limit": str(steady),
            "RateLimit-Remaining": str(max(0, steady - in_minute)),
            "RateLimit-Reset": str(max(1, math.ceil((minute + 1) * 60 - now))),
        }
        return None

    # -- records --------------------------------------------------------------------------

    def _new_id(self) -> str:
        return "01" + "".join(self.state.random.choice(_ULID_ALPHABET) for _ in range(24))

    def _profile_by_email(self, email: str) -> dict[str, Any] | None:
        email = email.strip().lower()
        for profile in self.profiles.values():
            if str(profile["attributes"].get("email", "")).lower() == email:
                return profile
        return None

    def _new_profile(self, email: str) -> dict[str, Any]:
        now = now_iso()
        profile_id = self._new_id()
        profile = {
            "type": "profile",
            "id": profile_id,
            "attributes": {
                "email": email.strip().lower(),
                "properties": {},
                "created": now,
                "updated": now,
                "subscriptions": _never_subscribed(),
            },
        }
        self.profiles[profile_id] = profile
        return profile

    def _view(
        self, profile: dict[str, Any], *, subscriptions: bool, joined: str | None = None
    ) -> dict[str, Any]:
        attributes = {k: v for k, v in profile["attributes"].items() if k != "subscriptions"}
        if subscriptions:
            attributes["subscriptions"] = _marketing_view(profile)
        if joined is not None:
            attributes["joined_group_at"] = joined
        return {
            "type": "profile",
            "id": profile["id"],
            "attributes": attributes,
            "links": {"self": self._absolute(f"/api/profiles/{profile['id']}/")},
        }

    def _absolute(self, path: str) -> str:
        base = str(self.request.url).split("/api/", 1)[0]
        return base + path

    def _wants_subscriptions(self) -> bool:
        wanted = self.request.query_params.get("additional-fields[profile]", "")
        return "subscriptions" in wanted.split(",")

    def _data(self) -> Any:
        return self.body.get("data") if isinstance(self.body, dict) else None

    # -- profiles -------------------------------------------------------------------------

    def profile_import(self) -> Response:
        data = self._data()
        if not isinstance(data, dict) or data.get("type") != "profile":
            return self.error(400, "invalid", "`data.type` must be `profile`.", "/data/type")
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            return self.error(400, "invalid", "`attributes` must be an object.", "/data/attributes")
        email = attributes.get("email")
        if not isinstance(email, str) or not _EMAIL.match(email.strip()):
            return self.error(
                400, "invalid", "A profile needs a valid identifier: email.", "/data/attributes/email"
            )
        phone = attributes.get("phone_number")
        if phone is not None and (not isinstance(phone, str) or not _E164.match(phone)):
            return self.error(
                400,
                "invalid",
                "Invalid phone number format (Example of a valid format: +12345678901)",
                "/data/attributes/phone_number",
            )
        properties = attributes.get("properties")
        if properties is not None and not isinstance(properties, dict):
            return self.error(
                400, "invalid", "`properties` must be an object.", "/data/attributes/properties"
            )
        with self.state.lock:
            profile = self._profile_by_email(email)
            created = profile is None
            if profile is None:
                profile = self._new_profile(email)
            stored = profile["attributes"]
            before = repr({k: v for k, v in stored.items() if k != "updated"})
            for name, value in attributes.items():
                if name in ("email", "properties", "subscriptions"):
                    continue
                if value is None:
                    stored.pop(name, None)
                elif name == "location" and isinstance(value, dict):
                    stored.setdefault("location", {}).update(value)
                else:
                    stored[name] = value
            for name, value in (properties or {}).items():
                if value is None:
                    stored["properties"].pop(name, None)
                else:
                    stored["properties"][name] = value
            changed = repr({k: v for k, v in stored.items() if k != "updated"}) != before
            if changed or created:
                stored["updated"] = now_iso()
            self.effect(
                "created" if created else "updated" if changed else "unchanged", "profile", profile["id"]
            )
            self.state.save_records()
            view = self._view(profile, subscriptions=self._wants_subscriptions())
        return self.ok(
            {"data": view, "links": {"self": self._absolute("/api/profile-import/")}},
            status=201 if created else 200,
        )

    def list_profiles(self) -> Response:
        wanted = self._filter(("email", "id", "phone_number"))
        if isinstance(wanted, Response):
            return wanted
        with self.state.lock:
            profiles = list(self.profiles.values())
        if wanted is not None:
            field, values = wanted
            if field == "id":
                profiles = [p for p in profiles if p["id"] in values]
            else:
                profiles = [p for p in profiles if str(p["attributes"].get(field, "")).lower() in values]
        subscriptions = self._wants_subscriptions()
        return self._page([self._view(p, subscriptions=subscriptions) for p in profiles])

    # -- lists ----------------------------------------------------------------------------

    def _list(self, list_id: str) -> dict[str, Any]:
        record = self.lists.setdefault(list_id, {"members": []})
        record.setdefault("joined", {})
        return record

    def list_members(self, list_id: str) -> Response:
        wanted = self._filter(("email",))
        if isinstance(wanted, Response):
            return wanted
        subscriptions = self._wants_subscriptions()
        views = []
        with self.state.lock:
            record = self._list(list_id)
            for email in record["members"]:
                if wanted is not None and email not in wanted[1]:
                    continue
                profile = self._profile_by_email(email)
                if profile is not None:
                    joined = record["joined"].get(email)
                    views.append(self._view(profile, subscriptions=subscriptions, joined=joined))
        return self._page(views)

    def remove_members(self, list_id: str) -> Response:
        data = self._data()
        if not isinstance(data, list) or not data:
            return self.error(400, "invalid", "`data` must be a non-empty array of profiles.", "/data")
        if len(data) > 1000:
            return self.error(400, "invalid", "At most 1000 profiles per call.", "/data")
        ids = []
        for n, item in enumerate(data):
            if not isinstance(item, dict) or item.get("type") != "profile" or not item.get("id"):
                return self.error(
                    400, "invalid", "Each entry needs `type: profile` and an `id`.", f"/data/{n}"
                )
            ids.append(str(item["id"]))
        removed = []
        with self.state.lock:
            record = self._list(list_id)
            for profile_id in ids:
                profile = self.profiles.get(profile_id)
                email = str(profile["attributes"].get("email", "")) if profile else ""
                if email and email in record["members"]:
                    record["members"].remove(email)
                    record["joined"].pop(email, None)
                    removed.append(profile_id)
            self.effect(
                "deleted" if removed else "unchanged", "list-membership", f"{list_id}:{','.join(ids)}"
            )
            self.state.save_records()
        return self.ok(None, status=204)

    # -- consent --------------------------------------------------------------------------

    def subscribe(self) -> Response:
        data = self._data()
        if not isinstance(data, dict) or data.get("type") != "profile-subscription-bulk-create-job":
            return self.error(
                400, "invalid", "`data.type` must be `profile-subscription-bulk-create-job`.", "/data/type"
            )
        attributes = data.get("attributes") or {}
        entries = (attributes.get("profiles") or {}).get("data")
        if not isinstance(entries, list) or not entries:
            return self.error(
                400, "invalid", "`profiles.data` must be a non-empty array.", "/data/attributes/profiles"
            )
        if len(entries) > 1000:
            return self.error(400, "invalid", "At most 1000 profiles per job.", "/data/attributes/profiles")
        relationship = ((data.get("relationships") or {}).get("list") or {}).get("data")
        list_id = relationship.get("id") if isinstance(relationship, dict) else None
        source = attributes.get("custom_source")
        pointer = "/data/attributes/profiles/data"
        checked: list[tuple[str | None, str]] = []
        for n, entry in enumerate(entries):
            entry_attributes = entry.get("attributes") if isinstance(entry, dict) else None
            if not isinstance(entry_attributes, dict):
                return self.error(400, "invalid", "Each profile needs `attributes`.", f"{pointer}/{n}")
            email = entry_attributes.get("email")
            if not isinstance(email, str) or not _EMAIL.match(email.strip()):
                return self.error(
                    400, "invalid", "Each profile needs a valid email.", f"{pointer}/{n}/attributes/email"
                )
            consent = (
                ((entry_attributes.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
            ).get("consent")
            if consent != "SUBSCRIBED":
                return self.error(
                    400,
                    "invalid",
                    "`subscriptions.email.marketing.consent` must be `SUBSCRIBED`.",
                    f"{pointer}/{n}/attributes/subscriptions",
                )
            checked.append((entry.get("id"), email.strip().lower()))
        created = changed = False
        with self.state.lock:
            members = self._list(list_id) if list_id else None
            for profile_id, email in checked:
                profile = self.profiles.get(profile_id) if profile_id else None
                profile = profile or self._profile_by_email(email)
                if profile is None:
                    profile = self._new_profile(email)
                    created = True
                marketing = _marketing(profile)
                now = now_iso()
                kept = [s for s in marketing["suppression"] if s.get("reason") not in _LIFTED_BY_SUBSCRIBE]
                if kept != marketing["suppression"]:
                    marketing["suppression"] = kept
                    changed = True
                if marketing["consent"] != "SUBSCRIBED":
                    marketing.update(
                        consent="SUBSCRIBED", consent_timestamp=now, method="API", method_detail=""
                    )
                    marketing["custom_method_detail"] = source
                    changed = True
                if list_id:
                    marketing["list_suppressions"] = [
                        s for s in marketing["list_suppressions"] if s.get("list_id") != list_id
                    ]
                marketing["can_receive_email_marketing"] = not marketing["suppression"]
                if changed:
                    marketing["last_updated"] = now
                if members is not None and email not in members["members"]:
                    members["members"].append(email)
                    members["joined"][email] = now
                    created = True
            target = f"{list_id}:{checked[0][1]}" if list_id else checked[0][1]
            effect = "created" if created else "updated" if changed else "unchanged"
            self.effect(effect, "list-membership" if list_id else "subscription", target)
            self.state.save_records()
        return self.ok(None, status=202)

    def suppress(self) -> Response:
        data = self._data()
        if not isinstance(data, dict) or data.get("type") != "profile-suppression-bulk-create-job":
            return self.error(
                400, "invalid", "`data.type` must be `profile-suppression-bulk-create-job`.", "/data/type"
            )
        entries = ((data.get("attributes") or {}).get("profiles") or {}).get("data")
        relationship = ((data.get("relationships") or {}).get("list") or {}).get("data")
        list_id = relationship.get("id") if isinstance(relationship, dict) else None
        if not entries and not list_id:
            return self.error(
                400,
                "invalid",
                "Give profiles to suppress, or a list or segment.",
                "/data/attributes/profiles",
            )
        emails: list[str] = []
        for n, entry in enumerate(entries or []):
            email = ((entry or {}).get("attributes") or {}).get("email") if isinstance(entry, dict) else None
            if not isinstance(email, str) or not _EMAIL.match(email.strip()):
                return self.error(
                    400, "invalid", "Each profile needs a valid email.", f"/data/attributes/profiles/data/{n}"
                )
            emails.append(email.strip().lower())
        if len(emails) > 100:
            return self.error(400, "invalid", "At most 100 emails per request.", "/data/attributes/profiles")
        effect = "unchanged"
        with self.state.lock:
            if list_id:
                emails.extend(self._list(list_id)["members"])
            now = now_iso()
            for email in emails:
                profile = self._profile_by_email(email)
                if profile is None:
                    profile = self._new_profile(email)
                    effect = "created"
                marketing = _marketing(profile)
                if not marketing.get("suppression"):
                    marketing["suppression"] = [{"reason": "USER_SUPPRESSED", "timestamp": now}]
                    marketing["can_receive_email_marketing"] = False
                    marketing["last_updated"] = now
                    effect = "created" if effect == "created" else "updated"
            job_id = self._new_id()
            self.effect(effect, "profile-suppression", emails[0] if emails else list_id)
            self.state.save_records()
        job = {
            "type": "profile-suppression-bulk-create-job",
            "id": job_id,
            "attributes": {
                "status": "queued",
                "created_at": now,
                "total_count": len(emails),
                "completed_count": 0,
                "completed_at": None,
                "skipped_count": 0,
            },
            "links": {"self": self._absolute(f"/api/profile-suppression-bulk-create-jobs/{job_id}/")},
        }
        return self.ok({"data": job, "links": job["links"]}, status=202)

    # -- events ---------------------------------------------------------------------------

    def create_event(self) -> Response:
        data = self._data()
        if not isinstance(data, dict) or data.get("type") != "event":
            return self.error(400, "invalid", "`data.type` must be `event`.", "/data/type")
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            return self.error(400, "invalid", "`attributes` must be an object.", "/data/attributes")
        properties = attributes.get("properties")
        if not isinstance(properties, dict):
            return self.error(
                400,
                "invalid",
                "`properties` is required and must be an object.",
                "/data/attributes/properties",
            )
        if len(properties) > 400:
            return self.error(
                400, "invalid", "An event has at most 400 properties.", "/data/attributes/properties"
            )
        metric = (((attributes.get("metric") or {}).get("data") or {}).get("attributes") or {}).get("name")
        if not isinstance(metric, str) or not metric or len(metric) >= 128:
            return self.error(
                400,
                "invalid",
                "A metric name (under 128 characters) is required.",
                "/data/attributes/metric/data/attributes/name",
            )
        identity = ((attributes.get("profile") or {}).get("data") or {}).get("attributes") or {}
        email = identity.get("email") if isinstance(identity, dict) else None
        if not isinstance(email, str) or not _EMAIL.match(email.strip()):
            return self.error(
                400,
                "invalid",
                "The profile needs an identifier: email.",
                "/data/attributes/profile/data/attributes/email",
            )
        when = attributes.get("time") or now_iso()
        unique_id = attributes.get("unique_id") or str(when)[:19]
        with self.state.lock:
            profile = self._profile_by_email(email) or self._new_profile(email)
            metric_id = self.metrics.get(metric)
            if metric_id is None:
                metric_id = "".join(self.state.random.choice(_ULID_ALPHABET[:30]) for _ in range(6))
                self.metrics[metric] = metric_id
            for event in self.events.values():
                if (event["profile_id"], event["metric"], event["unique_id"]) == (
                    profile["id"],
                    metric,
                    unique_id,
                ):
                    self.effect("duplicate", "event", event["id"])
                    return self.ok(None, status=202)
            event_id = self._new_id()
            self.events[event_id] = {
                "id": event_id,
                "profile_id": profile["id"],
                "metric": metric,
                "metric_id": metric_id,
                "unique_id": unique_id,
                "time": when,
                "properties": properties,
                "value": attributes.get("value"),
            }
            self.effect("created", "event", event_id)
            if isinstance(properties.get("template_id"), str):
                flow = _flow_id(metric_id)
                subject = properties.get("subject")
                _record_message(
                    self.state,
                    profile,
                    subject=subject if isinstance(subject, str) else properties["template_id"],
                    flow=flow,
                    campaign=None,
                    trigger=event_id,
                )
            self.state.save_records()
        return self.ok(None, status=202)

    def list_events(self) -> Response:
        """`GET /api/events`: `filter` on datetime (and `equals(metric_id,...)`), joined by commas
        or `and(...)`; `sort` datetime or -datetime; `include` metric and profile."""
        raw = (self.request.query_params.get("filter") or "").strip()
        if raw.startswith("and(") and raw.endswith(")"):
            raw = raw[4:-1]
        bounds: list[tuple[str, str]] = []
        metric_ids: set[str] = set()
        for clause in _clauses(raw):
            if match := _SINCE.match(clause):
                bounds.append((match.group(1), _timestamp(match.group(2).strip().strip('"')) or ""))
                if not bounds[-1][1]:
                    return self.error(
                        400, "invalid", f"Invalid datetime in filter: {clause}", parameter="filter"
                    )
            elif match := _METRIC_IS.match(clause):
                metric_ids.add(match.group(1))
            else:
                return self.error(
                    400,
                    "invalid",
                    f"Invalid filter provided: {clause}",
                    parameter="filter",
                    title="Invalid input.",
                )
        sort = self.request.query_params.get("sort", "timestamp")
        if sort not in ("datetime", "-datetime", "timestamp", "-timestamp"):
            return self.error(400, "invalid", f"Invalid sort: {sort}", parameter="sort")
        include = [i for i in self.request.query_params.get("include", "").split(",") if i]
        if any(i not in ("metric", "profile", "attributions") for i in include):
            return self.error(
                400, "invalid", "include takes metric, profile, attributions.", parameter="include"
            )
        with self.state.lock:
            events = [e for e in self.events.values() if not metric_ids or e["metric_id"] in metric_ids]
            events = [
                e for e in events if all(_within(_timestamp(e["time"]) or "", op, at) for op, at in bounds)
            ]
            events.sort(key=lambda e: (_timestamp(e["time"]) or "", e["id"]), reverse=sort.startswith("-"))
            views = [self._event_view(e) for e in events]
            metrics = {e["metric_id"]: e["metric"] for e in events}
            profiles = {e["profile_id"]: self.profiles.get(e["profile_id"]) for e in events}
        answer = self._page(views, limit=EVENTS_PAGE_MAX, default_size=EVENTS_PAGE_MAX)
        if include and answer.status_code == 200:
            payload = json.loads(bytes(answer.body))
            shown = payload["data"]
            included: list[dict[str, Any]] = []
            if "metric" in include:
                wanted = {e["relationships"]["metric"]["data"]["id"] for e in shown}
                included += [self._metric_view(i, metrics[i]) for i in sorted(wanted)]
            if "profile" in include:
                wanted = {e["relationships"]["profile"]["data"]["id"] for e in shown}
                included += [
                    self._view(profile, subscriptions=False)
                    for i in sorted(wanted)
                    if (profile := profiles.get(i)) is not None
                ]
            payload["included"] = included
            return self.ok(payload)
        return answer

    def _event_view(self, event: dict[str, Any]) -> dict[str, Any]:
        when = _timestamp(event["time"]) or now_iso()
        return {
            "type": "event",
            "id": event["id"],
            "attributes": {
                "timestamp": int(datetime.fromisoformat(when).timestamp()),
                "event_properties": event["properties"],
                "datetime": when,
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, event["id"])),
            },
            "relationships": {
                "profile": {
                    "data": {"type": "profile", "id": event["profile_id"]},
                    "links": {
                        "self": self._absolute(f"/api/events/{event['id']}/relationships/profile/"),
                        "related": self._absolute(f"/api/events/{event['id']}/profile/"),
                    },
                },
                "metric": {
                    "data": {"type": "metric", "id": event["metric_id"]},
                    "links": {
                        "self": self._absolute(f"/api/events/{event['id']}/relationships/metric/"),
                        "related": self._absolute(f"/api/events/{event['id']}/metric/"),
                    },
                },
            },
            "links": {"self": self._absolute(f"/api/events/{event['id']}/")},
        }

    def _metric_view(self, metric_id: str, name: str) -> dict[str, Any]:
        return {
            "type": "metric",
            "id": metric_id,
            "attributes": {"name": name},
            "links": {"self": self._absolute(f"/api/metrics/{metric_id}/")},
        }

    # -- collections ----------------------------------------------------------------------

    def _filter(self, fields: tuple[str, ...]) -> tuple[str, set[str]] | Response | None:
        """`equals(field,"v")`, `equals(field,["v"])` or `any(field,["a","b"])`, values lowercased."""
        raw = self.request.query_params.get("filter")
        if not raw:
            return None
        match = _FILTER.match(raw.strip())
        if match is None or match.group(2) not in fields:
            return self.error(
                400, "invalid", f"Invalid filter provided: {raw}", parameter="filter", title="Invalid input."
            )
        operator, field, value = match.groups()
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            items = [v.strip() for v in value[1:-1].split(",") if v.strip()]
        elif operator == "any":
            return self.error(400, "invalid", "`any` takes a list of values.", parameter="filter")
        else:
            items = [value]
        values = set()
        for item in items:
            if len(item) < 2 or item[0] not in "'\"" or item[-1] != item[0]:
                return self.error(400, "invalid", f"Invalid filter value: {item}", parameter="filter")
            unquoted = item[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            values.add(unquoted if field == "id" else unquoted.lower())
        return field, values

    def _page(self, items: list[dict[str, Any]], *, limit: int = 100, default_size: int = 20) -> Response:
        raw_size = self.request.query_params.get("page[size]", str(default_size))
        try:
            size = int(raw_size)
        except ValueError:
            size = 0
        if not 1 <= size <= limit:
            return self.error(
                400, "invalid", f"page[size] must be between 1 and {limit}.", parameter="page[size]"
            )
        cursor = self.request.query_params.get("page[cursor]")
        start = 0
        if cursor:
            try:
                start = int(base64.urlsafe_b64decode(cursor.encode()).decode())
            except ValueError:
                return self.error(400, "invalid", "Invalid page cursor.", parameter="page[cursor]")
        # Klaviyo's published `CollectionLinks`: `self` always, `prev` and `next` only when there is one.
        links: dict[str, Any] = {"self": str(self.request.url)}
        if start + size < len(items):
            token = base64.urlsafe_b64encode(str(start + size).encode()).decode()
            links["next"] = str(self.request.url.include_query_params(**{"page[cursor]": token}))
        if start > 0:
            token = base64.urlsafe_b64encode(str(max(0, start - size)).encode()).decode()
            links["prev"] = str(self.request.url.include_query_params(**{"page[cursor]": token}))
        return self.ok({"data": items[start : start + size], "links": links})


def _never_subscribed() -> dict[str, Any]:
    return {
        "email": {
            "marketing": {
                "can_receive_email_marketing": True,
                "consent": "NEVER_SUBSCRIBED",
                "consent_timestamp": None,
                "last_updated": None,
                "method": None,
                "method_detail": None,
                "custom_method_detail": None,
                "double_optin": None,
                "suppression": [],
                "list_suppressions": [],
            }
        }
    }


def _marketing(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile's stored email-marketing record, filled in for records older than this shape."""
    subscriptions = profile["attributes"].setdefault("subscriptions", _never_subscribed())
    marketing: dict[str, Any] = subscriptions.setdefault("email", {}).setdefault("marketing", {})
    for name, value in _never_subscribed()["email"]["marketing"].items():
        marketing.setdefault(name, value)
    return marketing


def _marketing_view(profile: dict[str, Any]) -> dict[str, Any]:
    subscriptions = profile["attributes"].get("subscriptions") or _never_subscribed()
    return {"email": dict(subscriptions.get("email") or {})}


def _clauses(raw: str) -> list[str]:
    """A filter's top-level clauses, split on the commas outside parentheses and quotes."""
    clauses, depth, quoted, start = [], 0, False, 0
    for n, char in enumerate(raw):
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            clauses.append(raw[start:n].strip())
            start = n + 1
    if raw[start:].strip():
        clauses.append(raw[start:].strip())
    return clauses


def _timestamp(value: Any) -> str | None:
    """An ISO time as UTC with microseconds, so times compare as text; None when not a time."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="microseconds")


def _within(at: str, op: str, bound: str) -> bool:
    return {
        "greater-than": at > bound,
        "greater-or-equal": at >= bound,
        "less-than": at < bound,
        "less-or-equal": at <= bound,
    }[op]


def _flow_id(metric_id: str) -> str:
    """The flow a deployment built on a trigger metric: one per metric here."""
    return "F" + metric_id[:5]


def _metric_id(state: SandboxState, name: str) -> str:
    metrics = state.table("klaviyo_metrics")
    if name not in metrics:
        metrics[name] = "".join(state.random.choice(_ULID_ALPHABET[:30]) for _ in range(6))
    metric_id: str = metrics[name]
    return metric_id


def _add_event(state: SandboxState, profile: dict[str, Any], metric: str, properties: dict[str, Any]) -> str:
    event_id = "01" + "".join(state.random.choice(_ULID_ALPHABET) for _ in range(24))
    state.table("klaviyo_events")[event_id] = {
        "id": event_id,
        "profile_id": profile["id"],
        "metric": metric,
        "metric_id": _metric_id(state, metric),
        "unique_id": event_id,
        "time": now_iso(),
        "properties": properties,
        "value": None,
    }
    return event_id


def _record_message(
    state: SandboxState,
    profile: dict[str, Any],
    *,
    subject: str,
    flow: str | None,
    campaign: str | None,
    trigger: str | None,
) -> str | None:
    """A message Klaviyo sends to the profile: recorded as Received Email, unless the profile may
    not receive email (suppressed or unsubscribed), when Klaviyo skips it."""
    marketing = _marketing(profile)
    if marketing.get("suppression") or marketing.get("consent") == "UNSUBSCRIBED":
        return None
    message = "".join(state.random.choice(_ULID_ALPHABET[:30]) for _ in range(6))
    properties: dict[str, Any] = {
        "Subject": subject,
        "$message": message,
        "Email Domain": str(profile["attributes"].get("email", "")).rsplit("@", 1)[-1],
        "$message_interaction": message,
    }
    if flow:
        properties["$flow"] = flow
        properties["Campaign Name"] = f"{subject} (flow email)"
    if campaign:
        properties["Campaign Name"] = campaign
    if trigger:
        properties["$trigger_event"] = trigger
    _add_event(state, profile, RECEIVED, properties)
    return message


def last_sent_at(state: SandboxState, email: str) -> str | None:
    """When Klaviyo last sent this address a message (for `POST /_engagement`), or None."""
    with state.lock:
        profile = _profile_of(state, email)
        if profile is None:
            return None
        times = [
            e["time"]
            for e in state.table("klaviyo_events").values()
            if e["profile_id"] == profile["id"] and e["metric"] == RECEIVED
        ]
    return max((_timestamp(t) or "" for t in times), default=None)


def _profile_of(state: SandboxState, email: str) -> dict[str, Any] | None:
    email = email.strip().lower()
    for profile in state.table("klaviyo_profiles").values():
        if str(profile["attributes"].get("email", "")).lower() == email:
            return profile
    return None


def _campaign_message(state: SandboxState, profile: dict[str, Any]) -> dict[str, Any]:
    """A campaign a marketer sent from Klaviyo itself (no flow, so not the engine's): its Received
    Email event. Call with the state's lock held."""
    _marketing(profile)  # fills in the record so the send check reads it
    message = _record_message(
        state, profile, subject="Sandbox newsletter", flow=None, campaign="Sandbox campaign", trigger=None
    )
    if message is None:
        raise LookupError(f"Klaviyo may not email {profile['attributes'].get('email')}")
    return max(
        (e for e in state.table("klaviyo_events").values() if e["profile_id"] == profile["id"]),
        key=lambda e: (_timestamp(e["time"]) or "", e["id"]),
    )


def send_campaign(state: SandboxState, email: str) -> dict[str, Any]:
    """A marketer sends a campaign to `email` from Klaviyo's own UI (`POST /_campaign`)."""
    with state.lock:
        profile = _profile_of(state, email)
        if profile is None:
            raise LookupError(f"Klaviyo has no profile for {email}")
        sent = _campaign_message(state, profile)
        state.save_records()
    return {"provider": "klaviyo", "event_id": sent["id"], "message": sent["properties"]["$message"]}


def engage(state: SandboxState, email: str, action: str) -> dict[str, Any]:
    """The recipient of the latest message Klaviyo sent to `email` (a campaign's, when none was
    sent yet) opens, clicks, bounces, unsubscribes or complains: recorded as Klaviyo's own metric
    for it, with the message's properties, and what it changes on the profile."""
    metric = ENGAGEMENT_METRICS[action]
    with state.lock:
        profile = _profile_of(state, email)
        if profile is None:
            raise LookupError(f"Klaviyo has no profile for {email}")
        received = [
            e
            for e in state.table("klaviyo_events").values()
            if e["profile_id"] == profile["id"] and e["metric"] == RECEIVED
        ]
        latest = max(received, key=lambda e: (_timestamp(e["time"]) or "", e["id"]), default=None)
        if latest is None:
            latest = _campaign_message(state, profile)
        keep = ("Subject", "$message", "$flow", "Campaign Name", "Email Domain", "$message_interaction")
        properties = {k: v for k, v in latest["properties"].items() if k in keep}
        if action == "click":
            properties["URL"] = "https://www.example.com/pricing?utm_source=klaviyo"
        if action == "bounce":
            properties["Bounce Type"] = "hard"
        event_id = _add_event(state, profile, metric, properties)
        marketing = _marketing(profile)
        now = now_iso()
        if action == "unsubscribe":
            marketing.update(consent="UNSUBSCRIBED", can_receive_email_marketing=False, last_updated=now)
        elif action in ("bounce", "spam"):
            reason = "HARD_BOUNCE" if action == "bounce" else "SPAM_COMPLAINT"
            marketing["suppression"] = [{"reason": reason, "timestamp": now}]
            marketing.update(can_receive_email_marketing=False, last_updated=now)
        state.save_records()
    return {
        "provider": "klaviyo",
        "event_id": event_id,
        "metric": metric,
        "message": properties.get("$message"),
        "campaign": None if properties.get("$flow") else properties.get("Campaign Name"),
    }


register_engagement("klaviyo", last_sent_at, engage, send_campaign)
