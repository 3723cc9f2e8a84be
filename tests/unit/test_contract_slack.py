"""Slack connector: the requests it sends and how it reads Slack's answers (respx), then the same
client against the sandbox's emulation of the Web API and incoming webhooks."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import respx

from domain.ledger import IN_FLIGHT_SECONDS
from platforms.errors import (
    PermanentPlatformError,
    RateLimitedError,
    TransientPlatformError,
    WriteInFlightError,
)
from platforms.ports import ChatMessage
from platforms.slack import EVENT_TYPE, SlackClient, SlackWebhookClient
from sandbox.app import Faults, create_app
from tests.helpers.platforms import RecordingObserver, RecordingThrottle, in_process

SLACK = "https://slack.com"
POST_URL = f"{SLACK}/api/chat.postMessage"
HISTORY_URL = f"{SLACK}/api/conversations.history"
HOOK_URL = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
CHANNEL = "C0123456789"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Ada* booked a demo"}}]


def message(text: str = "Ada booked a demo", channel: str = CHANNEL, blocks: Any = None) -> ChatMessage:
    return ChatMessage(channel=channel, text=text, blocks=blocks)


def empty_history() -> httpx.Response:
    return httpx.Response(
        200, json={"ok": True, "messages": [], "has_more": False, "response_metadata": {"next_cursor": ""}}
    )


def slack_message(ts: str, key: str | None = None, text: str = "x") -> dict[str, Any]:
    item: dict[str, Any] = {"type": "message", "subtype": "bot_message", "text": text, "ts": ts}
    if key is not None:
        item["metadata"] = {"event_type": EVENT_TYPE, "event_payload": {"idempotency_key": key}}
    return item


# --- Web API contract -----------------------------------------------------------------------------


@respx.mock
async def test_post_reads_history_then_posts_json_with_metadata():
    history = respx.get(HISTORY_URL).mock(return_value=empty_history())
    post = respx.post(POST_URL).mock(
        return_value=httpx.Response(
            200, json={"ok": True, "channel": CHANNEL, "ts": "1712345678.000100", "message": {}}
        )
    )
    throttle = RecordingThrottle()
    async with httpx.AsyncClient() as http:
        client = SlackClient(http, base_url=SLACK, token="xoxb-1-2-abc", throttle=throttle)
        before = time.time()
        result = await client.post_message(message(blocks=BLOCKS), idempotency_key="wf-1/notify")

    assert result.provider == "slack" and result.object_type == "message"
    assert result.id == "1712345678.000100" and result.created
    read = history.calls.last.request
    assert read.headers["Authorization"] == "Bearer xoxb-1-2-abc"
    assert read.url.params["channel"] == CHANNEL
    assert read.url.params["include_all_metadata"] == "true"
    assert read.url.params["limit"] == "100"
    assert before - 86_400 - 5 < float(read.url.params["oldest"]) < before - 86_400 + 5
    sent = post.calls.last.request
    assert sent.method == "POST"
    assert sent.headers["Authorization"] == "Bearer xoxb-1-2-abc"
    assert sent.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(sent.content) == {
        "channel": CHANNEL,
        "text": "Ada booked a demo",
        "blocks": BLOCKS,
        "metadata": {
            "event_type": "journeys_notification",
            "event_payload": {"idempotency_key": "wf-1/notify"},
        },
    }
    # One message a second per channel: the post has its own channel's bucket.
    assert throttle.keys == ["slack:conversations.history", f"slack:{CHANNEL}"]


@respx.mock
async def test_an_earlier_post_found_on_a_later_history_page_is_not_posted_again():
    pages = [
        httpx.Response(
            200,
            json={
                "ok": True,
                "messages": [
                    slack_message("1712345679.000200", "other-key"),
                    slack_message("1712345679.000150"),
                ],
                "has_more": True,
                "response_metadata": {"next_cursor": "bmV4dF90czoxNzEyMzQ1Njc5LjAwMDE1MA=="},
            },
        ),
        httpx.Response(
            200,
            json={
                "ok": True,
                "messages": [slack_message("1712345678.000100", "wf-1/notify")],
                "has_more": False,
                "response_metadata": {"next_cursor": ""},
            },
        ),
    ]
    history = respx.get(HISTORY_URL).mock(side_effect=pages)
    post = respx.post(POST_URL)
    async with httpx.AsyncClient() as http:
        result = await SlackClient(http, base_url=SLACK, token="xoxb-t").post_message(
            message(), idempotency_key="wf-1/notify"
        )
    assert not result.created and result.id == "1712345678.000100"
    assert not post.called
    assert history.call_count == 2
    assert "cursor" not in history.calls[0].request.url.params
    assert history.calls[1].request.url.params["cursor"] == "bmV4dF90czoxNzEyMzQ1Njc5LjAwMDE1MA=="


@respx.mock
async def test_history_stops_after_max_pages():
    more = httpx.Response(
        200,
        json={
            "ok": True,
            "messages": [slack_message("1712345679.000200")],
            "has_more": True,
            "response_metadata": {"next_cursor": "abc"},
        },
    )
    history = respx.get(HISTORY_URL).mock(return_value=more)
    respx.post(POST_URL).mock(
        return_value=httpx.Response(200, json={"ok": True, "channel": CHANNEL, "ts": "1.2"})
    )
    async with httpx.AsyncClient() as http:
        client = SlackClient(http, base_url=SLACK, token="xoxb-t", max_history_pages=3, history_page_size=15)
        result = await client.post_message(message(), idempotency_key="k")
    assert result.created and history.call_count == 3
    assert history.calls[0].request.url.params["limit"] == "15"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"ok": False, "error": "channel_not_found"}, "channel_not_found"),
        ({"ok": False, "error": "is_archived"}, "is_archived"),
        ({"ok": False, "error": "invalid_auth"}, "invalid_auth"),
        ({"ok": False, "error": "not_authed"}, "not_authed"),
        (
            {
                "ok": False,
                "error": "invalid_blocks",
                "response_metadata": {
                    "messages": ["[ERROR] missing required field: text [json-pointer:/blocks/0]"]
                },
            },
            "invalid_blocks [ERROR] missing required field: text [json-pointer:/blocks/0]",
        ),
        (
            {"ok": False, "error": "missing_scope", "needed": "chat:write", "provided": "channels:history"},
            "missing_scope needed: chat:write, provided: channels:history",
        ),
    ],
)
@respx.mock
async def test_ok_false_answers_with_http_200_are_permanent_and_carry_slacks_code(body, expected):
    respx.get(HISTORY_URL).mock(return_value=empty_history())
    respx.post(POST_URL).mock(return_value=httpx.Response(200, json=body))
    observer = RecordingObserver()
    async with httpx.AsyncClient() as http:
        client = SlackClient(http, base_url=SLACK, token="xoxb-t", observer=observer)
        with pytest.raises(PermanentPlatformError) as caught:
            await client.post_message(message(), idempotency_key="k")
    assert expected in str(caught.value)
    assert not isinstance(caught.value, TransientPlatformError)
    assert observer.calls[-1] == ("slack", "chat.postMessage", "rejected")


@respx.mock
async def test_history_errors_stop_the_post():
    respx.get(HISTORY_URL).mock(
        return_value=httpx.Response(200, json={"ok": False, "error": "not_in_channel"})
    )
    post = respx.post(POST_URL)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PermanentPlatformError, match="not_in_channel"):
            await SlackClient(http, base_url=SLACK, token="xoxb-t").post_message(
                message(), idempotency_key="k"
            )
    assert not post.called


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"ok": False, "error": "internal_error"}),
        httpx.Response(200, json={"ok": False, "error": "fatal_error"}),
        httpx.Response(200, json={"ok": False, "error": "service_unavailable"}),
        httpx.Response(200, json={"ok": False, "error": "request_timeout"}),
        httpx.Response(503, text="<html>Service Unavailable</html>"),
        httpx.Response(500, json={"ok": False, "error": "internal_error"}),
    ],
)
@respx.mock
async def test_server_side_failures_are_transient(response):
    respx.get(HISTORY_URL).mock(return_value=empty_history())
    respx.post(POST_URL).mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(TransientPlatformError) as caught:
            await SlackClient(http, base_url=SLACK, token="xoxb-t").post_message(
                message(), idempotency_key="k"
            )
    assert not isinstance(caught.value, RateLimitedError)
    assert caught.value.status == response.status_code


@respx.mock
async def test_http_429_carries_retry_after():
    respx.get(HISTORY_URL).mock(return_value=empty_history())
    respx.post(POST_URL).mock(
        return_value=httpx.Response(
            429, json={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "30"}
        )
    )
    observer = RecordingObserver()
    async with httpx.AsyncClient() as http:
        client = SlackClient(http, base_url=SLACK, token="xoxb-t", observer=observer)
        with pytest.raises(RateLimitedError) as caught:
            await client.post_message(message(), idempotency_key="k")
    assert caught.value.retry_after == 30 and caught.value.status == 429
    assert "ratelimited" in str(caught.value)
    assert observer.calls[-1] == ("slack", "chat.postMessage", "rate_limited")


@respx.mock
async def test_rate_limited_code_without_a_header_backs_off_for_a_while():
    respx.get(HISTORY_URL).mock(return_value=empty_history())
    respx.post(POST_URL).mock(return_value=httpx.Response(200, json={"ok": False, "error": "rate_limited"}))
    async with httpx.AsyncClient() as http:
        with pytest.raises(RateLimitedError) as caught:
            await SlackClient(http, base_url=SLACK, token="xoxb-t").post_message(
                message(), idempotency_key="k"
            )
    assert caught.value.retry_after == 30


@respx.mock
async def test_history_429_is_rate_limited_on_its_own_bucket():
    respx.get(HISTORY_URL).mock(
        return_value=httpx.Response(
            429, json={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "60"}
        )
    )
    throttle = RecordingThrottle()
    async with httpx.AsyncClient() as http:
        client = SlackClient(http, base_url=SLACK, token="xoxb-t", throttle=throttle)
        with pytest.raises(RateLimitedError) as caught:
            await client.post_message(message(), idempotency_key="k")
    assert caught.value.retry_after == 60
    assert throttle.keys == ["slack:conversations.history"]


async def test_timeouts_are_transient():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as http:
        with pytest.raises(TransientPlatformError, match="timeout"):
            await SlackClient(http, base_url=SLACK, token="xoxb-t").post_message(
                message(), idempotency_key="k"
            )


# --- incoming webhook contract --------------------------------------------------------------------


@respx.mock
async def test_webhook_posts_json_and_reads_plain_ok():
    hook = respx.post(HOOK_URL).mock(return_value=httpx.Response(200, text="ok"))
    throttle = RecordingThrottle()
    async with httpx.AsyncClient() as http:
        client = SlackWebhookClient(http, webhook_url=HOOK_URL, throttle=throttle)
        first = await client.post_message(message(blocks=BLOCKS), idempotency_key="wf-1/notify")
        again = await client.post_message(message(blocks=BLOCKS), idempotency_key="wf-1/notify")
    sent = hook.calls.last.request
    assert sent.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Authorization" not in sent.headers
    assert json.loads(sent.content) == {"text": "Ada booked a demo", "blocks": BLOCKS}
    # At least once: both calls posted; the id stays the key's.
    assert hook.call_count == 2
    assert first.id == again.id and first.id.startswith("webhook-")
    assert first.object_type == "webhook_message"
    assert throttle.keys == [f"slack:{CHANNEL}", f"slack:{CHANNEL}"]


@respx.mock
async def test_webhook_is_chosen_by_channel():
    other = "https://hooks.slack.com/services/T00000000/B11111111/YYYYYYYYYYYYYYYYYYYYYYYY"
    default = respx.post(HOOK_URL).mock(return_value=httpx.Response(200, text="ok"))
    routed = respx.post(other).mock(return_value=httpx.Response(200, text="ok"))
    async with httpx.AsyncClient() as http:
        client = SlackWebhookClient(http, webhook_url=HOOK_URL, channel_webhooks={"C0SALES0001": other})
        await client.post_message(message(channel="C0SALES0001"), idempotency_key="a")
        await client.post_message(message(channel="C0ELSE00001"), idempotency_key="b")
    assert routed.call_count == 1 and default.call_count == 1


@pytest.mark.parametrize(
    ("status", "text", "error_type"),
    [
        (400, "invalid_payload", PermanentPlatformError),
        (400, "no_text", PermanentPlatformError),
        (403, "action_prohibited", PermanentPlatformError),
        (404, "no_service", PermanentPlatformError),
        (404, "channel_not_found", PermanentPlatformError),
        (410, "channel_is_archived", PermanentPlatformError),
        (500, "rollup_error", TransientPlatformError),
    ],
)
@respx.mock
async def test_webhook_plain_text_errors(status, text, error_type):
    respx.post(HOOK_URL).mock(return_value=httpx.Response(status, text=text))
    async with httpx.AsyncClient() as http:
        with pytest.raises(error_type) as caught:
            await SlackWebhookClient(http, webhook_url=HOOK_URL).post_message(message(), idempotency_key="k")
    assert text in str(caught.value) and caught.value.status == status
    assert not isinstance(caught.value, RateLimitedError)


@respx.mock
async def test_webhook_429_carries_retry_after():
    respx.post(HOOK_URL).mock(
        return_value=httpx.Response(429, text="rate_limited", headers={"Retry-After": "4"})
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(RateLimitedError) as caught:
            await SlackWebhookClient(http, webhook_url=HOOK_URL).post_message(message(), idempotency_key="k")
    assert caught.value.retry_after == 4


# --- against the sandbox --------------------------------------------------------------------------


@pytest.fixture
def sandbox():
    return create_app(seed=1)


@pytest.fixture
async def http(sandbox):
    async with in_process(sandbox) as client:
        yield client


def slack(http: httpx.AsyncClient, token: str = "xoxb-sandbox-token", **options: Any) -> SlackClient:
    return SlackClient(http, base_url="http://sandbox/slack", token=token, **options)


def effects(sandbox, kind: str) -> list[dict[str, Any]]:
    return [c for c in sandbox.state.sandbox.calls if c.get("effect") == kind]


async def test_sandbox_post_is_idempotent(http, sandbox):
    first = await slack(http).post_message(message(blocks=BLOCKS), idempotency_key="wf-9/notify")
    again = await slack(http).post_message(message(blocks=BLOCKS), idempotency_key="wf-9/notify")
    other = await slack(http).post_message(message(), idempotency_key="wf-9/other")

    assert first.created and not again.created and other.created
    assert first.id == again.id != other.id
    assert len(first.id.split(".")[1]) == 6
    stored = sandbox.state.sandbox.records["slack_messages"]
    assert len(stored) == 2
    created = effects(sandbox, "created")
    assert [c["object_id"] for c in created] == [first.id, other.id]
    assert not effects(sandbox, "duplicate")
    posts = [c for c in sandbox.state.sandbox.calls if c["path"] == "/api/chat.postMessage"]
    assert len(posts) == 2
    assert posts[0]["body"]["metadata"]["event_payload"] == {"idempotency_key": "wf-9/notify"}


async def test_sandbox_finds_an_earlier_post_beyond_the_first_page(http, sandbox):
    target = await slack(http).post_message(message("first"), idempotency_key="early")
    for n in range(5):
        await slack(http).post_message(message(f"later {n}"), idempotency_key=f"later-{n}")
    before = len(sandbox.state.sandbox.calls)
    again = await slack(http, history_page_size=2).post_message(message("first"), idempotency_key="early")

    assert not again.created and again.id == target.id
    replay = sandbox.state.sandbox.calls[before:]
    assert [c["path"] for c in replay] == ["/api/conversations.history"] * 3
    assert "cursor=" in replay[1]["query"] and "cursor=" in replay[2]["query"]
    assert len(effects(sandbox, "created")) == 6


async def test_sandbox_history_without_include_all_metadata_hides_it(http):
    await slack(http).post_message(message(), idempotency_key="k")
    answer = await http.get(
        "/slack/api/conversations.history",
        params={"channel": CHANNEL},
        headers={"Authorization": "Bearer xoxb-x"},
    )
    assert answer.json()["ok"] and "metadata" not in answer.json()["messages"][0]


async def test_sandbox_post_older_than_the_window_is_posted_again(http, sandbox):
    # Honest limit: the read looks back `dedupe_window` only.
    old_ts = f"{time.time() - 3 * 86_400:.6f}"
    sandbox.state.sandbox.table("slack_messages")[f"{CHANNEL}:{old_ts}"] = {
        **slack_message(old_ts, "wf-old"),
        "channel": CHANNEL,
    }
    result = await slack(http).post_message(message(), idempotency_key="wf-old")
    assert result.created and result.id != old_ts


async def test_sandbox_injected_faults_are_classified(http, sandbox):
    sandbox.state.sandbox.faults["slack"] = Faults(fail_next=1, fail_status=429, retry_after_seconds=7)
    with pytest.raises(RateLimitedError) as caught:
        await slack(http).post_message(message(), idempotency_key="k")
    assert caught.value.retry_after == 7
    sandbox.state.sandbox.faults["slack"] = Faults(fail_next=1, fail_status=503)
    with pytest.raises(TransientPlatformError) as failed:
        await slack(http).post_message(message(), idempotency_key="k")
    assert "service_unavailable" in str(failed.value)
    result = await slack(http).post_message(message(), idempotency_key="k")
    assert result.created and len(effects(sandbox, "created")) == 1


async def test_sandbox_auth_failures(http):
    with pytest.raises(PermanentPlatformError, match="not_authed"):
        await slack(http, token="").post_message(message(), idempotency_key="k")
    with pytest.raises(PermanentPlatformError, match="invalid_auth"):
        await slack(http, token="not-a-slack-token").post_message(message(), idempotency_key="k")


async def test_sandbox_channel_errors(http, sandbox):
    sandbox.state.sandbox.table("slack_channels")["C0ARCHIVED1"] = {"is_archived": True}
    with pytest.raises(PermanentPlatformError, match="is_archived"):
        await slack(http).post_message(message(channel="C0ARCHIVED1"), idempotency_key="k")
    # A name cannot be read back: the read-before-write needs the channel's id.
    with pytest.raises(PermanentPlatformError, match="channel_not_found"):
        await slack(http).post_message(message(channel="#general"), idempotency_key="k")
    assert not effects(sandbox, "created")


async def test_sandbox_rejects_bad_blocks_with_slacks_detail(http):
    with pytest.raises(PermanentPlatformError, match=r"invalid_blocks .*json-pointer:/blocks/0"):
        await slack(http).post_message(message(blocks=[{"text": "no type"}]), idempotency_key="k")


HOOK_PATH = "/services/T0SANDBOX/B0HOOK0001/abcdefghijklmnop1234"


async def test_sandbox_webhook_is_at_least_once(http, sandbox):
    client = SlackWebhookClient(http, base_url="http://sandbox/slack", webhook_url=HOOK_PATH)
    first = await client.post_message(message(), idempotency_key="wf-3/notify")
    again = await client.post_message(message(), idempotency_key="wf-3/notify")
    assert first.id == again.id
    # No read-back: a replay posts a second message, as the module docstring says.
    assert len(effects(sandbox, "created")) == 2
    stored = list(sandbox.state.sandbox.records["slack_messages"].values())
    assert {m["channel"] for m in stored} == {"C0HOOK0001"}


async def test_sandbox_webhook_errors(http, sandbox):
    bad = SlackWebhookClient(http, base_url="http://sandbox/slack", webhook_url="/services/T0/B0/short")
    with pytest.raises(PermanentPlatformError, match="no_service") as caught:
        await bad.post_message(message(), idempotency_key="k")
    assert caught.value.status == 404
    sandbox.state.sandbox.table("slack_channels")["C0HOOK0001"] = {"is_archived": True}
    client = SlackWebhookClient(http, base_url="http://sandbox/slack", webhook_url=HOOK_PATH)
    with pytest.raises(PermanentPlatformError, match="channel_is_archived") as archived:
        await client.post_message(message(), idempotency_key="k")
    assert archived.value.status == 410
    sandbox.state.sandbox.faults["slack"] = Faults(fail_next=1, fail_status=429, retry_after_seconds=3)
    with pytest.raises(RateLimitedError) as limited:
        await client.post_message(message(), idempotency_key="k")
    assert limited.value.retry_after == 3
    assert not effects(sandbox, "created")


async def test_sandbox_takes_the_default_sandbox_webhook_and_alert_channel(http, sandbox):
    hook = SlackWebhookClient(
        http, base_url="http://sandbox/slack", webhook_url="/services/T0SANDBOX/B0SANDBOX/sandboxhook"
    )
    await hook.post_message(message(), idempotency_key="k")
    posted = await slack(http).post_message(message(channel="C0SALESALERT"), idempotency_key="k")
    assert posted.created and len(effects(sandbox, "created")) == 2


async def test_a_user_id_is_a_direct_message_opened_once():
    app = create_app(seed=1)
    async with in_process(app) as http:
        client = SlackClient(http, base_url="http://sandbox/slack", token="xoxb-test")
        first = await client.post_message(ChatMessage(channel="U0ANARUIZ", text="hi"), idempotency_key="k-dm")
        again = await client.post_message(ChatMessage(channel="U0ANARUIZ", text="hi"), idempotency_key="k-dm")
    assert first.created and not again.created and first.id == again.id
    opened = [c for c in app.state.sandbox.calls if c["path"] == "/api/conversations.open"]
    assert len(opened) == 1
    posted = [c for c in app.state.sandbox.calls if c["path"] == "/api/chat.postMessage"]
    assert len(posted) == 1 and posted[0]["body"]["channel"].startswith("D")


async def test_with_a_ledger_a_first_post_skips_the_history_and_a_retry_makes_no_call():
    from platforms.base import MemoryLedger

    app = create_app(seed=1)
    now = [0.0]
    ledger = MemoryLedger(clock=lambda: now[0])
    async with in_process(app) as http:
        client = SlackClient(http, base_url="http://sandbox/slack", token="xoxb-test", ledger=ledger)
        first = await client.post_message(
            ChatMessage(channel="C0SALESQUEUE", text="hi"), idempotency_key="k1"
        )
        calls_after_first = len(app.state.sandbox.calls)
        again = await client.post_message(
            ChatMessage(channel="C0SALESQUEUE", text="hi"), idempotency_key="k1"
        )
        # An outcome lost mid-post (pending in the ledger) is settled by reading the history, once
        # the earlier attempt can no longer land (before, its retry is put off: no call at all).
        await ledger.pending("k2", "slack")
        calls_before_retry = len(app.state.sandbox.calls)
        now[0] = 5.0
        with pytest.raises(WriteInFlightError) as early:
            await client.post_message(ChatMessage(channel="C0SALESQUEUE", text="yo"), idempotency_key="k2")
        assert early.value.retry_after == pytest.approx(IN_FLIGHT_SECONDS - 5.0)
        assert len(app.state.sandbox.calls) == calls_before_retry
        now[0] = IN_FLIGHT_SECONDS + 1
        lost = await client.post_message(ChatMessage(channel="C0SALESQUEUE", text="yo"), idempotency_key="k2")
    assert [c["path"] for c in app.state.sandbox.calls[:calls_after_first]] == ["/api/chat.postMessage"]
    assert again.id == first.id and not again.created
    assert app.state.sandbox.calls[calls_after_first]["path"] == "/api/conversations.history"
    settled = await ledger.recall("k2")
    assert lost.created and settled is not None and settled.status == "done"
