"""A company enrichment provider in the shape of Clearbit's Company API, under `/enrichment`:
`GET /v2/companies/find?domain=` (Bearer key) answers 200 with the company, 404
`{"error": {"type": "unknown_record", ...}}` for a domain it does not know.

Sandbox control: `PUT /enrichment/_companies/{domain}` with `{"name", "industry", "employees",
"country", "annual_revenue"}` makes the provider know a company; the tests use it as the
provider's data. Its records are the provider's data, not an account's: `/_reset` clears them.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox.core import ProviderHandler, register

CONTROL = "/_companies/"


@register("enrichment")
class Enrichment(ProviderHandler):
    @property
    def companies(self) -> dict[str, Any]:
        return self.state.table("enrichment_companies")

    def answer(self) -> Response:
        if self.path.startswith(CONTROL) and self.request.method == "PUT":
            return self.know(self.path.removeprefix(CONTROL).strip().lower())
        auth = self.request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
            return JSONResponse({"error": {"type": "auth_required", "message": "API key required"}}, 401)
        if self.path != "/v2/companies/find" or self.request.method != "GET":
            return JSONResponse({"error": {"type": "not_found", "message": "Not found"}}, 404)
        domain = (self.request.query_params.get("domain") or "").strip().lower()
        if not domain:
            return JSONResponse({"error": {"type": "invalid_domain", "message": "domain is required"}}, 422)
        company = self.companies.get(domain)
        if company is None:
            message = f"Unknown company for domain {domain}"
            return JSONResponse({"error": {"type": "unknown_record", "message": message}}, 404)
        return JSONResponse(
            {
                "id": company["id"],
                "name": company.get("name"),
                "domain": domain,
                "category": {"industry": company.get("industry"), "sector": None},
                "metrics": {
                    "employees": company.get("employees"),
                    "annualRevenue": company.get("annual_revenue"),
                },
                "geo": {"countryCode": company.get("country")},
            }
        )

    def know(self, domain: str) -> Response:
        body = self.body if isinstance(self.body, dict) else {}
        if not domain or "." not in domain:
            return JSONResponse({"error": "PUT /enrichment/_companies/<domain>"}, 400)
        with self.state.lock:
            record = {"id": f"cmp_{self.state.next_id('enrichment_companies', start=1)}", **body}
            self.companies[domain] = record
            self.state.save_records()
        return JSONResponse({"domain": domain, **record})
