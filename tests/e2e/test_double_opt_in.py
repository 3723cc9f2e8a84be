"""Double opt-in, as the person lives it: the newsletter form (`double_opt_in = true`) is
submitted with the consent box ticked; the consent does not count yet, the welcome flow does not
subscribe them, and the engine emails them a confirmation link through the email platform; they
click it, and only then is the consent recorded (source and time) and the welcome flow started.
A second click changes nothing; a link altered or not the engine's confirms nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.helpers.e2e import get_until, lead_state, new_email, wait_for_calls

pytestmark = pytest.mark.e2e

LINK = re.compile(r"https?://[^\s\"'\\]+(/v1/consent/confirm\?token=[0-9a-f.-]+)")


@pytest.fixture
async def person(api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The person's browser: it carries no key, the link is clicked as it is."""
    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=15) as client:
        yield client


def subscribed(calls: list[dict[str, Any]]) -> bool:
    return any(
        c["provider"] == "klaviyo" and "profile-subscription-bulk-create-jobs" in c["path"] for c in calls
    )


async def test_consent_counts_once_the_person_confirms_it_from_their_email(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, person: httpx.AsyncClient
):
    email = new_email()
    answer = await api.post(
        "/v1/forms/newsletter/submissions", json={"email": email, "lead_source": "website", "consent": True}
    )
    assert answer.status_code == 202, answer.text
    lead_id = answer.json()["lead_id"]
    calls = await wait_for_calls(
        sandbox, email, lambda cs: any(LINK.search(str(c["body"])) for c in cs), timeout=40
    )
    body = await lead_state(api, lead_id, lambda b: b["journey"]["email_profile_id"] is not None)
    assert body["profile"]["consent"] is False and body["profile"]["consent_at"] is None
    assert not subscribed(calls), "not subscribed before the person confirms"
    [link] = {m.group(1) for c in calls for m in [LINK.search(str(c["body"]))] if m}

    # An altered link confirms nothing.
    altered = await person.get(link[:-1] + ("0" if link[-1] != "0" else "1"))
    assert altered.status_code == 400 and "not valid" in altered.text
    assert (await api.get(f"/v1/leads/{lead_id}")).json()["profile"]["consent"] is False

    confirmed = await person.get(link)
    assert confirmed.status_code == 200 and "subscribed" in confirmed.text
    body = await get_until(api, f"/v1/leads/{lead_id}", lambda b: b["profile"]["consent"] is True)
    assert body["profile"]["consent_source"].startswith("consent:double-opt-in")
    assert body["profile"]["consent_at"] is not None
    await wait_for_calls(sandbox, email, subscribed, timeout=40)
    body = await lead_state(api, lead_id, lambda b: b["journey"]["welcome_enrolled"] is True)
    assert body["events"].get("consent_confirmed") == 1

    again = await person.get(link)
    assert again.status_code == 200
    body = (await api.get(f"/v1/leads/{lead_id}")).json()
    assert body["events"].get("consent_confirmed") == 1, "a second click is the same confirmation"
