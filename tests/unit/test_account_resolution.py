"""A lead's account found without asking the lead, against the sandbox's CRMs and enrichment
provider in process: by the email's domain among the CRM's companies, by the company's name when
the address is personal, at the enrichment provider when the CRM knows neither; with the
firmographics the ICP fit reads and the reason it matched."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from activities.account_match import AccountResolver
from domain.countries import country_code
from platforms.enrichment import CompanyEnrichmentClient
from platforms.hubspot import HubSpotClient
from platforms.ports import Company
from platforms.salesforce import SalesforceClient
from sandbox.app import create_app
from tests.helpers.platforms import in_process


@pytest.mark.parametrize(
    ("given", "code"),
    [("United States", "US"), ("us", "US"), ("USA", "US"), ("UK", "GB"), ("Germany", "DE"),
     ("Deutschland", "DE"), ("DEU", "DE"), ("Atlantis", None), ("", None), (None, None)],
)  # fmt: skip
def test_countries_are_kept_as_iso_codes_however_they_are_spelled(given, code):
    assert country_code(given) == code


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_app(seed=21)) as client:
        yield client


def enrichment(http: httpx.AsyncClient) -> CompanyEnrichmentClient:
    return CompanyEnrichmentClient(http, base_url="http://sandbox/enrichment", api_key="k")


def hubspot(http: httpx.AsyncClient) -> HubSpotClient:
    return HubSpotClient(http, base_url="http://sandbox/hubspot", token="pat-sandbox")


def salesforce(http: httpx.AsyncClient) -> SalesforceClient:
    return SalesforceClient(
        http, base_url="http://sandbox/salesforce", client_id="3MVG9.sandbox", client_secret="secret"
    )


EXAMPLE = Company(
    domain="example-corp.com", name="Example Corp, Inc.", industry="COMPUTER_SOFTWARE", employees=250,
    country="United States", owner_id="71000001",
)  # fmt: skip


async def test_hubspot_company_found_by_the_emails_domain_carries_its_firmographics(http):
    crm = hubspot(http)
    made = await crm.upsert_company(EXAMPLE, idempotency_key="c-1")
    resolved = await AccountResolver(crm, enrichment(http)).resolve("ada@eu.example-corp.com", None)
    assert resolved is not None and resolved.account_id == f"hubspot:{made.id}"
    assert resolved.traits["industry"] == "computer software", "HubSpot's enum read as words"
    assert (resolved.traits["employees"], resolved.traits["country"]) == (250, "US")
    assert resolved.traits["owner_id"] == "71000001" and resolved.traits["source"] == "crm"
    assert resolved.match == {
        "by": "domain",
        "reason": "email domain example-corp.com",
        "score": 100.0,
        "source": "crm",
    }


async def test_a_personal_address_matches_by_the_company_name_and_never_by_its_domain(http):
    crm = hubspot(http)
    await crm.upsert_company(EXAMPLE, idempotency_key="c-1")
    await crm.upsert_company(Company(domain="gmail.com", name="Google Mail"), idempotency_key="c-2")
    resolver = AccountResolver(crm, enrichment(http))
    by_name = await resolver.resolve("ada.lovelace@gmail.com", "EXAMPLE CORP")
    assert (
        by_name is not None
        and by_name.match["by"] == "name"
        and by_name.traits["name"] == "Example Corp, Inc."
    )
    assert await resolver.resolve("grace@gmail.com", None) is None, "a webmail domain is no account"


async def test_a_company_the_crm_does_not_know_comes_from_the_enrichment_provider(http):
    put = await http.put(
        "/enrichment/_companies/initech.io",
        json={
            "name": "Initech",
            "industry": "Software",
            "employees": 800,
            "country": "DE",
            "annual_revenue": 9.5e7,
        },
    )
    assert put.status_code == 200
    resolver = AccountResolver(hubspot(http), enrichment(http))
    resolved = await resolver.resolve("peter@initech.io", "Initech")
    assert resolved is not None and resolved.account_id == "domain:initech.io"
    assert resolved.traits == {
        "name": "Initech", "industry": "software", "employees": 800, "country": "DE",
        "annual_revenue": 9.5e7, "domain": "initech.io", "source": "enrichment",
    }  # fmt: skip
    assert resolved.match["source"] == "enrichment"
    assert await resolver.resolve("someone@unknown-startup.dev", "Unknown") is None


async def test_salesforce_accounts_are_found_by_their_key_or_the_website_a_rep_typed(http):
    crm = salesforce(http)
    await crm.upsert_company(
        EXAMPLE.model_copy(update={"industry": "Technology", "owner_id": None}), idempotency_key="a-1"
    )
    granted = await http.post(
        "/salesforce/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "3MVG9.rep", "client_secret": "s"},
    )
    token = granted.json()["access_token"]
    # An account a rep made by hand: no key of ours, only its website.
    rep_made = await http.post(
        "/salesforce/services/data/v62.0/sobjects/Account",
        json={
            "Name": "Acme Robotics GmbH",
            "Website": "https://www.acme-robotics.de/en",
            "NumberOfEmployees": 120,
            "BillingCountry": "Germany",
            "Industry": "Manufacturing",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert rep_made.status_code == 201, rep_made.text
    resolver = AccountResolver(crm, enrichment(http))
    keyed = await resolver.resolve("ada@example-corp.com", None)
    assert (
        keyed is not None and keyed.account_id.startswith("salesforce:") and keyed.traits["country"] == "US"
    )
    typed = await resolver.resolve("kai@acme-robotics.de", None)
    assert (
        typed is not None and typed.traits["name"] == "Acme Robotics GmbH" and typed.traits["country"] == "DE"
    )
    assert typed.match["by"] == "domain"
    named = await resolver.resolve("kai.private@gmail.com", "Acme Robotics")
    assert named is not None and named.account_id == typed.account_id and named.match["by"] == "name"
