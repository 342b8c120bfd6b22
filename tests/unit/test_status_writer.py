"""The status writer judges a change against what it last wrote while the cache lags: a
stale copy of the app would make the same change look new again, and write it twice."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from typing import Any

from exposedapp.domain.desired import AppRef
from exposedapp.runtime.client import Answer
from exposedapp.runtime.status_writer import StatusWriter

APP = AppRef("shop", "web", "uid-1")


class StatusApi:
    """Answers status patches with a new resourceVersion each, and records them."""

    def __init__(self) -> None:
        self.patches: list[Mapping[str, Any]] = []

    def patch_status(self, app: AppRef, patch: Mapping[str, Any]) -> Answer:
        self.patches.append(patch)
        version = str(100 + len(self.patches))
        return Answer(200, "OK", "", {"metadata": {"resourceVersion": version}})


def conditions(ready: str, reason: str) -> dict[str, Any]:
    return {
        "conditions": [
            {"type": "Ready", "status": ready, "reason": reason, "message": reason},
            {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "ok"},
        ]
    }


def writer(api: StatusApi) -> StatusWriter:
    """A writer whose app was first seen long enough ago for progress to be written."""
    now = [1000.0]
    status = StatusWriter(
        api,
        clock=lambda: datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
        monotonic=lambda: now[0],
        warn=lambda ref, reason, message: None,
        minimum_interval=1.0,
        writes_per_second=5.0,
    )
    status.seen(APP.uid)
    now[0] += 60
    return status


def test_a_change_already_written_is_not_written_again_while_the_cache_lags() -> None:
    api = StatusApi()
    status = writer(api)
    not_ready = conditions("False", "EndpointsNotReady")
    serving = conditions("True", "Serving")

    async def scenario() -> list[bool]:
        # Version 7 has no status: Ready False is written (it makes version 101).
        progress = await status.write(APP, {}, not_ready, acted=False, version="7")
        # The cache still shows 7; Ready turning True is new: written (makes 102).
        ready = await status.write(APP, {}, conditions("True", "Serving"), acted=False, version="7")
        # The cache shows 7, then our first write (101): Ready True is not new either time.
        again = await status.write(APP, {}, conditions("True", "Serving"), acted=False, version="7")
        lagging = await status.write(
            APP, not_ready, conditions("True", "Serving"), acted=False, version="101"
        )
        return [progress, ready, again, lagging]

    assert asyncio.run(scenario()) == [True, True, False, False]
    assert len(api.patches) == 2
    assert api.patches[1]["conditions"][0]["status"] == serving["conditions"][0]["status"]


def test_once_the_cache_shows_our_write_or_someone_elses_it_is_the_truth_again() -> None:
    api = StatusApi()
    status = writer(api)
    serving = conditions("True", "Serving")

    async def scenario() -> list[bool]:
        first = await status.write(APP, {}, serving, acted=False, version="7")
        caught_up = await status.write(
            APP, serving, conditions("True", "Serving"), acted=False, version="101"
        )
        # Another writer put Ready False (version 150): going back to True is a change.
        other = await status.write(
            APP, conditions("False", "X"), conditions("True", "Serving"), acted=False, version="150"
        )
        return [first, caught_up, other]

    assert asyncio.run(scenario()) == [True, False, True]
    assert len(api.patches) == 2
