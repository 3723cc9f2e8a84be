"""Outside `dev`, the API, router and worker refuse the embedded defaults, naming each variable;
a deployment configured for real starts; optional platforms turned off are not asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from runtime.production import refuse_unsafe_defaults, unsafe_settings
from runtime.settings import PROJECT_ROOT, Settings

REAL: dict[str, Any] = {
    "environment": "production",
    "codec_keys": "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    "database_url": "postgresql+asyncpg://journeys:pw@db:5432/journeys",
    "api_key": "a-real-admin-key",
    "outbound_webhook_secret": "whsec_cmVhbC1vdXRib3VuZC1rZXk=",
    "consent_link_secret": "a-real-consent-secret",
    "hubspot_token": "pat-na1-real",
    "hubspot_base_url": "https://api.hubapi.com",
    "klaviyo_api_key": "pk_real",
    "klaviyo_base_url": "https://a.klaviyo.com",
    "slack_bot_token": "xoxb-real",
    "slack_base_url": "https://slack.com",
    "google_client_id": "real.apps.googleusercontent.com",
    "google_client_secret": "real-google-secret",
    "google_refresh_token": "real-refresh",
    "google_calendar_base_url": "https://www.googleapis.com",
    "google_token_url": "https://oauth2.googleapis.com/token",
    "ga4_api_secret": "real-ga4",
    "ga4_base_url": "https://www.google-analytics.com",
    "enrichment_api_key": "real-enrichment",
    "enrichment_base_url": "https://company.clearbit.com",
}


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the machine's environment sets (a newcomer's JOURNEYS_API_KEY) is not this test's."""
    for name in [n for n in os.environ if n.startswith("JOURNEYS_")]:
        monkeypatch.delenv(name)


def named(problems: list[str]) -> set[str]:
    return {p.split(" ", 1)[0] for p in problems}


def test_dev_runs_on_the_embedded_defaults():
    refuse_unsafe_defaults(Settings(), "api")  # no exit


def test_production_names_every_default_it_refuses():
    problems = named(unsafe_settings(Settings(environment="production"), "api"))
    assert {
        "JOURNEYS_CODEC_KEYS",
        "JOURNEYS_DATABASE_URL",
        "JOURNEYS_API_KEY",
        "JOURNEYS_OUTBOUND_WEBHOOK_SECRET",
        "JOURNEYS_CONSENT_LINK_SECRET",
        "JOURNEYS_HUBSPOT_TOKEN",
        "JOURNEYS_HUBSPOT_BASE_URL",
        "JOURNEYS_KLAVIYO_API_KEY",
        "JOURNEYS_SLACK_BOT_TOKEN",
        "JOURNEYS_GOOGLE_REFRESH_TOKEN",
        "JOURNEYS_GA4_BASE_URL",
        "JOURNEYS_ENRICHMENT_API_KEY",
    } <= problems
    # Platforms it does not use are not asked for.
    assert (
        not {"JOURNEYS_SALESFORCE_CLIENT_SECRET", "JOURNEYS_KIT_API_KEY", "JOURNEYS_LINKEDIN_ACCESS_TOKEN"}
        & problems
    )
    assert "JOURNEYS_API_KEY" not in named(unsafe_settings(Settings(environment="production"), "worker"))


def test_a_deployment_configured_for_real_starts():
    assert unsafe_settings(Settings(**REAL), "api") == []
    refuse_unsafe_defaults(Settings(**REAL), "worker")


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"hubspot_token": ""}, "JOURNEYS_HUBSPOT_TOKEN"),
        ({"hubspot_token": "sandbox-hubspot-token"}, "JOURNEYS_HUBSPOT_TOKEN"),
        ({"crm_provider": "salesforce"}, "JOURNEYS_SALESFORCE_BASE_URL"),
        ({"email_provider": "kit"}, "JOURNEYS_KIT_API_KEY"),
        ({"linkedin_client_secret": "li-secret"}, "JOURNEYS_LINKEDIN_ACCESS_TOKEN"),
        ({"chat_provider": "slack_webhook"}, "JOURNEYS_SLACK_WEBHOOK_URL"),
    ],
)
def test_each_platform_in_use_must_be_configured(change, refused):
    assert refused in named(unsafe_settings(Settings(**{**REAL, **change}), "worker"))


def test_optional_platforms_turned_off_are_not_asked_for_and_kit_may_use_an_apps_token():
    bare = {k: v for k, v in REAL.items() if not k.startswith(("google", "ga4", "enrichment"))}
    off = Settings(**bare, platforms_off={"google_calendar", "ga4", "enrichment"})
    assert unsafe_settings(off, "api") == []
    kit = Settings(
        **{**REAL, "email_provider": "kit", "kit_base_url": "https://api.kit.com", "kit_access_token": "t"}
    )
    assert unsafe_settings(kit, "api") == []


@pytest.mark.parametrize("role", ["api", "router", "worker"])
def test_each_process_refuses_to_start_and_says_what_to_set(role, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_")} | {
        "JOURNEYS_ENVIRONMENT": "production",
        "JOURNEYS_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", role],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "JOURNEYS_CODEC_KEYS" in done.stderr and "JOURNEYS_DATABASE_URL" in done.stderr, done.stderr
