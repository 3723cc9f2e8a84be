from datetime import UTC, datetime

from domain.ids import email_hash, idempotency_key, lead_id_for_email, lead_workflow_id
from domain.lead import SEEN_EVENTS_KEPT, LeadState, LifecycleStage, is_forward

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_lead_id_is_stable_and_case_insensitive():
    assert lead_id_for_email("Ada@Example.com ") == lead_id_for_email("ada@example.com")
    assert lead_id_for_email("ada@example.com") != lead_id_for_email("bob@example.com")
    assert lead_workflow_id("x") == "lead-x"


def test_email_hash_hides_the_address():
    hashed = email_hash("Ada@Example.com")
    assert hashed == email_hash("ada@example.com")
    assert "ada" not in hashed and len(hashed) == 64


def test_idempotency_key_is_built_from_business_keys():
    assert idempotency_key("lead-1", "form", "s1", "crm") == "lead-1:form:s1:crm"


def test_stages_only_move_forward():
    assert is_forward(LifecycleStage.ANONYMOUS, LifecycleStage.LEAD)
    assert is_forward(LifecycleStage.LEAD, LifecycleStage.CUSTOMER)
    assert not is_forward(LifecycleStage.MQL, LifecycleStage.LEAD)
    assert not is_forward(LifecycleStage.LEAD, LifecycleStage.LEAD)
    assert not is_forward(LifecycleStage.LEAD, LifecycleStage.RECYCLED)


def test_move_to_keeps_the_history_with_reason_and_time():
    state = LeadState(lead_id="l", email_hash="h")
    assert state.move_to(LifecycleStage.LEAD, "form demo", AT)
    assert not state.move_to(LifecycleStage.ANONYMOUS, "backwards", AT)
    assert state.stage is LifecycleStage.LEAD
    assert [(c.previous, c.stage, c.reason) for c in state.stage_history] == [
        (LifecycleStage.ANONYMOUS, LifecycleStage.LEAD, "form demo")
    ]


def test_seen_ids_are_bounded():
    state = LeadState(lead_id="l", email_hash="h")
    for n in range(SEEN_EVENTS_KEPT + 50):
        state.remember(f"s{n}")
    assert len(state.seen_event_ids) == SEEN_EVENTS_KEPT
    assert state.has_seen(f"s{SEEN_EVENTS_KEPT + 49}")
    assert not state.has_seen("s0")
