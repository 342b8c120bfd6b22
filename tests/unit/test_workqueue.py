"""The keyed work queue: one run per key at a time, coalescing, retry with backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from exposedapp.runtime.workqueue import Backoff, Outcome, WorkQueue


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


def test_backoff_doubles_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=4, factor=2)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_keys_enqueued_while_waiting_are_coalesced_into_one_run() -> None:
    calls: list[str] = []

    async def reconcile(key: str) -> Outcome:
        calls.append(key)
        return Outcome()

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(reconcile, workers=2)
        for _ in range(5):
            queue.enqueue("a")
        queue.enqueue("b")
        queue.start()
        assert await queue.drained(5)
        await queue.stop()

    run(scenario)
    assert sorted(calls) == ["a", "b"]


def test_a_key_never_runs_twice_at_once_and_reruns_once_after_changes_during_a_run() -> None:
    running: set[str] = set()
    overlaps = 0
    calls = 0
    release = asyncio.Event()

    async def reconcile(key: str) -> Outcome:
        nonlocal overlaps, calls
        overlaps += key in running
        running.add(key)
        calls += 1
        if calls == 1:
            await release.wait()
        running.discard(key)
        return Outcome()

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(reconcile, workers=4)
        queue.start()
        queue.enqueue("a")
        while calls == 0:
            await asyncio.sleep(0.001)
        for _ in range(3):  # arrive while the first run is in progress
            queue.enqueue("a")
        release.set()
        assert await queue.drained(5)
        await queue.stop()

    run(scenario)
    assert overlaps == 0
    assert calls == 2


def test_failures_are_retried_with_backoff_and_success_resets_it() -> None:
    attempts = 0

    async def reconcile(key: str) -> Outcome:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("conflict")
        return Outcome()

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(
            reconcile, workers=1, backoff=Backoff(initial=0.01, maximum=0.02)
        )
        queue.start()
        queue.enqueue("a")
        while attempts < 3 or queue.busy:
            await asyncio.sleep(0.005)
        await queue.stop()
        assert queue._failures == {}

    run(scenario)
    assert attempts == 3


def test_requeue_after_runs_the_key_again_later() -> None:
    calls = 0

    async def reconcile(key: str) -> Outcome:
        nonlocal calls
        calls += 1
        return Outcome(requeue_after=0.02 if calls == 1 else None)

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(reconcile, workers=1)
        queue.start()
        queue.enqueue("a")
        while calls < 2:
            await asyncio.sleep(0.005)
        assert await queue.drained(1)
        await queue.stop()

    run(scenario)
    assert calls == 2


def test_an_earlier_enqueue_supersedes_a_later_due_time() -> None:
    order: list[str] = []

    async def reconcile(key: str) -> Outcome:
        order.append(key)
        return Outcome()

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(reconcile, workers=1)
        queue.enqueue("slow", delay=30)
        queue.enqueue("slow", delay=0)
        queue.enqueue("other", delay=0.05)
        queue.start()
        while len(order) < 2:
            await asyncio.sleep(0.005)
        await queue.stop()

    run(scenario)
    assert order == ["slow", "other"]


@pytest.mark.parametrize("workers", [1, 3])
def test_many_keys_all_run_exactly_once(workers: int) -> None:
    seen: list[int] = []

    async def reconcile(key: int) -> Outcome:
        await asyncio.sleep(0)
        seen.append(key)
        return Outcome()

    async def scenario() -> None:
        queue: WorkQueue[int] = WorkQueue(reconcile, workers=workers)
        queue.start()
        for key in range(100):
            queue.enqueue(key)
        assert await queue.drained(5)
        await queue.stop()

    run(scenario)
    assert sorted(seen) == list(range(100))


def test_a_failing_key_is_due_again_after_each_backoff_by_the_queue_clock() -> None:
    """The backoff is scheduled on the queue's own clock (here a fake one): each failure
    doubles the wait up to the maximum, a success resets it, and a requeue_after is kept."""
    now = [100.0]
    failing = [True]

    async def reconcile(key: str) -> Outcome:
        if failing[0]:
            raise RuntimeError("conflict")
        return Outcome(requeue_after=7.0)

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(
            reconcile, backoff=Backoff(initial=1, maximum=4), clock=lambda: now[0]
        )
        queue.enqueue("a")
        waits = []
        for _ in range(4):
            key, _ = queue._pop_due()
            assert key == "a"
            await queue._run(key)
            pending, wait = queue._pop_due()
            assert pending is None
            waits.append(wait)
            now[0] += wait or 0
        assert waits == [1.0, 2.0, 4.0, 4.0]
        failing[0] = False
        key, _ = queue._pop_due()
        assert key == "a"
        await queue._run(key)
        assert queue._pop_due() == (None, 7.0)
        assert queue._failures == {}

    run(scenario)
