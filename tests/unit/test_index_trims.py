"""What the indexes keep of each object: what the reconciler reads, nothing more."""

from __future__ import annotations

from typing import Any

from exposedapp.domain.labels import FIELD_MANAGER
from exposedapp.domain.objects import owned_keys
from exposedapp.domain.plan import observe_pod
from exposedapp.handlers import LAST_APPLIED, _trim_app, _trim_pod, _trim_service

NOW = "2026-11-25T00:00:00Z"


def managed(manager: str, operation: str, labels: list[str]) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "time": "2026-11-25T00:00:00Z",
        "fieldsV1": {
            "f:metadata": {"f:labels": {f"f:{k}": {} for k in labels}},
            "f:spec": {
                "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:name": {}}},
                "f:selector": {},
            },
        },
    }


def test_an_app_loses_managed_fields_and_the_last_applied_copy_only() -> None:
    body = {
        "metadata": {
            "name": "web",
            "uid": "u1",
            "generation": 3,
            "annotations": {LAST_APPLIED: '{"spec": "..."}', "team": "shop"},
            "managedFields": [managed("kubectl", "Update", ["a"])],
        },
        "spec": {"replicas": 2},
        "status": {"replicas": 2},
    }
    assert _trim_app(body) == {
        "metadata": {"name": "web", "uid": "u1", "generation": 3, "annotations": {"team": "shop"}},
        "spec": {"replicas": 2},
        "status": {"replicas": 2},
    }


def test_a_service_keeps_only_what_our_manager_applied_to_its_metadata_and_ports() -> None:
    ours = managed(FIELD_MANAGER, "Apply", ["exposedapp.dev/app", "app.kubernetes.io/name"])
    body = {
        "metadata": {
            "name": "web",
            "resourceVersion": "9",
            "managedFields": [managed("kubectl-edit", "Update", ["x"]), ours],
        },
        "spec": {"clusterIP": "10.96.0.1"},
    }
    trimmed = _trim_service(body)
    assert trimmed["metadata"]["managedFields"] == [
        {
            "manager": FIELD_MANAGER,
            "operation": "Apply",
            "fieldsV1": {
                "f:metadata": ours["fieldsV1"]["f:metadata"],
                "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {}}},
            },
        }
    ]
    assert owned_keys(trimmed) == owned_keys(body)
    assert owned_keys(trimmed)["ports"] == {"80/TCP"}
    assert trimmed["metadata"]["resourceVersion"] == "9"
    assert trimmed["spec"] == {"clusterIP": "10.96.0.1"}


def test_a_pod_keeps_what_observe_pod_reads() -> None:
    body = {
        "metadata": {"name": "web-1", "uid": "p1", "managedFields": [{}], "resourceVersion": "5"},
        "spec": {"nodeName": "n1", "containers": [{"name": "web"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.5",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True", "lastTransitionTime": NOW, "reason": "x"},
            ],
            "containerStatuses": [{"name": "web", "ready": True}],
        },
    }
    trimmed = _trim_pod(body)
    assert trimmed == {
        "metadata": {"name": "web-1", "uid": "p1"},
        "spec": {"nodeName": "n1"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": NOW}],
        },
    }
    assert observe_pod(trimmed) == observe_pod(body)
