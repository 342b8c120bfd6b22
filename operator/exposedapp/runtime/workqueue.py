"""A small keyed work queue: the one piece of controller machinery kopf lacks.

Guarantees, for each key:
- at most one reconcile runs at a time (events of an app and of its children arrive on
  different kopf streams, so nothing else serialises them);
- keys that arrive while the key waits are coalesced into one run; keys that arrive while
  it runs cause exactly one more run afterwards (the change may have been missed);
- a failed run is retried with exponential backoff, reset by the next success;
- a run may ask to be run again after a delay (e.g. a rollout waiting for minReadySeconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Backoff", "Outcome", "WorkQueue"]

K = TypeVar("K", bound=Hashable)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a reconcile asks of the queue: nothing, or another run after `requeue_after`."""

    requeue_after: float | None = None


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 60.0
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        return float(min(self.maximum, self.initial * self.factor ** max(0, failures - 1)))


class WorkQueue(Generic[K]):
    def __init__(
        self,
        reconcile: Callable[[K], Awaitable[Outcome]],
        *,
        workers: int = 4,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reconcile = reconcile
        self._workers = workers
        self._backoff = backoff
        self._clock = clock
        self._due: dict[K, float] = {}  # waiting keys and when they are due
        self._heap: list[tuple[float, int, K]] = []
        self._order = itertools.count()
        self._running: set[K] = set()
        self._dirty: dict[K, float] = {}  # keys enqueued while running: due time after the run
        self._failures: dict[K, int] = {}
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.runs = 0

    # -- producer side -------------------------------------------------------------------
    def enqueue(self, key: K, delay: float = 0.0) -> None:
        due = self._clock() + delay
        if key in self._running:
            self._dirty[key] = min(due, self._dirty.get(key, due))
            return
        current = self._due.get(key)
        if current is not None and current <= due:
            return  # already waiting, and due no later
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._order), key))
        self._wakeup.set()

    @property
    def waiting(self) -> int:
        return len(self._due)

    @property
    def busy(self) -> bool:
        return bool(self._due or self._running)

    @property
    def idle(self) -> bool:
        """Nothing running and nothing due now (keys may wait for a later time)."""
        now = self._clock()
        return not self._running and not any(due <= now for due in self._due.values())

    # -- consumer side -------------------------------------------------------------------
    def _pop_due(self) -> tuple[K | None, float | None]:
        """The next key that is due, else the seconds until the earliest one."""
        while self._heap:
            due, _, key = self._heap[0]
            if self._due.get(key) != due:  # superseded by an earlier enqueue
                heapq.heappop(self._heap)
                continue
            now = self._clock()
            if due > now:
                return None, due - now
            heapq.heappop(self._heap)
            del self._due[key]
            return key, None
        return None, None

    async def _worker(self) -> None:
        while True:
            key, wait = self._pop_due()
            if key is None:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
                continue
            await self._run(key)

    async def _run(self, key: K) -> None:
        self._running.add(key)
        self.runs += 1
        requeue: float | None
        try:
            outcome = await self._reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            requeue = self._backoff.delay(failures)
            logger.exception(
                "Reconcile of %s failed (attempt %d); retrying in %.1fs", key, failures, requeue
            )
        else:
            self._failures.pop(key, None)
            requeue = outcome.requeue_after
        finally:
            self._running.discard(key)
        dirty = self._dirty.pop(key, None)
        if dirty is not None:
            self.enqueue(key, max(0.0, dirty - self._clock()))
        if requeue is not None:
            self.enqueue(key, requeue)

    def start(self) -> None:
        for index in range(self._workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"workqueue-{index}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def drained(self, timeout: float) -> bool:
        """Wait until nothing is due or running (tests and benchmarks); False on timeout."""
        deadline = self._clock() + timeout
        while self._clock() < deadline:
            if self.idle:
                return True
            await asyncio.sleep(0.01)
        return False
