"""The optional platforms a deployment turns off (`JOURNEYS_PLATFORMS_OFF`): Google Calendar,
GA4, company enrichment. A call to one that is off is refused for good and says so (the journey
audits it and moves on; nothing is taken as written); enrichment that is off knows no company,
so account matching relies on the CRM alone."""

from __future__ import annotations

from typing import ClassVar

from platforms.errors import PermanentPlatformError
from platforms.ports import AnalyticsEvent, CalendarEvent, Firmographics, WriteResult

OPTIONAL_PLATFORMS = ("google_calendar", "ga4", "enrichment")


def _off(provider: str) -> PermanentPlatformError:
    return PermanentPlatformError(provider, f"{provider} is turned off (JOURNEYS_PLATFORMS_OFF)")


class CalendarOff:
    provider: ClassVar[str] = "google_calendar"

    async def create_event(self, event: CalendarEvent, *, idempotency_key: str) -> WriteResult:
        raise _off(self.provider)


class AnalyticsOff:
    provider: ClassVar[str] = "ga4"

    async def send_event(self, event: AnalyticsEvent, *, idempotency_key: str) -> WriteResult:
        raise _off(self.provider)


class EnrichmentOff:
    async def company(self, domain: str) -> Firmographics | None:
        return None
