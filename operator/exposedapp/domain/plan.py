"""Desired vs observed: the Plan of creates, deletes and applies, each with its reason. Pure.

The plan is level-based: it looks only at the current desired state and the current
observed children, so running it again right after its actions landed yields nothing.

Pods get deterministic names, `<app>-<template hash>-<slot>`, with the lowest slot that
no observed Pod uses. A create that races a stale cache therefore fails with
AlreadyExists instead of making a duplicate.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .desired import DesiredState
from .labels import DRAIN_ANNOTATION, TEMPLATE_ANNOTATION, TEMPLATE_HASH_LABEL, UID_LABEL
from .podhealth import PodProblem, pod_problems

__all__ = [
    "DRAIN_REASON_LIMIT",
    "Action",
    "Listing",
    "ObservedPod",
    "Plan",
    "ServiceConflict",
    "describe_template_change",
    "foreign_ports",
    "observe_pod",
    "plan",
    "repaired_service",
    "resolve_rolling",
    "service_differences",
]

# Service spec fields the operator sets besides type, clusterIP and ports.
SERVICE_SCALARS = (
    "selector",
    "sessionAffinity",
    "externalTrafficPolicy",
    "publishNotReadyAddresses",
)

ActionKind = Literal[
    "create_pod",
    "drain_pod",
    "delete_pod",
    "apply_service",
    "replace_service",
    "recreate_service",
    "record_revision",
    "apply_budget",
    "delete_budget",
]
# How much of a drain's reason its annotation keeps: the annotation is bounded by design.
DRAIN_REASON_LIMIT = 256


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    name: str
    reason: str
    body: Mapping[str, Any] | None = None  # a create's object, a drain's merge patch
    uid: str | None = None  # delete preconditions: never delete a same-named successor


@dataclass(frozen=True)
class ServiceConflict:
    """A Service under our name that another owner controls, or that we may not read
    (``unreadable`` says why): never written."""

    name: str
    owner: str
    unreadable: str = ""

    def describe(self) -> str:
        if self.unreadable:
            return (
                f"Service {self.name} could not be read ({self.unreadable}); "
                "it is not written until its owner is known"
            )
        return f"Service {self.name} exists and is controlled by {self.owner}; not touching it"


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    requeue_after: float | None = None
    blocked: tuple[str, ...] = ()  # why some desired change cannot be made now

    @property
    def empty(self) -> bool:
        return not self.actions


@dataclass(frozen=True)
class ObservedPod:
    """What the plan needs of a Pod, read once from its dict."""

    name: str
    uid: str
    template_hash: str
    template_summary: Mapping[str, Any]
    phase: str
    scheduled: bool
    ready: bool
    ready_since: datetime.datetime | None
    created: datetime.datetime
    deleting: bool
    reason: str = ""
    problems: tuple[PodProblem, ...] = ()  # why it does not run or serve (podhealth)
    # Set while it leaves the Service before its deletion (DRAIN_ANNOTATION), with why.
    draining_since: datetime.datetime | None = None
    drain_reason: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in ("Failed", "Succeeded")

    @property
    def draining(self) -> bool:
        return self.draining_since is not None and not self.deleting

    @property
    def live(self) -> bool:
        """Counted as one of the app's Pods: not terminating, draining or finished."""
        return not self.deleting and not self.draining and not self.finished

    def available(self, now: datetime.datetime, min_ready_seconds: int) -> bool:
        if not self.ready or self.ready_since is None:
            return False
        return (now - self.ready_since).total_seconds() >= min_ready_seconds


def _time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def observe_pod(pod: Mapping[str, Any]) -> ObservedPod:
    metadata = pod.get("metadata", {})
    status = pod.get("status", {}) or {}
    ready_condition: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    ready = ready_condition.get("status") == "True"
    annotations = metadata.get("annotations") or {}
    summary = _json_object(annotations.get(TEMPLATE_ANNOTATION))
    drain = _json_object(annotations.get(DRAIN_ANNOTATION))
    return ObservedPod(
        name=metadata["name"],
        uid=metadata.get("uid", ""),
        template_hash=(metadata.get("labels") or {}).get(TEMPLATE_HASH_LABEL, ""),
        template_summary=summary,
        phase=status.get("phase") or "Pending",
        scheduled=bool((pod.get("spec") or {}).get("nodeName")),
        ready=ready,
        ready_since=_time(ready_condition.get("lastTransitionTime")) if ready else None,
        created=_time(metadata.get("creationTimestamp"))
        or datetime.datetime.min.replace(tzinfo=datetime.UTC),
        deleting=bool(metadata.get("deletionTimestamp")),
        reason=status.get("reason") or "",
        problems=pod_problems(pod),
        # A drain annotation without a readable time (edited by hand) began at an unknown
        # time: its timeout counts as passed, so it can never hold the Pod for ever.
        draining_since=(_time(str(drain.get("since") or "")) or _LONG_AGO) if drain else None,
        drain_reason=str(drain.get("reason") or ""),
    )


_LONG_AGO = datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def resolve_rolling(
    max_surge: int | str, max_unavailable: int | str, replicas: int
) -> tuple[int, int]:
    """Absolute surge and unavailability, rounded as Deployments round them."""

    def absolute(value: int | str, round_up: bool) -> int:
        if isinstance(value, int):
            return value
        fraction = int(value.rstrip("%")) * replicas / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)

    surge, unavailable = absolute(max_surge, True), absolute(max_unavailable, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # otherwise no rollout could ever make progress
    return surge, unavailable


def _least_valuable_first(pods: Sequence[ObservedPod]) -> list[ObservedPod]:
    """Unscheduled, then pending, then not ready, then most recently ready, then newest."""
    epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return sorted(
        pods,
        key=lambda p: (
            p.scheduled,
            p.phase != "Pending",
            p.ready,
            -(p.ready_since or epoch).timestamp() if p.ready_since else 0.0,
            -p.created.timestamp(),
        ),
    )


def describe_template_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """A person's account of what differs between two template summaries."""
    changes: list[str] = []
    for section, noun in (("ports", "port"), ("images", "image")):
        before: Mapping[str, Any] = old.get(section) or {}
        after: Mapping[str, Any] = new.get(section) or {}
        for key in sorted(set(before) | set(after)):
            if key not in after:
                changes.append(f"{noun} {key} removed")
            elif key not in before:
                changes.append(f"{noun} {key} added ({after[key]})")
            elif before[key] != after[key]:
                changes.append(f"{noun} {key} {before[key]} -> {after[key]}")
    if old.get("restartedAt") != new.get("restartedAt") and new.get("restartedAt"):
        changes.append(f"restarted at {new['restartedAt']}")
    if old.get("config") != new.get("config") and new.get("config"):
        changes.append("referenced ConfigMap or Secret data changed")
    return ", ".join(changes) if changes else "pod template changed"


def _pod_name(app: str, template_hash: str, slot: int) -> str:
    return f"{app}-{template_hash}-{slot}"


@dataclass(frozen=True)
class Listing:
    """What the app's Service's EndpointSlices say of its Pods, for draining them.

    ``serving``: UIDs of the Pods an EndpointSlice lists as ready or serving.
    ``unlisted_since``: for each draining Pod no slice lists any more, when that was first
    seen (by this process: a restarted operator waits the drain delay again, never less).
    """

    serving: frozenset[str] = frozenset()
    unlisted_since: Mapping[str, datetime.datetime] = field(default_factory=dict)


def _pod_actions(
    desired: DesiredState,
    pods: Sequence[ObservedPod],
    taken_names: frozenset[str],
    now: datetime.datetime,
    listing: Listing,
) -> tuple[list[Action], float | None]:
    """The Pod creates, drains and deletes that move ``pods`` toward ``desired``, and when
    to look again (a Pod becoming available after minReadySeconds, a drain's delay)."""
    planner = _PodPlanner(desired, pods, taken_names, now, listing)
    planner.remove_finished()
    planner.finish_drains()
    live = [p for p in pods if p.live]
    current = [p for p in live if p.template_hash == desired.template_hash]
    old = [p for p in live if p.template_hash != desired.template_hash]
    # Old Pods on their way out whose containers still run. A terminating Pod in a terminal
    # phase has stopped its containers: as for a Deployment's Recreate, that is enough.
    leaving_old = [
        p
        for p in pods
        if (p.deleting or p.draining)
        and not p.finished
        and p.template_hash != desired.template_hash
    ]
    if desired.paused and old:
        planner.hold(current, old)
        return planner.actions, planner.requeue
    if desired.strategy == "Recreate" and (old or leaving_old):
        # Recreate means no new Pod runs beside an old one: wait until they are all gone.
        planner.remove(old, f"Recreate strategy, {planner.replacing(old[0])}" if old else "")
        return planner.actions, planner.requeue
    if not old:
        planner.scale(current)
        return planner.actions, planner.requeue
    planner.roll(current, old)
    return planner.actions, _earliest(planner.requeue, planner.until_available(current))


def _earliest(*seconds: float | None) -> float | None:
    known = [s for s in seconds if s is not None]
    return min(known) if known else None


class _PodPlanner:
    """The Pod actions of one plan, with the names they take."""

    def __init__(
        self,
        desired: DesiredState,
        pods: Sequence[ObservedPod],
        taken_names: frozenset[str],
        now: datetime.datetime,
        listing: Listing,
    ) -> None:
        self.desired, self.pods, self.now, self.listing = desired, pods, now, listing
        self.used = {p.name for p in pods} | set(taken_names)
        self.actions: list[Action] = []
        self.requeue: float | None = None  # seconds until a drain is due a look

    def create(self, count: int, why: str) -> None:
        desired, slot = self.desired, 0
        for _ in range(count):
            while _pod_name(desired.app_name, desired.template_hash, slot) in self.used:
                slot += 1
            name = _pod_name(desired.app_name, desired.template_hash, slot)
            self.used.add(name)
            self.actions.append(
                Action("create_pod", name, f"creating {name}: {why}", body=desired.pod(name))
            )

    def delete(self, victims: Sequence[ObservedPod], why: str) -> None:
        self.actions.extend(
            Action("delete_pod", p.name, f"deleting {p.name}: {why}", uid=p.uid) for p in victims
        )

    def remove(self, victims: Sequence[ObservedPod], why: str) -> None:
        """Delete ``victims``, draining first each one that may be receiving traffic, when
        another Pod keeps serving meanwhile. When none would (Recreate, a scale to 0),
        a drain would only lengthen the time the Service has no endpoint at all (measured:
        `make bench-traffic`), so they go at once."""
        leaving = {p.uid for p in victims}
        survivors = [
            p
            for p in self.pods
            if p.live and p.ready and p.uid not in leaving and not self._removed(p)
        ]
        for pod in victims:
            serving = pod.ready or pod.uid in self.listing.serving
            if self.desired.drain.enabled and serving and survivors:
                self.actions.append(self._drain(pod, why))
            elif self.desired.drain.enabled and serving:
                self.delete([pod], f"{why} (not drained: no other Pod serves meanwhile)")
            else:
                self.delete([pod], why)

    def _removed(self, pod: ObservedPod) -> bool:
        """Already drained or deleted by this plan."""
        return any(a.uid == pod.uid for a in self.actions if a.kind in ("drain_pod", "delete_pod"))

    def _drain(self, pod: ObservedPod, why: str) -> Action:
        """Take the Pod out of the Service: without the app-uid label the Service's selector
        no longer matches it, while the app label keeps it ours and in view."""
        mark = {"since": self.now.isoformat(), "reason": why[:DRAIN_REASON_LIMIT]}
        patch = {
            "metadata": {
                "uid": pod.uid,  # a precondition: never a same-named successor
                "labels": {UID_LABEL: None},
                "annotations": {DRAIN_ANNOTATION: json.dumps(mark, sort_keys=True)},
            }
        }
        return Action(
            "drain_pod",
            pod.name,
            f"draining {pod.name} (leaving the Service before its deletion): {why}",
            body=patch,
            uid=pod.uid,
        )

    def finish_drains(self) -> None:
        """Delete each draining Pod whose drain is over, or has run out of time."""
        policy = self.desired.drain
        for pod in self.pods:
            if not pod.draining or pod.finished or pod.draining_since is None:
                continue
            taken = (self.now - pod.draining_since).total_seconds()
            why = f" ({pod.drain_reason})" if pod.drain_reason else ""
            unlisted = self.listing.unlisted_since.get(pod.uid)
            if not policy.enabled:
                self.delete([pod], f"drain turned off (spec.drain.enabled: false){why}")
            elif taken >= policy.timeout_seconds:
                still = "still list it" if unlisted is None else "no longer list it"
                self.delete(
                    [pod],
                    f"drain timed out after {policy.timeout_seconds} s (the EndpointSlices "
                    f"{still}){why}",
                )
            elif unlisted is None:
                self._look_again(policy.timeout_seconds - taken)  # the slices' update wakes us
            elif (waited := (self.now - unlisted).total_seconds()) >= policy.delay_seconds:
                self.delete([pod], f"drained in {taken:.1f} s{why}")
            else:
                self._look_again(policy.delay_seconds - waited)

    def _look_again(self, seconds: float) -> None:
        self.requeue = _earliest(self.requeue, max(0.1, seconds))

    def replacing(self, pod: ObservedPod) -> str:
        change = describe_template_change(pod.template_summary, self.desired.template_summary)
        return f"template hash {pod.template_hash} != {self.desired.template_hash} ({change})"

    def available(self, pod: ObservedPod) -> bool:
        return pod.available(self.now, self.desired.min_ready_seconds)

    def remove_finished(self) -> None:
        for pod in self.pods:
            if not pod.deleting and pod.finished:
                reason = f" ({pod.reason})" if pod.reason else ""
                self.delete([pod], f"it is {pod.phase}{reason} and will never serve again")

    def scale(self, current: Sequence[ObservedPod]) -> None:
        replicas = self.desired.replicas
        if len(current) < replicas:
            self.create(replicas - len(current), f"{len(current)} of {replicas} replicas exist")
        elif len(current) > replicas:
            extra = _least_valuable_first(current)[: len(current) - replicas]
            self.remove(extra, f"scaling down to {replicas} replicas ({len(current)} exist)")

    def hold(self, current: Sequence[ObservedPod], old: Sequence[ObservedPod]) -> None:
        """Paused mid-rollout (or before it): old Pods are not replaced, only kept count of.
        A lost Pod is replaced with the current template (the only one the operator can
        build), and a scale-down removes the least valuable Pods of either template."""
        replicas, live = self.desired.replicas, [*current, *old]
        if len(live) < replicas:
            self.create(
                replicas - len(live),
                f"{len(live)} of {replicas} replicas exist (paused: replacing lost Pods only)",
            )
        elif len(live) > replicas:
            self.remove(
                _least_valuable_first(live)[: len(live) - replicas],
                f"scaling down to {replicas} replicas while paused ({len(live)} exist)",
            )

    def roll(self, current: Sequence[ObservedPod], old: Sequence[ObservedPod]) -> None:
        """RollingUpdate, as a Deployment does it: old Pods go while at least replicas -
        maxUnavailable stay available, and new ones come within maxSurge. Pods deleted or
        drained now count as gone (as terminating Pods do), so their replacements are
        created in the same pass, not one watch round trip later."""
        desired, replicas = self.desired, self.desired.replicas
        surge, max_unavailable = resolve_rolling(
            desired.max_surge, desired.max_unavailable, replicas
        )
        min_available = max(0, replicas - max_unavailable)
        new_unavailable = sum(not self.available(p) for p in current)
        budget = len(current) + len(old) - min_available - new_unavailable
        victims: list[ObservedPod] = []
        for pod in _least_valuable_first([p for p in old if not self.available(p)]):
            if budget <= 0:
                break
            victims.append(pod)  # an unavailable old Pod costs no availability
            budget -= 1
        available_budget = min(
            budget, sum(self.available(p) for p in [*current, *old]) - min_available
        )
        for pod in _least_valuable_first([p for p in old if self.available(p)]):
            if available_budget <= 0:
                break
            victims.append(pod)
            available_budget -= 1
        room = replicas + surge - (len(current) + len(old) - len(victims))
        wanted_new = max(0, min(replicas - len(current), room))
        if wanted_new:
            self.create(
                wanted_new,
                f"rolling update, {len(current)} of {replicas} replicas updated (maxSurge {surge})",
            )
        if len(current) > replicas:
            self.remove(
                _least_valuable_first(current)[: len(current) - replicas],
                f"scaling down to {replicas} replicas during a rollout",
            )
        for pod in victims:
            self.remove([pod], f"rolling update, {self.replacing(pod)}")

    def until_available(self, current: Sequence[ObservedPod]) -> float | None:
        """Seconds until the first ready new Pod counts as available (minReadySeconds)."""
        seconds = self.desired.min_ready_seconds
        waiting = [p for p in current if p.ready and not self.available(p)]
        since = [p.ready_since for p in waiting if p.ready_since]
        if not seconds or not since:
            return None
        return max(0.1, seconds - (self.now - min(since)).total_seconds())


OMITTED_DEFAULTS: Mapping[str, Any] = {"publishNotReadyAddresses": False}


def service_differences(
    desired: Mapping[str, Any], observed: Mapping[str, Any], owned_keys: Mapping[str, set[str]]
) -> list[str]:
    """What differs in the fields the operator owns, in words; empty when in sync.

    owned_keys: label and annotation keys our field manager applied last time, so a key
    dropped from the spec is noticed and removed.
    """
    differences: list[str] = []
    desired_meta, observed_meta = desired.get("metadata", {}), observed.get("metadata", {})
    for section in ("labels", "annotations"):
        wanted: Mapping[str, str] = desired_meta.get(section) or {}
        present: Mapping[str, str] = observed_meta.get(section) or {}
        for key in sorted(wanted):
            if present.get(key) != wanted[key]:
                differences.append(f"{section[:-1]} {key}: {present.get(key)!r} -> {wanted[key]!r}")
        for key in sorted(owned_keys.get(section, set()) - set(wanted)):
            if key in present:
                differences.append(f"{section[:-1]} {key} no longer wanted")
    want_spec, have_spec = desired.get("spec", {}), observed.get("spec", {})
    for key in ("type", "clusterIP", *SERVICE_SCALARS):
        # The API omits false booleans, so absent means the default.
        have = have_spec.get(key, OMITTED_DEFAULTS.get(key))
        if key in want_spec and have != want_spec[key]:
            differences.append(f"{key}: {have!r} -> {want_spec[key]!r}")
    have_ports = {p.get("name"): p for p in have_spec.get("ports") or []}
    want_ports = {p.get("name"): p for p in want_spec.get("ports") or []}
    for name in sorted(set(have_ports) - set(want_ports), key=str):
        differences.append(f"port {name} no longer wanted")
    for name, want in want_ports.items():
        have = have_ports.get(name)
        if have is None:
            differences.append(f"port {name} missing")
            continue
        for key, value in want.items():
            if have.get(key) != value:
                differences.append(f"port {name} {key}: {have.get(key)!r} -> {value!r}")
    return differences


def plan(
    desired: DesiredState,
    pods: Sequence[ObservedPod],
    service: Mapping[str, Any] | None,
    *,
    service_owned_keys: Mapping[str, set[str]] | None = None,
    service_conflict: ServiceConflict | None = None,
    taken_names: frozenset[str] = frozenset(),
    now: datetime.datetime,
    listing: Listing = Listing(),
    budget: Mapping[str, Any] | None = None,
) -> Plan:
    """``budget``: the app's PodDisruptionBudget as observed (ours), or None."""
    actions, requeue = _pod_actions(desired, pods, taken_names, now, listing)
    actions += _budget_actions(desired.disruption_budget, budget)
    blocked: list[str] = []
    want = desired.service
    if want is not None:
        name = want["metadata"]["name"]
        if service_conflict is not None:
            blocked.append(service_conflict.describe())
        elif service is None:
            actions.append(Action("apply_service", name, f"creating Service {name}", body=want))
        else:
            want_headless = want["spec"].get("clusterIP") == "None"
            have_headless = (service.get("spec") or {}).get("clusterIP") == "None"
            if want_headless != have_headless:
                before, after = (
                    ("headless", "with a cluster IP")
                    if have_headless
                    else ("with a cluster IP", "headless")
                )
                actions.append(
                    Action(
                        "recreate_service",
                        name,
                        f"recreating Service {name}: it is {before} and must be {after}, "
                        "and clusterIP is immutable",
                        body=want,
                        uid=(service.get("metadata") or {}).get("uid"),
                    )
                )
            else:
                actions += _service_update(want, service, service_owned_keys)
    return Plan(tuple(actions), requeue, tuple(blocked))


def _budget_actions(want: Mapping[str, Any] | None, have: Mapping[str, Any] | None) -> list[Action]:
    """Apply the PodDisruptionBudget the spec asks for; delete ours when it asks for none."""
    if want is None:
        if have is None:
            return []
        name = have["metadata"]["name"]
        return [
            Action(
                "delete_budget",
                name,
                f"deleting PodDisruptionBudget {name}: spec.disruptionBudget was removed",
                uid=have["metadata"].get("uid"),
            )
        ]
    name = want["metadata"]["name"]
    if have is None:
        return [Action("apply_budget", name, f"creating PodDisruptionBudget {name}", body=want)]
    keys = ("minAvailable", "maxUnavailable", "selector")
    differences = [
        f"{key}: {have['spec'].get(key)!r} -> {want['spec'].get(key)!r}"
        for key in keys
        if (have.get("spec") or {}).get(key) != want["spec"].get(key)
    ]
    if not differences:
        return []
    return [
        Action(
            "apply_budget",
            name,
            f"updating PodDisruptionBudget {name}: {'; '.join(differences)}",
            body=want,
        )
    ]


def _service_update(
    want: Mapping[str, Any], service: Mapping[str, Any], owned: Mapping[str, set[str]] | None
) -> list[Action]:
    """Nothing, a server-side apply, or (when ports of other managers are in the way) an
    update that can remove them. ``owned`` None: what we applied is not known, so every
    observed port is taken for ours."""
    name = want["metadata"]["name"]
    differences = service_differences(want, service, owned or {})
    if not differences:
        return []
    foreign = [] if owned is None else foreign_ports(want, service, owned.get("ports", set()))
    if foreign:
        # A port entry another manager added or re-keyed (a number edited by hand) is
        # theirs: a forced apply cannot remove it, and ours beside it under the same name
        # is refused. An update replaces the list whole.
        return [
            Action(
                "replace_service",
                name,
                f"repairing Service {name}: {'; '.join(differences)} "
                f"(port entries of another manager: {', '.join(foreign)})",
                body=repaired_service(want, service, owned or {}),
            )
        ]
    return [
        Action(
            "apply_service", name, f"updating Service {name}: {'; '.join(differences)}", body=want
        )
    ]


def _port_key(port: Mapping[str, Any]) -> str:
    return f"{port.get('port')}/{port.get('protocol', 'TCP')}"


def foreign_ports(
    want: Mapping[str, Any], service: Mapping[str, Any], owned_ports: set[str]
) -> list[str]:
    """Observed port entries ("name port/protocol") that our apply neither owns nor wants.

    owned_ports: the "<port>/<protocol>" map keys our field manager applied.
    """
    wanted = {_port_key(p): p.get("name") for p in (want.get("spec") or {}).get("ports") or []}
    return [
        f"{p.get('name')} {_port_key(p)}"
        for p in (service.get("spec") or {}).get("ports") or []
        if _port_key(p) not in owned_ports and wanted.get(_port_key(p)) != p.get("name")
    ]


def repaired_service(
    want: Mapping[str, Any], service: Mapping[str, Any], owned: Mapping[str, set[str]]
) -> dict[str, Any]:
    """The observed Service with every field we manage set as desired, for an update.

    Kept from the observed object: clusterIP(s) and every other field we do not manage,
    others' labels, annotations and (non-controller) ownerReferences, what others set in
    our port entries and each port's allocated nodePort (found by port and protocol, else
    by name; unless one is declared), and the resourceVersion (the update's precondition).
    """
    metadata = service.get("metadata") or {}
    want_meta, want_spec = want.get("metadata") or {}, want.get("spec") or {}
    body_meta: dict[str, Any] = {
        k: copy.deepcopy(v)
        for k, v in metadata.items()
        if k not in ("managedFields", "labels", "annotations")
    }
    for section in ("labels", "annotations"):
        merged = {
            k: v
            for k, v in (metadata.get(section) or {}).items()
            if k not in owned.get(section, set()) or k in (want_meta.get(section) or {})
        }
        merged.update(want_meta.get(section) or {})
        if merged:
            body_meta[section] = merged
    ours = want_meta.get("ownerReferences") or []
    theirs = [
        ref
        for ref in metadata.get("ownerReferences") or []
        if not ref.get("controller") and ref.get("uid") not in {o.get("uid") for o in ours}
    ]
    body_meta["ownerReferences"] = copy.deepcopy([*ours, *theirs])
    spec = copy.deepcopy(dict(service.get("spec") or {}))
    for key in ("type", *SERVICE_SCALARS):
        if key in want_spec:
            spec[key] = copy.deepcopy(want_spec[key])
    observed = spec.get("ports") or []
    by_key = {_port_key(p): p for p in observed}
    by_name = {p.get("name"): p for p in observed}
    ports = []
    for port in want_spec.get("ports") or []:
        # Start from the observed entry for this port (its allocated nodePort, fields set
        # by others such as appProtocol), then set ours.
        before = by_key.get(_port_key(port)) or by_name.get(port.get("name")) or {}
        entry = {**copy.deepcopy(dict(before)), **copy.deepcopy(dict(port))}
        if "nodePort" not in port and not before.get("nodePort"):
            entry.pop("nodePort", None)
        ports.append(entry)
    spec["ports"] = ports
    return {"apiVersion": "v1", "kind": "Service", "metadata": body_meta, "spec": spec}
