"""Events for people: one Event per distinct occurrence, repeats counted on it as a series.

As client-go's events recorder (k8s.io/client-go/tools/events), an Event is identified by
what it is about, its type and its reason, and here also by its message (an Event's note
cannot change, and a new message is news). The first occurrence creates it; a repeat within
``SERIES_WINDOW`` counts on it (``series.count``, ``series.lastObservedTime``), and the count
is written at most once per ``SERIES_FLUSH`` per Event, so a problem retried with backoff
costs a bounded number of writes. Event names are derived from that identity, so a
restarted operator finds its Event again (the create answers 409) and goes on counting on
it instead of posting a second one. Repeats in memory since the last flush are lost with
the process, as with client-go.

The recorder owns this state; the API calls go through the ApiClient (runtime/client.py).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..domain.desired import AppRef
from ..runtime.client import KubeApi

__all__ = ["SERIES_FLUSH", "SERIES_WINDOW", "EventRecorder", "event_name"]

logger = logging.getLogger(__name__)
SERIES_WINDOW = datetime.timedelta(minutes=6)
SERIES_FLUSH = datetime.timedelta(minutes=5)


def event_name(app: AppRef, kind: str, reason: str, message: str) -> str:
    """``<app>.<hash of uid, type, reason, message>``: the same Event for the same
    occurrence, also for another process."""
    identity = f"{app.uid}/{kind}/{reason}/{message}"
    return f"{app.name}.{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


@dataclass
class _Series:
    name: str
    count: int  # occurrences so far, as far as this process knows
    written: int  # the count the Event carries
    last_seen: datetime.datetime
    last_written: datetime.datetime


class EventRecorder:
    """Posts and counts Events; ``post`` and ``record`` never raise (events are best
    effort), and together they keep at most ``parallel`` event requests in flight."""

    def __init__(
        self,
        client: KubeApi,
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
        parallel: int = 4,
    ) -> None:
        self.client = client
        self.clock = clock
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        self._gate = asyncio.Semaphore(parallel)

    def forget(self, uid: str) -> None:
        """Drop what is known of an app's Events (the app is gone)."""
        for key in [k for k in self._series if k[0] == uid]:
            del self._series[key]

    async def post(self, app: AppRef, kind: str, reason: str, message: str) -> None:
        """Post an Event of its own (one reconcile's actions: each is news once)."""
        async with self._gate:
            answer = await asyncio.to_thread(self.client.post_event, app, kind, reason, message)
        if not answer.ok:  # events are best effort: never fail a reconcile for one
            logger.debug("Could not post event %s: %s", reason, answer.message)

    async def record(self, app: AppRef, kind: str, reason: str, message: str) -> None:
        now = self.clock()
        key = (app.uid, kind, reason, message)
        series = self._series.get(key)
        if series is not None and now - series.last_seen <= SERIES_WINDOW:
            series.count += 1
            series.last_seen = now
            if now - series.last_written >= SERIES_FLUSH:
                await self._write_count(app, series, now)
            return
        name = event_name(app, kind, reason, message)
        async with self._gate:
            answer = await asyncio.to_thread(
                self.client.post_event, app, kind, reason, message, name
            )
        if answer.code == 409:
            # Posted before (by this operator before a restart, or a series that lapsed):
            # count on it.
            previous = await asyncio.to_thread(self.client.get_event, app.namespace, name)
            count = ((previous.body.get("series") or {}).get("count") or 1) if previous.ok else 1
            series = _Series(name, count + 1, count, now, now - SERIES_FLUSH)
            self._series[key] = series
            await self._write_count(app, series, now)
            return
        if not answer.ok:
            logger.debug("Could not post event %s: %s", reason, answer.message)
            return
        self._series[key] = _Series(name, 1, 1, now, now)

    async def _write_count(self, app: AppRef, series: _Series, now: datetime.datetime) -> None:
        async with self._gate:
            answer = await asyncio.to_thread(
                self.client.patch_event_series, app.namespace, series.name, series.count, now
            )
        if answer.ok:
            series.written, series.last_written = series.count, now
        elif answer.code == 404:
            # The Event is gone (expired, deleted): the next occurrence posts it again.
            self._series = {k: v for k, v in self._series.items() if v is not series}
        else:
            logger.debug("Could not count event %s: %s", series.name, answer.message)
