"""Kit (formerly ConvertKit) API v4 as the sandbox answers it: subscribers, tags, sequences, custom fields.

Auth is `X-Kit-Api-Key` or `Authorization: Bearer`; any non-empty credential is this account's.
Errors are `{"errors": ["..."]}`; a 429 is the plain text `Retry later` with no `Retry-After`, as
Kit sends it (so an injected fault's `retry_after_seconds` does not reach the client). Lists are
cursor pages (`pagination` with `has_next_page` and `end_cursor`, `?after=`). Ids are integers.
The account's tags and sequences come into being on first use of a numeric id (the creator made
them in Kit's app); a sequence record with `"active": false` answers 422 `Sequence is inactive`.
Custom fields exist only once created through `POST /v4/custom_fields`; unknown keys written on a
subscriber are dropped and named in `warnings`, as Kit does.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse, PlainTextResponse

from sandbox.core import ProviderHandler, now_iso, register

STATES = ("active", "cancelled", "bounced", "complained", "inactive")
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
DEFAULT_PER_PAGE = 500
MAX_PER_PAGE = 1000

Route = tuple[str, re.Pattern[str], Callable[..., Response]]


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
        wanted = email.strip().lower()
        return next((s for s in self.subscribers.values() if s["email_address"] == wanted), None)

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
        return [field["key"] for field in sorted(self.custom_fields.values(), key=lambda f: f["id"])]

    def _public(self, subscriber: dict[str, Any], **extra: Any) -> dict[str, Any]:
        values = subscriber.get("fields", {})
        return {
            "id": subscriber["id"],
            "first_name": subscriber.get("first_name"),
            "email_address": subscriber["email_address"],
            "state": subscriber["state"],
            "created_at": subscriber["created_at"],
            "fields": {key: values.get(key) for key in self._field_keys()},
            **extra,
        }

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
