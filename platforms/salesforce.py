"""Salesforce as the CRM: REST API sObjects and SOQL (`/services/data/vXX.X/...`).

Auth
    OAuth 2.0 client credentials flow: `POST {base_url}/services/oauth2/token`, form-encoded
    `grant_type=client_credentials&client_id=...&client_secret=...`, sent to the org's My Domain
    login URL (`https://MyDomainName.my.salesforce.com`; the flow is not served by
    login.salesforce.com). The answer names `access_token` and `instance_url`; every API call then
    goes to `instance_url` with `Authorization: Bearer <token>`. The token is kept and fetched
    again once when a call answers 401 (`INVALID_SESSION_ID`: the session timed out or was
    revoked); a second 401 is a permanent error. A deployment may hand over a ready
    `access_token` (and `instance_url`) instead: it is used as is and cannot be refreshed.

Endpoints
    PATCH /sobjects/{Lead|Contact}/{person key field}/{lead_id}   person, upsert by external id
    PATCH /sobjects/Account/{company key field}/{domain}          company, upsert by external id
    PATCH /sobjects/Opportunity/{deal key field}/{deal.key}       deal, upsert by external id
    GET   /query?q=SELECT ...                                     lookups (and `nextRecordsUrl` pages)
    POST  /sobjects/{Lead|Contact|Task|Event}                     creates
    PATCH /sobjects/{Lead|Contact}/{Id}                           person found by email
    An upsert answers 201 `{"id", "success", "errors", "created": true}` for a new record and,
    from API 46.0, 200 with `"created": false` for an existing one (204 without a body before
    46.0: the id is then read back with SOQL). 300 means the external id matched several records.

Mapping
    Person -> Lead (or Contact with `person_object="Contact"`): Email, FirstName, LastName,
    Company (Lead only), Title, Phone, Country / MailingCountry, LeadSource, OwnerId; our
    lifecycle stage goes to a custom field and, for Leads, to the standard Status picklist through
    `lead_status` (customer and advocate are left out: a Lead becomes a customer by conversion,
    which is not an update); the score goes to a custom field. A Lead needs LastName and Company
    and an Account a Name, an Opportunity a CloseDate: when the model leaves them out, a SOQL
    read first tells whether the record exists, and only a new record gets the fallbacks
    (`[not provided]`, as Web-to-Lead does; the domain; today + 30 days), so a score update
    never overwrites a real name. Company -> Account (Name, Industry, NumberOfEmployees,
    BillingCountry); Deal -> Opportunity (Name, StageName, Amount, CloseDate, OwnerId,
    AccountId, and CurrencyIsoCode only with `multi_currency=True`: single-currency orgs reject
    the field). Task -> Task (Status "Not Started", a reminder at `due_at`); Meeting -> Event;
    Note -> a completed Task with the body as Description (ContentNote would need a second,
    separate write, a ContentDocumentLink, to attach it to the person, and a note that has
    the body but not the link is worse than a Task). `properties` keys that are already API
    names (`Industry`, `My_Field__c`) are written as given; snake_case keys, as the activities
    name them for every CRM, become custom fields: `journeys_utm_source` ->
    `Journeys_Utm_Source__c` (the org must have them). `deal_stages` maps our stage names to
    the org's Opportunity stages (by default HubSpot's default pipeline's ids to a new org's
    stages; unmapped ones are sent as given).

Errors and limits
    Errors come back as a JSON list `[{"message", "errorCode", "fields"}]` (the token endpoint
    answers `{"error", "error_description"}`). 400/404 (and 401 once refreshed) are permanent,
    5xx transient. Salesforce signals its limits with 403 `REQUEST_LIMIT_EXCEEDED`: the org's
    rolling 24-hour request allowance ("TotalRequests Limit exceeded") is retried after
    `daily_limit_retry_after` seconds, the concurrent long-running request limit after
    `concurrent_limit_retry_after`; a 429 with `Retry-After` (not sent by the REST API today)
    is honoured as well. Each answer's `Sforce-Limit-Info: api-usage=used/limit` is kept in
    `api_usage`. One throttle key, `salesforce`, covers the org-wide allowance;
    `salesforce:oauth` the token endpoint.

Idempotency (the contract of `platforms.ports`)
    Person, company and deal: natural-key upserts by an external id field (`Journeys_Lead_Id__c`
    = our lead id, `Journeys_Domain__c` = the lowercased domain, `Journeys_Deal_Key__c` =
    `deal.key`): a replay updates the same record and answers `created=False`. Mark these fields
    External ID *and* Unique (Unique also spares the integration user "View All Data").
    A person without a lead id: read before write by email (SOQL, unconverted Leads only).
    Task, note and meeting: read before write, the `idempotency_key` stored in
    `Journeys_Idempotency_Key__c` and looked up with SOQL before the create; a replay finds
    the earlier record and answers `created=False` with its id.

Honest limits
    Read-before-write is safe against replays (an activity attempt runs after the earlier one
    ended), not against two attempts of the same key running at once. SOQL `query` does not see
    archived activities (older than a year) nor deleted ones: a replay that late recreates the
    record. A Lead converted to a Contact refuses updates (CANNOT_UPDATE_CONVERTED_LEAD).
    The Opportunity is not linked to `deal.person_id` (that takes an OpportunityContactRole).
    External id values travel in the URL path: values that end like a format extension
    (e.g. a domain in `.json`/`.xml`) are misread by Salesforce and answer 404.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx

from domain.ratelimits import Throttle
from platforms.base import CallObserver, PlatformClient
from platforms.errors import PermanentPlatformError, PlatformError, RateLimitedError
from platforms.ports import Company, CrmCompany, Deal, Meeting, Note, Owner, Person, Task, WriteResult

PROVIDER = "salesforce"
DEFAULT_API_VERSION = "v62.0"
NOT_PROVIDED = "[not provided]"

# Our lifecycle stages (domain.lead.LifecycleStage) as the default Lead Status picklist values.
DEFAULT_LEAD_STATUS: dict[str, str] = {
    "anonymous": "Open - Not Contacted",
    "lead": "Open - Not Contacted",
    "recycled": "Open - Not Contacted",
    # An MQL is not worked yet: a rep setting Working - Contacted is the rep taking it (SQL).
    "mql": "Open - Not Contacted",
    "sql": "Working - Contacted",
    "disqualified": "Closed - Not Converted",
}

# HubSpot's default pipeline's stage ids (what the journeys write) to a new org's Opportunity stages.
DEFAULT_DEAL_STAGES: dict[str, str] = {
    "appointmentscheduled": "Prospecting",
    "qualifiedtobuy": "Qualification",
    "presentationscheduled": "Needs Analysis",
    "decisionmakerboughtin": "Id. Decision Makers",
    "contractsent": "Negotiation/Review",
    "closedwon": "Closed Won",
    "closedlost": "Closed Lost",
}

TASK_PRIORITY = {"LOW": "Low", "MEDIUM": "Normal", "HIGH": "High"}

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_SKIP_AUTH: contextvars.ContextVar[bool] = contextvars.ContextVar("salesforce_skip_auth", default=False)


@dataclass(frozen=True)
class SalesforceFields:
    """The custom fields the integration writes; the key fields must be External IDs (and Unique)."""

    person_key: str = "Journeys_Lead_Id__c"
    lifecycle_stage: str = "Journeys_Lifecycle_Stage__c"
    lead_score: str = "Journeys_Lead_Score__c"
    company_key: str = "Journeys_Domain__c"
    deal_key: str = "Journeys_Deal_Key__c"
    idempotency_key: str = "Journeys_Idempotency_Key__c"

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not _IDENTIFIER.match(value):
                raise ValueError(f"{name}: {value!r} is not a Salesforce field name")


def _crm_account(record: dict[str, Any], key_field: str) -> CrmCompany:
    website = str(record.get("Website") or "").strip().lower()
    website = re.sub(r"^[a-z]+://", "", website).split("/", 1)[0].removeprefix("www.")
    employees = record.get("NumberOfEmployees")
    revenue = record.get("AnnualRevenue")
    return CrmCompany(
        id=str(record["Id"]),
        name=record.get("Name") or None,
        domains=tuple(dict.fromkeys(d for d in (record.get(key_field), website) if d)),
        industry=str(record["Industry"]).lower() if record.get("Industry") else None,
        employees=int(employees) if isinstance(employees, (int, float)) else None,
        country=record.get("BillingCountry") or None,
        annual_revenue=float(revenue) if isinstance(revenue, (int, float)) else None,
        owner_id=record.get("OwnerId") or None,
    )


def soql_quote(value: str) -> str:
    """A SOQL string literal: backslash and quotes escaped, control characters spelled out."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("\b", "\\b")
        .replace("\f", "\\f")
    )
    return f"'{escaped}'"


def api_field_name(name: str) -> str:
    """A property key as a Salesforce field: API names as given, snake_case as a custom field."""
    if name.endswith("__c") or name[:1].isupper():
        return name
    return "_".join(part.capitalize() for part in name.split("_") if part) + "__c"


def _utc_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ok(response: httpx.Response) -> bool:
    return response.status_code < 300


class SalesforceClient(PlatformClient):
    """`CrmPort` on the Salesforce REST API."""

    provider: ClassVar[str] = PROVIDER

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        access_token: str | None = None,
        instance_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        person_object: Literal["Lead", "Contact"] = "Lead",
        fields: SalesforceFields | None = None,
        lead_status: Mapping[str, str] | None = None,
        deal_stages: Mapping[str, str] | None = None,
        multi_currency: bool = False,
        daily_limit_retry_after: float = 900.0,
        concurrent_limit_retry_after: float = 30.0,
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        super().__init__(http, base_url=base_url, throttle=throttle, observer=observer)
        if not access_token and not (client_id and client_secret):
            raise ValueError("salesforce needs client_id and client_secret, or an access_token")
        if person_object not in ("Lead", "Contact"):
            raise ValueError(f"person_object must be Lead or Contact, not {person_object!r}")
        version = api_version if api_version.startswith("v") else f"v{api_version}"
        if not re.fullmatch(r"v\d+\.\d", version):
            raise ValueError(f"api_version {api_version!r} is not of the form v62.0")
        self._client_id = client_id
        self._client_secret = client_secret
        self._token = access_token or None
        self._instance_url = (instance_url or base_url).rstrip("/")
        self._data = f"/services/data/{version}"
        self._person_object = person_object
        self._fields = fields or SalesforceFields()
        self._lead_status = dict(DEFAULT_LEAD_STATUS if lead_status is None else lead_status)
        self._deal_stages = dict(DEFAULT_DEAL_STAGES if deal_stages is None else deal_stages)
        self._multi_currency = multi_currency
        self._daily_limit_retry_after = daily_limit_retry_after
        self._concurrent_limit_retry_after = concurrent_limit_retry_after
        self._token_lock = asyncio.Lock()
        self._user_id: str | None = None
        # (used, limit) of the org's daily API requests, from the last `Sforce-Limit-Info`.
        self.api_usage: tuple[int, int] | None = None

    # ---- PlatformClient hooks -------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        if _SKIP_AUTH.get() or not self._token:
            return {}
        return {"Authorization": f"Bearer {self._token}"}

    def _throttle_key(self, operation: str) -> str:
        return f"{PROVIDER}:oauth" if operation == "oauth_token" else PROVIDER

    def _error_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return f"{response.status_code} {response.text[:300]}"
        parts: list[str] = []
        if isinstance(body, list):
            for item in body:
                if isinstance(item, dict):
                    text = f"{item.get('errorCode', 'ERROR')}: {item.get('message', '')}"
                    if item.get("fields"):
                        text += f" (fields: {', '.join(str(f) for f in item['fields'])})"
                    parts.append(text)
                else:  # 300: the URLs of the records an external id matched
                    parts.append(str(item))
            if response.status_code == 300:
                parts.insert(0, f"external id matches {len(body)} records:")
        elif isinstance(body, dict):
            if "error" in body:
                parts.append(f"{body['error']}: {body.get('error_description', '')}")
            else:
                parts.append(f"{body.get('errorCode', 'ERROR')}: {body.get('message', response.text[:300])}")
        return (
            f"{response.status_code} {' '.join(parts) if response.status_code == 300 else '; '.join(parts)}"
        )

    def _error(self, response: httpx.Response) -> PlatformError:
        self._note_usage(response)
        codes = _error_codes(response)
        if response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in codes:
            message = self._error_message(response)[:500]
            concurrent = "concurrent" in message.lower()
            delay = self._concurrent_limit_retry_after if concurrent else self._daily_limit_retry_after
            return RateLimitedError(self.provider, message, retry_after=delay, status=403)
        return super()._error(response)

    # ---- transport ---------------------------------------------------------------------------

    @property
    def _can_refresh(self) -> bool:
        return bool(self._client_id and self._client_secret)

    async def _fetch_token(self, stale: str | None) -> None:
        """A new token, unless another call already replaced the `stale` one meanwhile."""
        async with self._token_lock:
            if self._token is not None and self._token != stale:
                return
            form = urllib.parse.urlencode(
                {
                    "grant_type": "client_credentials",
                    "client_id": self._client_id or "",
                    "client_secret": self._client_secret or "",
                }
            )
            skipping = _SKIP_AUTH.set(True)
            try:
                response = await self._call(
                    "oauth_token",
                    "POST",
                    "/services/oauth2/token",
                    content=form.encode(),
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "Accept": "application/json",
                    },
                )
            finally:
                _SKIP_AUTH.reset(skipping)
            try:
                payload = response.json()
                token = str(payload["access_token"])
            except (ValueError, KeyError, TypeError) as exc:
                raise PermanentPlatformError(
                    self.provider, f"token answer without access_token: {response.text[:200]}"
                ) from exc
            self._token = token
            self._instance_url = str(payload.get("instance_url") or self._instance_url).rstrip("/")
            # The identity URL ends with the run-as user's id: the user the integration's writes
            # are made as (`LastModifiedById`), which the changes poll recognizes as its own.
            identity = str(payload.get("id") or "")
            self._user_id = identity.rstrip("/").rsplit("/", 1)[-1] if "/id/" in identity else None

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """One API call on the instance, with a fresh token once if the session expired."""
        if self._token is None:
            await self._fetch_token(None)
        for attempt in (1, 2):
            token = self._token
            url = path if path.startswith(("http://", "https://")) else f"{self._instance_url}{path}"
            try:
                response = await self._call(
                    operation,
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={"Accept": "application/json"},
                    accept=_ok,
                )
            except PermanentPlatformError as exc:
                if exc.status != 401 or attempt == 2 or not self._can_refresh:
                    raise
                await self._fetch_token(token)
                continue
            self._note_usage(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_usage(self, response: httpx.Response) -> None:
        found = _API_USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if found:
            self.api_usage = (int(found.group(1)), int(found.group(2)))

    async def _query(self, operation: str, soql: str, *, endpoint: str = "query") -> list[dict[str, Any]]:
        """Every record of a SOQL query, following `nextRecordsUrl` until `done`; `queryAll` also
        answers the deleted records (the recycle bin's, and those merged away)."""
        response = await self._request(operation, "GET", f"{self._data}/{endpoint}", params={"q": soql})
        payload = response.json()
        records = list(payload.get("records", []))
        while not payload.get("done", True) and payload.get("nextRecordsUrl"):
            response = await self._request(operation, "GET", str(payload["nextRecordsUrl"]))
            payload = response.json()
            records.extend(payload.get("records", []))
        return records

    async def own_user_id(self) -> str | None:
        """The user this integration's writes are made as (None with a token given as is)."""
        if self._user_id is None and self._can_refresh:
            await self._fetch_token(self._token)
        return self._user_id

    async def history_since(
        self, history: str, parent: str, since: datetime, *, limit: int = 200
    ) -> list[dict[str, Any]]:
        """The tracked field changes recorded in `history` (`LeadHistory` with `LeadId`,
        `OpportunityFieldHistory` with `OpportunityId`, ...) at or after `since`, oldest first:
        each change with its old and new value and who made it, the changes poll's read. The org
        must track the fields (Set History Tracking: Lead Status, Opportunity Stage and Amount)."""
        for name in (history, parent):
            if not _IDENTIFIER.match(name):
                raise ValueError(f"{name!r} is not a Salesforce name")
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        soql = (
            f"SELECT Id, {parent}, Field, DataType, OldValue, NewValue, CreatedById, CreatedDate "
            f"FROM {history} "
            f"WHERE CreatedDate >= {stamp} ORDER BY CreatedDate ASC LIMIT {int(limit)}"
        )
        return await self._query(f"changes.{history}", soql)

    async def deleted_since(self, sobject: str, since: datetime, *, limit: int = 200) -> list[dict[str, Any]]:
        """The `sobject` records deleted at or after `since`, oldest first, each with who deleted
        it and, for a record deleted by a merge, the record it was merged into (`MasterRecordId`)."""
        if not _IDENTIFIER.match(sobject):
            raise ValueError(f"{sobject!r} is not a Salesforce name")
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        soql = (
            f"SELECT Id, MasterRecordId, LastModifiedById, SystemModstamp FROM {sobject} "
            f"WHERE IsDeleted = true AND SystemModstamp >= {stamp} "
            f"ORDER BY SystemModstamp ASC LIMIT {int(limit)}"
        )
        return await self._query(f"changes.{sobject}.deleted", soql, endpoint="queryAll")

    async def closed_tasks_since(self, since: datetime, *, limit: int = 200) -> list[dict[str, Any]]:
        """Tasks closed (completed, or logged as done: a call) and changed at or after `since`,
        oldest first: who they are about (`WhoId`), whose they are, and a call's details."""
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        soql = (
            "SELECT Id, WhoId, TaskSubtype, Status, OwnerId, LastModifiedById, CompletedDateTime, "
            "CallType, CallDisposition, CallDurationInSeconds, SystemModstamp FROM Task "
            f"WHERE IsClosed = true AND SystemModstamp >= {stamp} "
            f"ORDER BY SystemModstamp ASC LIMIT {int(limit)}"
        )
        return await self._query("changes.Task", soql)

    async def _find_id(self, operation: str, sobject: str, where: str) -> str | None:
        records = await self._query(operation, f"SELECT Id FROM {sobject} WHERE {where} LIMIT 1")
        return str(records[0]["Id"]) if records else None

    async def _upsert(
        self, operation: str, sobject: str, key_field: str, key: str, body: dict[str, Any]
    ) -> tuple[str, bool]:
        path = f"{self._data}/sobjects/{sobject}/{key_field}/{urllib.parse.quote(key, safe='')}"
        response = await self._request(operation, "PATCH", path, json=body)
        if response.status_code == 204 or not response.content:
            # Before API 46.0 an update answered 204 and no body: read the id back.
            record_id = await self._find_id(operation, sobject, f"{key_field} = {soql_quote(key)}")
            if record_id is None:
                raise PermanentPlatformError(
                    self.provider, f"{sobject} {key_field}={key!r} upserted but not found", status=204
                )
            return record_id, False
        payload = response.json()
        return str(payload["id"]), bool(payload.get("created", response.status_code == 201))

    async def _create(self, operation: str, sobject: str, body: dict[str, Any]) -> str:
        response = await self._request(operation, "POST", f"{self._data}/sobjects/{sobject}", json=body)
        return str(response.json()["id"])

    def _result(self, object_type: str, record_id: str, created: bool) -> WriteResult:
        return WriteResult(provider=self.provider, object_type=object_type, id=record_id, created=created)

    # ---- CrmPort ---------------------------------------------------------------------------------

    async def upsert_person(self, person: Person, *, idempotency_key: str) -> WriteResult:
        sobject = self._person_object
        object_type = sobject.lower()
        body = self._person_body(person)
        fallbacks = {"LastName": NOT_PROVIDED}
        if sobject == "Lead":
            fallbacks["Company"] = NOT_PROVIDED
        missing = {k: v for k, v in fallbacks.items() if k not in body}
        key_field = self._fields.person_key
        if person.lead_id:
            where = f"{key_field} = {soql_quote(person.lead_id)}"
            if missing and await self._find_id("find_person", sobject, where) is None:
                body = {**missing, **body}
            record_id, created = await self._upsert("upsert_person", sobject, key_field, person.lead_id, body)
            return self._result(object_type, record_id, created)
        where = f"Email = {soql_quote(person.email)}"
        if sobject == "Lead":
            where += " AND IsConverted = false"
        existing = await self._query(
            "find_person", f"SELECT Id FROM {sobject} WHERE {where} ORDER BY CreatedDate ASC LIMIT 1"
        )
        if existing:
            record_id = str(existing[0]["Id"])
            await self._request(
                "update_person", "PATCH", f"{self._data}/sobjects/{sobject}/{record_id}", json=body
            )
            return self._result(object_type, record_id, False)
        record_id = await self._create("create_person", sobject, {**missing, **body})
        return self._result(object_type, record_id, True)

    def _person_body(self, person: Person) -> dict[str, Any]:
        lead = self._person_object == "Lead"
        body: dict[str, Any] = {
            "Email": person.email,
            "FirstName": person.first_name,
            "LastName": person.last_name,
            "Title": person.job_title,
            "Phone": person.phone,
            "LeadSource": person.lead_source,
            "OwnerId": person.owner_id,
            ("Country" if lead else "MailingCountry"): person.country,
        }
        if lead:
            body["Company"] = person.company
        if person.lifecycle_stage is not None:
            body[self._fields.lifecycle_stage] = person.lifecycle_stage
            if lead and person.lifecycle_stage in self._lead_status:
                body["Status"] = self._lead_status[person.lifecycle_stage]
        if person.lead_score is not None:
            body[self._fields.lead_score] = person.lead_score
        body = {k: v for k, v in body.items() if v is not None}
        body.update({api_field_name(k): v for k, v in person.properties.items()})
        return body

    async def upsert_company(self, company: Company, *, idempotency_key: str) -> WriteResult:
        domain = company.domain.strip().lower().removeprefix("www.")
        body: dict[str, Any] = {
            "Name": company.name,
            "Industry": company.industry,
            "NumberOfEmployees": company.employees,
            "BillingCountry": company.country,
            "OwnerId": company.owner_id,
        }
        body = {k: v for k, v in body.items() if v is not None}
        body.update({api_field_name(k): v for k, v in company.properties.items()})
        key_field = self._fields.company_key
        if "Name" not in body:
            where = f"{key_field} = {soql_quote(domain)}"
            if await self._find_id("find_company", "Account", where) is None:
                body["Name"] = domain
        record_id, created = await self._upsert("upsert_company", "Account", key_field, domain, body)
        return self._result("company", record_id, created)

    async def find_companies(self, *, domain: str | None, name_token: str | None) -> list[CrmCompany]:
        """Accounts known by `domain` (our company key, or a Website holding it) or whose name holds
        `name_token`: SOQL has no OR across these cheaply, so one query each."""
        fields = "Id, Name, Website, Industry, NumberOfEmployees, BillingCountry, AnnualRevenue, OwnerId"
        key_field = self._fields.company_key
        wheres = []
        if domain:
            key = domain.strip().lower().removeprefix("www.")
            wheres += [f"{key_field} = {soql_quote(key)}", f"Website LIKE {soql_quote('%' + key + '%')}"]
        if name_token:
            wheres.append(f"Name LIKE {soql_quote('%' + name_token + '%')}")
        found: dict[str, CrmCompany] = {}
        for where in wheres:
            for record in await self._query(
                "find_companies", f"SELECT {fields}, {key_field} FROM Account WHERE {where} LIMIT 20"
            ):
                found.setdefault(str(record["Id"]), _crm_account(record, key_field))
        return list(found.values())

    async def upsert_deal(self, deal: Deal, *, idempotency_key: str) -> WriteResult:
        body: dict[str, Any] = {
            "Name": deal.name,
            "StageName": self._deal_stages.get(deal.stage, deal.stage),
            "Amount": deal.amount,
            "CloseDate": deal.close_date.isoformat() if deal.close_date else None,
            "OwnerId": deal.owner_id,
            "AccountId": deal.company_id,
            "CurrencyIsoCode": deal.currency.upper() if deal.currency and self._multi_currency else None,
        }
        body = {k: v for k, v in body.items() if v is not None}
        key_field = self._fields.deal_key
        if "CloseDate" not in body:
            where = f"{key_field} = {soql_quote(deal.key)}"
            if await self._find_id("find_deal", "Opportunity", where) is None:
                body["CloseDate"] = (date.today() + timedelta(days=30)).isoformat()
        record_id, created = await self._upsert("upsert_deal", "Opportunity", key_field, deal.key, body)
        return self._result("deal", record_id, created)

    async def _create_once(
        self, operation: str, sobject: str, object_type: str, body: dict[str, Any], idempotency_key: str
    ) -> WriteResult:
        """Read before write: the key is stored on the record and looked up before creating."""
        key_field = self._fields.idempotency_key
        where = f"{key_field} = {soql_quote(idempotency_key)}"
        existing = await self._find_id(f"find_{object_type}", sobject, where)
        if existing is not None:
            return self._result(object_type, existing, False)
        body = {k: v for k, v in body.items() if v is not None}
        body[key_field] = idempotency_key
        return self._result(object_type, await self._create(operation, sobject, body), True)

    async def create_task(self, task: Task, *, idempotency_key: str) -> WriteResult:
        body = {
            "Subject": task.subject[:255],
            "Description": task.body[:32000] or None,
            "ActivityDate": task.due_at.date().isoformat(),
            "ReminderDateTime": _utc_timestamp(task.due_at),
            "IsReminderSet": True,
            "Priority": TASK_PRIORITY[task.priority],
            "Status": "Not Started",
            "OwnerId": task.owner_id,
            "WhoId": task.person_id,
        }
        return await self._create_once("create_task", "Task", "task", body, idempotency_key)

    async def add_note(self, note: Note, *, idempotency_key: str) -> WriteResult:
        first_line = next((line.strip() for line in note.body.splitlines() if line.strip()), "")
        subject = f"Note: {first_line}" if first_line else "Note"
        body = {
            "Subject": subject[:255],
            "Description": note.body[:32000],
            "ActivityDate": note.occurred_at.date().isoformat(),
            "Status": "Completed",
            "Priority": "Normal",
            "WhoId": note.person_id,
        }
        return await self._create_once("add_note", "Task", "note", body, idempotency_key)

    async def log_meeting(self, meeting: Meeting, *, idempotency_key: str) -> WriteResult:
        body = {
            "Subject": meeting.subject[:255],
            "Description": meeting.description[:32000] or None,
            "StartDateTime": _utc_timestamp(meeting.start),
            "EndDateTime": _utc_timestamp(meeting.end),
            "OwnerId": meeting.owner_id,
            "WhoId": meeting.person_id,
        }
        return await self._create_once("log_meeting", "Event", "meeting", body, idempotency_key)

    async def list_owners(self) -> list[Owner]:
        records = await self._query(
            "list_owners",
            "SELECT Id, Email, FirstName, LastName FROM User "
            "WHERE IsActive = true AND UserType = 'Standard' ORDER BY Id",
        )
        return [
            Owner(
                id=str(r["Id"]),
                email=str(r.get("Email") or ""),
                first_name=r.get("FirstName"),
                last_name=r.get("LastName"),
            )
            for r in records
        ]


def _error_codes(response: httpx.Response) -> set[str]:
    try:
        body = response.json()
    except ValueError:
        return set()
    items = body if isinstance(body, list) else [body]
    return {str(item.get("errorCode")) for item in items if isinstance(item, dict) and item.get("errorCode")}
