"""Fixes for kopf's start-up over many objects: wake the waiters only when it matters,
hold less while they wait, and survive a listing in pages.

kopf holds every object's handlers until the in-memory indexes are filled: each object of
the initial listing gets a toggle in one set, dropped once the object is indexed, and
every object's worker then waits on the set's condition until all toggles are gone. kopf
(1.45) wakes every waiting worker on every toggle added or dropped: with 5,000 objects
(1,000 apps, their Pods, Services and EndpointSlices) that is millions of wake-ups, each
taking the set's lock in turn, while every waiting worker holds its object's whole body
and no app is reconciled (figures: docs/performance-notes.md).

The set's state is a function of its toggles (all on, or any on); a waiter waits for that
state. Adding or dropping a toggle that leaves it unchanged cannot satisfy any waiter, so
the fix notifies only when it changes. Turning a toggle on or off keeps kopf's own code.

Even without the herd, every listed object's worker holds the object's whole body until
the last object of every kind is indexed, and what a burst of 5,000 bodies leaves behind
in CPython's allocator stays (arenas it cannot give back). `shed_after_indexing` drops,
from the body kopf holds, what nothing reads once the index has taken its copy; listing in
pages (kopf's chunk_size) keeps each response small. kopf (1.45) does not expect a page's
continue token to expire (410 Gone, after etcd compacts its revision): the listing would
end with an error, its watcher would stop for good, and with it the start-up (waiting for
that resource's index) or that resource's watch. The fix lists such a resource again in
one response, which cannot expire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from typing import Any

import kopf
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import errors, fetching, watching

from .metrics import WATCH_RESTARTS, WATCH_STARTS

__all__ = [
    "apply_kopf_fixes",
    "count_watches",
    "follow_pauses",
    "paged_listing_is_safe",
    "shed_after_indexing",
    "wait_until_indexed",
]

logger = logging.getLogger(__name__)


async def _notify_if_changed(self: aiotoggles.ToggleSet, change: Callable[[], object]) -> None:
    """Change the set's toggles; wake its waiters only if that changed the set's state."""
    async with self._condition:
        before = self.is_on()
        change()
        if self.is_on() != before:
            self._condition.notify_all()


# kopf (1.45, reactor/orchestration.py) blocks its "operator indexed" set with a toggle of
# this name until every watched resource has a toggle of its own; the set is on once every
# resource's initial listing is indexed. That set is the only way to know it: no public
# API tells. Recognised when the blocker is made (the toggle-set fix must be applied).
_INDEXED_BLOCKER = "orchestration blocker"
# kopf's "operator paused" set (any toggle on: paused) starts with a toggle of this name;
# peering adds one per peer of higher priority. kopf pauses its own processing on it, and
# tells nothing else but its log.
_PAUSED_FIRST = "peering CRD is missing"
_sets: dict[str, aiotoggles.ToggleSet] = {}  # "indexed", "paused": kopf's sets


async def _kopf_set(name: str, poll: float = 0.05, warn_after: float = 60) -> aiotoggles.ToggleSet:
    """kopf's toggle set ``name`` once kopf has made it (after its API discovery, which
    takes as long as the apiserver does); a warning each minute it has not."""
    waited = 0.0
    while (found := _sets.get(name)) is None:
        await asyncio.sleep(poll)
        waited += poll
        if waited >= warn_after:
            logger.warning("kopf has not made its %r toggle set yet (still waiting)", name)
            waited = 0.0
    return found


async def wait_until_indexed() -> None:
    """Return once kopf has listed and indexed every watched resource once."""
    indexed = await _kopf_set("indexed")
    await indexed.wait_for(True)


async def follow_pauses(
    on_pause: Callable[[], object], on_resume: Callable[[], object], poll: float = 0.05
) -> None:
    """Call ``on_pause`` whenever kopf pauses the operator (a peer of higher priority is
    alive, or a mandatory peering resource is missing), ``on_resume`` when it runs: once
    at once for the state kopf is in, then at each change.

    Runs until cancelled.
    """
    paused = await _kopf_set("paused", poll)
    while True:
        if paused.is_on():
            on_pause()
            await paused.wait_for(False)
        else:
            on_resume()
            await paused.wait_for(True)


async def _make_toggle(
    self: aiotoggles.ToggleSet, __val: bool = False, *, name: str | None = None
) -> aiotoggles.Toggle:
    if name == _INDEXED_BLOCKER:
        _sets["indexed"] = self
    elif name == _PAUSED_FIRST:
        _sets["paused"] = self
    toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
    await _notify_if_changed(self, lambda: self._toggles.add(toggle))
    return toggle


async def _drop_toggle(self: aiotoggles.ToggleSet, toggle: aiotoggles.Toggle) -> None:
    await _notify_if_changed(self, lambda: self._toggles.discard(toggle))


async def _drop_toggles(self: aiotoggles.ToggleSet, toggles: Iterable[aiotoggles.Toggle]) -> None:
    await _notify_if_changed(self, lambda: self._toggles.difference_update(toggles))


_paged_fetch_objs = fetching.fetch_objs


async def _fetch_objs_whole_if_expired(
    *, settings: kopf.OperatorSettings, **kwargs: Any
) -> AsyncIterator[tuple[Collection[Any], str]]:
    """kopf's listing in pages; listed again in one response if a continue token expires.

    The objects of the pages already given are given again: kopf takes a listed object it
    already knows as the same object seen again, and the ghost sweep that follows every
    re-list drops from the indexes whatever was deleted in between.
    """
    try:
        async for chunk in _paged_fetch_objs(settings=settings, **kwargs):
            yield chunk
    except errors.APIClientError as error:
        if error.status != 410 or settings.watching.chunk_size is None:
            raise
        logger.warning(
            "Listing %s in pages: a continue token expired (410 Gone); listing it again in "
            "one response",
            kwargs.get("resource"),
        )
        whole = dataclasses.replace(
            settings, watching=dataclasses.replace(settings.watching, chunk_size=None)
        )
        async for chunk in _paged_fetch_objs(settings=whole, **kwargs):
            yield chunk


_kopf_continuous_watch = watching.continuous_watch
_kopf_watch_objs = watching.watch_objs


async def _counted_continuous_watch(*, resource: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """kopf's listing-then-watching of one resource: each call is a watch start (a first
    listing, or a fresh one after 410 Gone or a lost connection)."""
    WATCH_STARTS.labels(resource=str(resource)).inc()
    async for event in _kopf_continuous_watch(resource=resource, **kwargs):
        yield event


async def _counted_watch_objs(
    *, settings: kopf.OperatorSettings, resource: Any, **kwargs: Any
) -> AsyncIterator[Any]:
    """One watch request of kopf's, passed through; counts why it ended early.

    410 Gone arrives as an ERROR event (kopf then lists again). Inactivity is kopf's
    timeout: the request is cancelled once no event came for inactivity_timeout seconds
    after the last one was handled, so a request that ends that long after its last event
    ended by it (the server closes a watch only after server_timeout, which is longer).
    """
    last = _now()
    async for raw in _kopf_watch_objs(settings=settings, resource=resource, **kwargs):
        error = raw.get("object") if raw.get("type") == "ERROR" else None
        if isinstance(error, dict) and error.get("code") == 410:
            WATCH_RESTARTS.labels(resource=str(resource), reason="expired").inc()
        yield raw
        last = _now()
    timeout = settings.watching.inactivity_timeout
    if timeout is not None and _now() - last >= timeout - _TIMER_SLACK:
        WATCH_RESTARTS.labels(resource=str(resource), reason="inactive").inc()


_TIMER_SLACK = 0.05  # asyncio may run a timer up to its clock resolution early
_now = time.monotonic  # the clock of asyncio's timers; replaced in tests


def count_watches() -> bool:
    """Count kopf's watch starts and restarts (metrics.WATCH_STARTS, WATCH_RESTARTS) by
    wrapping its two watch functions; False (nothing counted) if kopf has changed them."""
    expected = {
        "continuous_watch": {"resource", "namespace", "settings"},
        "watch_objs": {"resource", "namespace", "settings", "since"},
    }
    for name, keywords in expected.items():
        function = getattr(watching, name, None)
        parameters = set(inspect.signature(function).parameters) if function else set()
        if not keywords <= parameters:
            logger.warning("kopf's %s has changed; watch restarts are not counted", name)
            return False
    watching.continuous_watch = _counted_continuous_watch
    watching.watch_objs = _counted_watch_objs
    return True


def apply_kopf_fixes() -> bool:
    """Install each fix kopf is still the one it was written for; True if all are."""
    return all([_fix_toggle_sets(), _fix_paged_listing()])  # a list: both are tried


def paged_listing_is_safe() -> bool:
    """Whether kopf may list in pages: only with the fallback for an expired page."""
    return fetching.fetch_objs is _fetch_objs_whole_if_expired


def _fix_toggle_sets() -> bool:
    probe = aiotoggles.ToggleSet(all)
    expected = ("make_toggle", "drop_toggle", "drop_toggles", "is_on")
    if not all(hasattr(probe, a) for a in ("_condition", "_toggles", *expected)):
        logger.warning("kopf's ToggleSet has changed; its start-up fix is not applied")
        return False
    aiotoggles.ToggleSet.make_toggle = _make_toggle  # type: ignore[method-assign]
    aiotoggles.ToggleSet.drop_toggle = _drop_toggle  # type: ignore[method-assign]
    aiotoggles.ToggleSet.drop_toggles = _drop_toggles  # type: ignore[method-assign]
    return True


def _fix_paged_listing() -> bool:
    if not isinstance(getattr(errors.APIClientError, "status", None), property):
        logger.warning("kopf's API errors have changed; kopf lists without pages")
        return False
    fetching.fetch_objs = _fetch_objs_whole_if_expired
    return True


# What the rest of an event's processing reads once the index has its copy: kopf's own
# loggers and bookkeeping read the metadata (name, namespace, uid, resourceVersion) and our
# event handlers read the namespace, the labels and the event's type.
_KEPT_TOP = frozenset({"apiVersion", "kind", "metadata"})
_SHED_METADATA = ("managedFields", "annotations")


def shed_after_indexing(body: kopf.Body) -> None:
    """Drop from the event's body what nothing reads after its index handler.

    What a burst of listed bodies leaves in CPython's allocator stays, so the less each
    waiting worker holds, the lower the operator settles (docs/performance-notes.md).
    Call it only after the index value is built: the value shares nested parts (labels,
    ports) with the body, so only top-level keys are dropped.
    """
    raw = getattr(body, "_src", None)
    if not isinstance(raw, dict) or getattr(body, "_path", ()) not in ((), None):
        return  # not the view over the raw event kopf builds (1.45): leave it whole
    for key in [k for k in raw if k not in _KEPT_TOP]:
        del raw[key]
    metadata = raw.get("metadata")
    if isinstance(metadata, dict):
        for key in _SHED_METADATA:
            metadata.pop(key, None)
