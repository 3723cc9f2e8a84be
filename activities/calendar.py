"""Calendar invites (Google Calendar) through `CalendarPort`."""

from __future__ import annotations

from temporalio import activity

from activities.contacts import lead_with_email, personalize
from activities.errors import connector_step
from domain.connectors import CalendarEventInput, WriteResult
from platforms.ports import CalendarEvent, CalendarPort
from store.health import ConnectorStatsRecorder
from store.repository import LeadStore
from store.rosters import RosterSource


class CalendarActivities:
    def __init__(
        self,
        calendar: CalendarPort,
        store: LeadStore,
        stats: ConnectorStatsRecorder | None = None,
        rosters: RosterSource | None = None,
    ) -> None:
        self._calendar = calendar
        self._store = store
        self._stats = stats
        self._rosters = rosters

    @activity.defn(name="calendar.create_event")
    async def create_event(self, data: CalendarEventInput) -> WriteResult:
        lead, email = await lead_with_email(self._store, data.lead_id)
        calendar_id, attendees = data.calendar_id, [email, *data.extra_attendees]
        if data.host_rep_id and self._rosters is not None:
            host = (await self._rosters.current()).rep(data.host_rep_id)
            if host is not None:
                calendar_id = str(host.email)
                attendees = list(dict.fromkeys([*attendees, str(host.email)]))
        event = CalendarEvent(
            calendar_id=calendar_id,
            summary=personalize(data.summary, lead),
            description=personalize(data.description, lead),
            start=data.start,
            end=data.end,
            time_zone=data.time_zone,
            attendees=attendees,
        )
        async with connector_step(self._stats, self._calendar.provider, "calendar.create_event"):
            return await self._calendar.create_event(event, idempotency_key=data.idempotency_key)

    def all(self) -> list[object]:
        return [self.create_event]
