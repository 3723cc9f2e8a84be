"""LinkedIn Marketing API, Lead Sync: a lead notification names a form response; the answers and
the form's questions are read here (`/rest/leadFormResponses/{id}`, `/rest/leadForms/{id}`).

Auth is an OAuth bearer token (`r_marketing_leadgen_automation`), with `LinkedIn-Version` and
`X-Restli-Protocol-Version: 2.0.0` on every call. Errors: `{"status", "message", "serviceErrorCode"}`;
429 when throttled.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from platforms.errors import classify, send

PROVIDER = "linkedin"


class LinkedInClient:
    def __init__(self, http: httpx.AsyncClient, *, base_url: str, token: str, version: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._version = version

    async def _get(self, path: str) -> dict[str, Any]:
        request = self._http.build_request(
            "GET",
            f"{self._base_url}{path}",
            headers={
                "Authorization": f"Bearer {self._token}",
                "LinkedIn-Version": self._version,
                "X-Restli-Protocol-Version": "2.0.0",
            },
        )
        response = await send(PROVIDER, self._http, request)
        if response.status_code != 200:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text
            raise classify(PROVIDER, response, f"{response.status_code} {message}"[:500])
        body: dict[str, Any] = response.json()
        return body

    async def form_response(self, response_id: str) -> dict[str, Any]:
        return await self._get(f"/rest/leadFormResponses/{quote(response_id, safe='')}")

    async def form(self, form_id: str) -> dict[str, Any]:
        return await self._get(f"/rest/leadForms/{quote(form_id, safe='')}")
