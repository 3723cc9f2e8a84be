"""The one send gate's decision: consent by purpose, suppression by what stops which purpose, and
the marketing frequency cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.send_gate import GateFacts, SendPurpose, decide

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
CONSENTED = GateFacts(consent=True, consent_at=NOW - timedelta(days=30))


def gate(purpose: SendPurpose, facts: GateFacts, max_sends: int = 3):
    return decide(purpose, facts, max_sends=max_sends, per=WEEK, now=NOW)


@pytest.mark.parametrize(
    ("purpose", "facts", "status", "reason"),
    [
        ("marketing", CONSENTED, "granted", None),
        ("marketing", GateFacts(), "refused", "no marketing consent"),
        ("sales", GateFacts(), "granted", None),
        ("service", GateFacts(), "granted", None),
    ],
)
def test_marketing_needs_consent_and_one_to_one_or_service_mail_does_not(purpose, facts, status, reason):
    decision = gate(purpose, facts)
    assert (decision.status, decision.reason) == (status, reason)


@pytest.mark.parametrize(
    ("stopped", "refused"),
    [
        ("email_unsubscribed", {"marketing", "sales"}),
        ("email_bounced", {"marketing", "sales", "service"}),
        ("email_spam_complaint", {"marketing", "sales", "service"}),
    ],
)
def test_what_each_stop_refuses(stopped, refused):
    facts = CONSENTED.model_copy(update={"stopped": {stopped: NOW - timedelta(days=1)}})
    for purpose in ("marketing", "sales", "service"):
        decision = gate(purpose, facts)
        assert (decision.status == "refused") is (purpose in refused), (stopped, purpose)
        if purpose in refused:
            assert decision.reason is not None and decision.reason.startswith(stopped.removeprefix("email_"))


def test_consent_given_again_after_an_unsubscribe_restores_marketing_but_not_after_a_bounce():
    unsubscribed = NOW - timedelta(days=10)
    again = GateFacts(
        consent=True, consent_at=NOW - timedelta(days=2), stopped={"email_unsubscribed": unsubscribed}
    )
    assert gate("marketing", again).status == "granted"
    before = again.model_copy(update={"consent_at": unsubscribed - timedelta(days=1)})
    assert gate("marketing", before).status == "refused"
    bounced = again.model_copy(update={"stopped": {"email_bounced": unsubscribed}})
    assert gate("marketing", bounced).status == "refused"


def test_the_cap_defers_marketing_until_the_oldest_counted_send_leaves_the_window():
    sent = [
        NOW - timedelta(days=6),
        NOW - timedelta(days=3),
        NOW - timedelta(days=1),
        NOW - timedelta(days=8),
    ]
    facts = CONSENTED.model_copy(update={"recent_marketing": sent})
    decision = gate("marketing", facts)
    assert decision.status == "deferred"
    assert decision.retry_at == NOW - timedelta(days=6) + WEEK
    assert gate("marketing", facts, max_sends=4).status == "granted"
    assert gate("sales", facts).status == "granted", "one-to-one mail is not under the marketing cap"
