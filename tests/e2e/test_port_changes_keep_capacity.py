"""Renaming or renumbering a port never takes serving capacity below what the update
strategy allows: issue 13's input 3, sampled from the EndpointSlices every 20 ms.

4 replicas, maxSurge 1, maxUnavailable 0: the ready endpoints behind Service port 80 must
never fall below 4 while the port is renamed, renumbered, or both at once.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conftest import OperatorProcess
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.audit import AuditLog
from test_reconciler import assert_second_reconcile_writes_nothing

CHANGES = {
    "rename": ("http-web", 8080),
    "renumber": ("http", 8081),
    "rename and renumber": ("http-web", 8081),
}


def ready_behind_port_80(apps: Apps, service: str) -> int:
    """Ready endpoints of the slices that carry a port (the Service's port 80)."""
    slices = apps.discovery.list_namespaced_endpoint_slice(
        apps.namespace, label_selector=f"kubernetes.io/service-name={service}"
    ).items
    return sum(
        1
        for s in slices
        if s.ports
        for e in s.endpoints or []
        if e.conditions and e.conditions.ready
    )


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_port_change_keeps_every_replica_serving(
    change: str, apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    body = app_manifest("web", replicas=4, port=8080)
    body["spec"]["updateStrategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    apps.create(body)
    apps.wait_ready("web")
    wait_for(lambda: ready_behind_port_80(apps, "web"), lambda n: n == 4, what="4 serving")
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(ready_behind_port_80(apps, "web"))
            stop.wait(0.02)

    name, number = CHANGES[change]
    container: dict[str, Any] = {
        **body["spec"]["containers"][0],
        "ports": [{"name": name, "containerPort": number, "servicePort": 80}],
    }
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        apps.patch("web", {"spec": {"containers": [container]}})
        app = apps.wait_ready("web", timeout=90)
        wait_for(lambda: len(apps.pods("web")), lambda n: n == 4, what="the old Pods gone")
        wait_for(lambda: ready_behind_port_80(apps, "web"), lambda n: n == 4, what="4 serving")
    finally:
        stop.set()
        sampler.join()
    (port,) = app["status"]["service"]["ports"]
    assert (port["name"], port["containerPort"], port["port"]) == (name, number, 80)
    assert len(samples) >= 3  # before, during and after
    assert min(samples) >= 4, f"serving capacity fell during the {change}: {samples}"
    assert_second_reconcile_writes_nothing(apps, "web", operator, audit, cluster)
