"""The Service stays as declared whoever edits it: issue 13's inputs 1, 2 and 4.

Each input with the value it must have, and each scenario ends with a reconcile that
writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from conftest import OperatorProcess
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.audit import AuditLog
from test_reconciler import assert_second_reconcile_writes_nothing

# Repairs are driven by the Service's own watch event, not by the periodic resync (30 s
# in the tests): a generous bound that still tells the two apart.
REPAIR_SECONDS = 10


def service_ports(apps: Apps, name: str) -> list[tuple[str, int]]:
    service = apps.core.read_namespaced_service(name, apps.namespace)
    return [(p.name, p.port) for p in service.spec.ports]


def json_patch(cluster: ClusterHandle, apps: Apps, name: str, patch: list[dict[str, Any]]) -> None:
    cluster.kubectl(
        "patch", "svc", name, "-n", apps.namespace, "--type=json", "-p", json.dumps(patch)
    )


def service_writes(audit: AuditLog, cluster: ClusterHandle, start: int, apps: Apps) -> list[str]:
    assert cluster.operator_user is not None
    return [
        str(w)
        for w in audit.writes(start, audit.mark(), cluster.operator_user)
        if w.resource == "services" and w.namespace == apps.namespace
    ]


def test_a_port_number_edited_by_hand_is_put_back(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(app_manifest("web", replicas=2, port=8080))
    apps.wait_ready("web")
    assert service_ports(apps, "web") == [("http", 80)]
    start = audit.mark()
    json_patch(
        cluster, apps, "web", [{"op": "replace", "path": "/spec/ports/0/port", "value": 8081}]
    )
    wait_for(
        lambda: service_ports(apps, "web"),
        lambda ports: ports == [("http", 80)],
        timeout=REPAIR_SECONDS,
        what="port 80 back",
    )
    assert apps.condition("web", "Degraded")["status"] == "False"
    assert len(service_writes(audit, cluster, start, apps)) == 1
    assert_second_reconcile_writes_nothing(apps, "web", operator, audit, cluster)


def test_a_port_added_by_hand_is_removed_with_one_write_and_one_event(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(app_manifest("web", replicas=2, port=8080))
    apps.wait_ready("web")
    start = audit.mark()
    debug = {"name": "debug", "port": 9999, "targetPort": 9999, "protocol": "TCP"}
    json_patch(cluster, apps, "web", [{"op": "add", "path": "/spec/ports/-", "value": debug}])
    wait_for(
        lambda: service_ports(apps, "web"),
        lambda ports: ports == [("http", 80)],
        timeout=REPAIR_SECONDS,
        what="the debug port removed",
    )
    for poke in range(5):  # annotation changes on the app: nothing to do
        apps.patch("web", {"metadata": {"annotations": {"test.example/poke": str(poke)}}})
    assert_second_reconcile_writes_nothing(apps, "web", operator, audit, cluster)
    assert len(service_writes(audit, cluster, start, apps)) == 1

    def repair_events() -> list[Any]:
        return [
            e
            for e in apps.core.list_namespaced_event(
                apps.namespace, field_selector="involvedObject.name=web"
            ).items
            if e.reason in ("RepairedService", "AppliedService", "Reconciled")
            and "debug" in (e.message or "")
        ]

    wait_for(repair_events, what="the repair's event (posted in the background)")
    repaired = repair_events()
    assert len(repaired) == 1


def test_a_service_cloned_from_ours_is_not_counted(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(app_manifest("web", replicas=2, port=8080))
    apps.wait_ready("web")
    ours = apps.core.read_namespaced_service("web", apps.namespace)
    clone = client.V1Service(
        metadata=client.V1ObjectMeta(name="web-clone", labels=ours.metadata.labels),
        spec=client.V1ServiceSpec(
            selector=ours.spec.selector,
            ports=[
                client.V1ServicePort(name=p.name, port=p.port, target_port=p.target_port)
                for p in ours.spec.ports
            ],
        ),
    )
    apps.core.create_namespaced_service(apps.namespace, clone)
    wait_for(
        lambda: apps.ready_endpoints("web-clone").get("http", 0),
        lambda ready: ready == 2,
        what="the clone's own ready endpoints",
    )
    apps.patch("web", {"metadata": {"annotations": {"test.example/poke": "clone"}}})
    assert_second_reconcile_writes_nothing(apps, "web", operator, audit, cluster)
    status = apps.get("web")["status"]
    assert [p["readyEndpoints"] for p in status["service"]["ports"]] == [2]
