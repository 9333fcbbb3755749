"""Waiting in tests: poll for the condition, with a deadline.

A sleep "long enough" is either too long (a slow suite) or, on a busy
machine, too short (a flaky one). Polling returns as soon as the condition
holds and fails with a message saying what never happened.
"""

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.1,
               message: str | Callable[[], str] = "", ignoring: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Fails after ``timeout`` seconds with ``message`` (a callable is called
    only then, e.g. to read a log's tail). Exceptions of the ``ignoring``
    types count as "not yet", e.g. OSError while a server starts.
    """
    deadline = time.monotonic() + timeout
    while True:
        last_error = None
        try:
            result = predicate()
        except ignoring as exc:
            result, last_error = None, exc
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(timeout, message, last_error))
        time.sleep(interval)


async def wait_until_async(predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05,
                           message: str | Callable[[], str] = "") -> T:
    """``wait_until`` for async tests: sleeps on the event loop between calls,
    so the application under test (same loop) keeps running meanwhile."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(timeout, message, None))
        await asyncio.sleep(interval)
    return result


def _timed_out(timeout: float, message: str | Callable[[], str], last_error: BaseException | None) -> str:
    text = message() if callable(message) else message
    error = f" (last error: {last_error!r})" if last_error is not None else ""
    return f"still waiting after {timeout:g}s{error}: {text}"
