"""The plan: desired vs observed, exact actions with reasons; twice in a row, nothing."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from exposedapp.domain.desired import AppRef, DesiredState, build_desired
from exposedapp.domain.model import parse_spec
from exposedapp.domain.plan import (
    Action,
    ObservedPod,
    ServiceConflict,
    observe_pod,
    plan,
    resolve_rolling,
    service_differences,
)

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
APP = AppRef("ns", "web", "uid-1")


def spec(replicas: int = 3, port: int = 8080, **extra: Any) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "containers": [
            {"name": "app", "image": "app:1", "ports": [{"name": "http", "containerPort": port}]}
        ],
        **extra,
    }


def desired_for(**kwargs: Any) -> DesiredState:
    return build_desired(APP, parse_spec(spec(**kwargs)))


def running(
    desired: DesiredState,
    name: str,
    *,
    ready: bool = True,
    age: int = 600,
    phase: str = "Running",
    scheduled: bool = True,
    deleting: bool = False,
    template_hash: str | None = None,
) -> ObservedPod:
    """A Pod as the cluster would report it after the plan's create landed."""
    body = desired.pod(name)
    if template_hash is not None:
        body["metadata"]["labels"]["exposedapp.dev/template-hash"] = template_hash
    created = (NOW - datetime.timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body["metadata"].update(uid=f"uid-{name}", creationTimestamp=created)
    if deleting:
        body["metadata"]["deletionTimestamp"] = created
    body["spec"]["nodeName"] = "kwok-node-0" if scheduled else None
    body["status"] = {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": created}
        ],
    }
    return observe_pod(body)


def apply_actions(
    desired: DesiredState, pods: Sequence[ObservedPod], actions: Sequence[Action]
) -> list[ObservedPod]:
    """What the world looks like once the actions landed and the Pods became ready."""
    deleted = {a.name for a in actions if a.kind == "delete_pod"}
    drained = {a.name for a in actions if a.kind == "drain_pod"}
    kept = [
        dataclasses.replace(p, draining_since=NOW) if p.name in drained else p
        for p in pods
        if p.name not in deleted
    ]
    return kept + [running(desired, a.name) for a in actions if a.kind == "create_pod"]


def settled_service(desired: DesiredState) -> Mapping[str, Any]:
    assert desired.service is not None
    service = json.loads(json.dumps(desired.service))
    service["spec"]["clusterIP"] = "10.96.0.10"
    service["metadata"]["annotations"]["cloud.example/lb"] = "someone else's"
    return service


def kinds(actions: Sequence[Action]) -> list[tuple[str, str]]:
    return [(a.kind, a.name) for a in actions]


def test_new_app_creates_replicas_with_deterministic_names_and_the_service() -> None:
    desired = desired_for(replicas=3)
    result = plan(desired, [], None, now=NOW)
    h = desired.template_hash
    assert kinds(result.actions) == [
        ("create_pod", f"web-{h}-0"),
        ("create_pod", f"web-{h}-1"),
        ("create_pod", f"web-{h}-2"),
        ("apply_service", "web"),
    ]
    assert result.actions[0].reason == f"creating web-{h}-0: 0 of 3 replicas exist"
    assert result.actions[-1].reason == "creating Service web"


def test_reconcile_twice_the_second_plan_is_empty() -> None:
    desired = desired_for(replicas=3)
    first = plan(desired, [], None, now=NOW)
    pods = apply_actions(desired, [], first.actions)
    second = plan(desired, pods, settled_service(desired), now=NOW)
    assert second.empty
    assert second.requeue_after is None


def test_a_stale_view_never_reuses_a_name_that_exists() -> None:
    desired = desired_for(replicas=2)
    h = desired.template_hash
    # Slot 0 is terminating: its replacement must take another name, never collide.
    pods = [running(desired, f"web-{h}-0", deleting=True), running(desired, f"web-{h}-1")]
    result = plan(
        desired, pods, settled_service(desired), now=NOW, taken_names=frozenset({f"web-{h}-2"})
    )
    assert kinds(result.actions) == [("create_pod", f"web-{h}-3")]


def test_failed_pods_are_replaced() -> None:
    desired = desired_for(replicas=1)
    h = desired.template_hash
    pods = [running(desired, f"web-{h}-0", phase="Failed", ready=False)]
    result = plan(desired, pods, settled_service(desired), now=NOW)
    assert kinds(result.actions) == [("delete_pod", f"web-{h}-0"), ("create_pod", f"web-{h}-1")]
    assert result.actions[0].uid == f"uid-web-{h}-0"
    assert "it is Failed and will never serve again" in result.actions[0].reason


def test_scale_down_removes_least_valuable_first() -> None:
    desired = desired_for(replicas=1)
    h = desired.template_hash
    pods = [
        running(desired, f"web-{h}-0", age=900),
        running(desired, f"web-{h}-1", ready=False),
        running(desired, f"web-{h}-2", scheduled=False, ready=False, phase="Pending"),
        running(desired, f"web-{h}-3", age=60),
    ]
    result = plan(desired, pods, settled_service(desired), now=NOW)
    # The ready Pod may be receiving traffic: it leaves the Service first (a drain); the
    # others never served and go at once.
    assert kinds(result.actions) == [
        ("delete_pod", f"web-{h}-2"),
        ("delete_pod", f"web-{h}-1"),
        ("drain_pod", f"web-{h}-3"),
    ]
    assert result.actions[0].reason.endswith("scaling down to 1 replicas (4 exist)")
    assert result.actions[2].reason == (
        f"draining web-{h}-3 (leaving the Service before its deletion): "
        "scaling down to 1 replicas (4 exist)"
    )


def test_rolling_update_removes_old_within_max_unavailable_and_surges_past_them() -> None:
    old = desired_for(replicas=4, port=8080)
    new = desired_for(replicas=4, port=8081)
    pods = [running(old, f"web-{old.template_hash}-{i}") for i in range(4)]
    result = plan(new, pods, settled_service(old), now=NOW)
    creates = [a for a in result.actions if a.kind == "create_pod"]
    deletes = [a for a in result.actions if a.kind == "drain_pod"]
    surge, unavailable = resolve_rolling("25%", "25%", 4)
    assert (surge, unavailable) == (1, 1)
    # One old Pod may go (3 of 4 stay available); the Pod drained now counts as gone, so
    # 4 - 1 + 2 = 5 = replicas + maxSurge Pods run once the actions land.
    assert len(deletes) == 1
    assert len(creates) == 2
    assert "port http 8080/TCP -> 8081/TCP" in deletes[0].reason
    assert [a for a in result.actions if a.kind == "apply_service"] == [
        Action(
            "apply_service",
            "web",
            "updating Service web: port http port: 8080 -> 8081",
            new.service,
        )
    ]


def test_rolling_update_converges_and_never_drops_below_min_available() -> None:
    old = desired_for(replicas=3, port=8080)
    new = desired_for(replicas=3, port=8081)
    pods: list[ObservedPod] = [running(old, f"web-{old.template_hash}-{i}") for i in range(3)]
    for _ in range(10):
        result = plan(new, pods, settled_service(new), now=NOW)
        if result.empty:
            break
        leaving = {a.name for a in result.actions if a.kind in ("drain_pod", "delete_pod")}
        survivors = [p for p in pods if p.live and p.name not in leaving]
        assert sum(p.ready for p in survivors) >= 3 - 0  # 25% of 3 rounds down to 0
        pods = apply_actions(new, pods, result.actions)
    assert result.empty
    assert sorted(p.template_hash for p in pods if p.live) == [new.template_hash] * 3
    assert sum(p.draining for p in pods) == 3  # until the slices let them go


def test_rolling_update_of_two_replicas_takes_three_passes_replacing_as_it_removes() -> None:
    # 25%/25% of 2: maxSurge 1, maxUnavailable 0. Pass 1 surges; pass 2 removes an old Pod
    # and creates its replacement together; pass 3 removes the last old Pod.
    old = desired_for(replicas=2, port=8080)
    new = desired_for(replicas=2, port=8081)
    pods: list[ObservedPod] = [running(old, f"web-{old.template_hash}-{i}") for i in range(2)]
    passes: list[list[str]] = []
    for _ in range(10):
        result = plan(new, pods, settled_service(new), now=NOW)
        if result.empty:
            break
        passes.append(sorted(a.kind for a in result.actions))
        pods = apply_actions(new, pods, result.actions)
    assert passes == [["create_pod"], ["create_pod", "drain_pod"], ["drain_pod"]]


def test_rolling_update_waits_for_min_ready_seconds() -> None:
    old = desired_for(replicas=1, port=8080)
    new = desired_for(replicas=1, port=8081, minReadySeconds=30)
    pods = [
        running(old, f"web-{old.template_hash}-0"),
        running(new, f"web-{new.template_hash}-0", age=10),
    ]
    result = plan(new, pods, settled_service(new), now=NOW)
    assert result.empty
    assert result.requeue_after == pytest.approx(20)


def test_recreate_deletes_all_old_before_creating() -> None:
    old = desired_for(replicas=2, port=8080)
    new = desired_for(replicas=2, port=8081, updateStrategy={"type": "Recreate"})
    pods = [running(old, f"web-{old.template_hash}-{i}") for i in range(2)]
    first = plan(new, pods, settled_service(new), now=NOW)
    # No Pod would serve while they drained: a drain would only lengthen the outage.
    assert [a.kind for a in first.actions] == ["delete_pod", "delete_pod"]
    assert first.actions[0].reason.endswith("(not drained: no other Pod serves meanwhile)")
    terminating = [running(old, p.name, deleting=True) for p in pods]
    # Stopped (a terminal phase) though not yet gone: no old container runs any more.
    stopped = [running(old, p.name, deleting=True, phase="Failed") for p in pods]
    assert [a.kind for a in plan(new, stopped, settled_service(new), now=NOW).actions] == [
        "create_pod",
        "create_pod",
    ]
    assert plan(new, terminating, settled_service(new), now=NOW).empty
    assert [a.kind for a in plan(new, [], settled_service(new), now=NOW).actions] == [
        "create_pod",
        "create_pod",
    ]


def test_hand_edited_selector_is_put_back_and_others_fields_are_ignored() -> None:
    desired = desired_for(replicas=1)
    service = settled_service(desired)
    service["spec"]["selector"] = {"app": "something-else"}
    service["metadata"]["annotations"]["added-by-hand"] = "kept"
    result = plan(desired, [running(desired, f"web-{desired.template_hash}-0")], service, now=NOW)
    assert kinds(result.actions) == [("apply_service", "web")]
    assert result.actions[0].reason == (
        "updating Service web: selector: {'app': 'something-else'} -> "
        "{'exposedapp.dev/app': 'web', 'exposedapp.dev/app-uid': 'uid-1'}"
    )


def test_annotation_dropped_from_spec_is_removed_only_if_we_applied_it() -> None:
    desired = desired_for(replicas=0)
    service = settled_service(desired)
    service["metadata"]["annotations"]["old"] = "x"
    assert service_differences(desired.service or {}, service, {}) == []
    assert service_differences(desired.service or {}, service, {"annotations": {"old"}}) == [
        "annotation old no longer wanted"
    ]


def test_switching_to_headless_recreates_the_service() -> None:
    desired = desired_for(replicas=0, service={"type": "Headless"})
    service = settled_service(desired_for(replicas=0))
    service["metadata"]["uid"] = "svc-uid"
    result = plan(desired, [], service, now=NOW)
    assert kinds(result.actions) == [("recreate_service", "web")]
    assert result.actions[0].uid == "svc-uid"
    assert "must be headless, and clusterIP is immutable" in result.actions[0].reason


def test_a_foreign_service_is_never_touched() -> None:
    desired = desired_for(replicas=0)
    result = plan(
        desired, [], None, service_conflict=ServiceConflict("web", "Deployment web"), now=NOW
    )
    assert result.empty
    assert result.blocked == (
        "Service web exists and is controlled by Deployment web; not touching it",
    )


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 1, (1, 0)),
        (0, 0, 3, (0, 1)),
        (2, "50%", 5, (2, 2)),
    ],
)
def test_resolve_rolling_rounds_like_deployments(
    surge: int | str, unavailable: int | str, replicas: int, expected: tuple[int, int]
) -> None:
    assert resolve_rolling(surge, unavailable, replicas) == expected
