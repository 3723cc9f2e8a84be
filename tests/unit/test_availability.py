"""Temporal's availability as the API sees it: slow probes on a busy machine are not an outage,
a refused connection is, at once."""

from types import SimpleNamespace
from typing import Any

from temporalio.service import RPCError, RPCStatusCode

from runtime.availability import SLOW_PROBES_FOR_DOWN, TemporalAvailability


class Health:
    def __init__(self) -> None:
        self.answers: list[Any] = []

    async def check_health(self, timeout: Any = None) -> bool:
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return bool(answer)


def availability() -> tuple[TemporalAvailability, Health]:
    health = Health()
    return TemporalAvailability(SimpleNamespace(service_client=health)), health  # type: ignore[arg-type]


async def test_slow_probes_in_a_row_are_an_outage_one_alone_is_not():
    watched, health = availability()
    slow = RPCError("operation was canceled", RPCStatusCode.CANCELLED, b"")
    health.answers = [slow, True, *([TimeoutError()] * SLOW_PROBES_FOR_DOWN), True]
    assert await watched.probe() and watched.available
    assert await watched.probe()
    for _ in range(SLOW_PROBES_FOR_DOWN - 1):
        assert await watched.probe()
    assert not await watched.probe() and "TimeoutError" in watched.reason
    assert await watched.probe() and watched.reason == ""


async def test_a_refused_connection_is_an_outage_at_once():
    watched, health = availability()
    health.answers = [RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b""), True]
    assert not await watched.probe() and "tcp connect error" in watched.reason
    assert await watched.probe()
