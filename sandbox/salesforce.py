"""Salesforce as the sandbox answers it: the OAuth token endpoint and the REST API's sObjects and SOQL.

One emulated org answers both the login host and the instance, under `/salesforce`:

- `POST /services/oauth2/token` (client credentials, form-encoded): a client id is registered
  with the secret it first shows; a different secret later is `invalid_client`.
- `/services/data/vXX.X/...` wants `Authorization: Bearer` with an issued token (401
  `INVALID_SESSION_ID` otherwise; drop a token from the `salesforce_tokens` table to expire it),
  counts each call against the org's daily allowance (`salesforce_org`: `api_usage`,
  `api_limit`; past it, 403 `REQUEST_LIMIT_EXCEEDED`) and says so in `Sforce-Limit-Info`.
- `PATCH sobjects/{type}/{external id field}/{value}` upserts (201 created, 200 `created: false`,
  300 for several matches), `POST sobjects/{type}` creates, `PATCH|GET sobjects/{type}/{id}`.
- `DELETE sobjects/{type}/{id}` moves the record to the recycle bin (204; `IsDeleted` true, who
  deleted it in `LastModifiedById`): reads, upserts and `query` no longer see it (404 `NOT_FOUND`),
  a second delete or an update is 404 `ENTITY_IS_DELETED`.
- `GET queryAll?q=` is `query` with the recycle bin's records too (deleted and merged ones);
  its `nextRecordsUrl` says `query/...` as Salesforce's does, and `queryAll/...` pages as well.
- `GET query?q=` runs a SOQL subset: `SELECT f, ... FROM type [WHERE f = value [AND ...]]
  [ORDER BY f [ASC|DESC]] [LIMIT n]`, values `'text'` (SOQL escapes), true, false, null or a
  number or a datetime (`2026-12-04T19:00:00Z`), `=`, `!=`, `<`, `<=`, `>`, `>=` and `LIKE` (`%`
  and `_`, case-insensitive); records carry who created and last changed them (`CreatedById`,
  `LastModifiedById`: the token's run-as user, see `_run_as`). Answers come in batches of 5
  (Salesforce may send fewer records than asked) with `done`/`nextRecordsUrl`;
  `Sforce-Query-Options: batchSize=n` changes that.

Records carry standard fields of Lead, Contact, Account, Opportunity, Task, Event and User, plus
any custom `__c` field; required fields, restricted picklists (Lead Status, Task Status, Priority,
CallType and TaskSubtype; Opportunity stages are org-defined and taken as given), emails, dates and
references to users, people and accounts are checked as Salesforce checks them. Users are seeded.
A Task is closed (`IsClosed`, `CompletedDateTime`, both read-only) once its Status is Completed:
a rep logging a call creates one with TaskSubtype Call and Status Completed.

Tracked fields' changes land in LeadHistory, ContactHistory and OpportunityFieldHistory, with a
`DataType`; an owner change is two rows of Field `Owner`, the users' ids (`EntityId`) and their
names (`Text`), as Salesforce records a lookup's change. The REST API has no merge (the UI and
SOAP do): `merge_records` plays a user merging leads or contacts in the UI (`POST
/_salesforce/merge`): the others go to the recycle bin with `MasterRecordId`, their activities
move to the master.
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox.core import ProviderHandler, SandboxState, register

ORG_ID = "00D5g00000SANDBX"
QUERY_BATCH = 5
DEFAULT_API_LIMIT = 15_000
INTEGRATION_USER = "005000000000001"
# A client id `ui:<username>` stands for that user working in Salesforce's UI (see `_run_as`).
UI_CLIENT = "ui:"

_COMMON = (
    "Id",
    "OwnerId",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
    "IsDeleted",
)
_HISTORY_FIELDS = ("Field", "DataType", "OldValue", "NewValue", "CreatedById", "CreatedDate", "IsDeleted")
OBJECTS: dict[str, dict[str, Any]] = {
    "Lead": {
        "prefix": "00Q",
        "required": ("LastName", "Company"),
        "fields": (
            *_COMMON,
            "FirstName",
            "LastName",
            "Name",
            "Email",
            "Company",
            "Title",
            "Phone",
            "Country",
            "LeadSource",
            "Status",
            "Industry",
            "Website",
            "Description",
            "IsConverted",
            "MasterRecordId",
        ),
    },
    "Contact": {
        "prefix": "003",
        "required": ("LastName",),
        "fields": (
            *_COMMON,
            "FirstName",
            "LastName",
            "Name",
            "Email",
            "Title",
            "Phone",
            "MailingCountry",
            "LeadSource",
            "AccountId",
            "Description",
            "MasterRecordId",
        ),
    },
    "Account": {
        "prefix": "001",
        "required": ("Name",),
        "fields": (
            *_COMMON,
            "Name",
            "Industry",
            "NumberOfEmployees",
            "BillingCountry",
            "Website",
            "AnnualRevenue",
            "Description",
        ),
    },
    "Opportunity": {
        "prefix": "006",
        "required": ("Name", "StageName", "CloseDate"),
        "fields": (
            *_COMMON,
            "Name",
            "StageName",
            "Amount",
            "CloseDate",
            "AccountId",
            "CurrencyIsoCode",
            "Description",
        ),
    },
    "Task": {
        "prefix": "00T",
        "required": (),
        "fields": (
            *_COMMON,
            "Subject",
            "Description",
            "ActivityDate",
            "Status",
            "Priority",
            "WhoId",
            "WhatId",
            "ReminderDateTime",
            "IsReminderSet",
            "TaskSubtype",
            "IsClosed",
            "CompletedDateTime",
            "CallType",
            "CallDurationInSeconds",
            "CallDisposition",
        ),
    },
    "Event": {
        "prefix": "00U",
        "required": ("StartDateTime",),
        "fields": (
            *_COMMON,
            "Subject",
            "Description",
            "StartDateTime",
            "EndDateTime",
            "DurationInMinutes",
            "ActivityDateTime",
            "WhoId",
            "WhatId",
        ),
    },
    # Field history: one row per tracked field's change, with who made it (read-only, as in Salesforce).
    "LeadHistory": {
        "prefix": "017",
        "required": (),
        "readonly": True,
        "fields": ("Id", "LeadId", *_HISTORY_FIELDS),
    },
    "ContactHistory": {
        "prefix": "017",
        "required": (),
        "readonly": True,
        "fields": ("Id", "ContactId", *_HISTORY_FIELDS),
    },
    "OpportunityFieldHistory": {
        "prefix": "017",
        "required": (),
        "readonly": True,
        "fields": ("Id", "OpportunityId", *_HISTORY_FIELDS),
    },
    "User": {
        "prefix": "005",
        "required": (),
        "readonly": True,
        "fields": (
            "Id",
            "Username",
            "Email",
            "FirstName",
            "LastName",
            "Name",
            "IsActive",
            "UserType",
            "CreatedDate",
        ),
    },
}
READONLY_FIELDS = {
    "Id",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "IsDeleted",
    "IsConverted",
    "MasterRecordId",  # set by a merge only
    "IsClosed",  # follows the Task's Status
    "CompletedDateTime",
}
# Fields set when a record is created and never after (Salesforce: createable, not updateable).
CREATE_ONLY_FIELDS = {("Task", "TaskSubtype")}
# The fields whose changes the org tracks (Setup > Object Manager > Fields > Set History Tracking),
# and where their history goes.
TRACKED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "Lead": ("LeadHistory", "LeadId", ("Status", "OwnerId")),
    "Contact": ("ContactHistory", "ContactId", ("OwnerId",)),
    "Opportunity": ("OpportunityFieldHistory", "OpportunityId", ("StageName", "Amount", "OwnerId")),
}
# A history row's DataType: the changed field's type as history names it (picklists are
# `DynamicEnum`); a lookup such as the owner gets two rows, see `_track`.
HISTORY_DATATYPES = {"Status": "DynamicEnum", "StageName": "DynamicEnum", "Amount": "Currency"}
PICKLISTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Lead", "Status"): (
        "Open - Not Contacted",
        "Working - Contacted",
        "Closed - Converted",
        "Closed - Not Converted",
    ),
    ("Task", "Status"): ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"),
    ("Task", "Priority"): ("High", "Normal", "Low"),
    ("Task", "CallType"): ("Internal", "Inbound", "Outbound"),
    ("Task", "TaskSubtype"): ("Task", "Email", "ListEmail", "Cadence", "Call"),
}
# The Task statuses that close a task (Setup's Task Status values marked Closed).
CLOSED_TASK_STATUSES = {"Completed"}
# Salesforce merges up to three records: the master and two more.
MERGE_MAX = 2
DEFAULTS: dict[str, dict[str, Any]] = {
    "Lead": {"Status": "Open - Not Contacted", "IsConverted": False, "MasterRecordId": None},
    "Contact": {"MasterRecordId": None},
    "Task": {"Status": "Not Started", "Priority": "Normal", "IsReminderSet": False},
}
DATE_FIELDS = {"CloseDate", "ActivityDate"}
DATETIME_FIELDS = {"StartDateTime", "EndDateTime", "ReminderDateTime", "ActivityDateTime"}
NUMBER_FIELDS = {"Amount", "NumberOfEmployees", "DurationInMinutes", "CallDurationInSeconds"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

SEED_USERS = (
    ("Integration", "User", "integration@journeys.example", True, "Standard"),
    ("Ada", "Lovelace", "ada@journeys.example", True, "Standard"),
    ("Grace", "Hopper", "grace@journeys.example", True, "Standard"),
    ("Alan", "Turing", "alan@journeys.example", True, "Standard"),
    ("Edsger", "Dijkstra", "edsger@journeys.example", False, "Standard"),
    ("Barbara", "Liskov", "barbara@journeys.example", True, "Standard"),
    ("Automated", "Process", "autoproc@00d5g00000sandbx", True, "AutomatedProcess"),
    ("Donald", "Knuth", "donald@journeys.example", True, "Standard"),
    ("Frances", "Allen", "frances@journeys.example", True, "Standard"),
    # A rep of the seed's roster (config/roster.toml's `chloe`): account ownership routes to her.
    ("Chloe", "Martin", "chloe.martin@example.com", True, "Standard"),
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _records(state: SandboxState, sobject: str) -> dict[str, Any]:
    """One object's records by id (the seeded users on first use)."""
    table = state.table(f"salesforce_{sobject.lower()}")
    if sobject == "User" and not table:
        for n, (first, last, email, active, kind) in enumerate(SEED_USERS, start=1):
            user_id = _case_safe(f"005{n:012d}")
            table[user_id] = {
                "Id": user_id,
                "Username": email,
                "Email": email,
                "FirstName": first,
                "LastName": last,
                "Name": f"{first} {last}",
                "IsActive": active,
                "UserType": kind,
                "CreatedDate": _now(),
            }
    return table


def _active_user(state: SandboxState, username: str) -> str | None:
    """The id of the active user who logs in as `username`."""
    wanted = username.lower()
    return next(
        (
            uid
            for uid, user in _records(state, "User").items()
            if str(user.get("Username", "")).lower() == wanted and user.get("IsActive")
        ),
        None,
    )


def _case_safe(id15: str) -> str:
    """The 18-character id: three checksum characters telling which of the 15 are uppercase."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if "A" <= ch <= "Z")
        suffix += alphabet[bits]
    return id15 + suffix


def _stamp(record: dict[str, Any], user_id: str, now: str) -> None:
    """Who changed the record last, and when."""
    record["LastModifiedDate"] = now
    record["LastModifiedById"] = user_id
    record["SystemModstamp"] = now


def _derive(sobject: str, record: dict[str, Any], now: str) -> None:
    """The fields Salesforce computes from others: a person's Name, a task's being closed."""
    if sobject in ("Lead", "Contact"):
        record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
    if sobject == "Task":
        closed = record.get("Status") in CLOSED_TASK_STATUSES
        if closed and not record.get("IsClosed"):
            record["CompletedDateTime"] = now
        elif not closed:
            record["CompletedDateTime"] = None  # reopened
        record["IsClosed"] = closed


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Soql:
    fields: list[str]
    sobject: str
    where: list[tuple[str, str, Any]] = field(default_factory=list)
    order_by: str | None = None
    descending: bool = False
    limit: int | None = None


_TOKEN = re.compile(r"\s*(?:(?P<string>')|(?P<op>!=|>=|<=|=|>|<|,)|(?P<word>[A-Za-z0-9_.:\-+]+))")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[pos:].strip()[:20]}'")
        if match.group("string"):
            value, pos = _string(text, match.end())
            out.append(("string", value))
            continue
        pos = match.end()
        out.append(("op", match.group("op")) if match.group("op") else ("word", match.group("word")))
    return out


def _string(text: str, pos: int) -> tuple[str, int]:
    chars: list[str] = []
    while pos < len(text):
        ch = text[pos]
        if ch == "'":
            return "".join(chars), pos + 1
        if ch == "\\":
            nxt = text[pos + 1 : pos + 2]
            if nxt.lower() in _ESCAPES or nxt in _ESCAPES:
                chars.append(_ESCAPES.get(nxt, _ESCAPES.get(nxt.lower(), "")))
                pos += 2
                continue
            if nxt in ("u", "U") and re.fullmatch(r"[0-9A-Fa-f]{4}", text[pos + 2 : pos + 6]):
                chars.append(chr(int(text[pos + 2 : pos + 6], 16)))
                pos += 6
                continue
            raise SoqlError("MALFORMED_QUERY", f"Invalid string literal: backslash before '{nxt}'")
        chars.append(ch)
        pos += 1
    raise SoqlError("MALFORMED_QUERY", "unterminated string literal")


def parse_soql(text: str) -> Soql:
    tokens = _tokens(text)
    pos = 0

    def peek(offset: int = 0) -> tuple[str, Any] | None:
        return tokens[pos + offset] if pos + offset < len(tokens) else None

    def keyword(word: str) -> bool:
        token = peek()
        return token is not None and token[0] == "word" and str(token[1]).upper() == word

    def take(kind: str) -> Any:
        nonlocal pos
        token = peek()
        if token is None or token[0] != kind:
            found = "end of query" if token is None else f"'{token[1]}'"
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {found}")
        pos += 1
        return token[1]

    def expect(word: str) -> None:
        if not keyword(word):
            token = peek()
            raise SoqlError(
                "MALFORMED_QUERY", f"expecting {word}, unexpected token: '{token[1] if token else ''}'"
            )
        take("word")

    expect("SELECT")
    fields = [take("word")]
    while peek() == ("op", ","):
        take("op")
        fields.append(take("word"))
    expect("FROM")
    query = Soql(fields=fields, sobject=take("word"))
    if keyword("WHERE"):
        take("word")
        while True:
            name = take("word")
            if keyword("LIKE"):
                take("word")
                op = "LIKE"
            else:
                op = take("op")
            if op not in ("=", "!=", "LIKE", ">", ">=", "<", "<="):
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{op}'")
            token = peek()
            if token is None:
                raise SoqlError("MALFORMED_QUERY", "unexpected token: end of query")
            pos += 1
            query.where.append((name, op, _literal(token)))
            if not keyword("AND"):
                break
            take("word")
    if keyword("ORDER"):
        take("word")
        expect("BY")
        query.order_by = take("word")
        if keyword("ASC") or keyword("DESC"):
            query.descending = str(take("word")).upper() == "DESC"
    if keyword("LIMIT"):
        take("word")
        raw = take("word")
        if not str(raw).isdigit():
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{raw}'")
        query.limit = int(raw)
    if peek() is not None:
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{peek()[1]}'")  # type: ignore[index]
    return query


def _literal(token: tuple[str, Any]) -> Any:
    kind, value = token
    if kind == "string":
        return value
    if kind == "word":
        lowered = str(value).lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered == "null":
            return None
        try:
            return float(value) if "." in str(value) else int(value)
        except ValueError:
            pass
        moment = _datetime(str(value))
        if moment is not None:
            return moment
    raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{value}'")


def _datetime(text: str) -> datetime | None:
    """A SOQL datetime literal or a stored one (`2026-12-04T19:00:00.000+0000`, `...Z`)."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _like(value: Any, pattern: Any) -> bool:
    """SOQL's LIKE: `%` any run, `_` one character, case-insensitive, on text only."""
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


def _condition(value: Any, op: str, wanted: Any) -> bool:
    if op == "LIKE":
        return _like(value, wanted)
    if op in ("=", "!="):
        return _matches(value, wanted) == (op == "=")
    if isinstance(wanted, datetime):
        value = _datetime(str(value)) if value else None
    if (
        value is None
        or isinstance(value, bool)
        or (
            type(value) is not type(wanted)
            and not (isinstance(value, int | float) and isinstance(wanted, int | float))
        )
    ):
        return False
    return bool({">": value > wanted, ">=": value >= wanted, "<": value < wanted, "<=": value <= wanted}[op])


def _matches(value: Any, wanted: Any) -> bool:
    if wanted is None:
        return value is None or value == ""
    if isinstance(wanted, str) and isinstance(value, str):
        return value.lower() == wanted.lower()  # SOQL text comparison ignores case
    return bool(value == wanted)


@register("salesforce")
class Salesforce(ProviderHandler):
    """One org: OAuth client credentials, sObject upserts and creates, a SOQL subset."""

    # ---- answers in Salesforce's shapes -------------------------------------------------------

    @classmethod
    def fault_response(cls, status: int, retry_after: float) -> Response:
        codes = {
            401: ("INVALID_SESSION_ID", "Session expired or invalid"),
            403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            404: ("NOT_FOUND", "The requested resource does not exist"),
            429: ("REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests (Concurrent API Requests) Limit exceeded."),
            503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable, please try again."),
        }
        default = (
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId: 1234-5678",
        )
        code, message = codes.get(status, default if status >= 500 else ("BAD_REQUEST", "Bad request"))
        headers = {"Retry-After": f"{retry_after:g}"} if status == 429 else {}
        return JSONResponse([{"message": message, "errorCode": code}], status_code=status, headers=headers)

    def _limit_headers(self) -> dict[str, str]:
        org = self.org
        return {"Sforce-Limit-Info": f"api-usage={org['api_usage']}/{org['api_limit']}"}

    def error(self, status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
        item: dict[str, Any] = {"message": message, "errorCode": code}
        if fields is not None:
            item["fields"] = fields
        return JSONResponse([item], status_code=status, headers=self._limit_headers())

    def ok(self, payload: Any, status: int = 200) -> Response:
        if status == 204:
            return Response(status_code=204, headers=self._limit_headers())
        return JSONResponse(payload, status_code=status, headers=self._limit_headers())

    def oauth_error(self, status: int, error: str, description: str) -> Response:
        return JSONResponse({"error": error, "error_description": description}, status_code=status)

    # ---- state ------------------------------------------------------------------------------------

    @property
    def org(self) -> dict[str, Any]:
        org = self.state.table("salesforce_org")
        org.setdefault("api_usage", 0)
        org.setdefault("api_limit", DEFAULT_API_LIMIT)
        return org

    def records(self, sobject: str) -> dict[str, Any]:
        return _records(self.state, sobject)

    def live(self, sobject: str) -> dict[str, Any]:
        """The records not in the recycle bin: what reads, upserts and `query` see."""
        return {i: r for i, r in self.records(sobject).items() if not r.get("IsDeleted")}

    @property
    def user_id(self) -> str:
        """The user the call runs as: its token's (the connected app's run-as user)."""
        auth = self.request.headers.get("authorization", "")
        token = self.state.table("salesforce_tokens").get(auth.removeprefix("Bearer "), {})
        return str(token.get("user_id") or _case_safe(INTEGRATION_USER))

    def _run_as(self, client_id: str) -> str | None:
        """A connected app runs as the integration user; `ui:<username>` is that user's own session
        in Salesforce's UI (a rep at work), for the sandbox's tests."""
        if not client_id.startswith(UI_CLIENT):
            return _case_safe(INTEGRATION_USER)
        return _active_user(self.state, client_id[len(UI_CLIENT) :])

    def _new_id(self, sobject: str) -> str:
        number = int(self.state.next_id(f"salesforce_{sobject.lower()}", start=1))
        return _case_safe(f"{OBJECTS[sobject]['prefix']}{number:012d}")

    def _sobject(self, name: str) -> str | None:
        return next((known for known in OBJECTS if known.lower() == name.lower()), None)

    def _field(self, sobject: str, name: str) -> str | None:
        """The field's canonical name, or None when the object has no such field."""
        for known in OBJECTS[sobject]["fields"]:
            if known.lower() == name.lower():
                return str(known)
        if name.lower().endswith("__c") and not OBJECTS[sobject].get("readonly"):
            return name
        return None

    # ---- routing ----------------------------------------------------------------------------------

    def answer(self) -> Response:
        # The raw path keeps an external id's escaped slashes apart from the path's own.
        raw = (self.request.scope.get("raw_path") or b"").decode().split("?", 1)[0] or self.request.url.path
        prefix = f"/{self.name}"
        path = raw[len(prefix) :] if raw.startswith(prefix) else raw
        method = self.request.method
        if path == "/services/oauth2/token":
            if method != "POST":
                return self.oauth_error(400, "invalid_request", "must use HTTP POST")
            return self.token()
        found = re.fullmatch(r"/services/data/(v\d+\.\d)(/.*)?", path)
        if found is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        auth = self.request.headers.get("authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        if not token or token not in self.state.table("salesforce_tokens"):
            return JSONResponse(
                [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401
            )
        with self.state.lock:
            org = self.org
            if org["api_usage"] >= org["api_limit"]:
                return self.error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            org["api_usage"] += 1
        version = found.group(1)
        parts = [urllib.parse.unquote(p) for p in (found.group(2) or "").strip("/").split("/") if p]
        if parts in (["query"], ["queryAll"]) and method == "GET":
            return self.query(version, all_rows=parts[0] == "queryAll")
        # A queryAll's next batch is at query/<locator> (its nextRecordsUrl) or queryAll/<locator>.
        if len(parts) == 2 and parts[0] in ("query", "queryAll") and method == "GET":
            return self.query_more(version, parts[1])
        if len(parts) >= 2 and parts[0] == "sobjects":
            sobject = self._sobject(parts[1])
            if sobject is None:
                return self.error(404, "NOT_FOUND", f"The requested resource does not exist: {parts[1]}")
            if len(parts) == 2 and method == "POST":
                return self.create(version, sobject)
            if len(parts) == 3 and method == "GET":
                return self.read(version, sobject, "Id", parts[2])
            if len(parts) == 3 and method == "PATCH":
                return self.update_by_id(sobject, parts[2])
            if len(parts) == 3 and method == "DELETE":
                return self.delete(sobject, parts[2])
            if len(parts) == 4 and method == "GET":
                return self.read(version, sobject, parts[2], parts[3])
            if len(parts) == 4 and method == "PATCH":
                return self.upsert(version, sobject, parts[2], parts[3])
        return self.error(404, "NOT_FOUND", "The requested resource does not exist")

    # ---- OAuth --------------------------------------------------------------------------------------

    def token(self) -> Response:
        content_type = self.request.headers.get("content-type", "")
        if not content_type.startswith("application/x-www-form-urlencoded") or not isinstance(self.body, str):
            return self.oauth_error(400, "unsupported_grant_type", "grant type not supported")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(self.body).items()}
        if "client_secret" in form:  # the call log is for people: no secrets in it
            self.call["body"] = urllib.parse.urlencode({**form, "client_secret": "***"})
        if form.get("grant_type") != "client_credentials":
            return self.oauth_error(400, "unsupported_grant_type", "grant type not supported")
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not client_id:
            return self.oauth_error(400, "invalid_client_id", "client identifier invalid")
        with self.state.lock:
            apps = self.state.table("salesforce_connected_apps")
            registered = apps.setdefault(client_id, {"client_secret": secret})
            if not secret or registered["client_secret"] != secret:
                return self.oauth_error(400, "invalid_client", "invalid client credentials")
            access_token = f"{ORG_ID}!{secrets.token_urlsafe(40)}"
            issued_at = str(int(datetime.now(UTC).timestamp() * 1000))
            run_as = self._run_as(client_id)
            if run_as is None:
                return self.oauth_error(
                    400, "invalid_client", f"no active user {client_id[len(UI_CLIENT) :]}"
                )
            self.state.table("salesforce_tokens")[access_token] = {
                "client_id": client_id,
                "issued_at": issued_at,
                "user_id": run_as,
            }
            self.state.save_records()
        instance = f"{str(self.request.base_url).rstrip('/')}/{self.name}"
        return JSONResponse(
            {
                "access_token": access_token,
                "signature": secrets.token_urlsafe(32),
                "scope": "api",
                "instance_url": instance,
                "id": f"{instance}/id/{ORG_ID}/{run_as}",
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )

    # ---- writes -------------------------------------------------------------------------------------

    def _validate(
        self, sobject: str, body: Any, existing: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, Response | None]:
        """The body's fields, canonical and checked, or the error Salesforce would answer."""
        if not isinstance(body, dict):
            return None, self.error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        if OBJECTS[sobject].get("readonly"):
            return None, self.error(
                400, "INVALID_TYPE_FOR_OPERATION", f"entity type {sobject} does not support this"
            )
        clean: dict[str, Any] = {}
        for name, value in body.items():
            canonical = self._field(sobject, name)
            if canonical is None:
                return None, self.error(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}"
                )
            if (
                canonical in READONLY_FIELDS
                or (canonical == "Name" and sobject in ("Lead", "Contact"))
                or (existing is not None and (sobject, canonical) in CREATE_ONLY_FIELDS)
            ):
                return None, self.error(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {canonical}. Please check the security settings "
                    "of this field and verify that it is read/write for your profile or permission set.",
                    [canonical],
                )
            problem = self._check_value(sobject, canonical, value)
            if problem is not None:
                return None, problem
            clean[canonical] = value
        if existing is None:
            merged = {**DEFAULTS.get(sobject, {}), **clean}
            missing = [f for f in OBJECTS[sobject]["required"] if merged.get(f) in (None, "")]
            if sobject == "Event" and not (merged.get("EndDateTime") or merged.get("DurationInMinutes")):
                missing.append("DurationInMinutes")
            if missing:
                return None, self.error(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
        return clean, None

    def _check_value(self, sobject: str, name: str, value: Any) -> Response | None:
        if value is None:
            if name in OBJECTS[sobject]["required"]:
                return self.error(
                    400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", [name]
                )
            return None
        allowed = PICKLISTS.get((sobject, name))
        if allowed is not None and value not in allowed:
            label = f"{sobject} {name}"
            return self.error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{label}: bad value for restricted picklist field: {value}",
                [name],
            )
        if name == "Email" and not EMAIL.match(str(value)):
            return self.error(400, "INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {value}", [name])
        if name in DATE_FIELDS:
            try:
                date.fromisoformat(str(value))
            except ValueError:
                return self.error(
                    400,
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of date from VALUE_STRING value {value}",
                )
        if name in DATETIME_FIELDS:
            try:
                datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                return self.error(
                    400,
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of datetime from VALUE_STRING value {value}",
                )
        if name in NUMBER_FIELDS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return self.error(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of double from VALUE_STRING value {value}",
            )
        if name == "OwnerId":
            user = self.records("User").get(str(value))
            if user is None:
                return self.error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])
            if not user["IsActive"]:
                return self.error(
                    400, "INACTIVE_OWNER_OR_USER", "operation performed with inactive user", [name]
                )
        if name == "WhoId":
            return self._reference_problem(name, value, ("Lead", "Contact"))
        if name == "AccountId":
            return self._reference_problem(name, value, ("Account",))
        return None

    def _reference_problem(self, name: str, value: Any, sobjects: tuple[str, ...]) -> Response | None:
        found = next((t[str(value)] for t in map(self.records, sobjects) if str(value) in t), None)
        if found is None:
            return self.error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])
        if found.get("IsDeleted"):
            return self.error(400, "ENTITY_IS_DELETED", "entity is deleted", [name])
        return None

    def _insert(self, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
        record_id = self._new_id(sobject)
        now = _now()
        record = {
            **DEFAULTS.get(sobject, {}),
            "OwnerId": _case_safe(INTEGRATION_USER),
            **fields,
            "Id": record_id,
            "CreatedDate": now,
            "CreatedById": self.user_id,
            "LastModifiedDate": now,
            "LastModifiedById": self.user_id,
            "SystemModstamp": now,
            "IsDeleted": False,
        }
        _derive(sobject, record, now)
        self.records(sobject)[record_id] = record
        return record

    def _track(self, sobject: str, record_id: str, field: str, old: Any, new: Any, at: str) -> None:
        history, parent, fields = TRACKED.get(sobject, ("", "", ()))
        if field not in fields:
            return
        if field == "OwnerId":
            # A lookup's change is two rows of the relationship's name: the ids (only the API
            # shows them) and the names the UI shows.
            users = self.records("User")

            def name(user_id: Any) -> Any:
                return users.get(str(user_id), {}).get("Name") if user_id else None

            rows = [("Owner", "EntityId", old, new), ("Owner", "Text", name(old), name(new))]
        else:
            rows = [(field, HISTORY_DATATYPES.get(field, "Text"), old, new)]
        for label, datatype, old_value, new_value in rows:
            # One id sequence for every history object: a row's id names one change, whichever object.
            number = int(self.state.next_id("salesforce_history", start=1))
            row_id = _case_safe(f"017{number:012d}")
            self.records(history)[row_id] = {
                "Id": row_id,
                parent: record_id,
                "Field": label,
                "DataType": datatype,
                "OldValue": old_value,
                "NewValue": new_value,
                "CreatedById": self.user_id,
                "CreatedDate": at,
                "IsDeleted": False,
            }

    def _apply(self, sobject: str, record: dict[str, Any], fields: dict[str, Any]) -> bool:
        changed = any(record.get(k) != v for k, v in fields.items())
        if changed:
            now = _now()
            for name, value in fields.items():
                if record.get(name) != value:
                    self._track(sobject, record["Id"], name, record.get(name), value, now)
            record.update(fields)
            _stamp(record, self.user_id, now)
            _derive(sobject, record, now)
        return changed

    def create(self, version: str, sobject: str) -> Response:
        with self.state.lock:
            fields, problem = self._validate(sobject, self.body, None)
            if problem is not None or fields is None:
                return problem or self.error(400, "JSON_PARSER_ERROR", "bad body")
            record = self._insert(sobject, fields)
            self.state.save_records()
        self.effect("created", sobject, record["Id"])
        return self.ok({"id": record["Id"], "success": True, "errors": []}, 201)

    def update_by_id(self, sobject: str, record_id: str) -> Response:
        with self.state.lock:
            record = self.records(sobject).get(record_id)
            if record is None:
                return self.error(
                    404,
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {record_id}",
                )
            if record.get("IsDeleted"):
                return self.error(404, "ENTITY_IS_DELETED", "entity is deleted", [])
            if sobject == "Lead" and record.get("IsConverted"):
                return self.error(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            fields, problem = self._validate(sobject, self.body, record)
            if problem is not None or fields is None:
                return problem or self.error(400, "JSON_PARSER_ERROR", "bad body")
            changed = self._apply(sobject, record, fields)
            self.state.save_records()
        self.effect("updated" if changed else "unchanged", sobject, record_id)
        return self.ok(None, 204)

    def delete(self, sobject: str, record_id: str) -> Response:
        """To the recycle bin: the record stays for queryAll, `IsDeleted` and who deleted it set."""
        if OBJECTS[sobject].get("readonly"):
            return self.error(
                400, "INVALID_TYPE_FOR_OPERATION", f"entity type {sobject} does not support this"
            )
        with self.state.lock:
            record = self.records(sobject).get(record_id)
            if record is None:
                return self.error(404, "NOT_FOUND", "The requested resource does not exist")
            if record.get("IsDeleted"):
                return self.error(404, "ENTITY_IS_DELETED", "entity is deleted", [])
            _stamp(record, self.user_id, _now())
            record["IsDeleted"] = True
            self.state.save_records()
        self.effect("deleted", sobject, record_id)
        return self.ok(None, 204)

    def upsert(self, version: str, sobject: str, key_field: str, key: str) -> Response:
        canonical = self._field(sobject, key_field)
        if canonical is None or not canonical.lower().endswith("__c"):
            return self.error(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {key_field}",
            )
        if isinstance(self.body, dict) and any(k.lower() in ("id", canonical.lower()) for k in self.body):
            return self.error(
                400,
                "INVALID_FIELD",
                f"Neither Id nor the external ID field {canonical} may be specified in the request body",
            )
        with self.state.lock:
            matches = [r for r in self.live(sobject).values() if _matches(r.get(canonical), key)]
            if len(matches) > 1:
                urls = [f"/services/data/{version}/sobjects/{sobject}/{r['Id']}" for r in matches]
                return self.ok(urls, 300)
            existing = matches[0] if matches else None
            if sobject == "Lead" and existing is not None and existing.get("IsConverted"):
                return self.error(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            fields, problem = self._validate(sobject, self.body, existing)
            if problem is not None or fields is None:
                return problem or self.error(400, "JSON_PARSER_ERROR", "bad body")
            if existing is None:
                record = self._insert(sobject, {**fields, canonical: key})
                self.state.save_records()
                self.effect("created", sobject, record["Id"])
                return self.ok({"id": record["Id"], "success": True, "errors": [], "created": True}, 201)
            changed = self._apply(sobject, existing, fields)
            self.state.save_records()
        self.effect("updated" if changed else "unchanged", sobject, existing["Id"])
        return self.ok({"id": existing["Id"], "success": True, "errors": [], "created": False}, 200)

    # ---- reads ----------------------------------------------------------------------------------------

    def _shape(self, version: str, sobject: str, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        shaped: dict[str, Any] = {
            "attributes": {
                "type": sobject,
                "url": f"/services/data/{version}/sobjects/{sobject}/{record['Id']}",
            }
        }
        for name in fields:
            shaped[name] = record.get(name)
        return shaped

    def read(self, version: str, sobject: str, key_field: str, key: str) -> Response:
        canonical = self._field(sobject, key_field)
        if canonical is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        matches = [r for r in self.live(sobject).values() if _matches(r.get(canonical), key)]
        if not matches:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(matches) > 1:
            return self.ok([f"/services/data/{version}/sobjects/{sobject}/{r['Id']}" for r in matches], 300)
        record = matches[0]
        wanted = self.request.query_params.get("fields")
        names = [self._field(sobject, f.strip()) for f in wanted.split(",")] if wanted else list(record)
        return self.ok(self._shape(version, sobject, record, [n for n in names if n]))

    def _batch_size(self) -> int:
        options = self.request.headers.get("sforce-query-options", "")
        found = re.search(r"batchSize=(\d+)", options)
        return max(1, int(found.group(1))) if found else QUERY_BATCH

    def query(self, version: str, all_rows: bool = False) -> Response:
        """SOQL's subset; `all_rows` (queryAll) keeps the recycle bin's records in."""
        text = self.request.query_params.get("q")
        if not text:
            return self.error(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            soql = parse_soql(text)
        except SoqlError as exc:
            return self.error(400, exc.code, exc.message)
        sobject = self._sobject(soql.sobject)
        if sobject is None:
            return self.error(
                400,
                "INVALID_TYPE",
                f"sObject type '{soql.sobject}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name.",
            )
        names: list[str] = []
        for name in [*soql.fields, *(w[0] for w in soql.where), *([soql.order_by] if soql.order_by else [])]:
            canonical = self._field(sobject, name)
            if canonical is None:
                return self.error(400, "INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'.")
            names.append(canonical)
        fields = names[: len(soql.fields)]
        conditions = [(names[len(soql.fields) + i], op, value) for i, (_, op, value) in enumerate(soql.where)]
        with self.state.lock:
            rows = [
                r
                for r in self.records(sobject).values()
                if (all_rows or not r.get("IsDeleted"))
                and all(_condition(r.get(n), op, v) for n, op, v in conditions)
            ]
        if soql.order_by:
            key = names[-1]
            rows.sort(key=lambda r: (r.get(key) is None, str(r.get(key) or "")), reverse=soql.descending)
        if soql.limit is not None:
            rows = rows[: soql.limit]
        ids = [r["Id"] for r in rows]
        return self._page(version, sobject, fields, ids, 0, None)

    def _page(
        self, version: str, sobject: str, fields: list[str], ids: list[str], offset: int, locator: str | None
    ) -> Response:
        size = self._batch_size()
        chunk = ids[offset : offset + size]
        table = self.records(sobject)
        records = [self._shape(version, sobject, table[i], fields) for i in chunk if i in table]
        payload: dict[str, Any] = {
            "totalSize": len(ids),
            "done": offset + size >= len(ids),
            "records": records,
        }
        if not payload["done"]:
            with self.state.lock:
                if locator is None:
                    locator = f"01g5g{int(self.state.next_id('salesforce_query_locator', start=1)):010d}"
                    cursors = self.state.table("salesforce_query_locators")
                    cursors[locator] = {"sobject": sobject, "fields": fields, "ids": ids}
                    self.state.save_records()
            payload["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{offset + size}"
        return self.ok(payload)

    def query_more(self, version: str, cursor: str) -> Response:
        locator, _, offset = cursor.rpartition("-")
        saved = self.state.table("salesforce_query_locators").get(locator)
        if saved is None or not offset.isdigit():
            return self.error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(version, saved["sobject"], saved["fields"], saved["ids"], int(offset), locator)


# ---- a user merging records in Salesforce's UI (the sandbox's `POST /_salesforce/merge`) ------------

MERGEABLE = ("Lead", "Contact")


class MergeError(ValueError):
    """A merge Salesforce would refuse; `field` names the request's field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def merge_records(state: SandboxState, request: Any) -> dict[str, Any]:
    """`username` merges `merged_ids` (one or two) into `master_id`, leads or contacts, as in the
    UI: the merged records go to the recycle bin with `MasterRecordId` (queryAll finds them), the
    master stays; both were last modified by that user, and the merged records' activities are
    the master's now. Nothing changes when the request is refused (MergeError)."""
    if not isinstance(request, dict):
        raise MergeError("body", "a JSON object with sobject, master_id, merged_ids and username")
    named = request.get("sobject")
    sobject = next((o for o in MERGEABLE if isinstance(named, str) and o.lower() == named.lower()), None)
    if sobject is None:
        raise MergeError("sobject", f"{named!r} is not one of {', '.join(MERGEABLE)}")
    username = request.get("username")
    master_id = request.get("master_id")
    merged_ids = request.get("merged_ids")
    with state.lock:
        user_id = _active_user(state, username) if isinstance(username, str) else None
        if user_id is None:
            raise MergeError("username", f"no active Salesforce user {username!r}")
        table = _records(state, sobject)
        master = table.get(master_id) if isinstance(master_id, str) else None
        if master is None or master.get("IsDeleted"):
            raise MergeError("master_id", f"no {sobject} {master_id!r} outside the recycle bin")
        if (
            not isinstance(merged_ids, list)
            or not merged_ids
            or not all(isinstance(i, str) for i in merged_ids)
        ):
            raise MergeError("merged_ids", f"a list of 1 to {MERGE_MAX} {sobject} ids")
        if len(merged_ids) > MERGE_MAX:
            raise MergeError(
                "merged_ids",
                f"{len(merged_ids)} ids: Salesforce merges up to three records, the master and "
                f"{MERGE_MAX} more",
            )
        if len(set(merged_ids)) != len(merged_ids) or master_id in merged_ids:
            raise MergeError("merged_ids", "each id once, and not the master's")
        for merged_id in merged_ids:
            found = table.get(merged_id)
            if found is None or found.get("IsDeleted"):
                raise MergeError("merged_ids", f"no {sobject} {merged_id!r} outside the recycle bin")
        now = _now()
        for merged_id in merged_ids:
            merged = table[merged_id]
            _stamp(merged, user_id, now)
            merged["IsDeleted"] = True
            merged["MasterRecordId"] = master_id
        _stamp(master, user_id, now)
        for activity in ("Task", "Event"):
            for record in _records(state, activity).values():
                if record.get("WhoId") in merged_ids:
                    record["WhoId"] = master_id
                    record["SystemModstamp"] = now
        state.save_records()
    return {"master_id": master_id, "merged_ids": list(merged_ids)}
