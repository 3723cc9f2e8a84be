"""Outbound webhooks signed per Standard Webhooks: the exact request, the spec's status handling,
and the sandbox sink as a conforming receiver (signature check, dedupe on webhook-id)."""

import asyncio
import base64
import json
import socket
import time

import httpx
import pytest
import respx

from domain.signatures import SignatureError, verify_standard_webhook
from platforms.errors import PermanentPlatformError, RateLimitedError, TransientPlatformError
from platforms.outbound_webhook import OutboundWebhookClient, message_id_for
from platforms.ports import WebhookDelivery
from sandbox.app import Faults, create_app
from sandbox.webhook import signature_problem
from tests.helpers.platforms import in_process

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
URL = "https://hooks.example.com/journeys/in"
KEY = "lead-5f1c:handoff:webhook"


def hook(http: httpx.AsyncClient, **kwargs) -> OutboundWebhookClient:
    """A client whose targets are not resolved (the requests here go to a mock transport or the
    sandbox on this machine); the address guard has its own tests below."""
    kwargs.setdefault("allow_private", True)
    return OutboundWebhookClient(http, base_url="", secret=kwargs.pop("secret", SECRET), **kwargs)


def delivery(url: str = URL, **payload) -> WebhookDelivery:
    return WebhookDelivery(url=url, event_type="lead.qualified", payload=payload or {"lead_id": "lead-5f1c"})


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client


# --- the request --------------------------------------------------------------------------------


@respx.mock
async def test_deliver_posts_a_signed_standard_webhook(http):
    route = respx.post(URL).mock(return_value=httpx.Response(204))
    before = int(time.time())
    result = await hook(http).deliver(delivery(lead_id="lead-5f1c", score=80), idempotency_key=KEY)
    request = route.calls.last.request
    headers = request.headers
    assert request.method == "POST" and request.url == URL
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == KEY
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())
    assert headers["webhook-signature"].startswith("v1,") and " " not in headers["webhook-signature"]
    verify_standard_webhook(
        headers["webhook-id"],
        headers["webhook-timestamp"],
        headers["webhook-signature"],
        request.content,
        SECRET,
        now=time.time(),
    )
    body = json.loads(request.content)
    assert body["type"] == "lead.qualified"
    assert body["data"] == {"lead_id": "lead-5f1c", "score": 80}
    assert body["timestamp"].endswith("Z")
    assert b" " not in request.content  # minified: the bytes signed are the bytes sent
    assert (result.provider, result.object_type, result.id, result.created) == (
        "webhook",
        "webhook_message",
        KEY,
        True,
    )


def test_signature_matches_the_reference_vector():
    client = OutboundWebhookClient(httpx.AsyncClient(), secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signed = client.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@respx.mock
async def test_the_webhook_id_is_stable_across_retries_and_never_holds_a_dot(http):
    route = respx.post(URL).mock(return_value=httpx.Response(200))
    dotted = "lead-1:form:sub.2024.06:webhook"
    first = await hook(http).deliver(delivery(), idempotency_key=dotted)
    again = await hook(http).deliver(delivery(), idempotency_key=dotted)
    ids = [call.request.headers["webhook-id"] for call in route.calls]
    assert ids[0] == ids[1] == first.id == again.id == message_id_for(dotted)
    assert ids[0].startswith("msg_") and "." not in ids[0]


@respx.mock
async def test_during_rotation_every_secret_signs(http):
    route = respx.post(URL).mock(return_value=httpx.Response(200))
    await hook(http, previous_secrets=[OLD_SECRET]).deliver(delivery(), idempotency_key=KEY)
    request = route.calls.last.request
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    stamp = request.headers["webhook-timestamp"]
    for secret, signature in zip((SECRET, OLD_SECRET), signatures, strict=True):
        verify_standard_webhook(KEY, stamp, signature, request.content, secret, now=time.time())
    with pytest.raises(SignatureError):
        verify_standard_webhook(
            KEY, request.headers["webhook-timestamp"], signatures[1], request.content, SECRET, now=time.time()
        )


@respx.mock
async def test_a_receiver_that_says_duplicate_answers_created_false(http):
    respx.post(URL).mock(return_value=httpx.Response(200, json={"duplicate": True}))
    result = await hook(http).deliver(delivery(), idempotency_key=KEY)
    assert not result.created and result.id == KEY


@respx.mock
async def test_throttled_per_receiving_host(http):
    class Recorder:
        keys: list[str] = []

        async def acquire(self, key: str) -> None:
            self.keys.append(key)

    respx.post(URL).mock(return_value=httpx.Response(200))
    throttle = Recorder()
    await hook(http, throttle=throttle).deliver(delivery(), idempotency_key=KEY)
    assert throttle.keys == ["webhook:hooks.example.com"]


def test_bad_configuration_is_refused_at_construction():
    with pytest.raises(ValueError, match="whsec_"):
        OutboundWebhookClient(httpx.AsyncClient(), secret="whsec_not base64!")
    with pytest.raises(ValueError, match="empty"):
        OutboundWebhookClient(httpx.AsyncClient(), secret="whsec_")
    with pytest.raises(ValueError, match="redirects"):
        OutboundWebhookClient(httpx.AsyncClient(follow_redirects=True), secret=SECRET)


async def test_only_http_urls(http):
    with pytest.raises(PermanentPlatformError, match="http"):
        await hook(http).deliver(delivery("ftp://files.example.com/in"), idempotency_key=KEY)


# --- the spec's status handling -----------------------------------------------------------------


@respx.mock
async def test_410_gone_is_permanent_and_says_to_disable(http):
    respx.post(URL).mock(return_value=httpx.Response(410, text="endpoint removed"))
    with pytest.raises(PermanentPlatformError) as caught:
        await hook(http).deliver(delivery(), idempotency_key=KEY)
    assert caught.value.status == 410
    assert "disable this endpoint" in str(caught.value) and "endpoint removed" not in str(caught.value)


@respx.mock
async def test_429_waits_as_long_as_the_receiver_asks(http):
    respx.post(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "12"}))
    with pytest.raises(RateLimitedError) as caught:
        await hook(http).deliver(delivery(), idempotency_key=KEY)
    assert caught.value.retry_after == 12 and caught.value.status == 429


@respx.mock
async def test_503_with_retry_after_is_retried_after_that_delay(http):
    respx.post(URL).mock(return_value=httpx.Response(503, text="maintenance", headers={"Retry-After": "30"}))
    with pytest.raises(RateLimitedError) as caught:
        await hook(http).deliver(delivery(), idempotency_key=KEY)
    assert caught.value.retry_after == 30 and caught.value.status == 503
    assert "maintenance" not in str(caught.value), "the receiver's answer is not repeated"


@pytest.mark.parametrize("status", [500, 502, 504])
@respx.mock
async def test_server_errors_are_transient(http, status):
    respx.post(URL).mock(return_value=httpx.Response(status, text="boom"))
    with pytest.raises(TransientPlatformError) as caught:
        await hook(http).deliver(delivery(), idempotency_key=KEY)
    assert not isinstance(caught.value, RateLimitedError)
    assert caught.value.status == status


@respx.mock
async def test_redirects_are_not_followed(http):
    respx.post(URL).mock(
        return_value=httpx.Response(301, headers={"Location": "https://elsewhere.example.com/in"})
    )
    elsewhere = respx.post("https://elsewhere.example.com/in").mock(return_value=httpx.Response(200))
    with pytest.raises(PermanentPlatformError) as caught:
        await hook(http).deliver(delivery(), idempotency_key=KEY)
    assert caught.value.status == 301 and "not followed" in str(caught.value)
    assert "elsewhere.example.com" not in str(caught.value), "nor where it points"
    assert not elsewhere.called


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@respx.mock
async def test_other_client_errors_are_permanent_and_the_receivers_answer_is_kept_out(http, status):
    respx.post(URL).mock(return_value=httpx.Response(status, json={"error": "bad signature or payload"}))
    with pytest.raises(PermanentPlatformError) as caught:
        await hook(http).deliver(delivery(), idempotency_key=KEY)
    assert caught.value.status == status and "bad signature or payload" not in str(caught.value)


@respx.mock
async def test_timeouts_and_refusals_are_transient(http):
    respx.post(URL).mock(side_effect=httpx.ReadTimeout("slow receiver"))
    with pytest.raises(TransientPlatformError, match="timeout"):
        await hook(http).deliver(delivery(), idempotency_key=KEY)
    respx.post(URL).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(TransientPlatformError, match="transport"):
        await hook(http).deliver(delivery(), idempotency_key=KEY)


# --- the sandbox sink as a conforming receiver ----------------------------------------------------


@pytest.fixture
def sandbox():
    return create_app(seed=1)


@pytest.fixture
async def sandbox_http(sandbox):
    async with in_process(sandbox) as client:
        yield client


SINK = "http://sandbox/webhook/acme/leads"


def webhook_calls(sandbox) -> list[dict]:
    return [c for c in sandbox.state.sandbox.calls if c["provider"] == "webhook"]


async def configure(http: httpx.AsyncClient, secret: str = SECRET) -> None:
    answer = await http.put("/webhook/_secrets/acme/leads", json={"secret": secret})
    assert answer.status_code == 200


async def test_sandbox_dedupes_on_webhook_id(sandbox_http, sandbox):
    await configure(sandbox_http)
    first = await hook(sandbox_http).deliver(delivery(SINK), idempotency_key=KEY)
    again = await hook(sandbox_http).deliver(delivery(SINK), idempotency_key=KEY)
    assert first.created and not again.created and first.id == again.id == KEY
    deliveries = [c for c in webhook_calls(sandbox) if c["method"] == "POST"]
    assert [c["effect"] for c in deliveries] == ["created", "duplicate"]
    assert [c["status"] for c in deliveries] == [202, 200]
    assert deliveries[0]["headers"]["webhook-id"] == KEY
    stored = sandbox.state.sandbox.records["webhook_messages"]
    assert len(stored) == 1
    (message,) = stored.values()
    assert message["verified"] and message["deliveries"] == 2
    assert message["body"]["type"] == "lead.qualified"


async def test_sandbox_refuses_a_bad_signature_with_401(sandbox_http, sandbox):
    await configure(sandbox_http, OLD_SECRET)
    with pytest.raises(PermanentPlatformError) as caught:
        await hook(sandbox_http).deliver(delivery(SINK), idempotency_key=KEY)
    assert caught.value.status == 401 and "no v1 signature" not in str(caught.value)
    assert "webhook_messages" not in sandbox.state.sandbox.records
    # A rotation that still signs with the configured (older) secret passes.
    await hook(sandbox_http, previous_secrets=[OLD_SECRET]).deliver(delivery(SINK), idempotency_key=KEY)
    assert webhook_calls(sandbox)[-1]["effect"] == "created"


async def test_sandbox_refuses_unsigned_and_stale_deliveries_when_it_knows_a_secret(sandbox_http):
    await configure(sandbox_http)
    unsigned = await sandbox_http.post("/webhook/acme/leads", json={"type": "x"})
    assert unsigned.status_code == 401 and "required" in unsigned.json()["detail"]
    body = b'{"type":"x"}'
    stale = int(time.time()) - 3600
    signer = OutboundWebhookClient(sandbox_http, secret=SECRET, allow_private=True)
    answer = await sandbox_http.post(
        "/webhook/acme/leads",
        content=body,
        headers={
            "webhook-id": "msg_1",
            "webhook-timestamp": str(stale),
            "webhook-signature": signer.sign("msg_1", stale, body),
        },
    )
    assert answer.status_code == 401 and "tolerance" in answer.json()["detail"]


def test_sandbox_verifier_accepts_the_reference_vector():
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert signature_problem(secret, headers, b'{"test": 2432232314}', now=1614265330) is None
    assert signature_problem(secret, headers, b'{"test": 1}', now=1614265330) is not None


async def test_the_plain_sink_still_takes_any_json(sandbox_http, sandbox):
    answer = await sandbox_http.post("/webhook/anything/at/all", json={"hello": "world"})
    assert 200 <= answer.status_code < 300
    again = await sandbox_http.post("/webhook/anything/at/all", json={"hello": "world"})
    assert 200 <= again.status_code < 300
    assert [c["effect"] for c in webhook_calls(sandbox)] == ["created", "created"]


async def test_sandbox_without_a_secret_still_dedupes(sandbox_http, sandbox):
    first = await hook(sandbox_http).deliver(delivery(SINK), idempotency_key=KEY)
    again = await hook(sandbox_http).deliver(delivery(SINK), idempotency_key=KEY)
    other = await hook(sandbox_http).deliver(delivery(SINK), idempotency_key=KEY + ":2")
    assert first.created and not again.created and other.created
    assert len(sandbox.state.sandbox.records["webhook_messages"]) == 2


async def test_sandbox_secret_configuration(sandbox_http):
    bad = await sandbox_http.put("/webhook/_secrets/acme", json={"secret": "not base64!"})
    assert bad.status_code == 400
    await configure(sandbox_http)
    removed = await sandbox_http.delete("/webhook/_secrets/acme/leads")
    assert removed.status_code == 204
    unsigned = await sandbox_http.post("/webhook/acme/leads", json={"type": "x"})
    assert unsigned.status_code == 202


async def test_sandbox_429_carries_the_retry_delay(sandbox_http, sandbox):
    sandbox.state.sandbox.faults["webhook"] = Faults(fail_next=1, fail_status=429, retry_after_seconds=7)
    with pytest.raises(RateLimitedError) as caught:
        await hook(sandbox_http).deliver(delivery(SINK), idempotency_key=KEY)
    assert caught.value.retry_after == 7
    result = await hook(sandbox_http).deliver(delivery(SINK), idempotency_key=KEY)
    assert result.created  # the fault stored nothing: the retry is the first delivery


async def test_sandbox_faults_are_transient(sandbox_http, sandbox):
    sandbox.state.sandbox.faults["webhook"] = Faults(fail_next=1, fail_status=500)
    with pytest.raises(TransientPlatformError) as caught:
        await hook(sandbox_http).deliver(delivery(SINK), idempotency_key=KEY)
    assert caught.value.status == 500 and not isinstance(caught.value, RateLimitedError)
    sandbox.state.sandbox.faults["webhook"] = Faults(fail_next=1, fail_status=503, retry_after_seconds=9)
    with pytest.raises(RateLimitedError) as slow:
        await hook(sandbox_http).deliver(delivery(SINK), idempotency_key=KEY)
    assert slow.value.status == 503 and slow.value.retry_after == 9


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """Delivers every request, but the first answer is lost on the way back (a timeout)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not self.lost:
            self.lost = True
            raise httpx.ReadTimeout("the answer never came", request=request)
        return response


async def test_a_retry_after_an_unheard_answer_is_processed_once(sandbox_http, sandbox):
    """The receiver took the first delivery but we never heard: the retry finds it by webhook-id."""
    await configure(sandbox_http)
    transport = LoseFirstAnswer(httpx.ASGITransport(app=sandbox))
    async with httpx.AsyncClient(transport=transport) as lossy:
        with pytest.raises(TransientPlatformError, match="timeout"):
            await hook(lossy).deliver(delivery(SINK), idempotency_key=KEY)
        again = await hook(lossy).deliver(delivery(SINK), idempotency_key=KEY)
    assert not again.created and again.id == KEY
    effects = [c.get("effect") for c in webhook_calls(sandbox) if c["method"] == "POST"]
    assert effects == ["created", "duplicate"]
    assert len(sandbox.state.sandbox.records["webhook_messages"]) == 1


# --- where a webhook may go ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("http://127.0.0.1:8000/v1/admin/keys", "loopback"),
        ("http://[::1]/x", "loopback"),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.7/internal", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://100.64.12.1/", "carrier-grade NAT"),
        ("http://0.0.0.0/", "private or reserved"),
    ],
)
async def test_a_webhook_to_this_machine_or_a_private_network_is_refused_before_any_connection(target, why):
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    transport = httpx.MockTransport(answer)
    async with httpx.AsyncClient(transport=transport) as http:
        client = OutboundWebhookClient(http, secret=SECRET)
        with pytest.raises(PermanentPlatformError, match=why):
            await client.deliver(delivery(target), idempotency_key=KEY)
    assert sent == []


async def test_a_name_is_resolved_once_checked_and_connected_to_as_checked(monkeypatch):
    """A name that resolves to a private address is refused; a public one is connected to by the
    address checked, with the name kept for TLS and the Host header (no second lookup to rebind)."""
    answers = {"rebind.example.com": "10.1.2.3", "hooks.example.com": "93.184.215.14"}

    async def getaddrinfo(host, port, **_):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = OutboundWebhookClient(http, secret=SECRET)
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
        with pytest.raises(PermanentPlatformError, match="private"):
            await client.deliver(delivery("https://rebind.example.com/in"), idempotency_key=KEY)
        assert sent == []
        await client.deliver(delivery("https://hooks.example.com/journeys/in"), idempotency_key=KEY)
    [request] = sent
    assert request.url.host == "93.184.215.14" and request.url.path == "/journeys/in"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


async def test_what_the_target_answered_is_never_repeated():
    body = "root:x:0:0:root:/root:/bin/bash"
    transport = httpx.MockTransport(lambda request: httpx.Response(400, text=body))
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(PermanentPlatformError) as refused:
            await hook(http).deliver(delivery(), idempotency_key=KEY)
    assert "root:" not in str(refused.value) and "400" in str(refused.value)
