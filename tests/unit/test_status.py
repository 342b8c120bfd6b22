"""Status summary: counts, resolved ports, conditions with reasons a person can act on."""

from __future__ import annotations

from typing import Any

import pytest

from exposedapp.domain.desired import AppRef, build_desired
from exposedapp.domain.model import parse_spec
from exposedapp.domain.objects import merge_patch, owned_keys
from exposedapp.domain.status import (
    Problem,
    StatusWrite,
    conditions_equal,
    decide_status_write,
    merge_conditions,
    progress_interval,
    summarise,
)
from test_plan import NOW, running

APP = AppRef("shop", "web", "uid-1")
DESIRED = build_desired(
    APP,
    parse_spec(
        {
            "replicas": 2,
            "service": {"type": "NodePort"},
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "ports": [{"name": "http", "containerPort": 8080, "servicePort": 80}],
                }
            ],
        }
    ),
)
SERVICE = {
    "metadata": {"name": "web"},
    "spec": {
        "clusterIP": "10.96.0.7",
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 31234}],
    },
}


def slices(ready: int, not_ready: int = 0) -> list[dict[str, Any]]:
    endpoints = [{"conditions": {"ready": True}}] * ready + [
        {"conditions": {"ready": False}}
    ] * not_ready
    return [
        {
            "metadata": {"labels": {"kubernetes.io/service-name": DESIRED.app_name}},
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": 8080}],
        }
    ]


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_serving_app_is_ready_with_resolved_ports() -> None:
    h = DESIRED.template_hash
    pods = [running(DESIRED, f"web-{h}-{i}") for i in range(2)]
    status = summarise(
        generation=3,
        desired=DESIRED,
        pods=pods,
        service=SERVICE,
        slices=slices(2),
        problems=[],
        now=NOW,
    )
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 3,
        "replicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "updatedReplicas": 2,
        "selector": "exposedapp.dev/app=web,exposedapp.dev/app-uid=uid-1",
        "readyText": "2/2",
        "imagesText": "app:1",
        "portsText": "80:31234/TCP",
        "service": {
            "name": "web",
            "type": "NodePort",
            "clusterIP": "10.96.0.7",
            "dnsName": "web.shop.svc.cluster.local",
            "ports": [
                {
                    "name": "http",
                    "protocol": "TCP",
                    "port": 80,
                    "targetPort": "http",
                    "containerPort": 8080,
                    "container": "app",
                    "readyEndpoints": 2,
                    "nodePort": 31234,
                }
            ],
        },
    }
    assert conditions(status) == {
        "Ready": ("True", "Serving", "2 of 2 replicas ready, Service web serving every port"),
        "Progressing": ("False", "Complete", "2 of 2 replicas updated and available"),
        "Degraded": ("False", "AsExpected", "nothing blocks reconciliation"),
    }


def test_missing_endpoints_and_scaling_say_what_is_missing() -> None:
    h = DESIRED.template_hash
    one = [running(DESIRED, f"web-{h}-0")]
    status = summarise(
        generation=1,
        desired=DESIRED,
        pods=one,
        service=SERVICE,
        slices=slices(1),
        problems=[],
        now=NOW,
    )
    assert conditions(status)["Ready"] == ("False", "ScalingUp", "1 of 2 replicas exist")
    both = [*one, running(DESIRED, f"web-{h}-1")]
    status = summarise(
        generation=1,
        desired=DESIRED,
        pods=both,
        service=SERVICE,
        slices=slices(1, 1),
        problems=[],
        now=NOW,
    )
    assert conditions(status)["Ready"] == (
        "False",
        "EndpointsNotReady",
        "port http has 1 of 2 ready endpoints",
    )


def test_problems_make_it_degraded_and_not_ready() -> None:
    problem = Problem("QuotaExceeded", 'creating Pod web-1: exceeded quota: "pods"')
    status = summarise(
        generation=1,
        desired=DESIRED,
        pods=[],
        service=SERVICE,
        slices=[],
        problems=[problem],
        now=NOW,
    )
    assert conditions(status)["Degraded"] == ("True", "QuotaExceeded", problem.message)
    assert conditions(status)["Ready"] == ("False", "QuotaExceeded", problem.message)


def test_invalid_spec_reports_the_field() -> None:
    problem = Problem("InvalidSpec", "spec.replicas: must be at most 100")
    status = summarise(
        generation=4,
        desired=None,
        pods=[],
        service=None,
        slices=[],
        problems=[problem],
        now=NOW,
        selector={"exposedapp.dev/app-uid": "u", "exposedapp.dev/app": "web"},
    )
    assert status["observedGeneration"] == 4
    # The scale subresource's selector stays right: an HPA keeps reading the Pods.
    assert status["selector"] == "exposedapp.dev/app=web,exposedapp.dev/app-uid=u"
    assert conditions(status)["Degraded"] == (
        "True",
        "InvalidSpec",
        "spec.replicas: must be at most 100",
    )


def test_transition_times_are_kept_while_status_is_unchanged() -> None:
    old = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Serving",
            "message": "a",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]
    new = [
        {"type": "Ready", "status": "True", "reason": "Serving", "message": "b"},
        {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "c"},
    ]
    merged = merge_conditions(new, old, "2026-11-25T12:00:00Z")
    assert [c["lastTransitionTime"] for c in merged] == [
        "2026-01-01T00:00:00Z",
        "2026-11-25T12:00:00Z",
    ]
    assert conditions_equal(
        {"conditions": merged}, {"conditions": [{**c, "lastTransitionTime": "x"} for c in merged]}
    )


def test_merge_patch_sets_changes_and_nulls_removed_keys() -> None:
    old = {"replicas": 1, "service": {"name": "web", "clusterIP": "1.2.3.4"}, "gone": True}
    new = {"replicas": 2, "service": {"name": "web"}}
    assert merge_patch(old, new) == {"gone": None, "replicas": 2, "service": {"clusterIP": None}}
    assert merge_patch(new, new) == {}


def test_owned_keys_come_from_our_apply_entry_only() -> None:
    service = {
        "metadata": {
            "managedFields": [
                {
                    "manager": "exposedapp-operator",
                    "operation": "Apply",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:labels": {"f:a": {}, ".": {}},
                            "f:annotations": {"f:b": {}},
                        }
                    },
                },
                {
                    "manager": "kubectl-edit",
                    "operation": "Update",
                    "fieldsV1": {"f:metadata": {"f:annotations": {"f:c": {}}}},
                },
            ]
        }
    }
    assert owned_keys(service) == {"labels": {"a"}, "annotations": {"b"}, "ports": set()}


def _status(ready: str | None, degraded: str = "False", replicas: int = 2) -> dict[str, Any]:
    conditions = [{"type": "Degraded", "status": degraded, "reason": "R", "message": "m"}]
    if ready is not None:
        conditions.insert(0, {"type": "Ready", "status": ready, "reason": "R", "message": "m"})
    return {"replicas": replicas, "conditions": conditions}


@pytest.mark.parametrize(
    ("current", "wanted", "acted", "since", "expected"),
    [
        # Nothing changed: never a write.
        (_status("True"), _status("True"), False, 99.0, StatusWrite(False)),
        # What people and automation wait for goes out at once, even mid-change.
        ({}, _status("True"), True, 0.0, StatusWrite(True, why="Ready")),
        (_status("True"), _status("False"), True, 0.0, StatusWrite(True, why="Ready changed")),
        (
            _status("True"),
            _status("True", degraded="True"),
            False,
            0.0,
            StatusWrite(True, why="Degraded"),
        ),
        # Progress right after our own changes waits for their events.
        ({}, _status("False"), True, 9.0, StatusWrite(False, why="children changing")),
        # Progress is coalesced: at most one write per debounce interval.
        (
            _status("False", replicas=1),
            _status("False"),
            False,
            0.25,
            StatusWrite(False, retry_after=0.75, why="debounced"),
        ),
        (
            _status("False", replicas=1),
            _status("False"),
            False,
            1.5,
            StatusWrite(True, why="progress"),
        ),
    ],
)
def test_status_writes_are_immediate_for_conditions_and_coalesced_for_progress(
    current: dict[str, Any],
    wanted: dict[str, Any],
    acted: bool,
    since: float,
    expected: StatusWrite,
) -> None:
    assert (
        decide_status_write(current, wanted, acted=acted, seconds_since_write=since, debounce=1.0)
        == expected
    )


@pytest.mark.parametrize(
    ("progressing", "expected"),
    [
        (0, 1.0),  # a quiet operator: the per-app minimum
        (20, 1.0),  # 20 apps at one write a second each fit the budget of 20 a second
        (100, 5.0),  # beyond it, the apps share the budget
        (500, 25.0),
    ],
)
def test_progress_writes_share_one_budget_across_apps(progressing: int, expected: float) -> None:
    assert progress_interval(progressing, minimum=1.0, writes_per_second=20.0) == expected


def test_only_the_apps_own_services_endpoints_are_counted() -> None:
    h = DESIRED.template_hash
    pods = [running(DESIRED, f"web-{h}-{i}") for i in range(2)]
    clone = slices(2)[0]
    clone["metadata"] = {"labels": {"kubernetes.io/service-name": "web-clone"}}
    status = summarise(
        generation=3,
        desired=DESIRED,
        pods=pods,
        service=SERVICE,
        slices=[*slices(2), clone],  # a Service cloned from ours: same labels, its own slices
        problems=[],
        now=NOW,
    )
    assert [p["readyEndpoints"] for p in status["service"]["ports"]] == [2]
