"""The GA4 Measurement Protocol as the sandbox answers it.

`POST /ga4/mp/collect?measurement_id=G-...&api_secret=...` answers 204 whatever it is sent, as
Google does: valid events are stored in `ga4_events`, invalid ones, a missing or wrong api_secret
and a body that is not JSON are dropped without a word (the call log notes why, under
`ga4_dropped`). Like GA4 it keeps every repeat of an event (a retry counts twice), except a
`purchase` whose `transaction_id` the same user already sent: GA4 deduplicates those, so the call
is marked "duplicate" and nothing is stored.

`POST /ga4/debug/mp/collect` is the validation server: 200 `{"validationMessages": [...]}` by the
same rules, nothing stored, the api_secret not checked.

Sandbox control (not Google's): `PUT /ga4/_streams/{measurement_id}` with `{"api_secret": "..."}`
registers a stream's secret; until one is registered any non-empty secret is accepted.
"""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import Response
from fastapi.responses import HTMLResponse, JSONResponse

from sandbox.core import ProviderHandler, now_iso, register

MAX_EVENTS = 25
MAX_PARAMS = 25
MAX_NAME = 40
MAX_VALUE = 100
LONG_VALUES = {"page_location": 1000, "page_referrer": 420, "page_title": 300}
MAX_BACKDATE_MICROS = 72 * 3600 * 1_000_000
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
RESERVED_PREFIXES = ("google_", "ga_", "firebase_")
RESERVED_EVENTS = frozenset(
    "ad_activeview ad_click ad_exposure ad_impression ad_query ad_reward adunit_exposure app_background "
    "app_clear_data app_exception app_install app_remove app_store_refund app_store_subscription_cancel "
    "app_store_subscription_convert app_store_subscription_renew app_update app_upgrade "
    "dynamic_link_app_open dynamic_link_app_update dynamic_link_first_open error first_open first_visit "
    "in_app_purchase notification_dismiss notification_foreground notification_open notification_receive "
    "os_update session_start session_start_with_rollout user_engagement".split()
)
RESERVED_PARAMS = frozenset({"firebase_conversion"})


def _gfe_page(status: int, title: str) -> str:
    """The plain HTML error page Google's front end serves."""
    return (
        f"<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error {status} ({title})!!1</title>"
        f"<p><b>{status}.</b> <ins>That's an error.</ins><p>{title}. <ins>That's all we know.</ins></html>"
    )


def _message(field: str, description: str, code: str) -> dict[str, str]:
    return {"fieldPath": field, "description": description, "validationCode": code}


def validation_messages(body: Any, now_micros: int) -> tuple[list[dict[str, str]], set[int]]:
    """Google's rules for a request: the messages, and the indexes of events that are invalid."""
    messages: list[dict[str, str]] = []
    bad: set[int] = set()
    if not isinstance(body, dict):
        return [_message("", "The request body is not a JSON object.", "VALUE_INVALID")], bad
    client_id = body.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        messages.append(_message("client_id", "Measurement requires a client_id.", "VALUE_REQUIRED"))
    if "user_id" in body and not isinstance(body["user_id"], str):
        messages.append(_message("user_id", "user_id must be a string.", "VALUE_INVALID"))
    stamp = body.get("timestamp_micros")
    if stamp is not None:
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            messages.append(
                _message("timestamp_micros", "timestamp_micros must be an integer.", "VALUE_INVALID")
            )
        elif now_micros - stamp > MAX_BACKDATE_MICROS:
            messages.append(
                _message(
                    "timestamp_micros",
                    f"timestamp_micros [{stamp}] is more than 72 hours in the past.",
                    "VALUE_OUT_OF_BOUNDS",
                )
            )
    events = body.get("events")
    if not isinstance(events, list) or not events:
        messages.append(_message("events", "Measurement requires at least one event.", "VALUE_REQUIRED"))
        return messages, bad
    if len(events) > MAX_EVENTS:
        messages.append(
            _message("events", f"A request may have at most {MAX_EVENTS} events.", "EXCEEDED_MAX_ENTITIES")
        )
    for index, event in enumerate(events):
        found = _event_messages(index, event)
        if found:
            bad.add(index)
            messages.extend(found)
    return messages, bad


def _event_messages(index: int, event: Any) -> list[dict[str, str]]:
    at = f"Event at index: [{index}]"
    if not isinstance(event, dict):
        return [_message("events", f"{at} is not an object.", "VALUE_INVALID")]
    name = event.get("name")
    if not isinstance(name, str) or not name:
        return [_message("events", f"{at} has no name.", "VALUE_REQUIRED")]
    found: list[dict[str, str]] = []
    if not NAME.fullmatch(name) or len(name) > MAX_NAME:
        found.append(
            _message(
                "events",
                f"{at} has invalid name [{name}]. Names start with a letter, use letters, digits and "
                f"underscores, and have at most {MAX_NAME} characters.",
                "NAME_INVALID",
            )
        )
    elif name in RESERVED_EVENTS or name.startswith(RESERVED_PREFIXES):
        found.append(_message("events", f"{at} has name [{name}] which is reserved.", "NAME_RESERVED"))
    params = event.get("params", {})
    if not isinstance(params, dict):
        return [
            *found,
            _message("events.params", f"{at} has params that are not an object.", "VALUE_INVALID"),
        ]
    if len(params) > MAX_PARAMS:
        found.append(
            _message(
                "events.params",
                f"{at} has {len(params)} params; at most {MAX_PARAMS} are allowed.",
                "EXCEEDED_MAX_ENTITIES",
            )
        )
    for key, value in params.items():
        found.extend(_param_messages(at, key, value))
    return found


def _param_messages(at: str, key: str, value: Any) -> list[dict[str, str]]:
    field = f"events.params.{key}"
    if not NAME.fullmatch(key) or len(key) > MAX_NAME:
        return [_message(field, f"{at} has invalid param name [{key}].", "NAME_INVALID")]
    if key in RESERVED_PARAMS or key.startswith(RESERVED_PREFIXES):
        return [_message(field, f"{at} has param name [{key}] which is reserved.", "NAME_RESERVED")]
    if key == "items":
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            return [_message(field, f"{at} has items that are not a list of objects.", "VALUE_INVALID")]
        return []
    if isinstance(value, str):
        limit = LONG_VALUES.get(key, MAX_VALUE)
        if len(value) > limit:
            return [
                _message(
                    field,
                    f"{at} has param [{key}] with a value longer than {limit} characters.",
                    "VALUE_OUT_OF_BOUNDS",
                )
            ]
        return []
    if isinstance(value, int | float):
        return []
    return [_message(field, f"{at} has param [{key}] with a value of an invalid type.", "VALUE_INVALID")]


@register("ga4")
class GA4(ProviderHandler):
    """Measurement Protocol collection and validation for web data streams."""

    @property
    def events(self) -> dict[str, Any]:
        return self.state.table("ga4_events")

    @property
    def streams(self) -> dict[str, Any]:
        return self.state.table("ga4_streams")

    @classmethod
    def fault_response(cls, status: int, retry_after: float) -> Response:
        headers = {"Retry-After": f"{retry_after:g}"} if status in (429, 503) else {}
        title = {429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Unavailable"}.get(
            status, "Server Error"
        )
        return HTMLResponse(_gfe_page(status, title), status_code=status, headers=headers)

    def answer(self) -> Response:
        method = self.request.method
        if self.path.startswith("/_streams/") and method == "PUT":
            return self.register_stream(self.path.removeprefix("/_streams/"))
        if self.path in ("/mp/collect", "/debug/mp/collect"):
            if method != "POST":
                return HTMLResponse(_gfe_page(405, "Method Not Allowed"), status_code=405)
            return self.validate() if self.path.startswith("/debug") else self.collect()
        return HTMLResponse(_gfe_page(404, "Not Found"), status_code=404)

    def register_stream(self, measurement_id: str) -> Response:
        secret = self.body.get("api_secret") if isinstance(self.body, dict) else None
        if not measurement_id or not isinstance(secret, str) or not secret:
            return JSONResponse({"error": 'PUT /ga4/_streams/{measurement_id} {"api_secret": ...}'}, 400)
        with self.state.lock:
            self.streams[measurement_id] = {"measurement_id": measurement_id, "api_secret": secret}
            self.state.save_records()
        return JSONResponse({"measurement_id": measurement_id, "registered": True})

    def validate(self) -> Response:
        messages, _ = validation_messages(self.body, int(time.time() * 1_000_000))
        return JSONResponse({"validationMessages": messages})

    def _dropped(self, why: str) -> Response:
        self.call["ga4_dropped"] = why
        return Response(status_code=204)

    def collect(self) -> Response:
        measurement_id = self.request.query_params.get("measurement_id", "")
        secret = self.request.query_params.get("api_secret", "")
        if not measurement_id or not secret:
            return self._dropped("measurement_id and api_secret are required")
        stream = self.streams.get(measurement_id)
        if stream is not None and stream.get("api_secret") != secret:
            return self._dropped("the api_secret does not belong to this stream")
        messages, bad = validation_messages(self.body, int(time.time() * 1_000_000))
        # A fault in the request's own fields (client_id, user_id, timestamp_micros) loses all of it.
        if not isinstance(self.body, dict) or any(not m["fieldPath"].startswith("events") for m in messages):
            return self._dropped("; ".join(m["description"] for m in messages))
        listed = self.body.get("events")
        events: list[Any] = listed if isinstance(listed, list) else []
        if bad or len(events) > MAX_EVENTS:
            self.call["ga4_dropped"] = [m["description"] for m in messages]
        created: list[str] = []
        duplicates: list[str] = []
        with self.state.lock:
            for index, event in enumerate(events[:MAX_EVENTS]):
                if index in bad:
                    continue
                earlier = self._earlier_purchase(measurement_id, event)
                if earlier is not None:
                    duplicates.append(earlier["event_id"])
                    continue
                created.append(self._store(measurement_id, event)["event_id"])
            self.state.save_records()
        if created:
            self.effect("created", "event", created[0])
        elif duplicates:
            self.effect("duplicate", "event", duplicates[0])
        return Response(status_code=204)

    def _user(self) -> str:
        return str(self.body.get("user_id") or self.body.get("client_id"))

    def _earlier_purchase(self, measurement_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
        params = event.get("params") or {}
        transaction = params.get("transaction_id")
        if event.get("name") != "purchase" or transaction is None:
            return None
        for record in self.events.values():
            if (
                record["measurement_id"] == measurement_id
                and record["name"] == "purchase"
                and record["params"].get("transaction_id") == transaction
                and record["user"] == self._user()
            ):
                return record
        return None

    def _store(self, measurement_id: str, event: dict[str, Any]) -> dict[str, Any]:
        record_id = self.state.next_id("ga4_events", start=1)
        params = dict(event.get("params") or {})
        record = {
            "id": record_id,
            "measurement_id": measurement_id,
            "client_id": self.body.get("client_id"),
            "user_id": self.body.get("user_id"),
            "user": self._user(),
            "timestamp_micros": self.body.get("timestamp_micros"),
            "name": event["name"],
            "params": params,
            # What reports would key a downstream dedupe on; the record id otherwise.
            "event_id": str(params.get("journeys_event_id") or record_id),
            "received_at": now_iso(),
        }
        self.events[record_id] = record
        return record
