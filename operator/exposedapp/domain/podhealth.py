"""Why a Pod does not run, read from its status as the kubelet and the scheduler wrote it. Pure.

A Pod that is not Ready says why in its container statuses: a container waiting with a
reason (``CreateContainerConfigError``, ``CrashLoopBackOff``, ``ErrImagePull``,
``ImagePullBackOff``, ``ErrImageNeverPull``, ``RunContainerError``, ...), a last exit
(``OOMKilled``, ``Error`` with its exit code), a container running but not ready (its
readiness probe fails), or a ``PodScheduled`` condition that is False. ``pod_problems``
turns those into ``PodProblem`` values; ``explain`` turns the problems of an app's Pods
into one reason and one bounded message for the Ready condition.

Sources: k8s.io/kubernetes pkg/kubelet/images/types.go and
pkg/kubelet/container/sync_result.go (the waiting reasons), core/v1 ContainerStatus.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CREATING_GRACE",
    "NOT_READY_GRACE",
    "PodProblem",
    "explain",
    "pod_problems",
    "shorten",
    "trim_pod_status",
]

# A container running but not ready for this long has a readiness probe that fails (the
# seconds before that are the probe's normal start-up).
NOT_READY_GRACE = datetime.timedelta(seconds=10)
# A Pod whose containers are still being created this long after the Pod was made is
# stuck (a volume that cannot be mounted, an image that takes long to pull).
CREATING_GRACE = datetime.timedelta(seconds=30)
_CREATING = (
    "still being created 30 s after the Pod was made: a volume that cannot be mounted "
    "(a missing Secret or ConfigMap) or a slow image pull; `kubectl describe pod {pod}` "
    "shows the kubelet's events"
)
# A kubelet message is quoted up to this many characters in the Ready message.
MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class PodProblem:
    """One reason a Pod does not run or serve.

    ``container`` is "" for a Pod-level problem (scheduling). ``since`` is when a running
    container started (for "running but not ready") or when the Pod was made (for "still
    being created"), else None: those count only after a grace period.
    """

    pod: str
    container: str
    reason: str
    message: str
    since: datetime.datetime | None = None

    @property
    def cause(self) -> tuple[str, str]:
        """What makes two problems "the same cause" for events: reason and container."""
        return (self.reason, self.container)


def shorten(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` cut at a word boundary within ``limit`` characters, saying how much is left."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 24].rsplit(" ", 1)[0]
    return f"{cut} [{len(text) - len(cut)} more characters]"


def _time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _last_exit(status: Mapping[str, Any]) -> str:
    terminated = (status.get("lastState") or {}).get("terminated") or {}
    if not terminated:
        return ""
    restarts = status.get("restartCount", 0)
    return (
        f"; last exit: {terminated.get('reason') or 'Error'} "
        f"(exit code {terminated.get('exitCode')}), {restarts} restarts"
    )


def _container_problem(
    pod: str, status: Mapping[str, Any], created: datetime.datetime | None
) -> PodProblem | None:
    name = status.get("name", "")
    state = status.get("state") or {}
    waiting = state.get("waiting") or {}
    if waiting.get("reason") == "ContainerCreating":
        # The kubelet tells why only in events (FailedMount, Pulling): say where to look.
        return PodProblem(pod, name, "ContainerCreating", _CREATING.format(pod=pod), created)
    last = ((status.get("lastState") or {}).get("terminated") or {}).get("reason")
    if waiting.get("reason") and waiting["reason"] not in ("ContainerCreating", "PodInitializing"):
        reason = "OOMKilled" if last == "OOMKilled" else waiting["reason"]
        message = waiting.get("message") or reason
        return PodProblem(pod, name, reason, message + _last_exit(status))
    terminated = state.get("terminated") or {}
    if terminated and terminated.get("exitCode") != 0:
        reason = terminated.get("reason") or "Error"
        return PodProblem(
            pod, name, reason, f"exited with code {terminated.get('exitCode')}" + _last_exit(status)
        )
    running = state.get("running")
    if running is not None and not status.get("ready"):
        since = _time(running.get("startedAt"))
        return PodProblem(
            pod,
            name,
            "ContainerNotReady",
            "running but not ready: its readiness probe fails",
            since,
        )
    return None


def pod_problems(pod: Mapping[str, Any]) -> tuple[PodProblem, ...]:
    """Every reason the Pod does not run or serve, in container order; () if none is known."""
    name = (pod.get("metadata") or {}).get("name", "")
    created = _time((pod.get("metadata") or {}).get("creationTimestamp"))
    status = pod.get("status") or {}
    found: list[PodProblem] = []
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            found.append(
                PodProblem(
                    name,
                    "",
                    condition.get("reason") or "Unschedulable",
                    condition.get("message") or "",
                )
            )
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(key) or []:
            problem = _container_problem(name, container, created)
            if problem is not None and not (
                # A running init container is doing its work (or is a sidecar): its
                # readiness is not the Pod's.
                key == "initContainerStatuses" and problem.reason == "ContainerNotReady"
            ):
                found.append(problem)
    return tuple(found)


def trim_pod_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """What ``pod_problems`` and the plan read of a Pod's status, and nothing more."""

    def state(value: Mapping[str, Any] | None) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for phase, fields in (
            ("waiting", ("reason", "message")),
            ("running", ("startedAt",)),
            ("terminated", ("reason", "exitCode")),
        ):
            if value and phase in value:
                kept[phase] = {k: v for k, v in (value[phase] or {}).items() if k in fields}
        return kept

    trimmed: dict[str, Any] = {k: status[k] for k in ("phase", "reason") if k in status}
    conditions = []
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            fields: tuple[str, ...] = ("type", "status", "lastTransitionTime")
        elif condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            fields = ("type", "status", "reason", "message")
        else:
            continue
        conditions.append({k: condition.get(k) for k in fields})
    trimmed["conditions"] = conditions
    # A ready container has nothing to explain: thousands of healthy Pods keep none.
    for key in ("initContainerStatuses", "containerStatuses"):
        unready = [c for c in status.get(key) or [] if not c.get("ready")]
        if unready:
            trimmed[key] = [
                {
                    "name": c.get("name"),
                    "ready": False,
                    "restartCount": c.get("restartCount", 0),
                    "state": state(c.get("state")),
                    "lastState": state(c.get("lastState")),
                }
                for c in unready
            ]
    return trimmed


def _current(problem: PodProblem, now: datetime.datetime) -> bool:
    grace = {"ContainerNotReady": NOT_READY_GRACE, "ContainerCreating": CREATING_GRACE}
    if problem.reason not in grace:
        return True
    return problem.since is not None and now - problem.since >= grace[problem.reason]


def explain(problems: Sequence[PodProblem], now: datetime.datetime) -> tuple[str, str] | None:
    """The Ready condition's reason and message for these problems, or None if none counts.

    The reason is the first problem's (the kubelet's own word); the message names its Pod
    and container, quotes the kubelet (bounded), and counts the other Pods affected.
    """
    current = [p for p in problems if _current(p, now)]
    if not current:
        return None
    first = current[0]
    where = f"Pod {first.pod}" + (f" container {first.container}" if first.container else "")
    others = sorted({p.pod for p in current} - {first.pod})
    more = f" (and {len(others)} more Pod{'s' if len(others) > 1 else ''})" if others else ""
    return first.reason, f"{where}: {first.reason}: {shorten(first.message)}{more}"
