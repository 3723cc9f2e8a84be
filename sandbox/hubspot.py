"""HubSpot as the sandbox answers it, on the real paths under `/hubspot`.

Emulated: CRM v3 objects (contacts, companies, deals, tasks, notes, meetings, calls): create, read,
update, archive (DELETE: 204, gone from reads and searches, `?archived=true` still reads it), batch
upsert by a unique-value property (contacts: `email`; companies: `journeys_company_key`; deals:
`journeys_deal_key`), search (`filterGroups` with EQ, NEQ, LT..GTE, BETWEEN, CONTAINS_TOKEN,
HAS_PROPERTY, IN, ..., `sorts`, `limit` up to 200, `after`; a datetime property compares as an
instant, its stored ISO value against a filter's ISO or epoch-milliseconds value); contact merge
(`POST /crm/v3/objects/contacts/merge`: into a new record with a new id, both old ids reading as
it, as HubSpot merges contacts now); v4 associations (PUT with HUBSPOT_DEFINED type ids, GET);
owners with `after` paging; lists v3 (create, read, memberships add/remove on MANUAL and SNAPSHOT
lists); the marketing (`/marketing/v4/email/single-send`) and transactional (`/marketing/v3/transactional/
single-email/send`) single-send with at most one email per `sendId`; communication preferences v3
(definitions, status by email, unsubscribe); the legacy Email Events API (`GET /email/public/v1/
events`, newest first, `startTimestamp`/`endTimestamp` in ms, `eventType`, `recipient`,
`campaignId`, `limit` up to 1,000, `offset` while `hasMore`).

As the recipient's side (`POST /_engagement`): each email sent records HubSpot's SENT and DELIVERED
events (`appName` "Single send"; a campaign from `POST /_campaign` is a bulk email, "Batch"); an
open, click, hard bounce, spam report or unsubscribe on the latest one is recorded as HubSpot's
OPEN, CLICK, BOUNCE (`category` HARD_BOUNCE), SPAMREPORT or STATUSCHANGE event (`portalSubscriptionStatus`
UNSUBSCRIBED), and what it does to the contact: unsubscribed from every subscription type (a spam
report too), or bounced; a later marketing send answers PREVIOUSLY_UNSUBSCRIBED_PORTAL or
PREVIOUSLY_BOUNCED.

As HubSpot does: a missing or empty Bearer token answers 401; validation errors answer 400 with
`{"status": "error", "message", "correlationId", "category", "errors": [...]}`; a batch where some
inputs failed answers 207 with `errors`; `lifecyclestage` never moves backwards unless cleared first
(a backward value is silently kept at the later stage); `hubspot_owner_id` must name an owner;
every answer but search carries `X-HubSpot-RateLimit-*` headers. Seeded: five active owners and one
archived; lists 101 (welcome) and 102, MANUAL, and 103, DYNAMIC; subscription types 1001 (marketing)
and 1002 (one to one). Not emulated: the search index lag (the sandbox indexes at once), rate
limits themselves (only injected as faults), the asynchronous processing of sends (the final
`sendResult` is answered at once), restoring an archived record, merging companies or deals, the
250-merges limit, and the `contact.deletion` events HubSpot may also send for merged-away records.
"""

from __future__ import annotations

import base64
import fnmatch
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox import hubspot_webhooks as webhooks
from sandbox.core import ProviderHandler, SandboxState, now_iso, register, register_engagement

OBJECT_TYPE_IDS = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tasks": "0-27",
    "notes": "0-46",
    "meetings": "0-47",
    "calls": "0-48",
}
ENGAGEMENTS = frozenset({"tasks", "notes", "meetings", "calls"})
SINGULAR = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "tasks": "task",
    "notes": "note",
    "meetings": "meeting",
    "calls": "call",
}
ID_STARTS = {
    "contacts": 1001,
    "companies": 5001,
    "deals": 9001,
    "tasks": 20001,
    "notes": 30001,
    "meetings": 40001,
    "calls": 50001,
}
UNIQUE_PROPERTIES = {
    "contacts": frozenset({"email"}),
    "companies": frozenset({"journeys_company_key"}),
    "deals": frozenset({"journeys_deal_key"}),
}
DEFAULT_PROPERTIES = {
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
    "deals": [
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ],
}
ENGAGEMENT_DEFAULT_PROPERTIES = ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]
NUMBER_PROPERTIES = frozenset({"amount", "numberofemployees", "journeys_lead_score", "hs_call_duration"})
# Datetime properties: HubSpot shows them as ISO 8601 and takes either that or milliseconds since the
# epoch, in a write or a search filter, and compares them as instants.
DATETIME_PROPERTIES = frozenset(
    {
        "createdate",
        "lastmodifieddate",
        "hs_createdate",
        "hs_lastmodifieddate",
        "hs_timestamp",
        "closedate",
        "hs_task_completion_date",
        "hs_meeting_start_time",
        "hs_meeting_end_time",
    }
)
# Enumeration properties whose value must be one of their options (else INVALID_OPTION).
ENUM_OPTIONS: dict[tuple[str, str], frozenset[str]] = {
    ("tasks", "hs_task_status"): frozenset(
        {"NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"}
    ),
    ("calls", "hs_call_status"): frozenset(
        {
            "BUSY",
            "CALLING_CRM_USER",
            "CANCELED",
            "COMPLETED",
            "CONNECTING",
            "FAILED",
            "IN_PROGRESS",
            "MISSED",
            "NO_ANSWER",
            "QUEUED",
            "RINGING",
        }
    ),
    ("calls", "hs_call_direction"): frozenset({"INBOUND", "OUTBOUND"}),
}
# The call outcomes every account has (`hs_call_disposition` holds the GUID).
CALL_DISPOSITIONS = {
    "Busy": "9d9162e7-6cf3-4944-bf63-4dff82258764",
    "Connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "Left live message": "a4c4c377-d246-4b32-a13b-75a56a4cd0ff",
    "Left voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
    "No answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
    "Wrong number": "17b47fee-58de-441e-a44c-c6300d46f273",
}
# What a merge keeps besides the primary's values: the secondary's emails as additional emails, and
# the lifecycle stage furthest down the funnel.
MERGED_IDS = "hs_merged_object_ids"
ADDITIONAL_EMAILS = "hs_additional_emails"
MERGEABLE = "contacts"
LIFECYCLE_ORDER = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
]
DEAL_PIPELINES = {
    "default": frozenset(
        {
            "appointmentscheduled",
            "qualifiedtobuy",
            "presentationscheduled",
            "decisionmakerboughtin",
            "contractsent",
            "closedwon",
            "closedlost",
        }
    )
}
REQUIRED_ON_CREATE = {
    "deals": ("dealname", "pipeline", "dealstage"),
    "tasks": ("hs_timestamp",),
    "notes": ("hs_timestamp",),
    "meetings": ("hs_timestamp",),
    "calls": ("hs_timestamp",),
}
# HUBSPOT_DEFINED association types: (type id, from, to, the inverse type id).
ASSOCIATION_PAIRS = [
    (1, "contacts", "companies", 2),
    (279, "contacts", "companies", 280),
    (3, "deals", "contacts", 4),
    (5, "deals", "companies", 6),
    (341, "deals", "companies", 342),
    (200, "meetings", "contacts", 199),
    (202, "notes", "contacts", 201),
    (204, "tasks", "contacts", 203),
    (188, "meetings", "companies", 187),
    (190, "notes", "companies", 189),
    (192, "tasks", "companies", 191),
    (212, "meetings", "deals", 211),
    (214, "notes", "deals", 213),
    (216, "tasks", "deals", 215),
    (194, "calls", "contacts", 193),
    (182, "calls", "companies", 181),
    (206, "calls", "deals", 205),
]
ASSOCIATION_TYPES: dict[int, tuple[str, str]] = {}
for _forward, _from, _to, _inverse in ASSOCIATION_PAIRS:
    ASSOCIATION_TYPES[_forward] = (_from, _to)
    ASSOCIATION_TYPES[_inverse] = (_to, _from)
INVERSE_TYPES = {f: i for f, _, _, i in ASSOCIATION_PAIRS} | {i: f for f, _, _, i in ASSOCIATION_PAIRS}

SEARCH_OPERATORS = frozenset(
    {
        "BETWEEN",
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
        "IN",
        "NOT_IN",
    }
)
SEARCH_MAX_LIMIT = 200
SEARCH_MAX_GROUPS = 5
SEARCH_MAX_FILTERS_PER_GROUP = 10
BATCH_MAX = 100
OWNERS_MAX_LIMIT = 500

SEED_OWNERS = [
    ("71000001", "ava.lind@example.com", "Ava", "Lind", False),
    ("71000002", "ben.okafor@example.com", "Ben", "Okafor", False),
    ("71000003", "chloe.martin@example.com", "Chloe", "Martin", False),
    ("71000004", "dev.patel@example.com", "Dev", "Patel", False),
    ("71000005", "emma.schulz@example.com", "Emma", "Schulz", False),
    ("71000009", "former.rep@example.com", "Former", "Rep", True),
]
SEED_LISTS = [
    ("101", "Welcome series", "MANUAL"),
    ("102", "Newsletter", "MANUAL"),
    ("103", "Engaged MQLs", "DYNAMIC"),
]
MEMBERSHIP_PROCESSING = frozenset({"MANUAL", "SNAPSHOT"})
SUBSCRIPTION_DEFINITIONS = [
    {
        "id": "1001",
        "name": "Marketing Information",
        "description": "Marketing offers and updates.",
        "purpose": "Marketing",
        "communicationMethod": "Email",
    },
    {
        "id": "1002",
        "name": "One to One",
        "description": "One to one emails.",
        "purpose": "Sales",
        "communicationMethod": "Email",
    },
]
LEGAL_BASES = frozenset(
    {
        "LEGITIMATE_INTEREST_PQL",
        "LEGITIMATE_INTEREST_CLIENT",
        "PERFORMANCE_OF_CONTRACT",
        "CONSENT_WITH_NOTICE",
        "NON_GDPR",
        "PROCESS_AND_STORE",
        "LEGITIMATE_INTEREST_OTHER",
    }
)
SUBSCRIBED = "SUBSCRIBED"
UNSUBSCRIBED = "NOT_SUBSCRIBED"
SEND_APIS = {
    "/marketing/v4/email/single-send": "marketing",
    "/marketing/v3/transactional/single-email/send": "transactional",
}

_TYPES = "|".join(OBJECT_TYPE_IDS)
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(rf"/crm/v3/objects/(?P<object_type>{_TYPES})/batch/upsert"), "batch_upsert"),
    ("POST", re.compile(rf"/crm/v3/objects/(?P<object_type>{_TYPES})/search"), "search"),
    ("POST", re.compile(rf"/crm/v3/objects/(?P<object_type>{MERGEABLE})/merge"), "merge"),
    ("POST", re.compile(rf"/crm/v3/objects/(?P<object_type>{_TYPES})"), "create"),
    ("GET", re.compile(rf"/crm/v3/objects/(?P<object_type>{_TYPES})/(?P<key>[^/]+)"), "read"),
    ("PATCH", re.compile(rf"/crm/v3/objects/(?P<object_type>{_TYPES})/(?P<key>[^/]+)"), "update"),
    ("DELETE", re.compile(rf"/crm/v3/objects/(?P<object_type>{_TYPES})/(?P<key>[^/]+)"), "archive"),
    ("GET", re.compile(r"/webhooks/v3/(?P<app_id>\d+)/settings"), "webhook_settings"),
    ("PUT", re.compile(r"/webhooks/v3/(?P<app_id>\d+)/settings"), "configure_webhooks"),
    ("GET", re.compile(r"/webhooks/v3/(?P<app_id>\d+)/subscriptions"), "webhook_subscriptions"),
    ("POST", re.compile(r"/webhooks/v3/(?P<app_id>\d+)/subscriptions"), "subscribe"),
    (
        "PUT",
        re.compile(
            rf"/crm/v4/objects/(?P<from_type>{_TYPES})/(?P<from_id>[^/]+)"
            rf"/associations/(?P<to_type>{_TYPES})/(?P<to_id>[^/]+)"
        ),
        "associate",
    ),
    (
        "GET",
        re.compile(
            rf"/crm/v4/objects/(?P<from_type>{_TYPES})/(?P<from_id>[^/]+)/associations/(?P<to_type>{_TYPES})"
        ),
        "read_associations",
    ),
    ("GET", re.compile(r"/crm/v3/owners/?"), "owners"),
    ("POST", re.compile(r"/crm/v3/lists/?"), "create_list"),
    ("GET", re.compile(r"/crm/v3/lists/(?P<list_id>[^/]+)"), "read_list"),
    ("GET", re.compile(r"/crm/v3/lists/(?P<list_id>[^/]+)/memberships"), "read_memberships"),
    (
        "PUT",
        re.compile(r"/crm/v3/lists/(?P<list_id>[^/]+)/memberships/(?P<action>add|remove)"),
        "memberships",
    ),
    ("POST", re.compile(r"/marketing/v4/email/single-send"), "single_send"),
    ("POST", re.compile(r"/marketing/v3/transactional/single-email/send"), "single_send"),
    ("GET", re.compile(r"/communication-preferences/v3/definitions"), "subscription_definitions"),
    (
        "GET",
        re.compile(r"/communication-preferences/v3/status/email/(?P<email>[^/]+)"),
        "subscription_status",
    ),
    ("POST", re.compile(r"/communication-preferences/v3/unsubscribe"), "unsubscribe"),
    ("GET", re.compile(r"/email/public/v1/events"), "email_events"),
]
# The sandbox account's portal, and the app ids HubSpot names on the email events of each kind of send.
PORTAL_ID = 62515
SEND_APPS = {"single_send": (113, "Single send"), "bulk": (0, "Batch")}
EMAIL_EVENTS = "hubspot_email_events"
EMAIL_EVENTS_MAX_PAGE = 1000
# The link every sandbox email carries: a click is on it.
HUBSPOT_MESSAGE_LINK = "https://www.example.com/pricing?utm_source=hubspot"


def _hubspot_rate_headers(remaining: int = 99) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Daily": "250000",
        "X-HubSpot-RateLimit-Daily-Remaining": str(250000 - 100 + remaining),
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": str(remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }


class HubSpotError(Exception):
    """An answer in HubSpot's error shape, raised from deep inside a handler."""

    def __init__(
        self, status: int, message: str, category: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.errors = errors or []


def _invalid(message: str, errors: list[dict[str, Any]] | None = None) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR", errors)


def _not_found(message: str) -> HubSpotError:
    return HubSpotError(404, message, "OBJECT_NOT_FOUND")


def _property_error(name: str, message: str, code: str) -> dict[str, Any]:
    return {"message": message, "code": code, "context": {"propertyName": [name]}}


def _tokens(value: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", value.lower())


def _as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_DATE_START = re.compile(r"\d{4}-\d{2}-\d{2}")


def _instant(value: Any) -> float | None:
    """A datetime value as milliseconds since the epoch: ISO 8601 (a bare date is midnight UTC),
    or already milliseconds, as HubSpot takes either."""
    if value in (None, ""):
        return None
    number = _as_number(value)
    if number is not None:
        return number
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp() * 1000


def _is_datetime(name: str, *values: Any) -> bool:
    return name in DATETIME_PROPERTIES or any(
        isinstance(v, str) and _DATE_START.match(v.strip()) for v in values
    )


def _compare(left: Any, right: Any, instants: bool = False) -> int:
    """Orders two values: as instants for a datetime property (an ISO value against epoch
    milliseconds, say), as numbers when both are numbers, else as text."""
    a, b = (_instant(left), _instant(right)) if instants else (None, None)
    if a is None or b is None:
        a, b = _as_number(left), _as_number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    x, y = str(left).lower(), str(right).lower()
    return (x > y) - (x < y)


def _matches(properties: dict[str, Any], flt: dict[str, Any]) -> bool:
    name, operator = flt["propertyName"], flt["operator"]
    present = properties.get(name) not in (None, "")
    value = properties.get(name)
    instants = _is_datetime(name, value, flt.get("value"))
    if operator == "HAS_PROPERTY":
        return present
    if operator == "NOT_HAS_PROPERTY":
        return not present
    if operator in ("IN", "NOT_IN"):
        wanted = {str(v).lower() for v in flt.get("values") or []}
        inside = present and str(value).lower() in wanted
        return inside if operator == "IN" else not inside
    needle = flt.get("value")
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        tokens = _tokens(str(value or ""))
        pattern = str(needle).lower()
        if "*" in pattern:
            found = any(fnmatch.fnmatchcase(token, pattern) for token in tokens)
        else:
            wanted_tokens = _tokens(pattern)
            found = bool(wanted_tokens) and all(token in tokens for token in wanted_tokens)
        return found if operator == "CONTAINS_TOKEN" else not found
    if operator == "NEQ":
        return not present or _compare(value, needle, instants) != 0
    if not present:
        return False
    if operator == "BETWEEN":
        high = flt.get("highValue")
        return _compare(value, needle, instants) >= 0 and _compare(value, high, instants) <= 0
    order = _compare(value, needle, instants)
    return {
        "EQ": order == 0,
        "LT": order < 0,
        "LTE": order <= 0,
        "GT": order > 0,
        "GTE": order >= 0,
    }[operator]


@register("hubspot")
class HubSpot(ProviderHandler):
    """CRM v3 objects, v4 associations, owners, lists, single-send and subscription preferences."""

    # -- answers -------------------------------------------------------------------------------

    @classmethod
    def fault_response(cls, status: int, retry_after: float) -> Response:
        headers = _hubspot_rate_headers(remaining=0 if status == 429 else 99)
        if status == 429:
            headers["Retry-After"] = f"{retry_after:g}"
            payload: dict[str, Any] = {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "category": "RATE_LIMITS",
                "policyName": "TEN_SECONDLY_ROLLING",
                "correlationId": str(uuid.uuid4()),
            }
            return JSONResponse(payload, status_code=status, headers=headers)
        category = {
            400: "VALIDATION_ERROR",
            401: "INVALID_AUTHENTICATION",
            403: "MISSING_SCOPES",
            404: "OBJECT_NOT_FOUND",
            409: "CONFLICT",
        }.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
        payload = {
            "status": "error",
            "message": "internal error" if status >= 500 else f"injected error {status}",
            "category": category,
            "correlationId": str(uuid.uuid4()),
        }
        return JSONResponse(payload, status_code=status, headers=headers)

    def error(
        self, status: int, message: str, category: str, errors: list[dict[str, Any]] | None = None
    ) -> Response:
        payload: dict[str, Any] = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        }
        if errors:
            payload["errors"] = errors
        return JSONResponse(payload, status_code=status, headers=_hubspot_rate_headers())

    def ok(self, payload: Any, status: int = 200, *, rate_headers: bool = True) -> Response:
        # Search answers carry no rate-limit headers: the search limit is separate.
        headers = _hubspot_rate_headers() if rate_headers else {}
        return JSONResponse(payload, status_code=status, headers=headers)

    def answer(self) -> Response:
        auth = self.request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[len("Bearer ") :].strip():
            return self.error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
                "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        method = self.request.method
        for route_method, pattern, name in ROUTES:
            if method != route_method:
                continue
            found = pattern.fullmatch(self.path)
            if found is None:
                continue
            try:
                response: Response = getattr(self, name)(**found.groupdict())
            except HubSpotError as exc:
                return self.error(exc.status, exc.message, exc.category, exc.errors)
            if self.changes and response.status_code < 300:
                token = auth[len("Bearer ") :].strip()
                with self.state.lock:
                    by_app = webhooks.events_for(self.state, self.changes, webhooks.app_of_token(token))
                webhooks.deliver_later(self.state, by_app)
            return response
        return self.error(404, f"No route for {method} {self.path}", "OBJECT_NOT_FOUND")

    @property
    def changes(self) -> list[dict[str, Any]]:
        """What this call changed in the CRM (creations, properties set to new values, deletions,
        merges), each with its `action` as a subscription's event type names it: the webhooks' raw
        material."""
        if not hasattr(self, "_changes"):
            self._changes: list[dict[str, Any]] = []
        return self._changes

    # -- records -------------------------------------------------------------------------------

    @property
    def contacts(self) -> dict[str, Any]:
        return self.state.table("hubspot_contacts")

    def objects(self, object_type: str) -> dict[str, Any]:
        return self.state.table(f"hubspot_{object_type}")

    def owners_table(self) -> dict[str, Any]:
        table = self.state.table("hubspot_owners")
        if not table:
            now = now_iso()
            for n, (owner_id, email, first, last, archived) in enumerate(SEED_OWNERS):
                table[owner_id] = {
                    "id": owner_id,
                    "email": email,
                    "type": "PERSON",
                    "firstName": first,
                    "lastName": last,
                    "userId": 9000001 + n,
                    "userIdIncludingInactive": 9000001 + n,
                    "createdAt": now,
                    "updatedAt": now,
                    "archived": archived,
                    "teams": [],
                }
        return table

    def lists_table(self) -> dict[str, Any]:
        table = self.state.table("hubspot_lists")
        if not table:
            for list_id, name, processing in SEED_LISTS:
                table[list_id] = self._new_list(list_id, name, "0-1", processing)
        return table

    def _new_list(self, list_id: str, name: str, object_type_id: str, processing: str) -> dict[str, Any]:
        now = now_iso()
        return {
            "listId": list_id,
            "name": name,
            "objectTypeId": object_type_id,
            "processingType": processing,
            "processingStatus": "COMPLETE",
            "listVersion": 1,
            "createdAt": now,
            "updatedAt": now,
            "members": [],
        }

    def _new_id(self, table_name: str, start: int) -> str:
        table = self.state.table(table_name)
        while True:
            candidate = self.state.next_id(table_name, start)
            if candidate not in table:
                return candidate

    def merged_into(self, object_type: str) -> dict[str, str]:
        """The ids records were merged away from, each to the id of the record the merge made."""
        return self.state.table(f"hubspot_merged_{object_type}")

    def archived(self, object_type: str) -> dict[str, Any]:
        return self.state.table(f"hubspot_archived_{object_type}")

    def _find(self, object_type: str, prop: str, value: str) -> dict[str, Any] | None:
        table = self.objects(object_type)
        if prop in ("hs_object_id", "id"):
            # An id merged away still answers, with the record the merge made (under its own id).
            key = self.merged_into(object_type).get(value, value)
            found: dict[str, Any] | None = table.get(key)
            return found
        wanted = value.strip().lower()
        for record in table.values():
            if str(record["properties"].get(prop, "")).strip().lower() == wanted:
                return record
        if object_type == "contacts" and prop == "email":
            # A merged-away contact's email is the merged contact's additional email, and still its.
            for record in table.values():
                extra = str(record["properties"].get(ADDITIONAL_EMAILS) or "").lower().split(";")
                if wanted in extra:
                    return record
        return None

    def _validate(
        self, object_type: str, properties: dict[str, Any], existing: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        current = existing["properties"] if existing else {}
        if existing is None:
            for name in REQUIRED_ON_CREATE.get(object_type, ()):
                if properties.get(name) in (None, ""):
                    errors.append(_property_error(name, f"Property {name} is required", "PROPERTY_REQUIRED"))
        owner = properties.get("hubspot_owner_id")
        if owner not in (None, ""):
            record = self.owners_table().get(str(owner))
            if record is None or record["archived"]:
                errors.append(
                    _property_error(
                        "hubspot_owner_id", f'"{owner}" is not a valid owner id', "INVALID_OWNER_ID"
                    )
                )
        stage = properties.get("lifecyclestage")
        if (
            object_type in ("contacts", "companies")
            and stage not in (None, "")
            and stage not in LIFECYCLE_ORDER
        ):
            errors.append(
                _property_error(
                    "lifecyclestage",
                    f"{stage} was not one of the allowed options: {', '.join(LIFECYCLE_ORDER)}",
                    "INVALID_OPTION",
                )
            )
        if object_type == "contacts" and properties.get("email") not in (None, ""):
            if "@" not in str(properties["email"]):
                errors.append(
                    _property_error(
                        "email", f"Email address {properties['email']} is invalid", "INVALID_EMAIL"
                    )
                )
        if object_type == "deals":
            pipeline = properties.get("pipeline") or current.get("pipeline")
            if pipeline and pipeline not in DEAL_PIPELINES:
                errors.append(
                    _property_error("pipeline", f"{pipeline} is not a valid pipeline", "INVALID_OPTION")
                )
            deal_stage = properties.get("dealstage")
            if deal_stage and pipeline in DEAL_PIPELINES and deal_stage not in DEAL_PIPELINES[pipeline]:
                errors.append(
                    _property_error(
                        "dealstage",
                        f"{deal_stage} was not one of the allowed options for pipeline {pipeline}",
                        "INVALID_OPTION",
                    )
                )
        for (kind, name), options in ENUM_OPTIONS.items():
            chosen = properties.get(name)
            if kind == object_type and chosen not in (None, "") and chosen not in options:
                errors.append(
                    _property_error(
                        name,
                        f"{chosen} was not one of the allowed options: {', '.join(sorted(options))}",
                        "INVALID_OPTION",
                    )
                )
        for name in NUMBER_PROPERTIES & properties.keys():
            if properties[name] not in (None, "") and _as_number(properties[name]) is None:
                errors.append(
                    _property_error(name, f"{properties[name]} is not a valid number", "INVALID_LONG")
                )
        return errors

    def _write(
        self, object_type: str, existing: dict[str, Any] | None, properties: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        """Writes and says what happened: `created`, `updated` or `unchanged`."""
        now = now_iso()
        clean = {k: ("" if v is None else str(v)) for k, v in properties.items()}
        clean.pop("hs_object_id", None)
        if "email" in clean:
            clean["email"] = clean["email"].strip().lower()
        created_key = "hs_createdate" if object_type in ENGAGEMENTS else "createdate"
        modified_key = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        if existing is None:
            table_name = f"hubspot_{object_type}"
            object_id = self._new_id(table_name, ID_STARTS[object_type])
            existing = {
                "id": object_id,
                "properties": {created_key: now},
                "createdAt": now,
                "archived": False,
            }
            self.objects(object_type)[object_id] = existing
            effect = "created"
        else:
            effect = "unchanged"
        current = existing["properties"]
        stage = clean.get("lifecyclestage")
        if stage and current.get("lifecyclestage") in LIFECYCLE_ORDER and stage in LIFECYCLE_ORDER:
            if LIFECYCLE_ORDER.index(stage) < LIFECYCLE_ORDER.index(current["lifecyclestage"]):
                # HubSpot keeps the later stage: moving backwards needs the value cleared first.
                clean["lifecyclestage"] = current["lifecyclestage"]
        if object_type == "tasks" and "hs_task_status" in clean:
            # HubSpot stamps when a task was completed, and clears it when it is reopened.
            if clean["hs_task_status"] == "COMPLETED" and current.get("hs_task_status") != "COMPLETED":
                clean["hs_task_completion_date"] = now
            elif clean["hs_task_status"] != "COMPLETED" and current.get("hs_task_completion_date"):
                clean["hs_task_completion_date"] = ""
        if effect == "unchanged" and any(current.get(k, "") != v for k, v in clean.items()):
            effect = "updated"
        if object_type in webhooks.SINGULAR:
            kind = webhooks.SINGULAR[object_type]
            if effect == "created":
                self.changes.append(
                    {"kind": kind, "action": "creation", "object_id": existing["id"], "created": True}
                )
            else:
                self.changes.extend(
                    {
                        "kind": kind,
                        "action": "propertyChange",
                        "object_id": existing["id"],
                        "created": False,
                        "property": k,
                        "value": v,
                    }
                    for k, v in clean.items()
                    if current.get(k, "") != v
                )
        current.update(clean)
        current["hs_object_id"] = existing["id"]
        if effect != "unchanged":
            current[modified_key] = now
            existing["updatedAt"] = now
        return existing, effect

    def _public(self, record: dict[str, Any], properties: list[str] | None = None) -> dict[str, Any]:
        props = record["properties"]
        if properties is not None:
            props = {name: props.get(name) for name in properties}
        public = {
            "id": record["id"],
            "properties": dict(props),
            "createdAt": record["createdAt"],
            "updatedAt": record.get("updatedAt", record["createdAt"]),
            "archived": record.get("archived", False),
        }
        if record.get("archivedAt"):
            public["archivedAt"] = record["archivedAt"]
        return public

    def _body(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise _invalid("Invalid input JSON on line 1: the request body must be a JSON object")
        return self.body

    # -- CRM objects ---------------------------------------------------------------------------

    def batch_upsert(self, object_type: str) -> Response:
        inputs = self.body.get("inputs") if isinstance(self.body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            raise _invalid("Invalid input JSON: `inputs` must be a non-empty array")
        if len(inputs) > BATCH_MAX:
            raise _invalid(f"Batch size must be at most {BATCH_MAX}")
        unique = UNIQUE_PROPERTIES.get(object_type, frozenset())
        started = now_iso()
        results: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        effects: list[str] = []
        with self.state.lock:
            seen: set[tuple[str, str]] = set()
            for item in inputs:
                if not isinstance(item, dict) or not item.get("id") or not item.get("idProperty"):
                    raise _invalid("Each input needs `id` and `idProperty`")
                properties = item.get("properties") or {}
                if not isinstance(properties, dict):
                    raise _invalid("`properties` must be an object")
                prop, value = str(item["idProperty"]), str(item["id"])
                if prop not in unique and prop != "hs_object_id":
                    raise _invalid(
                        f"Property {prop} of {object_type} is not a unique-value property and cannot be "
                        "used as idProperty"
                    )
                if (prop, value.lower()) in seen:
                    raise _invalid(f"Duplicate IDs found in batch input: {value}")
                seen.add((prop, value.lower()))
                existing = self._find(object_type, prop, value)
                if existing is None and prop == "hs_object_id":
                    failures.append(self._batch_failure(value, "Object not found", "OBJECT_NOT_FOUND", []))
                    continue
                written = {**properties, prop: value} if prop != "hs_object_id" else dict(properties)
                problems = self._validate(object_type, written, existing)
                if problems:
                    failures.append(
                        self._batch_failure(
                            value, "Property values were not valid", "VALIDATION_ERROR", problems
                        )
                    )
                    continue
                record, effect = self._write(object_type, existing, written)
                effects.append(effect)
                results.append({**self._public(record), "new": effect == "created"})
            if results:
                self.state.save_records()
        if not results:
            first = failures[0]
            raise HubSpotError(400, first["message"], first["category"], first["errors"] or None)
        kind = next((k for k in ("created", "updated") if k in effects), "unchanged")
        self.effect(kind, SINGULAR[object_type], results[0]["id"])
        payload: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": now_iso(),
        }
        if failures:
            payload.update(numErrors=len(failures), errors=failures)
            return self.ok(payload, status=207)
        return self.ok(payload)

    @staticmethod
    def _batch_failure(
        value: str, message: str, category: str, errors: list[dict[str, Any]]
    ) -> dict[str, Any]:
        detail = "; ".join(e["message"] for e in errors)
        return {
            "status": "error",
            "category": category,
            "message": f"{message}: {detail}" if detail else message,
            "context": {"ids": [value]},
            "errors": errors,
        }

    def create(self, object_type: str) -> Response:
        body = self._body()
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise _invalid("Invalid input JSON: `properties` is required")
        associations = body.get("associations") or []
        if not isinstance(associations, list):
            raise _invalid("`associations` must be an array")
        with self.state.lock:
            links = [link for item in associations for link in self._association_input(object_type, item)]
            for prop in UNIQUE_PROPERTIES.get(object_type, frozenset()):
                value = properties.get(prop)
                if value not in (None, "") and (existing := self._find(object_type, prop, str(value))):
                    noun = "Contact" if object_type == "contacts" else object_type.capitalize()
                    raise HubSpotError(
                        409, f"{noun} already exists. Existing ID: {existing['id']}", "CONFLICT"
                    )
            problems = self._validate(object_type, properties, None)
            if problems:
                raise _invalid("Property values were not valid", problems)
            record, _ = self._write(object_type, None, properties)
            for to_type, to_id, type_id in links:
                self._link(object_type, record["id"], to_type, to_id, type_id)
            self.state.save_records()
        self.effect("created", SINGULAR[object_type], record["id"])
        return self.ok(self._public(record), status=201)

    def _association_input(self, object_type: str, item: Any) -> list[tuple[str, str, int]]:
        """One `associations` entry of a create body as (to type, to id, type id) links."""
        if not isinstance(item, dict) or not isinstance(item.get("to"), dict) or not item["to"].get("id"):
            raise _invalid("Each association needs `to.id` and `types`")
        types = item.get("types")
        if not isinstance(types, list) or not types:
            raise _invalid("Each association needs at least one type")
        to_id = str(item["to"]["id"])
        links: list[tuple[str, str, int]] = []
        for spec in types:
            type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
            if not isinstance(type_id, int) or spec.get("associationCategory") != "HUBSPOT_DEFINED":
                raise _invalid(f"association type {spec} is not valid from {object_type}")
            pair = ASSOCIATION_TYPES.get(type_id)
            if pair is None or pair[0] != object_type:
                raise _invalid(f"association type {spec} is not valid from {object_type}")
            if to_id not in self.objects(pair[1]):
                raise _invalid(f"One or more associations are invalid: {pair[1]} {to_id} does not exist")
            links.append((pair[1], to_id, type_id))
        return links

    def read(self, object_type: str, key: str) -> Response:
        params = self.request.query_params
        prop = params.get("idProperty", "hs_object_id")
        if params.get("archived", "false").lower() == "true":
            # Only an archived record answers, as `archived=true` asks.
            wanted = key.strip().lower()
            by_id = prop in ("hs_object_id", "id")
            record = next(
                (
                    r
                    for r in self.archived(object_type).values()
                    if (r["id"] if by_id else str(r["properties"].get(prop, "")).lower()) == wanted
                ),
                None,
            )
        else:
            record = self._find(object_type, prop, key)
        if record is None:
            raise _not_found("Object not found.  objectId are usually numeric.")
        return self.ok(self._public(record))

    def update(self, object_type: str, key: str) -> Response:
        """`PATCH /crm/v3/objects/{type}/{id}`: a record's properties set, as a rep or an app does."""
        properties = self._body().get("properties")
        if not isinstance(properties, dict):
            raise _invalid("Invalid input JSON: `properties` is required")
        prop = self.request.query_params.get("idProperty", "hs_object_id")
        with self.state.lock:
            existing = self._find(object_type, prop, key)
            if existing is None:
                raise _not_found("Object not found.  objectId are usually numeric.")
            problems = self._validate(object_type, properties, existing)
            if problems:
                raise _invalid("Property values were not valid", problems)
            record, effect = self._write(object_type, existing, properties)
            self.state.save_records()
        self.effect(effect, SINGULAR[object_type], record["id"])
        return self.ok(self._public(record))

    def archive(self, object_type: str, key: str) -> Response:
        """`DELETE /crm/v3/objects/{type}/{id}`: the record is archived (HubSpot's delete, restorable
        for 90 days there): reads and searches no longer find it, `?archived=true` reads it, it leaves
        the lists it was on. 204, also for an id that names no record."""
        with self.state.lock:
            record = self._find(object_type, "hs_object_id", key)
            if record is None:
                self.effect("unchanged", SINGULAR[object_type], key)
                return Response(status_code=204, headers=_hubspot_rate_headers())
            object_id = record["id"]
            now = now_iso()
            del self.objects(object_type)[object_id]
            record.update(archived=True, archivedAt=now, updatedAt=now)
            self.archived(object_type)[object_id] = record
            type_id = OBJECT_TYPE_IDS[object_type]
            for listed in self.lists_table().values():
                if listed["objectTypeId"] == type_id and object_id in listed["members"]:
                    listed["members"].remove(object_id)
                    listed["updatedAt"] = now
            if object_type in webhooks.SINGULAR:
                self.changes.append(
                    {
                        "kind": webhooks.SINGULAR[object_type],
                        "action": "deletion",
                        "object_id": object_id,
                        "created": False,
                    }
                )
            self.state.save_records()
        self.effect("deleted", SINGULAR[object_type], object_id)
        return Response(status_code=204, headers=_hubspot_rate_headers())

    def merge(self, object_type: str) -> Response:
        """`POST /crm/v3/objects/contacts/merge`, as HubSpot merges contacts now: the two records
        become one new record with a new id. Its values are the primary's, the secondary's where
        the primary has none; the secondary's email becomes an additional email; the lifecycle
        stage is the one further down the funnel; `hs_merged_object_ids` names both ids. Both ids
        then read as the new record; associations and list memberships of both move to it."""
        body = self._body()
        fields = ("primaryObjectId", "objectIdToMerge")
        noun = SINGULAR[object_type]
        problems: list[dict[str, Any]] = []

        def problem(field: str, message: str, code: str) -> None:
            problems.append({"message": message, "code": code, "in": field})

        def refuse() -> HubSpotError:
            return _invalid(f"Invalid merge input: {'; '.join(p['message'] for p in problems)}", problems)

        given: dict[str, str] = {}
        for field in fields:
            raw = body.get(field)
            if raw is None or raw == "":
                problem(field, f"{field} is required", "REQUIRED")
            elif isinstance(raw, bool) or not isinstance(raw, str | int) or not str(raw).strip().isdigit():
                problem(field, f"{field} {raw!r} is not a {noun} id", "INVALID_ID")
            else:
                given[field] = str(raw).strip()
        if problems:
            raise refuse()
        with self.state.lock:
            table = self.objects(object_type)
            aliases = self.merged_into(object_type)
            current = {field: aliases.get(value, value) for field, value in given.items()}
            for field in fields:
                if current[field] not in table:
                    problem(field, f"{field} {given[field]}: no such {noun}", "OBJECT_NOT_FOUND")
            if not problems and current["primaryObjectId"] == current["objectIdToMerge"]:
                problem(
                    "objectIdToMerge",
                    f"objectIdToMerge {given['objectIdToMerge']} is the same {noun} as primaryObjectId "
                    f"{given['primaryObjectId']}: a {noun} cannot be merged into itself",
                    "SAME_OBJECT",
                )
            if problems:
                raise refuse()
            primary_id, secondary_id = current["primaryObjectId"], current["objectIdToMerge"]
            primary, secondary = table.pop(primary_id), table.pop(secondary_id)
            record, moved = self._merged(object_type, primary, secondary)
            table[record["id"]] = record
            self._repoint(object_type, (primary_id, secondary_id), record["id"])
            if object_type in webhooks.SINGULAR:
                self.changes.append(
                    {
                        "kind": webhooks.SINGULAR[object_type],
                        "action": "merge",
                        "object_id": primary_id,
                        "created": False,
                        "primary_object_id": primary_id,
                        "merged_object_ids": [secondary_id],
                        "new_object_id": record["id"],
                        "properties_moved": moved,
                    }
                )
            self.state.save_records()
        self.effect("created", noun, record["id"])
        return self.ok(self._public(record))

    def _merged(
        self, object_type: str, primary: dict[str, Any], secondary: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        """The record two records merge into, and how many of the secondary's values it took."""
        now = now_iso()
        new_id = self._new_id(f"hubspot_{object_type}", ID_STARTS[object_type])
        first, second = primary["properties"], secondary["properties"]
        own = {
            "hs_object_id",
            "createdate",
            "lastmodifieddate",
            "hs_lastmodifieddate",
            MERGED_IDS,
            ADDITIONAL_EMAILS,
        }
        taken = {k: v for k, v in second.items() if v not in (None, "") and first.get(k) in (None, "")}
        moved = len(taken.keys() - own)
        properties = {**taken, **{k: v for k, v in first.items() if v not in (None, "")}}
        stages = [
            p.get("lifecyclestage") for p in (first, second) if p.get("lifecyclestage") in LIFECYCLE_ORDER
        ]
        if stages:
            properties["lifecyclestage"] = max(stages, key=LIFECYCLE_ORDER.index)
        emails: list[str] = []
        for props in (first, second):
            for email in [props.get("email"), *str(props.get(ADDITIONAL_EMAILS) or "").split(";")]:
                if email and email != properties.get("email") and email not in emails:
                    emails.append(email)
        if emails:
            properties[ADDITIONAL_EMAILS] = ";".join(emails)
        merged_ids = {primary["id"], secondary["id"]}
        for props in (first, second):
            merged_ids.update(i for i in str(props.get(MERGED_IDS) or "").split(";") if i)
        properties[MERGED_IDS] = ";".join(sorted(merged_ids, key=int))
        created = min((primary, secondary), key=lambda r: _instant(r["createdAt"]) or 0.0)
        modified_key = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        properties.update({"hs_object_id": new_id, modified_key: now})
        properties["createdate"] = created["properties"].get("createdate") or created["createdAt"]
        record = {
            "id": new_id,
            "properties": properties,
            "createdAt": created["createdAt"],
            "updatedAt": now,
            "archived": False,
        }
        return record, moved

    def _repoint(self, object_type: str, old_ids: tuple[str, ...], new_id: str) -> None:
        """Whatever named the merged records names the record they became: their ids (and ids
        merged into them before), their associations, their list memberships. Lock held."""
        aliases = self.merged_into(object_type)
        for alias, target in list(aliases.items()):
            if target in old_ids:
                aliases[alias] = new_id
        aliases.update(dict.fromkeys(old_ids, new_id))
        links = self.state.table("hubspot_associations")

        def end(kind: str, object_id: str) -> str:
            return new_id if kind == object_type and object_id in old_ids else object_id

        for key, link in list(links.items()):
            ends = {
                "fromId": end(link["fromType"], link["fromId"]),
                "toId": end(link["toType"], link["toId"]),
            }
            if (ends["fromId"], ends["toId"]) == (link["fromId"], link["toId"]):
                continue
            del links[key]
            if link["fromType"] == link["toType"] and ends["fromId"] == ends["toId"]:
                continue  # the two merged records were associated with each other
            moved = {**link, **ends, "types": []}
            target = links.setdefault(
                f"{link['fromType']}/{ends['fromId']}/{link['toType']}/{ends['toId']}", moved
            )
            target["types"].extend(t for t in link["types"] if t not in target["types"])
        type_id = OBJECT_TYPE_IDS[object_type]
        for listed in self.lists_table().values():
            members: list[str] = listed["members"]
            if listed["objectTypeId"] == type_id and any(m in old_ids for m in members):
                kept = [m for m in members if m not in old_ids]
                listed["members"] = [*kept, new_id]
                listed["updatedAt"] = now_iso()

    # -- the Webhooks API v3 (an app's settings and subscriptions) -------------------------------

    def _app(self, app_id: str) -> str:
        if app_id not in webhooks.SEED_APPS:
            raise _not_found(f"App {app_id} not found")
        return app_id

    def webhook_settings(self, app_id: str) -> Response:
        settings = self.state.table(webhooks.SETTINGS).get(self._app(app_id))
        if settings is None:
            raise _not_found(f"No webhook settings for app {app_id}")
        return self.ok(webhooks.settings_response(settings))

    def configure_webhooks(self, app_id: str) -> Response:
        body = self._body()
        target = body.get("targetUrl")
        throttling = body.get("throttling")
        if not isinstance(target, str) or not target.startswith(("http://", "https://")):
            raise _invalid("targetUrl must be an http(s) URL")
        if not isinstance(throttling, dict) or not isinstance(throttling.get("maxConcurrentRequests"), int):
            raise _invalid("throttling.maxConcurrentRequests is required")
        with self.state.lock:
            table = self.state.table(webhooks.SETTINGS)
            now = now_iso()
            before = table.get(self._app(app_id))
            table[app_id] = {
                "targetUrl": target,
                "throttling": throttling,
                "createdAt": before["createdAt"] if before else now,
                "updatedAt": now,
            }
            self.state.save_records()
        self.effect("updated" if before else "created", "webhook_settings", app_id)
        return self.ok(webhooks.settings_response(table[app_id]))

    def webhook_subscriptions(self, app_id: str) -> Response:
        self._app(app_id)
        listed = [
            webhooks.subscription_response(s)
            for s in self.state.table(webhooks.SUBSCRIPTIONS).values()
            if s["appId"] == app_id
        ]
        return self.ok({"results": listed})

    def subscribe(self, app_id: str) -> Response:
        body = self._body()
        event_type = body.get("eventType")
        if event_type not in webhooks.EVENT_TYPES:
            raise _invalid(f"eventType {event_type} is not a supported event type")
        name = body.get("propertyName")
        if event_type.endswith(".propertyChange") and not (isinstance(name, str) and name):
            raise _invalid("propertyName is required for propertyChange subscriptions")
        with self.state.lock:
            table = self.state.table(webhooks.SUBSCRIPTIONS)
            self._app(app_id)
            same = next(
                (
                    s
                    for s in table.values()
                    if s["appId"] == app_id and s["eventType"] == event_type and s.get("propertyName") == name
                ),
                None,
            )
            if same is not None:
                raise HubSpotError(
                    409,
                    f"A subscription for {event_type} {name or ''} already exists: {same['id']}",
                    "CONFLICT",
                )
            subscription_id = self.state.next_id(webhooks.SUBSCRIPTIONS, start=2001)
            now = now_iso()
            table[subscription_id] = {
                "id": int(subscription_id),
                "appId": app_id,
                "eventType": event_type,
                "propertyName": name,
                "active": bool(body.get("active", False)),
                "createdAt": now,
                "updatedAt": now,
            }
            self.state.save_records()
        self.effect("created", "webhook_subscription", subscription_id)
        return self.ok(webhooks.subscription_response(table[subscription_id]), status=201)

    def search(self, object_type: str) -> Response:
        body = self.body if isinstance(self.body, dict) else {}
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list) or len(groups) > SEARCH_MAX_GROUPS:
            raise _invalid(f"`filterGroups` must be an array of at most {SEARCH_MAX_GROUPS} groups")
        for group in groups:
            filters = group.get("filters") if isinstance(group, dict) else None
            if not isinstance(filters, list) or len(filters) > SEARCH_MAX_FILTERS_PER_GROUP:
                raise _invalid(f"Each filter group needs `filters`, at most {SEARCH_MAX_FILTERS_PER_GROUP}")
            for flt in filters:
                if not isinstance(flt, dict) or not flt.get("propertyName"):
                    raise _invalid("Each filter needs `propertyName` and `operator`")
                if flt.get("operator") not in SEARCH_OPERATORS:
                    raise _invalid(f"Unknown filter operator {flt.get('operator')!r}")
                needs_value = flt["operator"] not in ("HAS_PROPERTY", "NOT_HAS_PROPERTY", "IN", "NOT_IN")
                if needs_value and flt.get("value") is None:
                    raise _invalid(f"Filter on {flt['propertyName']} with {flt['operator']} needs a `value`")
                if flt["operator"] == "BETWEEN" and flt.get("highValue") is None:
                    raise _invalid(f"Filter on {flt['propertyName']} with BETWEEN needs a `highValue`")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 0 < limit <= SEARCH_MAX_LIMIT:
            raise _invalid(f"`limit` must be between 1 and {SEARCH_MAX_LIMIT}")
        try:
            offset = int(body.get("after") or 0)
        except (TypeError, ValueError):
            raise _invalid("`after` is not a valid paging cursor") from None
        query = str(body.get("query") or "").lower()
        records = list(self.objects(object_type).values())
        hits = [
            r
            for r in records
            if (not groups or any(all(_matches(r["properties"], f) for f in g["filters"]) for g in groups))
            and (not query or any(query in str(v).lower() for v in r["properties"].values()))
        ]
        sorts = body.get("sorts") or [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        for sort in reversed(sorts):
            if isinstance(sort, str):
                sort = {
                    "propertyName": sort.lstrip("-"),
                    "direction": "DESCENDING" if sort[0] == "-" else "ASCENDING",
                }
            name = sort.get("propertyName", "hs_object_id")
            hits.sort(
                key=_SortKey.of(name),
                reverse=sort.get("direction") == "DESCENDING",
            )
        requested = body.get("properties")
        defaults = (
            ENGAGEMENT_DEFAULT_PROPERTIES if object_type in ENGAGEMENTS else DEFAULT_PROPERTIES[object_type]
        )
        names = sorted({*requested, "hs_object_id"}) if requested else defaults
        page = hits[offset : offset + limit]
        payload: dict[str, Any] = {"total": len(hits), "results": [self._public(r, names) for r in page]}
        if offset + limit < len(hits):
            payload["paging"] = {"next": {"after": str(offset + limit)}}
        return self.ok(payload, rate_headers=False)

    # -- associations --------------------------------------------------------------------------

    def _link(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> bool:
        table = self.state.table("hubspot_associations")
        key = f"{from_type}/{from_id}/{to_type}/{to_id}"
        record = table.setdefault(
            key, {"fromType": from_type, "fromId": from_id, "toType": to_type, "toId": to_id, "types": []}
        )
        if type_id in record["types"]:
            return False
        record["types"].append(type_id)
        return True

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> Response:
        if not isinstance(self.body, list) or not self.body:
            raise _invalid("The body must be a non-empty array of association types")
        with self.state.lock:
            if from_id not in self.objects(from_type):
                raise _not_found(f"{from_type} {from_id} does not exist")
            if to_id not in self.objects(to_type):
                raise _not_found(f"{to_type} {to_id} does not exist")
            added = False
            for spec in self.body:
                type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
                category = spec.get("associationCategory") if isinstance(spec, dict) else None
                if (
                    category != "HUBSPOT_DEFINED"
                    or not isinstance(type_id, int)
                    or ASSOCIATION_TYPES.get(type_id) != (from_type, to_type)
                ):
                    raise _invalid(f"association type {spec} is not valid from {from_type} to {to_type}")
                added = self._link(from_type, from_id, to_type, to_id, type_id) or added
            if added:
                self.state.save_records()
        self.effect(
            "created" if added else "unchanged", "association", f"{from_type}/{from_id}/{to_type}/{to_id}"
        )
        return self.ok(
            {
                "fromObjectTypeId": OBJECT_TYPE_IDS[from_type],
                "fromObjectId": int(from_id) if from_id.isdigit() else from_id,
                "toObjectTypeId": OBJECT_TYPE_IDS[to_type],
                "toObjectId": int(to_id) if to_id.isdigit() else to_id,
                "labels": [],
            }
        )

    def read_associations(self, from_type: str, from_id: str, to_type: str) -> Response:
        record = self._find(from_type, "hs_object_id", from_id)
        if record is None:
            raise _not_found(f"{from_type} {from_id} does not exist")
        from_id = record["id"]
        found: dict[str, set[int]] = {}
        for record in self.state.table("hubspot_associations").values():
            if (record["fromType"], record["fromId"], record["toType"]) == (from_type, from_id, to_type):
                found.setdefault(record["toId"], set()).update(record["types"])
            elif (record["toType"], record["toId"], record["fromType"]) == (from_type, from_id, to_type):
                found.setdefault(record["fromId"], set()).update(INVERSE_TYPES[t] for t in record["types"])
        live = self.objects(to_type)
        results = [
            {
                "toObjectId": int(object_id) if object_id.isdigit() else object_id,
                "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in sorted(types)
                ],
            }
            for object_id, types in sorted(found.items())
            # An archived record's associations are kept (for a restore) but not listed.
            if object_id in live
        ]
        return self.ok({"results": results})

    # -- owners --------------------------------------------------------------------------------

    def owners(self) -> Response:
        params = self.request.query_params
        try:
            limit = int(params.get("limit", "100"))
            offset = int(params.get("after") or 0)
        except ValueError:
            raise _invalid("`limit` and `after` must be numbers") from None
        if not 0 < limit <= OWNERS_MAX_LIMIT:
            raise _invalid(f"`limit` must be between 1 and {OWNERS_MAX_LIMIT}")
        archived = params.get("archived", "false").lower() == "true"
        email = params.get("email")
        owners = [
            o
            for _, o in sorted(self.owners_table().items())
            if o["archived"] == archived and (email is None or o["email"] == email.lower())
        ]
        page = owners[offset : offset + limit]
        payload: dict[str, Any] = {"results": page}
        if offset + limit < len(owners):
            after = str(offset + limit)
            payload["paging"] = {
                "next": {"after": after, "link": f"https://api.hubapi.com/crm/v3/owners/?after={after}"}
            }
        return self.ok(payload)

    # -- lists ---------------------------------------------------------------------------------

    @staticmethod
    def _public_list(record: dict[str, Any]) -> dict[str, Any]:
        public = {k: v for k, v in record.items() if k != "members"}
        return {**public, "size": len(record["members"])}

    def create_list(self) -> Response:
        body = self._body()
        name, type_id, processing = body.get("name"), body.get("objectTypeId"), body.get("processingType")
        if not isinstance(name, str) or not name.strip():
            raise _invalid("`name` is required")
        if not isinstance(type_id, str) or type_id not in OBJECT_TYPE_IDS.values():
            raise _invalid(f"`objectTypeId` {type_id!r} is not a valid object type id")
        if processing not in ("MANUAL", "SNAPSHOT", "DYNAMIC"):
            raise _invalid("`processingType` must be MANUAL, SNAPSHOT or DYNAMIC")
        with self.state.lock:
            table = self.lists_table()
            if any(r["name"].lower() == name.strip().lower() for r in table.values()):
                raise _invalid(f"A list named {name!r} already exists")
            list_id = self._new_id("hubspot_lists", 201)
            table[list_id] = self._new_list(list_id, name.strip(), type_id, processing)
            self.state.save_records()
        self.effect("created", "list", list_id)
        return self.ok({"list": self._public_list(table[list_id])})

    def _list(self, list_id: str) -> dict[str, Any]:
        record: dict[str, Any] | None = self.lists_table().get(list_id)
        if record is None:
            raise _not_found(f"List {list_id} does not exist")
        return record

    def read_list(self, list_id: str) -> Response:
        return self.ok({"list": self._public_list(self._list(list_id))})

    def read_memberships(self, list_id: str) -> Response:
        members = self._list(list_id)["members"]
        return self.ok({"results": [{"recordId": m} for m in members], "total": len(members)})

    def memberships(self, list_id: str, action: str) -> Response:
        ids = self.body
        if not isinstance(ids, list) or not all(
            isinstance(i, str | int) and not isinstance(i, bool) for i in ids
        ):
            raise _invalid("The body must be an array of record ids")
        with self.state.lock:
            record = self._list(list_id)
            if record["processingType"] not in MEMBERSHIP_PROCESSING:
                raise _invalid(
                    f"List {list_id} has processingType {record['processingType']}: memberships can only be "
                    "changed on MANUAL or SNAPSHOT lists"
                )
            object_type = next(t for t, i in OBJECT_TYPE_IDS.items() if i == record["objectTypeId"])
            members: list[str] = record["members"]
            changed: list[str] = []
            missing: list[str] = []
            for record_id in (str(i) for i in ids):
                if record_id not in self.objects(object_type):
                    missing.append(record_id)
                elif action == "add" and record_id not in members:
                    members.append(record_id)
                    changed.append(record_id)
                elif action == "remove" and record_id in members:
                    members.remove(record_id)
                    changed.append(record_id)
            if changed:
                record["updatedAt"] = now_iso()
                self.state.save_records()
        effect = ("created" if action == "add" else "deleted") if changed else "unchanged"
        first = changed[0] if changed else (str(ids[0]) if ids else "")
        self.effect(effect, "list_membership", f"{list_id}:{first}")
        key = "recordsIdsAdded" if action == "add" else "recordIdsRemoved"
        return self.ok({key: changed, "recordIdsMissing": missing})

    # -- single-send ---------------------------------------------------------------------------

    def single_send(self) -> Response:
        body = self._body()
        api = SEND_APIS[self.path]
        email_id = body.get("emailId")
        if not isinstance(email_id, int) or isinstance(email_id, bool) or email_id <= 0:
            raise _invalid("`emailId` is required: the content id of the email")
        message = body.get("message")
        if not isinstance(message, dict) or "@" not in str(message.get("to") or ""):
            raise _invalid("`message.to` must be an email address")
        for field in ("contactProperties", "customProperties"):
            if body.get(field) is not None and not isinstance(body[field], dict):
                raise _invalid(f"`{field}` must be an object")
        send_id = message.get("sendId")
        to = str(message["to"]).strip().lower()
        sends = self.state.table("hubspot_email_sends")
        now = now_iso()
        with self.state.lock:
            if send_id and (earlier := sends.get(str(send_id))):
                self.effect("duplicate", "email", str(send_id))
                return self.ok(self._send_status(earlier["statusId"], "IDEMPOTENT_IGNORE", now))
            if api == "marketing" and self._unsubscribed_from_all(to):
                return self.ok(self._send_status(str(uuid.uuid4()), "PREVIOUSLY_UNSUBSCRIBED_PORTAL", now))
            if api == "marketing" and to in self.state.table("hubspot_bounced"):
                return self.ok(self._send_status(str(uuid.uuid4()), "PREVIOUSLY_BOUNCED", now))
            status_id = str(uuid.uuid4())
            key = str(send_id) if send_id else status_id
            sends[key] = {
                "statusId": status_id,
                "sendId": send_id,
                "api": api,
                "emailId": email_id,
                "to": to,
                "contactProperties": body.get("contactProperties") or {},
                "customProperties": body.get("customProperties") or {},
                "requestedAt": now,
            }
            _record_sent(self.state, to, email_id, "single_send")
            self.state.save_records()
        self.effect("sent", "email", key)
        return self.ok(self._send_status(status_id, "SENT", now))

    @staticmethod
    def _send_status(status_id: str, result: str, now: str) -> dict[str, Any]:
        return {
            "statusId": status_id,
            "status": "COMPLETE",
            "sendResult": result,
            "requestedAt": now,
            "startedAt": now,
            "completedAt": now,
            "eventId": {"id": str(uuid.uuid4()), "created": now},
        }

    # -- email events (legacy Email Events API) -------------------------------------------------

    def _ms(self, name: str) -> int | None:
        value = self.request.query_params.get(name)
        if value is None:
            return None
        if not value.isdigit():
            raise _invalid(f"{name} must be milliseconds since the epoch")
        return int(value)

    def email_events(self) -> Response:
        params = self.request.query_params
        start, end = self._ms("startTimestamp"), self._ms("endTimestamp")
        limit_text = params.get("limit") or "1000"
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= EMAIL_EVENTS_MAX_PAGE:
            raise _invalid(f"limit must be between 1 and {EMAIL_EVENTS_MAX_PAGE}")
        limit = int(limit_text)
        offset = params.get("offset")
        position = _from_offset(offset) if offset else 0
        if position is None:
            raise _invalid("offset is not an offset this API returned")
        with self.state.lock:
            matching = [
                e
                for e in self.state.table(EMAIL_EVENTS).values()
                if (start is None or e["created"] >= start)
                and (end is None or e["created"] <= end)
                and (not params.get("eventType") or e["type"] == params["eventType"])
                and (not params.get("recipient") or e["recipient"] == params["recipient"].lower())
                and (not params.get("campaignId") or str(e["emailCampaignId"]) == params["campaignId"])
            ]
        matching.sort(key=lambda e: (e["created"], e.get("_seq", 0)), reverse=True)
        page = [{k: v for k, v in e.items() if k != "_seq"} for e in matching[position : position + limit]]
        more = position + limit < len(matching)
        return self.ok(
            {"hasMore": more, "offset": _page_offset(position + limit) if more else None, "events": page}
        )

    # -- subscription preferences --------------------------------------------------------------

    def _statuses(self, email: str) -> dict[str, Any]:
        table = self.state.table("hubspot_subscription_statuses")
        found: dict[str, Any] = table.get(email, {})
        return found

    def _unsubscribed_from_all(self, email: str) -> bool:
        statuses = self._statuses(email)
        return all(
            statuses.get(d["id"], {}).get("status", SUBSCRIBED) == UNSUBSCRIBED
            for d in SUBSCRIPTION_DEFINITIONS
        )

    def _public_status(self, definition: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": definition["id"],
            "name": definition["name"],
            "description": definition["description"],
            "status": status.get("status", SUBSCRIBED),
            "sourceOfStatus": "SUBSCRIPTION_STATUS",
            "brandId": None,
            "preferenceGroupName": None,
            "legalBasis": status.get("legalBasis"),
            "legalBasisExplanation": status.get("legalBasisExplanation"),
        }

    def subscription_definitions(self) -> Response:
        now = now_iso()
        definitions = [
            {
                **d,
                "isActive": True,
                "isDefault": True,
                "isInternal": False,
                "createdAt": now,
                "updatedAt": now,
            }
            for d in SUBSCRIPTION_DEFINITIONS
        ]
        return self.ok({"subscriptionDefinitions": definitions})

    def subscription_status(self, email: str) -> Response:
        email = email.strip().lower()
        if "@" not in email:
            raise _invalid(f"{email} is not a valid email address")
        statuses = self._statuses(email)
        return self.ok(
            {
                "recipient": email,
                "subscriptionStatuses": [
                    self._public_status(d, statuses.get(d["id"], {})) for d in SUBSCRIPTION_DEFINITIONS
                ],
            }
        )

    def unsubscribe(self) -> Response:
        body = self._body()
        email = str(body.get("emailAddress") or "").strip().lower()
        subscription_id = str(body.get("subscriptionId") or "")
        if "@" not in email:
            raise _invalid("`emailAddress` must be an email address")
        definition = next((d for d in SUBSCRIPTION_DEFINITIONS if d["id"] == subscription_id), None)
        if definition is None:
            raise _invalid(f"{subscription_id or 'None'} is not a valid subscription id")
        legal_basis = body.get("legalBasis")
        if legal_basis is not None and legal_basis not in LEGAL_BASES:
            raise _invalid(f"{legal_basis} is not a valid legal basis")
        with self.state.lock:
            table = self.state.table("hubspot_subscription_statuses")
            statuses = table.setdefault(email, {})
            current = statuses.get(subscription_id, {})
            if current.get("status") == UNSUBSCRIBED:
                self.effect("unchanged", "subscription_status", f"{email}:{subscription_id}")
                raise _invalid(f"{email} is already unsubscribed from subscription {subscription_id}")
            statuses[subscription_id] = {
                "status": UNSUBSCRIBED,
                "legalBasis": legal_basis,
                "legalBasisExplanation": body.get("legalBasisExplanation"),
                "updatedAt": now_iso(),
            }
            self.state.save_records()
        self.effect("updated", "subscription_status", f"{email}:{subscription_id}")
        return self.ok(self._public_status(definition, statuses[subscription_id]))


def _campaign_of(email_id: int) -> int:
    """The email campaign id HubSpot gives an email's sends (each email has its own)."""
    return 30_000_000 + email_id


def _event(
    state: SandboxState, kind: str, recipient: str, sent: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    """One email event, as the Email Events API shows it. Call with the state's lock held."""
    created = int(time.time() * 1000)
    if sent is not None:
        # Never before the email it is about: HubSpot's events of one email are in order.
        created = max(created, sent["created"] + 1)
    event = {
        "id": str(uuid.uuid4()),
        "created": created,
        "type": kind,
        "recipient": recipient,
        "portalId": PORTAL_ID,
        "appId": sent["appId"] if sent else extra.pop("appId"),
        "appName": sent["appName"] if sent else extra.pop("appName"),
        "emailCampaignId": sent["emailCampaignId"] if sent else extra.pop("emailCampaignId"),
        **({"sentBy": {"id": sent["id"], "created": sent["created"]}} if sent else {}),
        **extra,
    }
    # The order events were made in, for events of the same millisecond (not part of the answer).
    event["_seq"] = int(state.next_id("hubspot_email_event_seq"))
    state.table(EMAIL_EVENTS)[event["id"]] = event
    return event


def _record_sent(state: SandboxState, recipient: str, email_id: int, kind: str) -> dict[str, Any]:
    """An email HubSpot sent: its SENT event, and the DELIVERED that follows. Lock held."""
    app_id, app_name = SEND_APPS[kind]
    sent = _event(
        state, "SENT", recipient, None, appId=app_id, appName=app_name, emailCampaignId=_campaign_of(email_id)
    )
    sent["sentBy"] = {"id": sent["id"], "created": sent["created"]}
    _event(state, "DELIVERED", recipient, sent, response="250 2.0.0 OK", smtpId=f"<{sent['id']}@sandbox>")
    return sent


def _page_offset(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode()


def _from_offset(offset: str) -> int | None:
    try:
        return int(base64.urlsafe_b64decode(offset.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        return None


def _latest_sent(state: SandboxState, email: str) -> dict[str, Any] | None:
    sent = [e for e in state.table(EMAIL_EVENTS).values() if e["type"] == "SENT" and e["recipient"] == email]
    return max(sent, key=lambda e: (e["created"], e.get("_seq", 0)), default=None)


def last_sent_at(state: SandboxState, email: str) -> str | None:
    with state.lock:
        sent = _latest_sent(state, email.strip().lower())
    if sent is None:
        return None
    return datetime.fromtimestamp(sent["created"] / 1000, tz=UTC).isoformat()


def _contact_of(state: SandboxState, email: str) -> dict[str, Any] | None:
    wanted = email.strip().lower()
    return next(
        (c for c in state.table("hubspot_contacts").values() if c["properties"].get("email") == wanted), None
    )


def send_campaign(state: SandboxState, email: str) -> dict[str, Any]:
    """A marketer sends a bulk marketing email to `email` from HubSpot's own UI."""
    recipient = email.strip().lower()
    with state.lock:
        if _contact_of(state, recipient) is None:
            raise LookupError(f"HubSpot has no contact {email}")
        sent = _record_sent(state, recipient, 990001, "bulk")
        state.save_records()
    return {"provider": "hubspot", "event_id": sent["id"], "campaign": sent["emailCampaignId"]}


def engage(state: SandboxState, email: str, action: str) -> dict[str, Any]:
    """The recipient acts on HubSpot's latest email to `email` (a bulk campaign's when none was
    sent yet): recorded as HubSpot's event for it, with what it does to the contact."""
    recipient = email.strip().lower()
    with state.lock:
        if _contact_of(state, recipient) is None:
            raise LookupError(f"HubSpot has no contact {email}")
        sent = _latest_sent(state, recipient) or _record_sent(state, recipient, 990001, "bulk")
        if action == "open":
            event = _event(state, "OPEN", recipient, sent, userAgent="Mozilla/5.0", duration=4200)
        elif action == "click":
            event = _event(state, "CLICK", recipient, sent, url=HUBSPOT_MESSAGE_LINK, userAgent="Mozilla/5.0")
        elif action == "bounce":
            event = _event(
                state,
                "BOUNCE",
                recipient,
                sent,
                category="HARD_BOUNCE",
                status="5.1.1",
                response="550 5.1.1 The email account that you tried to reach does not exist",
            )
            state.table("hubspot_bounced")[recipient] = {"at": event["created"]}
        else:
            if action == "spam":
                event = _event(state, "SPAMREPORT", recipient, sent, userAgent="Mozilla/5.0")
            statuses = state.table("hubspot_subscription_statuses").setdefault(recipient, {})
            for definition in SUBSCRIPTION_DEFINITIONS:
                statuses[definition["id"]] = {"status": UNSUBSCRIBED, "updatedAt": now_iso()}
            change = _event(
                state,
                "STATUSCHANGE",
                recipient,
                sent,
                source="SOURCE_RECIPIENT",
                requestedBy=None,
                portalSubscriptionStatus="UNSUBSCRIBED",
                subscriptions=[],
            )
            if action == "unsubscribe":
                event = change
        state.save_records()
    return {
        "provider": "hubspot",
        "event_id": event["id"],
        "type": event["type"],
        "campaign": sent["emailCampaignId"] if sent["appName"] == "Batch" else None,
    }


register_engagement("hubspot", last_sent_at, engage, send_campaign)


class _SortKey:
    """Sorts numbers as numbers and anything else as text, missing values last."""

    def __init__(self, value: Any) -> None:
        number = _as_number(value)
        if number is None and isinstance(value, str) and _DATE_START.match(value.strip()):
            # A datetime sorts by its instant, whether it is held as ISO or as milliseconds.
            number = _instant(value)
        self.rank = (
            (0, number, "") if number is not None else ((1, 0.0, str(value)) if value else (2, 0.0, ""))
        )

    def __lt__(self, other: _SortKey) -> bool:
        return self.rank < other.rank

    @classmethod
    def of(cls, name: str) -> Any:
        return lambda record: cls(record["properties"].get(name))
