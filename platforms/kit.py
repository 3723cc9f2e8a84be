"""Kit (formerly ConvertKit) API v4 as the email platform: subscribers, tags, sequences.

Base URL `https://api.kit.com`, every path under `/v4`. Two kinds of credential, chosen by the
constructor keyword: a v4 API key for the creator's own account, sent as `X-Kit-Api-Key`, or an
OAuth access token of an installed app, sent as `Authorization: Bearer`. (v3 keys do not work on v4.)

Endpoints used:
- `POST /v4/subscribers`: an upsert by `email_address` (201 new, 200 existing, 202 new with more than
  ten custom fields, written asynchronously); `first_name` plus `fields`, the custom fields by key.
- `GET /v4/subscribers?email_address=...&status=all`: the lookup by email (`status` defaults to
  `active`, which would miss unsubscribed people).
- `GET /v4/subscribers/{id}/tags`, `GET /v4/custom_fields`: cursor pages, read to the end
  (`pagination.has_next_page`, `end_cursor`, passed back as `after`).
- `POST /v4/tags/{tag_id}/subscribers` (by email; 201 tagged, 200 already tagged) and
  `DELETE /v4/tags/{tag_id}/subscribers/{id}` (204).
- `POST /v4/sequences/{sequence_id}/subscribers` (by email; 201 added, 200 already in it).
- `POST /v4/subscribers/{id}/unsubscribe` (204).
- `POST /v4/custom_fields` (by label; 201 created, 200 when it exists).

Errors are JSON `{"errors": ["..."]}`: 401 for a bad credential (or an endpoint that needs OAuth),
404 `Not Found` for an unknown subscriber, tag or sequence id, 422 for invalid parameters
("Email address is invalid", "Sequence is inactive"), 403 past the plan's subscriber limit; all of
them permanent, carrying Kit's own words. 5xx and timeouts are transient.

Rate limits count per credential: 120 requests per rolling 60 s for an API key, 600 for an OAuth
token. Past it Kit answers 429 with the plain-text body `Retry later` and no `Retry-After`; the
client honours `Retry-After` should one appear and otherwise asks to wait the whole 60 s window,
after which the limit has reset. The throttle key is `kit` for an API key and `kit:oauth` for a
token, so each can be given its own limit.

Idempotency. Kit honours no idempotency key (the key is sent as `Idempotency-Key` only so that call
logs tie a request to its journey step); every write is a set operation on a natural key instead:
- upsert_profile: the email. Kit's upsert answers 201 for a new subscriber and 200 for an existing
  one, so a replay after a lost answer finds the subscriber: `created=False`, same id.
- add_to_list: the list is a Kit tag (`list_id` is the tag id). Tagging is a set operation, 201 the
  first time and 200 after; the id is `{tag_id}:{subscriber_id}`. Kit tags only existing
  subscribers: when the tagging answers 404 or 422 the email is upserted as a subscriber (in Kit a
  subscribed contact) and tagged again, so a wrong tag id fails only after that upsert.
- remove_from_list: read before write. The subscriber's tags are read; only a tag still there is
  deleted (`created=True`), a tag already gone answers `created=False`. No subscriber at all is
  nothing to remove: `created=False`, id `{tag_id}:none`.
- send_email: Kit has no single-send (transactional) API. `template_id` names a sequence (`123` or
  `sequence:123`) or a tag whose Visual Automation sends the email (`tag:45`). The variables are
  written as the subscriber's custom fields (the templates read them as `{{ subscriber.key }}`),
  then the subscriber is added to the sequence or tagged: 201 the first time, 200 once in it, so a
  replay sends nothing more. The limit of that set semantic: the same template is never sent to
  the same subscriber twice this way (a second add is a no-op, even under a new key), the
  variables are per subscriber rather than per send (a later send overwrites them, and a sequence
  email goes out with the values current when it is sent), and `subject` is the sequence email's
  own, not the message's.
- suppress: read before write. A subscriber already cancelled, bounced or complained answers
  `created=False`; an active or inactive one is unsubscribed. An email Kit does not know is created
  in the state matching the reason (`cancelled`, `bounced`, `complained`), so the suppression is
  on record in Kit before any import or form could subscribe it.

Webhooks (a setup step, `journeys kit connect`, not a port method): `connect_webhooks` registers
the engine's receiver as a webhook endpoint (`POST /v4/webhook_endpoints`, for the email outcomes)
and, for each tracked link, a legacy `subscriber.link_click` webhook (`POST /v4/webhooks`, the
only way Kit reports clicks). Kit generates the endpoint's signing secret and shows it only when it
creates the endpoint or rotates its secret (`POST /v4/webhook_endpoints/{id}/rotate_secret`), so
connecting again to the same URL rotates it: the secret returned is always the one in force.
Endpoints made with an OAuth token are scoped to that app.

Honest limits: Kit's API cannot change an existing subscriber's state other than by unsubscribing,
so bounces and complaints of known subscribers are recorded as `cancelled`; and the upsert does not
re-activate a suppressed subscriber. Custom fields must exist before they can be written (Kit drops
unknown keys, naming them in `warnings`); the client creates the missing ones on first use, by
label, unless `create_missing_fields=False` (then `ensure_custom_fields` is the setup step).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

import httpx

from domain.ratelimits import Throttle
from domain.webhooks import KIT_TYPES
from platforms.base import CallObserver, PlatformClient
from platforms.errors import PermanentPlatformError, parse_retry_after
from platforms.ports import EmailMessage, Person, SuppressionReason, WriteResult

log = logging.getLogger(__name__)

PROVIDER = "kit"
DEFAULT_BASE_URL = "https://api.kit.com"
# Kit's rolling window: after waiting this long the credential's limit has reset.
RATE_LIMIT_WINDOW_SECONDS = 60.0
# The largest page Kit serves (its default is 500).
PAGE_SIZE = 1000

# Person attribute -> Kit custom field key. `first_name` is a column of its own, not a custom field.
DEFAULT_FIELD_KEYS: dict[str, str] = {
    "last_name": "last_name",
    "company": "company",
    "job_title": "job_title",
    "phone": "phone",
    "country": "country",
    "lead_source": "lead_source",
    "lifecycle_stage": "lifecycle_stage",
    "lead_score": "lead_score",
    "owner_id": "owner_id",
    "lead_id": "lead_id",
}

SUPPRESSED_STATES = frozenset({"cancelled", "bounced", "complained"})
STATE_FOR_REASON: dict[str, str] = {
    "unsubscribed": "cancelled",
    "manual": "cancelled",
    "bounced": "bounced",
    "spam_complaint": "complained",
}


LINK_CLICK = "subscriber.link_click"


@dataclass(frozen=True)
class KitWebhooks:
    """What `connect_webhooks` left registered: the endpoint, its secret in force, the click hooks."""

    endpoint_id: int
    secret: str
    rotated: bool
    link_webhook_ids: tuple[int, ...]


def _setup_key(kind: str, url: str) -> str:
    """The call log's key for a registration: the URL hashed, since it carries the ingest key."""
    return f"kit-connect:{kind}:{hashlib.sha256(url.encode()).hexdigest()[:24]}"


def link_click_target(receiver_url: str, link: str) -> str:
    """The legacy webhook's target: the receiver, with the link it reports passed back as `url`."""
    separator = "&" if "?" in receiver_url else "?"
    return f"{receiver_url}{separator}{urlencode({'url': link})}"


def _kit_id(value: str, what: str) -> str:
    """Kit's ids are integers; anything else is a configuration error, not worth a request."""
    text = str(value).strip()
    if not text.isdigit():
        raise PermanentPlatformError(PROVIDER, f"{what} must be a Kit numeric id, got {value!r}")
    return text


def _email_target(template_id: str) -> tuple[Literal["sequence", "tag"], str]:
    kind, _, rest = template_id.partition(":")
    if not rest and kind.strip().isdigit():
        return "sequence", kind.strip()
    if rest and kind in ("sequence", "tag"):
        return ("sequence" if kind == "sequence" else "tag"), _kit_id(rest, "template_id")
    raise PermanentPlatformError(
        PROVIDER,
        f"template_id must be `<sequence id>`, `sequence:<id>` or `tag:<id>`, got {template_id!r}"
        " (a template's Kit sequence or tag is set in config/email_templates.toml, [kit])",
    )


def _field_value(value: Any) -> str:
    """Custom field values are strings in Kit."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def _label_for(key: str) -> str:
    """A label from which Kit derives the same key (lowercased, underscored): `lead_score` -> `Lead score`."""
    return key.replace("_", " ").strip().capitalize()


class KitClient(PlatformClient):
    """The `EmailPort` on Kit API v4."""

    provider = PROVIDER
    # Every Kit subscriber is on the mailing audience: writing a profile subscribes it.
    upsert_subscribes: ClassVar[bool] = True

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str | None = None,
        access_token: str | None = None,
        field_keys: Mapping[str, str] | None = None,
        templates: Mapping[str, str] | None = None,
        create_missing_fields: bool = True,
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        """`api_key` (a v4 API key) or `access_token` (OAuth), exactly one. `field_keys` overrides
        which Kit custom field each Person attribute goes to (an empty key leaves it out).
        `templates` names the Kit sequence or tag (`sequence:<id>`, `tag:<id>`) of each template
        name a journey sends (config/email_templates.toml); a template id that is not a name there
        must be Kit's own."""
        super().__init__(http, base_url=base_url, throttle=throttle, observer=observer)
        if (api_key is None) == (access_token is None):
            raise ValueError("KitClient needs exactly one of api_key (a v4 API key) or access_token (OAuth)")
        self._api_key = api_key
        self._access_token = access_token
        self._field_keys = {**DEFAULT_FIELD_KEYS, **(field_keys or {})}
        self._create_missing_fields = create_missing_fields
        self._templates = dict(templates or {})
        # The account's custom field keys, read once per client.
        self._known_fields: set[str] | None = None

    # -- PlatformClient hooks ------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._access_token is not None:
            headers["Authorization"] = f"Bearer {self._access_token}"
        else:
            headers["X-Kit-Api-Key"] = self._api_key or ""
        return headers

    def _throttle_key(self, operation: str) -> str:
        # The limit is per credential, and an OAuth token's is five times an API key's.
        return "kit:oauth" if self._access_token is not None else "kit"

    def _error_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors:
            text = "; ".join(str(error) for error in errors)
        else:
            text = response.text.strip()[:300] or response.reason_phrase
        return f"{response.status_code} {text}"

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value:
            return parse_retry_after(value, default=RATE_LIMIT_WINDOW_SECONDS)
        return RATE_LIMIT_WINDOW_SECONDS

    # -- helpers ---------------------------------------------------------------------------------

    async def _write(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        idempotency_key: str,
        json_body: Any = None,
        accept_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        def accept(response: httpx.Response) -> bool:
            return response.status_code < 300 or response.status_code in accept_statuses

        return await self._call(
            operation,
            method,
            path,
            json=json_body,
            headers={"Idempotency-Key": idempotency_key},
            accept=accept,
        )

    async def _pages(
        self, operation: str, path: str, key: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a cursor-paginated list."""
        query: dict[str, Any] = {**(params or {}), "per_page": PAGE_SIZE}
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            if after is not None:
                query["after"] = after
            body = (await self._call(operation, "GET", path, params=query)).json()
            items.extend(body.get(key) or [])
            pagination = body.get("pagination") or {}
            cursor = pagination.get("end_cursor")
            if not pagination.get("has_next_page") or not cursor or cursor == after:
                return items
            after = str(cursor)

    async def find_subscriber(self, email: str) -> dict[str, Any] | None:
        """The subscriber with this email in any state, or None."""
        found = await self._pages(
            "find_subscriber", "/v4/subscribers", "subscribers", {"email_address": email, "status": "all"}
        )
        wanted = email.strip().lower()
        return next((s for s in found if str(s.get("email_address", "")).lower() == wanted), None)

    async def ensure_custom_fields(self, keys: Iterable[str] | None = None) -> set[str]:
        """Creates the custom fields the account lacks (by default those of `field_keys`); returns
        the account's keys. Creating by label is itself idempotent: Kit answers 200 when it exists."""
        wanted = set(keys) if keys is not None else {k for k in self._field_keys.values() if k}
        if self._known_fields is None:
            listed = await self._pages("list_custom_fields", "/v4/custom_fields", "custom_fields")
            self._known_fields = {str(field["key"]) for field in listed}
        for key in sorted(wanted - self._known_fields):
            response = await self._call(
                "create_custom_field", "POST", "/v4/custom_fields", json={"label": _label_for(key)}
            )
            made = str(response.json()["custom_field"]["key"])
            self._known_fields.add(made)
            if made != key:
                log.warning(
                    "kit: custom field %r was created with the key %r; values for %r are dropped",
                    key,
                    made,
                    key,
                )
                self._known_fields.add(key)
        return set(self._known_fields)

    async def _upsert_subscriber(
        self,
        operation: str,
        email: str,
        *,
        idempotency_key: str,
        first_name: str | None = None,
        fields: Mapping[str, str] | None = None,
        state: str | None = None,
    ) -> tuple[dict[str, Any], int]:
        body: dict[str, Any] = {"email_address": email}
        if first_name is not None:
            body["first_name"] = first_name
        if state is not None:
            body["state"] = state
        if fields:
            if self._create_missing_fields:
                await self.ensure_custom_fields(fields)
            body["fields"] = dict(fields)
        response = await self._write(
            operation, "POST", "/v4/subscribers", idempotency_key=idempotency_key, json_body=body
        )
        payload = response.json()
        for warning in payload.get("warnings") or []:
            log.warning("kit: %s: %s", operation, warning)
        return payload["subscriber"], response.status_code

    def _profile_fields(self, person: Person) -> dict[str, str]:
        values: dict[str, Any] = {
            "last_name": person.last_name,
            "company": person.company,
            "job_title": person.job_title,
            "phone": person.phone,
            "country": person.country,
            "lead_source": person.lead_source,
            "lifecycle_stage": person.lifecycle_stage,
            "lead_score": person.lead_score,
            "owner_id": person.owner_id,
            "lead_id": person.lead_id,
        }
        fields = {
            self._field_keys[name]: _field_value(value)
            for name, value in values.items()
            if value is not None and self._field_keys.get(name)
        }
        fields.update(person.properties)
        return fields

    def _result(self, object_type: str, object_id: str, created: bool) -> WriteResult:
        return WriteResult(provider=PROVIDER, object_type=object_type, id=object_id, created=created)

    # -- EmailPort -------------------------------------------------------------------------------

    async def upsert_profile(self, person: Person, *, idempotency_key: str) -> WriteResult:
        subscriber, status = await self._upsert_subscriber(
            "upsert_profile",
            person.email,
            idempotency_key=idempotency_key,
            first_name=person.first_name,
            fields=self._profile_fields(person),
        )
        return self._result("subscriber", str(subscriber["id"]), created=status in (201, 202))

    async def _tag(self, operation: str, email: str, tag_id: str, *, idempotency_key: str) -> WriteResult:
        path = f"/v4/tags/{tag_id}/subscribers"
        body = {"email_address": email}
        # Kit tags existing subscribers only; the common case needs one request, an unknown email two.
        response = await self._write(
            operation,
            "POST",
            path,
            idempotency_key=idempotency_key,
            json_body=body,
            accept_statuses=(404, 422),
        )
        if response.status_code >= 300:
            await self._upsert_subscriber(operation, email, idempotency_key=idempotency_key)
            response = await self._write(
                operation, "POST", path, idempotency_key=idempotency_key, json_body=body
            )
        subscriber = response.json()["subscriber"]
        return self._result("tagging", f"{tag_id}:{subscriber['id']}", created=response.status_code == 201)

    async def add_to_list(self, email: str, list_id: str, *, idempotency_key: str) -> WriteResult:
        """Tags the subscriber with the tag `list_id`, creating the subscriber when Kit has none."""
        return await self._tag(
            "add_to_list", email, _kit_id(list_id, "list_id (a Kit tag id)"), idempotency_key=idempotency_key
        )

    async def remove_from_list(self, email: str, list_id: str, *, idempotency_key: str) -> WriteResult:
        tag_id = _kit_id(list_id, "list_id (a Kit tag id)")
        subscriber = await self.find_subscriber(email)
        if subscriber is None:
            return self._result("tagging", f"{tag_id}:none", created=False)
        subscriber_id = str(subscriber["id"])
        result_id = f"{tag_id}:{subscriber_id}"
        tags = await self._pages("remove_from_list", f"/v4/subscribers/{subscriber_id}/tags", "tags")
        if not any(str(tag.get("id")) == tag_id for tag in tags):
            return self._result("tagging", result_id, created=False)
        response = await self._write(
            "remove_from_list",
            "DELETE",
            f"/v4/tags/{tag_id}/subscribers/{subscriber_id}",
            idempotency_key=idempotency_key,
            accept_statuses=(404,),
        )
        # A 404 here is a removal that happened between the read and the delete.
        return self._result("tagging", result_id, created=response.status_code < 300)

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> WriteResult:
        """Starts the Kit sequence (or tag automation) `template_id` for the recipient, with the
        variables as custom fields; see the module docstring for what that can and cannot do."""
        kind, target = _email_target(self._templates.get(message.template_id, message.template_id))
        variables = dict(message.variables)
        first_name = variables.pop("first_name", None)
        await self._upsert_subscriber(
            "send_email",
            message.to,
            idempotency_key=idempotency_key,
            first_name=None if first_name is None else _field_value(first_name),
            fields={key: _field_value(value) for key, value in variables.items()},
        )
        if kind == "tag":
            return await self._tag("send_email", message.to, target, idempotency_key=idempotency_key)
        response = await self._write(
            "send_email",
            "POST",
            f"/v4/sequences/{target}/subscribers",
            idempotency_key=idempotency_key,
            json_body={"email_address": message.to},
        )
        subscriber = response.json()["subscriber"]
        return self._result(
            "sequence_subscription", f"{target}:{subscriber['id']}", created=response.status_code == 201
        )

    async def suppress(
        self,
        email: str,
        reason: SuppressionReason,
        *,
        idempotency_key: str,
    ) -> WriteResult:
        subscriber = await self.find_subscriber(email)
        if subscriber is None:
            subscriber, _ = await self._upsert_subscriber(
                "suppress", email, idempotency_key=idempotency_key, state=STATE_FOR_REASON[reason]
            )
            if subscriber.get("state") in SUPPRESSED_STATES:
                return self._result("subscriber", str(subscriber["id"]), created=True)
            # Created by someone else since the lookup: the upsert left its state alone.
        elif subscriber.get("state") in SUPPRESSED_STATES:
            return self._result("subscriber", str(subscriber["id"]), created=False)
        subscriber_id = str(subscriber["id"])
        await self._write(
            "suppress",
            "POST",
            f"/v4/subscribers/{subscriber_id}/unsubscribe",
            idempotency_key=idempotency_key,
            json_body={},
        )
        return self._result("subscriber", subscriber_id, created=True)

    # -- webhook registration (setup, not the EmailPort) -----------------------------------------

    async def connect_webhooks(
        self, *, endpoint_url: str, link_click_url: str, links: Sequence[str], name: str = "Journeys engine"
    ) -> KitWebhooks:
        """Registers the engine's receivers (see the module docstring); safe to run again: an
        endpoint already at `endpoint_url` gets the email outcomes it lacks and a new secret, a
        click webhook already registered for a link is kept."""
        wanted = sorted(KIT_TYPES)
        endpoints = await self._pages("list_webhook_endpoints", "/v4/webhook_endpoints", "webhook_endpoints")
        existing = next((e for e in endpoints if e.get("url") == endpoint_url), None)
        if existing is None:
            response = await self._write(
                "create_webhook_endpoint",
                "POST",
                "/v4/webhook_endpoints",
                idempotency_key=_setup_key("endpoint", endpoint_url),
                json_body={"url": endpoint_url, "events": wanted, "name": name},
            )
            endpoint = response.json()["webhook_endpoint"]
            rotated = False
        else:
            endpoint_id = int(existing["id"])
            events = sorted(set(existing.get("events") or []) | set(wanted))
            if events != sorted(existing.get("events") or []):
                await self._call(
                    "update_webhook_endpoint",
                    "PUT",
                    f"/v4/webhook_endpoints/{endpoint_id}",
                    json={"events": events},
                )
            response = await self._call(
                "rotate_webhook_secret", "POST", f"/v4/webhook_endpoints/{endpoint_id}/rotate_secret", json={}
            )
            endpoint = response.json()["webhook_endpoint"]
            rotated = True
        hooks = await self._pages("list_webhooks", "/v4/webhooks", "webhooks")
        registered = {
            (str(h.get("target_url")), str((h.get("event") or {}).get("initiator_value"))): int(h["id"])
            for h in hooks
            if (h.get("event") or {}).get("name") == LINK_CLICK
        }
        link_ids = []
        for link in dict.fromkeys(links):
            target = link_click_target(link_click_url, link)
            known = registered.get((target, link))
            if known is None:
                made = await self._write(
                    "create_webhook",
                    "POST",
                    "/v4/webhooks",
                    idempotency_key=_setup_key("link_click", target),
                    json_body={"target_url": target, "event": {"name": LINK_CLICK, "initiator_value": link}},
                )
                known = int(made.json()["webhook"]["id"])
            link_ids.append(known)
        return KitWebhooks(
            endpoint_id=int(endpoint["id"]),
            secret=str(endpoint["secret"]),
            rotated=rotated,
            link_webhook_ids=tuple(link_ids),
        )
