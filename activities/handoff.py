"""The hand-off's activities: the roster's policy, assignment (persisted, never the same slot
twice), the SLA log, and the notes to reps, managers and the team queue."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contacts import personalize
from activities.errors import connector_step
from activities.owners import CrmOwnerDirectory
from domain.connectors import WriteResult
from domain.errors import NOT_FOUND
from domain.handoff import (
    AssignInput,
    Assignment,
    CrmOwnerInput,
    CrmOwnerRep,
    HandoffPolicy,
    Milestone,
    RepNotifyInput,
)
from domain.roster import LeadRouting, Roster
from domain.text_safety import slack_escape
from platforms.ports import ChatMessage, ChatPort, CrmPort, EmailMessage, EmailPort
from store.assignments import AssignmentStore
from store.db import SessionFactory
from store.handoffs import HandoffLog
from store.health import ConnectorStatsRecorder
from store.repository import LeadStore
from store.rosters import RosterSource

HEADLINES = {
    "assigned": ":rotating_light: New MQL for you: {name} ({job_title}, {company})",
    "escalated_to_you": ":rotating_light: Escalated to you: {name} ({job_title}, {company})",
    "manager_alert": ":warning: MQL not accepted in time: {name} ({company})",
    "queue": ":inbox_tray: MQL in the team queue, first to accept takes it: {name} ({company})",
}


class HandoffActivities:
    def __init__(
        self,
        sessions: SessionFactory,
        store: LeadStore,
        *,
        chat: ChatPort,
        email: EmailPort,
        crm: CrmPort,
        roster_file: Path,
        public_url: str,
        stats: ConnectorStatsRecorder | None = None,
    ) -> None:
        self._store = store
        self._assignments = AssignmentStore(sessions)
        self._log = HandoffLog(sessions)
        self._chat, self._email, self._crm = chat, email, crm
        self._rosters = RosterSource(sessions, roster_file)
        self._public_url = public_url.rstrip("/")
        self._stats = stats
        self._owners = CrmOwnerDirectory(crm)

    async def roster(self) -> Roster:
        return await self._rosters.current()

    async def _crm_owner(self, email: str) -> str | None:
        return await self._owners.owner_id(email)

    @activity.defn(name="handoff.policy")
    async def policy(self) -> HandoffPolicy:
        roster = await self.roster()
        escalation = roster.escalation
        team = roster.team()
        manager = roster.rep(team.manager_id) if team.manager_id else None
        return HandoffPolicy(
            sla=escalation.sla,
            step_timeout=escalation.step_timeout,
            chain=list(escalation.chain),
            manager_slack_id=manager.slack_user_id if manager else None,
        )

    async def _account_owner(self, account: dict[str, Any] | None, roster: Roster) -> str | None:
        """The roster rep who owns the lead's account: named by rep id in the account's traits, or
        the rep whose email is the CRM owner's of the company the account was matched to."""
        if not account:
            return None
        named = account.get("owner_rep_id") or account.get("account_owner")
        if named:
            return str(named)
        crm_owner = account.get("owner_id")
        email = await self._owners.email_of(str(crm_owner)) if crm_owner else None
        if email is None:
            return None
        rep = next((r for r in roster.reps if str(r.email).lower() == email), None)
        return rep.id if rep else None

    async def _routing(self, lead_id: str, roster: Roster) -> LeadRouting:
        lead = await self._store.get_lead(lead_id)
        if lead is None:
            raise ApplicationError(f"lead {lead_id} not found", type=NOT_FOUND, non_retryable=True)
        traits: dict[str, Any] = {**(lead.traits or {}), **(lead.custom_fields or {})}
        account = (await self._store.account(lead.account_id)) if lead.account_id else None
        merged = {**traits, **(account or {})}
        employees = merged.get("employees")
        try:
            employees = int(employees) if employees not in (None, "") else None
        except (TypeError, ValueError):
            employees = None
        # Territories are ISO country codes; a country given by name is not guessed at.
        country = str(merged.get("country") or "").strip()
        return LeadRouting(
            lead_id=lead_id,
            country=country.upper() if len(country) == 2 else None,
            employees=employees,
            account_id=lead.account_id,
            account_owner_id=await self._account_owner(account, roster),
        )

    @activity.defn(name="handoff.assign")
    async def assign(self, data: AssignInput) -> Assignment:
        roster = await self.roster()
        routing = await self._routing(data.lead_id, roster)
        record = await self._assignments.assign(
            data.handoff_id,
            data.attempt,
            roster,
            routing,
            datetime.now(UTC),
            exclude=set(data.exclude),
        )
        team = roster.team(routing.team)
        rep = roster.rep(record.rep_id) if record.rep_id else None
        manager = roster.manager_of(rep.id, team.id) if rep else None
        return Assignment(
            rep_id=rep.id if rep else None,
            rep_name=rep.name if rep else None,
            slack_user_id=rep.slack_user_id if rep else None,
            manager_id=manager.id if manager else team.manager_id,
            manager_slack_id=manager.slack_user_id if manager else None,
            crm_owner_id=await self._crm_owner(rep.email) if rep else None,
            team_id=team.id,
            queue_channel=team.queue_slack_channel,
            team_reps=list(team.reps),
            queue=rep is None,
            reason=record.reason,
        )

    @activity.defn(name="handoff.release")
    async def release(self, data: AssignInput) -> None:
        await self._assignments.release(data.handoff_id, datetime.now(UTC))

    @activity.defn(name="handoff.record")
    async def record(self, milestone: Milestone) -> None:
        await self._log.record(milestone)
        if milestone.kind == "accepted" and milestone.rep_id:
            await self._assignments.accept(milestone.handoff_id, milestone.rep_id, milestone.at)

    @activity.defn(name="notify.rep")
    async def notify_rep(self, data: RepNotifyInput) -> WriteResult:
        """Slack (the rep's DM, the manager, or the team channel), and an email to a rep."""
        lead = await self._store.get_lead(data.lead_id)
        link = f"{self._public_url}/v1/leads/{data.lead_id}"
        accept = f"POST {self._public_url}/v1/handoffs/{data.handoff_id}/accept"
        why = "; ".join(data.reasons) or "MQL"
        # The lead's name in Slack is escaped (no mentions or links of its making); in the
        # email's subject it is one line.
        text = personalize(HEADLINES[data.kind], lead, slack_escape)
        subject = personalize(HEADLINES[data.kind], lead)
        waiting = f" Waiting {data.minutes_waiting:g} min." if data.minutes_waiting >= 0.1 else ""
        score = f"Score {data.score} ({data.score_band})"
        body = "\n".join((text, f"{score}. Why: {why}.{waiting}", f"Lead: {link}", f"Accept: {accept}"))

        def mrkdwn(value: str) -> dict[str, str]:
            return {"type": "mrkdwn", "text": value}

        blocks = [
            {"type": "section", "text": mrkdwn(f"*{text}*")},
            {"type": "section", "text": mrkdwn(f"{score}. {why}")},
            {"type": "context", "elements": [mrkdwn(f"<{link}|Open the lead> · {accept}")]},
        ]
        async with connector_step(self._stats, self._chat.provider, "notify.rep"):
            posted = await self._chat.post_message(
                ChatMessage(channel=data.slack_channel, text=body, blocks=blocks),
                idempotency_key=f"{data.idempotency_key}:slack",
            )
        rep = (await self.roster()).rep(data.rep_id) if data.rep_id else None
        if rep is not None and data.kind in ("assigned", "escalated_to_you"):
            async with connector_step(self._stats, self._email.provider, "notify.rep_email"):
                await self._email.send_email(
                    EmailMessage(
                        to=rep.email,
                        template_id="rep_mql_alert",
                        subject=subject,
                        variables={"lead_url": link, "accept": accept, "score": data.score, "why": why},
                    ),
                    idempotency_key=f"{data.idempotency_key}:email",
                )
        return posted

    @activity.defn(name="handoff.rep_for_crm_owner")
    async def rep_for_crm_owner(self, data: CrmOwnerInput) -> CrmOwnerRep:
        """The roster rep whose email is this CRM owner's; none when the owner is not on the
        roster (or the CRM's owners cannot be read now)."""
        email = await self._owners.email_of(data.crm_owner_id)
        if email is None:
            return CrmOwnerRep()
        roster = await self.roster()
        rep = next((r for r in roster.reps if str(r.email).lower() == email), None)
        return CrmOwnerRep(rep_id=rep.id if rep else None)

    def all(self) -> list[object]:
        return [self.policy, self.assign, self.release, self.record, self.notify_rep, self.rep_for_crm_owner]
