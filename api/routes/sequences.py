"""Nurture sequences for marketing ops: the ones loaded, and a preview of one for a sample lead.

The preview runs the real nurture workflow on Temporal's time-skipping test server. The API may not
import `workers` or `workflows`, so it runs `journeys simulate ... --json` in a child process (which
also keeps the test server and its worker off this event loop) and answers with its JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.context import AppContext, context
from domain.events import EventType
from domain.lead import LifecycleStage
from domain.sequences import LeadContext, SequenceDefinition, load_sequences, parse_duration
from runtime.settings import PROJECT_ROOT, Settings

router = APIRouter(tags=["sequences"])
# A 30-day sequence takes about a second; this bounds a stuck child.
SIMULATION_TIMEOUT_SECONDS = 60.0
CONTEXT_CHANGE = "context"
_EVENT_TYPES = frozenset(item.value for item in EventType)


class SimulationEvent(BaseModel):
    """An event of the sample lead, or (`type` "context") a change of its context, `after` the start."""

    model_config = ConfigDict(extra="forbid")

    after: str = Field(description="a duration: '3d', '12h', 'P10D'", examples=["3d"])
    type: str = Field(
        description="an event type (email_clicked, ...) or 'context'", examples=["email_clicked"]
    )
    name: str | None = None
    properties: dict[str, str] = Field(default_factory=dict, examples=[{"stage": "mql"}])

    @field_validator("after")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value).total_seconds() < 0:
            raise ValueError("`after` cannot be negative")
        return value

    @model_validator(mode="after")
    def _known(self) -> SimulationEvent:
        if self.type == CONTEXT_CHANGE:
            unknown = sorted(set(self.properties) - set(LeadContext.model_fields))
            if not self.properties or unknown:
                raise ValueError(
                    "a context change names fields of the lead's context: "
                    + ", ".join(sorted(LeadContext.model_fields))
                )
        elif self.type not in _EVENT_TYPES:
            raise ValueError(f"{self.type!r} is not an event type (nor 'context' for a context change)")
        return self


class SimulationRequest(BaseModel):
    """The sample lead (its context as a branch sees it) and what happens to it."""

    model_config = ConfigDict(extra="forbid")

    lead_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="fixes A/B variants")
    stage: LifecycleStage = LifecycleStage.LEAD
    score: int | None = Field(None, ge=0, description="default: a typical score of the band")
    score_band: Literal["cold", "warm", "hot"] = "warm"
    engagement: Literal["low", "medium", "high"] = "low"
    preferred_topic: str | None = None
    email_clicks: int = Field(0, ge=0)
    lead_source: str | None = None
    country: str | None = None
    timezone: str | None = Field(None, description="IANA zone; default UTC")
    start: datetime | None = Field(None, description="a later start than now (the server's clock starts now)")
    already_sent: int = Field(0, ge=0, le=1000, description="marketing emails already in the cap window")
    events: list[SimulationEvent] = Field(default_factory=list, max_length=100)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"{value!r} is not a time zone (e.g. Europe/Berlin)") from exc
        return value

    @field_validator("start")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("give the start with its offset, e.g. 2026-03-02T08:00:00+01:00")
            if value < datetime.now(UTC):
                raise ValueError("start must not be in the past: the simulation's clock only moves forward")
        return value

    def arguments(self) -> list[str]:
        """As `journeys simulate` options (`--name=value`, so no value is read as an option)."""
        options = {
            "--lead-id": self.lead_id,
            "--stage": self.stage.value,
            "--score": self.score,
            "--band": self.score_band,
            "--engagement": self.engagement,
            "--topic": self.preferred_topic,
            "--email-clicks": self.email_clicks,
            "--source": self.lead_source,
            "--country": self.country,
            "--timezone": self.timezone,
            "--start": self.start.isoformat() if self.start else None,
            "--already-sent": self.already_sent,
        }
        found = [f"{option}={value}" for option, value in options.items() if value is not None]
        found += [f"--event-json={event.model_dump_json()}" for event in self.events]
        return found


async def _sequences(settings: Settings) -> dict[str, SequenceDefinition]:
    try:
        return await asyncio.to_thread(load_sequences, settings.sequences_dir)
    except ValueError as exc:
        raise HTTPException(status_code=500, detail=f"the sequence files do not load: {exc}") from exc


async def _run_simulation(arguments: list[str]) -> tuple[int, bytes, bytes]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "simulate",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=PROJECT_ROOT,
    )
    try:
        out, err = await asyncio.wait_for(child.communicate(), SIMULATION_TIMEOUT_SECONDS)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        raise
    return child.returncode if child.returncode is not None else -1, out, err


@router.get(
    "/v1/sequences",
    summary="The nurture sequences loaded from the sequence files (admin key)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "sequences": [
                            {
                                "id": "welcome_nurture",
                                "version": 1,
                                "name": "Welcome nurture",
                                "trigger": {"kind": "lead_created", "form_id": None, "topic": None},
                                "steps": 24,
                                "marketing": True,
                            }
                        ]
                    }
                }
            }
        }
    },
)
async def list_sequences(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    sequences = await _sequences(ctx.settings)
    return {
        "sequences": [
            {
                "id": sequence.id,
                "version": sequence.version,
                "name": sequence.name,
                "trigger": sequence.trigger.model_dump(mode="json"),
                "steps": len(sequence.steps),
                "marketing": sequence.marketing,
            }
            for _, sequence in sorted(sequences.items())
        ]
    }


SIMULATION_EXAMPLE = {
    "sequence_id": "welcome_nurture",
    "version": 1,
    "name": "Welcome nurture",
    "lead_id": "preview-lead",
    "context": {"stage": "lead", "score": 45, "score_band": "warm", "engagement": "low"},
    "timezone": "Europe/Berlin",
    "started_at": "2026-03-02T07:00:00Z",
    "ended_at": "2026-04-01T07:00:00Z",
    "timeline": [
        {
            "at_utc": "2026-03-02T08:00:00Z",
            "at_local": "2026-03-02T09:00:00+01:00",
            "day": 0.04,
            "step_id": "welcome",
            "kind": "sent",
            "detail": 'welcome_1 "Welcome aboard"; held 1h for the send window (Mon-Fri 09:00-17:00 ...)',
        }
    ],
    "sends": 7,
    "status": "completed",
    "exit_reason": "completed",
    "variants": {"invite_subject_test": "question"},
    "simulated_days": 30.0,
    "wall_seconds": 0.9,
}


@router.post(
    "/v1/sequences/{sequence_id}/simulate",
    summary="Preview a sequence for a sample lead: what would be sent when, and why (admin key)",
    responses={
        200: {"content": {"application/json": {"example": SIMULATION_EXAMPLE}}},
        404: {"description": "no such sequence"},
        422: {"description": "bad body (an unknown event type, time zone, stage; a past start)"},
        504: {"description": "the simulation took too long"},
    },
)
async def simulate_sequence(
    sequence_id: str,
    request: Request,
    body: SimulationRequest = Body(
        examples=[
            {
                "timezone": "Europe/Berlin",
                "preferred_topic": "security",
                "events": [
                    {"after": "3d", "type": "email_clicked"},
                    {"after": "10d", "type": "context", "properties": {"stage": "mql"}},
                    {"after": "20d", "type": "context", "properties": {"stage": "recycled"}},
                ],
            }
        ]
    ),
    ctx: AppContext = Depends(context),
) -> Any:
    await ctx.auth.require(request, "admin")
    settings = ctx.settings
    sequences = await _sequences(settings)
    if sequence_id not in sequences:
        raise HTTPException(
            status_code=404, detail=f"no sequence {sequence_id!r}; known: {', '.join(sorted(sequences))}"
        )
    cap_seconds = int(settings.email_cap_window_days * 86400)
    arguments = [
        sequence_id,
        f"--sequences-dir={settings.sequences_dir}",
        f"--cap={settings.email_cap_max_sends}/{cap_seconds}s",
        *body.arguments(),
        "--json",
    ]
    try:
        code, out, err = await _run_simulation(arguments)
    except TimeoutError as exc:
        raise HTTPException(
            status_code=504, detail=f"the simulation took longer than {SIMULATION_TIMEOUT_SECONDS:g} s"
        ) from exc
    message = err.decode(errors="replace").strip().removeprefix("journeys simulate: ")
    if code == 2:
        raise HTTPException(status_code=422, detail=message)
    if code != 0:
        raise HTTPException(status_code=500, detail=f"the simulation failed: {message[-2000:]}")
    return json.loads(out)
