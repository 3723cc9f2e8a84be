"""Platform API versions and their sunsets: the configured ones are not about to be refused."""

from datetime import UTC, date, datetime, timedelta

from domain import api_versions
from domain.api_versions import CURRENT, WARN_BEFORE_SUNSET, near_sunset, sunset_of
from runtime.settings import Settings


def test_the_settings_default_to_the_versions_listed_with_their_sunsets():
    settings = Settings()
    for version in CURRENT:
        assert getattr(settings, version.setting) == version.version, version.setting


def test_no_default_version_is_within_60_days_of_its_sunset_today():
    # Fails on purpose as a sunset nears: the day it fails, move that platform to a newer version
    # (domain/api_versions.py says how), before the platform starts refusing every call.
    today = datetime.now(UTC).date()
    configured = {v.setting: v.version for v in CURRENT}
    assert near_sunset(configured, today) == [], [str(w) for w in near_sunset(configured, today)]


def test_a_version_near_or_past_its_sunset_is_named_with_the_setting_to_change():
    configured = {
        "linkedin_version": "202411",
        "facebook_graph_version": "v21.0",
        "klaviyo_revision": "2026-07-15",
    }
    on = date(2026, 12, 3)
    warnings = {w.setting: w for w in near_sunset(configured, on)}
    assert set(warnings) == {"linkedin_version", "facebook_graph_version"}
    assert warnings["linkedin_version"].passed and warnings["linkedin_version"].sunset == date(2025, 11, 17)
    assert not warnings["facebook_graph_version"].passed  # 2027-01-21: 49 days ahead
    text = str(warnings["facebook_graph_version"])
    assert "JOURNEYS_FACEBOOK_GRAPH_VERSION" in text and "2027-01-21" in text and "v25.0" in text
    assert "retired on 2025-11-17" in str(warnings["linkedin_version"])


def test_the_warning_starts_60_days_before_the_sunset():
    sunset = date(2027, 3, 16)
    configured = {"linkedin_version": "202603"}
    assert near_sunset(configured, sunset - WARN_BEFORE_SUNSET - timedelta(days=1)) == []
    assert len(near_sunset(configured, sunset - WARN_BEFORE_SUNSET)) == 1


def test_an_unlisted_dated_version_gets_its_platforms_policy_sunset():
    assert sunset_of("linkedin", "202608") == date(2027, 8, 15)  # served a year
    assert sunset_of("klaviyo", "2026-07-15") == date(2028, 7, 15)  # retired after two years
    assert sunset_of("linkedin", "latest") is None and sunset_of("salesforce", "v62.0") is None
    assert api_versions.default("klaviyo_revision") == "2026-07-15"
