"""Recording events durably, resolving who they belong to, and queueing them for their journeys.

Everything for one request happens in one transaction: the events, the identities they reveal,
the leads they create or merge, and the outbox rows that will signal the journeys. Either all of
it is committed (and the API may answer 2xx) or none of it is.

The router is woken after the commit, not from inside the transaction: a transaction that sends a
NOTIFY holds PostgreSQL's one notification lock from its commit until its WAL is flushed, so
every ingest commit would wait for the flush of the one before it and PostgreSQL could not flush
concurrent commits together (docs/performance.md, "the notification lock").
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.events import IncomingEvent
from domain.forms import PROFILE_FIELDS
from domain.ids import email_hash, lead_id_for_email, lead_id_for_user, lead_workflow_id
from domain.lead import EVENTS_SIGNAL, MERGED_SIGNAL, LeadMerged, LeadWorkflowInput
from store.db import SessionFactory, asyncpg_dsn
from store.models import Account, Event, FormSubmission, Identity, Lead, OutboxMessage

log = logging.getLogger(__name__)

LEAD_SIGNAL = "lead.signal"
OUTBOX_CHANNEL = "journeys_outbox"
BACKFILL_LIMIT = 1000


@dataclass(frozen=True)
class RecordResult:
    event_id: str
    lead_id: str | None
    duplicate: bool


def signal_message(
    lead_id: str, signal: str, argument: dict[str, Any], hashed: str | None, trace: dict[str, str]
) -> OutboxMessage:
    return OutboxMessage(
        workflow_id=lead_workflow_id(lead_id),
        kind=LEAD_SIGNAL,
        payload={
            "input": LeadWorkflowInput(lead_id=lead_id, email_hash=hashed).model_dump(mode="json"),
            "signal": signal,
            "argument": argument,
            # The request's trace context: the router continues the same trace when it delivers.
            "trace": trace,
        },
    )


async def _select_in(
    session: AsyncSession, columns: tuple[Any, ...], key: tuple[Any, ...], keys: list[tuple[str, str]]
) -> list[Any]:
    """Rows whose `key` columns are among `keys`, asked 500 keys at a time."""
    rows: list[Any] = []
    for start in range(0, len(keys), 500):
        result = await session.execute(select(*columns).where(tuple_(*key).in_(keys[start : start + 500])))
        rows.extend(result.all())
    return rows


Identities = dict[tuple[str, str], "str | None"]


def wanted_identities(events: list[IncomingEvent]) -> set[tuple[str, str]]:
    return {
        (kind, value)
        for event in events
        for kind, value in (
            ("user", event.user_id),
            ("anonymous", event.anonymous_id),
            ("email", event.email),
            ("user", event.previous_id),
            ("anonymous", event.previous_id),
            *event.external_ids.items(),
            *event.retired_ids,
        )
        if value is not None
    }


def changes_identity_or_profile(event: IncomingEvent) -> bool:
    return bool(
        event.email
        or event.previous_id
        or event.group_id
        or event.submission is not None
        or event.profile
        or event.traits
        or event.consent
        or event.external_ids
        or event.retired_ids
    )


def is_simple(event: IncomingEvent, identities: Identities) -> bool:
    """Changes no identity and no profile: its lead (or its being anonymous) is already known."""
    if changes_identity_or_profile(event):
        return False
    user = identities.get(("user", event.user_id)) if event.user_id else None
    anonymous = identities.get(("anonymous", event.anonymous_id)) if event.anonymous_id else None
    if event.user_id:
        return user is not None and (event.anonymous_id is None or anonymous == user)
    return event.anonymous_id is not None


def known_lead(event: IncomingEvent, identities: Identities) -> str | None:
    if event.user_id:
        return identities.get(("user", event.user_id))
    return identities.get(("anonymous", event.anonymous_id)) if event.anonymous_id else None


class _Transaction:
    def __init__(self, session: AsyncSession, trace: dict[str, str]) -> None:
        self.session = session
        self.trace = trace
        self.identities: dict[tuple[str, str], str | None] = {}
        self.leads_known: set[str] = set()
        self.outbox: list[OutboxMessage] = []

    async def prefetch(self, events: list[IncomingEvent]) -> None:
        """Every identity a request names, in one query."""
        wanted = wanted_identities(events) - self.identities.keys()
        if not wanted:
            return
        for key in wanted:
            self.identities[key] = None
        columns = (Identity.kind, Identity.value, Identity.lead_id)
        for kind, value, lead_id in await _select_in(self.session, columns, columns[:2], list(wanted)):
            self.identities[(kind, value)] = lead_id

    async def identity(self, kind: str, value: str | None) -> str | None:
        if value is None:
            return None
        key = (kind, value)
        if key not in self.identities:
            self.identities[key] = await self.session.scalar(
                select(Identity.lead_id).where(Identity.kind == kind, Identity.value == value)
            )
        return self.identities[key]

    async def ensure_lead(self, lead_id: str, email: str | None) -> None:
        if lead_id in self.leads_known:
            return
        await self.session.execute(
            insert(Lead)
            .values(
                lead_id=lead_id,
                email=email,
                email_hash=email_hash(email) if email else None,
                consent=False,
                custom_fields={},
                traits={},
            )
            .on_conflict_do_nothing(index_elements=[Lead.lead_id])
        )
        self.leads_known.add(lead_id)

    async def link(self, kind: str, value: str, lead_id: str) -> None:
        await self.session.execute(
            insert(Identity).values(kind=kind, value=value, lead_id=lead_id).on_conflict_do_nothing()
        )
        self.identities[(kind, value)] = lead_id

    async def resolve(self, event: IncomingEvent) -> str | None:
        """Who the event belongs to: by email first, then userId, then a known anonymousId."""
        lead_id: str | None = None
        if event.email:
            lead_id = await self.identity("email", event.email) or lead_id_for_email(event.email)
            await self.ensure_lead(lead_id, event.email)
            await self.link("email", event.email, lead_id)
        known_user = await self.identity("user", event.user_id)
        if lead_id is None and event.user_id:
            lead_id = known_user or lead_id_for_user(event.user_id)
            await self.ensure_lead(lead_id, None)
        known_anonymous = await self.identity("anonymous", event.anonymous_id)
        identified = lead_id is not None
        if lead_id is None:
            lead_id = known_anonymous
        for kind, value in event.external_ids.items():
            known = await self.identity(kind, value)
            if lead_id is None:
                lead_id = known
            elif known is None:
                await self.link(kind, value, lead_id)
        if event.retired_ids:
            lead_id = await self.retire(event, lead_id)
        if not identified or lead_id is None:
            return lead_id
        if event.user_id:
            if known_user is None:
                await self.link("user", event.user_id, lead_id)
            elif known_user != lead_id:
                await self.merge(known_user, lead_id)
        if event.anonymous_id:
            if known_anonymous is None:
                await self.link("anonymous", event.anonymous_id, lead_id)
                await self.backfill_anonymous(event.anonymous_id, lead_id)
            elif known_anonymous != lead_id and not await self.has_email(known_anonymous):
                # A visitor known only by this browser turns out to be this lead.
                await self.merge(known_anonymous, lead_id)
        return lead_id

    async def retire(self, event: IncomingEvent, lead_id: str | None) -> str | None:
        """Records the platform merged away or deleted: the lead they were linked to is the event's
        (a platform's merge of two records linked to two leads says they are one person: the
        leads are merged too), the record left takes their place, and their links go."""
        for kind, value in event.retired_ids:
            known = await self.identity(kind, value)
            if known is None:
                continue
            if lead_id is None:
                lead_id = known
            elif known != lead_id:
                await self.merge(known, lead_id)
        if lead_id is not None:
            for kind, value in event.external_ids.items():
                if await self.identity(kind, value) is None:
                    await self.link(kind, value, lead_id)
        for kind, value in event.retired_ids:
            await self.session.execute(delete(Identity).where(Identity.kind == kind, Identity.value == value))
            self.identities[(kind, value)] = None
        return lead_id

    async def has_email(self, lead_id: str) -> bool:
        return bool(await self.session.scalar(select(Lead.email).where(Lead.lead_id == lead_id)))

    async def alias(self, previous_id: str, user_id: str) -> str:
        """Segment's alias: `previousId` (an anonymousId or an old userId) is `userId`."""
        target = await self.identity("user", user_id)
        if target is None:
            target = lead_id_for_user(user_id)
            await self.ensure_lead(target, None)
            await self.link("user", user_id, target)
        for kind in ("user", "anonymous"):
            known = await self.identity(kind, previous_id)
            if known is not None and known != target:
                await self.merge(known, target)
        if await self.identity("anonymous", previous_id) is None:
            await self.link("anonymous", previous_id, target)
            await self.backfill_anonymous(previous_id, target)
        return target

    async def backfill_anonymous(self, anonymous_id: str, lead_id: str) -> None:
        """The visitor's earlier page views now count toward the lead: link them and route them."""
        rows = await self.session.execute(
            update(Event)
            .where(
                Event.anonymous_id == anonymous_id,
                Event.lead_id.is_(None),
                Event.event_id.in_(
                    select(Event.event_id)
                    .where(Event.anonymous_id == anonymous_id, Event.lead_id.is_(None))
                    .limit(BACKFILL_LIMIT)
                    .scalar_subquery()
                ),
            )
            .values(lead_id=lead_id)
            .returning(Event.lead_event)
        )
        for (lead_event,) in rows:
            self.outbox.append(
                signal_message(lead_id, EVENTS_SIGNAL, {"events": [lead_event]}, None, self.trace)
            )

    async def merge(self, source: str, target: str) -> None:
        """Two leads are one person: the target takes the source's ids, events and traits."""
        await self.ensure_lead(target, None)
        await self.session.execute(update(Identity).where(Identity.lead_id == source).values(lead_id=target))
        for key, value in list(self.identities.items()):
            if value == source:
                self.identities[key] = target
        moved = await self.session.execute(
            update(Event).where(Event.lead_id == source).values(lead_id=target).returning(Event.lead_event)
        )
        events = [row[0] for row in moved]
        await self.session.execute(
            update(FormSubmission).where(FormSubmission.lead_id == source).values(lead_id=target)
        )
        source_traits = await self.session.scalar(select(Lead.traits).where(Lead.lead_id == source)) or {}
        target_traits = await self.session.scalar(select(Lead.traits).where(Lead.lead_id == target)) or {}
        await self.session.execute(
            update(Lead).where(Lead.lead_id == target).values(traits={**source_traits, **target_traits})
        )
        await self.session.execute(update(Lead).where(Lead.lead_id == source).values(merged_into=target))
        for start in range(0, len(events), 100):
            chunk = events[start : start + 100]
            self.outbox.append(
                signal_message(
                    target, EVENTS_SIGNAL, {"events": chunk, "merged_from": source}, None, self.trace
                )
            )
        self.outbox.append(
            signal_message(
                source,
                MERGED_SIGNAL,
                LeadMerged(into_lead_id=target).model_dump(mode="json"),
                None,
                self.trace,
            )
        )

    async def update_profile(self, lead_id: str, event: IncomingEvent) -> None:
        values: dict[str, Any] = {"updated_at": func.now()}
        for column in PROFILE_FIELDS:
            if event.profile.get(column) is not None:
                values[column] = event.profile[column]
        if event.traits:
            values["traits"] = Lead.traits.op("||")(event.traits)
        if event.consent:
            values["consent"] = True
            # Where and when: an unsubscribe after it withdraws it (domain.send_gate).
            values["consent_at"] = event.lead_event.occurred_at
            values["consent_source"] = (
                f"{event.source}:{event.lead_event.name or event.lead_event.type.value}"[:255]
            )
        if event.group_id:
            values["account_id"] = event.group_id
        if len(values) > 1:
            await self.session.execute(update(Lead).where(Lead.lead_id == lead_id).values(**values))

    async def upsert_account(self, group_id: str, traits: dict[str, Any]) -> None:
        await self.session.execute(
            insert(Account)
            .values(account_id=group_id, traits=traits)
            .on_conflict_do_update(
                index_elements=[Account.account_id],
                set_={
                    "traits": Account.traits.op("||")(insert(Account).excluded.traits),
                    "updated_at": func.now(),
                },
            )
        )


class RouterDoorbell:
    """Wakes the router after commits: one `NOTIFY` for a burst of them, sent on a connection of its
    own outside any transaction (so it holds the notification lock for no flush). The request does
    not wait for it, and a lost ring costs at most the router's one-second sweep."""

    def __init__(self, database_url: str) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._connection: asyncpg.Connection | None = None
        self._ringing: asyncio.Task[None] | None = None
        self._again = False

    def ring(self) -> None:
        if self._ringing is not None and not self._ringing.done():
            self._again = True  # the ring in flight may have been sent before this commit
            return
        self._ringing = asyncio.get_running_loop().create_task(self._notify(), name="router-doorbell")

    async def _notify(self) -> None:
        while True:
            self._again = False
            try:
                if self._connection is None or self._connection.is_closed():
                    self._connection = await asyncpg.connect(self._dsn)
                await self._connection.execute(f"NOTIFY {OUTBOX_CHANNEL}")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self._connection = None
                log.debug("router not woken (%s); its sweep will find the events", exc)
            if not self._again:
                return

    async def close(self) -> None:
        if self._ringing is not None:
            await self._ringing
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


# Known visitors' events in one statement: the events, and for each lead the outbox rows (a signal
# of up to 100 events) for the ones that were new. `$1` the rows in request order, `$2` each
# lead's workflow id and input, `$3` the outbox kind, `$4` the signal, `$5` the trace context.
_RECORD_KNOWN = """
WITH incoming AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
        ord int, event_id text, source text, message_id text, type text, name text,
        anonymous_id text, user_id text, lead_id text, occurred_at timestamptz,
        received_at timestamptz, payload jsonb, lead_event jsonb)
), inserted AS (
    INSERT INTO events (event_id, source, message_id, type, name, anonymous_id, user_id, lead_id,
                        occurred_at, received_at, payload, lead_event)
    SELECT event_id, source, message_id, type, name, anonymous_id, user_id, lead_id,
           occurred_at, received_at, payload, lead_event
    FROM incoming ORDER BY ord
    ON CONFLICT ON CONSTRAINT uq_events_source_message DO NOTHING
    RETURNING event_id
), fresh AS (
    SELECT ord, lead_id, lead_event,
           (row_number() OVER (PARTITION BY lead_id ORDER BY ord) - 1) / 100 AS chunk
    FROM incoming JOIN inserted USING (event_id)
    WHERE lead_id IS NOT NULL
), queued AS (
    INSERT INTO outbox (workflow_id, kind, payload, attempts)
    SELECT $2::jsonb -> lead_id ->> 'workflow_id', $3::text,
           jsonb_build_object(
               'input', $2::jsonb -> lead_id -> 'input',
               'signal', $4::text,
               'argument', jsonb_build_object('events', jsonb_agg(lead_event ORDER BY ord)),
               'trace', $5::jsonb),
           0
    FROM fresh GROUP BY lead_id, chunk
)
SELECT event_id FROM inserted
"""


class KnownVisitorPath:
    """Records a request whose events all belong to visitors already known (most traffic: tracks
    and pages) in two round trips and no transaction block: the identities it names, then one
    statement that is its own transaction. Anything else, and any error, goes the general way,
    which then answers as it always does."""

    def __init__(self, database_url: str, max_connections: int = 20) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._max = max_connections
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self.requests_recorded = 0  # how many requests took this path (tests check it did)

    async def _connections(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    # Half kept open: a burst should not wait for new backends to start.
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=self._max // 2, max_size=self._max, reset=_nothing_to_reset
                    )
        return self._pool

    async def record(
        self, events: list[IncomingEvent], trace: dict[str, str]
    ) -> tuple[list[RecordResult], bool] | None:
        """The results and whether any outbox row was written; None when the general path must
        record these events."""
        if any(changes_identity_or_profile(event) for event in events):
            return None
        try:
            pool = await self._connections()
            async with pool.acquire() as connection:
                recorded = await self._record(connection, events, trace)
            self.requests_recorded += recorded is not None
            return recorded
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("known-visitor path declined (%s); the general path records", exc)
            return None

    async def _record(
        self, connection: asyncpg.Connection, events: list[IncomingEvent], trace: dict[str, str]
    ) -> tuple[list[RecordResult], bool] | None:
        wanted = wanted_identities(events)
        identities: Identities = dict.fromkeys(wanted)
        rows = await _fetch_pairs(
            connection, "SELECT kind, value, lead_id FROM identities WHERE (kind, value)", wanted
        )
        identities.update({(row["kind"], row["value"]): row["lead_id"] for row in rows})
        if not all(is_simple(event, identities) for event in events):
            return None
        # Each message's row, from its first occurrence in the request (`ord`): a repeat is recorded once.
        first: dict[tuple[str, str], dict[str, Any]] = {}
        inputs: dict[str, dict[str, Any]] = {}
        for index, event in enumerate(events):
            key = (event.source, event.message_id)
            if key in first:
                continue
            lead_id = known_lead(event, identities)
            row = _event_row(event, lead_id, event.lead_event.model_dump(mode="json"))
            first[key] = {
                **row,
                "ord": index,
                "occurred_at": row["occurred_at"].isoformat(),
                "received_at": row["received_at"].isoformat(),
            }
            if lead_id is not None and lead_id not in inputs:
                inputs[lead_id] = {
                    "workflow_id": lead_workflow_id(lead_id),
                    "input": LeadWorkflowInput(lead_id=lead_id).model_dump(mode="json"),
                }
        rows_in = list(first.values())
        inserted = {
            row["event_id"]
            for row in await connection.fetch(
                _RECORD_KNOWN,
                json.dumps(rows_in),
                json.dumps(inputs),
                LEAD_SIGNAL,
                EVENTS_SIGNAL,
                json.dumps(trace),
            )
        }
        duplicates = {key for key, row in first.items() if row["event_id"] not in inserted}
        earlier = {
            (row["source"], row["message_id"]): (row["event_id"], row["lead_id"])
            for row in await _fetch_pairs(
                connection,
                "SELECT source, message_id, event_id, lead_id FROM events WHERE (source, message_id)",
                duplicates,
            )
        }
        results: list[RecordResult] = []
        for index, event in enumerate(events):
            key = (event.source, event.message_id)
            row = first[key]
            if row["event_id"] in inserted:
                results.append(RecordResult(row["event_id"], row["lead_id"], duplicate=index != row["ord"]))
            else:
                known_event, known_lead_id = earlier.get(key, (row["event_id"], row["lead_id"]))
                results.append(RecordResult(known_event, known_lead_id, duplicate=True))
        queued = any(row["lead_id"] is not None and row["event_id"] in inserted for row in rows_in)
        return results, queued

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _fetch_pairs(
    connection: asyncpg.Connection, query: str, pairs: set[tuple[str, str]]
) -> list[asyncpg.Record]:
    """`query` ends at `WHERE (a, b)`: the rows whose pair is among `pairs`, in one round trip
    (the pairs sent as two arrays); none asked, none fetched."""
    if not pairs:
        return []
    firsts, seconds = zip(*pairs, strict=True)
    return await connection.fetch(
        f"{query} IN (SELECT * FROM unnest($1::text[], $2::text[]))", list(firsts), list(seconds)
    )


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    """This path's statements are their own transactions and set no session state (no LISTEN, no
    SET, no advisory lock), so a returned connection needs none of the default reset's round trip."""


class IngestStore:
    def __init__(
        self, sessions: SessionFactory, database_url: str, *, fast_path_connections: int = 20
    ) -> None:
        self._sessions = sessions
        self.doorbell = RouterDoorbell(database_url)
        self.known_visitors = KnownVisitorPath(database_url, max_connections=fast_path_connections)

    async def close(self) -> None:
        await self.doorbell.close()
        await self.known_visitors.close()

    async def record(
        self, events: list[IncomingEvent], *, notify: bool = True, trace: dict[str, str] | None = None
    ) -> list[RecordResult]:
        """`notify=False` is for tests: the router is not woken, as if the ring were lost."""
        quick = await self.known_visitors.record(events, trace or {})
        if quick is not None:
            results, queued = quick
            if notify and queued:
                self.doorbell.ring()
            return results
        for attempt in range(3):
            try:
                async with self._sessions.begin() as session:
                    tx = _Transaction(session, trace or {})
                    results = await self._record(tx, events)
                    session.add_all(tx.outbox)
                    await session.flush()
                if notify and tx.outbox:
                    self.doorbell.ring()
                return results
            except IntegrityError:
                # A concurrent request took a unique key first (the same message, a new identity):
                # the retry sees its commit and takes the duplicate path.
                if attempt == 2:
                    raise
            except DBAPIError as exc:
                # A connection from before a PostgreSQL restart (the pool is not pinged): the
                # pool is now invalidated whole, and the retry takes a fresh connection.
                if not exc.connection_invalidated or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _record(self, tx: _Transaction, events: list[IncomingEvent]) -> list[RecordResult]:
        """Two passes: events that reveal or change identities one by one, in order; then the rest,
        whose lead is already known, in one bulk insert. Most traffic (tracks and pages of known
        visitors) takes three statements per request, whatever the batch size."""
        seen = await self._existing(tx, events)
        await tx.prefetch(events)
        results: list[RecordResult | None] = [None] * len(events)
        resolved: list[tuple[int, IncomingEvent, str | None]] = []
        simple: list[int] = []
        for index, event in enumerate(events):
            key = (event.source, event.message_id)
            if key in seen:
                first_event, first_lead = seen[key]
                results[index] = RecordResult(first_event, first_lead, duplicate=True)
                continue
            seen[key] = (event.lead_event.event_id, None)
            if is_simple(event, tx.identities):
                simple.append(index)
            else:
                resolved.append((index, event, await self._resolve(tx, event)))
        resolved += [(index, events[index], known_lead(events[index], tx.identities)) for index in simple]
        if not resolved:
            return [r for r in results if r is not None]

        dumped = {
            event.lead_event.event_id: event.lead_event.model_dump(mode="json") for _, event, _ in resolved
        }
        # executemany with RETURNING: one compiled statement, cached, sent as multi-row batches.
        inserted = set(
            await tx.session.scalars(
                insert(Event)
                .on_conflict_do_nothing(constraint="uq_events_source_message")
                .returning(Event.event_id),
                [
                    _event_row(event, lead_id, dumped[event.lead_event.event_id])
                    for _, event, lead_id in resolved
                ],
            )
        )
        by_lead: dict[str, list[IncomingEvent]] = {}
        for index, event, lead_id in resolved:
            fresh = event.lead_event.event_id in inserted
            # Not inserted: a concurrent request recorded the same message first.
            results[index] = RecordResult(event.lead_event.event_id, lead_id, duplicate=not fresh)
            if fresh and lead_id is not None:
                by_lead.setdefault(lead_id, []).append(event)
        for lead_id, lead_events in by_lead.items():
            hashed = next((email_hash(e.email) for e in lead_events if e.email), None)
            for start in range(0, len(lead_events), 100):
                chunk = [dumped[e.lead_event.event_id] for e in lead_events[start : start + 100]]
                tx.outbox.append(signal_message(lead_id, EVENTS_SIGNAL, {"events": chunk}, hashed, tx.trace))
        return [r for r in results if r is not None]

    async def _existing(
        self, tx: _Transaction, events: list[IncomingEvent]
    ) -> dict[tuple[str, str], tuple[str, str | None]]:
        keys = list({(e.source, e.message_id) for e in events})
        columns = (Event.source, Event.message_id, Event.event_id, Event.lead_id)
        rows = await _select_in(tx.session, columns, columns[:2], keys)
        return {(source, message_id): (event_id, lead_id) for source, message_id, event_id, lead_id in rows}

    async def _resolve(self, tx: _Transaction, event: IncomingEvent) -> str | None:
        lead_id: str | None
        if event.previous_id and event.user_id:
            lead_id = await tx.alias(event.previous_id, event.user_id)
        else:
            lead_id = await tx.resolve(event)
        if event.group_id and event.group_traits is not None:
            await tx.upsert_account(event.group_id, event.group_traits)
        if lead_id is not None:
            await tx.update_profile(lead_id, event)
        if event.submission is not None and lead_id is not None:
            tx.session.add(FormSubmission(lead_id=lead_id, **event.submission))
            await tx.session.flush()
        return lead_id


def _event_row(event: IncomingEvent, lead_id: str | None, lead_event: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": event.lead_event.event_id,
        "source": event.source,
        "message_id": event.message_id,
        "type": event.lead_event.type.value,
        "name": event.lead_event.name,
        "anonymous_id": event.anonymous_id,
        "user_id": event.user_id,
        "lead_id": lead_id,
        "occurred_at": event.lead_event.occurred_at,
        "received_at": event.received_at,
        "payload": event.payload,
        "lead_event": lead_event,
    }
