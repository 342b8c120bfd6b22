"""Poll for a condition with a deadline; on timeout, say what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["WaitTimeout", "wait_for"]


class WaitTimeout(AssertionError):
    """The condition never held; the message carries the last observation."""


def wait_for(
    observe: Callable[[], T],
    condition: Callable[[T], bool] = bool,
    *,
    timeout: float = 60,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Call observe() until condition(observation) holds; return that observation.

    Exceptions raised by observe() count as "not yet" (the object may not exist yet) and
    are reported if the deadline passes.
    """
    deadline = time.monotonic() + timeout
    last: object = "<nothing observed>"
    while True:
        try:
            observation = observe()
        except Exception as error:
            last = f"{type(error).__name__}: {error}"
        else:
            if condition(observation):
                return observation
            last = observation
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out after {timeout:.0f}s waiting for {what}; last saw: {last!r}"
            )
        time.sleep(interval)
