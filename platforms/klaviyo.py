"""Klaviyo's revisioned JSON:API (`https://a.klaviyo.com/api/...`), as the `EmailPort`.

Auth: a private key as `Authorization: Klaviyo-API-Key pk_...`, and every request names the API
revision it was written against in a `revision` header (its default and sunset are in
`domain/api_versions.py`); bodies and answers are `application/vnd.api+json`.

Endpoints used:
- `POST /api/profile-import`: create or update a profile, matched by email (201 created,
  200 updated). Score, lifecycle stage, lead source, owner and the deployment's own fields (a score
  band, say) are written as custom `properties`: Klaviyo segments are defined on them, so a score
  change pushed here is what moves a lead between segments.
- `POST /api/profile-subscription-bulk-create-jobs`: subscribe with marketing consent into a list
  (202, a job). Klaviyo lifts UNSUBSCRIBE, spam-report and USER_SUPPRESSED suppressions of the
  profiles it subscribes (not a hard bounce): subscribing is an explicit consent, so a journey must
  check for a suppression before it subscribes.
- `GET /api/lists/{id}/profiles?filter=equals(email,"...")`: is this email a member, under which
  profile id, with which consent (`additional-fields[profile]=subscriptions`).
- `DELETE /api/lists/{id}/relationships/profiles`: removes list membership (204) without touching
  consent: the profile stays subscribed to marketing, it only leaves the list.
- `GET /api/profiles?filter=equals(email,"...")`: the profile id and suppressions for an email.
- `POST /api/events`: a "Journeys Sequence Email" event (the metric name is configurable) on the
  profile, with `template_id`, `subject`, `sequence_id`, `step_id` and the template variables as
  event properties. Klaviyo sends nothing by itself here: a flow whose trigger is that metric (with
  a trigger filter or split on `template_id`) sends the email, and its template reads the
  variables as `{{ event.<name> }}`. The flow's messages only reach profiles that may receive
  marketing unless they are marked transactional in Klaviyo.
- `POST /api/profile-suppression-bulk-create-jobs`: suppresses an email (202, a job).
- `GET /api/events?filter=greater-or-equal(datetime,...)&sort=datetime&include=metric,profile`:
  the engagement poll (`events_page`): Klaviyo's own email metrics (Received, Opened, Clicked,
  Bounced Email, Marked Email as Spam, Unsubscribed) with each event's profile email, read in
  time order and mapped in `domain/engagement.py`.

Lists read through cursor pagination: each page's `links.next` is followed until it is absent (or null).

Errors come back as `{"errors": [{"id", "status", "code", "title", "detail", "source":
{"pointer" | "parameter"}}]}`: the message carried names the code, the detail and the pointer.
401/403/400/404/409 are permanent; 5xx (and 408) transient; 429 is rate limited, with the delay
from `Retry-After` (integer seconds), else from the detail ("Expected available in N seconds"),
never under a second. Successful answers carry `RateLimit-Limit/Remaining/Reset` for the steady
window; 429s carry only `Retry-After`.

Rate limits are per account and per endpoint, fixed windows of one second (burst) and one minute
(steady): profile-import 75/s and 700/m; GET profiles and GET list profiles 75/s and 750/m;
subscribe and suppress jobs 75/s and 750/m; DELETE list relationships 10/s and 150/m; create
event 350/s and 3500/m. Throttle keys follow those families: `klaviyo:profiles`, `klaviyo:lists`,
`klaviyo:list-removals`, `klaviyo:subscriptions`, `klaviyo:events`.

How each write keeps the idempotency contract (the `Idempotency-Key` header is also sent on every
write, only so both sides' logs tie a call to its journey step: Klaviyo does not honour it):
- `upsert_profile`: natural key, the email. A replay finds the profile (200): created=False.
- `add_to_list`: read before the write. A member whose email consent is SUBSCRIBED is left alone
  (created=False); otherwise the subscription job runs, and subscribing twice is harmless. The id
  is `{list_id}:{profile_id}`; a profile missing altogether is first created by `profile-import`
  so that the id is known.
- `remove_from_list`: read before the write. Not a member: nothing is sent, created=False.
- `send_email`: the platform's own key. `unique_id` is the idempotency key, and Klaviyo records
  one event per profile, metric and unique_id however often it is posted, so only one email is
  triggered. The id is the unique_id. Honest limit: Klaviyo answers 202 with no body either way,
  so a replay cannot be told from a first send and `created` is always True here.
- `suppress`: read before the write. An email already carrying a global suppression is left alone
  (created=False). Klaviyo records every API suppression as USER_SUPPRESSED: our reason is not
  kept by Klaviyo.
Jobs (subscribe, suppress) run asynchronously at Klaviyo: a replay within seconds of the first
call may not see its effect yet and post the job again, which changes nothing.

Emails are trimmed and lowercased before they are written or looked up. `import_profile` and
`subscribe_to_list` are the earlier email-and-attributes calls, kept for their callers; they go
through the same throttle, error classification and observation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import phonenumbers
from pydantic import BaseModel

from domain.ratelimits import Throttle
from platforms.base import CallObserver, PlatformClient
from platforms.ports import EmailMessage, Person, SuppressionReason, WriteResult

PROVIDER = "klaviyo"
JSON_API = "application/vnd.api+json"
DEFAULT_BASE_URL = "https://a.klaviyo.com"
EMAIL_METRIC = "Journeys Sequence Email"
SUBSCRIPTION_SOURCE = "journeys"

# Person fields written as custom profile properties (segments are defined on these names).
PROPERTY_NAMES = {
    "lead_id": "journeys_lead_id",
    "lead_score": "lead_score",
    "lifecycle_stage": "lifecycle_stage",
    "lead_source": "lead_source",
    "owner_id": "owner_id",
}

# Which shared-throttle bucket each kind of call draws from (Klaviyo limits each endpoint).
THROTTLE_KEYS = {
    "profiles.import": "klaviyo:profiles",
    "profiles.find": "klaviyo:profiles",
    "lists.members": "klaviyo:lists",
    "lists.remove": "klaviyo:list-removals",
    "subscriptions.subscribe": "klaviyo:subscriptions",
    "subscriptions.suppress": "klaviyo:subscriptions",
    "events.create": "klaviyo:events",
    "events.read": "klaviyo:events-read",
}
# An events page: Klaviyo's largest page for GET /api/events.
EVENTS_PAGE_SIZE = 200

_AVAILABLE_IN = re.compile(r"available in (\d+(?:\.\d+)?) second", re.IGNORECASE)


class KlaviyoProfile(BaseModel):
    id: str
    created: bool


class KlaviyoMember(BaseModel):
    """A list member as `GET /api/lists/{id}/profiles` shows it."""

    id: str
    email: str | None = None
    consent: str | None = None
    suppressed: bool = False


class KlaviyoClient(PlatformClient):
    provider = PROVIDER

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        revision: str,
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
        email_metric: str = EMAIL_METRIC,
    ) -> None:
        super().__init__(http, base_url=base_url, throttle=throttle, observer=observer)
        self._api_key = api_key
        self._revision = revision
        self._email_metric = email_metric

    # -- PlatformClient hooks ---------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Klaviyo-API-Key {self._api_key}",
            "revision": self._revision,
            "Accept": JSON_API,
            "Content-Type": JSON_API,
        }

    def _throttle_key(self, operation: str) -> str:
        return THROTTLE_KEYS.get(operation, PROVIDER)

    def _error_message(self, response: httpx.Response) -> str:
        return error_message(response)

    def _retry_after(self, response: httpx.Response) -> float | None:
        told = super()._retry_after(response)
        if told is None:
            match = _AVAILABLE_IN.search(str(_first_error(response).get("detail") or ""))
            told = float(match.group(1)) if match else None
        # Klaviyo's windows are whole seconds; "0 seconds" still means the next window.
        return None if told is None else max(told, 1.0)

    # -- EmailPort ------------------------------------------------------------------------

    async def upsert_profile(self, person: Person, *, idempotency_key: str) -> WriteResult:
        """Creates or updates the profile with this email; fields left None are not written."""
        attributes = profile_attributes(person)
        response = await self._import(attributes, idempotency_key)
        return WriteResult(
            provider=PROVIDER,
            object_type="profile",
            id=str(response.json()["data"]["id"]),
            created=response.status_code == 201,
        )

    async def add_to_list(self, email: str, list_id: str, *, idempotency_key: str) -> WriteResult:
        """Subscribes the email to email marketing, with consent, into the list."""
        email = _normal(email)
        member = await self._list_member(list_id, email)
        if member is not None and member.consent == "SUBSCRIBED" and not member.suppressed:
            return _membership(list_id, member.id, created=False)
        profile_id = member.id if member is not None else await self._ensure_profile(email, idempotency_key)
        await self._subscribe(
            email, list_id, source=SUBSCRIPTION_SOURCE, idempotency_key=idempotency_key, profile_id=profile_id
        )
        return _membership(list_id, profile_id, created=True)

    async def remove_from_list(self, email: str, list_id: str, *, idempotency_key: str) -> WriteResult:
        """Takes the profile out of the list; its marketing consent is left as it is."""
        email = _normal(email)
        member = await self._list_member(list_id, email)
        if member is None:
            profile = await self._find_profile(email)
            return _membership(list_id, profile["id"] if profile else None, created=False)
        await self._call(
            "lists.remove",
            "DELETE",
            f"/api/lists/{_segment(list_id)}/relationships/profiles",
            json={"data": [{"type": "profile", "id": member.id}]},
            headers=_trace(idempotency_key),
        )
        return _membership(list_id, member.id, created=True)

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> WriteResult:
        """Records the sequence-email event that the Klaviyo flow on `email_metric` sends."""
        properties: dict[str, Any] = {**message.variables, "template_id": message.template_id}
        for name in ("subject", "sequence_id", "step_id"):
            value = getattr(message, name)
            if value is not None:
                properties[name] = value
        body = {
            "data": {
                "type": "event",
                "attributes": {
                    "properties": properties,
                    "metric": {"data": {"type": "metric", "attributes": {"name": self._email_metric}}},
                    "profile": {"data": {"type": "profile", "attributes": {"email": _normal(message.to)}}},
                    "unique_id": idempotency_key,
                },
            }
        }
        await self._call("events.create", "POST", "/api/events", json=body, headers=_trace(idempotency_key))
        return WriteResult(provider=PROVIDER, object_type="event", id=idempotency_key, created=True)

    async def suppress(
        self,
        email: str,
        reason: SuppressionReason,
        *,
        idempotency_key: str,
    ) -> WriteResult:
        """Suppresses the email from all email marketing (Klaviyo keeps USER_SUPPRESSED as reason)."""
        email = _normal(email)
        profile = await self._find_profile(email)
        if profile is not None and _suppressions(profile):
            return WriteResult(
                provider=PROVIDER, object_type="profile-suppression", id=str(profile["id"]), created=False
            )
        profile_id = (
            str(profile["id"]) if profile is not None else await self._ensure_profile(email, idempotency_key)
        )
        body = {
            "data": {
                "type": "profile-suppression-bulk-create-job",
                "attributes": {"profiles": {"data": [{"type": "profile", "attributes": {"email": email}}]}},
            }
        }
        await self._call(
            "subscriptions.suppress",
            "POST",
            "/api/profile-suppression-bulk-create-jobs",
            json=body,
            headers=_trace(idempotency_key),
        )
        return WriteResult(provider=PROVIDER, object_type="profile-suppression", id=profile_id, created=True)

    # -- reads ----------------------------------------------------------------------------

    async def events_page(
        self, *, since: datetime | None = None, next_url: str | None = None
    ) -> dict[str, Any]:
        """One page of events in time order from `since` (inclusive), with their metric and
        profile included: the engagement poll's read. `next_url` continues a read (the page's
        `links.next`, which carries the filter and the cursor)."""
        if next_url is not None:
            response = await self._call("events.read", "GET", next_url)
        else:
            if since is None:
                raise ValueError("an events read starts at a time or continues from a next link")
            params = {
                "filter": f"greater-or-equal(datetime,{since.astimezone(UTC).isoformat()})",
                "sort": "datetime",
                "include": "metric,profile",
                "fields[metric]": "name",
                "fields[profile]": "email",
                "page[size]": str(EVENTS_PAGE_SIZE),
            }
            response = await self._call("events.read", "GET", "/api/events", params=params)
        page: dict[str, Any] = response.json()
        return page

    async def list_members(self, list_id: str, *, page_size: int = 100) -> list[KlaviyoMember]:
        """Every member of the list, all pages read."""
        items = await self._read_all(
            "lists.members",
            f"/api/lists/{_segment(list_id)}/profiles",
            {"additional-fields[profile]": "subscriptions", "page[size]": str(page_size)},
        )
        return [_member(item) for item in items]

    async def find_profile(self, email: str) -> KlaviyoMember | None:
        profile = await self._find_profile(_normal(email))
        return _member(profile) if profile is not None else None

    # -- the older calls the welcome activity uses ---------------------------------------

    async def import_profile(
        self,
        email: str,
        attributes: dict[str, Any],
        properties: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> KlaviyoProfile:
        response = await self._import(
            {**attributes, "email": email, "properties": properties}, idempotency_key
        )
        return KlaviyoProfile(id=str(response.json()["data"]["id"]), created=response.status_code == 201)

    async def subscribe_to_list(
        self, email: str, list_id: str, *, source: str, idempotency_key: str | None = None
    ) -> None:
        await self._subscribe(email, list_id, source=source, idempotency_key=idempotency_key)

    # -- helpers --------------------------------------------------------------------------

    async def _import(self, attributes: dict[str, Any], idempotency_key: str | None) -> httpx.Response:
        body = {"data": {"type": "profile", "attributes": attributes}}
        return await self._call(
            "profiles.import", "POST", "/api/profile-import", json=body, headers=_trace(idempotency_key)
        )

    async def _subscribe(
        self,
        email: str,
        list_id: str,
        *,
        source: str,
        idempotency_key: str | None,
        profile_id: str | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "type": "profile",
            "attributes": {
                "email": email,
                "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},
            },
        }
        if profile_id:
            entry["id"] = profile_id
        body = {
            "data": {
                "type": "profile-subscription-bulk-create-job",
                "attributes": {"custom_source": source, "profiles": {"data": [entry]}},
                "relationships": {"list": {"data": {"type": "list", "id": list_id}}},
            }
        }
        await self._call(
            "subscriptions.subscribe",
            "POST",
            "/api/profile-subscription-bulk-create-jobs",
            json=body,
            headers=_trace(idempotency_key),
        )

    async def _find_profile(self, email: str) -> dict[str, Any] | None:
        items = await self._read_all(
            "profiles.find",
            "/api/profiles",
            {"filter": _equals_email(email), "additional-fields[profile]": "subscriptions"},
        )
        return items[0] if items else None

    async def _ensure_profile(self, email: str, idempotency_key: str) -> str:
        """The profile id for the email, creating a bare profile (upsert by email) when none exists."""
        profile = await self._find_profile(email)
        if profile is not None:
            return str(profile["id"])
        response = await self._import({"email": email}, idempotency_key)
        return str(response.json()["data"]["id"])

    async def _list_member(self, list_id: str, email: str) -> KlaviyoMember | None:
        items = await self._read_all(
            "lists.members",
            f"/api/lists/{_segment(list_id)}/profiles",
            {"filter": _equals_email(email), "additional-fields[profile]": "subscriptions"},
        )
        return _member(items[0]) if items else None

    async def _read_all(self, operation: str, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every item of a collection, following `links.next` until it is absent or null."""
        items: list[dict[str, Any]] = []
        url: str = path
        query: dict[str, str] | None = dict(params)
        seen: set[str] = set()
        while True:
            response = await self._call(operation, "GET", url, params=query)
            payload = response.json()
            items.extend(payload.get("data") or [])
            next_url = (payload.get("links") or {}).get("next")
            if not next_url or next_url in seen:
                return items
            seen.add(next_url)
            # The next link is absolute and carries the filter and cursor already.
            url, query = next_url, None


def profile_attributes(person: Person) -> dict[str, Any]:
    """A Person as profile-import attributes: standard fields, then custom properties."""
    attributes: dict[str, Any] = {"email": _normal(person.email)}
    standard = {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "organization": person.company,
        "title": person.job_title,
    }
    attributes.update({k: v for k, v in standard.items() if v is not None})
    properties: dict[str, Any] = {}
    for field, name in PROPERTY_NAMES.items():
        value = getattr(person, field)
        if value is not None:
            properties[name] = value
    if person.country:
        attributes["location"] = {"country": person.country}
    if person.phone:
        e164 = e164_phone(person.phone, person.country)
        if e164 is not None:
            attributes["phone_number"] = e164
        else:
            # Klaviyo refuses the whole profile over a phone number it cannot read: keep it as a property.
            properties["phone"] = person.phone
    properties.update(person.properties)
    if properties:
        attributes["properties"] = properties
    return attributes


def e164_phone(phone: str, country: str | None) -> str | None:
    """The number in E.164, as Klaviyo requires, or None when it is not a valid number."""
    region = country.upper() if country and len(country) == 2 else None
    try:
        parsed = phonenumbers.parse(phone.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def error_message(response: httpx.Response) -> str:
    """`{status} {code}: {detail} at {pointer}` from Klaviyo's JSON:API error document."""
    first = _first_error(response)
    if not first:
        return f"{response.status_code} {response.text[:300]}"
    source = first.get("source") or {}
    where = source.get("pointer") or source.get("parameter")
    detail = first.get("detail") or first.get("title") or ""
    message = f"{response.status_code} {first.get('code', '')}: {detail}"
    return message + (f" at {where}" if where else "")


def _first_error(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return {}


def _member(item: dict[str, Any]) -> KlaviyoMember:
    attributes = item.get("attributes") or {}
    marketing = ((attributes.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
    return KlaviyoMember(
        id=str(item["id"]),
        email=attributes.get("email"),
        consent=marketing.get("consent"),
        suppressed=bool(marketing.get("suppression")),
    )


def _suppressions(profile: dict[str, Any]) -> list[Any]:
    attributes = profile.get("attributes") or {}
    marketing = ((attributes.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
    return list(marketing.get("suppression") or [])


def _membership(list_id: str, profile_id: str | None, *, created: bool) -> WriteResult:
    return WriteResult(
        provider=PROVIDER,
        object_type="list-membership",
        id=f"{list_id}:{profile_id or 'none'}",
        created=created,
    )


def _equals_email(email: str) -> str:
    escaped = email.replace("\\", "\\\\").replace('"', '\\"')
    return f'equals(email,"{escaped}")'


def _segment(value: str) -> str:
    return quote(value, safe="")


def _normal(email: str) -> str:
    return email.strip().lower()


def _trace(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key} if idempotency_key else {}
