"""`eventually`: the one way a test waits for something to become true."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = ..., interval: float = ..., what: str | None = ...
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T], *, timeout: float = ..., interval: float = ..., what: str | None = ...
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str | None = None,
) -> Any:
    """Calls `check` (plain or async) until it holds, and returns what it returned.

    It holds once it raises no AssertionError (nor a LookupError: the list or key is not there yet)
    and does not return False; so both `assert ...` checks and predicates work. After `timeout`
    real seconds, fails with `what` (or the check's name) and the last reason it did not hold.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    reason: BaseException | None = None
    while True:
        try:
            # One call that hangs (a query to a worker that is gone) is bounded by the same deadline.
            async with asyncio.timeout(max(deadline - loop.time(), 0.01)):
                result = check()
                if inspect.isawaitable(result):
                    result = await result
        except (AssertionError, LookupError, TimeoutError) as error:
            reason = error
        else:
            if result is not False:
                return result
            reason = None
        if loop.time() >= deadline:
            name = what or getattr(check, "__qualname__", repr(check))
            why = f"{type(reason).__name__}: {reason}" if reason is not None else "it returned False"
            raise AssertionError(f"{name} did not hold within {timeout:g} s; last: {why}") from reason
        await asyncio.sleep(interval)
