"""The account a lead belongs to, found without asking the lead (domain.account_match decides): the
CRM's companies known by the email's registrable domain or holding a word of the company's name
are the candidates; a lead matched by neither is looked up by domain at the enrichment provider.
The firmographics come with the account (the CRM's company record, or the provider's), so ICP fit
can be assessed for a lead who gave only the seed's required fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.account_match import (
    KnownAccount,
    is_personal_domain,
    match_account,
    normalized_company,
    registrable_domain,
)
from domain.countries import country_code
from platforms.ports import CrmCompany, CrmPort, EnrichmentPort, Firmographics

# The shortest word of a company name worth a CRM search (shorter ones match half the CRM).
MIN_TOKEN = 3


@dataclass(frozen=True)
class ResolvedAccount:
    account_id: str
    traits: dict[str, Any]
    # How it was found: `by` (domain | name), `reason` (names no person), `score`, `source`.
    match: dict[str, Any]


def _name_token(company: str | None) -> str | None:
    words = [w for w in normalized_company(company or "").split() if len(w) >= MIN_TOKEN]
    return max(words, key=len) if words else None


def _firmographics(source: CrmCompany | Firmographics) -> dict[str, Any]:
    traits = {
        "name": source.name,
        "industry": source.industry,
        "employees": source.employees,
        "country": country_code(source.country),
        "annual_revenue": source.annual_revenue,
    }
    return {key: value for key, value in traits.items() if value is not None}


class AccountResolver:
    def __init__(
        self, crm: CrmPort, enrichment: EnrichmentPort | None = None, *, free_mail: tuple[str, ...] = ()
    ) -> None:
        self._crm = crm
        self._enrichment = enrichment
        self._free_mail = free_mail

    async def resolve(self, email: str | None, company: str | None) -> ResolvedAccount | None:
        domain = registrable_domain(email) if email else None
        business = domain if domain and not is_personal_domain(domain, self._free_mail) else None
        token = _name_token(company)
        candidates = (
            await self._crm.find_companies(domain=business, name_token=token) if business or token else []
        )
        known = [KnownAccount(c.id, c.name or "", c.domains) for c in candidates]
        matched = match_account(email, company, known, free_mail=self._free_mail)
        if matched is not None:
            found = next(c for c in candidates if c.id == matched.account_id)
            traits = {
                **_firmographics(found),
                "domain": found.domains[0] if found.domains else business,
                "owner_id": found.owner_id,
                "crm": {"provider": self._crm.provider, "id": found.id},
                "source": "crm",
            }
            return ResolvedAccount(
                account_id=f"{self._crm.provider}:{found.id}",
                traits={k: v for k, v in traits.items() if v is not None},
                match={"by": matched.by, "reason": matched.reason, "score": matched.score, "source": "crm"},
            )
        if business is None or self._enrichment is None:
            return None
        enriched = await self._enrichment.company(business)
        if enriched is None:
            return None
        return ResolvedAccount(
            account_id=f"domain:{business}",
            traits={**_firmographics(enriched), "domain": business, "source": "enrichment"},
            match={
                "by": "domain",
                "reason": f"email domain {business}",
                "score": 100.0,
                "source": "enrichment",
            },
        )
