"""What the qualify journeys need from outside the workflow: the scoring rules and sequences
(data files marketing ops edit), the lead's firmographic facts, and places under the frequency cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.account_match import AccountResolver
from domain.connectors import SendReservation, SendReservationInput
from domain.errors import INVALID_CONFIG, NOT_FOUND
from domain.qualify import Enrollable, LeadFacts, LeadFactsInput, SequencesForTrigger
from domain.scoring import FirmographicProfile, ScoringConfig, assess_fit, load_scoring
from domain.sequences import FrequencyCap, SequenceDefinition, load_sequences
from domain.timezones import inferred_timezone
from platforms.errors import PlatformError
from store.db import SessionFactory
from store.models import Account, Event, Lead
from store.sends import SendLedger

# A lead that matched no account is looked up again after this (the CRM or the provider may know
# its company by then).
MATCH_RETRY = timedelta(days=1)


class _FileCache:
    """Rereads a data file (or folder) when it changes, so a change applies without a restart."""

    def __init__(self, path: Path, load: Any) -> None:
        self._path, self._load = path, load
        self._stamp: float | None = None
        self._value: Any = None

    def get(self) -> Any:
        files = sorted(self._path.glob("*.toml")) if self._path.is_dir() else [self._path]
        stamp = max((f.stat().st_mtime for f in files), default=0.0) + len(files)
        if self._stamp != stamp:
            self._value, self._stamp = self._load(self._path), stamp
        return self._value


def _number(value: Any) -> int | None:
    try:
        return int(str(value).replace(",", "").strip()) if value not in (None, "") else None
    except ValueError:
        return None


class QualifyActivities:
    def __init__(
        self,
        sessions: SessionFactory,
        *,
        scoring_file: Path,
        sequences_dir: Path,
        frequency_cap: FrequencyCap | None = None,
        frequency_caps: dict[str, FrequencyCap] | None = None,
        accounts: AccountResolver | None = None,
    ) -> None:
        """`accounts` finds the account of a lead that has none (at most once a day per lead)."""
        self._sessions = sessions
        self._accounts = accounts
        self._frequency_cap = frequency_cap or FrequencyCap()
        self._frequency_caps = frequency_caps or {}
        self._ledger = SendLedger(sessions)
        self._scoring = _FileCache(scoring_file, load_scoring)
        self._sequences = _FileCache(sequences_dir, load_sequences)

    def scoring_config(self) -> ScoringConfig:
        config: ScoringConfig = self._scoring.get()
        return config

    @activity.defn(name="scoring.config")
    async def load_scoring_config(self) -> ScoringConfig:
        """The scoring rules in force: a lead's run takes them when it starts or continues as new."""
        try:
            return self.scoring_config()
        except ValueError as exc:
            raise ApplicationError(str(exc), type=INVALID_CONFIG, non_retryable=True) from exc

    @activity.defn(name="sequences.for_trigger")
    async def sequences_for_trigger(self, query: SequencesForTrigger) -> Enrollable:
        """Snapshots of the sequences (latest versions) this trigger enrolls a lead in."""
        catalog: dict[str, SequenceDefinition] = self._sequences.get()
        found = []
        for sequence in catalog.values():
            if query.sequence_id is not None:
                if sequence.id == query.sequence_id:
                    found.append(sequence)
                continue
            trigger = sequence.trigger
            if trigger.kind != query.kind:
                continue
            if trigger.form_id and trigger.form_id != query.form_id:
                continue
            if trigger.topic and (query.topic or "").lower() != trigger.topic.lower():
                continue
            found.append(sequence)
        return Enrollable(
            sequences=sorted(found, key=lambda s: s.id),
            frequency_cap=self._frequency_cap,
            frequency_caps=self._frequency_caps,
        )

    @activity.defn(name="leads.facts")
    async def lead_facts(self, data: LeadFactsInput) -> LeadFacts:
        """ICP fit and the facts journeys branch on, without a name or an address in them."""
        await self._match_account(data.lead_id)
        async with self._sessions() as session:
            lead = await session.get(Lead, data.lead_id)
            if lead is None:
                raise ApplicationError(f"lead {data.lead_id} not found", type=NOT_FOUND, non_retryable=True)
            account = await session.get(Account, lead.account_id) if lead.account_id else None
            timezone = (
                await session.execute(
                    select(Event.payload["context"]["timezone"].astext)
                    .where(
                        Event.lead_id == lead.lead_id, Event.payload["context"]["timezone"].astext.isnot(None)
                    )
                    .order_by(Event.occurred_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        sources = [lead.custom_fields or {}, lead.traits or {}, (account.traits if account else None) or {}]

        def first(*names: str) -> Any:
            for source in sources:
                for name in names:
                    if source.get(name) not in (None, ""):
                        return source[name]
            return None

        address = (lead.traits or {}).get("address")
        country = first("country") or (address.get("country") if isinstance(address, dict) else None)
        profile = FirmographicProfile(
            email_domain=lead.email.rsplit("@", 1)[-1].lower() if lead.email else None,
            industry=first("industry"),
            employees=_number(first("employees", "company_size", "employee_count")),
            job_title=lead.job_title or first("title", "job_title"),
            country=str(country).upper()[:2] if country else None,
        )
        fit = assess_fit(self.scoring_config(), profile)
        return LeadFacts(
            fit=fit,
            # Given (the browser's zone, a trait), else inferred from the phone or the country.
            timezone=timezone or first("timezone") or inferred_timezone(profile.country, lead.phone),
            country=profile.country,
            lead_source=lead.lead_source,
            consent=lead.consent,
        )

    async def _match_account(self, lead_id: str) -> None:
        """Gives a lead without an account the one the CRM (or enrichment) knows it by, with how it
        matched; a lead that matched none is tried again a day later. A platform fault leaves the
        lead as it was: its facts are assessed without the account, and the next assessment tries."""
        if self._accounts is None:
            return
        async with self._sessions() as session:
            lead = await session.get(Lead, lead_id)
            if lead is None or lead.account_id is not None:
                return
            tried = (lead.traits or {}).get("account_match") or {}
            email, company = lead.email, lead.company
        now = datetime.now(UTC)
        if tried.get("at") and now - datetime.fromisoformat(tried["at"]) < MATCH_RETRY:
            return
        try:
            resolved = await self._accounts.resolve(email, company)
        except PlatformError as exc:
            activity.logger.warning("account matching skipped: %s", type(exc).__name__)
            return
        match = {**(resolved.match if resolved else {"by": None}), "at": now.isoformat()}
        async with self._sessions.begin() as session:
            values: dict[str, Any] = {"traits": Lead.traits.op("||")({"account_match": match})}
            if resolved is not None:
                await session.execute(
                    insert(Account)
                    .values(account_id=resolved.account_id, traits=resolved.traits)
                    .on_conflict_do_update(
                        index_elements=[Account.account_id],
                        set_={"traits": Account.traits.op("||")(insert(Account).excluded.traits)},
                    )
                )
                values["account_id"] = resolved.account_id
            await session.execute(
                update(Lead).where(Lead.lead_id == lead_id, Lead.account_id.is_(None)).values(**values)
            )

    @activity.defn(name="sends.reserve")
    async def reserve_send(self, data: SendReservationInput) -> SendReservation:
        return await self._ledger.reserve(data)

    def all(self) -> list[object]:
        return [self.load_scoring_config, self.sequences_for_trigger, self.lead_facts, self.reserve_send]
