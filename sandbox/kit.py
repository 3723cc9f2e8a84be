"""Kit (formerly ConvertKit) API v4 as the sandbox answers it: subscribers, tags, sequences, custom fields.

Auth is `X-Kit-Api-Key` or `Authorization: Bearer`; any non-empty credential is this account's.
Errors are `{"errors": ["..."]}`; a 429 is the plain text `Retry later` with no `Retry-After`, as
Kit sends it (so an injected fault's `retry_after_seconds` does not reach the client). Lists are
cursor pages (`pagination` with `has_next_page` and `end_cursor`, `?after=`). Ids are integers.
The account's tags and sequences come into being on first use of a numeric id (the creator made
them in Kit's app); a sequence record with `"active": false` answers 422 `Sequence is inactive`.
Custom fields exist only once created through `POST /v4/custom_fields`; unknown keys written on a
subscriber are dropped and named in `warnings`, as Kit does.

Kit as the recipient's side (`POST /_engagement`): each subscription to a sequence and each tag
(the sandbox account runs an email automation on every tag) records a message sent to the
subscriber, and `POST /_campaign` a broadcast. A recipient's click is reported as Kit reports it,
by the legacy webhooks (`/v4/webhooks`, `subscriber.link_click`) registered for the link clicked
(the message's links in turn). An unsubscribe, bounce or complaint changes the subscriber's state
and is delivered to every webhook endpoint (`/v4/webhook_endpoints`) subscribed to its event
type, signed with the endpoint's secret (`X-Kit-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"{t}.{body}">`). Kit reports no opens, so an open is refused. The registrations are the account's
configuration: `/_reset` keeps them. Kit rejects loopback target URLs; the sandbox takes them,
since the engine runs beside it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import Response
from fastapi.responses import JSONResponse, PlainTextResponse

from sandbox.core import KEPT_ON_RESET, ProviderHandler, SandboxState, now_iso, register, register_engagement

STATES = ("active", "cancelled", "bounced", "complained", "inactive")
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
DEFAULT_PER_PAGE = 500
MAX_PER_PAGE = 1000

Route = tuple[str, re.Pattern[str], Callable[..., Response]]

# Webhook endpoints' event types (Kit's catalog has more; these are the ones the sandbox produces
# or an integration may ask for), and the legacy webhooks' event names.
ENDPOINT_EVENTS = frozenset(
    {
        "subscriber.created",
        "subscriber.activated",
        "subscriber.unsubscribed",
        "subscriber.bounced",
        "subscriber.complained",
        "subscriber.tag_added",
        "subscriber.tag_removed",
    }
)
LEGACY_EVENTS = frozenset(
    {
        "subscriber.subscriber_activate",
        "subscriber.subscriber_unsubscribe",
        "subscriber.subscriber_bounce",
        "subscriber.subscriber_complain",
        "subscriber.link_click",
        "subscriber.tag_add",
        "subscriber.tag_remove",
    }
)
ENDPOINTS = "kit_webhook_endpoints"
LEGACY_WEBHOOKS = "kit_webhooks"
KEPT_ON_RESET.update({ENDPOINTS, LEGACY_WEBHOOKS})
# What a recipient's action does to the subscriber, and the endpoint event type that reports it.
OUTCOMES = {
    "unsubscribe": ("cancelled", "subscriber.unsubscribed"),
    "bounce": ("bounced", "subscriber.bounced"),
    "spam": ("complained", "subscriber.complained"),
}
# The links every sandbox email carries; a recipient's clicks take them in turn (Kit reports a
# click per link, so each is its own webhook).
MESSAGE_LINKS = tuple(
    f"https://www.example.com/{page}?utm_source=kit"
    for page in ("pricing", "demo", "customers", "security", "integrations", "blog", "docs", "about")
)
MESSAGE_LINK = MESSAGE_LINKS[0]
DELIVERY_TIMEOUT_SECONDS = 10.0


def _cursor(item_id: int) -> str:
    return base64.b64encode(json.dumps([item_id]).encode()).decode()


def _from_cursor(cursor: str) -> int | None:
    try:
        value = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return int(value[0])
    except (ValueError, TypeError, IndexError, KeyError):
        return None


def _key_for(label: str) -> str:
    ascii_label = label.strip().encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", ascii_label).strip("_")


def _field_keys(state: SandboxState) -> list[str]:
    fields = state.table("kit_custom_fields").values()
    return [field["key"] for field in sorted(fields, key=lambda f: f["id"])]


def _public(state: SandboxState, subscriber: dict[str, Any]) -> dict[str, Any]:
    """A subscriber as Kit's API and webhooks show it."""
    values = subscriber.get("fields", {})
    return {
        "id": subscriber["id"],
        "first_name": subscriber.get("first_name"),
        "email_address": subscriber["email_address"],
        "state": subscriber["state"],
        "created_at": subscriber["created_at"],
        "fields": {key: values.get(key) for key in _field_keys(state)},
    }


def _record_message(
    state: SandboxState, subscriber: dict[str, Any], kind: str, source_id: str
) -> dict[str, Any] | None:
    """An email Kit sends the subscriber (a sequence's, a tag automation's, a broadcast): none to a
    subscriber who is not active. Call with the state's lock held."""
    if subscriber["state"] != "active":
        return None
    message_id = state.next_id("kit_messages", start=1)
    message = {
        "id": int(message_id),
        "subscriber_id": subscriber["id"],
        "kind": kind,
        "source_id": int(source_id),
        "links": list(MESSAGE_LINKS),
        "clicked": [],
        "sent_at": now_iso(),
    }
    state.table("kit_messages")[message_id] = message
    return message


@register("kit")
class Kit(ProviderHandler):
    """Kit API v4: subscriber upsert and lookup, unsubscribe, tags, sequences, custom fields."""

    @property
    def subscribers(self) -> dict[str, Any]:
        return self.state.table("kit_subscribers")

    @property
    def tags(self) -> dict[str, Any]:
        return self.state.table("kit_tags")

    @property
    def sequences(self) -> dict[str, Any]:
        return self.state.table("kit_sequences")

    @property
    def custom_fields(self) -> dict[str, Any]:
        return self.state.table("kit_custom_fields")

    @classmethod
    def fault_response(cls, status: int, retry_after: float) -> Response:
        if status == 429:
            return PlainTextResponse("Retry later", status_code=429)
        message = "Internal Server Error" if status < 503 else "Service Unavailable"
        return JSONResponse({"errors": [message]}, status_code=status)

    def error(self, status: int, *messages: str) -> Response:
        return JSONResponse({"errors": list(messages)}, status_code=status)

    def ok(self, payload: Any, status: int = 200) -> Response:
        return JSONResponse(payload, status_code=status)

    def no_content(self) -> Response:
        return Response(status_code=204)

    # -- dispatch --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            ("GET", re.compile(r"/v4/subscribers"), self.list_subscribers),
            ("POST", re.compile(r"/v4/subscribers"), self.upsert_subscriber),
            ("GET", re.compile(r"/v4/subscribers/(\d+)"), self.get_subscriber),
            ("POST", re.compile(r"/v4/subscribers/(\d+)/unsubscribe"), self.unsubscribe),
            ("GET", re.compile(r"/v4/subscribers/(\d+)/tags"), self.subscriber_tags),
            ("POST", re.compile(r"/v4/tags/(\d+)/subscribers"), self.tag_by_email),
            ("DELETE", re.compile(r"/v4/tags/(\d+)/subscribers"), self.untag_by_email),
            ("POST", re.compile(r"/v4/tags/(\d+)/subscribers/(\d+)"), self.tag_by_id),
            ("DELETE", re.compile(r"/v4/tags/(\d+)/subscribers/(\d+)"), self.untag_by_id),
            ("POST", re.compile(r"/v4/sequences/(\d+)/subscribers"), self.add_to_sequence),
            ("GET", re.compile(r"/v4/custom_fields"), self.list_custom_fields),
            ("POST", re.compile(r"/v4/custom_fields"), self.create_custom_field),
            ("GET", re.compile(r"/v4/webhook_endpoints"), self.list_endpoints),
            ("POST", re.compile(r"/v4/webhook_endpoints"), self.create_endpoint),
            ("GET", re.compile(r"/v4/webhook_endpoints/(\d+)"), self.get_endpoint),
            ("PUT", re.compile(r"/v4/webhook_endpoints/(\d+)"), self.update_endpoint),
            ("DELETE", re.compile(r"/v4/webhook_endpoints/(\d+)"), self.delete_endpoint),
            ("POST", re.compile(r"/v4/webhook_endpoints/(\d+)/rotate_secret"), self.rotate_secret),
            ("GET", re.compile(r"/v4/webhooks"), self.list_webhooks),
            ("POST", re.compile(r"/v4/webhooks"), self.create_webhook),
            ("DELETE", re.compile(r"/v4/webhooks/(\d+)"), self.delete_webhook),
        ]

    def answer(self) -> Response:
        if not self._authenticated():
            return self.error(401, "The access token is invalid")
        method = self.request.method
        for route_method, pattern, handler in self.routes():
            matched = pattern.fullmatch(self.path)
            if matched and route_method == method:
                return handler(*matched.groups())
        return self.error(404, "Not Found")

    def _authenticated(self) -> bool:
        api_key = self.request.headers.get("x-kit-api-key")
        if api_key is not None:
            return bool(api_key.strip())
        auth = self.request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and bool(auth[len("Bearer ") :].strip())

    # -- records ---------------------------------------------------------------------------------

    def _by_email(self, email: str) -> dict[str, Any] | None:
        return _subscriber_of(self.state, email)

    def _body_email(self) -> str | None:
        email = self.body.get("email_address") if isinstance(self.body, dict) else None
        return email.strip() if isinstance(email, str) and email.strip() else None

    def _tag(self, tag_id: str) -> dict[str, Any]:
        """The creator's tag; made on first use of the id."""
        return self.tags.setdefault(
            tag_id, {"id": int(tag_id), "name": f"Tag {tag_id}", "created_at": now_iso()}
        )

    def _sequence(self, sequence_id: str) -> dict[str, Any]:
        return self.sequences.setdefault(
            sequence_id,
            {
                "id": int(sequence_id),
                "name": f"Sequence {sequence_id}",
                "active": True,
                "created_at": now_iso(),
            },
        )

    def _field_keys(self) -> list[str]:
        return _field_keys(self.state)

    def _public(self, subscriber: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {**_public(self.state, subscriber), **extra}

    def _page(self, items: list[dict[str, Any]], *, descending: bool) -> tuple[list[dict[str, Any]], Any]:
        """One cursor page of `items` (sorted by id), or an error response as the second value."""
        params = self.request.query_params
        try:
            per_page = int(params.get("per_page") or DEFAULT_PER_PAGE)
        except ValueError:
            return [], self.error(422, "per_page must be an integer")
        if not 1 <= per_page <= MAX_PER_PAGE:
            return [], self.error(422, f"per_page must be between 1 and {MAX_PER_PAGE}")
        ordered = sorted(items, key=lambda item: item["id"], reverse=descending)
        after = params.get("after")
        if after:
            last = _from_cursor(after)
            if last is None:
                return [], self.error(422, "The after cursor is invalid")
            ordered = [i for i in ordered if (i["id"] < last if descending else i["id"] > last)]
        page = ordered[:per_page]
        pagination = {
            "has_previous_page": bool(after),
            "has_next_page": len(ordered) > per_page,
            "start_cursor": _cursor(page[0]["id"]) if page else None,
            "end_cursor": _cursor(page[-1]["id"]) if page else None,
            "per_page": per_page,
        }
        return page, pagination

    # -- subscribers -----------------------------------------------------------------------------

    def list_subscribers(self) -> Response:
        params = self.request.query_params
        status = params.get("status") or "active"
        if status not in (*STATES, "all"):
            return self.error(422, f"Status {status} is not a valid status")
        emails = {e.strip().lower() for e in (params.get("email_address") or "").split(",") if e.strip()}
        matching = [
            s
            for s in self.subscribers.values()
            if (status == "all" or s["state"] == status) and (not emails or s["email_address"] in emails)
        ]
        page, pagination = self._page(matching, descending=True)
        if isinstance(pagination, Response):
            return pagination
        return self.ok({"subscribers": [self._public(s) for s in page], "pagination": pagination})

    def get_subscriber(self, subscriber_id: str) -> Response:
        subscriber = self.subscribers.get(subscriber_id)
        if subscriber is None:
            return self.error(404, "Not Found")
        return self.ok({"subscriber": self._public(subscriber)})

    def upsert_subscriber(self) -> Response:
        body = self.body if isinstance(self.body, dict) else {}
        email = body.get("email_address")
        if not isinstance(email, str) or not EMAIL.match(email.strip()):
            return self.error(422, "Email address is invalid")
        first_name = body.get("first_name")
        if first_name is not None and not isinstance(first_name, str):
            return self.error(422, "First name must be a string")
        state = body.get("state")
        if state is not None and state not in STATES:
            return self.error(422, f"State {state} is not a valid state")
        fields = body.get("fields") or {}
        if not isinstance(fields, dict) or not all(isinstance(v, (str, type(None))) for v in fields.values()):
            return self.error(422, "Fields must be an object of strings")
        if len(fields) > 140:
            return self.error(422, "A maximum of 140 custom fields can be set at a time")
        with self.state.lock:
            known = set(self._field_keys())
            warnings = [f"Unknown custom field key ignored: {key}" for key in fields if key not in known]
            values = {key: value for key, value in fields.items() if key in known}
            subscriber = self._by_email(email)
            if subscriber is None:
                subscriber_id = self.state.next_id("kit_subscribers")
                subscriber = {
                    "id": int(subscriber_id),
                    "first_name": first_name,
                    "email_address": email.strip().lower(),
                    "state": state or "active",
                    "created_at": now_iso(),
                    "fields": values,
                    "tags": {},
                    "sequences": {},
                }
                self.subscribers[subscriber_id] = subscriber
                status = 201
                self.effect("created", "subscriber", subscriber_id)
            else:
                # Kit's upsert updates the first name and the fields, never the state.
                before = (subscriber.get("first_name"), dict(subscriber["fields"]))
                if "first_name" in body:
                    subscriber["first_name"] = first_name
                subscriber["fields"].update(values)
                changed = before != (subscriber.get("first_name"), subscriber["fields"])
                status = 200
                self.effect("updated" if changed else "unchanged", "subscriber", str(subscriber["id"]))
            self.state.save_records()
            payload: dict[str, Any] = {"subscriber": self._public(subscriber)}
        if warnings:
            payload["warnings"] = warnings
        return self.ok(payload, status=status)

    def unsubscribe(self, subscriber_id: str) -> Response:
        with self.state.lock:
            subscriber = self.subscribers.get(subscriber_id)
            if subscriber is None:
                return self.error(404, "Not Found")
            changed = subscriber["state"] != "cancelled"
            subscriber["state"] = "cancelled"
            self.effect("updated" if changed else "unchanged", "subscriber", subscriber_id)
            self.state.save_records()
        return self.no_content()

    def subscriber_tags(self, subscriber_id: str) -> Response:
        subscriber = self.subscribers.get(subscriber_id)
        if subscriber is None:
            return self.error(404, "Not Found")
        tags = [
            {"id": int(tag_id), "name": self.tags.get(tag_id, {}).get("name"), "tagged_at": tagged_at}
            for tag_id, tagged_at in subscriber["tags"].items()
        ]
        page, pagination = self._page(tags, descending=True)
        if isinstance(pagination, Response):
            return pagination
        return self.ok({"tags": page, "pagination": pagination})

    # -- tags ------------------------------------------------------------------------------------

    def _tag_subscriber(self, tag_id: str, subscriber: dict[str, Any] | None) -> Response:
        if subscriber is None:
            return self.error(404, "Not Found")
        self._tag(tag_id)
        object_id = f"{tag_id}:{subscriber['id']}"
        if tag_id in subscriber["tags"]:
            self.effect("duplicate", "tagging", object_id)
            status = 200
        else:
            subscriber["tags"][tag_id] = now_iso()
            _record_message(self.state, subscriber, "automation", tag_id)
            self.effect("created", "tagging", object_id)
            status = 201
        self.state.save_records()
        return self.ok(
            {"subscriber": self._public(subscriber, tagged_at=subscriber["tags"][tag_id])}, status=status
        )

    def tag_by_email(self, tag_id: str) -> Response:
        email = self._body_email()
        if email is None:
            return self.error(422, "Either subscriber id or email address is required to tag subscriber")
        with self.state.lock:
            return self._tag_subscriber(tag_id, self._by_email(email))

    def tag_by_id(self, tag_id: str, subscriber_id: str) -> Response:
        with self.state.lock:
            return self._tag_subscriber(tag_id, self.subscribers.get(subscriber_id))

    def _untag(self, tag_id: str, subscriber: dict[str, Any] | None) -> Response:
        if subscriber is None:
            return self.error(404, "Not Found")
        self._tag(tag_id)
        object_id = f"{tag_id}:{subscriber['id']}"
        if subscriber["tags"].pop(tag_id, None) is None:
            self.effect("unchanged", "tagging", object_id)
        else:
            self.effect("deleted", "tagging", object_id)
        self.state.save_records()
        return self.no_content()

    def untag_by_email(self, tag_id: str) -> Response:
        email = self._body_email()
        if email is None:
            return self.error(
                422, "Either subscriber id or email address is required to remove tag from subscriber"
            )
        with self.state.lock:
            return self._untag(tag_id, self._by_email(email))

    def untag_by_id(self, tag_id: str, subscriber_id: str) -> Response:
        with self.state.lock:
            return self._untag(tag_id, self.subscribers.get(subscriber_id))

    # -- sequences -------------------------------------------------------------------------------

    def add_to_sequence(self, sequence_id: str) -> Response:
        email = self._body_email()
        if email is None:
            return self.error(422, "Email address is required")
        with self.state.lock:
            sequence = self._sequence(sequence_id)
            subscriber = self._by_email(email)
            if subscriber is None:
                return self.error(404, "Not Found")
            if not sequence.get("active", True):
                return self.error(422, "Sequence is inactive")
            object_id = f"{sequence_id}:{subscriber['id']}"
            if sequence_id in subscriber["sequences"]:
                self.effect("duplicate", "sequence_subscription", object_id)
                status = 200
            else:
                subscriber["sequences"][sequence_id] = now_iso()
                _record_message(self.state, subscriber, "sequence", sequence_id)
                self.effect("created", "sequence_subscription", object_id)
                status = 201
            self.state.save_records()
            added_at = subscriber["sequences"][sequence_id]
            return self.ok({"subscriber": self._public(subscriber, added_at=added_at)}, status=status)

    # -- custom fields ---------------------------------------------------------------------------

    def list_custom_fields(self) -> Response:
        page, pagination = self._page(list(self.custom_fields.values()), descending=False)
        if isinstance(pagination, Response):
            return pagination
        return self.ok({"custom_fields": page, "pagination": pagination})

    def create_custom_field(self) -> Response:
        label = self.body.get("label") if isinstance(self.body, dict) else None
        if not isinstance(label, str) or not label.strip():
            return self.error(422, "Label can't be blank")
        key = _key_for(label)
        if not key:
            return self.error(422, "Label must contain letters or digits")
        with self.state.lock:
            existing = next((f for f in self.custom_fields.values() if f["key"] == key), None)
            if existing is not None:
                self.effect("duplicate", "custom_field", str(existing["id"]))
                return self.ok({"custom_field": existing})
            field_id = self.state.next_id("kit_custom_fields", start=1)
            field = {
                "id": int(field_id),
                "name": f"ck_field_{field_id}_{key}",
                "key": key,
                "label": label.strip(),
            }
            self.custom_fields[field_id] = field
            self.effect("created", "custom_field", field_id)
            self.state.save_records()
        return self.ok({"custom_field": field}, status=201)

    # -- webhook endpoints -----------------------------------------------------------------------

    @property
    def endpoints(self) -> dict[str, Any]:
        return self.state.table(ENDPOINTS)

    @property
    def legacy_webhooks(self) -> dict[str, Any]:
        return self.state.table(LEGACY_WEBHOOKS)

    @staticmethod
    def _endpoint_public(endpoint: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
        shown = {k: v for k, v in endpoint.items() if k != "secret"}
        if with_secret:
            shown["secret"] = endpoint["secret"]
        return shown

    def _endpoint_fields(self, body: dict[str, Any], *, partial: bool) -> dict[str, Any] | Response:
        """The fields of a create or update, checked as Kit checks them."""
        fields: dict[str, Any] = {}
        if "url" in body or not partial:
            url = body.get("url")
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                return self.error(422, "Url must be a valid HTTP(S) URL")
            fields["url"] = url
        if "events" in body or not partial:
            events = body.get("events")
            if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
                return self.error(422, "Events must be a non-empty list of event types")
            unknown = sorted(set(events) - ENDPOINT_EVENTS)
            if unknown:
                return self.error(422, *(f"Event {name} is not a valid event type" for name in unknown))
            fields["events"] = sorted(set(events))
        for text in ("name", "description"):
            if text in body:
                if body[text] is not None and not isinstance(body[text], str):
                    return self.error(422, f"{text.capitalize()} must be a string")
                fields[text] = body[text]
        return fields

    def list_endpoints(self) -> Response:
        page, pagination = self._page(list(self.endpoints.values()), descending=False)
        if isinstance(pagination, Response):
            return pagination
        return self.ok(
            {"webhook_endpoints": [self._endpoint_public(e) for e in page], "pagination": pagination}
        )

    def create_endpoint(self) -> Response:
        body = self.body if isinstance(self.body, dict) else {}
        fields = self._endpoint_fields(body, partial=False)
        if isinstance(fields, Response):
            return fields
        with self.state.lock:
            endpoint_id = self.state.next_id(ENDPOINTS, start=1)
            endpoint = {
                "id": int(endpoint_id),
                "name": fields.get("name"),
                "description": fields.get("description"),
                "url": fields["url"],
                "events": fields["events"],
                "status": "active",
                "created_at": now_iso(),
                "secret": "whsec_" + secrets.token_hex(24),
            }
            self.endpoints[endpoint_id] = endpoint
            self.effect("created", "webhook_endpoint", endpoint_id)
            self.state.save_records()
        return self.ok({"webhook_endpoint": self._endpoint_public(endpoint, with_secret=True)}, status=201)

    def get_endpoint(self, endpoint_id: str) -> Response:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            return self.error(404, "Not Found")
        return self.ok({"webhook_endpoint": self._endpoint_public(endpoint)})

    def update_endpoint(self, endpoint_id: str) -> Response:
        body = self.body if isinstance(self.body, dict) else {}
        fields = self._endpoint_fields(body, partial=True)
        if isinstance(fields, Response):
            return fields
        with self.state.lock:
            endpoint = self.endpoints.get(endpoint_id)
            if endpoint is None:
                return self.error(404, "Not Found")
            changed = any(endpoint.get(k) != v for k, v in fields.items())
            endpoint.update(fields)
            self.effect("updated" if changed else "unchanged", "webhook_endpoint", endpoint_id)
            self.state.save_records()
        return self.ok({"webhook_endpoint": self._endpoint_public(endpoint)})

    def delete_endpoint(self, endpoint_id: str) -> Response:
        with self.state.lock:
            if self.endpoints.pop(endpoint_id, None) is None:
                return self.error(404, "Not Found")
            self.effect("deleted", "webhook_endpoint", endpoint_id)
            self.state.save_records()
        return self.no_content()

    def rotate_secret(self, endpoint_id: str) -> Response:
        with self.state.lock:
            endpoint = self.endpoints.get(endpoint_id)
            if endpoint is None:
                return self.error(404, "Not Found")
            endpoint["secret"] = "whsec_" + secrets.token_hex(24)
            self.effect("updated", "webhook_endpoint", endpoint_id)
            self.state.save_records()
        return self.ok({"webhook_endpoint": self._endpoint_public(endpoint, with_secret=True)})

    # -- legacy webhooks -------------------------------------------------------------------------

    def list_webhooks(self) -> Response:
        page, pagination = self._page(list(self.legacy_webhooks.values()), descending=False)
        if isinstance(pagination, Response):
            return pagination
        return self.ok({"webhooks": page, "pagination": pagination})

    def create_webhook(self) -> Response:
        body = self.body if isinstance(self.body, dict) else {}
        target = body.get("target_url")
        parts = urlsplit(target) if isinstance(target, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            return self.error(422, "Target url must be a valid HTTP(S) URL")
        event = body.get("event")
        name = event.get("name") if isinstance(event, dict) else None
        if name not in LEGACY_EVENTS:
            return self.error(422, f"Event name {name} is not a valid event")
        assert isinstance(event, dict)
        initiator = event.get("initiator_value")
        if name == "subscriber.link_click" and not (isinstance(initiator, str) and initiator.strip()):
            return self.error(422, "Initiator value is required for subscriber.link_click")
        with self.state.lock:
            webhook_id = self.state.next_id(LEGACY_WEBHOOKS, start=1)
            webhook = {
                "id": int(webhook_id),
                "account_id": 1,
                "event": {"name": name, "initiator_value": initiator},
                "target_url": target,
            }
            self.legacy_webhooks[webhook_id] = webhook
            self.effect("created", "webhook", webhook_id)
            self.state.save_records()
        return self.ok({"webhook": webhook}, status=201)

    def delete_webhook(self, webhook_id: str) -> Response:
        with self.state.lock:
            if self.legacy_webhooks.pop(webhook_id, None) is None:
                return self.error(404, "Not Found")
            self.effect("deleted", "webhook", webhook_id)
            self.state.save_records()
        return self.no_content()


# -- the recipient's side (`POST /_engagement`, `POST /_campaign`) ------------------------------


def _subscriber_of(state: SandboxState, email: str) -> dict[str, Any] | None:
    wanted = email.strip().lower()
    return next((s for s in state.table("kit_subscribers").values() if s["email_address"] == wanted), None)


def _messages_to(state: SandboxState, subscriber: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in state.table("kit_messages").values() if m["subscriber_id"] == subscriber["id"]]


def last_sent_at(state: SandboxState, email: str) -> str | None:
    """When Kit last sent this address an email, or None."""
    with state.lock:
        subscriber = _subscriber_of(state, email)
        if subscriber is None:
            return None
        return max((m["sent_at"] for m in _messages_to(state, subscriber)), default=None)


def _broadcast(state: SandboxState, subscriber: dict[str, Any]) -> dict[str, Any]:
    broadcast_id = state.next_id("kit_broadcasts", start=1)
    message = _record_message(state, subscriber, "broadcast", broadcast_id)
    if message is None:
        raise LookupError(f"Kit does not email {subscriber['email_address']}: it is {subscriber['state']}")
    return message


def send_campaign(state: SandboxState, email: str) -> dict[str, Any]:
    """A creator sends a broadcast to `email` from Kit's own UI."""
    with state.lock:
        subscriber = _subscriber_of(state, email)
        if subscriber is None:
            raise LookupError(f"Kit has no subscriber {email}")
        message = _broadcast(state, subscriber)
        state.save_records()
    return {"provider": "kit", "message": message["id"], "broadcast_id": message["source_id"]}


def kit_signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _deliver(state: SandboxState, url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """One POST to the integration, as Kit makes it; its answer is recorded with the delivery."""
    try:
        response = httpx.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", "User-Agent": "Kit-Webhooks/1.0", **headers},
            timeout=DELIVERY_TIMEOUT_SECONDS,
        )
        outcome: dict[str, Any] = {"url": url, "status": response.status_code}
    except httpx.HTTPError as exc:
        outcome = {"url": url, "status": None, "error": type(exc).__name__}
    with state.lock:
        delivery_id = state.next_id("kit_deliveries", start=1)
        state.table("kit_deliveries")[delivery_id] = {**outcome, "at": now_iso()}
        state.save_records()
    return outcome


def engage(state: SandboxState, email: str, action: str) -> dict[str, Any]:
    """The recipient of Kit's latest email to `email` (a broadcast's, when none was sent yet) acts
    on it; Kit tells the integration what its webhooks report (see the module docstring)."""
    if action == "open":
        raise LookupError("Kit reports no opens to an integration (neither its webhooks nor its API)")
    with state.lock:
        subscriber = _subscriber_of(state, email)
        if subscriber is None:
            raise LookupError(f"Kit has no subscriber {email}")
        messages = _messages_to(state, subscriber)
        message = max(messages, key=lambda m: (m["sent_at"], m["id"])) if messages else None
        if message is None:
            message = _broadcast(state, subscriber)
        deliveries: list[tuple[str, bytes, dict[str, str]]] = []
        link = None
        if action == "click":
            event_id = None
            # The next link not clicked yet (all clicked: the first again).
            links = message.get("links") or [message.get("link")]
            link = next(
                (candidate for candidate in links if candidate not in message.get("clicked", [])), links[0]
            )
            message.setdefault("clicked", []).append(link)
            payload = json.dumps({"subscriber": _public(state, subscriber)}).encode()
            for webhook in state.table(LEGACY_WEBHOOKS).values():
                registered = webhook["event"]
                if registered["name"] == "subscriber.link_click" and registered["initiator_value"] == link:
                    deliveries.append((webhook["target_url"], payload, {}))
        else:
            new_state, event_type = OUTCOMES[action]
            subscriber["state"] = new_state
            event_id = str(uuid.uuid4())
            envelope = {
                "delivery_id": int(state.next_id("kit_delivery_ids", start=1)),
                "events": [
                    {
                        "id": event_id,
                        "type": event_type,
                        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "data": {"subscriber": _public(state, subscriber)},
                    }
                ],
            }
            payload = json.dumps(envelope).encode()
            for endpoint in state.table(ENDPOINTS).values():
                if endpoint["status"] == "active" and event_type in endpoint["events"]:
                    signature = kit_signature(endpoint["secret"], payload, int(time.time()))
                    deliveries.append((endpoint["url"], payload, {"X-Kit-Signature": signature}))
        state.save_records()
    # Outside the lock: the integration may call Kit back while it handles the delivery.
    delivered = [_deliver(state, url, body, headers) for url, body, headers in deliveries]
    return {
        "provider": "kit",
        "action": action,
        "event_id": event_id,
        "message": message["id"],
        "link": link,
        "campaign": f"Broadcast {message['source_id']}" if message["kind"] == "broadcast" else None,
        "deliveries": delivered,
    }


register_engagement("kit", last_sent_at, engage, send_campaign)
