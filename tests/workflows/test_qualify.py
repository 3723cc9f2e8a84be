"""The qualify phase in the lead's workflow, on the time-skipping server: events score the lead,
the seed's MQL rule moves it, score and stage are pushed, nurture enrolls and pauses at MQL, a
person's stage change is validated."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.events import EventType
from domain.handoff import HandoffOutcome
from domain.lead import EventsRecorded, LifecycleStage
from domain.nurture import NurtureState
from domain.qualify import CHANGE_STAGE_UPDATE, EnrollRequest, StageChangeRequest, StageChangeResult
from domain.scoring import FitResult, Seniority
from tests.helpers.fakes import RecordingPlatforms
from tests.helpers.lead import (
    SEQUENCES,
    WELCOME,
    engaged_lead_events,
    event,
    form,
    form_at,
    signal_with_start,
    state_of,
)
from tests.helpers.temporal import workflow_worker
from tests.helpers.waiting import eventually
from workers.registry import WORKFLOWS
from workflows.lead import LeadWorkflow
from workflows.nurture import NurtureWorkflow


@pytest.fixture
def env(time_skipping_env):
    """The shared time-skipping server (tests/conftest.py)."""
    return time_skipping_env


@pytest.fixture
async def lead_worker(env) -> AsyncIterator[tuple[RecordingPlatforms, str]]:
    platforms = RecordingPlatforms()
    platforms.sequences = [WELCOME]
    async with workflow_worker(env.client, workflows=WORKFLOWS, activities=platforms.all()) as queue:
        yield platforms, queue


async def test_events_cross_the_mql_line_push_and_pause_nurture(env, lead_worker):
    platforms, queue = lead_worker
    lead_id = str(uuid.uuid4())
    now = await env.get_current_time()
    first = form("s1").model_copy(update={"occurred_at": now - timedelta(hours=6)})
    handle = await signal_with_start(env.client, lead_id, first, queue)
    await eventually(
        lambda: _has(handle, lambda s: any(e.sequence_id == "welcome_nurture" for e in s.enrollments))
    )
    state = await state_of(handle)
    assert state.stage is LifecycleStage.LEAD and state.fit is not None and state.fit.fit
    assert state.score > 0 and "content 0 < 3" in " ".join(state.mql_missing)
    assert [q.kind for q in platforms.triggers] == ["lead_created"]

    await signal_with_start(env.client, lead_id, engaged_lead_events(now), queue)
    await eventually(lambda: _has(handle, lambda s: s.stage is LifecycleStage.MQL))
    state = await state_of(handle)
    change = state.stage_history[-1]
    assert change.previous is LifecycleStage.LEAD and change.reason.startswith("MQL rule: ")
    assert "email engagement" in change.reason and state.email_engagement >= 70
    assert state.scorecard.preferred_topic() == "security"
    # The CRM and the email platform heard the stage and score.
    await eventually(lambda: _pushed(platforms, "mql"))
    crm = [d for kind, d in platforms.pushes if kind == "crm" and d.lifecycle_stage == "mql"][-1]
    assert crm.lead_score == state.score and crm.score_band == state.score_band
    # The welcome nurture hears it and pauses.
    nurture = env.client.get_workflow_handle(state.enrollments[0].workflow_id)
    await eventually(lambda: _nurture_status(nurture, "paused"))
    paused = await nurture.query(NurtureWorkflow.state)
    assert paused.pause_reason == "lead became mql"
    # Content downloads also enrolled the topic follow-up trigger.
    assert "content_downloaded" in [q.kind for q in platforms.triggers]


async def test_a_person_recycles_the_lead_and_nurture_resumes(env, lead_worker):
    _, queue = lead_worker
    lead_id = str(uuid.uuid4())
    now = await env.get_current_time()
    handle = await signal_with_start(
        env.client,
        lead_id,
        [form_at(now), *engaged_lead_events(now)],
        queue,
    )
    await eventually(lambda: _has(handle, lambda s: s.stage is LifecycleStage.MQL and bool(s.enrollments)))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            CHANGE_STAGE_UPDATE,
            StageChangeRequest(stage=LifecycleStage.ANONYMOUS, reason="oops", by="ops"),
            result_type=StageChangeResult,
        )
    assert "cannot move to anonymous" in str(refused.value.cause)
    result = await handle.execute_update(
        CHANGE_STAGE_UPDATE,
        StageChangeRequest(
            stage=LifecycleStage.RECYCLED, reason="no budget this quarter", by="sdr@example.com"
        ),
        result_type=StageChangeResult,
    )
    assert (
        result.changed and result.previous is LifecycleStage.MQL and result.stage is LifecycleStage.RECYCLED
    )
    state = await state_of(handle)
    assert state.stage_history[-1].reason == "no budget this quarter (by sdr@example.com)"
    # Recycling starts the behaviour score over: the same old clicks do not requalify at once.
    assert state.stage is LifecycleStage.RECYCLED and state.email_engagement == 0
    nurture = env.client.get_workflow_handle(state.enrollments[0].workflow_id)
    await eventually(lambda: _nurture_status(nurture, "active"))
    # New engagement requalifies.
    later = await env.get_current_time() + timedelta(hours=8)
    await signal_with_start(env.client, lead_id, engaged_lead_events(later), queue)
    await eventually(lambda: _has(handle, lambda s: s.stage is LifecycleStage.MQL))


async def test_a_lead_without_icp_fit_is_not_an_mql(env, lead_worker):
    platforms, queue = lead_worker
    platforms.fit = FitResult(
        fit=False,
        points=0,
        matched=["country"],
        missing=["industry", "employees", "seniority"],
        seniority=Seniority.INDIVIDUAL,
        free_mail=False,
        competitor=False,
    )
    lead_id = str(uuid.uuid4())
    now = await env.get_current_time()
    handle = await signal_with_start(
        env.client,
        lead_id,
        [form_at(now), *engaged_lead_events(now)],
        queue,
    )
    await eventually(lambda: _has(handle, lambda s: s.email_engagement >= 70 and s.content_pieces == 3))
    state = await state_of(handle)
    assert state.stage is LifecycleStage.LEAD
    assert any("ICP" in m for m in state.mql_missing), state.mql_missing


async def test_a_purchase_makes_a_customer(env, lead_worker):
    platforms, queue = lead_worker
    lead_id = str(uuid.uuid4())
    now = await env.get_current_time()
    handle = await signal_with_start(
        env.client,
        lead_id,
        [form_at(now), event(EventType.PURCHASE, now, 1)],
        queue,
    )
    await eventually(lambda: _has(handle, lambda s: s.stage is LifecycleStage.CUSTOMER))
    await eventually(lambda: _pushed(platforms, "customer"))
    # The account's customer journey hears of the purchase (an account of one: no Segment group).
    await eventually(lambda: _customer_reported(platforms, "purchase"))
    report = platforms.customer_reports[0]
    assert report.account_id == f"lead-{lead_id}" and report.events[0].lead_id == lead_id


async def _customer_reported(platforms: RecordingPlatforms, kind: str) -> bool:
    return any(e.kind == kind for r in platforms.customer_reports for e in r.events)


async def test_a_customers_use_and_answers_reach_the_account_and_a_promoter_becomes_an_advocate(
    env, lead_worker
):
    platforms, queue = lead_worker
    lead_id = str(uuid.uuid4())
    now = await env.get_current_time()
    group = event(EventType.GROUP, now, 0, properties={"group_id": "acme"})
    handle = await signal_with_start(
        env.client, lead_id, [form_at(now), group, event(EventType.PURCHASE, now, 1)], queue
    )
    await eventually(lambda: _customer_reported(platforms, "purchase"))
    used = event(EventType.TRACK, now, 2, name="Logged In", properties={"plan": "team"})
    answered = event(EventType.TRACK, now, 3, name="Survey Responded", properties={"score": 10})
    await handle.signal(LeadWorkflow.events, EventsRecorded(events=[used, answered]))
    await eventually(lambda: _customer_reported(platforms, "survey_response"))
    kinds = [(e.kind, e.name) for r in platforms.customer_reports for e in r.events]
    assert ("usage", "Logged In") in kinds and ("survey_response", "Survey Responded") in kinds
    assert {r.account_id for r in platforms.customer_reports} == {"acme"}
    await eventually(lambda: _has(handle, lambda s: s.stage is LifecycleStage.ADVOCATE))
    # Before the purchase, product events are a lead's behaviour, not an account's.
    assert not any(
        e.kind == "usage" and e.occurred_at < now for r in platforms.customer_reports for e in r.events
    )


async def test_a_referral_code_names_the_advocate(env, lead_worker):
    platforms, queue = lead_worker
    lead_id, advocate = str(uuid.uuid4()), str(uuid.uuid4())
    now = await env.get_current_time()
    landed = event(EventType.PAGE, now, 1, properties={"path": "/", "referral_code": advocate})
    handle = await signal_with_start(env.client, lead_id, [landed, form_at(now)], queue)
    await eventually(lambda: _has(handle, lambda s: s.referred_by == advocate))
    await eventually(lambda: _referred(platforms))
    assert platforms.referrals[0].new_lead_id == lead_id and platforms.referrals[0].referral_code == advocate
    assert platforms.customer_reports == []  # not a customer: nothing for an account


async def _referred(platforms: RecordingPlatforms) -> bool:
    return bool(platforms.referrals)


async def _has(handle, predicate) -> bool:
    return bool(predicate(await state_of(handle)))


async def _pushed(platforms: RecordingPlatforms, stage: str) -> bool:
    return any(d.lifecycle_stage == stage for _, d in platforms.pushes)


async def _nurture_status(handle, status: str) -> bool:
    state: NurtureState = await handle.query(NurtureWorkflow.state)
    return state.status == status


async def test_form_abandonment_enrolls_recovery_and_a_restart_moves_to_the_new_version(env, lead_worker):
    platforms, queue = lead_worker
    recovery = SEQUENCES["form_abandonment_recovery"]
    platforms.sequences = [recovery]
    lead_id = str(uuid.uuid4())
    now = await env.get_current_time()
    abandoned = event(EventType.FORM_ABANDONED, now, 1, form_id="demo", email_hash="e" * 64)
    handle = await signal_with_start(env.client, lead_id, abandoned, queue)
    await eventually(lambda: _has(handle, lambda s: bool(s.enrollments)))
    first = (await state_of(handle)).enrollments[0]
    assert first.sequence_id == recovery.id and first.version == 1
    assert [q.kind for q in platforms.triggers][-1] == "form_abandoned"

    platforms.sequences = [recovery.model_copy(update={"version": 2})]
    await handle.signal(LeadWorkflow.enroll, EnrollRequest(sequence_id=recovery.id, restart=True))
    await eventually(lambda: _has(handle, lambda s: len(s.enrollments) == 2))
    old, new = (await state_of(handle)).enrollments
    assert old.status == "exited" and old.reason == "replaced by version 2"
    assert new.version == 2 and new.enrollment == 2 and new.status == "active"
    described = await env.client.get_workflow_handle(old.workflow_id).describe()
    assert described.status is not None and described.status.name == "CANCELED"


async def test_a_booked_meeting_goes_on_the_crm_record_at_once(env, lead_worker):
    platforms, queue = lead_worker
    lead_id = str(uuid.uuid4())
    now = await env.get_current_time()
    booked = event(
        EventType.MEETING_BOOKED,
        now,
        1,
        name="Intro call",
        properties={"meeting_start": "2026-12-01T15:00:00Z", "meeting_end": "2026-12-01T15:30:00Z"},
    )
    await signal_with_start(env.client, lead_id, [form_at(now), booked], queue)
    await eventually(lambda: _logged(platforms))
    meeting = platforms.meetings[0]
    assert meeting.subject == "Intro call" and meeting.end - meeting.start == timedelta(minutes=30)
    assert meeting.idempotency_key.endswith(f":meeting:{booked.event_id}")
    # Booked outside a scheduler (no Calendly invite): the calendar event too.
    await eventually(lambda: _invited(platforms))
    invite = platforms.invites[0]
    assert invite.start == meeting.start and invite.lead_id == lead_id
    assert invite.idempotency_key.endswith(f":meeting-invite:{booked.event_id}")


async def test_a_calendly_booking_has_its_invite_already(env, lead_worker):
    platforms, queue = lead_worker
    now = await env.get_current_time()
    booked = event(
        EventType.MEETING_BOOKED, now, 1, name="Demo", properties={"meeting_start": "2026-12-02T15:00:00Z"}
    ).model_copy(update={"source": "calendly"})
    await signal_with_start(env.client, str(uuid.uuid4()), [form_at(now), booked], queue)
    await eventually(lambda: _logged(platforms))
    assert platforms.invites == []


async def _invited(platforms: RecordingPlatforms) -> bool:
    return bool(platforms.invites)


async def _logged(platforms: RecordingPlatforms) -> bool:
    return bool(platforms.meetings)


async def test_acceptance_makes_an_sql_owned_by_the_rep_in_the_sales_sequence(env, lead_worker):
    platforms, queue = lead_worker
    platforms.sequences = [WELCOME, SEQUENCES["sales_outreach"]]
    lead_id = str(uuid.uuid4())
    now = await env.get_current_time()
    handle = await signal_with_start(env.client, lead_id, [form_at(now), *engaged_lead_events(now)], queue)
    await eventually(lambda: _has(handle, lambda s: s.active_handoff is not None))
    handoff_id = (await state_of(handle)).active_handoff
    assert handoff_id == f"handoff-{lead_id}-1"
    await handle.signal(
        LeadWorkflow.handoff_outcome,
        HandoffOutcome(handoff_id=handoff_id, rep_id="ana", accepted_at=now, crm_owner_id="owner-ana"),
    )
    await eventually(lambda: _has(handle, lambda s: s.stage is LifecycleStage.SQL))
    await eventually(
        lambda: _has(handle, lambda s: any(e.sequence_id == "sales_outreach" for e in s.enrollments))
    )
    state = await state_of(handle)
    assert state.owner == "ana" and state.owner_crm_id == "owner-ana" and state.active_handoff is None
    assert state.stage_history[-1].reason == f"accepted by ana ({handoff_id})"
    welcome = next(e for e in state.enrollments if e.sequence_id == WELCOME.id)
    await eventually(lambda: _nurture_status(env.client.get_workflow_handle(welcome.workflow_id), "paused"))


async def test_a_contact_reports_intent_to_its_account_and_an_account_stop_ends_its_outreach(
    env, lead_worker
):
    platforms, queue = lead_worker
    abm = SEQUENCES["abm_outreach"]
    platforms.sequences = [abm]
    lead_id = str(uuid.uuid4())
    now = await env.get_current_time()
    group = event(EventType.GROUP, now, 1, properties={"group_id": "acct-42"})
    handle = await signal_with_start(
        env.client, lead_id, [form_at(now), group, *engaged_lead_events(now)], queue
    )
    await eventually(lambda: _reported(platforms))
    report = platforms.account_reports[-1]
    assert report.lead_id == lead_id and report.intent_points > 0 and report.fit is True
    await handle.signal(LeadWorkflow.enroll, EnrollRequest(sequence_id=abm.id))
    await eventually(lambda: _has(handle, lambda s: any(e.sequence_id == abm.id for e in s.enrollments)))
    await handle.signal(LeadWorkflow.enroll, EnrollRequest(sequence_id=abm.id, stop=True))
    await eventually(
        lambda: _has(
            handle, lambda s: all(e.status == "exited" for e in s.enrollments if e.sequence_id == abm.id)
        )
    )
    stopped = next(e for e in (await state_of(handle)).enrollments if e.sequence_id == abm.id)
    assert stopped.reason == "stopped"


async def _reported(platforms: RecordingPlatforms) -> bool:
    return bool(platforms.account_reports)


async def test_a_deal_lost_in_the_crm_recycles_the_sql_and_a_reassignment_follows_the_crm_owner(
    env, lead_worker
):
    platforms, queue = lead_worker
    platforms.sequences = [WELCOME, SEQUENCES["sales_outreach"]]
    lead_id = str(uuid.uuid4())
    now = await env.get_current_time()
    handle = await signal_with_start(env.client, lead_id, [form_at(now), *engaged_lead_events(now)], queue)
    await eventually(lambda: _has(handle, lambda s: s.active_handoff is not None))
    handoff_id = (await state_of(handle)).active_handoff
    await handle.signal(
        LeadWorkflow.handoff_outcome,
        HandoffOutcome(handoff_id=handoff_id, rep_id="ana", accepted_at=now, crm_owner_id="owner-ana"),
    )
    await eventually(lambda: _has(handle, lambda s: s.stage is LifecycleStage.SQL))
    # A manager gives the record to Ben in the CRM: the lead is Ben's from now on.
    reassigned = event(EventType.CRM_OWNER_CHANGED, now, 1, properties={"crm_owner_id": "owner-ben"})
    await handle.signal(LeadWorkflow.events, EventsRecorded(events=[reassigned]))
    await eventually(lambda: _has(handle, lambda s: s.owner == "ben" and s.owner_crm_id == "owner-ben"))
    lost = event(EventType.DEAL_STAGE_CHANGED, now, 2, name="closedlost", properties={"stage": "closedlost"})
    await handle.signal(LeadWorkflow.events, EventsRecorded(events=[lost]))
    await eventually(lambda: _has(handle, lambda s: s.stage is LifecycleStage.RECYCLED))
    state = await state_of(handle)
    assert state.stage_history[-1].reason == "deal lost (test)" and state.email_engagement == 0
    welcome = next(e for e in state.enrollments if e.sequence_id == WELCOME.id)
    # Back with marketing: the welcome nurture held while sales had the lead resumes.
    await eventually(lambda: _nurture_status(env.client.get_workflow_handle(welcome.workflow_id), "active"))
