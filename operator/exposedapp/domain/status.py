"""Observed children -> status and conditions. Pure.

Conditions follow the metav1.Condition shape. Ready means the current spec is fully
serving: every desired replica updated and available, and every exposed port has as many
ready endpoints as there are replicas. Progressing means the operator is moving Pods
toward the spec. Degraded means something blocks it and a person must act; its message
says what and where.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .crd import STATUS_SCHEMA
from .desired import DesiredState
from .labels import SERVICE_NAME_LABEL, selector_string
from .plan import ObservedPod
from .podhealth import explain, shorten

__all__ = [
    "MESSAGE_LIMIT",
    "Problem",
    "StatusWrite",
    "bounded_list",
    "conditions_equal",
    "decide_status_write",
    "describe_problems",
    "merge_conditions",
    "minimal_status",
    "progress_interval",
    "ready_endpoints_by_port",
    "summarise",
]

CLUSTER_DOMAIN = "cluster.local"
# A condition message is for a person: long enough for every detail the apiserver gives,
# far below the schema's 32768 characters, so a status stays small to watch and store.
MESSAGE_LIMIT = 4096
_INGRESS = STATUS_SCHEMA["properties"]["service"]["properties"]["loadBalancer"]["properties"][
    "ingress"
]
_INGRESS_LIMIT = _INGRESS["maxItems"]
_INGRESS_PORTS_LIMIT = _INGRESS["items"]["properties"]["ports"]["maxItems"]
_TEXT_LIMITS = {
    key: STATUS_SCHEMA["properties"][key]["maxLength"] for key in ("portsText", "imagesText")
}


@dataclass(frozen=True)
class Problem:
    """Something that blocks reconciliation, for the Degraded condition."""

    reason: str
    message: str


def bounded_list(items: Sequence[str], limit: int, separator: str = ",") -> str:
    """``items`` joined by ``separator``, at most ``limit`` characters long.

    What does not fit is counted, never cut: "80/TCP,81/TCP,(+64 more)".
    """
    if len(separator.join(items)) <= limit:
        return separator.join(items)
    kept: list[str] = []
    for item in items:
        left_out = len(items) - len(kept) - 1
        if len(separator.join([*kept, item, f"(+{left_out} more)"])) > limit:
            break
        kept.append(item)
    return separator.join([*kept, f"(+{len(items) - len(kept)} more)"])


def describe_problems(problems: Sequence[Problem]) -> str:
    """One message for many problems: each reason once, with how many share it.

    "98 problems QuotaExceeded, the first: creating Pod web-0: ... exceeded quota ...";
    bounded by MESSAGE_LIMIT whatever the number of problems.
    """
    groups: dict[str, list[Problem]] = {}
    # In a stable order: creates run in parallel and their refusals come back in any
    # order, and the same problems must read the same (one Event, no status write).
    for problem in sorted(problems, key=lambda p: (p.reason, p.message)):
        groups.setdefault(problem.reason, []).append(problem)
    parts = []
    for reason, group in groups.items():
        first = shorten(group[0].message, MESSAGE_LIMIT // 4)
        parts.append(
            first if len(group) == 1 else f"{len(group)} problems {reason}, the first: {first}"
        )
    return shorten("; ".join(parts), MESSAGE_LIMIT)


def minimal_status(wanted: Mapping[str, Any], reason: str, message: str) -> dict[str, Any]:
    """A status that says only what is surely true, for when the full one is refused.

    The counts and observedGeneration of ``wanted``, and Degraded with the apiserver's
    reason and message, so that a refused write is seen, never a frozen status.
    """
    kept = {key: wanted[key] for key in _MINIMAL_FIELDS if key in wanted}
    generation = wanted.get("observedGeneration", 0)
    text = f"the status could not be written: {message}"
    return {
        **kept,
        "conditions": [
            _condition("Ready", False, reason, text, generation),
            _condition("Progressing", False, reason, text, generation),
            _condition("Degraded", True, reason, text, generation),
        ],
    }


_MINIMAL_FIELDS = (
    "observedGeneration",
    "replicas",
    "readyReplicas",
    "availableReplicas",
    "updatedReplicas",
    "drainingReplicas",
    "selector",
    "readyText",
)


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def ready_endpoints_by_port(slices: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Ready endpoints per Service port name, over all EndpointSlices of the Service."""
    counts: dict[str, int] = {}
    for endpoint_slice in slices:
        ready = sum(
            1
            for e in endpoint_slice.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready")
        )
        for port in endpoint_slice.get("ports") or []:
            name = port.get("name") or ""
            counts[name] = counts.get(name, 0) + ready
    return counts


def _condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": shorten(message, MESSAGE_LIMIT),
        "observedGeneration": generation,
    }


def summarise(
    *,
    generation: int,
    desired: DesiredState | None,
    pods: Sequence[ObservedPod],
    service: Mapping[str, Any] | None,
    slices: Sequence[Mapping[str, Any]],
    problems: Sequence[Problem],
    now: datetime.datetime,
    selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The status the app should have, without lastTransitionTime (see merge_conditions).

    ``selector``: the app's identity labels, which do not depend on its spec: status.selector
    (the scale subresource's, which a HorizontalPodAutoscaler reads) stays right while the
    spec is invalid."""
    problems = sorted(problems, key=lambda p: (p.reason, p.message))  # stable: see above
    live = [p for p in pods if p.live]
    if desired is None:  # the spec is invalid: report the problem, claim nothing else
        return _invalid_status(generation, live, problems, selector)
    updated = [p for p in live if p.template_hash == desired.template_hash]
    ready = [p for p in live if p.ready]
    available = [p for p in live if p.available(now, desired.min_ready_seconds)]
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "replicas": len(live),
        "readyReplicas": len(ready),
        "availableReplicas": len(available),
        "updatedReplicas": len(updated),
        "selector": selector_string(dict(desired.selector)),
        "readyText": f"{len(ready)}/{desired.replicas}",
        "imagesText": bounded_list(list(desired.images), _TEXT_LIMITS["imagesText"]),
    }
    if draining := sum(p.draining for p in pods):
        status["drainingReplicas"] = draining
    if desired.relaxed_defaults:  # a few fixed names: far below the schema's bound
        status["relaxedDefaults"] = ",".join(desired.relaxed_defaults)
    if desired.service is not None:
        status["service"] = _service_status(desired, service, slices)
        status["portsText"] = _ports_text(desired, status["service"])
    progressing = _progressing(desired, live, updated, now)
    ready_condition = _ready(
        desired, live, status.get("service"), service, progressing, problems, now
    )
    degraded_condition = (
        (True, problems[0].reason, describe_problems(problems))
        if problems
        else (False, "AsExpected", "nothing blocks reconciliation")
    )
    moving = progressing[0] not in ("Complete", "Paused")
    status["conditions"] = [
        _condition("Ready", *ready_condition, generation),
        _condition("Progressing", moving, *progressing, generation),
        _condition("Degraded", *degraded_condition, generation),
    ]
    return status


def _ports_text(desired: DesiredState, service_status: Mapping[str, Any]) -> str:
    return bounded_list(
        [
            f"{m.port}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{m.protocol}"
            for m, p in zip(desired.ports, service_status["ports"], strict=True)
        ],
        _TEXT_LIMITS["portsText"],
    )


def _invalid_status(
    generation: int,
    live: Sequence[ObservedPod],
    problems: Sequence[Problem],
    selector: Mapping[str, str] | None,
) -> dict[str, Any]:
    degraded = problems[0] if problems else Problem("InvalidSpec", "the spec is invalid")
    return {
        "observedGeneration": generation,
        "replicas": len(live),
        **({"selector": selector_string(dict(selector))} if selector else {}),
        "conditions": [
            _condition("Ready", False, degraded.reason, degraded.message, generation),
            _condition(
                "Progressing",
                False,
                degraded.reason,
                "nothing changes until the spec is fixed",
                generation,
            ),
            _condition("Degraded", True, degraded.reason, degraded.message, generation),
        ],
    }


def _service_status(
    desired: DesiredState, service: Mapping[str, Any] | None, slices: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """status.service: the Service and the resolved mapping of each port, with its ready
    endpoints counted over the app's own Service's EndpointSlices only (a Service cloned
    from ours has slices with our labels too, and its endpoints are not ours)."""
    assert desired.service is not None
    name = desired.service["metadata"]["name"]
    own = [s for s in slices if _labels(s).get(SERVICE_NAME_LABEL) == name]
    endpoints = ready_endpoints_by_port(own)
    observed_spec = (service or {}).get("spec") or {}
    observed_ports = {p.get("name"): p for p in observed_spec.get("ports") or []}
    service_status: dict[str, Any] = {
        "name": name,
        "type": desired.service_type,
        "dnsName": f"{name}.{desired.namespace}.svc.{CLUSTER_DOMAIN}",
        "ports": [],
    }
    if observed_spec.get("clusterIP"):
        service_status["clusterIP"] = observed_spec["clusterIP"]
    ingress = (((service or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress")
    if ingress:
        # A load balancer's own list, copied as it is up to the schema's bound (16
        # addresses; clients need one). Each entry's fields are bounded by the schema
        # of Service.status itself.
        service_status["loadBalancer"] = {
            "ingress": [
                {**entry, "ports": entry["ports"][:_INGRESS_PORTS_LIMIT]}
                if "ports" in entry
                else entry
                for entry in ingress[:_INGRESS_LIMIT]
            ]
        }
    for mapping in desired.ports:
        entry: dict[str, Any] = {
            "name": mapping.name,
            "protocol": mapping.protocol,
            "port": mapping.port,
            "targetPort": mapping.name,
            "containerPort": mapping.container_port,
            "container": mapping.container,
            "readyEndpoints": endpoints.get(mapping.name, 0),
        }
        node_port = (observed_ports.get(mapping.name) or {}).get("nodePort")
        if node_port:
            entry["nodePort"] = node_port
        service_status["ports"].append(entry)
    return service_status


def _progressing(
    desired: DesiredState,
    live: Sequence[ObservedPod],
    updated: Sequence[ObservedPod],
    now: datetime.datetime,
) -> tuple[str, str]:
    """The Progressing reason and message: what the operator is moving toward the spec."""
    replicas = desired.replicas
    old = [p for p in live if p.template_hash != desired.template_hash]
    updated_available = [p for p in updated if p.available(now, desired.min_ready_seconds)]
    if old and desired.paused:
        return (
            "Paused",
            f"rollout paused (spec.paused): {len(updated)} of {replicas} replicas updated, "
            f"{len(old)} old remain",
        )
    if old and desired.strategy == "RollingUpdate":
        return (
            "RollingUpdate",
            f"{len(updated)} of {replicas} replicas updated, {len(old)} old remain",
        )
    if old:
        return ("Recreate", f"removing {len(old)} old Pods before creating new ones")
    if len(live) < replicas:
        return ("ScalingUp", f"{len(live)} of {replicas} replicas exist")
    if len(live) > replicas:
        return ("ScalingDown", f"{len(live)} Pods exist, {replicas} wanted")
    if len(updated_available) < replicas:
        return ("WaitingForReady", f"{len(updated_available)} of {replicas} replicas available")
    return ("Complete", f"{replicas} of {replicas} replicas updated and available")


def _ready(
    desired: DesiredState,
    live: Sequence[ObservedPod],
    service_status: Mapping[str, Any] | None,
    service: Mapping[str, Any] | None,
    progressing: tuple[str, str],
    problems: Sequence[Problem],
    now: datetime.datetime,
) -> tuple[bool, str, str]:
    """The Ready condition: serving the current spec, or the first reason it is not."""
    replicas = desired.replicas
    not_serving = [
        f"port {p['name']} has {p['readyEndpoints']} of {replicas} ready endpoints"
        for p in (service_status or {}).get("ports", [])
        if p["readyEndpoints"] < replicas
    ]
    if problems:
        return (False, problems[0].reason, describe_problems(problems))
    if replicas == 0 and not live:
        return (True, "ScaledToZero", "replicas is 0; the Service has no endpoints")
    if (progressing[0] != "Complete" or not_serving) and (
        why := explain([problem for p in live if not p.ready for problem in p.problems], now)
    ):
        return (False, *why)
    if progressing[0] != "Complete":
        return (False, *progressing)
    if desired.service is not None and service is None:
        return (False, "ServiceMissing", f"Service {desired.app_name} does not exist yet")
    if not_serving:
        return (False, "EndpointsNotReady", "; ".join(not_serving))
    serving = f", Service {desired.app_name} serving every port" if desired.service else ""
    return (True, "Serving", f"{replicas} of {replicas} replicas ready{serving}")


# The fields whose change is progress (a Pod updated, available or removed, a new spec).
_PROGRESS_FIELDS = (
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "availableReplicas",
    "drainingReplicas",
)


def track_progress(
    wanted: dict[str, Any],
    current: Mapping[str, Any],
    now: datetime.datetime,
    deadline_seconds: int,
) -> float | None:
    """Set ``lastProgressTime``, the deadline verdict and the kstatus conditions on
    ``wanted`` (a summarised status); return seconds until the deadline, if one runs.

    While Progressing is True, lastProgressTime is when the counts last moved (``current``
    is the status as last written). Past ``deadline_seconds`` without progress, Progressing
    turns False with reason ProgressDeadlineExceeded, as for a Deployment; the operator
    keeps trying. Reconciling (True while the operator moves Pods) and Stalled (True while
    a person must act: Degraded, or the deadline passed) are the abnormal-true conditions
    kstatus (sigs.k8s.io/cli-utils) and Flux read.
    """
    conditions = {c["type"]: c for c in wanted.get("conditions") or []}
    if "Progressing" not in conditions or "Degraded" not in conditions:
        return None  # not a summarised status: nothing to derive
    progressing, degraded = conditions["Progressing"], conditions["Degraded"]
    due: float | None = None
    stalled: tuple[bool, str, str] = (False, "AsExpected", "nothing blocks reconciliation")
    if progressing["status"] == "True":
        moved = any(wanted.get(k) != current.get(k) for k in _PROGRESS_FIELDS)
        since = _parse_time(current.get("lastProgressTime"))
        if moved or since is None:
            since = now
        wanted["lastProgressTime"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        waited = (now - since).total_seconds()
        if waited >= deadline_seconds:
            message = shorten(
                f"no progress for {deadline_seconds} s (spec.progressDeadlineSeconds): "
                f"{progressing['message']}",
                MESSAGE_LIMIT,
            )
            progressing.update(status="False", reason="ProgressDeadlineExceeded", message=message)
            stalled = (True, "ProgressDeadlineExceeded", message)
        else:
            due = deadline_seconds - waited
    if degraded["status"] == "True":
        stalled = (True, degraded["reason"], degraded["message"])
    generation = progressing["observedGeneration"]
    reconciling = progressing["status"] == "True" and not stalled[0]
    wanted["conditions"] += [
        _condition(
            "Reconciling",
            reconciling,
            progressing["reason"] if reconciling else "AsExpected",
            progressing["message"] if reconciling else "nothing is moving",
            generation,
        ),
        _condition("Stalled", *stalled, generation),
    ]
    return due


def _parse_time(value: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        return None


def merge_conditions(
    new: Sequence[Mapping[str, Any]], old: Sequence[Mapping[str, Any]], now: str
) -> list[dict[str, Any]]:
    """Carry lastTransitionTime over while a condition's status stays the same."""
    previous = {c.get("type"): c for c in old}
    merged = []
    for condition in new:
        before = previous.get(condition["type"])
        since = (
            before.get("lastTransitionTime")
            if before and before.get("status") == condition["status"]
            else None
        )
        merged.append({**condition, "lastTransitionTime": since or now})
    return merged


def conditions_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two statuses are the same if they differ at most in lastTransitionTime."""

    def strip(status: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **status,
            "conditions": [
                {k: v for k, v in c.items() if k != "lastTransitionTime"}
                for c in status.get("conditions") or []
            ],
        }

    return strip(a) == strip(b)


@dataclass(frozen=True)
class StatusWrite:
    """Whether to write status now, or when to look again."""

    now: bool
    retry_after: float | None = None
    why: str = ""


def _condition_status(status: Mapping[str, Any], kind: str) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return str(condition.get("status"))
    return None


def decide_status_write(
    current: Mapping[str, Any],
    wanted: Mapping[str, Any],
    *,
    acted: bool,
    seconds_since_write: float,
    debounce: float,
) -> StatusWrite:
    """Write what people and automation wait for at once; coalesce the counting in between.

    - Ready turning True, any flip of Ready, Degraded or Stalled, or a new problem: write
      now.
    - Right after the operator changed children: wait, their events will bring a fresher
      picture within moments.
    - Otherwise (counts and messages moving while Pods start): at most one write per
      `debounce` seconds.
    """
    if conditions_equal(wanted, current):
        return StatusWrite(False)
    before_ready, after_ready = (
        _condition_status(current, "Ready"),
        _condition_status(wanted, "Ready"),
    )
    before_degraded = _condition_status(current, "Degraded")
    after_degraded = _condition_status(wanted, "Degraded")
    if after_ready == "True" and before_ready != "True":
        return StatusWrite(True, why="Ready")
    if after_degraded == "True" and before_degraded != "True":
        return StatusWrite(True, why="Degraded")
    if before_ready is not None and before_ready != after_ready:
        return StatusWrite(True, why="Ready changed")
    if before_degraded is not None and before_degraded != after_degraded:
        return StatusWrite(True, why="Degraded changed")
    before_stalled = _condition_status(current, "Stalled")
    after_stalled = _condition_status(wanted, "Stalled")
    if after_stalled == "True" and before_stalled != "True":
        return StatusWrite(True, why="Stalled")
    if before_stalled is not None and before_stalled != after_stalled:
        return StatusWrite(True, why="Stalled changed")
    if acted:
        return StatusWrite(False, why="children changing")
    if seconds_since_write < debounce:
        return StatusWrite(False, retry_after=debounce - seconds_since_write, why="debounced")
    return StatusWrite(True, why="progress")


def progress_interval(progressing_apps: int, *, minimum: float, writes_per_second: float) -> float:
    """How long an app's progress-only status changes are coalesced for.

    Progress writes (counts moving while Pods start or roll) share one budget across the
    operator: each is a custom resource write the apiserver validates and every watcher
    receives, and with hundreds of apps rolling at once the apiserver is the bottleneck.
    Transitions (Ready, Degraded) never wait for this.
    """
    return max(minimum, progressing_apps / writes_per_second)
