"""The lead workflow on the time-skipping server, its activities replaced by recording fakes."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle

from domain.events import EventType, Touch
from domain.lead import EventsRecorded, LeadMerged, LeadState, LeadWorkflowInput, LifecycleStage
from tests.helpers.fakes import RecordingPlatforms
from tests.helpers.lead import START, form, page, signal_with_start, state_of
from tests.helpers.temporal import workflow_worker
from tests.helpers.waiting import eventually
from workers.registry import WORKFLOWS
from workflows.lead import LeadWorkflow


@pytest.fixture
def platforms() -> RecordingPlatforms:
    return RecordingPlatforms()


@pytest.fixture
async def worker(time_skipping_env, platforms):
    async with workflow_worker(
        time_skipping_env.client, workflows=WORKFLOWS, activities=platforms.all()
    ) as queue:
        yield queue


async def test_a_form_makes_a_lead_and_syncs_both_platforms(time_skipping_env, worker, platforms):
    lead_id = str(uuid.uuid4())
    handle = await signal_with_start(time_skipping_env.client, lead_id, form("s1"), worker)
    await eventually(lambda: _state_has(handle, lambda s: s.crm_contact_id and s.email_profile_id))
    state = await state_of(handle)
    assert state.stage is LifecycleStage.LEAD
    assert state.stage_history[0].reason == "form_submitted (demo)"
    assert state.welcome_enrolled and state.activity.forms_submitted == 1
    assert state.email_hash == "e" * 64
    assert state.first_touch == state.last_touch == Touch(source="linkedin", campaign="q4")
    assert [c.idempotency_key for c in platforms.crm_calls] == [f"lead-{lead_id}:form:s1:crm-upsert"]
    assert platforms.crm_calls[0].lifecycle_stage is LifecycleStage.LEAD
    assert platforms.email_calls[0].list_id == "WELCOME"


async def test_a_redelivered_submission_is_folded_once(time_skipping_env, worker, platforms):
    lead_id = str(uuid.uuid4())
    handle = await signal_with_start(time_skipping_env.client, lead_id, form("s1"), worker)
    await signal_with_start(time_skipping_env.client, lead_id, form("s1"), worker)
    await signal_with_start(time_skipping_env.client, lead_id, form("s2", campaign="q1"), worker)
    await eventually(
        lambda: _state_has(
            handle, lambda s: len(platforms.crm_calls) == 2 and s.activity.forms_submitted == 2
        )
    )
    state = await state_of(handle)
    assert state.first_touch is not None and state.first_touch.campaign == "q4"
    assert state.last_touch is not None and state.last_touch.campaign == "q1"
    assert sorted(c.submission_id for c in platforms.crm_calls) == ["s1", "s2"]


async def test_a_platform_outage_is_waited_out(time_skipping_env, worker, platforms):
    platforms.crm_failures_left = 3
    handle = await signal_with_start(time_skipping_env.client, str(uuid.uuid4()), form("s1"), worker)
    # The retries' backoff (1 + 2 + 4 s) on the server's clock, skipped rather than waited for.
    await time_skipping_env.sleep(timedelta(seconds=30))
    await eventually(lambda: _state_has(handle, lambda s: s.crm_contact_id is not None), timeout=30)
    assert len(platforms.crm_calls) == 4
    assert (await state_of(handle)).failures == []


async def test_a_rejected_write_is_recorded_and_the_journey_goes_on(time_skipping_env, worker, platforms):
    platforms.crm_rejects = True
    handle = await signal_with_start(time_skipping_env.client, str(uuid.uuid4()), form("s1"), worker)
    await eventually(lambda: _state_has(handle, lambda s: bool(s.failures) and s.email_profile_id))
    state = await state_of(handle)
    assert len(platforms.crm_calls) == 1, "a permanent rejection is not retried"
    assert state.failures[0].step == "crm.upsert_contact"
    assert "bad property" in state.failures[0].message
    assert state.welcome_enrolled


async def test_the_lead_waits_a_month_for_its_next_event(time_skipping_env, worker, platforms):
    # On the shared server: every test's worker ends its runs (workflow_worker), so none is left
    # to replay its retries through the month.
    env = time_skipping_env
    lead_id = str(uuid.uuid4())
    handle = await signal_with_start(env.client, lead_id, form("s1"), worker)
    await eventually(lambda: _state_has(handle, lambda s: s.crm_contact_id is not None))
    await env.sleep(timedelta(days=30))
    await signal_with_start(env.client, lead_id, form("s2"), worker)
    await eventually(
        lambda: _state_has(
            handle, lambda s: s.activity.forms_submitted == 2 and len(platforms.crm_calls) == 2
        )
    )
    described = await handle.describe()
    assert described.status is not None and described.status.name == "RUNNING"


async def test_continue_as_new_carries_the_state(time_skipping_env, worker, platforms):
    lead_id = str(uuid.uuid4())
    earlier = LeadState(lead_id=lead_id, email_hash="h" * 64, crm_contact_id="c-9")
    earlier.activity.forms_submitted = 5
    earlier.move_to(LifecycleStage.LEAD, "earlier run", datetime(2025, 1, 1, tzinfo=UTC))
    earlier.remember("s-old")
    handle = await time_skipping_env.client.start_workflow(
        LeadWorkflow.run,
        LeadWorkflowInput(lead_id=lead_id, email_hash="h" * 64, state=earlier, pending=[form("s-new")]),
        id=f"lead-{lead_id}",
        task_queue=worker,
    )
    await eventually(lambda: _state_has(handle, lambda s: s.activity.forms_submitted == 6))
    await handle.signal(LeadWorkflow.events, EventsRecorded(events=[form("s-old")]))
    # Then one it has not seen: once that is folded, the signal before it was taken (and dropped).
    await handle.signal(LeadWorkflow.events, EventsRecorded(events=[page("p-after", START)]))
    await eventually(lambda: _state_has(handle, lambda s: s.activity.page_views == 1))
    state = await state_of(handle)
    assert state.activity.forms_submitted == 6, "an event seen before continue-as-new is not folded again"
    assert state.stage_history[0].reason == "earlier run"


async def _state_has(handle: WorkflowHandle, predicate) -> bool:
    return bool(predicate(await state_of(handle)))


async def test_anonymous_page_views_count_toward_the_lead(time_skipping_env, worker, platforms):
    lead_id = str(uuid.uuid4())
    views = [
        page("p1", START),
        page("p2", START + timedelta(minutes=10)),
        page("p3", START + timedelta(hours=2), "/docs"),
        page("p4", START + timedelta(days=1)),
        page("p5", START + timedelta(days=1, minutes=5)),
    ]
    handle = await signal_with_start(time_skipping_env.client, lead_id, views, worker)
    await eventually(lambda: _state_has(handle, lambda s: s.activity.page_views == 5))
    state = await state_of(handle)
    assert state.activity.sessions == 3, "a new session after 30 minutes without activity"
    assert state.stage is LifecycleStage.ANONYMOUS, "page views alone do not make a lead"
    assert platforms.crm_calls == []
    await signal_with_start(time_skipping_env.client, lead_id, form("s1"), worker)
    await eventually(
        lambda: _state_has(handle, lambda s: s.stage is LifecycleStage.LEAD and s.crm_contact_id)
    )
    assert [t.type for t in (await state_of(handle)).timeline][-1] is EventType.FORM_SUBMITTED


async def test_a_merged_lead_ends_its_run(time_skipping_env, worker, platforms):
    handle = await signal_with_start(time_skipping_env.client, str(uuid.uuid4()), page("p1", START), worker)
    await handle.signal(LeadWorkflow.merged_into, LeadMerged(into_lead_id="other"))
    final = await handle.result()
    assert final.merged_into == "other" and final.activity.page_views == 1


async def test_events_in_one_signal_are_folded_in_the_order_they_happened(
    time_skipping_env, worker, platforms
):
    views = [
        page("late", START + timedelta(hours=4)),
        page("early", START),
        page("middle", START + timedelta(minutes=10)),
    ]
    handle = await signal_with_start(time_skipping_env.client, str(uuid.uuid4()), views, worker)
    await eventually(lambda: _state_has(handle, lambda s: s.activity.page_views == 3))
    state = await state_of(handle)
    assert state.activity.sessions == 2
    assert [t.event_id for t in state.timeline] == ["early", "middle", "late"]
