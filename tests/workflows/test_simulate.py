"""`journeys simulate`: the shipped sequences previewed on the time-skipping server, in seconds.

Each simulation starts its own test server (its clock is global), at a Monday 07:00 in the lead's zone
a week or so ahead, so that the send window and the weekdays are known."""

import json
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.sequences import FrequencyCap, LeadContext, SequenceDefinition, load_sequences
from runtime.settings import PROJECT_ROOT, Settings
from tests.helpers.lead import lead_context
from workers.simulate import SimulatedEvent, SimulationResult, parse_event, simulate

SEQUENCES = load_sequences(Settings().sequences_dir)
WELCOME = SEQUENCES["welcome_nurture"]
# Warm, low engagement, no topic: the general track; the preview lead's variant is "question".
WELCOME_SENDS = [
    "welcome",
    "general_track",
    "invite_question",
    "resources_roundup",
    "customer_story",
    "check_in",
    "last_note",
]


def monday_morning(zone: str, hour: int = 7) -> datetime:
    """A Monday 8 to 14 days ahead, `hour`:00 in `zone`: in the future in every zone, whatever the
    hour or the day the test runs at."""
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=14 - today.weekday())
    return datetime.combine(monday, time(hour), tzinfo=ZoneInfo(zone))


def lead(**overrides: Any) -> LeadContext:
    """A warm new lead in Berlin (the shared lead context, scored higher)."""
    return lead_context(**{"score": 45, "score_band": "warm", **overrides})


async def run(
    sequence: SequenceDefinition = WELCOME, context: LeadContext | None = None, **options: Any
) -> SimulationResult:
    context = context or lead()
    options.setdefault("start", monday_morning(context.timezone or "UTC"))
    return await simulate(sequence, context, **options)


def about(span: timedelta, expected: timedelta) -> bool:
    """Equal but for the milliseconds the server's clock runs between skips."""
    return abs(span - expected) < timedelta(seconds=1)


def sent(result: SimulationResult) -> list[str]:
    return [item.step_id or "" for item in result.timeline if item.kind == "sent"]


def items(result: SimulationResult, kind: str, step_id: str | None = None) -> list[Any]:
    return [i for i in result.timeline if i.kind == kind and (step_id is None or i.step_id == step_id)]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Tokyo", "America/Los_Angeles"])
async def test_the_welcome_sequence_sends_in_business_hours_of_the_leads_zone(zone: str):
    result = await run(context=lead(timezone=zone))

    assert result.status == "completed" and result.exit_reason == "completed"
    assert sent(result) == WELCOME_SENDS
    assert result.sends == 7
    assert 30 <= result.simulated_days < 31, "the 30-day sequence, previewed whole"
    assert result.wall_seconds < 15
    for item in items(result, "sent"):
        local = item.at_utc.astimezone(ZoneInfo(zone))
        assert item.at_local == local and item.at_local.utcoffset() == local.utcoffset()
        assert local.weekday() < 5 and time(9) <= local.time() < time(17), item
    first = items(result, "sent")[0]
    assert (first.at_local.hour, first.at_local.minute) == (9, 0), "held from 07:00 to the window's start"
    assert "held 2h for the send window (Mon-Fri 09:00-17:00" in first.detail
    assert items(result, "timeout", "await_click"), "no click: the invite's wait_until timed out"
    assert result.variants == {"invite_subject_test": "question"}
    assert result.timeline == sorted(result.timeline, key=lambda i: i.at_utc)


async def test_branches_follow_the_context_and_say_why():
    result = await run(context=lead(score=85, score_band="hot", preferred_topic="security"))

    assert sent(result)[1] == "security_track"
    assert "sales_intro" in sent(result) and "check_in" not in sent(result)
    (interest,) = items(result, "branch", "route_by_interest")
    assert interest.detail == "to security_track: preferred_topic = security"
    (score,) = items(result, "branch", "route_by_score")
    assert score.detail == "to sales_intro: score_band = hot"


async def test_the_frequency_cap_defers_a_send():
    result = await run(frequency_cap=FrequencyCap(max_sends=1, per=timedelta(days=3)))

    (deferred,) = items(result, "deferred")
    assert deferred.step_id == "general_track"
    assert "frequency cap: 1 marketing emails in the last 3d" in deferred.detail
    welcome, track = items(result, "sent")[:2]
    assert track.step_id == "general_track"
    assert about(track.at_utc - welcome.at_utc, timedelta(days=3)), "sent once the welcome left the cap"
    assert about(deferred.at_utc - welcome.at_utc, timedelta(days=2))


async def test_sends_already_made_count_against_the_cap():
    result = await run(already_sent=3, frequency_cap=FrequencyCap(max_sends=3, per=timedelta(days=7)))

    (deferred,) = items(result, "deferred", "welcome")
    welcome = items(result, "sent", "welcome")[0]
    assert deferred.day < 0.1
    assert 7 <= welcome.day < 7.2, "a week after the three earlier sends"
    assert welcome.at_local.hour == 9


async def test_mql_pauses_the_sequence_and_recycled_resumes_it():
    result = await run(events=[parse_event("10d:stage=mql"), parse_event("20d:stage=recycled")])

    (pause,) = items(result, "pause")
    (resume,) = items(result, "resume")
    assert round(pause.day) == 10 and pause.detail == "paused: lead became mql"
    assert round(resume.day) == 20 and resume.detail == "resumed: lead became recycled"
    quiet = [i for i in items(result, "sent") if pause.at_utc <= i.at_utc <= resume.at_utc]
    assert quiet == [], "nothing is sent while sales has the lead"
    assert any(i.at_utc > resume.at_utc for i in items(result, "sent"))
    assert result.status == "completed"
    assert sent(result) == WELCOME_SENDS, "it carries on where it was held"
    assert result.simulated_days > 35, "the pause pushed the end out"
    inputs = [i.detail for i in items(result, "input")]
    assert inputs == ["context: stage=mql", "context: stage=recycled"]


async def test_a_lead_never_recycled_stays_paused_until_the_horizon():
    result = await run(events=[parse_event("3d:stage=sql")], horizon=timedelta(days=40))

    assert result.status == "paused"
    assert result.simulated_days == 40
    assert result.timeline[-1].kind == "horizon"
    assert "still paused" in result.timeline[-1].detail and "lead became sql" in result.timeline[-1].detail
    assert sent(result) == ["welcome", "general_track"]


async def test_a_customer_exits_and_later_events_are_not_delivered():
    result = await run(events=[parse_event("4d:stage=customer"), parse_event("5d:email_clicked")])

    assert result.status == "exited" and result.exit_reason == "lead became customer"
    late = items(result, "input")[-1]
    assert late.detail == "email_clicked (after the enrollment ended: not delivered)"
    assert 4 <= result.simulated_days < 4.1


async def test_a_click_routes_the_wait_until_to_the_demo_offer():
    # The invite goes out on day 7 (a Monday); the click comes the day after.
    result = await run(events=[parse_event("8d:email_clicked")])

    (event,) = items(result, "event", "await_click")
    assert event.detail == "email_clicked arrived: to demo_offer"
    assert "demo_offer" in sent(result) and "resources_roundup" not in sent(result)
    demo = items(result, "sent", "demo_offer")[0]
    assert 8 <= demo.day < 8.2 and (demo.at_local.hour, demo.at_local.minute) == (9, 0), "07:00 click"


async def test_a_click_before_the_wait_until_does_not_count():
    # Day 5 is before the invite: the wait_until listens from its own start.
    result = await run(events=[parse_event("5d:email_clicked")])

    assert "resources_roundup" in sent(result) and "demo_offer" not in sent(result)


async def test_content_followup_follows_the_topic():
    result = await run(SEQUENCES["content_followup"], lead(preferred_topic="security"))

    assert sent(result) == ["followup_security", "related_content"]
    assert items(result, "sent")[0].day >= 1
    assert result.status == "completed"


@pytest.mark.parametrize(
    ("events", "expected", "reason"),
    [
        ([], ["first_reminder", "second_reminder"], "reminders_sent"),
        ([SimulatedEvent(after=timedelta(hours=5), type="form_submitted")], ["first_reminder"], "goal"),
    ],
)
async def test_form_abandonment_stops_when_the_form_is_submitted(events, expected, reason):
    result = await run(SEQUENCES["form_abandonment_recovery"], events=events)

    assert sent(result) == expected
    assert result.status == "completed"
    assert (result.exit_reason or "").startswith(reason)


def test_event_specs():
    assert parse_event("3d:email_clicked") == SimulatedEvent(after=timedelta(days=3), type="email_clicked")
    assert parse_event("1d12h:email_clicked:Webinar invite").name == "Webinar invite"
    change = parse_event("10d:stage=mql,score_band=hot")
    assert change.type == "context" and change.properties == {"stage": "mql", "score_band": "hot"}
    for bad in ("3d", "3d:", "3d:klicked", "x:email_clicked", "3d:stagex=mql", "3d:stage="):
        with pytest.raises(ValueError):
            parse_event(bad)


async def test_bad_input_is_refused_before_a_server_starts():
    with pytest.raises(ValueError, match="not a time zone"):
        await simulate(WELCOME, lead(timezone="Mars/Olympus"))
    with pytest.raises(ValueError, match="not one of"):
        await simulate(WELCOME, lead(), events=[parse_event("2d:stage=mqll")])
    with pytest.raises(ValueError, match="past"):
        await simulate(WELCOME, lead(), start=datetime(2020, 1, 1, tzinfo=UTC))


def journeys(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "simulate", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_prints_the_timeline_as_json():
    start = monday_morning("Europe/Berlin").isoformat()
    done = journeys(
        "welcome_nurture",
        "--timezone=Europe/Berlin",
        "--topic=security",
        "--event=8d:email_clicked",
        "--event=10d:stage=mql",
        "--event=13d:stage=recycled",
        f"--start={start}",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    steps = [item["step_id"] for item in result["timeline"] if item["kind"] == "sent"]
    assert steps[:4] == ["welcome", "security_track", "invite_question", "demo_offer"]
    kinds = [item["kind"] for item in result["timeline"]]
    assert kinds[0] == "enrolled" and kinds[-1] == "completed"
    assert "pause" in kinds and "resume" in kinds
    welcome = result["timeline"][1]
    at_local = datetime.fromisoformat(welcome["at_local"])
    assert welcome["step_id"] == "welcome" and (at_local.hour, at_local.minute) == (9, 0)
    assert at_local.utcoffset() == at_local.astimezone(ZoneInfo("Europe/Berlin")).utcoffset()
    assert result["status"] == "completed" and result["sends"] == 7


def test_the_cli_prints_a_table_and_refuses_an_unknown_sequence():
    done = journeys("content_followup", "--topic=analytics", f"--start={monday_morning('UTC').isoformat()}")
    assert done.returncode == 0, done.stderr
    assert "followup_analytics" in done.stdout and "local time (UTC)" in done.stdout
    lines = done.stdout.strip().splitlines()
    # Day 1 (Tuesday) the follow-up; four days later is a Saturday: held to Monday.
    (related,) = [line for line in lines if "related_content" in line and " sent " in line]
    assert related.startswith("Mon ") and "held 2d for the send window" in related
    assert lines[-1].startswith("completed (completed) after 7.08 simulated days: 2 emails sent")

    unknown = journeys("no_such_sequence")
    assert unknown.returncode == 2
    assert "no sequence 'no_such_sequence'" in unknown.stderr
    assert (
        "abm_outreach, content_followup, customer_reengagement, expansion, form_abandonment_recovery, "
        "sales_outreach, welcome_nurture, win_back" in unknown.stderr
    )
