"""What every emulated platform shares: the call log, records, fault injection, the handler base.

A provider module defines one `ProviderHandler` subclass, decorated with `@register("name")`;
its calls arrive at `/{name}/{the platform's real path}`. A handler answers as the platform
does (status, headers, body) and marks what the call did to the platform's records with
`self.effect(...)`: the call log then tells writes that created something from replays that
found their earlier self, which is how exactly-once is checked.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

HANDLERS: dict[str, type[ProviderHandler]] = {}

# Email platforms whose recipients `POST /_engagement` plays: when the platform last sent to an
# address (None: never), and the recipient's action on that latest message. `POST /_campaign`
# plays a marketer sending a campaign from the platform's own UI.
LastSentAt = Callable[["SandboxState", str], str | None]
Engage = Callable[["SandboxState", str, str], dict[str, Any]]
SendCampaign = Callable[["SandboxState", str], dict[str, Any]]


@dataclass(frozen=True)
class EmailPlatform:
    last_sent_at: LastSentAt
    engage: Engage
    send_campaign: SendCampaign


ENGAGEMENT: dict[str, EmailPlatform] = {}

# Record tables that are an account's configuration rather than its data (the webhook endpoints
# an integration registered): `POST /_reset` keeps them, as clearing a real account's contacts
# would not unregister its integrations.
KEPT_ON_RESET: set[str] = set()


def register_engagement(
    name: str, last_sent_at: LastSentAt, engage: Engage, send_campaign: SendCampaign
) -> None:
    ENGAGEMENT[name] = EmailPlatform(last_sent_at, engage, send_campaign)


def register(name: str) -> Any:
    def decorate(cls: type[ProviderHandler]) -> type[ProviderHandler]:
        cls.name = name
        HANDLERS[name] = cls
        return cls

    return decorate


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


# Seconds between two saves of the records file.
SAVE_EVERY = 1.0


class Faults(BaseModel):
    error_rate: float = Field(0.0, ge=0, le=1, description="share of calls answered 500..503")
    rate_limit_rate: float = Field(0.0, ge=0, le=1, description="share of calls answered 429")
    retry_after_seconds: float = Field(1.0, ge=0)
    latency_ms: int = Field(0, ge=0, le=120_000)
    fail_next: int = Field(0, ge=0, description="the next N calls fail with `fail_status`")
    fail_status: int = Field(503, ge=400, le=599)
    # A write (a call that marked an effect) is applied and logged, then its answer is held this
    # long: a client timing out here had its write accepted without hearing so, the case
    # exactly-once writes must survive.
    hold_after_write_ms: int = Field(0, ge=0, le=600_000)
    # Only the next N accepted writes are held (0: every write while hold_after_write_ms is set).
    hold_next: int = Field(0, ge=0)
    # Only writes whose request body holds this text are held (a test's own lead, by its email):
    # other leads' writes in flight at the time pass.
    hold_matching: str | None = Field(None, max_length=320)
    # A share of calls answers after `timeout_ms`, longer than a client waits: half of them before
    # the platform acted (nothing written), half after (written, the answer lost on the way).
    timeout_rate: float = Field(0.0, ge=0, le=1, description="share of calls that time out")
    timeout_ms: int = Field(25_000, ge=0, le=600_000)


class SandboxState:
    def __init__(self, state_dir: Path | None, seed: int | None) -> None:
        self.state_dir = state_dir
        self.random = random.Random(seed)
        self.lock = threading.RLock()
        self.calls: list[dict[str, Any]] = []
        self.faults: dict[str, Faults] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self._saved_at = 0.0
        self._save_timer: threading.Timer | None = None
        if state_dir:
            state_dir.mkdir(parents=True, exist_ok=True)
            calls_file = state_dir / "calls.jsonl"
            if calls_file.exists():
                self.calls = [
                    json.loads(line) for line in calls_file.read_text().splitlines() if line.strip()
                ]
            records_file = state_dir / "records.json"
            if records_file.exists():
                self.records.update(json.loads(records_file.read_text()))

    def table(self, name: str) -> dict[str, Any]:
        """A provider's records of one kind, by id; created empty on first use, kept across restarts."""
        with self.lock:
            return self.records.setdefault(name, {})

    def faults_for(self, provider: str) -> Faults:
        return self.faults.setdefault(provider, Faults())

    def next_id(self, table: str, start: int = 1001) -> str:
        """Numeric ids as HubSpot and friends hand them out, increasing per table."""
        with self.lock:
            counters = self.records.setdefault("_counters", {})
            counters[table] = counters.get(table, start - 1) + 1
            return str(counters[table])

    def log(self, call: dict[str, Any]) -> None:
        with self.lock:
            call["seq"] = len(self.calls) + 1
            self.calls.append(call)
            if self.state_dir:
                with (self.state_dir / "calls.jsonl").open("a") as f:
                    f.write(json.dumps(call, default=str) + "\n")

    def save_records(self) -> None:
        """Persists the records at most once a second: writing every record on every write made
        each write cost as much as all before it (the emulator, not the engine, became the
        bottleneck of a benchmark). A write within the second is saved by a timer."""
        if not self.state_dir:
            return
        with self.lock:
            wait = SAVE_EVERY - (time.monotonic() - self._saved_at)
            if wait <= 0:
                self._write_records()
            elif self._save_timer is None:
                self._save_timer = threading.Timer(wait, self.flush_records)
                self._save_timer.daemon = True
                self._save_timer.start()

    def flush_records(self) -> None:
        with self.lock:
            if self._save_timer is not None:
                self._save_timer.cancel()
                self._save_timer = None
            if self.state_dir:
                self._write_records()

    def _write_records(self) -> None:
        assert self.state_dir is not None
        tmp = self.state_dir / "records.json.tmp"
        tmp.write_text(json.dumps(self.records, default=str))
        tmp.replace(self.state_dir / "records.json")
        self._saved_at = time.monotonic()

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            kept = {name: self.records[name] for name in KEPT_ON_RESET if name in self.records}
            # Ids keep counting: a platform never hands out an id twice, and the engine remembers
            # the records it linked (a contact id reused after a reset would name an older lead).
            counters = self.records.get("_counters", {})
            self.records.clear()
            self.records.update(kept)
            if counters:
                self.records["_counters"] = counters
            if self.state_dir:
                (self.state_dir / "calls.jsonl").unlink(missing_ok=True)
            self.flush_records()


class ProviderHandler:
    """One call to one emulated platform. Subclasses implement `answer` (sync or async)."""

    name: ClassVar[str]

    def __init__(
        self, state: SandboxState, request: Request, path: str, body: Any, call: dict[str, Any]
    ) -> None:
        self.state = state
        self.request = request
        self.path = path
        self.body = body
        self.call = call

    def answer(self) -> Response | Awaitable[Response]:
        raise NotImplementedError

    def effect(self, kind: str, object_type: str | None = None, object_id: str | None = None) -> None:
        """What the call did: `created`, `updated`, `deleted`, `sent`, or `duplicate` for a write
        that found an earlier one with the same key; reads leave no effect."""
        self.call["effect"] = kind
        if object_type:
            self.call["object_type"] = object_type
        if object_id:
            self.call["object_id"] = object_id

    @classmethod
    def fault_response(cls, status: int, retry_after: float) -> Response:
        """An injected fault, in the platform's own error shape."""
        code = "throttled" if status == 429 else "error"
        headers = {"Retry-After": f"{retry_after:g}"} if status == 429 else {}
        payload = {
            "errors": [
                {"id": str(uuid.uuid4()), "status": status, "code": code, "title": code, "detail": code}
            ]
        }
        return JSONResponse(payload, status_code=status, headers=headers)
