"""How long tests wait for what should happen: generous deadlines, one per kind of wait.

A liveness wait (poll until something happens) returns as soon as it happens, so a long deadline
costs nothing on a fast machine and keeps the test passing on a slow or loaded one (both cores busy
beside the suite, a CI runner shared with other jobs). Only a failing test waits the whole deadline.
No test asserts that something is fast: speed is measured in bench/ (docs/BENCHMARKS.md).

CHATAPP_TEST_TIME_SCALE multiplies every deadline here (e.g. 3 on an emulated or very slow machine).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

TIME_SCALE = float(os.environ.get("CHATAPP_TEST_TIME_SCALE") or 1)

LIVENESS_S = 60 * TIME_SCALE
"""Something that should happen eventually: a message arrives, a page changes, a task ends, a log line is written."""

SERVER_START_S = 90 * TIME_SCALE
"""A `python -m chatapp` subprocess answers /healthz (it imports litellm and migrates the database first)."""

LIVENESS_MS = LIVENESS_S * 1000
"""LIVENESS_S for Playwright, which counts milliseconds."""

SHOULD_SEE_RETRIES = round(LIVENESS_S / 0.1)
"""NiceGUI's User.should_see tries every 0.1 s (its own default, 3 tries, gives up after 0.3 s)."""

SHOULD_NOT_SEE_RETRIES = round(LIVENESS_S / 0.05)
"""User.should_not_see tries every 0.05 s and returns as soon as the element is gone."""


async def eventually(condition: Callable[[], object], *, within: float = LIVENESS_S, every: float = 0.01) -> None:
    """Return as soon as condition() is true (checked every `every` s); AssertionError after `within` s."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition still false after {within:.0f} s")
        await asyncio.sleep(every)


def eventually_blocking(
    condition: Callable[[], object],
    *,
    within: float = LIVENESS_S,
    every: float = 0.05,
    pause: Callable[[float], object] = time.sleep,
) -> None:
    """eventually() for tests without an event loop of their own (subprocess servers, Playwright's sync API).

    `pause(seconds)` waits between checks: with Playwright pass one that lets its events in (page.wait_for_timeout).
    """
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition still false after {within:.0f} s")
        pause(every)
