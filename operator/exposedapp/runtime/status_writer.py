"""Writes apps' status: when, and what, if the apiserver refuses it.

When: a status that changes what people act on (a condition, a new generation) is written
at once; progress alone (Pods turning ready one by one) at most once per interval per app,
the interval growing with the number of apps progressing together so that all of them
share one budget of writes per second (status.progress_interval). What: the status the
domain summarised; if the apiserver refuses it for good (a 422: a field over its schema's
bound, a webhook), a minimal truthful status (status.minimal_status) stands in for it
while the same status is wanted, and a Warning event says why once.

The writer owns, per app UID, when its status was last written and what was refused, and
which apps progress now; nothing else keeps them.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..domain.desired import AppRef
from ..domain.objects import merge_patch
from ..domain.status import (
    conditions_equal,
    decide_status_write,
    merge_conditions,
    minimal_status,
    progress_interval,
    track_progress,
)
from .cache import AppKey
from .client import KubeApi, is_transient
from .executor import TransientError

__all__ = ["StatusWriter"]

logger = logging.getLogger(__name__)
Warn = Callable[[AppRef, str, str], None]  # (app, reason, message): a Warning event


@dataclass
class _Written:
    at: float  # monotonic seconds: the last write, or when the app was first seen
    refused: str | None = None  # the status refused for good (as JSON), while wanted
    refusal: tuple[str, str] = ("StatusRefused", "")  # its reason and message
    retry_after: float | None = None  # seconds until a held-back progress write is due
    deadline_after: float | None = None  # seconds until the progress deadline, if one runs
    # The status as we last wrote it, and the app's resourceVersions older than that
    # write (the ones our writes were based on, and what our earlier writes made): while
    # the cache shows one of those, it has not caught up with our last write yet.
    status: Mapping[str, Any] | None = None
    older: set[str] = field(default_factory=set)
    made: str | None = None  # the resourceVersion our last write made

    def fresher(self, current: Mapping[str, Any], version: str | None) -> Mapping[str, Any]:
        if self.status is not None and version in self.older:
            return self.status  # our write has not come back through the watch yet
        self.status = None  # delivered, or overtaken by another writer
        self.older.clear()
        return current

    def wrote(self, status: Mapping[str, Any], based_on: str | None, made: str | None) -> None:
        """Remember a write of ``status`` over version ``based_on``, which made ``made``."""
        self.status = status
        self.older |= {v for v in (based_on, self.made) if v is not None}
        self.older.discard(made or "")
        self.made = made


class StatusWriter:
    def __init__(
        self,
        client: KubeApi,
        *,
        clock: Callable[[], datetime.datetime],
        monotonic: Callable[[], float],
        warn: Warn,
        minimum_interval: float,
        writes_per_second: float,
    ) -> None:
        """``minimum_interval`` (seconds) between two progress writes of one app;
        ``writes_per_second``: the progress writes of all apps together."""
        self.client = client
        self.clock = clock
        self.monotonic = monotonic
        self.warn = warn
        self.minimum_interval = minimum_interval
        self.writes_per_second = writes_per_second
        self._apps: dict[str, _Written] = {}
        self.conditions: dict[AppKey, tuple[tuple[str, str], ...]] = {}
        self.progressing: set[AppKey] = set()  # apps whose Progressing condition is True

    def seen(self, uid: str) -> None:
        """An app first seen now: its first progress write waits the interval too."""
        self._apps.setdefault(uid, _Written(at=self.monotonic()))

    def forget(self, key: AppKey, uid: str | None) -> None:
        self._apps.pop(uid or "", None)
        self.conditions.pop(key, None)
        self.progressing.discard(key)

    def retry_after(self, uid: str) -> float | None:
        """Seconds until this app's held-back progress write is due, or its progress
        deadline; None if neither is."""
        written = self._apps.get(uid)
        if written is None:
            return None
        waits = [t for t in (written.retry_after, written.deadline_after) if t is not None]
        return max(0.1, min(waits)) if waits else None

    def condition_counts(self) -> dict[tuple[str, str], int]:
        """Apps by (condition, status), for the metrics endpoint."""
        counts: dict[tuple[str, str], int] = {}
        for conditions in list(self.conditions.values()):
            for pair in conditions:
                counts[pair] = counts.get(pair, 0) + 1
        return counts

    async def write(
        self,
        ref: AppRef,
        current: Mapping[str, Any],
        wanted: dict[str, Any],
        *,
        acted: bool,
        version: str | None = None,
        deadline_seconds: int = 600,
    ) -> bool:
        """Write ``wanted`` over ``current`` now or later (see the module); True if written.

        ``current`` is the status the cache holds, of the app at resourceVersion
        ``version``; ``wanted`` the summarised status, its conditions without transition
        times; ``acted``: this reconcile changed something; ``deadline_seconds``: the
        app's progressDeadlineSeconds. Raises TransientError if the API failed.
        """
        key = (ref.namespace, ref.name)
        self.seen(ref.uid)
        written = self._apps[ref.uid]
        # Judged against what we last wrote while the cache lags behind it: a stale copy
        # would make the same change look new again, and write it twice.
        current = written.fresher(current, version)
        written.deadline_after = track_progress(wanted, current, self.clock(), deadline_seconds)
        if _stalled_by_deadline(wanted) and not _stalled_by_deadline(current):
            progressing = next(c for c in wanted["conditions"] if c["type"] == "Progressing")
            self.warn(ref, "ProgressDeadlineExceeded", progressing["message"])
        self.conditions[key] = tuple((c["type"], c["status"]) for c in wanted["conditions"])
        if ("Progressing", "True") in self.conditions[key]:
            self.progressing.add(key)
        else:
            self.progressing.discard(key)
        wanted["conditions"] = self._merged(wanted, current)
        decision = decide_status_write(
            current,
            wanted,
            acted=acted,
            seconds_since_write=self.monotonic() - written.at,
            debounce=progress_interval(
                len(self.progressing),
                minimum=self.minimum_interval,
                writes_per_second=self.writes_per_second,
            ),
        )
        written.retry_after = decision.retry_after
        if not decision.now:
            return False
        return await self._write(ref, current, wanted, written, version)

    def _merged(self, status: Mapping[str, Any], current: Mapping[str, Any]) -> Any:
        return merge_conditions(
            status["conditions"],
            current.get("conditions") or [],
            self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    async def _write(
        self,
        ref: AppRef,
        current: Mapping[str, Any],
        wanted: dict[str, Any],
        written: _Written,
        version: str | None,
    ) -> bool:
        """Write ``wanted``; if refused for good, the minimal status. False if the app is
        gone or nothing needed writing."""
        timeless = {
            **wanted,
            "conditions": [
                {k: v for k, v in c.items() if k != "lastTransitionTime"}
                for c in wanted.get("conditions") or []
            ],
        }
        fingerprint = json.dumps(timeless, sort_keys=True)
        if written.refused != fingerprint:
            answer = await asyncio.to_thread(
                self.client.patch_status, ref, merge_patch(current, wanted)
            )
            if answer.code == 404:
                return False  # deleted meanwhile
            if answer.ok:
                written.refused = None
                written.at = self.monotonic()
                written.wrote(wanted, version, _version_of(answer.body))
                return True
            if is_transient(answer):
                raise TransientError(f"writing status: {answer.code} {answer.message}")
            written.refused = fingerprint
            written.refusal = (f"Status{answer.reason or 'Refused'}", answer.message)
            reason, message = written.refusal
            self.warn(ref, reason, f"the status could not be written: {message}")
            logger.warning("Status of %s/%s refused: %s", ref.namespace, ref.name, message)
        return await self._write_minimal(ref, current, wanted, written, version)

    async def _write_minimal(
        self,
        ref: AppRef,
        current: Mapping[str, Any],
        wanted: dict[str, Any],
        written: _Written,
        version: str | None,
    ) -> bool:
        reason, message = written.refusal
        fallback = minimal_status(wanted, reason, message)
        track_progress(fallback, current, self.clock(), 0)
        fallback["conditions"] = self._merged(fallback, current)
        if conditions_equal(current, fallback):
            return False
        answer = await asyncio.to_thread(
            self.client.patch_status, ref, merge_patch(current, fallback)
        )
        if not answer.ok and answer.code != 404:
            raise TransientError(f"writing the minimal status: {answer.code} {answer.message}")
        written.at = self.monotonic()
        if answer.ok:
            written.wrote(fallback, version, _version_of(answer.body))
        return answer.ok


def _stalled_by_deadline(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in status.get("conditions") or []
    )


def _version_of(body: Mapping[str, Any]) -> str | None:
    version = (body.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None
