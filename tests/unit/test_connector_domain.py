"""Pure parts of the connectors: GCRA arithmetic, step validation, personalization."""

import time

import pytest
from pydantic import ValidationError

from activities.contacts import personalize
from domain.connectors import ConnectorStepsInput
from domain.ratelimits import OverRateLimit, RateLimit, limit_for
from platforms.throttle import LocalThrottle
from store.models import Lead


def test_limits_are_found_by_key_then_provider_wildcard_then_provider():
    limits = {
        "slack:*": RateLimit(per_second=1),
        "hubspot": RateLimit(per_second=9, burst=10),
        "hubspot:search": RateLimit(per_second=4),
    }
    assert limit_for(limits, "slack:C1") == limits["slack:*"]
    assert limit_for(limits, "hubspot:search") == limits["hubspot:search"]
    assert limit_for(limits, "hubspot:objects") == limits["hubspot"]
    assert limit_for(limits, "ga4") is None


async def test_a_burst_passes_at_once_and_the_rest_keeps_the_rate():
    throttle = LocalThrottle({"p": RateLimit(per_second=50, burst=5)})
    started = time.monotonic()
    for _ in range(5):
        await throttle.acquire("p")
    burst = time.monotonic() - started
    for _ in range(5):
        await throttle.acquire("p")
    total = time.monotonic() - started
    assert burst < 0.02
    # Five more at 50/s: about 100 ms, never much less.
    assert 0.09 <= total < 0.5


async def test_a_wait_longer_than_the_limit_is_left_to_temporal():
    throttle = LocalThrottle({"p": RateLimit(per_second=1, burst=1)}, max_wait=0.5)
    await throttle.acquire("p")
    with pytest.raises(OverRateLimit) as caught:
        await throttle.acquire("p")
        await throttle.acquire("p")
    assert caught.value.retry_after > 0.5


async def test_keys_without_a_limit_pass():
    throttle = LocalThrottle({})
    for _ in range(1000):
        await throttle.acquire("ga4")


def test_connector_steps_are_validated_field_by_field():
    with pytest.raises(ValidationError) as caught:
        ConnectorStepsInput(
            lead_id="l1",
            request_id="r1",
            steps=[{"activity": "crm.create_task", "input": {"subject": "Call"}}],
        )
    assert "steps[0].input (crm.create_task): due_at: Field required" in str(caught.value)
    with pytest.raises(ValidationError) as unknown:
        ConnectorStepsInput(lead_id="l1", request_id="r1", steps=[{"activity": "crm.drop_table"}])
    assert "steps[0].activity: unknown 'crm.drop_table'" in str(unknown.value)
    ok = ConnectorStepsInput(
        lead_id="l1",
        request_id="r1",
        steps=[{"activity": "notify.post_message", "input": {"channel": "C1", "text": "hi {first_name}"}}],
    )
    assert ok.steps[0].input["channel"] == "C1"


def test_personalize_fills_profile_fields_and_blanks_unknown_ones():
    lead = Lead(lead_id="l1", email="ada@x.com", first_name="Ada", last_name="Lovelace", company="X")
    assert personalize("{name} of {company} ({job_title}) {nope}", lead) == "Ada Lovelace of X () "
    assert personalize("no fields", lead) == "no fields"
    assert personalize("{first_name}", None) == "{first_name}"


def test_nurture_ids_name_their_lead_sequence_and_enrollment():
    from domain.nurture import nurture_workflow_id, parse_nurture_workflow_id

    lead = "830805f1-5d16-5e3a-9b1c-7fc0a10c9134"
    made = nurture_workflow_id(lead, "welcome_nurture", 3)
    assert parse_nurture_workflow_id(made) == (lead, "welcome_nurture", 3)
    assert parse_nurture_workflow_id(nurture_workflow_id(lead, "a-b-c", 12)) == (lead, "a-b-c", 12)
    assert parse_nurture_workflow_id(f"lead-{lead}") is None
    assert parse_nurture_workflow_id(f"nurture-{lead}-x") is None
