"""A throttle's slot too far out reaches Temporal as the platform's 429 would: `RateLimited`, retried
after the wait. The throttles raise the domain's `OverRateLimit` (the store may not know platform
errors); the platform client translates it."""

from datetime import timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.errors import platform_errors
from domain.errors import RATE_LIMITED
from domain.ratelimits import OverRateLimit, RateLimit
from platforms.base import PlatformClient
from platforms.errors import RateLimitedError
from platforms.throttle import LocalThrottle


class Probe(PlatformClient):
    provider = "probe"

    def _throttle_key(self, operation: str) -> str:
        return f"probe:{operation}"

    async def ping(self) -> int:
        return (await self._call("ping", "GET", "/ping")).status_code


def answered(calls: list[str]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_a_slot_too_far_out_is_a_rate_limited_platform_error_and_no_request():
    calls: list[str] = []
    throttle = LocalThrottle({"probe:*": RateLimit(per_second=0.5)}, max_wait=0.5)
    async with answered(calls) as http:
        client = Probe(http, base_url="http://probe", throttle=throttle)
        assert await client.ping() == 200
        with pytest.raises(RateLimitedError) as caught:
            await client.ping()
    assert calls == ["/ping"]
    assert caught.value.provider == "probe" and caught.value.status == 429
    assert 1.5 < caught.value.retry_after <= 2.0
    assert isinstance(caught.value.__cause__, OverRateLimit)
    assert caught.value.__cause__.key == "probe:ping"


async def test_the_activity_boundary_retries_it_after_the_wait():
    throttle = LocalThrottle({"probe": RateLimit(per_second=0.25)}, max_wait=0.1)
    async with answered([]) as http:
        client = Probe(http, base_url="http://probe", throttle=throttle)
        client._throttle_key = lambda operation: "probe"  # type: ignore[method-assign]
        await client.ping()
        with pytest.raises(ApplicationError) as caught:
            async with platform_errors():
                await client.ping()
    assert caught.value.type == RATE_LIMITED and not caught.value.non_retryable
    assert caught.value.next_retry_delay is not None
    assert timedelta(seconds=3.5) < caught.value.next_retry_delay <= timedelta(seconds=4)
