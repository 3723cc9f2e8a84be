"""HubSpot's webhooks as the sandbox sends them: an app's settings (`targetUrl`) and subscriptions
made through the Webhooks API v3 (`/webhooks/v3/{appId}/settings`, `/webhooks/v3/{appId}/
subscriptions`), and, for every change a call to the CRM API makes (a creation, a property set to a
new value, a deletion, a merge), the events of the active subscriptions it matches, POSTed to the
target URL in batches of up to 100, signed v3 with the app's client secret (`X-HubSpot-Signature-v3`:
base64 HMAC-SHA256 of method + URI + body + timestamp; `X-HubSpot-Request-Timestamp` in ms).

A `*.deletion` event names the archived record in `objectId`. A `*.merge` event carries HubSpot's
merge fields: `primaryObjectId` (the record merged into), `mergedObjectIds` (the records merged
into it, a list), `newObjectId` (the record the merge made, with its own id) and
`numberOfPropertiesMoved`; its `objectId` is the primary's id.

A change the app made itself through the API carries `changeSource` INTEGRATION and the app's id as
`sourceId`, as HubSpot reports it back; any other token is a user in HubSpot's UI (`CRM_UI`,
`userId:<n>`). Deliveries run after the answer, on a thread, and are retried a few times on a
failure. The seeded app is the dev stack's (its id and client secret are the dev values both sides
know); the settings and subscriptions are the app's configuration, kept across `/_reset`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from typing import Any

import httpx

from sandbox.core import KEPT_ON_RESET, SandboxState, now_iso

# The dev stack's app: its id, client secret and the private token its calls carry.
SEED_APPS = {"1160452": {"client_secret": "dev-hubspot-client-secret", "tokens": ["sandbox-hubspot-token"]}}
SETTINGS = "hubspot_webhook_settings"
SUBSCRIPTIONS = "hubspot_webhook_subscriptions"
KEPT_ON_RESET.update({SETTINGS, SUBSCRIPTIONS})
PORTAL_ID = 62515
BATCH = 100
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
# The user whose UI changes are not an app's.
UI_USER = "userId:8000001"
EVENT_TYPES = frozenset(
    f"{kind}.{action}"
    for kind in ("contact", "company", "deal")
    for action in ("creation", "deletion", "propertyChange", "merge", "restore", "associationChange")
) | {"contact.privacyDeletion"}
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}


def app_of_token(token: str) -> str | None:
    return next((app_id for app_id, app in SEED_APPS.items() if token in app["tokens"]), None)


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    message = method.encode() + uri.encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _action(change: dict[str, Any]) -> str:
    """What a change is, as the second half of a subscription's event type says it."""
    if change.get("action"):
        return str(change["action"])
    return "creation" if change["created"] else "propertyChange"


def _fields(action: str, change: dict[str, Any], subscription: dict[str, Any]) -> dict[str, Any] | None:
    """The fields an event of this action adds to the common ones; None when the subscription
    does not take the change."""
    if action == "propertyChange":
        # A record's creation is its own event; its properties' first values are not changes.
        if change.get("property") != subscription.get("propertyName"):
            return None
        return {"propertyName": change["property"], "propertyValue": change["value"]}
    if action == "merge":
        return {
            "primaryObjectId": int(change["primary_object_id"]),
            "mergedObjectIds": [int(i) for i in change["merged_object_ids"]],
            "newObjectId": int(change["new_object_id"]),
            "numberOfPropertiesMoved": int(change["properties_moved"]),
        }
    return {}


def events_for(
    state: SandboxState, changes: list[dict[str, Any]], actor_app: str | None
) -> dict[str, list[dict[str, Any]]]:
    """The events each app's active subscriptions make of `changes`, by app. Lock held."""
    by_app: dict[str, list[dict[str, Any]]] = {}
    occurred = int(time.time() * 1000)
    for subscription in state.table(SUBSCRIPTIONS).values():
        if not subscription["active"]:
            continue
        app_id = subscription["appId"]
        kind, _, action = subscription["eventType"].partition(".")
        for change in changes:
            if change["kind"] != kind or _action(change) != action:
                continue
            extra = _fields(action, change, subscription)
            if extra is None:
                continue
            ours = actor_app is not None
            by_app.setdefault(str(app_id), []).append(
                {
                    "eventId": int(state.next_id("hubspot_webhook_events", start=100001)),
                    "subscriptionId": subscription["id"],
                    "portalId": PORTAL_ID,
                    "appId": int(app_id),
                    "occurredAt": occurred,
                    "subscriptionType": subscription["eventType"],
                    "attemptNumber": 0,
                    "objectId": int(change["object_id"]),
                    "changeSource": "INTEGRATION" if ours else "CRM_UI",
                    "sourceId": str(actor_app) if ours else UI_USER,
                    **extra,
                }
            )
    return by_app


def deliver_later(state: SandboxState, by_app: dict[str, list[dict[str, Any]]]) -> None:
    """Sends each app's events to its target URL on a thread (HubSpot delivers after the change)."""
    work = []
    for app_id, events in by_app.items():
        settings = state.table(SETTINGS).get(app_id)
        if not settings or not events:
            continue
        for start in range(0, len(events), BATCH):
            work.append(
                (settings["targetUrl"], SEED_APPS[app_id]["client_secret"], events[start : start + BATCH])
            )
    if work:
        threading.Thread(target=_deliver_all, args=(state, work), daemon=True).start()


def _deliver_all(state: SandboxState, work: list[tuple[str, str, list[dict[str, Any]]]]) -> None:
    for url, secret, events in work:
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            time.sleep(delay)
            batch = [{**event, "attemptNumber": attempt} for event in events]
            body = json.dumps(batch).encode()
            stamp = int(time.time() * 1000)
            headers = {
                "Content-Type": "application/json",
                "X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, body, stamp),
                "X-HubSpot-Request-Timestamp": str(stamp),
                "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
            }
            try:
                status: int | None = httpx.post(url, content=body, headers=headers, timeout=10.0).status_code
            except httpx.HTTPError:
                status = None
            with state.lock:
                delivery_id = state.next_id("hubspot_webhook_deliveries", start=1)
                state.table("hubspot_webhook_deliveries")[delivery_id] = {
                    "url": url.split("?", 1)[0],
                    "status": status,
                    "attempt": attempt,
                    "events": [e["eventId"] for e in events],
                    "at": now_iso(),
                }
                state.save_records()
            if status is not None and status < 300:
                break


# -- the Webhooks API v3 ------------------------------------------------------------------------


def settings_response(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: settings[k] for k in ("targetUrl", "throttling", "createdAt", "updatedAt")}


def subscription_response(subscription: dict[str, Any]) -> dict[str, Any]:
    shown = {k: subscription[k] for k in ("eventType", "active", "createdAt", "updatedAt")}
    shown["id"] = str(subscription["id"])
    if subscription.get("propertyName"):
        shown["propertyName"] = subscription["propertyName"]
    return shown
