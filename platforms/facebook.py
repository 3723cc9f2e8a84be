"""Meta's Graph API, for Lead Ads: a `leadgen` webhook names a lead; its answers are read here.

`GET /{version}/{leadgen_id}?access_token=<page token>` returns `{id, created_time, field_data:
[{name, values}], form_id, ad_id, ...}`. Errors come back as `{"error": {"message", "type",
"code", "fbtrace_id"}}`; codes 4, 17, 32 and 613 are rate limits.
"""

from __future__ import annotations

from typing import Any

import httpx

from platforms.errors import (
    NotFoundError,
    PermanentPlatformError,
    RateLimitedError,
    TransientPlatformError,
    send,
)

PROVIDER = "facebook"
RATE_LIMIT_CODES = {4, 17, 32, 613, 80001}
# Code 100 with subcode 33: "Object with ID ... does not exist" (a deleted lead, or not this page's).
NOT_FOUND = (100, 33)
LEAD_FIELDS = "id,created_time,field_data,form_id,ad_id,adset_id,campaign_id,is_organic,platform"


class FacebookGraphClient:
    def __init__(self, http: httpx.AsyncClient, *, base_url: str, version: str, access_token: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._version = version
        self._access_token = access_token

    async def get_lead(self, leadgen_id: str) -> dict[str, Any]:
        request = self._http.build_request(
            "GET",
            f"{self._base_url}/{self._version}/{leadgen_id}",
            params={"access_token": self._access_token, "fields": LEAD_FIELDS},
        )
        response = await send(PROVIDER, self._http, request)
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        message = f"{response.status_code} {error.get('message') or response.text[:200]}"
        if error.get("code") in RATE_LIMIT_CODES or response.status_code == 429:
            raise RateLimitedError(PROVIDER, message, retry_after=60.0)
        if response.status_code >= 500 or error.get("is_transient"):
            raise TransientPlatformError(PROVIDER, message, status=response.status_code)
        if (error.get("code"), error.get("error_subcode")) == NOT_FOUND or response.status_code == 404:
            raise NotFoundError(PROVIDER, message, status=response.status_code)
        raise PermanentPlatformError(PROVIDER, message, status=response.status_code)
