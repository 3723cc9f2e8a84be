"""HubSpot behind `CrmPort` and `EmailPort`: CRM v3 objects, v4 associations, owners, lists v3,
marketing single-send and communication preferences.

Auth: a private app's access token, `Authorization: Bearer <token>` (scopes: crm.objects.contacts/
companies/deals.write, crm.objects.owners.read, crm.lists.write, marketing-email or transactional-email,
communication_preferences.read_write). Real base URL: `https://api.hubapi.com`.

Endpoints:
- contacts, companies, deals: `POST /crm/v3/objects/{type}/batch/upsert` (one input, `idProperty`);
- deal associations: `PUT /crm/v4/objects/deals/{id}/associations/{contacts|companies}/{toId}` with
  `[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3|5}]`;
- tasks, notes, meetings: `POST /crm/v3/objects/{type}/search`, then `POST /crm/v3/objects/{type}` with
  `properties` and `associations` (task->contact 204, note->contact 202, meeting->contact 200);
- owners: `GET /crm/v3/owners?limit=&after=&archived=false`, every page (`paging.next.after`);
- lists: `GET /crm/v3/objects/contacts/{email}?idProperty=email` for the record id, then
  `PUT /crm/v3/lists/{listId}/memberships/{add|remove}` with `[recordId]` (MANUAL or SNAPSHOT lists);
- email: `POST /marketing/v4/email/single-send` (marketing email, Marketing Hub Enterprise; honours
  subscription status), or with `email_api="transactional"` `POST /marketing/v3/transactional/single-
  email/send` (transactional add-on; ignores subscription status, so only for transactional content);
- suppression: `GET /communication-preferences/v3/status/email/{email}`, then
  `POST /communication-preferences/v3/unsubscribe` per subscription type still subscribed.

Errors: `{"status": "error", "message", "correlationId", "category", "errors": [{"message", "in",
"code", "context"}]}`, carried in the raised error as `<status> <category>: <message>; <details>
(correlationId ...)`. Batch endpoints answer 207 (or 200) with an `errors` array for inputs that failed.
A 429 names its `policyName` (TEN_SECONDLY_ROLLING, SECONDLY for search, DAILY); responses carry
`X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds` (and `-Daily`, `-Daily-Remaining`).
The retry delay is `Retry-After` when sent, else the rolling window (`-Interval-Milliseconds`, 10 s),
1 s for the search limit, and an hour for the daily limit (it resets at midnight in the account's time
zone, which the client does not know). Private apps get 100 requests per 10 s (Free/Starter) or 190
(Professional/Enterprise) per account; the search endpoints have their own limit of 5 requests per
second per account and answer without rate-limit headers: they go under the throttle key `hubspot:search`.

How each write keeps the idempotency contract (`Idempotency-Key` is sent too, for logs on both sides;
HubSpot ignores it):
- upsert_person / upsert_profile: natural key, upsert by `email` (`new` tells created from found).
  Lifecycle stages map to HubSpot's internal values (LIFECYCLE_STAGES). HubSpot refuses to move
  `lifecyclestage` backwards unless it is cleared first: a recycle (our `recycled` -> `lead`) clears it
  in the upsert and sets it in a second one; replays end in the same state. Any other stage only moves
  forward in our funnel, so when HubSpot already holds a later one (say `opportunity`, set by a deal)
  it keeps it, and the client leaves it so.
- upsert_company: natural key, upsert by the unique-value custom property `journeys_company_key` (the
  normalized domain; `domain` itself is not unique in HubSpot).
- upsert_deal: natural key, upsert by the unique-value custom property `journeys_deal_key`; the
  associations are PUTs, idempotent by nature.
- create_task / add_note / log_meeting: read before write. Engagements cannot have unique-value
  properties, so the body ends with a marker token derived from the idempotency key (`jrn` + 32 hex);
  the search (`CONTAINS_TOKEN` on the body property) finds an earlier write before creating. Limit:
  HubSpot's search index trails writes by a few seconds, so a retry within that window after a create
  whose answer was lost can create a second one; activity retries must back off longer than that.
- list_owners: a read.
- add_to_list / remove_from_list: membership is a set; `recordsIdsAdded` / `recordIdsRemoved` say
  whether this call changed it (created=False when it was already so). The id is `<listId>:<recordId>`.
- send_email: `message.sendId` is the idempotency key, and HubSpot sends at most one email per sendId
  (a repeat answers `sendResult: IDEMPOTENT_IGNORE`, created=False). The id is the sendId. Limit: the send
  is processed asynchronously; when the answer is still PENDING a repeat may report created=True, though
  HubSpot still sends once.
- suppress: read before write, subscription status per type; created=False when nothing was subscribed.
  `hs_email_optout` is left to HubSpot, which derives it from these statuses; the reason is not sent
  (HubSpot keeps no field for it).

Portal setup the writes rely on (custom properties, created once per account): contacts
`journeys_lead_id`, `journeys_lead_source` (text) and `journeys_lead_score` (number); companies
`journeys_company_key` and deals `journeys_deal_key`, both text with `hasUniqueValue: true` (HubSpot
refuses an upsert by a property that is not unique-value).

The module also keeps `upsert_contact(email, properties)` (returns HubSpotContact) for activities that
predate the ports.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from domain.crm_changes import HUBSPOT_ACTIVITY_STATUS
from domain.ratelimits import Throttle
from platforms.base import CallObserver, PlatformClient
from platforms.errors import (
    PermanentPlatformError,
    PlatformError,
    RateLimitedError,
    parse_retry_after,
)
from platforms.ports import (
    Company,
    CrmCompany,
    Deal,
    EmailMessage,
    Meeting,
    Note,
    Owner,
    Person,
    SuppressionReason,
    Task,
    WriteResult,
)

PROVIDER = "hubspot"
DEFAULT_BASE_URL = "https://api.hubapi.com"

# Our lifecycle stages (domain.lead.LifecycleStage) -> HubSpot's internal `lifecyclestage` values.
# HubSpot's order: subscriber, lead, marketingqualifiedlead, salesqualifiedlead, opportunity,
# customer, evangelist, other. `opportunity` is HubSpot's own (deals move contacts there).
LIFECYCLE_STAGES: dict[str, str] = {
    "anonymous": "subscriber",
    "lead": "lead",
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "customer": "customer",
    "advocate": "evangelist",
    "disqualified": "other",
    "recycled": "lead",
}
RECYCLED = "recycled"

# HUBSPOT_DEFINED association type ids (v4), from the first object to the second.
DEAL_TO_CONTACT = 3
DEAL_TO_COMPANY = 5  # the deal's primary company
TASK_TO_CONTACT = 204
NOTE_TO_CONTACT = 202
MEETING_TO_CONTACT = 200

# sendResult values that mean the email went (or will go) out, or that the sendId was seen before.
SEND_ACCEPTED = frozenset({"SENT", "QUEUED"})
SEND_DUPLICATE = frozenset({"IDEMPOTENT_IGNORE"})
SEND_THROTTLED = frozenset({"THROTTLED"})
# What the engine follows in HubSpot (domain/webhooks.py maps them): a rep working the contact, its
# owner, a deal's stage and amount.
WEBHOOK_SUBSCRIPTIONS: tuple[tuple[str, str | None], ...] = (
    ("contact.propertyChange", "hs_lead_status"),
    ("contact.propertyChange", "lifecyclestage"),
    ("contact.propertyChange", "hubspot_owner_id"),
    ("contact.merge", None),
    ("contact.deletion", None),
    ("contact.privacyDeletion", None),
    ("deal.propertyChange", "dealstage"),
    ("deal.propertyChange", "amount"),
)
# The CRM search answers at most 200 records a page.
ACTIVITY_PAGE_SIZE = 200
# What the poll reads of a rep's completed task or logged call.
ACTIVITY_PROPERTIES = {
    "tasks": ("hs_task_status", "hs_task_type", "hubspot_owner_id", "hs_timestamp", "hs_lastmodifieddate"),
    "calls": (
        "hs_call_status",
        "hs_call_direction",
        "hs_call_disposition",
        "hs_call_duration",
        "hubspot_owner_id",
        "hs_timestamp",
        "hs_lastmodifieddate",
    ),
}
# The Email Events API serves at most 1,000 events a page.
EMAIL_EVENTS_PAGE_SIZE = 1000

DAILY_LIMIT_RETRY_SECONDS = 3600.0
ROLLING_WINDOW_SECONDS = 10.0
SEARCH_LIMIT_RETRY_SECONDS = 1.0
SEARCH_THROTTLE_KEY = f"{PROVIDER}:search"


class HubSpotContact(BaseModel):
    id: str
    created: bool
    properties: dict[str, Any]


@dataclass(frozen=True)
class _Engagement:
    object_type: str
    name: str
    body_property: str
    contact_association: int


TASKS = _Engagement("tasks", "task", "hs_task_body", TASK_TO_CONTACT)
NOTES = _Engagement("notes", "note", "hs_note_body", NOTE_TO_CONTACT)
MEETINGS = _Engagement("meetings", "meeting", "hs_meeting_body", MEETING_TO_CONTACT)


def hubspot_lifecycle_stage(value: str) -> str:
    """Our stage as HubSpot's internal value; anything else (a HubSpot value, a custom stage id) as is."""
    return LIFECYCLE_STAGES.get(value, value)


# What account matching and ICP fit read of a company.
COMPANY_READ_PROPERTIES = (
    "name",
    "domain",
    "journeys_company_key",
    "industry",
    "numberofemployees",
    "country",
    "annualrevenue",
    "hubspot_owner_id",
)


def _crm_company(item: dict[str, Any]) -> CrmCompany:
    """A search result; HubSpot's industry is an enum (`COMPUTER_SOFTWARE`), read as words."""
    props = item.get("properties") or {}

    def number(name: str) -> float | None:
        try:
            return float(props[name]) if props.get(name) not in (None, "") else None
        except (TypeError, ValueError):
            return None

    employees = number("numberofemployees")
    industry = props.get("industry")
    domains = tuple(dict.fromkeys(d for d in (props.get("domain"), props.get("journeys_company_key")) if d))
    return CrmCompany(
        id=str(item["id"]),
        name=props.get("name") or None,
        domains=domains,
        industry=str(industry).replace("_", " ").lower() if industry else None,
        employees=int(employees) if employees is not None else None,
        country=props.get("country") or None,
        annual_revenue=number("annualrevenue"),
        owner_id=props.get("hubspot_owner_id") or None,
    )


def normalize_domain(value: str) -> str:
    """`https://WWW.Acme.com:443/about` -> `acme.com`: the company's natural key."""
    domain = value.strip().lower()
    domain = re.sub(r"^[a-z][a-z0-9+.-]*://", "", domain)
    domain = re.split(r"[/?#]", domain, maxsplit=1)[0]
    domain = domain.rsplit("@", 1)[-1].split(":", 1)[0].strip(".")
    return domain.removeprefix("www.")


def marker_token(idempotency_key: str) -> str:
    """One search token (letters and digits only, so HubSpot's tokenizer keeps it whole) per key."""
    return "jrn" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def with_marker(text: str, token: str) -> str:
    marker = f"[journeys ref {token}]"
    return f"{text}\n\n{marker}" if text else marker


def hubspot_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as HubSpot writes datetimes (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hubspot_date(value: date) -> str:
    """A date as midnight UTC, which is how HubSpot stores date-only values such as `closedate`."""
    return hubspot_datetime(datetime(value.year, value.month, value.day, tzinfo=UTC))


def _present(values: Mapping[str, str | None]) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


def _number(value: float) -> str:
    """A number as plain digits (`1234567.5`, never `1.23e+06`)."""
    return format(Decimal(str(value)), "f")


def _custom_value(value: Any) -> Any:
    """customProperties take scalars (no arrays); anything else goes as its text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class HubSpotClient(PlatformClient):
    provider: ClassVar[str] = PROVIDER
    owners_page_size: int = 100

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        token: str,
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
        deal_pipeline: str = "default",
        subscription_id: str | None = None,
        email_api: Literal["marketing", "transactional"] = "marketing",
        templates: Mapping[str, int] | None = None,
    ) -> None:
        """`deal_pipeline` is the pipeline new deals go in (its stage ids are Deal.stage values);
        `subscription_id` narrows `suppress` to one subscription type (else every type is
        unsubscribed); `email_api` picks the single-send endpoint (see the module docstring);
        `templates` names the HubSpot email id of each template name a journey sends
        (config/email_templates.toml), a template id that is not a name there must be HubSpot's."""
        super().__init__(http, base_url=base_url, throttle=throttle, observer=observer)
        self._token = token
        self._deal_pipeline = deal_pipeline
        self._subscription_id = subscription_id
        self._email_api = email_api
        self._templates = dict(templates or {})

    # -- the PlatformClient hooks --------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    def _throttle_key(self, operation: str) -> str:
        return SEARCH_THROTTLE_KEY if operation.endswith(".search") else PROVIDER

    def _error_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return f"{response.status_code} {response.text[:300]}"
        return f"{response.status_code} {_describe(body)}"

    def _retry_after(self, response: httpx.Response) -> float | None:
        told = response.headers.get("Retry-After")
        if told:
            return parse_retry_after(told)
        try:
            body = response.json()
        except ValueError:
            body = {}
        policy = str(body.get("policyName", "")).upper() if isinstance(body, dict) else ""
        if policy == "DAILY":
            return DAILY_LIMIT_RETRY_SECONDS
        interval_ms = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        if interval_ms:
            try:
                return float(interval_ms) / 1000
            except ValueError:
                pass
        if policy == "SECONDLY":
            return SEARCH_LIMIT_RETRY_SECONDS
        return ROLLING_WINDOW_SECONDS

    @staticmethod
    def _write_headers(idempotency_key: str | None) -> dict[str, str]:
        # HubSpot ignores it: logged on both sides, it ties a write to the journey step that made it.
        return {"Idempotency-Key": idempotency_key} if idempotency_key else {}

    # -- CRM objects ---------------------------------------------------------------------------

    async def _upsert(
        self,
        object_type: str,
        id_property: str,
        id_value: str,
        properties: Mapping[str, str],
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        body = {"inputs": [{"idProperty": id_property, "id": id_value, "properties": dict(properties)}]}
        response = await self._call(
            f"{object_type}.upsert",
            "POST",
            f"/crm/v3/objects/{object_type}/batch/upsert",
            json=body,
            headers=self._write_headers(idempotency_key),
        )
        payload = response.json()
        errors = payload.get("errors") or []
        results = payload.get("results") or []
        if errors or not results:
            raise self._batch_error(response, errors)
        result: dict[str, Any] = results[0]
        return result

    def _batch_error(self, response: httpx.Response, errors: list[Any]) -> PlatformError:
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        message = f"{response.status_code} {_describe(first) if first else 'batch answered no result'}"[:500]
        if first.get("category") == "RATE_LIMITS":
            return RateLimitedError(PROVIDER, message, retry_after=ROLLING_WINDOW_SECONDS)
        return PermanentPlatformError(PROVIDER, message, status=response.status_code)

    async def _upsert_contact(
        self,
        email: str,
        properties: Mapping[str, str],
        idempotency_key: str | None,
        *,
        recycle: bool,
    ) -> dict[str, Any]:
        email = email.strip().lower()
        stage = properties.get("lifecyclestage")
        first = {**properties, "email": email}
        if not (stage and recycle):
            return await self._upsert("contacts", "email", email, first, idempotency_key)
        # A recycle moves backwards, which HubSpot refuses: clear the stage in this upsert, set it in
        # the next one. A replay of either leaves the same state.
        first["lifecyclestage"] = ""
        result = await self._upsert("contacts", "email", email, first, idempotency_key)
        again = await self._upsert("contacts", "email", email, {"lifecyclestage": stage}, idempotency_key)
        merged = {**(result.get("properties") or {}), **(again.get("properties") or {})}
        return {**result, "properties": merged}

    async def upsert_contact(
        self, email: str, properties: dict[str, str], *, idempotency_key: str | None = None
    ) -> HubSpotContact:
        """A contact upserted by email with HubSpot property names; a `lifecyclestage` among them may
        be one of ours (`mql`, ...) or HubSpot's own."""
        properties = dict(properties)
        raw_stage = properties.get("lifecyclestage")
        if raw_stage:
            properties["lifecyclestage"] = hubspot_lifecycle_stage(raw_stage)
        result = await self._upsert_contact(email, properties, idempotency_key, recycle=raw_stage == RECYCLED)
        return HubSpotContact(
            id=str(result["id"]), created=bool(result.get("new", False)), properties=result["properties"]
        )

    @staticmethod
    def person_properties(person: Person) -> dict[str, str]:
        mapped = _present(
            {
                "firstname": person.first_name,
                "lastname": person.last_name,
                "company": person.company,
                "jobtitle": person.job_title,
                "phone": person.phone,
                "country": person.country,
                "journeys_lead_id": person.lead_id,
                "journeys_lead_source": person.lead_source,
                "lifecyclestage": (
                    hubspot_lifecycle_stage(person.lifecycle_stage) if person.lifecycle_stage else None
                ),
                "journeys_lead_score": None if person.lead_score is None else str(person.lead_score),
                "hubspot_owner_id": person.owner_id,
            }
        )
        return {**mapped, **person.properties}

    async def upsert_person(self, person: Person, *, idempotency_key: str) -> WriteResult:
        result = await self._upsert_contact(
            person.email,
            self.person_properties(person),
            idempotency_key,
            recycle=person.lifecycle_stage == RECYCLED,
        )
        return WriteResult(
            provider=PROVIDER, object_type="contact", id=str(result["id"]), created=bool(result.get("new"))
        )

    async def upsert_company(self, company: Company, *, idempotency_key: str) -> WriteResult:
        key = normalize_domain(company.domain)
        if not key:
            raise PermanentPlatformError(PROVIDER, f"company domain {company.domain!r} is empty")
        mapped = _present(
            {
                "journeys_company_key": key,
                "domain": key,
                "name": company.name,
                "industry": company.industry,
                "numberofemployees": None if company.employees is None else str(company.employees),
                "country": company.country,
                "hubspot_owner_id": company.owner_id,
            }
        )
        result = await self._upsert(
            "companies", "journeys_company_key", key, {**mapped, **company.properties}, idempotency_key
        )
        return WriteResult(
            provider=PROVIDER, object_type="company", id=str(result["id"]), created=bool(result.get("new"))
        )

    async def find_companies(self, *, domain: str | None, name_token: str | None) -> list[CrmCompany]:
        """One company search: by `domain` (HubSpot's own property and our company key) or a word
        of the name (`CONTAINS_TOKEN`), the filter groups ORed; at most 20 candidates."""
        groups = []
        if domain:
            key = normalize_domain(domain)
            groups += [
                {"filters": [{"propertyName": "domain", "operator": "EQ", "value": key}]},
                {"filters": [{"propertyName": "journeys_company_key", "operator": "EQ", "value": key}]},
            ]
        if name_token:
            groups.append(
                {"filters": [{"propertyName": "name", "operator": "CONTAINS_TOKEN", "value": name_token}]}
            )
        if not groups:
            return []
        body = {"filterGroups": groups, "properties": list(COMPANY_READ_PROPERTIES), "limit": 20}
        response = await self._call("companies.search", "POST", "/crm/v3/objects/companies/search", json=body)
        return [_crm_company(item) for item in response.json().get("results") or []]

    async def upsert_deal(self, deal: Deal, *, idempotency_key: str) -> WriteResult:
        properties = _present(
            {
                "journeys_deal_key": deal.key,
                "dealname": deal.name,
                "pipeline": self._deal_pipeline,
                "dealstage": deal.stage,
                "amount": None if deal.amount is None else _number(deal.amount),
                "deal_currency_code": deal.currency,
                "closedate": None if deal.close_date is None else hubspot_date(deal.close_date),
                "hubspot_owner_id": deal.owner_id,
            }
        )
        result = await self._upsert("deals", "journeys_deal_key", deal.key, properties, idempotency_key)
        deal_id = str(result["id"])
        if deal.person_id:
            await self._associate(
                "deals", deal_id, "contacts", deal.person_id, DEAL_TO_CONTACT, idempotency_key
            )
        if deal.company_id:
            await self._associate(
                "deals", deal_id, "companies", deal.company_id, DEAL_TO_COMPANY, idempotency_key
            )
        return WriteResult(provider=PROVIDER, object_type="deal", id=deal_id, created=bool(result.get("new")))

    async def _associate(
        self,
        from_type: str,
        from_id: str,
        to_type: str,
        to_id: str,
        type_id: int,
        idempotency_key: str | None,
    ) -> None:
        path = (
            f"/crm/v4/objects/{from_type}/{quote(from_id, safe='')}"
            f"/associations/{to_type}/{quote(to_id, safe='')}"
        )
        await self._call(
            "associations.put",
            "PUT",
            path,
            json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
            headers=self._write_headers(idempotency_key),
        )

    # -- rep activity read back: completed tasks and logged calls ------------------------------

    async def completed_since(
        self, object_type: str, since: datetime, *, limit: int = ACTIVITY_PAGE_SIZE
    ) -> list[dict[str, Any]]:
        """The tasks or calls (`object_type`) completed and last changed at or after `since`,
        oldest change first, one search page (the poll reads on from the last one next time)."""
        status_property, done = HUBSPOT_ACTIVITY_STATUS[object_type]
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": status_property, "operator": "EQ", "value": done},
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GTE",
                            "value": str(int(since.timestamp() * 1000)),
                        },
                    ]
                }
            ],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": list(ACTIVITY_PROPERTIES[object_type]),
            "limit": min(limit, ACTIVITY_PAGE_SIZE),
        }
        response = await self._call(
            f"{object_type}.search", "POST", f"/crm/v3/objects/{object_type}/search", json=body
        )
        return list(response.json().get("results") or [])

    async def contacts_of(self, object_type: str, record_id: str) -> list[str]:
        """The contacts a task or call is associated with (v4 associations, every page)."""
        path = f"/crm/v4/objects/{object_type}/{quote(record_id, safe='')}/associations/contacts"
        found: list[str] = []
        after: str | None = None
        while True:
            params = {"limit": "500", **({"after": after} if after else {})}
            response = await self._call(f"{object_type}.associations", "GET", path, params=params)
            payload = response.json()
            found += [str(r["toObjectId"]) for r in payload.get("results") or [] if r.get("toObjectId")]
            after = ((payload.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return found

    # -- engagements: read before write --------------------------------------------------------

    async def _find_marked(self, kind: _Engagement, token: str) -> str | None:
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": kind.body_property, "operator": "CONTAINS_TOKEN", "value": token}
                    ]
                }
            ],
            "properties": [kind.body_property],
            "sorts": [{"propertyName": "hs_createdate", "direction": "ASCENDING"}],
            "limit": 1,
        }
        response = await self._call(
            f"{kind.object_type}.search", "POST", f"/crm/v3/objects/{kind.object_type}/search", json=body
        )
        results = response.json().get("results") or []
        return str(results[0]["id"]) if results else None

    async def _create_engagement(
        self,
        kind: _Engagement,
        properties: dict[str, str],
        body_text: str,
        contact_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        token = marker_token(idempotency_key)
        found = await self._find_marked(kind, token)
        if found is not None:
            return WriteResult(provider=PROVIDER, object_type=kind.name, id=found, created=False)
        payload: dict[str, Any] = {
            "properties": {**properties, kind.body_property: with_marker(body_text, token)}
        }
        if contact_id:
            payload["associations"] = [
                {
                    "to": {"id": contact_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": kind.contact_association,
                        }
                    ],
                }
            ]
        response = await self._call(
            f"{kind.object_type}.create",
            "POST",
            f"/crm/v3/objects/{kind.object_type}",
            json=payload,
            headers=self._write_headers(idempotency_key),
        )
        return WriteResult(provider=PROVIDER, object_type=kind.name, id=str(response.json()["id"]))

    async def create_task(self, task: Task, *, idempotency_key: str) -> WriteResult:
        properties = _present(
            {
                "hs_task_subject": task.subject,
                "hs_task_status": "NOT_STARTED",
                "hs_task_priority": task.priority,
                "hs_task_type": "TODO",
                "hs_timestamp": hubspot_datetime(task.due_at),
                "hubspot_owner_id": task.owner_id,
            }
        )
        return await self._create_engagement(TASKS, properties, task.body, task.person_id, idempotency_key)

    async def add_note(self, note: Note, *, idempotency_key: str) -> WriteResult:
        properties = {"hs_timestamp": hubspot_datetime(note.occurred_at)}
        return await self._create_engagement(NOTES, properties, note.body, note.person_id, idempotency_key)

    async def log_meeting(self, meeting: Meeting, *, idempotency_key: str) -> WriteResult:
        properties = _present(
            {
                "hs_meeting_title": meeting.subject,
                "hs_meeting_start_time": hubspot_datetime(meeting.start),
                "hs_meeting_end_time": hubspot_datetime(meeting.end),
                "hs_timestamp": hubspot_datetime(meeting.start),
                "hs_meeting_outcome": "SCHEDULED",
                "hubspot_owner_id": meeting.owner_id,
            }
        )
        return await self._create_engagement(
            MEETINGS, properties, meeting.description, meeting.person_id, idempotency_key
        )

    # -- owners --------------------------------------------------------------------------------

    async def list_owners(self) -> list[Owner]:
        owners: list[Owner] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.owners_page_size, "archived": "false"}
            if after:
                params["after"] = after
            response = await self._call("owners.list", "GET", "/crm/v3/owners", params=params)
            payload = response.json()
            for item in payload.get("results") or []:
                owners.append(
                    Owner(
                        id=str(item["id"]),
                        email=item.get("email") or "",
                        first_name=item.get("firstName") or None,
                        last_name=item.get("lastName") or None,
                    )
                )
            after = ((payload.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return owners

    # -- EmailPort -----------------------------------------------------------------------------

    async def upsert_profile(self, person: Person, *, idempotency_key: str) -> WriteResult:
        return await self.upsert_person(person, idempotency_key=idempotency_key)

    async def _contact_id(self, email: str) -> str:
        response = await self._call(
            "contacts.read",
            "GET",
            f"/crm/v3/objects/contacts/{quote(email.strip().lower(), safe='@')}",
            params={"idProperty": "email", "properties": "email"},
        )
        return str(response.json()["id"])

    async def _change_membership(
        self, action: Literal["add", "remove"], contact_id: str, list_id: str, idempotency_key: str
    ) -> WriteResult:
        response = await self._call(
            f"lists.{action}",
            "PUT",
            f"/crm/v3/lists/{quote(list_id, safe='')}/memberships/{action}",
            json=[contact_id],
            headers=self._write_headers(idempotency_key),
        )
        payload = response.json()
        missing = [str(i) for i in payload.get("recordIdsMissing") or []]
        if contact_id in missing:
            raise PermanentPlatformError(
                PROVIDER, f"list {list_id}: record {contact_id} does not exist", status=response.status_code
            )
        if action == "add":
            # HubSpot spells it `recordsIdsAdded`; `recordIdsAdded` is accepted in case that changes.
            changed = payload.get("recordsIdsAdded") or payload.get("recordIdsAdded") or []
        else:
            changed = payload.get("recordIdsRemoved") or []
        return WriteResult(
            provider=PROVIDER,
            object_type="list_membership",
            id=f"{list_id}:{contact_id}",
            created=contact_id in {str(i) for i in changed},
        )

    async def add_to_list(self, email: str, list_id: str, *, idempotency_key: str) -> WriteResult:
        contact_id = await self._contact_id(email)
        return await self._change_membership("add", contact_id, list_id, idempotency_key)

    async def remove_from_list(self, email: str, list_id: str, *, idempotency_key: str) -> WriteResult:
        try:
            contact_id = await self._contact_id(email)
        except PermanentPlatformError as exc:
            if exc.status != 404:
                raise
            # No such contact, so it is on no list: nothing to remove.
            return WriteResult(
                provider=PROVIDER, object_type="list_membership", id=f"{list_id}:{email}", created=False
            )
        return await self._change_membership("remove", contact_id, list_id, idempotency_key)

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> WriteResult:
        try:
            email_id = self._templates.get(message.template_id) or int(message.template_id)
        except ValueError:
            raise PermanentPlatformError(
                PROVIDER,
                f"template_id {message.template_id!r} is not a HubSpot email id (a number); a template's"
                " email id is set in config/email_templates.toml, [hubspot]",
            ) from None
        custom = {name: _custom_value(value) for name, value in message.variables.items()}
        if message.subject is not None:
            custom.setdefault("subject", message.subject)
        body = {
            "emailId": email_id,
            "message": {"to": message.to, "sendId": idempotency_key},
            "customProperties": custom,
        }
        path = (
            "/marketing/v4/email/single-send"
            if self._email_api == "marketing"
            else "/marketing/v3/transactional/single-email/send"
        )
        response = await self._call(
            "email.send", "POST", path, json=body, headers=self._write_headers(idempotency_key)
        )
        payload = response.json()
        result = payload.get("sendResult")
        if result in SEND_THROTTLED:
            raise RateLimitedError(
                PROVIDER, f"{response.status_code} send THROTTLED", retry_after=ROLLING_WINDOW_SECONDS
            )
        if result and result not in SEND_ACCEPTED and result not in SEND_DUPLICATE:
            detail = payload.get("message")
            raise PermanentPlatformError(
                PROVIDER,
                f"{response.status_code} send refused: {result}" + (f": {detail}" if detail else ""),
                status=response.status_code,
            )
        return WriteResult(
            provider=PROVIDER, object_type="email", id=idempotency_key, created=result not in SEND_DUPLICATE
        )

    async def connect_webhooks(
        self, app_id: str, *, target_url: str, subscriptions: Sequence[tuple[str, str | None]]
    ) -> list[int]:
        """Points the app's webhooks at `target_url` and subscribes it to `subscriptions` (event
        type, property name) through the Webhooks API v3; a subscription already there is kept
        (409). Safe to run again. Returns the subscription ids."""
        # The keys tie the setup's writes to it in call logs (the Webhooks API takes no key itself).
        await self._call(
            "webhooks.configure",
            "PUT",
            f"/webhooks/v3/{app_id}/settings",
            json={"targetUrl": target_url, "throttling": {"maxConcurrentRequests": 10, "period": "SECONDLY"}},
            headers={"Idempotency-Key": f"hubspot-connect:{app_id}:settings"},
        )
        listed = (
            await self._call("webhooks.subscriptions", "GET", f"/webhooks/v3/{app_id}/subscriptions")
        ).json()
        existing = {
            (r["eventType"], r.get("propertyName")): int(r["id"]) for r in listed.get("results") or []
        }
        ids = []
        for event_type, property_name in subscriptions:
            known = existing.get((event_type, property_name))
            if known is None:
                body: dict[str, Any] = {"eventType": event_type, "active": True}
                if property_name:
                    body["propertyName"] = property_name
                made = await self._call(
                    "webhooks.subscribe",
                    "POST",
                    f"/webhooks/v3/{app_id}/subscriptions",
                    json=body,
                    headers={
                        "Idempotency-Key": f"hubspot-connect:{app_id}:{event_type}:{property_name or ''}"
                    },
                )
                known = int(made.json()["id"])
            ids.append(known)
        return ids

    async def email_events_page(
        self, *, start: datetime, end: datetime, offset: str | None = None
    ) -> dict[str, Any]:
        """One page of the account's marketing email events created in [start, end] (the legacy
        Email Events API, newest first, paged by `offset` while `hasMore`): the engagement poll's read."""
        params: dict[str, Any] = {
            "startTimestamp": int(start.timestamp() * 1000),
            "endTimestamp": int(end.timestamp() * 1000),
            "limit": EMAIL_EVENTS_PAGE_SIZE,
        }
        if offset is not None:
            params["offset"] = offset
        response = await self._call("email_events.read", "GET", "/email/public/v1/events", params=params)
        page: dict[str, Any] = response.json()
        return page

    async def suppress(
        self,
        email: str,
        reason: SuppressionReason,
        *,
        idempotency_key: str,
    ) -> WriteResult:
        email = email.strip().lower()
        response = await self._call(
            "subscriptions.status",
            "GET",
            f"/communication-preferences/v3/status/email/{quote(email, safe='@')}",
        )
        statuses = response.json().get("subscriptionStatuses") or []
        still = [
            str(s["id"])
            for s in statuses
            if str(s.get("status", "")).upper() != "NOT_SUBSCRIBED"
            and (self._subscription_id is None or str(s["id"]) == self._subscription_id)
        ]
        if self._subscription_id is not None and not any(
            str(s["id"]) == self._subscription_id for s in statuses
        ):
            still = [self._subscription_id]
        changed = False
        for subscription_id in still:
            answer = await self._call(
                "subscriptions.unsubscribe",
                "POST",
                "/communication-preferences/v3/unsubscribe",
                json={"emailAddress": email, "subscriptionId": subscription_id},
                headers=self._write_headers(idempotency_key),
                accept=_unsubscribed_or_already,
            )
            changed = changed or answer.status_code < 300
        return WriteResult(provider=PROVIDER, object_type="subscription", id=email, created=changed)


def _unsubscribed_or_already(response: httpx.Response) -> bool:
    """An unsubscribe that lost a race with another one answers 400 "already unsubscribed": done."""
    if response.status_code < 300:
        return True
    return response.status_code == 400 and "already unsubscribed" in response.text.lower()


def _describe(body: Mapping[str, Any]) -> str:
    """HubSpot's error body in one line: category, message, the details, the policy, correlationId."""
    category = body.get("category") or body.get("errorType") or "ERROR"
    message = str(body.get("message") or "").strip()
    text = f"{category}: {message}" if message else str(category)
    details = [
        str(item["message"])
        for item in body.get("errors") or []
        if isinstance(item, dict) and item.get("message") and str(item["message"]) != message
    ]
    if details:
        text += "; " + "; ".join(details[:3])
    context = body.get("context")
    if isinstance(context, dict) and context:
        text += f" {context}"
    if body.get("policyName"):
        text += f" [policy {body['policyName']}]"
    if body.get("correlationId"):
        text += f" (correlationId {body['correlationId']})"
    return text
