"""Klaviyo's revisioned JSON:API (`/api/...`).

Auth is `Authorization: Klaviyo-API-Key <private key>` with a `revision` header. Profiles are
upserted by email through `POST /api/profile-import`; consented profiles are subscribed into a
list (which starts the list's welcome flow) through `POST /api/profile-subscription-bulk-create-jobs`.
Errors come back as `{"errors": [{"status", "code", "title", "detail", "source"}]}`; 429 carries
`Retry-After`.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from platforms.errors import classify, send

PROVIDER = "klaviyo"
JSON_API = "application/vnd.api+json"


class KlaviyoProfile(BaseModel):
    id: str
    created: bool


class KlaviyoClient:
    def __init__(self, http: httpx.AsyncClient, *, base_url: str, api_key: str, revision: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._revision = revision

    def _headers(self, idempotency_key: str | None) -> dict[str, str]:
        headers = {
            "Authorization": f"Klaviyo-API-Key {self._api_key}",
            "revision": self._revision,
            "Accept": JSON_API,
            "Content-Type": JSON_API,
        }
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def _post(self, path: str, body: dict[str, Any], idempotency_key: str | None) -> httpx.Response:
        request = self._http.build_request(
            "POST", f"{self._base_url}{path}", json=body, headers=self._headers(idempotency_key)
        )
        response = await send(PROVIDER, self._http, request)
        if response.status_code >= 300:
            raise classify(PROVIDER, response, _error_message(response))
        return response

    async def upsert_profile(
        self,
        email: str,
        attributes: dict[str, Any],
        properties: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> KlaviyoProfile:
        body = {
            "data": {
                "type": "profile",
                "attributes": {**attributes, "email": email, "properties": properties},
            }
        }
        response = await self._post("/api/profile-import", body, idempotency_key)
        return KlaviyoProfile(id=response.json()["data"]["id"], created=response.status_code == 201)

    async def subscribe_to_list(
        self, email: str, list_id: str, *, source: str, idempotency_key: str | None = None
    ) -> None:
        body = {
            "data": {
                "type": "profile-subscription-bulk-create-job",
                "attributes": {
                    "custom_source": source,
                    "profiles": {
                        "data": [
                            {
                                "type": "profile",
                                "attributes": {
                                    "email": email,
                                    "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},
                                },
                            }
                        ]
                    },
                },
                "relationships": {"list": {"data": {"type": "list", "id": list_id}}},
            }
        }
        await self._post("/api/profile-subscription-bulk-create-jobs", body, idempotency_key)


def _error_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return f"{response.status_code} {response.text[:300]}"
    if not errors:
        return f"{response.status_code} {response.text[:300]}"
    first = errors[0]
    pointer = (first.get("source") or {}).get("pointer")
    detail = first.get("detail") or first.get("title") or first.get("code")
    return f"{response.status_code} {first.get('code', '')}: {detail}" + (f" at {pointer}" if pointer else "")
