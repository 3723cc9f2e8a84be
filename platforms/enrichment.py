"""Company enrichment (the `EnrichmentPort`): firmographics by domain for companies the CRM does
not know, in the shape of Clearbit's Company API (`GET /v2/companies/find?domain=`, Bearer key),
the de facto shape of domain lookups; another provider answering it plugs in by
`JOURNEYS_ENRICHMENT_BASE_URL` and `JOURNEYS_ENRICHMENT_API_KEY`. (Clearbit itself is now HubSpot's
"Breeze Intelligence" and serves its API to existing customers only.)

Answers: 200 with the company (`name`, `category.industry`, `metrics.employees`,
`metrics.annualRevenue` or `metrics.estimatedAnnualRevenue`, `geo.countryCode`); 202 while the
provider looks the domain up (nothing yet: the engine asks again at the lead's next assessment);
404 for a domain it does not know. A lookup is a read: nothing to make idempotent.
"""

from __future__ import annotations

from typing import Any

import httpx

from domain.ratelimits import Throttle
from platforms.base import CallObserver, PlatformClient
from platforms.ports import Firmographics

PROVIDER = "enrichment"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class CompanyEnrichmentClient(PlatformClient):
    provider = PROVIDER

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        super().__init__(http, base_url=base_url, throttle=throttle, observer=observer)
        self._api_key = api_key

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}

    async def company(self, domain: str) -> Firmographics | None:
        response = await self._call(
            "companies.find",
            "GET",
            "/v2/companies/find",
            params={"domain": domain},
            accept=lambda r: r.status_code < 300 or r.status_code == 404,
        )
        if response.status_code != 200:
            return None  # 202: still looking; 404: unknown
        body = response.json()
        category = body.get("category") or {}
        metrics = body.get("metrics") or {}
        geo = body.get("geo") or {}
        employees = _number(metrics.get("employees"))
        revenue = _number(metrics.get("annualRevenue")) or _number(metrics.get("estimatedAnnualRevenue"))
        return Firmographics(
            domain=str(body.get("domain") or domain),
            name=body.get("name") or None,
            industry=str(category["industry"]).lower() if category.get("industry") else None,
            employees=int(employees) if employees is not None else None,
            country=geo.get("countryCode") or geo.get("country") or None,
            annual_revenue=revenue,
        )
