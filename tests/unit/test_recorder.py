"""The event recorder: one Event per occurrence, repeats counted as a series, bounded writes,
and after a restart the same Event counted on. The clock is injected."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from typing import Any

from exposedapp.domain.desired import AppRef
from exposedapp.runtime.client import Answer
from exposedapp.runtime.recorder import EventRecorder, event_name

APP = AppRef("shop", "web", "uid-1")
START = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


class FakeEvents:
    """Events held as the apiserver would: by name; a second create of a name is a 409."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.writes: list[str] = []

    def post_event(
        self, app: Any, kind: str, reason: str, message: str, name: str | None = None
    ) -> Answer:
        assert name is not None
        self.writes.append(f"create {name}")
        if name in self.events:
            return Answer(409, "AlreadyExists", "exists", {})
        self.events[name] = {"reason": reason, "note": message}
        return Answer(201, "", "", self.events[name])

    def get_event(self, namespace: str, name: str) -> Answer:
        event = self.events.get(name)
        return Answer(200, "", "", event) if event else Answer(404, "NotFound", "", {})

    def patch_event_series(
        self, namespace: str, name: str, count: int, observed: datetime.datetime
    ) -> Answer:
        self.writes.append(f"count {name} {count}")
        if name not in self.events:
            return Answer(404, "NotFound", "", {})
        self.events[name]["series"] = {"count": count, "lastObservedTime": observed}
        return Answer(200, "", "", {})


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


def run(recorder: EventRecorder, times: int, clock: Clock, every: float) -> None:
    async def repeat() -> None:
        for _ in range(times):
            await recorder.record(APP, "Warning", "QuotaExceeded", "exceeded quota")
            clock.advance(seconds=every)

    asyncio.run(repeat())


def counted(events: Mapping[str, Any]) -> int:
    (event,) = events.values()
    return int((event.get("series") or {}).get("count", 1))


def test_repeats_count_on_one_event_with_bounded_writes() -> None:
    api, clock = FakeEvents(), Clock()
    recorder = EventRecorder(api, clock)
    run(recorder, times=41, clock=clock, every=15)  # a retry every 15 s for 10 minutes
    name = event_name(APP, "Warning", "QuotaExceeded", "exceeded quota")
    assert list(api.events) == [name]
    # The first occurrence, then the count written once per 5 minutes: at 5:00 and 10:00.
    assert api.writes == [f"create {name}", f"count {name} 21", f"count {name} 41"]


def test_a_restarted_operator_counts_on_the_event_it_posted_before() -> None:
    api, clock = FakeEvents(), Clock()
    run(EventRecorder(api, clock), times=1, clock=clock, every=1)
    run(EventRecorder(api, clock), times=1, clock=clock, every=1)  # a restart
    assert len(api.events) == 1
    assert counted(api.events) == 2


def test_an_app_created_again_under_the_same_name_gets_its_own_event() -> None:
    api, clock = FakeEvents(), Clock()
    recorder = EventRecorder(api, clock)
    asyncio.run(recorder.record(APP, "Warning", "Invalid", "refused"))
    recorder.forget(APP.uid)
    successor = AppRef(APP.namespace, APP.name, "uid-2")
    asyncio.run(recorder.record(successor, "Warning", "Invalid", "refused"))
    assert len(api.events) == 2


def test_a_new_message_is_a_new_event_and_a_deleted_event_is_posted_again() -> None:
    api, clock = FakeEvents(), Clock()
    recorder = EventRecorder(api, clock)

    async def scenario() -> None:
        await recorder.record(APP, "Warning", "QuotaExceeded", "exceeded quota: cpu")
        await recorder.record(APP, "Warning", "QuotaExceeded", "exceeded quota: memory")
        assert len(api.events) == 2
        api.events.clear()  # expired, or deleted by someone
        for _ in range(2):
            clock.advance(minutes=5)
            await recorder.record(APP, "Warning", "QuotaExceeded", "exceeded quota: cpu")

    asyncio.run(scenario())
    assert list(api.events) == [event_name(APP, "Warning", "QuotaExceeded", "exceeded quota: cpu")]
