"""HubSpot CRM v3: contacts upserted by their unique `email` property.

Auth is a private-app token as `Authorization: Bearer`. Errors come back as
`{"status": "error", "message": ..., "category": ...}`; 429 carries the policy that was hit
and, at times, `Retry-After`; every answer carries `X-HubSpot-RateLimit-*` headers.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from platforms.errors import RateLimitedError, classify, send

PROVIDER = "hubspot"


class HubSpotContact(BaseModel):
    id: str
    created: bool
    properties: dict[str, Any]


class HubSpotClient:
    def __init__(self, http: httpx.AsyncClient, *, base_url: str, token: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._token = token

    def _headers(self, idempotency_key: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        if idempotency_key:
            # HubSpot ignores it; the upsert's natural key (email) is what makes the write idempotent.
            # It is sent so that logs on both sides tie a write to the journey step that made it.
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def upsert_contact(
        self, email: str, properties: dict[str, str], *, idempotency_key: str | None = None
    ) -> HubSpotContact:
        body = {
            "inputs": [{"idProperty": "email", "id": email, "properties": {**properties, "email": email}}]
        }
        request = self._http.build_request(
            "POST",
            f"{self._base_url}/crm/v3/objects/contacts/batch/upsert",
            json=body,
            headers=self._headers(idempotency_key),
        )
        response = await send(PROVIDER, self._http, request)
        if response.status_code not in (200, 201, 207):
            raise self._error(response)
        payload = response.json()
        if payload.get("errors"):
            raise classify(PROVIDER, response, _first_error_message(payload["errors"]))
        result = payload["results"][0]
        return HubSpotContact(
            id=str(result["id"]), created=bool(result.get("new", False)), properties=result["properties"]
        )

    def _error(self, response: httpx.Response) -> Exception:
        try:
            body = response.json()
            message = body.get("message") or response.text
        except ValueError:
            body, message = {}, response.text
        error = classify(PROVIDER, response, f"{response.status_code} {message}"[:500])
        if isinstance(error, RateLimitedError) and "Retry-After" not in response.headers:
            # HubSpot's 10-second window: wait for the window named in the headers, else a full one.
            interval_ms = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
            error.retry_after = float(interval_ms) / 1000 if interval_ms else 10.0
        return error


def _first_error_message(errors: list[dict[str, Any]]) -> str:
    first = errors[0] if errors else {}
    return str(first.get("message", "batch error"))[:500]
