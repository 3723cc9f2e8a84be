"""Which long-running pollers a worker starts: the email platform's events API (Klaviyo, HubSpot),
the CRM's changes (Salesforce's history, HubSpot's reps' tasks and calls); each poller's
workflow input is valid as the worker builds it."""

from __future__ import annotations

import os

import pytest

from domain.engagement import POLL_ACTIVITIES, EngagementPollInput
from runtime.pollers import wanted_pollers
from runtime.settings import Settings


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the machine's environment sets (a newcomer's JOURNEYS_API_KEY) is not this test's."""
    for name in [n for n in os.environ if n.startswith("JOURNEYS_")]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("crm", "email", "wanted"),
    [
        ("hubspot", "klaviyo", ["klaviyo", "hubspot-crm"]),
        ("hubspot", "hubspot", ["hubspot", "hubspot-crm"]),
        ("salesforce", "kit", ["salesforce"]),
        ("hubspot", "kit", ["hubspot-crm"]),
    ],
)
def test_each_deployment_polls_what_its_platforms_report_only_to_a_query(crm, email, wanted):
    settings = Settings(crm_provider=crm, email_provider=email, engagement_poll_seconds=5)
    pollers = wanted_pollers(settings)
    assert [p.provider for p in pollers] == wanted
    for poller in pollers:
        assert poller.provider in POLL_ACTIVITIES
        assert EngagementPollInput.model_validate(poller.model_dump(mode="json")) == poller


def test_no_pollers_when_polling_is_off():
    assert wanted_pollers(Settings(engagement_poll_seconds=0)) == []
