"""For the platform clients' contract tests: the sandbox in process, and a throttle and an observer
that record what a client asked of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx


class RecordingThrottle:
    """Grants every slot at once; `keys` are the rate-limit keys asked for, in order."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def acquire(self, key: str) -> None:
        self.keys.append(key)


class RecordingObserver:
    """`calls`: (provider, operation, outcome) of every call a client reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def observe(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        self.calls.append((provider, operation, outcome))


@asynccontextmanager
async def in_process(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to `app` (the sandbox's ASGI app) in process, at http://sandbox."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as client:
        yield client
