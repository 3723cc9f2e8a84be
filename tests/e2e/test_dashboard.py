"""The dashboard in headless Chromium (Debian's `chromium`): a lead from a paid campaign buys and
gets a hand-off, then the page, given the admin key in its URL fragment, renders the funnel, the
revenue by channel, speed to lead and integration health from real data; a screenshot is kept
(`.journeys/test-artifacts/dashboard.png`)."""

import asyncio
import re
import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from devstack.stack import DevStack
from domain.ids import lead_id_for_email
from tests.helpers.e2e import demo_form, lead_state, new_email
from tests.helpers.webhooks import checkout, post_stripe

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).resolve().parents[2] / ".journeys" / "test-artifacts"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, (
        "the dashboard test needs Debian's chromium (`apt-get install chromium`; make test does it as root)"
    )
    return found


async def headless(*args: str, timeout: float = 90) -> str:
    process = await asyncio.create_subprocess_exec(
        chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--virtual-time-budget=15000",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_the_dashboard_renders_real_data(
    stack: DevStack,
    api: httpx.AsyncClient,
    hooks: httpx.AsyncClient,
):
    email = new_email()
    lead_id = lead_id_for_email(email)
    campaign = f"launch-{uuid.uuid4().hex[:6]}"
    form = demo_form(email, utm_source="linkedin", utm_medium="paid_social", utm_campaign=campaign)
    assert (await api.post("/v1/forms/demo/submissions", json=form)).status_code == 202
    await lead_state(api, lead_id, lambda s: s["journey"]["stage"] == "lead")
    assert (await post_stripe(hooks, checkout(email, f"cus_{uuid.uuid4().hex[:8]}"))).status_code == 200
    await lead_state(api, lead_id, lambda s: s["journey"]["stage"] == "customer")

    # The worker flushes its connector stats every few seconds: wait for them, then open the page.
    for _ in range(100):
        health = (await api.get("/v1/reports/integrations", params={"window_hours": 1})).json()
        if any(p["provider"] == "hubspot" for p in health["providers"]):
            break
        await asyncio.sleep(0.3)
    url = f"{stack.settings.api_url}/dashboard#key={stack.api_key}"
    dom = await headless("--dump-dom", url)
    assert 'data-loaded="yes"' in dom, re.search(r'<div id="error"[^>]*>(.*?)</div>', dom, re.S)
    leads = re.search(r'id="kpi-leads">([\d,]+)<', dom)
    assert leads and int(leads.group(1).replace(",", "")) >= 1
    funnel = re.search(r'<svg id="funnel".*?</svg>', dom, re.S)
    assert funnel and funnel.group(0).count('class="bar"') == 4
    assert re.search(r'data-label="Paid Social" data-value="(?!0")[\d.]+"', dom), "revenue by channel"
    assert campaign in dom  # the first-touch table
    assert re.search(r"<td>hubspot</td>", dom), "integration health"
    assert re.search(r"<td>form to email</td>", dom), "data flows"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    await headless("--window-size=1400,1100", f"--screenshot={shot}", url)
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one

    # Without a key the page shows the API's refusal, not data.
    dom = await headless("--dump-dom", f"{stack.settings.api_url}/dashboard#key=wrong")
    assert 'data-loaded="error"' in dom and "401" in dom
