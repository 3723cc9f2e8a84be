from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.sequences import (
    BranchCase,
    BranchStep,
    Condition,
    EnrollmentRecord,
    EventMatch,
    ExitStep,
    FrequencyCap,
    LeadContext,
    SendStep,
    SendWindow,
    SequenceDefinition,
    SplitStep,
    Variant,
    WaitStep,
    WaitUntilStep,
    assign_variant,
    choose_branch,
    evaluate,
    frequency_wait,
    load_sequences,
    may_enroll,
    next_send_time,
    parse_duration,
)

CONFIG = Path(__file__).resolve().parents[2] / "config" / "sequences"
HEAD = 'id = "t"\nversion = 1\nname = "T"\n'
TRIGGER = '[trigger]\nkind = "manual"\n'
SEND_A = '[[steps]]\nid = "a"\ntype = "send"\ntemplate = "x"\n'
WAIT_W = '[[steps]]\nid = "w"\ntype = "wait"\nduration = "1d"\n'
UNTIL_U = '[[steps]]\nid = "u"\ntype = "wait_until"\nevent = { type = "email_clicked" }\ntimeout = "1d"\n'


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def sequence(*steps: object, **fields: object) -> SequenceDefinition:
    return SequenceDefinition.model_validate(
        {"id": "t", "version": 1, "name": "T", "trigger": {"kind": "manual"}, "steps": list(steps), **fields}
    )


# --- the shipped files ---------------------------------------------------------------------------------


def test_the_sequence_files_load():
    sequences = load_sequences(CONFIG)
    assert set(sequences) == {
        "welcome_nurture",
        "form_abandonment_recovery",
        "content_followup",
        "sales_outreach",
        "abm_outreach",
        "customer_reengagement",
        "expansion",
        "win_back",
    }
    for definition in sequences.values():
        assert definition.version >= 1
        assert isinstance(definition.steps[-1], ExitStep)


def _longest_wait(definition: SequenceDefinition, step_id: str) -> timedelta:
    """The most waiting on any path from `step_id` to the end (the shipped files have no loops)."""
    if step_id == "exit":
        return timedelta(0)
    step = definition.step(step_id)
    own = {WaitStep: "duration", WaitUntilStep: "timeout"}.get(type(step))
    here = getattr(step, own) if own else timedelta(0)
    targets = [t for t in step.targets() if t is not None]
    return here + max((_longest_wait(definition, t) for t in targets), default=timedelta(0))


def test_welcome_nurture_is_about_a_month_with_tracks_a_test_and_a_goal():
    welcome = load_sequences(CONFIG)["welcome_nurture"]
    assert welcome.trigger.kind == "lead_created"
    assert welcome.goal is not None and welcome.goal.type == "meeting_booked"
    assert isinstance(welcome.step(welcome.first_step_id), SendStep)
    assert welcome.step(welcome.following(welcome.first_step_id)) == WaitStep(
        id="settle_in", duration=timedelta(days=2), next="route_by_interest"
    )
    route = welcome.step("route_by_interest")
    assert isinstance(route, BranchStep)
    assert {case.when[0].field for case in route.cases} == {"engagement", "preferred_topic"}
    split = next(s for s in welcome.steps if isinstance(s, SplitStep))
    assert split.holdout_percent == 10 and len(split.variants) == 2
    wait_click = next(s for s in welcome.steps if isinstance(s, WaitUntilStep))
    assert wait_click.event.type == "email_clicked" and wait_click.timeout == timedelta(days=3)
    assert timedelta(days=25) <= _longest_wait(welcome, welcome.first_step_id) <= timedelta(days=35)


def test_form_abandonment_recovery_reminds_twice_at_most():
    recovery = load_sequences(CONFIG)["form_abandonment_recovery"]
    assert recovery.trigger.kind == "form_abandoned" and recovery.reentry == "after_exit"
    assert recovery.goal is not None and recovery.goal.type == "form_submitted"
    assert [s.type for s in recovery.steps] == ["wait", "send", "wait_until", "send", "exit"]
    assert recovery.steps[0] == WaitStep(id="cool_off", duration=timedelta(hours=1), next="first_reminder")
    waiting = recovery.steps[2]
    assert isinstance(waiting, WaitUntilStep)
    assert waiting.event.type == "form_submitted" and waiting.timeout == timedelta(days=2)
    assert (waiting.on_event, waiting.on_timeout) == ("exit", "second_reminder")


def test_content_followup_follows_the_topic_then_suggests_more():
    followup = load_sequences(CONFIG)["content_followup"]
    assert followup.trigger.kind == "content_downloaded" and followup.reentry == "after_exit"
    assert [s.type for s in followup.steps[:2]] == ["wait", "branch"]
    route = followup.steps[1]
    assert isinstance(route, BranchStep)
    context = LeadContext(
        stage="lead", score=10, score_band="cold", engagement="low", preferred_topic="Security"
    )
    target = followup.step(choose_branch(route, context))
    assert isinstance(target, SendStep) and target.variables["topic"] == "security"
    assert followup.step("breather") == WaitStep(
        id="breather", duration=timedelta(days=4), next="related_content"
    )
    assert followup.following("related_content") == "done"


def test_a_definition_survives_the_workflow_payload_round_trip():
    for definition in load_sequences(CONFIG).values():
        converter = pydantic_data_converter.payload_converter
        payloads = converter.to_payloads([definition])
        [back] = converter.from_payloads(payloads, [SequenceDefinition])
        assert back == definition


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(HEAD + TRIGGER + SEND_A + SEND_A, ["step id 'a' is used twice"], id="duplicate-id"),
        pytest.param(
            HEAD + TRIGGER + SEND_A + 'next = "nowhere"\n',
            ["step 'a' goes to 'nowhere'"],
            id="dangling-next",
        ),
        pytest.param(
            HEAD
            + TRIGGER
            + '[[steps]]\nid = "b"\ntype = "branch"\notherwise = "ghost"\n'
            + '[[steps.cases]]\ngoto = "exit"\nwhen = [{ field = "score", op = "gte", value = 5 }]\n',
            ["step 'b' goes to 'ghost'"],
            id="dangling-otherwise",
        ),
        pytest.param(
            HEAD + TRIGGER + UNTIL_U + 'on_timeout = "later"\n',
            ["step 'u' goes to 'later'"],
            id="dangling-on-timeout",
        ),
        pytest.param(
            HEAD
            + TRIGGER
            + SEND_A
            + 'next = "b"\n[[steps]]\nid = "b"\ntype = "branch"\notherwise = "a"\n'
            + '[[steps.cases]]\ngoto = "exit"\nwhen = [{ field = "stage", value = "customer" }]\n',
            ["'a' -> 'b' -> 'a'", "would send without pause"],
            id="cycle-without-wait",
        ),
        pytest.param(
            HEAD + TRIGGER + SEND_A + 'next = "a"\n',
            ["'a' -> 'a'", "would send without pause"],
            id="send-to-itself",
        ),
        pytest.param(
            HEAD + 'pause_on_stages = ["mql", "hot_lead"]\n' + TRIGGER + SEND_A,
            ["pause_on_stages", "'hot_lead' is not a lifecycle stage"],
            id="bad-stage",
        ),
        pytest.param(
            HEAD + 'exit_on_stages = ["mql"]\n' + TRIGGER + SEND_A,
            ["'mql' is in both pause_on_stages and exit_on_stages"],
            id="stage-paused-and-exited",
        ),
        pytest.param(
            HEAD + TRIGGER + WAIT_W.replace('"1d"', '"2 days"'),
            ["step 'w' duration", "'2 days' is not a duration"],
            id="bad-duration",
        ),
        pytest.param(
            HEAD + TRIGGER + WAIT_W.replace('"1d"', '"0m"'),
            ["step 'w' duration", "longer than zero"],
            id="zero-duration",
        ),
        pytest.param(
            HEAD + TRIGGER + WAIT_W.replace('"1d"', "2"),
            ["step 'w' duration", "as text"],
            id="bare-number-duration",
        ),
        pytest.param(
            HEAD + TRIGGER + WAIT_W.replace('"1d"', '"P1M"'),
            ["step 'w' duration", "months"],
            id="month-duration",
        ),
        pytest.param(
            HEAD + TRIGGER + UNTIL_U.replace('"1d"', '"-P1D"'),
            ["step 'u' timeout", "longer than zero"],
            id="negative-timeout",
        ),
        pytest.param(HEAD + TRIGGER + WAIT_W + "duraton = '1d'\n", ["step 'w' duraton"], id="unknown-key"),
        pytest.param(
            HEAD + TRIGGER + SEND_A.replace('"send"', '"sned"'), ["step 'a'", "sned"], id="bad-type"
        ),
        pytest.param(
            HEAD + TRIGGER + UNTIL_U.replace("email_clicked", "email_klicked"),
            ["step 'u' event.type"],
            id="bad-event-type",
        ),
        pytest.param(
            HEAD
            + TRIGGER
            + '[[steps]]\nid = "s"\ntype = "split"\n'
            + 'variants = [{ name = "a", weight = 1, goto = "exit" },\n'
            + '  { name = "a", weight = 2, goto = "exit" }]\n',
            ["step 's'", "variant name 'a' is used twice"],
            id="split-names",
        ),
        pytest.param(
            HEAD
            + TRIGGER
            + '[[steps]]\nid = "s"\ntype = "split"\nholdout_percent = 60\n'
            + 'variants = [{ name = "a", weight = 1, goto = "exit" }]\n',
            ["step 's' holdout_percent"],
            id="holdout-too-big",
        ),
        pytest.param(
            HEAD
            + TRIGGER
            + '[[steps]]\nid = "s"\ntype = "split"\nvariants = [{ name = "a", weight = 0, goto = "exit" }]\n',
            ["step 's' variants.0.weight"],
            id="zero-weight",
        ),
        pytest.param(
            HEAD
            + TRIGGER
            + '[[steps]]\nid = "b"\ntype = "branch"\n'
            + '[[steps.cases]]\ngoto = "exit"\nwhen = [{ field = "stage", value = "hot" }]\n',
            ["step 'b' cases.0.when.0", "'hot' is not one of"],
            id="bad-stage-in-condition",
        ),
        pytest.param(
            HEAD
            + TRIGGER
            + '[[steps]]\nid = "b"\ntype = "branch"\n'
            + '[[steps.cases]]\ngoto = "exit"\nwhen = [{ field = "country", op = "gte", value = "US" }]\n',
            ["step 'b' cases.0.when.0", "'gte' is for score or email_clicks only"],
            id="bad-op-for-field",
        ),
        pytest.param(HEAD + "steps = []\n" + TRIGGER, ["at least one step"], id="no-steps"),
        pytest.param(
            HEAD.replace('"t"', '"Welcome Nurture"', 1) + TRIGGER + SEND_A,
            ["id:", "not a slug"],
            id="bad-slug",
        ),
        pytest.param(
            HEAD + '[trigger]\nkind = "lead_created"\nform_id = "demo"\n' + SEND_A,
            ["trigger:", "form_id only applies"],
            id="trigger-narrowing",
        ),
        pytest.param(
            HEAD + TRIGGER + '[send_window]\nstart = "18:00"\nend = "09:00"\n' + SEND_A,
            ["send_window:", "must be before end"],
            id="window-backwards",
        ),
        pytest.param(
            HEAD + TRIGGER + "[send_window]\ndays = [1, 7]\n" + SEND_A,
            ["send_window.days", "7 is not a day"],
            id="window-bad-day",
        ),
        pytest.param(
            HEAD + TRIGGER + '[[steps]]\nid = "exit"\ntype = "exit"\n', ["'exit' is reserved"], id="exit-id"
        ),
        pytest.param(HEAD + "[trigger\n", ["not valid TOML"], id="bad-toml"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_step_and_field(tmp_path, text, expected):
    write(tmp_path, "broken.toml", text)
    with pytest.raises(ValueError) as raised:
        load_sequences(tmp_path)
    message = str(raised.value)
    assert message.startswith("broken.toml: ")
    for part in expected:
        assert part in message


def test_a_loop_through_a_wait_is_allowed(tmp_path):
    write(tmp_path, "loop.toml", HEAD + TRIGGER + SEND_A + WAIT_W + 'next = "a"\n')
    loop = load_sequences(tmp_path)["t"]
    assert loop.step("w").targets() == ["a"]


def test_the_highest_version_wins_and_a_repeated_version_is_refused(tmp_path):
    write(tmp_path, "t_v1.toml", HEAD + TRIGGER + SEND_A)
    write(tmp_path, "t_v2.toml", HEAD.replace("version = 1", "version = 2") + TRIGGER + SEND_A)
    write(tmp_path, "other.toml", HEAD.replace('"t"', '"other"', 1) + TRIGGER + SEND_A)
    loaded = load_sequences(tmp_path)
    assert {key: value.version for key, value in loaded.items()} == {"t": 2, "other": 1}
    write(tmp_path, "t_again.toml", HEAD.replace("version = 1", "version = 2") + TRIGGER + SEND_A)
    with pytest.raises(
        ValueError, match=r"t_v2.toml: sequence 't' version 2 is also defined in t_again.toml"
    ):
        load_sequences(tmp_path)


def test_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        load_sequences(tmp_path / "nope")


def test_implicit_gotos_resolve_to_the_following_step_and_helpers_find_steps():
    definition = sequence(
        {"id": "hello", "type": "send", "template": "t"},
        {
            "id": "route",
            "type": "branch",
            "cases": [{"when": [{"field": "score", "value": 3}], "goto": "bye"}],
        },
        {"id": "pause", "type": "wait", "duration": "PT4H"},
        {"id": "listen", "type": "wait_until", "event": {"type": "email_opened"}, "timeout": "1w"},
        {"id": "test", "type": "split", "variants": [{"name": "a", "weight": 1, "goto": "bye"}]},
        {"id": "bye", "type": "send", "template": "t"},
    )
    assert definition.first_step_id == "hello"
    assert [step.targets() for step in definition.steps] == [
        ["route"],
        ["bye", "pause"],
        ["listen"],
        ["test", "test"],
        ["bye", "exit"],  # held-out leads leave unless holdout_goto says where they go
        ["exit"],
    ]
    assert definition.following("bye") == "exit"
    assert definition.step("pause") == WaitStep(id="pause", duration=timedelta(hours=4), next="listen")
    with pytest.raises(KeyError):
        definition.step("nope")
    with pytest.raises(KeyError):
        definition.following("nope")


def test_steps_shared_between_definitions_keep_their_own_gotos():
    shared = SendStep(id="a", template="t")
    first = sequence(shared, {"id": "b", "type": "exit"})
    second = sequence(shared)
    assert shared.next is None
    assert first.steps[0].targets() == ["b"]
    assert second.steps[0].targets() == ["exit"]


# --- durations and matching ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("45s", timedelta(seconds=45)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 3d ", timedelta(days=3)),
        ("P2D", timedelta(days=2)),
        ("PT4H", timedelta(hours=4)),
        ("PT30M", timedelta(minutes=30)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT1.5S", timedelta(days=1, seconds=1.5)),
        ("P1DT1H1M1S", timedelta(days=1, hours=1, minutes=1, seconds=1)),
        ("-P1D", timedelta(days=-1)),
        # What pydantic writes for 365 days and more: a round trip through JSON keeps the value.
        ("P1Y", timedelta(days=365)),
        ("P2Y70D", timedelta(days=800)),
    ],
)
def test_durations_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "2", "2 days", "1M", "1y", "P", "PT", "P1DT", "d2", "P1.5D", "four hours", "P1M", "P1Y2M"]
)
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match=r"duration|fixed length"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("match", "event", "expected"),
    [
        (EventMatch(type="email_clicked"), ("email_clicked", None, {}), True),
        (EventMatch(type="email_clicked"), ("email_opened", None, {}), False),
        (EventMatch(type="track", name="Webinar Attended"), ("track", "webinar attended", {}), True),
        (EventMatch(type="track", name="Webinar Attended"), ("track", "Webinar Registered", {}), False),
        (EventMatch(type="track", name="Webinar Attended"), ("track", None, {}), False),
        (
            EventMatch(type="track", properties={"topic": "Security"}),
            ("track", "x", {"topic": "security"}),
            True,
        ),
        (
            EventMatch(type="track", properties={"topic": "security"}),
            ("track", "x", {"topic": "analytics"}),
            False,
        ),
        (EventMatch(type="track", properties={"topic": "security"}), ("track", "x", {}), False),
        (
            EventMatch(type="track", properties={"paid": "true", "n": "3"}),
            ("track", None, {"paid": True, "n": 3}),
            True,
        ),
    ],
)
def test_event_match(match, event, expected):
    assert match.matches(*event) is expected


# --- when to send --------------------------------------------------------------------------------------

WEEKDAYS = SendWindow()
EVERY_DAY_FROM_0230 = SendWindow(days=[0, 1, 2, 3, 4, 5, 6], start=time(2, 30), end=time(17, 0))
EVERY_DAY_FROM_0130 = SendWindow(days=[0, 1, 2, 3, 4, 5, 6], start=time(1, 30), end=time(17, 0))


@pytest.mark.parametrize(
    ("now", "tz", "window", "expected"),
    [
        # UTC, and what an unknown or missing time zone falls back to.
        pytest.param(
            utc(2026, 1, 9, 18), None, WEEKDAYS, utc(2026, 1, 12, 9), id="utc-friday-evening-to-monday"
        ),
        pytest.param(
            utc(2026, 1, 9, 18), "Mars/Olympus", WEEKDAYS, utc(2026, 1, 12, 9), id="unknown-tz-is-utc"
        ),
        pytest.param(utc(2026, 1, 12, 9), "UTC", WEEKDAYS, utc(2026, 1, 12, 9), id="at-start-is-now"),
        pytest.param(
            utc(2026, 1, 12, 12, 5, 7), "UTC", WEEKDAYS, utc(2026, 1, 12, 12, 5, 7), id="inside-is-now"
        ),
        pytest.param(utc(2026, 1, 12, 17), "UTC", WEEKDAYS, utc(2026, 1, 13, 9), id="at-end-is-tomorrow"),
        pytest.param(utc(2026, 1, 12, 6), "UTC", WEEKDAYS, utc(2026, 1, 12, 9), id="early-is-today"),
        # Berlin: CET (+1) until Sunday 29 March 2026, 02:00 -> 03:00 CEST (+2); back on 25 October.
        pytest.param(
            utc(2026, 3, 27, 17),
            "Europe/Berlin",
            WEEKDAYS,
            utc(2026, 3, 30, 7),
            id="berlin-friday-across-dst",
        ),
        pytest.param(
            utc(2026, 3, 29, 0),
            "Europe/Berlin",
            EVERY_DAY_FROM_0230,
            utc(2026, 3, 29, 1),
            id="berlin-missing-0230",
        ),
        pytest.param(
            utc(2026, 3, 30, 5),
            "Europe/Berlin",
            EVERY_DAY_FROM_0230,
            utc(2026, 3, 30, 5),
            id="berlin-day-after",
        ),
        pytest.param(
            utc(2026, 10, 24, 23, 30),
            "Europe/Berlin",
            EVERY_DAY_FROM_0230,
            utc(2026, 10, 25, 0, 30),
            id="berlin-ambiguous-0230-first",
        ),
        pytest.param(
            utc(2026, 10, 23, 16),
            "Europe/Berlin",
            WEEKDAYS,
            utc(2026, 10, 26, 8),
            id="berlin-friday-to-winter",
        ),
        # New York: EST (-5) until Sunday 8 March 2026, 02:00 -> 03:00 EDT (-4); back on 1 November.
        pytest.param(
            utc(2026, 3, 6, 22, 30),
            "America/New_York",
            WEEKDAYS,
            utc(2026, 3, 9, 13),
            id="ny-friday-across-dst",
        ),
        pytest.param(
            utc(2026, 3, 8, 5),
            "America/New_York",
            EVERY_DAY_FROM_0230,
            utc(2026, 3, 8, 7),
            id="ny-missing-0230",
        ),
        pytest.param(
            utc(2026, 11, 1, 4),
            "America/New_York",
            EVERY_DAY_FROM_0130,
            utc(2026, 11, 1, 5, 30),
            id="ny-ambiguous",
        ),
        pytest.param(
            utc(2026, 10, 31, 0), "America/New_York", WEEKDAYS, utc(2026, 11, 2, 14), id="ny-friday-to-winter"
        ),
        # Kolkata: +05:30, no DST.
        pytest.param(
            utc(2026, 1, 5, 3), "Asia/Kolkata", WEEKDAYS, utc(2026, 1, 5, 3, 30), id="kolkata-before"
        ),
        pytest.param(utc(2026, 1, 5, 5), "Asia/Kolkata", WEEKDAYS, utc(2026, 1, 5, 5), id="kolkata-inside"),
        pytest.param(
            utc(2026, 1, 9, 11, 30), "Asia/Kolkata", WEEKDAYS, utc(2026, 1, 12, 3, 30), id="kolkata-friday"
        ),
        # Sydney: AEDT (+11) until Sunday 5 April 2026, 03:00 -> 02:00 AEST (+10).
        pytest.param(
            utc(2026, 4, 3, 7),
            "Australia/Sydney",
            WEEKDAYS,
            utc(2026, 4, 5, 23),
            id="sydney-friday-across-dst",
        ),
        pytest.param(
            utc(2026, 1, 4, 21),
            "Australia/Sydney",
            WEEKDAYS,
            utc(2026, 1, 4, 22),
            id="sydney-monday-is-utc-sunday",
        ),
        pytest.param(
            utc(2026, 1, 9, 6),
            "Australia/Sydney",
            WEEKDAYS,
            utc(2026, 1, 11, 22),
            id="sydney-friday-late-utc-morning",
        ),
        # Weekend-only window: Saturday morning in Berlin.
        pytest.param(
            utc(2026, 1, 12, 10),
            "Europe/Berlin",
            SendWindow(days=[5], start=time(10), end=time(12)),
            utc(2026, 1, 17, 9),
            id="berlin-saturdays-only",
        ),
    ],
)
def test_next_send_time(now, tz, window, expected):
    result = next_send_time(now, tz, window)
    assert result == expected
    assert result.tzinfo is UTC


def _inside(instant: datetime, zone: ZoneInfo, window: SendWindow) -> bool:
    local = instant.astimezone(zone)
    return local.weekday() in window.days and window.start <= local.time().replace(tzinfo=None) < window.end


@pytest.mark.parametrize(
    ("tz", "around"),
    [
        ("Europe/Berlin", utc(2026, 3, 26)),
        ("Europe/Berlin", utc(2026, 10, 22)),
        ("America/New_York", utc(2026, 3, 5)),
        ("America/New_York", utc(2026, 10, 29)),
        ("Australia/Sydney", utc(2026, 4, 2)),
        ("Australia/Sydney", utc(2026, 10, 1)),
        ("Asia/Kolkata", utc(2026, 6, 4)),
    ],
)
@pytest.mark.parametrize("window", [WEEKDAYS, EVERY_DAY_FROM_0230], ids=["weekdays", "every-day-0230"])
def test_next_send_time_agrees_with_a_minute_by_minute_scan(tz, around, window):
    zone = ZoneInfo(tz)
    for step in range(0, 7 * 24 * 60, 173):  # every 2h53m over a week that contains the change
        now = around + timedelta(minutes=step, seconds=11)
        expected = now
        if not _inside(expected, zone, window):
            expected = now.replace(second=0) + timedelta(minutes=1)
            while not _inside(expected, zone, window):
                expected += timedelta(minutes=1)
        assert next_send_time(now, tz, window) == expected, now


def test_next_send_time_needs_an_aware_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_send_time(datetime(2026, 1, 1, 9), "UTC", WEEKDAYS)


def test_a_now_in_another_offset_is_the_same_instant():
    now = datetime(2026, 1, 9, 19, tzinfo=ZoneInfo("Europe/Berlin"))
    assert next_send_time(now, None, WEEKDAYS) == utc(2026, 1, 12, 9)


# --- how often -----------------------------------------------------------------------------------------

NOW = utc(2026, 5, 10, 12)
WEEK = FrequencyCap()


@pytest.mark.parametrize(
    ("sent", "cap", "expected"),
    [
        ([], WEEK, None),
        ([NOW - timedelta(days=1), NOW - timedelta(days=2)], WEEK, None),
        (
            [NOW - timedelta(days=1), NOW - timedelta(days=6), NOW - timedelta(hours=1)],
            WEEK,
            NOW + timedelta(days=1),
        ),
        (
            [NOW - timedelta(days=8), NOW - timedelta(days=1), NOW - timedelta(days=2)],
            WEEK,
            None,
        ),
        ([NOW - timedelta(days=7), NOW - timedelta(days=1), NOW - timedelta(days=2)], WEEK, None),
        (
            [
                NOW - timedelta(days=5),
                NOW - timedelta(days=3),
                NOW - timedelta(days=4),
                NOW - timedelta(days=1),
            ],
            WEEK,
            NOW + timedelta(days=3),
        ),
        (
            [NOW - timedelta(hours=3)],
            FrequencyCap(max_sends=1, per=timedelta(days=1)),
            NOW + timedelta(hours=21),
        ),
        ([NOW - timedelta(hours=30)], FrequencyCap(max_sends=1, per=timedelta(days=1)), None),
    ],
    ids=[
        "none",
        "under",
        "at-cap",
        "oldest-expired",
        "exactly-per-ago",
        "over-cap",
        "daily-cap",
        "daily-free",
    ],
)
def test_frequency_wait(sent, cap, expected):
    assert frequency_wait(sent, NOW, cap) == expected


def test_frequency_cap_validates_and_reads_durations():
    assert FrequencyCap(per="2d").per == timedelta(days=2)
    with pytest.raises(ValidationError):
        FrequencyCap(max_sends=0)
    with pytest.raises(ValidationError):
        FrequencyCap(per="0d")


# --- which variant -------------------------------------------------------------------------------------

AB = [Variant(name="a", weight=1, goto="x"), Variant(name="b", weight=1, goto="y")]


def test_assign_variant_is_stable_across_calls_and_processes():
    # Fixed values (sha256, not Python's salted hash()): the assignment never changes between releases or
    # worker processes.
    assert [
        assign_variant(f"lead-{n}", "welcome_nurture", "invite_subject_test", AB, 10) for n in range(8, 16)
    ] == ["b", "a", "b", "b", "b", "holdout", "a", "b"]
    for n in range(50):
        first = assign_variant(f"lead-{n}", "s", "split", AB, 10)
        assert all(assign_variant(f"lead-{n}", "s", "split", AB, 10) == first for _ in range(3))


def test_each_split_assigns_independently():
    here = [assign_variant(f"lead-{n}", "s", "one", AB, 0) for n in range(200)]
    there = [assign_variant(f"lead-{n}", "s", "two", AB, 0) for n in range(200)]
    assert here != there


@pytest.mark.parametrize(
    ("variants", "holdout", "shares"),
    [
        (AB, 10, {"holdout": 0.10, "a": 0.45, "b": 0.45}),
        (AB, 0, {"a": 0.5, "b": 0.5}),
        (
            [Variant(name="a", weight=3, goto="x"), Variant(name="b", weight=1, goto="y")],
            0,
            {"a": 0.75, "b": 0.25},
        ),
        (
            [Variant(name=n, weight=1, goto="x") for n in ("a", "b", "c")],
            25,
            {"holdout": 0.25, "a": 0.25, "b": 0.25, "c": 0.25},
        ),
        ([Variant(name="only", weight=5, goto="x")], 50, {"holdout": 0.5, "only": 0.5}),
    ],
)
def test_assign_variant_shares(variants, holdout, shares):
    counts: dict[str, int] = {}
    for n in range(10_000):
        name = assign_variant(f"lead-{n:05d}", "welcome_nurture", "test", variants, holdout)
        counts[name] = counts.get(name, 0) + 1
    assert set(counts) == set(shares)
    for name, share in shares.items():
        assert abs(counts[name] / 10_000 - share) < 0.02, (name, counts)


def test_assign_variant_needs_variants():
    with pytest.raises(ValueError):
        assign_variant("l", "s", "t", [], 0)


# --- which branch --------------------------------------------------------------------------------------

CONTEXT = LeadContext(
    stage="lead",
    score=72,
    score_band="hot",
    engagement="medium",
    preferred_topic="Security",
    email_clicks=2,
    lead_source="webinar",
    country=None,
    timezone="Europe/Berlin",
)


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([], True),
        ([{"field": "score_band", "value": "hot"}], True),
        ([{"field": "score_band", "value": "HOT"}], True),
        ([{"field": "score_band", "op": "ne", "value": "hot"}], False),
        ([{"field": "engagement", "value": "high"}], False),
        ([{"field": "preferred_topic", "value": "security"}], True),
        ([{"field": "preferred_topic", "op": "in", "value": ["analytics", "security"]}], True),
        ([{"field": "preferred_topic", "op": "in", "value": ["analytics"]}], False),
        ([{"field": "stage", "op": "in", "value": ["mql", "sql"]}], False),
        ([{"field": "stage", "op": "ne", "value": "customer"}], True),
        ([{"field": "score", "op": "gte", "value": 72}], True),
        ([{"field": "score", "op": "gte", "value": 73}], False),
        ([{"field": "score", "op": "lte", "value": "72"}], True),
        ([{"field": "score", "value": 72}], True),
        ([{"field": "email_clicks", "op": "lte", "value": 1}], False),
        ([{"field": "country", "value": "US"}], False),
        ([{"field": "country", "op": "ne", "value": "US"}], True),
        ([{"field": "country", "op": "in", "value": ["US", "GB"]}], False),
        ([{"field": "lead_source", "value": "Webinar"}, {"field": "score", "op": "gte", "value": 50}], True),
        ([{"field": "lead_source", "value": "webinar"}, {"field": "score", "op": "gte", "value": 90}], False),
    ],
)
def test_evaluate(conditions, expected):
    assert evaluate([Condition.model_validate(c) for c in conditions], CONTEXT) is expected


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "stage", "value": "warm"},
        {"field": "engagement", "value": "extreme"},
        {"field": "score_band", "op": "in", "value": ["hot", "boiling"]},
        {"field": "score", "value": "lots"},
        {"field": "score", "op": "in", "value": ["1", "2"]},
        {"field": "country", "op": "lte", "value": "US"},
        {"field": "country", "value": ["US"]},
        {"field": "country", "op": "in", "value": "US"},
        {"field": "country", "value": 1},
        {"field": "title", "value": "CTO"},
    ],
)
def test_conditions_that_cannot_mean_anything_are_refused(condition):
    with pytest.raises(ValidationError):
        Condition.model_validate(condition)


ROUTE = BranchStep(
    id="route",
    cases=[
        BranchCase(when=[Condition(field="engagement", value="high")], goto="case_study"),
        BranchCase(
            when=[Condition(field="preferred_topic", op="in", value=["security", "analytics"])], goto="topic"
        ),
        BranchCase(when=[Condition(field="score", op="gte", value=50)], goto="hot"),
    ],
    otherwise="general",
)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"engagement": "high"}, "case_study"),
        ({"engagement": "high", "preferred_topic": "analytics"}, "case_study"),
        ({}, "topic"),
        ({"preferred_topic": "pricing"}, "hot"),
        ({"preferred_topic": None, "score": 10}, "general"),
    ],
)
def test_choose_branch_takes_the_first_case_that_holds(changes, expected):
    assert choose_branch(ROUTE, CONTEXT.model_copy(update=changes)) == expected


def test_choose_branch_in_a_definition_falls_through_to_the_next_step():
    definition = sequence(
        {
            "id": "b",
            "type": "branch",
            "cases": [{"when": [{"field": "score", "op": "gte", "value": 99}], "goto": "z"}],
        },
        {"id": "y", "type": "send", "template": "t"},
        {"id": "z", "type": "exit"},
    )
    step = definition.step("b")
    assert isinstance(step, BranchStep)
    assert choose_branch(step, CONTEXT) == "y"
    assert choose_branch(step, CONTEXT.model_copy(update={"score": 99})) == "z"


# --- who may enroll ------------------------------------------------------------------------------------


def record(status: str) -> EnrollmentRecord:
    ended = None if status in ("active", "paused") else NOW
    return EnrollmentRecord(sequence_id="s", version=1, status=status, ended_at=ended)


@pytest.mark.parametrize(
    ("reentry", "history", "expected"),
    [
        ("never", [], True),
        ("never", ["completed"], False),
        ("never", ["exited"], False),
        ("never", ["active"], False),
        ("after_exit", [], True),
        ("after_exit", ["completed", "exited"], True),
        ("after_exit", ["completed", "active"], False),
        ("after_exit", ["paused"], False),
        ("always", [], True),
        ("always", ["active"], True),
        ("always", ["completed", "paused"], True),
    ],
)
def test_may_enroll(reentry, history, expected):
    assert may_enroll(reentry, [record(status) for status in history]) is expected


def test_window_and_steps_built_in_code_validate_too():
    with pytest.raises(ValidationError, match="at least one day"):
        SendWindow(days=[])
    assert SendWindow(days=[4, 0, 4]).days == [0, 4]
    with pytest.raises(ValidationError, match="longer than zero"):
        WaitStep(id="w", duration=timedelta(0))
    with pytest.raises(ValidationError, match="reserved"):
        SplitStep(id="s", variants=[Variant(name="holdout", weight=1, goto="exit")])
