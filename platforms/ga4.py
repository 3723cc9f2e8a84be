"""Google Analytics 4 Measurement Protocol: server-side events into a GA4 web data stream.

Auth: nothing in headers. The stream's measurement id (`G-...`) and a Measurement Protocol API
secret (Admin > Data streams > the stream > Measurement Protocol API secrets) ride in the query
string of every request. Real base URL: `https://www.google-analytics.com` (EU-only collection:
`https://region1.google-analytics.com`).

Endpoints:
- `POST /mp/collect?measurement_id=G-...&api_secret=...` with JSON `{client_id, user_id?,
  timestamp_micros?, non_personalized_ads?, events: [{name, params}]}`. Google answers 2xx (204)
  whenever the request arrived: also for a malformed payload and for a wrong api_secret, and then
  drops the events without saying so.
- `POST /debug/mp/collect` (same query and body): the validation server. It answers 200
  `{"validationMessages": [{fieldPath, description, validationCode}]}` (empty when valid); events
  sent there never reach reports, and it does not check the api_secret. `validate()` calls it.

Because collect never refuses anything, this client enforces the documented limits itself and
raises `PermanentPlatformError` before sending: at most 25 events per request and 25 parameters
per event; event and parameter names of at most 40 characters, starting with a letter, made of
letters, digits and underscores, neither a reserved event name nor a reserved prefix (`google_`,
`ga_`, `firebase_`); parameter values of at most 100 characters (page_location 1000,
page_referrer 420, page_title 300); string, number or (for `items`) a list of objects; an event
time at most 72 hours back. Google's policy forbids personal data, so an `@` in `user_id` or
`client_id`, or an email address in any parameter value, is refused too. A wrong api_secret
cannot be detected from here: check the stream's Realtime report or DebugView once.

Errors: the Measurement Protocol documents no error bodies. Google's front end answers overload
and outages with HTML pages: 5xx -> `TransientPlatformError`, 429 -> `RateLimitedError` with
`Retry-After` when given, any other 4xx -> `PermanentPlatformError` carrying the page title.
Rate limits: none published for the Measurement Protocol; the shared throttle holds calls to a
modest rate under the key `ga4`.

Idempotency, honestly: GA4 does not deduplicate events and its answer cannot tell a replay from a
first write, so delivery is at least once. A retry after an unheard answer may count an event
twice. What this client does about it:
- every event carries the parameter `journeys_event_id`, derived from the idempotency key (the key
  itself when it fits in 100 characters, else a hash of it), so duplicates can be removed
  downstream (BigQuery export, or a custom dimension in explorations);
- a `purchase` event carries `transaction_id` (the caller's, else the same derived id): GA4 does
  deduplicate purchases of one user with the same transaction id (web streams).
`send_event` answers `WriteResult(id=journeys_event_id)`, the same id for the same key every time;
`created` is always True because GA4 gives nothing to learn otherwise from.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from domain.ratelimits import Throttle
from platforms.base import CallObserver, PlatformClient
from platforms.errors import PermanentPlatformError
from platforms.ports import AnalyticsEvent, WriteResult

DEFAULT_BASE_URL = "https://www.google-analytics.com"
EVENT_ID_PARAM = "journeys_event_id"

MAX_EVENTS_PER_REQUEST = 25
MAX_PARAMS_PER_EVENT = 25
MAX_NAME_LENGTH = 40
MAX_VALUE_LENGTH = 100
# Parameters with a longer documented value limit than the general 100 characters.
LONG_VALUE_LIMITS = {"page_location": 1000, "page_referrer": 420, "page_title": 300}
MAX_ITEMS = 200
MAX_BACKDATE = timedelta(hours=72)

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
RESERVED_PREFIXES = ("google_", "ga_", "firebase_")
# The Measurement Protocol reference's reserved event names.
RESERVED_EVENT_NAMES = frozenset(
    {
        "ad_activeview",
        "ad_click",
        "ad_exposure",
        "ad_impression",
        "ad_query",
        "ad_reward",
        "adunit_exposure",
        "app_background",
        "app_clear_data",
        "app_exception",
        "app_install",
        "app_remove",
        "app_store_refund",
        "app_store_subscription_cancel",
        "app_store_subscription_convert",
        "app_store_subscription_renew",
        "app_update",
        "app_upgrade",
        "dynamic_link_app_open",
        "dynamic_link_app_update",
        "dynamic_link_first_open",
        "error",
        "first_open",
        "first_visit",
        "in_app_purchase",
        "notification_dismiss",
        "notification_foreground",
        "notification_open",
        "notification_receive",
        "os_update",
        "session_start",
        "session_start_with_rollout",
        "user_engagement",
    }
)
RESERVED_PARAM_NAMES = frozenset({"firebase_conversion"})
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MEASUREMENT_ID_PATTERN = re.compile(r"G-[A-Z0-9]+")


class ValidationMessage(BaseModel):
    """One finding of the validation server, as Google words it."""

    fieldPath: str = ""
    description: str = ""
    validationCode: str = ""


def event_id_for(idempotency_key: str) -> str:
    """The `journeys_event_id` of a key: stable, and within GA4's 100-character value limit."""
    if idempotency_key and len(idempotency_key) <= MAX_VALUE_LENGTH:
        return idempotency_key
    return "sha256-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:64]


def _micros(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1_000_000)


class GA4Client(PlatformClient):
    """`AnalyticsPort` over the GA4 Measurement Protocol for one web data stream."""

    provider: ClassVar[str] = "ga4"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        measurement_id: str,
        api_secret: str,
        non_personalized_ads: bool | None = None,
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        super().__init__(http, base_url=base_url, throttle=throttle, observer=observer)
        if not MEASUREMENT_ID_PATTERN.fullmatch(measurement_id):
            raise ValueError(f"a GA4 measurement id looks like G-XXXXXXXXXX, not {measurement_id!r}")
        if not api_secret:
            raise ValueError("a Measurement Protocol api_secret is required")
        self._measurement_id = measurement_id
        self._api_secret = api_secret
        self._non_personalized_ads = non_personalized_ads

    async def send_event(self, event: AnalyticsEvent, *, idempotency_key: str) -> WriteResult:
        return await self.send_events([event], idempotency_key=idempotency_key)

    async def send_events(self, events: Sequence[AnalyticsEvent], *, idempotency_key: str) -> WriteResult:
        """Up to 25 events of one user at one time in one request. The first event's
        `journeys_event_id` is the key's; the n-th (n > 0) is derived from `{key}:{n}`."""
        body = self._body(events, idempotency_key, now=datetime.now(UTC))
        await self._call("send_event", "POST", "/mp/collect", json=body, params=self._query())
        return WriteResult(provider=self.provider, object_type="event", id=event_id_for(idempotency_key))

    async def validate(
        self, event: AnalyticsEvent, *, idempotency_key: str | None = None
    ) -> list[ValidationMessage]:
        """Google's own verdict on the request `send_event` would make (no client-side checks run,
        nothing is recorded): an empty list when valid."""
        body = self._body([event], idempotency_key, now=datetime.now(UTC), enforce=False)
        response = await self._call("validate", "POST", "/debug/mp/collect", json=body, params=self._query())
        try:
            messages = response.json().get("validationMessages") or []
        except (ValueError, AttributeError) as exc:
            raise PermanentPlatformError(
                self.provider, f"the validation server answered {response.text[:200]!r}"
            ) from exc
        return [ValidationMessage.model_validate(message) for message in messages]

    def _query(self) -> dict[str, str]:
        return {"measurement_id": self._measurement_id, "api_secret": self._api_secret}

    def _body(
        self,
        events: Sequence[AnalyticsEvent],
        idempotency_key: str | None,
        *,
        now: datetime,
        enforce: bool = True,
    ) -> dict[str, Any]:
        if not events:
            raise PermanentPlatformError(self.provider, "a request carries at least one event")
        first = events[0]
        if enforce:
            self._check_request(events, now)
        built: list[dict[str, Any]] = []
        for index, event in enumerate(events):
            params = {k: v for k, v in event.params.items() if v is not None}
            if idempotency_key is not None:
                event_id = event_id_for(idempotency_key if index == 0 else f"{idempotency_key}:{index}")
                params[EVENT_ID_PARAM] = event_id
                if event.name == "purchase" and not params.get("transaction_id"):
                    params["transaction_id"] = event_id
            if enforce:
                self._check_event(index, event.name, params)
            built.append({"name": event.name, "params": params})
        body: dict[str, Any] = {"client_id": first.client_id}
        if first.user_id is not None:
            body["user_id"] = first.user_id
        if first.occurred_at is not None:
            body["timestamp_micros"] = _micros(first.occurred_at)
        if self._non_personalized_ads is not None:
            body["non_personalized_ads"] = self._non_personalized_ads
        body["events"] = built
        return body

    def _reject(self, message: str) -> PermanentPlatformError:
        return PermanentPlatformError(self.provider, message, status=None)

    def _check_request(self, events: Sequence[AnalyticsEvent], now: datetime) -> None:
        if len(events) > MAX_EVENTS_PER_REQUEST:
            raise self._reject(f"{len(events)} events in one request; at most {MAX_EVENTS_PER_REQUEST}")
        first = events[0]
        for event in events[1:]:
            if (event.client_id, event.user_id, event.occurred_at) != (
                first.client_id,
                first.user_id,
                first.occurred_at,
            ):
                raise self._reject("events of one request must share client_id, user_id and occurred_at")
        if not first.client_id:
            raise self._reject("client_id is required")
        if "@" in first.client_id:
            raise self._reject("client_id looks like an email address; GA4 must not receive personal data")
        if first.user_id is not None:
            if not first.user_id:
                raise self._reject("user_id, when given, must not be empty")
            if "@" in first.user_id:
                raise self._reject(
                    "user_id looks like an email address; send the lead id: "
                    "GA4 must not receive personal data"
                )
        if first.occurred_at is not None:
            occurred = (
                first.occurred_at if first.occurred_at.tzinfo else first.occurred_at.replace(tzinfo=UTC)
            )
            if now - occurred > MAX_BACKDATE:
                raise self._reject(
                    f"the event happened at {occurred.isoformat()}, more than 72 hours ago; "
                    "GA4 drops events backdated that far"
                )

    def _check_event(self, index: int, name: str, params: dict[str, Any]) -> None:
        where = f"event {index} ({name!r})"
        if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
            raise self._reject(
                f"{where}: event names have at most {MAX_NAME_LENGTH} characters, start with a letter "
                "and use only letters, digits and underscores"
            )
        if name in RESERVED_EVENT_NAMES or name.startswith(RESERVED_PREFIXES):
            raise self._reject(f"{where}: the event name is reserved by Google Analytics")
        if len(params) > MAX_PARAMS_PER_EVENT:
            raise self._reject(
                f"{where}: {len(params)} parameters (with {EVENT_ID_PARAM}); at most {MAX_PARAMS_PER_EVENT}"
            )
        for key, value in params.items():
            self._check_param(where, key, value)

    def _check_param(self, where: str, key: str, value: Any) -> None:
        if not NAME_PATTERN.fullmatch(key) or len(key) > MAX_NAME_LENGTH:
            raise self._reject(
                f"{where}: parameter {key!r}: names have at most {MAX_NAME_LENGTH} characters, start with "
                "a letter and use only letters, digits and underscores"
            )
        if key in RESERVED_PARAM_NAMES or key.startswith(RESERVED_PREFIXES):
            raise self._reject(f"{where}: parameter name {key!r} is reserved by Google Analytics")
        if key == "items":
            self._check_items(where, value)
            return
        self._check_value(where, key, value, LONG_VALUE_LIMITS.get(key, MAX_VALUE_LENGTH))

    def _check_items(self, where: str, items: Any) -> None:
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise self._reject(f"{where}: `items` is a list of objects")
        if len(items) > MAX_ITEMS:
            raise self._reject(f"{where}: {len(items)} items; at most {MAX_ITEMS}")
        for item in items:
            for key, value in item.items():
                if not NAME_PATTERN.fullmatch(key) or len(key) > MAX_NAME_LENGTH:
                    raise self._reject(f"{where}: item parameter {key!r} is not a valid name")
                self._check_value(where, f"items.{key}", value, MAX_VALUE_LENGTH)

    def _check_value(self, where: str, key: str, value: Any, limit: int) -> None:
        if isinstance(value, str):
            if len(value) > limit:
                raise self._reject(f"{where}: parameter {key!r} has {len(value)} characters; at most {limit}")
            if EMAIL_PATTERN.search(value):
                raise self._reject(
                    f"{where}: parameter {key!r} holds an email address; GA4 must not receive personal data"
                )
        elif not isinstance(value, int | float):
            raise self._reject(
                f"{where}: parameter {key!r} is a {type(value).__name__}; values are strings or numbers"
            )

    def _error_message(self, response: httpx.Response) -> str:
        """Google's front end answers errors with an HTML page: its title says what happened."""
        text = response.text
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        if title:
            return f"{response.status_code} {html.unescape(title.group(1)).strip()}"
        return f"{response.status_code} {text[:300]}".strip()
