"""kopf's watch starts and restarts become counters, read from kopf's watch functions
(wrapped in kopf_adapter), never from its log text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import watching

from exposedapp.runtime import kopf_adapter, metrics

RESOURCE = "pods.v1"


def value(counter_name: str, **labels: str) -> float:
    sample = metrics.REGISTRY.get_sample_value(counter_name, {"resource": RESOURCE, **labels})
    return sample or 0.0


def counts() -> tuple[float, float, float]:
    return (
        value("exposedapp_watch_starts_total"),
        value("exposedapp_watch_restarts_total", reason="expired"),
        value("exposedapp_watch_restarts_total", reason="inactive"),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(kopf_adapter, "_now", fake)
    return fake


def settings(inactivity_timeout: float = 70.0) -> kopf.OperatorSettings:
    result = kopf.OperatorSettings()
    result.watching.inactivity_timeout = inactivity_timeout
    return result


def drain(stream: AsyncIterator[Any]) -> list[Any]:
    async def collect() -> list[Any]:
        return [item async for item in stream]

    return asyncio.run(collect())


def test_the_pinned_kopf_has_the_watch_functions_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watching, "continuous_watch", watching.continuous_watch)
    monkeypatch.setattr(watching, "watch_objs", watching.watch_objs)
    assert kopf_adapter.count_watches()
    assert watching.watch_objs is kopf_adapter._counted_watch_objs
    assert watching.continuous_watch is kopf_adapter._counted_continuous_watch


def test_each_listing_is_a_start(monkeypatch: pytest.MonkeyPatch) -> None:
    async def inner(**_: Any) -> AsyncIterator[Any]:
        yield {"type": None, "object": {}}

    monkeypatch.setattr(kopf_adapter, "_kopf_continuous_watch", inner)
    before = counts()
    for _ in range(2):
        assert drain(kopf_adapter._counted_continuous_watch(resource=RESOURCE)) == [
            {"type": None, "object": {}}
        ]
    assert tuple(a - b for a, b in zip(counts(), before, strict=True)) == (2.0, 0.0, 0.0)


def test_410_gone_is_an_expired_restart_and_events_pass_unchanged(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    events = [
        {"type": "ADDED", "object": {"metadata": {"name": "a"}}},
        {"type": "ERROR", "object": {"code": 410, "reason": "Expired"}},
    ]

    async def inner(**_: Any) -> AsyncIterator[Any]:
        for event in events:
            yield event

    monkeypatch.setattr(kopf_adapter, "_kopf_watch_objs", inner)
    before = counts()
    stream = kopf_adapter._counted_watch_objs(settings=settings(), resource=RESOURCE)
    assert drain(stream) == events
    assert tuple(a - b for a, b in zip(counts(), before, strict=True)) == (0.0, 1.0, 0.0)


@pytest.mark.parametrize(("silent_for", "inactive"), [(70.0, 1.0), (69.0, 0.0), (5.0, 0.0)])
def test_a_request_that_ends_inactivity_timeout_after_its_last_event_is_inactive(
    monkeypatch: pytest.MonkeyPatch, clock: Clock, silent_for: float, inactive: float
) -> None:
    async def inner(**_: Any) -> AsyncIterator[Any]:
        yield {"type": "MODIFIED", "object": {}}
        clock.now += silent_for  # then nothing, until kopf's timeout or the server ends it

    monkeypatch.setattr(kopf_adapter, "_kopf_watch_objs", inner)
    before = counts()
    drain(kopf_adapter._counted_watch_objs(settings=settings(70.0), resource=RESOURCE))
    assert tuple(a - b for a, b in zip(counts(), before, strict=True)) == (0.0, 0.0, inactive)
