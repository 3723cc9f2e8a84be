"""The website feeds the engine directly: browser keys bound to their sites' origins, Segment's
browser paths (text/plain JSON, the write key in the body and as Basic auth), the refusals that
keep a public key from lying (each checking that nothing was recorded), rate limits per key and
per client IP, and, in headless Chromium, Segment's own browser library and our form script."""

import asyncio
import base64
import html
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from devstack.stack import DevStack
from domain.ids import lead_id_for_email
from store.db import create_engine
from tests.helpers.e2e import get_until, journey
from tests.helpers.website import ARTIFACTS, Site, analytics_next_bundles, segment_cdn, visit

pytestmark = pytest.mark.e2e

SITE = "https://www.example-site.test"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def plain(body: dict[str, Any], key: str, origin: str = SITE, **headers: str) -> dict[str, Any]:
    """A request as Segment's browser library makes it: text/plain JSON, the key in both places."""
    return {
        "content": json.dumps({**body, "writeKey": key}),
        "headers": {"Content-Type": "text/plain", "Origin": origin, **basic(key), **headers},
    }


async def browser_key(api: httpx.AsyncClient, *origins: str, **extra: Any) -> str:
    body = {"name": "website", "scope": "browser", "origins": list(origins or [SITE]), **extra}
    response = await api.post("/v1/admin/keys", json={"rate_per_ip": 1000, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def stored_with_key(stack: DevStack, message_ids: tuple[str, ...]) -> int:
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT count(*) FROM events WHERE message_id = ANY(:m) AND payload ? 'writeKey'"),
                {"m": list(message_ids)},
            )
            return int(found.scalar() or 0)
    finally:
        await engine.dispose()


async def recorded(stack: DevStack, message_id: str) -> int:
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT count(*) FROM events WHERE message_id = :m"), {"m": message_id}
            )
            return int(found.scalar() or 0)
    finally:
        await engine.dispose()


def mid() -> str:
    return f"ajs-next-{uuid.uuid4().hex}"


@pytest.fixture
async def web(stack: DevStack):
    async with httpx.AsyncClient(base_url=stack.settings.api_url, timeout=15) as client:
        yield client


async def test_browser_keys_name_their_sites(api: httpx.AsyncClient):
    made = await api.post(
        "/v1/admin/keys",
        json={"name": "site", "scope": "browser", "origins": ["HTTPS://WWW.Example-Site.test/"]},
    )
    assert made.status_code == 201
    assert made.json()["origins"] == [SITE] and made.json()["scope"] == "browser"
    assert made.json()["key"].startswith("jrn_browser_")
    listed = {k["key_id"]: k for k in (await api.get("/v1/admin/keys")).json()["keys"]}
    assert listed[made.json()["key_id"]]["origins"] == [SITE]
    for body, words in [
        ({"name": "s", "scope": "browser"}, "origins"),
        ({"name": "s", "scope": "browser", "origins": ["*"]}, "wildcard"),
        ({"name": "s", "scope": "browser", "origins": ["https://x.test/path"]}, "no path"),
        ({"name": "s", "scope": "ingest", "origins": [SITE]}, "browser keys only"),
    ]:
        refused = await api.post("/v1/admin/keys", json=body)
        assert refused.status_code == 422 and words in refused.text, refused.text


async def test_the_browser_paths_take_text_plain_and_count_a_retry_once(
    stack: DevStack, api: httpx.AsyncClient, web: httpx.AsyncClient
):
    key = await browser_key(api)
    anonymous = f"anon-{uuid.uuid4().hex[:8]}"
    email = f"web.{uuid.uuid4().hex[:8]}@example-corp.com"
    sent = datetime.now(UTC)
    page_id = mid()
    page = {
        "type": "page",
        "anonymousId": anonymous,
        "messageId": page_id,
        "name": "Pricing",
        "properties": {"path": "/pricing", "url": f"{SITE}/pricing"},
        # The device's clock is an hour fast: sentAt corrects it.
        "timestamp": (sent + timedelta(hours=1) - timedelta(seconds=30)).isoformat(),
        "sentAt": (sent + timedelta(hours=1)).isoformat(),
    }
    for _ in range(2):  # the library retries with the same messageId after a lost answer
        answer = await web.post("/v1/p", **plain(page, key))
        assert answer.status_code == 200 and answer.json() == {"success": True}, answer.text
    assert await recorded(stack, page_id) == 1

    # sendBeacon cannot set headers: the key is in the body only.
    beacon = {"type": "track", "anonymousId": anonymous, "event": "Pricing Compared", "messageId": mid()}
    answer = await web.post(
        "/v1/t",
        content=json.dumps({**beacon, "writeKey": key}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": SITE},
    )
    assert answer.status_code == 200, answer.text
    identify = {"type": "identify", "anonymousId": anonymous, "traits": {"email": email}, "messageId": mid()}
    assert (await web.post("/v1/i", **plain(identify, key))).status_code == 200
    played = mid()
    messages: list[dict[str, Any]] = [
        {"type": "track", "anonymousId": anonymous, "event": "Demo Video Played", "messageId": played},
        {"type": "group", "anonymousId": anonymous, "groupId": "acct-web", "messageId": mid()},
    ]
    # Each message carries the write key too, as the library's batches do.
    batch = {"batch": [{**m, "writeKey": key} for m in messages], "sentAt": datetime.now(UTC).isoformat()}
    assert (await web.post("/v1/b", **plain(batch, key))).status_code == 200
    assert await stored_with_key(stack, (page_id, played)) == 0, "a write key is never stored"

    lead = await get_until(
        api,
        f"/v1/leads/{lead_id_for_email(email)}",
        journey(lambda j: j["activity"]["events_by_type"].get("track") == 2),
    )
    assert lead["journey"]["activity"]["page_views"] == 1
    assert lead["journey"]["account_id"] == "acct-web"
    events = (await api.get(f"/v1/leads/{lead_id_for_email(email)}/events")).json()["events"]
    viewed = next(e for e in events if e["type"] == "page")
    assert (
        abs((datetime.fromisoformat(viewed["occurred_at"]) - (sent - timedelta(seconds=30))).total_seconds())
        < 5
    )


async def test_preflights_are_answered_for_the_keys_sites_only(
    stack: DevStack, api: httpx.AsyncClient, web: httpx.AsyncClient
):
    key = await browser_key(api)
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    ok = await web.options("/v1/t", headers={"Origin": SITE, **ask})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == SITE
    assert {"authorization", "content-type"} <= {
        h.strip().lower() for h in ok.headers["access-control-allow-headers"].split(",")
    }
    evil = "https://evil.example"
    refused = await web.options("/v1/t", headers={"Origin": evil, **ask})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    assert "browser key" in refused.json()["detail"]
    # Not a path a page may call: no CORS at all.
    admin = await web.options("/v1/admin/keys", headers={"Origin": SITE, **ask})
    assert "access-control-allow-origin" not in admin.headers
    # The Temporal UI keeps the codec, and only the codec.
    ui = stack.settings.temporal_ui_origin
    codec = await web.options("/codec/decode", headers={"Origin": ui, **ask})
    assert codec.headers.get("access-control-allow-origin") == ui
    assert (
        "access-control-allow-origin"
        not in (await web.options("/v1/t", headers={"Origin": ui, **ask})).headers
    )

    # The request itself is held to its own key's origins.
    message_id = mid()
    page = {"type": "page", "anonymousId": "a-evil", "messageId": message_id}
    wrong = await web.post("/v1/p", **plain(page, key, origin=evil))
    assert wrong.status_code == 403 and "origin" in wrong.json()["detail"]
    beacon = await web.post("/v1/p", content=json.dumps({**page, "writeKey": key}), headers={"Origin": evil})
    assert beacon.status_code == 403
    no_origin = await web.post("/v1/p", content=json.dumps(page), headers=basic(key))
    assert no_origin.status_code == 403 and "Origin" in no_origin.json()["detail"]
    assert await recorded(stack, message_id) == 0
    answer = await web.post("/v1/p", **plain(page, key))
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == SITE


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ("Order Completed", "purchase"),
        ("Subscription Started", "subscription"),
        ("Unsubscribed", "unsubscribe"),
        ("Email Opened", "email engagement"),
        ("Deal Stage Changed", "CRM"),
    ],
)
async def test_a_browser_key_cannot_assert_a_server_fact(
    stack: DevStack, api: httpx.AsyncClient, web: httpx.AsyncClient, event: str, words: str
):
    key = await browser_key(api)
    message_id = mid()
    claim = {
        "type": "track",
        "anonymousId": f"anon-{uuid.uuid4().hex[:8]}",
        "event": event,
        "properties": {"revenue": 99000, "order_id": "o-1"},
        "messageId": message_id,
    }
    refused = await web.post("/v1/t", **plain(claim, key))
    assert refused.status_code == 403, refused.text
    assert event in refused.json()["detail"] and words in refused.json()["detail"]
    # Not inside a batch either, and the page view beside it is not recorded.
    page_id = mid()
    batch = {"batch": [{"type": "page", "anonymousId": "a-b", "messageId": page_id}, claim]}
    refused = await web.post("/v1/b", **plain(batch, key))
    assert refused.status_code == 403 and "batch[1]" in refused.json()["detail"]
    assert await recorded(stack, message_id) == 0 and await recorded(stack, page_id) == 0
    # A server key may.
    ingest = (await api.post("/v1/admin/keys", json={"name": "server", "scope": "ingest"})).json()["key"]
    assert (await web.post("/v1/track", json=claim, headers=basic(ingest))).status_code == 200
    assert await recorded(stack, message_id) == 1


async def test_a_browser_key_cannot_merge_an_identified_lead(
    stack: DevStack, api: httpx.AsyncClient, web: httpx.AsyncClient
):
    key = await browser_key(api)
    ada, eve = (f"{who}.{uuid.uuid4().hex[:8]}@example-corp.com" for who in ("ada", "eve"))
    ada_user, ada_browser = f"u-{uuid.uuid4().hex[:8]}", f"anon-{uuid.uuid4().hex[:8]}"
    server = {"Authorization": f"Bearer {stack.api_key}"}
    known = {"userId": ada_user, "anonymousId": ada_browser, "traits": {"email": ada, "title": "Engineer"}}
    assert (await web.post("/v1/identify", json=known, headers=server)).status_code == 200
    account = f"acct-{uuid.uuid4().hex[:6]}"
    firmographics = {"userId": ada_user, "groupId": account, "traits": {"industry": "Fintech"}}
    assert (await web.post("/v1/group", json=firmographics, headers=server)).status_code == 200
    await get_until(api, f"/v1/leads/{lead_id_for_email(ada)}", lambda body: body.get("journey"))

    attempts: list[tuple[str, dict[str, Any]]] = [
        ("/v1/i", {"type": "identify", "userId": ada_user, "traits": {"email": eve}}),
        ("/v1/i", {"type": "identify", "anonymousId": ada_browser, "traits": {"email": eve}}),
        ("/v1/a", {"type": "alias", "previousId": ada_browser, "userId": f"u-{uuid.uuid4().hex[:8]}"}),
    ]
    for path, body in attempts:
        message_id = mid()
        refused = await web.post(path, **plain({**body, "messageId": message_id}, key))
        assert refused.status_code == 403 and "merge" in refused.json()["detail"], refused.text
        assert await recorded(stack, message_id) == 0
    profile = (await api.get(f"/v1/leads/{lead_id_for_email(ada)}")).json()
    assert profile["merged_into"] is None
    assert ada_browser in profile["identities"]["anonymous"]
    assert (await api.get(f"/v1/leads/{lead_id_for_email(eve)}")).status_code == 404

    # The same browser's visitor may say who they are when the email is theirs, or new; what it
    # says of a known person or account fills blanks and rewrites nothing.
    same = {
        "type": "identify",
        "anonymousId": ada_browser,
        "traits": {"email": ada, "title": "CEO", "lastName": "Lovelace"},
        "messageId": mid(),
    }
    assert (await web.post("/v1/i", **plain(same, key))).status_code == 200
    bigger = {
        "type": "group",
        "anonymousId": ada_browser,
        "groupId": account,
        "traits": {"industry": "Banking", "employees": 5000},
        "messageId": mid(),
    }
    assert (await web.post("/v1/g", **plain(bigger, key))).status_code == 200
    profile = (await api.get(f"/v1/leads/{lead_id_for_email(ada)}")).json()
    assert profile["profile"]["job_title"] == "Engineer" and profile["profile"]["last_name"] == "Lovelace"
    assert profile["account"]["traits"] == {"industry": "Fintech", "employees": 5000}
    fresh = {"type": "identify", "anonymousId": f"anon-{uuid.uuid4().hex[:8]}", "traits": {"email": eve}}
    assert (await web.post("/v1/i", **plain({**fresh, "messageId": mid()}, key))).status_code == 200


async def test_a_browser_key_is_limited_per_client_ip(stack: DevStack, api: httpx.AsyncClient, web):
    key = await browser_key(api, rate_per_ip=1, rate_per_second=1000)
    page = {"type": "page", "anonymousId": "a-flood"}
    answers = [
        (
            await web.post(
                "/v1/p", **plain({**page, "messageId": mid()}, key, **{"X-Forwarded-For": "198.51.100.7"})
            )
        )
        for _ in range(3)
    ]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    # Refused before the body is read: 600 KB, which the route would refuse as too large (413).
    huge = {"batch": [{**page, "messageId": mid(), "properties": {"pad": "x" * 600_000}}]}
    answers.append(await web.post("/v1/b", **plain(huge, key, **{"X-Forwarded-For": "198.51.100.7"})))
    assert answers[-1].status_code == 429 and int(answers[-1].headers["retry-after"]) >= 1
    assert answers[-1].headers["access-control-allow-origin"] == SITE  # the library can read Retry-After
    other = await web.post(
        "/v1/p", **plain({**page, "messageId": mid()}, key, **{"X-Forwarded-For": "203.0.113.9"})
    )
    assert other.status_code == 200


async def key_queries(stack: DevStack, web: httpx.AsyncClient) -> float:
    """How often the API asked PostgreSQL about keys: table reloads and single look-ups."""
    metrics = (await web.get("/metrics", headers={"Authorization": f"Bearer {stack.api_key}"})).text
    names = ("journeys_api_key_table_loads_total", "journeys_api_key_lookups_total")
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(names))


async def test_an_unknown_key_costs_no_lookup_after_the_first(stack: DevStack, web: httpx.AsyncClient):
    track = {"type": "track", "anonymousId": "a", "event": "x"}
    typo = f"jrn_browser_{uuid.uuid4().hex}"
    before = await key_queries(stack, web)
    for _ in range(30):
        assert (await web.post("/v1/t", **plain(track, typo))).status_code == 401
    assert await key_queries(stack, web) - before <= 2  # its one look-up (and perhaps a reload)

    before = await key_queries(stack, web)
    started = asyncio.get_running_loop().time()
    for _ in range(3):
        made_up = [f"jrn_browser_{uuid.uuid4().hex}" for _ in range(100)]
        burst = await asyncio.gather(*(web.post("/v1/t", **plain(track, key)) for key in made_up))
        assert {answer.status_code for answer in burst} == {401}
    seconds = asyncio.get_running_loop().time() - started
    # 300 keys nobody has: a budget of look-ups a second, not one a key.
    assert await key_queries(stack, web) - before <= 40 + 20 * seconds + seconds / 5 + 2 < 300


ANALYTICS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Example site</title>
<script src="/analytics-next/bundles/index.js"></script></head>
<body><h1>Example site</h1>
<script>
(async () => {
  const params = new URLSearchParams(location.search);
  const report = (key, value) => {
    document.body.dataset[key] = typeof value === "string" ? value : JSON.stringify(value);
  };
  try {
    // The site's only change from Segment's defaults: its API host.
    const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
      { writeKey: __KEY__, cdnURL: location.origin },
      { integrations: { "Segment.io": { apiHost: __API_HOST__, protocol: "http" } } }
    );
    const failed = [];
    const check = (ctx) => {
      const failure = ctx.failedDelivery();
      if (failure) failed.push(String(failure.reason));
    };
    check(await analytics.page("Docs", params.get("name") || "Home"));
    if (params.get("email")) {
      check(await analytics.identify({ email: params.get("email"), firstName: "Grace", title: "CTO" }));
      check(await analytics.track("Whitepaper Downloaded", { topic: "durable-execution" }));
    }
    report("anonymousId", analytics.user().anonymousId());
    report("failed", failed);
    report("done", "yes");
  } catch (error) {
    report("error", String(error));
    report("done", "error");
  }
})();
</script></body></html>
"""


def dataset(dom: str, name: str) -> str | None:
    found = re.search(rf'data-{name}="([^"]*)"', dom)
    return html.unescape(found.group(1)) if found else None


async def test_segments_own_browser_library_feeds_the_lead(
    stack: DevStack, api: httpx.AsyncClient, tmp_path: Path
):
    bundles = analytics_next_bundles()
    site = Site()
    key = await browser_key(api, site.origin)
    api_host = f"127.0.0.1:{stack.settings.api_port}/v1"
    segment_cdn(site, key, bundles)
    site.pages["/docs.html"] = ANALYTICS_PAGE.replace("__KEY__", json.dumps(key)).replace(
        "__API_HOST__", json.dumps(api_host)
    )
    email = f"grace.{uuid.uuid4().hex[:8]}@example-corp.com"
    profile = tmp_path / "chromium-profile"
    visits = [
        "?name=Quickstart&utm_source=google&utm_medium=cpc&utm_campaign=spring",
        "?name=Pricing&utm_source=linkedin&utm_medium=paid_social&utm_campaign=launch",
        f"?name=Whitepaper&utm_source=newsletter&utm_medium=email&utm_campaign=nov&email={email}",
    ]
    with site.serving():
        doms = [
            await visit(f"{site.origin}/docs.html{query}", "--dump-dom", profile=profile) for query in visits
        ]
        # The same page served from another origin: its preflight is refused, nothing lands.
        elsewhere = await visit(f"{site.other_origin}/docs.html?name=Elsewhere", "--dump-dom")
    for dom in doms:
        assert dataset(dom, "done") == "yes", dataset(dom, "error") or dom[-2000:]
        assert dataset(dom, "failed") == "[]"
    anonymous = {dataset(dom, "anonymous-id") for dom in doms}
    assert len(anonymous) == 1, "one browser, one anonymousId across its visits"

    lead_id = lead_id_for_email(email)
    body = await get_until(
        api,
        f"/v1/leads/{lead_id}",
        journey(
            lambda j: j["activity"]["page_views"] == 3 and j["activity"]["events_by_type"].get("track") == 1
        ),
    )
    assert set(body["identities"]["anonymous"]) == anonymous
    assert body["profile"]["first_name"] == "Grace"
    activity = body["journey"]["activity"]
    # Three visits from three campaigns: three sessions, the first two from before the identify.
    assert activity["sessions"] == 3, activity
    recent = activity["recent_sessions"]
    assert [s["campaign"] for s in recent] == [
        "google / cpc / spring",
        "linkedin / paid_social / launch",
        "newsletter / email / nov",
    ]
    assert [s["page_views"] for s in recent] == [1, 1, 1]
    assert "web" not in activity  # the views behind them stay in the journey's state
    assert body["journey"]["first_touch"]["campaign"] == "spring"
    timeline = body["journey"]["timeline"]
    assert [entry["type"] for entry in timeline].count("page") == 3
    assert {"identify", "track"} <= {entry["type"] for entry in timeline}
    events = (await api.get(f"/v1/leads/{lead_id}/events")).json()["events"]
    sent = [e["properties"] for e in events if e["type"] == "page"]
    assert {p.get("path") for p in sent} == {"/docs.html"}

    assert dataset(elsewhere, "done") == "yes"
    stray = dataset(elsewhere, "anonymous-id")
    assert stray and stray not in anonymous
    assert await recorded_for_visitor(stack, stray) == 0


async def recorded_for_visitor(stack: DevStack, anonymous_id: str) -> int:
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT count(*) FROM events WHERE anonymous_id = :a"), {"a": anonymous_id}
            )
            return int(found.scalar() or 0)
    finally:
        await engine.dispose()


async def definition(web: httpx.AsyncClient, key: str, form_id: str = "demo") -> dict[str, Any]:
    answer = await web.get(f"/v1/forms/{form_id}", headers={"Authorization": f"Bearer {key}", "Origin": SITE})
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == SITE
    return dict(answer.json())


def filled(email: str, token: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "first_name": "Ada",
        "company": "Example Corp",
        "job_title": "VP Engineering",
        "lead_source": "website",
        "_fill_token": token,
        **extra,
    }


async def test_a_page_gets_the_forms_definition_and_bots_are_answered_as_accepted(
    stack: DevStack, api: httpx.AsyncClient, web: httpx.AsyncClient
):
    key = await browser_key(api)
    form = await definition(web, key)
    assert form["name"] == "Request a demo"
    fields = {f["name"]: f for f in form["fields"]}
    assert fields["email"]["required"] and fields["company"]["required"] and not fields["phone"]["required"]
    assert "lead_source" in form["required"] and "lead_source" in form["hidden"]
    assert form["consent"]["text"] and form["submit"] == "/v1/forms/demo/submissions"
    token = form["bot_protection"]["token"]
    assert (
        await web.get("/v1/forms/nope", headers={"Authorization": f"Bearer {key}", "Origin": SITE})
    ).status_code == 404

    headers = {"Authorization": f"Bearer {key}", "Origin": SITE}
    bots = {
        "honeypot": filled(
            f"bot1.{uuid.uuid4().hex[:6]}@example-corp.com", token, homepage_url="http://spam.example"
        ),
        "too fast": filled(f"bot2.{uuid.uuid4().hex[:6]}@example-corp.com", token),
        "no token": filled(f"bot3.{uuid.uuid4().hex[:6]}@example-corp.com", ""),
        "forged token": filled(f"bot4.{uuid.uuid4().hex[:6]}@example-corp.com", token[:-4] + "abcd"),
    }
    for what, fields_sent in bots.items():
        attempt = f"bot-{uuid.uuid4().hex}"
        answer = await web.post(
            "/v1/forms/demo/submissions", json=fields_sent, headers={**headers, "Idempotency-Key": attempt}
        )
        assert answer.status_code == 202 and answer.json()["lead_id"] == lead_id_for_email(
            fields_sent["email"]
        ), what
        assert await recorded(stack, attempt) == 0, what
        assert (await api.get("/v1/leads", params={"email": fields_sent["email"]})).json()["leads"] == [], (
            what
        )

    await asyncio.sleep(form["bot_protection"]["min_fill_seconds"] + 0.2)  # a person's pace
    wrong = await web.post(
        "/v1/forms/demo/submissions", json=filled("not-an-email", token, phone="12"), headers=headers
    )
    assert wrong.status_code == 422
    assert {e["loc"][-1] for e in wrong.json()["detail"]} == {"email", "phone"}
    person = f"ada.{uuid.uuid4().hex[:8]}@example-corp.com"
    attempt = f"person-{uuid.uuid4().hex}"
    answer = await web.post(
        "/v1/forms/demo/submissions",
        json=filled(person, token),
        headers={**headers, "Idempotency-Key": attempt},
    )
    assert answer.status_code == 202 and answer.headers["access-control-allow-origin"] == SITE
    assert await recorded(stack, attempt) == 1
    # A half-filled form from sendBeacon: text/plain, the key in the query.
    left = f"left.{uuid.uuid4().hex[:8]}@example-corp.com"
    beacon = await web.post(
        f"/v1/forms/demo/abandonments?key={key}",
        content=json.dumps({"email": left, "_fill_token": token}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": SITE},
    )
    assert beacon.status_code == 202, beacon.text
    # A server's own form handler (an ingest key) passes no bot check, as before.
    server = {"Authorization": f"Bearer {stack.api_key}"}
    plain_form = {
        k: v
        for k, v in filled(f"srv.{uuid.uuid4().hex[:6]}@example-corp.com", "").items()
        if k != "_fill_token"
    }
    assert (await web.post("/v1/forms/demo/submissions", json=plain_form, headers=server)).status_code == 202
    # A browser key from another site's page: refused before anything is read.
    evil = await web.post(
        "/v1/forms/demo/submissions",
        json=filled(person, token),
        headers={**headers, "Origin": "https://evil.example"},
    )
    assert evil.status_code == 403


FORM_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Request a demo</title>
<style>
  body { font-family: "DejaVu Sans", sans-serif; background: #f4f6fb; margin: 0; padding: 32px; }
  .card { background: #fff; max-width: 460px; margin: auto; padding: 24px 28px; border-radius: 10px;
          box-shadow: 0 2px 12px rgba(20, 30, 60, .12); }
  .journeys-form-title { margin: 0 0 16px; color: #1c2a4a; }
  .journeys-field { margin-bottom: 12px; }
  .journeys-field label { display: block; font-size: 13px; color: #44506b; margin-bottom: 4px; }
  .journeys-field input { width: 100%; box-sizing: border-box; padding: 8px 10px; font-size: 14px;
                          border: 1px solid #c5ccdb; border-radius: 6px; }
  .journeys-field[data-invalid] input { border-color: #c0392b; }
  .journeys-error { color: #c0392b; font-size: 12px; }
  .journeys-consent { display: flex; gap: 8px; font-size: 13px; color: #44506b; margin: 14px 0; }
  .journeys-submit { background: #3454d1; color: #fff; border: 0; padding: 10px 22px; font-size: 15px;
                     border-radius: 6px; }
</style></head>
<body><div class="card">
<div id="demo" data-journeys-form="demo" data-key=__KEY__ data-api=__API__ data-lead-source="website"></div>
</div>
<script src=__SCRIPT__></script>
__ANALYTICS__
<script>
(async () => {
  const params = new URLSearchParams(location.search);
  const box = document.getElementById("demo");
  const report = (key, value) => { document.body.dataset[key] = value; };
  if (window.AnalyticsNext) {
    // Segment's library on the same page (no global `analytics`: an npm site's way); forms.js
    // finds the visitor's anonymousId where the library keeps it.
    const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
      { writeKey: box.dataset.key, cdnURL: location.origin },
      { integrations: { "Segment.io": { apiHost: __API_HOST__, protocol: "http" } } }
    );
    await analytics.page("Demo", "Request a demo");
    report("anonymousId", analytics.user().anonymousId());
  }
  const until = async (test) => { while (!test()) await new Promise((r) => setTimeout(r, 50)); };
  await until(() => ["ready", "error"].includes(box.dataset.state));
  if (box.dataset.state !== "ready" || params.get("show")) { report("done", box.dataset.state); return; }
  const type = (name, value) => {
    const input = box.querySelector(`[name="${name}"]`);
    input.value = value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  };
  type("email", params.get("email"));
  if (params.get("leave")) {
    await fetch("/hold?ms=3300");  // a person's pace, in real time
    window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false }));
    report("done", box.dataset.abandonment || "not sent");
    return;
  }
  type("first_name", "Ada");
  type("last_name", "Lovelace");
  type("company", "Example Corp");
  type("job_title", "VP Engineering");
  type("phone", "not a phone");
  box.querySelector('[name="consent"]').checked = true;
  await fetch("/hold?ms=3300");
  box.querySelector("form").requestSubmit();
  await until(() => ["invalid", "submitted", "error"].includes(box.dataset.state));
  report("first", box.dataset.state);
  if (box.dataset.state === "invalid") {
    type("phone", "+44 20 7946 0958");
    box.querySelector("form").requestSubmit();
    await until(() => ["submitted", "error"].includes(box.dataset.state));
  }
  report("lead", box.dataset.leadId || "");
  report("done", box.dataset.state);
})();
</script></body></html>
"""


async def test_a_page_embeds_a_form_with_forms_js(stack: DevStack, api: httpx.AsyncClient, tmp_path: Path):
    site = Site()
    key = await browser_key(api, site.origin)
    api_url = stack.settings.api_url
    site.pages["/demo.html"] = (
        FORM_PAGE.replace("__KEY__", json.dumps(key))
        .replace("__API__", json.dumps(api_url))
        .replace("__SCRIPT__", json.dumps(f"{api_url}/js/forms.js"))
        .replace("__ANALYTICS__", "")
        .replace("__API_HOST__", json.dumps(f"127.0.0.1:{stack.settings.api_port}/v1"))
    )
    email = f"ada.{uuid.uuid4().hex[:8]}@example-corp.com"
    left = f"left.{uuid.uuid4().hex[:8]}@example-corp.com"
    shot = ARTIFACTS / "website-form.png"
    with site.serving():
        dom = await visit(
            f"{site.origin}/demo.html?utm_source=linkedin&utm_campaign=q4&email={email}", "--dump-dom"
        )
        abandoned = await visit(f"{site.origin}/demo.html?leave=1&email={left}", "--dump-dom")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot.unlink(missing_ok=True)
        await visit(f"{site.origin}/demo.html?show=1", "--window-size=640,760", f"--screenshot={shot}")
    assert dataset(dom, "first") == "invalid", dom[-3000:]  # the field-level 422, shown at the field
    assert dataset(dom, "done") == "submitted", dom[-3000:]
    assert dataset(dom, "lead") == lead_id_for_email(email)
    lead = await get_until(
        api, f"/v1/leads/{lead_id_for_email(email)}", journey(lambda j: j["activity"]["forms_submitted"] == 1)
    )
    assert lead["profile"]["company"] == "Example Corp" and lead["profile"]["phone"] == "+442079460958"
    assert lead["profile"]["consent"] is True and lead["profile"]["lead_source"] == "website"
    assert lead["journey"]["first_touch"]["source"] == "linkedin"

    assert dataset(abandoned, "done") == "sent", abandoned[-3000:]
    gone = await get_until(
        api,
        f"/v1/leads/{lead_id_for_email(left)}",
        journey(lambda j: j["activity"]["events_by_type"].get("form_abandoned") == 1),
    )
    assert gone["journey"]["activity"]["forms_submitted"] == 0
    assert shot.exists() and shot.stat().st_size > 10_000


OWN_SETTINGS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="/analytics-next/bundles/index.js"></script></head>
<body><script>
(async () => {
  try {
    // Settings from our API instead of Segment's CDN: they carry our host as the library's apiHost.
    const [analytics] = await AnalyticsNext.AnalyticsBrowser.load({ writeKey: __KEY__, cdnURL: __API__ });
    const ctx = await analytics.track("Pricing Compared", { plan: "team" });
    document.body.dataset.failed = String(Boolean(ctx.failedDelivery()));
    document.body.dataset.anonymousId = analytics.user().anonymousId();
    document.body.dataset.done = "yes";
  } catch (error) {
    document.body.dataset.done = "error: " + error;
  }
})();
</script></body></html>
"""


async def test_the_library_can_take_its_settings_from_the_api(stack: DevStack, api: httpx.AsyncClient):
    site = Site()
    key = await browser_key(api, site.origin)
    site.files["/analytics-next/bundles/"] = analytics_next_bundles()
    site.pages["/ours.html"] = OWN_SETTINGS_PAGE.replace("__KEY__", json.dumps(key)).replace(
        "__API__", json.dumps(stack.settings.api_url)
    )
    async with httpx.AsyncClient(base_url=stack.settings.api_url) as web:
        settings = (await web.get(f"/v1/projects/{key}/settings", headers={"Origin": site.origin})).json()
        assert settings["integrations"]["Segment.io"]["apiHost"] == f"127.0.0.1:{stack.settings.api_port}/v1"
        assert (await web.get(f"/v1/projects/jrn_browser_{uuid.uuid4().hex}/settings")).status_code == 401
    with site.serving():
        dom = await visit(f"{site.origin}/ours.html", "--dump-dom")
    assert dataset(dom, "done") == "yes" and dataset(dom, "failed") == "false", dom[-2000:]
    visitor = dataset(dom, "anonymous-id")
    assert visitor and await recorded_for_visitor(stack, visitor) == 1


BATCHING_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="/analytics-next/bundles/index.js"></script></head>
<body><script>
(async () => {
  try {
    const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
      { writeKey: __KEY__, cdnURL: location.origin },
      { integrations: { "Segment.io": {
          apiHost: __API_HOST__, protocol: "http",
          // Batches, flushed only when the page goes away: then with keepalive, to /b.
          deliveryStrategy: { strategy: "batching", config: { size: 50, timeout: 600000 } } } } }
    );
    await analytics.page("Docs", "Batched");
    await analytics.track("Plan Compared", { plan: "team" });
    document.body.dataset.anonymousId = analytics.user().anonymousId();
    window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false }));
    await fetch("/hold?ms=1500");  // the keepalive request's time to arrive, in real time
    document.body.dataset.done = "yes";
  } catch (error) {
    document.body.dataset.done = "error: " + error;
  }
})();
</script></body></html>
"""


async def batch_requests(stack: DevStack) -> float:
    async with httpx.AsyncClient(base_url=stack.settings.api_url) as web:
        metrics = (await web.get("/metrics", headers={"Authorization": f"Bearer {stack.api_key}"})).text
    route = 'journeys_api_request_seconds_count{method="POST",route="/v1/b",status="200"}'
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(route))


async def test_the_librarys_batches_arrive_with_keepalive_as_the_page_goes(
    stack: DevStack, api: httpx.AsyncClient
):
    site = Site()
    key = await browser_key(api, site.origin)
    segment_cdn(site, key, analytics_next_bundles())
    site.pages["/batched.html"] = BATCHING_PAGE.replace("__KEY__", json.dumps(key)).replace(
        "__API_HOST__", json.dumps(f"127.0.0.1:{stack.settings.api_port}/v1")
    )
    before = await batch_requests(stack)
    with site.serving():
        dom = await visit(f"{site.origin}/batched.html", "--dump-dom")
    assert dataset(dom, "done") == "yes", dom[-2000:]
    visitor = dataset(dom, "anonymous-id")
    assert visitor
    for _ in range(50):
        if await recorded_for_visitor(stack, visitor) == 2:
            break
        await asyncio.sleep(0.1)
    assert await recorded_for_visitor(stack, visitor) == 2
    assert await batch_requests(stack) - before == 1  # one batch, at pagehide


RETRY_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="/analytics-next/bundles/index.js"></script></head>
<body><script>
(async () => {
  try {
    const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
      { writeKey: __KEY__, cdnURL: location.origin },
      { integrations: { "Segment.io": { apiHost: __API_HOST__, protocol: "http" } } }
    );
    await analytics.page("Docs", "Retried");
    await analytics.track("First Click");
    await analytics.track("Second Click");  // over the visitor's limit: 429, Retry-After
    await fetch("/hold?ms=2500");  // real time for the bucket to refill; the retry is due meanwhile
    await fetch("/hold?ms=1000");
    document.body.dataset.anonymousId = analytics.user().anonymousId();
    document.body.dataset.done = "yes";
  } catch (error) {
    document.body.dataset.done = "error: " + error;
  }
})();
</script></body></html>
"""


async def limited_tracks(stack: DevStack) -> float:
    async with httpx.AsyncClient(base_url=stack.settings.api_url) as web:
        metrics = (await web.get("/metrics", headers={"Authorization": f"Bearer {stack.api_key}"})).text
    route = 'journeys_api_request_seconds_count{method="POST",route="unmatched",status="429"}'
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(route))


async def test_the_library_retries_a_limited_event_and_it_counts_once(
    stack: DevStack, api: httpx.AsyncClient
):
    site = Site()
    key = await browser_key(api, site.origin, rate_per_ip=1)
    segment_cdn(site, key, analytics_next_bundles())
    site.pages["/retry.html"] = RETRY_PAGE.replace("__KEY__", json.dumps(key)).replace(
        "__API_HOST__", json.dumps(f"127.0.0.1:{stack.settings.api_port}/v1")
    )
    before = await limited_tracks(stack)
    with site.serving():
        dom = await visit(f"{site.origin}/retry.html", "--dump-dom")
    assert dataset(dom, "done") == "yes", dom[-2000:]
    visitor = dataset(dom, "anonymous-id")
    assert visitor
    assert await limited_tracks(stack) - before >= 1, "the limit answered 429 first"
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            names = (
                await connection.execute(
                    text("SELECT name FROM events WHERE anonymous_id = :a AND type = 'track' ORDER BY name"),
                    {"a": visitor},
                )
            ).scalars()
            assert list(names) == ["First Click", "Second Click"]
    finally:
        await engine.dispose()


async def test_browser_keys_are_made_from_the_cli(stack: DevStack, web: httpx.AsyncClient):
    import os
    import sys

    env = {**os.environ, "JOURNEYS_DATABASE_URL": stack.database_url}

    async def journeys(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli.main",
            "keys",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode()

    code, out = await journeys(
        "create", "--name", "cli-site", "--scope", "browser", "--origin", "HTTPS://CLI.Example-Site.test/"
    )
    assert code == 0, out
    assert "for pages of: https://cli.example-site.test" in out
    clear = next(line for line in out.splitlines() if line.startswith("jrn_browser_"))
    code, listed = await journeys("list")
    assert code == 0 and "[https://cli.example-site.test]" in listed and clear not in listed
    page = {"type": "page", "anonymousId": "a-cli", "messageId": mid()}
    assert (
        await web.post("/v1/p", **plain(page, clear, origin="https://cli.example-site.test"))
    ).status_code == 200
    code, out = await journeys("create", "--name", "no-site", "--scope", "browser")
    assert code == 2 and "origin" in out
    code, out = await journeys(
        "create", "--name", "bad", "--scope", "browser", "--origin", "https://*.example.com"
    )
    assert code == 2 and "wildcard" in out


async def test_a_form_beside_segments_library_joins_the_visitors_history(
    stack: DevStack, api: httpx.AsyncClient
):
    site = Site()
    key = await browser_key(api, site.origin)
    segment_cdn(site, key, analytics_next_bundles())
    api_url = stack.settings.api_url
    site.pages["/both.html"] = (
        FORM_PAGE.replace("__KEY__", json.dumps(key))
        .replace("__API__", json.dumps(api_url))
        .replace("__SCRIPT__", json.dumps(f"{api_url}/js/forms.js"))
        .replace("__ANALYTICS__", '<script src="/analytics-next/bundles/index.js"></script>')
        .replace("__API_HOST__", json.dumps(f"127.0.0.1:{stack.settings.api_port}/v1"))
    )
    email = f"both.{uuid.uuid4().hex[:8]}@example-corp.com"
    with site.serving():
        dom = await visit(f"{site.origin}/both.html?email={email}", "--dump-dom")
    assert dataset(dom, "done") == "submitted", dom[-3000:]
    visitor = dataset(dom, "anonymous-id")
    lead = await get_until(
        api,
        f"/v1/leads/{lead_id_for_email(email)}",
        journey(lambda j: j["activity"]["forms_submitted"] == 1 and j["activity"]["page_views"] == 1),
    )
    assert lead["identities"]["anonymous"] == [visitor]
    assert lead["journey"]["activity"]["sessions"] == 1
