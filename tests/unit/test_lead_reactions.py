"""The lead's reactions as pure decisions (domain/reactions.py): state, event or message, rules and
time in; the new state and the effects, in the order the workflow carries them out, out. No server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from domain import reactions
from domain.events import EventType, LeadEvent
from domain.handoff import SALES_SEQUENCE_ID, HandoffOutcome
from domain.lead import Enrollment, LeadState, LifecycleStage
from domain.lead_work import EXPOSURES_KEPT, PENDING_KEPT
from domain.qualify import EnrollRequest, LeadFacts, SequencesForTrigger
from domain.reactions import (
    CloseHandoff,
    Enroll,
    ExposeToExperiment,
    FollowCrmOwner,
    InviteToMeeting,
    LogMeeting,
    PushProfile,
    ReportReferral,
    ReportToAccount,
    ReportToCustomer,
    StartHandoff,
    StopEnrollments,
    SyncForm,
    TellHandoffCrmAccepted,
    TellNurtures,
    UpdateScoreAttribute,
    UpdateSearchAttributes,
)
from domain.scoring import EngagementBands, FitResult, Seniority, load_scoring
from domain.sequences import load_sequences
from runtime.settings import PROJECT_ROOT

RULES = load_scoring(PROJECT_ROOT / "config" / "scoring.toml")
WELCOME = load_sequences(PROJECT_ROOT / "config" / "sequences")["welcome_nurture"]
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
FIT = FitResult(
    fit=True,
    points=20,
    matched=["industry"],
    missing=[],
    seniority=Seniority.VP,
    free_mail=False,
    competitor=False,
)


@dataclass
class Features:
    """Every behaviour on unless switched off (a run recorded before its patch)."""

    qualify: bool = True
    customers: bool = True
    calendar_invites: bool = True
    page_experiments: bool = True
    handoff: bool = True
    sales_outreach: bool = True
    deal_lost_recycles: bool = True


ALL = Features()


def event(kind: EventType, n: int = 0, at: datetime = NOW, **fields: Any) -> LeadEvent:
    fields.setdefault("source", "test")
    return LeadEvent(event_id=f"{kind.value}-{n}", type=kind, occurred_at=at, **fields)


def form(n: int = 0) -> LeadEvent:
    return event(EventType.FORM_SUBMITTED, n, submission_id=f"s{n}", form_id="demo", email_hash="h" * 64)


def lead() -> LeadState:
    state = LeadState(lead_id="lead-1")
    reactions.react_to_event(state, form(), RULES, ALL, NOW)
    state.crm_contact_id, state.email_profile_id = "c-1", "p-1"
    state.pending.triggers.clear()
    state.pending.facts_due = False
    return state


def kinds(effects: Sequence[BaseModel]) -> list[type]:
    return [type(e) for e in effects]


def engaged(state: LeadState) -> None:
    """The seed's MQL line: 5 sessions, 3 pieces of content, email engagement 70 (7 clicks), ICP fit."""
    for h in range(5):
        reactions.react_to_event(state, event(EventType.PAGE, h, NOW - timedelta(hours=h)), RULES, ALL, NOW)
    for n in range(3):
        download = event(
            EventType.TRACK,
            10 + n,
            NOW - timedelta(minutes=10 + n),
            name="Content Downloaded",
            properties={"content_id": f"guide-{n}", "topic": "security"},
        )
        reactions.react_to_event(state, download, RULES, ALL, NOW)
    for n in range(7):
        reactions.react_to_event(state, event(EventType.EMAIL_CLICKED, 20 + n, NOW), RULES, ALL, NOW)
    reactions.apply_facts(state, LeadFacts(fit=FIT))


# --- One event ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("incoming", "stage", "effects", "triggers"),
    [
        (form(), LifecycleStage.LEAD, [UpdateSearchAttributes, SyncForm], ["lead_created"]),
        (event(EventType.PAGE), LifecycleStage.ANONYMOUS, [], []),
        (event(EventType.IDENTIFY), LifecycleStage.LEAD, [UpdateSearchAttributes], ["lead_created"]),
        (
            event(EventType.FORM_ABANDONED, form_id="demo"),
            LifecycleStage.LEAD,
            [UpdateSearchAttributes],
            ["lead_created", "form_abandoned"],
        ),
        (
            event(EventType.GROUP, properties={"group_id": "acme"}),
            LifecycleStage.ANONYMOUS,
            [UpdateSearchAttributes],
            [],
        ),
        (event(EventType.PURCHASE), LifecycleStage.CUSTOMER, [UpdateSearchAttributes], []),
    ],
)
def test_an_event_on_a_new_lead(incoming, stage, effects, triggers):
    state = LeadState(lead_id="lead-1")
    done = reactions.react_to_event(state, incoming, RULES, ALL, NOW)
    assert state.stage is stage
    assert kinds(done) == effects
    assert [t.kind for t in state.pending.triggers] == triggers
    assert state.timeline[-1].event_id == incoming.event_id


def test_a_form_is_synced_with_its_submission_and_asks_for_the_facts():
    state = LeadState(lead_id="lead-1")
    [_, sync] = reactions.react_to_event(state, form(3), RULES, ALL, NOW)
    assert sync == SyncForm(submission_id="s3", form_id="demo", welcome_list=None)
    assert state.email_hash == "h" * 64
    assert reactions.facts_needed(state)
    reactions.facts_fetched(state)
    assert not reactions.facts_needed(state)


def test_an_anonymous_visitor_needs_no_facts_until_it_is_a_lead():
    state = LeadState(lead_id="lead-1")
    reactions.react_to_event(state, event(EventType.GROUP, properties={"group_id": "acme"}), RULES, ALL, NOW)
    assert state.account_id == "acme" and not reactions.facts_needed(state)


def test_runs_before_the_qualify_phase_only_fold():
    state = LeadState(lead_id="lead-1")
    reactions.react_to_event(state, form(), None, Features(qualify=False), NOW)
    assert state.stage is LifecycleStage.LEAD and state.pending.triggers == [] and state.score == 0
    assert not reactions.has_work(state, Features(qualify=False))


@pytest.mark.parametrize(
    ("properties", "won"),
    [
        ({"stage": "closedwon"}, True),
        ({"stage": "Closed_Won"}, True),
        ({"stage": "won"}, True),
        ({"stage": "lost"}, False),
        ({}, False),
    ],
)
def test_a_deal_is_won_in_the_stages_the_crms_call_won(properties, won):
    assert reactions.deal_won(event(EventType.DEAL_STAGE_CHANGED, properties=properties)) is won


# --- Settling ----------------------------------------------------------------------------------


def test_a_lead_crossing_the_mql_line_starts_the_hand_off_first_and_tells_the_nurtures_last():
    state = lead()
    engaged(state)
    settlement = reactions.settle(state, RULES, ALL, NOW)
    assert state.stage is LifecycleStage.MQL and settlement.changed
    assert kinds(settlement.effects) == [
        StartHandoff,
        UpdateScoreAttribute,
        PushProfile,
        Enroll,  # the content downloads' follow-up
        Enroll,
        Enroll,
        TellNurtures,
    ]
    start = settlement.effects[0]
    assert isinstance(start, StartHandoff) and any("email engagement" in r for r in start.reasons)
    push = settlement.effects[2]
    assert isinstance(push, PushProfile)
    assert (
        push.targets == ["crm", "email"] and push.stage == "mql" and push.click_event_id == "email_clicked-26"
    )
    assert state.pending.last_click is None


def test_a_run_before_the_hand_off_patch_qualifies_without_one():
    state = lead()
    engaged(state)
    settlement = reactions.settle(state, RULES, Features(handoff=False), NOW)
    assert state.stage is LifecycleStage.MQL and StartHandoff not in kinds(settlement.effects)


def test_the_same_stage_and_score_are_pushed_once():
    state = lead()
    first = reactions.settle(state, RULES, ALL, NOW)
    [push] = [e for e in first.effects if isinstance(e, PushProfile)]
    state.pushed = push.pushed  # carried out
    again = reactions.settle(state, RULES, ALL, NOW)
    assert PushProfile not in kinds(again.effects)


def test_a_lead_without_a_crm_record_is_not_pushed_until_it_qualifies():
    state = LeadState(lead_id="lead-1")
    reactions.react_to_event(state, event(EventType.IDENTIFY), RULES, ALL, NOW)
    assert PushProfile not in kinds(reactions.settle(state, RULES, ALL, NOW).effects)


@pytest.mark.parametrize(("sales_outreach", "triggers"), [(True, [SALES_SEQUENCE_ID]), (False, [])])
def test_an_accepted_hand_off_makes_an_sql_with_its_owner(sales_outreach, triggers):
    state = lead()
    state.move_to(LifecycleStage.MQL, "MQL rule", NOW)
    state.active_handoff = "handoff-lead-1-1"
    reactions.record_handoff_outcome(
        state,
        HandoffOutcome(handoff_id="handoff-lead-1-1", rep_id="rep-7", accepted_at=NOW, crm_owner_id="own-7"),
    )
    assert reactions.has_work(state, ALL)
    settlement = reactions.settle(state, RULES, Features(sales_outreach=sales_outreach), NOW)
    assert state.stage is LifecycleStage.SQL and state.owner == "rep-7" and state.owner_crm_id == "own-7"
    assert state.active_handoff is None and state.pending.outcomes == []
    assert [e.trigger.sequence_id for e in settlement.effects if isinstance(e, Enroll)] == triggers
    [tell] = [e for e in settlement.effects if isinstance(e, TellNurtures)]
    assert tell.context_changed


def test_an_outcome_for_another_hand_off_changes_nothing():
    state = lead()
    state.move_to(LifecycleStage.MQL, "MQL rule", NOW)
    state.active_handoff = "handoff-lead-1-2"
    reactions.record_handoff_outcome(
        state, HandoffOutcome(handoff_id="handoff-lead-1-1", rep_id="r", accepted_at=NOW)
    )
    reactions.settle(state, RULES, ALL, NOW)
    assert state.stage is LifecycleStage.MQL and state.active_handoff == "handoff-lead-1-2"


def test_a_crm_acceptance_reaches_the_hand_off_in_flight():
    state = lead()
    state.active_handoff = "handoff-lead-1-1"
    reactions.react_to_event(
        state, event(EventType.SALES_ACCEPTED, name="SQL", source="hubspot"), RULES, ALL, NOW
    )
    effects = reactions.settle(state, RULES, ALL, NOW).effects
    assert TellHandoffCrmAccepted(detail="SQL (hubspot)") in effects


@pytest.mark.parametrize(
    ("source", "end", "effects"),
    [
        ("calendly", None, [LogMeeting]),
        ("form", "2026-03-05T10:45:00Z", [LogMeeting, InviteToMeeting]),
    ],
)
def test_a_booked_meeting_is_logged_and_invited_to_where_no_scheduler_did(source, end, effects):
    state = lead()
    properties = {"meeting_start": "2026-03-05T10:00:00Z", **({"meeting_end": end} if end else {})}
    booked = event(EventType.MEETING_BOOKED, properties=properties).model_copy(update={"source": source})
    reactions.react_to_event(state, booked, RULES, ALL, NOW)
    meetings = [
        e
        for e in reactions.settle(state, RULES, ALL, NOW).effects
        if isinstance(e, LogMeeting | InviteToMeeting)
    ]
    assert kinds(meetings) == effects
    assert meetings[0].start == datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
    assert meetings[0].end - meetings[0].start == (timedelta(minutes=45) if end else timedelta(minutes=30))


def test_a_contact_of_an_account_reports_its_intent_and_meeting_once():
    state = lead()
    reactions.react_to_event(state, event(EventType.GROUP, properties={"group_id": "acme"}), RULES, ALL, NOW)
    reactions.react_to_event(
        state,
        event(EventType.MEETING_BOOKED, 2, properties={"meeting_start": "2026-03-05T10:00:00Z"}),
        RULES,
        ALL,
        NOW,
    )
    [report] = [e for e in reactions.settle(state, RULES, ALL, NOW).effects if isinstance(e, ReportToAccount)]
    assert report.activity.meeting_booked and report.activity.lead_id == "lead-1"
    assert ReportToAccount not in kinds(reactions.settle(state, RULES, ALL, NOW).effects)


def test_a_purchase_closes_the_hand_off_and_tells_the_customer_journey():
    state = lead()
    state.active_handoff = "handoff-lead-1-1"
    reactions.react_to_event(state, event(EventType.PURCHASE, properties={"amount": 1200}), RULES, ALL, NOW)
    effects = reactions.settle(state, RULES, ALL, NOW).effects
    customer = [e for e in effects if isinstance(e, CloseHandoff | ReportToCustomer)]
    assert [type(e).__name__ for e in customer] == ["CloseHandoff", "ReportToCustomer"]
    report = customer[1]
    assert isinstance(report, ReportToCustomer) and [e.kind for e in report.report.events] == ["purchase"]
    assert state.stage is LifecycleStage.CUSTOMER


def test_a_run_before_the_customer_patch_keeps_its_customer_news_to_itself():
    state = lead()
    reactions.react_to_event(state, event(EventType.PURCHASE), RULES, ALL, NOW)
    effects = reactions.settle(state, RULES, Features(customers=False), NOW).effects
    assert not [e for e in effects if isinstance(e, CloseHandoff | ReportToCustomer)]


def test_a_promoters_answer_makes_an_advocate_and_a_referral_code_names_who_brought_the_lead():
    state = lead()
    reactions.react_to_event(state, event(EventType.PURCHASE), RULES, ALL, NOW)
    survey = event(EventType.TRACK, 2, name="Survey Responded", properties={"score": 10})
    reactions.react_to_event(state, survey, RULES, ALL, NOW)
    assert state.stage is LifecycleStage.ADVOCATE
    newcomer = LeadState(lead_id="lead-2")
    reactions.react_to_event(
        newcomer, form().model_copy(update={"properties": {"referral_code": "lead-1"}}), RULES, ALL, NOW
    )
    assert newcomer.referred_by == "lead-1"
    assert ReportReferral in kinds(reactions.settle(newcomer, RULES, ALL, NOW).effects)


@pytest.mark.parametrize(
    ("stage_event", "features", "exposed"),
    [
        (form(), ALL, 1),
        (event(EventType.PAGE, 9), ALL, 0),  # an anonymous visitor's exposure is not recorded
        (form(), Features(page_experiments=False), 0),
    ],
)
def test_a_page_experiment_exposes_a_lead(stage_event, features, exposed):
    state = LeadState(lead_id="lead-1")
    reactions.react_to_event(state, stage_event, RULES, features, NOW)
    viewed = event(
        EventType.TRACK,
        5,
        name="Experiment Viewed",
        properties={"experiment_id": "hero", "variation_name": "b"},
    )
    reactions.react_to_event(state, viewed, RULES, features, NOW)
    exposures = [
        e for e in reactions.settle(state, RULES, features, NOW).effects if isinstance(e, ExposeToExperiment)
    ]
    assert len(exposures) == exposed
    assert state.pending.exposures == []


def test_exposures_are_bounded():
    state = lead()
    for n in range(EXPOSURES_KEPT + 5):
        viewed = event(
            EventType.TRACK,
            n,
            name="Experiment Viewed",
            properties={"experiment_id": f"e{n}", "variation_id": "a"},
        )
        reactions.react_to_event(state, viewed, RULES, ALL, NOW)
    assert len(state.pending.exposures) == EXPOSURES_KEPT


def test_nurtures_hear_the_events_they_may_wait_for_only_while_enrolled():
    state = lead()
    reactions.react_to_event(state, event(EventType.EMAIL_OPENED, 1), RULES, ALL, NOW)
    assert state.pending.forward == []
    state.enrollments.append(
        Enrollment(sequence_id="welcome_nurture", version=1, enrollment=1, workflow_id="n-1", started_at=NOW)
    )
    reactions.react_to_event(state, event(EventType.EMAIL_OPENED, 2), RULES, ALL, NOW)
    [tell] = [e for e in reactions.settle(state, RULES, ALL, NOW).effects if isinstance(e, TellNurtures)]
    assert [n.event_id for n in tell.events] == ["email_opened-2"]


# --- Messages ------------------------------------------------------------------------------------


def test_enroll_and_stop_requests_wait_in_the_state_until_settled():
    state = lead()
    reactions.request_enrollment(state, EnrollRequest(sequence_id="welcome_nurture", restart=True))
    reactions.request_enrollment(state, EnrollRequest(sequence_id="abm_outreach", stop=True))
    assert reactions.has_work(state, ALL)
    carried = LeadState.model_validate_json(state.model_dump_json())  # what continue-as-new carries
    effects = reactions.settle(carried, RULES, ALL, NOW).effects
    assert StopEnrollments(sequence_id="abm_outreach") in effects
    assert (
        Enroll(trigger=SequencesForTrigger(kind="manual", sequence_id="welcome_nurture", restart=True))
        in effects
    )
    assert not reactions.has_work(carried, ALL)


def test_pending_work_is_bounded():
    state = lead()
    for n in range(PENDING_KEPT + 10):
        reactions.request_enrollment(state, EnrollRequest(sequence_id=f"s{n}"))
    assert len(state.pending.triggers) == PENDING_KEPT
    assert state.pending.triggers[-1].sequence_id == f"s{PENDING_KEPT + 9}"


def test_a_stage_change_by_hand_tells_the_nurtures_the_new_context():
    state = lead()
    reactions.stage_changed_by_hand(state)
    assert reactions.has_work(state, ALL)
    [tell] = [e for e in reactions.settle(state, RULES, ALL, NOW).effects if isinstance(e, TellNurtures)]
    assert tell.context_changed and not state.pending.context_due


# --- Enrollment and context ----------------------------------------------------------------------


def _enrollment(n: int, status: Literal["active", "paused", "completed", "exited"]) -> Enrollment:
    return Enrollment(
        sequence_id=WELCOME.id,
        version=1,
        enrollment=n,
        workflow_id=f"n-{n}",
        status=status,
        started_at=NOW,
    )


@pytest.mark.parametrize(
    ("existing", "restart", "replaced", "number"),
    [
        ([], False, [], 1),
        ([_enrollment(1, "active")], False, [], None),  # welcome's re-entry rule: never
        ([_enrollment(1, "active")], True, [1], 2),
        ([_enrollment(1, "completed"), _enrollment(2, "paused")], True, [2], 3),
    ],
)
def test_an_enrollment_plan(existing, restart, replaced, number):
    state = lead()
    state.enrollments = existing
    trigger = SequencesForTrigger(kind="manual", sequence_id=WELCOME.id, restart=restart)
    plan = reactions.plan_enrollment(state, trigger, WELCOME)
    assert [e.enrollment for e in plan.replace] == replaced and plan.number == number


def test_enrollments_kept_are_bounded_dropping_ended_ones_first():
    state = lead()
    for n in range(reactions.ENROLLMENTS_KEPT + 5):
        reactions.enrolled(state, _enrollment(n, "completed" if n < 10 else "active"))
    assert len(state.enrollments) == reactions.ENROLLMENTS_KEPT
    assert all(e.status == "active" for e in state.enrollments[-10:])


@pytest.mark.parametrize(
    ("engagement", "level"), [(0, "low"), (29, "low"), (30, "medium"), (69, "medium"), (70, "high")]
)
def test_engagement_levels_come_from_the_scoring_config(engagement, level):
    state = lead()
    state.email_engagement = engagement
    assert reactions.lead_context(state, RULES).engagement == level
    stricter = RULES.model_copy(update={"engagement": EngagementBands(medium=50, high=90)})
    assert reactions.lead_context(state, stricter).engagement == (
        "high" if engagement >= 90 else "medium" if engagement >= 50 else "low"
    )


def test_engagement_bands_must_be_in_order():
    with pytest.raises(ValueError, match="medium 80 is above high 70"):
        EngagementBands(medium=80, high=70)


def test_a_rep_ruling_the_lead_out_in_the_crm_disqualifies_it_and_ends_its_hand_off():
    state = lead()
    engaged(state)
    reactions.settle(state, RULES, ALL, NOW)
    state.active_handoff = "handoff-lead-1-1"
    ruled_out = event(EventType.SALES_DISQUALIFIED, name="hs_lead_status=UNQUALIFIED", source="hubspot")
    reactions.react_to_event(state, ruled_out, RULES, ALL, NOW)
    effects = reactions.settle(state, RULES, ALL, NOW).effects
    assert state.stage is LifecycleStage.DISQUALIFIED
    assert state.stage_history[-1].reason == "hs_lead_status=UNQUALIFIED (hubspot)"
    [close] = [e for e in effects if isinstance(e, CloseHandoff)]
    assert "disqualified in the CRM" in close.reason
    [told] = [e for e in effects if isinstance(e, TellNurtures)]
    assert told.context_changed, "the nurtures hear the new stage"


def test_a_customer_ruled_out_in_the_crm_stays_a_customer():
    state = lead()
    reactions.react_to_event(state, event(EventType.PURCHASE, properties={"amount": 1200}), RULES, ALL, NOW)
    reactions.react_to_event(
        state, event(EventType.SALES_DISQUALIFIED, 1, name="Status=Closed - Not Converted"), RULES, ALL, NOW
    )
    assert state.stage is LifecycleStage.CUSTOMER


# --- The CRM record and the deal, changed in the CRM ---------------------------------------------


def sql_with_handoff() -> LeadState:
    state = lead()
    engaged(state)
    reactions.settle(state, RULES, ALL, NOW)
    assert state.stage is LifecycleStage.MQL
    state.active_handoff = "handoff-lead-1-1"
    return state


def lost(n: int = 40, stage: str = "closedlost") -> LeadEvent:
    return event(EventType.DEAL_STAGE_CHANGED, n, name=stage, source="hubspot", properties={"stage": stage})


@pytest.mark.parametrize("stage", ["closedlost", "closed_lost"])
def test_a_lost_deal_recycles_the_lead_and_ends_its_hand_off(stage):
    state = sql_with_handoff()
    reactions.react_to_event(state, lost(stage=stage), RULES, ALL, NOW)
    effects = reactions.settle(state, RULES, ALL, NOW).effects
    assert state.stage is LifecycleStage.RECYCLED
    assert state.stage_history[-1].reason == "deal lost (hubspot)"
    assert state.score < 40, "the score starts over: it qualifies again on new behaviour only"
    [close] = [e for e in effects if isinstance(e, CloseHandoff)]
    assert "deal was lost" in close.reason
    [told] = [e for e in effects if isinstance(e, TellNurtures)]
    assert told.context_changed, "the nurtures held while sales had the lead hear it is back"
    assert not any(isinstance(e, StartHandoff) for e in effects), "it does not re-qualify at once"


def test_a_lost_deal_leaves_a_customer_a_customer_and_a_run_from_before_the_patch_as_it_was():
    customer = lead()
    reactions.react_to_event(
        customer, event(EventType.PURCHASE, properties={"amount": 1200}), RULES, ALL, NOW
    )
    reactions.react_to_event(customer, lost(), RULES, ALL, NOW)
    assert customer.stage is LifecycleStage.CUSTOMER
    old = sql_with_handoff()
    reactions.react_to_event(old, lost(), RULES, Features(deal_lost_recycles=False), NOW)
    assert old.stage is LifecycleStage.MQL


def owner_changed(owner: str | None, n: int = 50) -> LeadEvent:
    return event(
        EventType.CRM_OWNER_CHANGED, n, name="Owner", source="salesforce", properties={"crm_owner_id": owner}
    )


def test_an_owner_set_in_the_crm_is_looked_up_once_and_the_nurtures_hear_it():
    state = lead()
    reactions.react_to_event(state, owner_changed("71000003"), RULES, ALL, NOW)
    effects = reactions.settle(state, RULES, ALL, NOW).effects
    assert state.owner_crm_id == "71000003"
    assert FollowCrmOwner(crm_owner_id="71000003") in effects
    [told] = [e for e in effects if isinstance(e, TellNurtures)]
    assert told.context_changed
    assert reactions.lead_context(state, RULES).owner_crm_id == "71000003"
    reactions.react_to_event(state, owner_changed("71000003", 51), RULES, ALL, NOW)
    again = reactions.settle(state, RULES, ALL, NOW).effects
    assert not any(isinstance(e, FollowCrmOwner) for e in again), "the same owner again changes nothing"
    reactions.react_to_event(state, owner_changed(None, 52), RULES, ALL, NOW)
    assert FollowCrmOwner(crm_owner_id=None) in reactions.settle(state, RULES, ALL, NOW).effects
    assert state.owner_crm_id is None


def test_a_merge_moves_the_lead_to_the_record_left_and_a_deletion_stops_the_crm_pushes():
    state = lead()
    merged = event(EventType.CRM_RECORD_MERGED, 60, properties={"contact_id": "c-9", "merged_ids": ["c-1"]})
    reactions.react_to_event(state, merged, RULES, ALL, NOW)
    assert state.crm_contact_id == "c-9"
    gone = event(EventType.CRM_RECORD_DELETED, 61, properties={"contact_id": "c-1"})
    reactions.react_to_event(state, gone, RULES, ALL, NOW)
    assert state.crm_contact_id == "c-9", "a deletion of the record merged away leaves the one left"
    deleted = event(EventType.CRM_RECORD_DELETED, 62, properties={"contact_id": "c-9"})
    reactions.react_to_event(state, deleted, RULES, ALL, NOW)
    assert state.crm_contact_id is None and state.crm_deleted
    engaged(state)
    effects = reactions.settle(state, RULES, ALL, NOW).effects
    assert state.stage is LifecycleStage.MQL
    [push] = [e for e in effects if isinstance(e, PushProfile)]
    assert push.targets == ["email"], "a record a rep deleted is not made again by a push"
    assert any(isinstance(e, StartHandoff) for e in effects), "the lead still goes to sales"


def test_a_reps_logged_call_tells_the_hand_off_in_flight_and_nothing_without_one():
    state = sql_with_handoff()
    call = event(EventType.SALES_ACTIVITY, 70, name="call logged", source="salesforce")
    reactions.react_to_event(state, call, RULES, ALL, NOW)
    effects = reactions.settle(state, RULES, ALL, NOW).effects
    assert TellHandoffCrmAccepted(detail="call logged (salesforce)") in effects
    quiet = lead()
    reactions.react_to_event(quiet, call, RULES, ALL, NOW)
    assert not any(
        isinstance(e, TellHandoffCrmAccepted) for e in reactions.settle(quiet, RULES, ALL, NOW).effects
    )


def test_a_double_opt_in_form_asks_for_consent_and_its_confirmation_enrolls_the_welcome():
    state = LeadState(lead_id="lead-2")
    asked = form(7).model_copy(update={"properties": {"form_id": "newsletter", "consent_requested": True}})
    effects = reactions.react_to_event(state, asked, RULES, ALL, NOW)
    assert [type(e).__name__ for e in effects if not isinstance(e, UpdateSearchAttributes)] == [
        "SyncForm",
        "AskForConsent",
    ]
    confirmed = event(EventType.CONSENT_CONFIRMED, 8, submission_id="s7", welcome_list="NEWS")
    effects = reactions.react_to_event(state, confirmed, RULES, ALL, NOW)
    [enroll] = [e for e in effects if type(e).__name__ == "EnrollConfirmed"]
    assert enroll.model_dump() == {"submission_id": "s7", "welcome_list": "NEWS"}
    plain = reactions.react_to_event(LeadState(lead_id="lead-3"), form(9), RULES, ALL, NOW)
    assert not any(type(e).__name__ == "AskForConsent" for e in plain), (
        "a form without double opt-in asks nothing"
    )
