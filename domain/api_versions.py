"""Each platform API version the engine calls, in one place, with the date its platform stops
serving it.

A platform that retires a version answers every call made with it with an error (LinkedIn 426,
Meta a deprecation error, Klaviyo 410 or a silent move to a newer revision), and a webhook whose
follow-up read then fails loses the lead if the failure is taken for the lead's own. So each
version the settings name is listed here with its sunset as the platform published it, and
`journeys doctor` and the test suite warn 60 days before it (`near_sunset`). Moving to a newer
version: change the default here, read that version's changelog for the calls in `platforms/`,
and record where its date was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

# How long before a sunset the doctor and the suite start warning: time to read a changelog,
# move, and deploy before the platform refuses the calls.
WARN_BEFORE_SUNSET = timedelta(days=60)


@dataclass(frozen=True)
class ApiVersion:
    platform: str
    setting: str  # the `Settings` field (JOURNEYS_<SETTING>) that selects it
    version: str
    # None: the platform publishes no end date for this version (say why in `note`).
    sunset: date | None
    source: str
    note: str = ""


# The versions the engine is written against: the settings' defaults.
CURRENT: tuple[ApiVersion, ...] = (
    ApiVersion(
        platform="linkedin",
        setting="linkedin_version",
        version="202603",
        sunset=date(2027, 3, 16),
        source="https://learn.microsoft.com/en-us/linkedin/marketing/integrations/migrations",
        note="monthly versions, each served for at least a year; 202411 was sunset on 2025-11-17",
    ),
    ApiVersion(
        platform="facebook",
        setting="facebook_graph_version",
        version="v25.0",
        sunset=date(2028, 7, 29),
        source="https://developers.facebook.com/docs/graph-api/changelog/versions/",
        note="Graph API v21.0 is available until 2027-01-21",
    ),
    ApiVersion(
        platform="klaviyo",
        setting="klaviyo_revision",
        version="2026-07-15",
        sunset=date(2028, 7, 15),
        source="https://developers.klaviyo.com/en/docs/api_versioning_and_deprecation_policy",
        note="retired two years after its date (the policy); the revision of the published OpenAPI "
        "document the client is checked against (tests/specs/klaviyo/)",
    ),
    ApiVersion(
        platform="salesforce",
        setting="salesforce_api_version",
        version="v62.0",
        sunset=None,
        source="https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_versions.htm",
        note="Salesforce announces retirements a year ahead; only 21.0-30.0 have been retired",
    ),
)

# Versions known to be retired or near it, so a deployment that pins one is told.
KNOWN: dict[tuple[str, str], date] = {
    ("linkedin", "202411"): date(2025, 11, 17),
    ("linkedin", "202511"): date(2026, 11, 16),
    ("linkedin", "202601"): date(2027, 1, 15),
    ("linkedin", "202602"): date(2027, 2, 15),
    ("facebook", "v20.0"): date(2026, 9, 24),
    ("facebook", "v21.0"): date(2027, 1, 21),
    ("facebook", "v22.0"): date(2027, 5, 20),
    ("facebook", "v23.0"): date(2027, 10, 8),
    ("facebook", "v24.0"): date(2028, 2, 18),
    ("klaviyo", "2024-10-15"): date(2026, 10, 15),
    ("klaviyo", "2025-01-15"): date(2027, 1, 15),
    **{(v.platform, v.version): v.sunset for v in CURRENT if v.sunset is not None},
}


def default(setting: str) -> str:
    """The version `setting` selects unless configured otherwise."""
    return next(v.version for v in CURRENT if v.setting == setting)


def sunset_of(platform: str, version: str) -> date | None:
    """The published sunset of `version`, or, for a dated version this module does not list,
    the one the platform's policy gives it (LinkedIn: a year after its month; Klaviyo: two years
    after its date)."""
    if (platform, version) in KNOWN:
        return KNOWN[(platform, version)]
    if platform == "linkedin" and len(version) == 6 and version.isdigit():
        year, month = int(version[:4]), int(version[4:])
        if 1 <= month <= 12:
            return date(year + 1, month, 15)
    if platform == "klaviyo":
        try:
            released = date.fromisoformat(version)
        except ValueError:
            return None
        return released.replace(year=released.year + 2)
    return None


@dataclass(frozen=True)
class SunsetWarning:
    platform: str
    setting: str
    version: str
    sunset: date
    passed: bool

    def __str__(self) -> str:
        variable = f"JOURNEYS_{self.setting.upper()}"
        if self.passed:
            return (
                f"{self.platform} API version {self.version} ({variable}) was retired on "
                f"{self.sunset}: every call with it fails; move to {_current(self.platform)}"
            )
        return (
            f"{self.platform} API version {self.version} ({variable}) is retired on {self.sunset}: "
            f"move to {_current(self.platform)} before then"
        )


def _current(platform: str) -> str:
    return next((v.version for v in CURRENT if v.platform == platform), "a supported version")


def near_sunset(configured: dict[str, str], today: date) -> list[SunsetWarning]:
    """The configured versions (`{setting: version}`) retired or retiring within
    `WARN_BEFORE_SUNSET` of `today`."""
    platforms = {v.setting: v.platform for v in CURRENT}
    warnings = []
    for setting, version in configured.items():
        platform = platforms.get(setting)
        if platform is None:
            continue
        sunset = sunset_of(platform, version)
        if sunset is not None and sunset - today <= WARN_BEFORE_SUNSET:
            warnings.append(SunsetWarning(platform, setting, version, sunset, passed=sunset <= today))
    return warnings
