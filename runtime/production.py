"""Outside `dev`, the API, the router and the worker refuse to start on the embedded defaults: no
codec keys (payloads would reach Temporal in clear), a secret still holding the sandbox's
published value, a platform the deployment uses still pointing at the sandbox, or the embedded
PostgreSQL. Each problem names the variable to set, so the one reading the log can fix it.

What a deployment uses: its CRM, email platform and chat (the settings choose them); Google
Calendar, GA4 and enrichment unless turned off (`JOURNEYS_PLATFORMS_OFF`); LinkedIn and Meta lead
ads once their webhook secret is set. Secrets a deployment may leave unset (a webhook's) are not
defaults: a provider without one refuses its webhooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import SecretStr

from runtime.settings import Settings

Role = Literal["api", "router", "worker"]
DEV = "dev"


def _uses(settings: Settings) -> dict[str, bool]:
    return {
        "hubspot": settings.crm_provider == "hubspot" or settings.email_provider == "hubspot",
        "salesforce": settings.crm_provider == "salesforce",
        "klaviyo": settings.email_provider == "klaviyo",
        "kit": settings.email_provider == "kit",
        "slack": settings.chat_provider == "slack",
        "slack_webhook": settings.chat_provider == "slack_webhook",
        "google_calendar": "google_calendar" not in settings.platforms_off,
        "ga4": "ga4" not in settings.platforms_off,
        "enrichment": "enrichment" not in settings.platforms_off,
        "linkedin": settings.linkedin_client_secret is not None,
        "facebook": settings.facebook_app_secret is not None,
    }


# Each platform's secrets that default to the sandbox's values, and the URL setting that, unset,
# points the platform at the sandbox.
PLATFORM_SETTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hubspot": (("hubspot_token",), ("hubspot_base_url",)),
    "salesforce": (("salesforce_client_id", "salesforce_client_secret"), ("salesforce_base_url",)),
    "klaviyo": (("klaviyo_api_key",), ("klaviyo_base_url",)),
    "kit": (("kit_api_key",), ("kit_base_url",)),
    "slack": (("slack_bot_token",), ("slack_base_url",)),
    "slack_webhook": ((), ("slack_webhook_url",)),
    "google_calendar": (
        ("google_client_id", "google_client_secret", "google_refresh_token"),
        ("google_calendar_base_url", "google_token_url"),
    ),
    "ga4": (("ga4_api_secret",), ("ga4_base_url",)),
    "enrichment": (("enrichment_api_key",), ("enrichment_base_url",)),
    "linkedin": (("linkedin_access_token",), ("linkedin_api_url",)),
    "facebook": (("facebook_page_access_token",), ("facebook_graph_url",)),
}
# Secrets every deployment has, whatever it uses.
ALWAYS = ("outbound_webhook_secret", "consent_link_secret")
# A setting that makes another one unnecessary (Kit: an app's token instead of an API key).
INSTEAD: dict[str, Callable[[Settings], bool]] = {
    "kit_api_key": lambda s: s.kit_access_token is not None and bool(s.kit_access_token.get_secret_value()),
}


def variable(setting: str) -> str:
    return f"JOURNEYS_{setting.upper()}"


def _is_default(settings: Settings, name: str) -> bool:
    """Still the sandbox's value, or empty (an unset variable passed through as "")."""
    value, default = getattr(settings, name), Settings.model_fields[name].default
    if isinstance(value, SecretStr) and isinstance(default, SecretStr):
        return value.get_secret_value() in ("", default.get_secret_value())
    return bool(value == default)


def unsafe_settings(settings: Settings, role: Role) -> list[str]:
    """Every reason this configuration must not run outside `dev`, one per variable."""
    problems: list[str] = []
    if settings.codec_keys is None or not settings.codec_keys.get_secret_value():
        problems.append(f"{variable('codec_keys')} is unset: payloads would reach Temporal unencrypted")
    if settings.database_url is None:
        problems.append(f"{variable('database_url')} is unset: the embedded PostgreSQL is for dev only")
    if role == "api" and settings.api_key is None:
        problems.append(f"{variable('api_key')} is unset: the API would make up an admin key")
    for name in ALWAYS:
        if _is_default(settings, name):
            problems.append(f"{variable(name)} is empty or still the sandbox's published value")
    for platform, used in _uses(settings).items():
        if not used:
            continue
        secrets, urls = PLATFORM_SETTINGS[platform]
        for name in secrets:
            if _is_default(settings, name) and not (name in INSTEAD and INSTEAD[name](settings)):
                problems.append(f"{variable(name)} is empty or still the sandbox's value ({platform})")
        for name in urls:
            if not getattr(settings, name):
                problems.append(f"{variable(name)} is unset: {platform} would be the sandbox")
    return problems


def refuse_unsafe_defaults(settings: Settings, role: Role) -> None:
    """Exits (status 2) naming every variable to set, unless this is `dev` or nothing is unsafe."""
    if settings.environment == DEV:
        return
    problems = unsafe_settings(settings, role)
    if problems:
        lines = "\n  ".join(problems)
        raise SystemExit(
            f"journeys {role}: JOURNEYS_ENVIRONMENT={settings.environment} refuses to start on the "
            f"embedded defaults:\n  {lines}\n(JOURNEYS_ENVIRONMENT=dev runs on them, for development only)"
        )
