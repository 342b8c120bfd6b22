"""The reconciler against the real control plane, with the real operator process.

Every scenario ends with a check that a further reconcile writes nothing: the test pokes
the app (an annotation of its own, which the operator does not read), waits until the
operator has reconciled it, and counts the operator's writes in the audit log.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client

from conftest import OperatorProcess
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.audit import AuditLog


def assert_second_reconcile_writes_nothing(
    apps: Apps,
    name: str,
    operator: OperatorProcess,
    audit: AuditLog,
    cluster: ClusterHandle,
    rounds: int = 3,
    settle_timeout: float = 60,
) -> None:
    """Reconcile after reconcile writes nothing: ``rounds`` of them in a row, each poked
    and counted in the audit log, with no gap between one round's window and the next.

    The world may still be settling when a scenario ends (the EndpointSlice controller
    catching up, a Pod turning ready, a progress write held back by the debounce and due a
    second later), and the operator rightly writes status for that: a round that writes
    starts the count again, until ``settle_timeout``. An operator that writes on every
    reconcile never gets ``rounds`` quiet ones in a row.
    """
    assert cluster.operator_user is not None
    user = cluster.operator_user
    mark = audit.mark()

    def reconcile_once(start: int) -> tuple[int, list[str]]:
        before = operator.log().count(f"Reconciled {apps.namespace}/{name}")
        apps.patch(name, {"metadata": {"annotations": {"test.example/poke": str(start)}}})
        wait_for(
            lambda: operator.log().count(f"Reconciled {apps.namespace}/{name}"),
            lambda count: count > before,
            what="the operator to reconcile the poked app",
        )
        end = audit.mark()
        writes = [str(w) for w in audit.writes(start, end, user) if w.namespace == apps.namespace]
        return end, writes

    deadline = time.monotonic() + settle_timeout
    quiet, history = 0, []
    while quiet < rounds:
        mark, writes = reconcile_once(mark)
        history.append(writes)
        quiet = 0 if writes else quiet + 1
        if quiet < rounds and time.monotonic() > deadline:
            pytest.fail(f"no {rounds} reconciles in a row wrote nothing: {history}")


def test_app_becomes_pods_and_a_service_with_ready_endpoints(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(app_manifest("web", replicas=3))
    app = apps.wait_ready("web")

    pods = apps.live_pods("web")
    assert len(pods) == 3
    assert all(p.status.pod_ip and p.status.phase == "Running" for p in pods)
    assert {p.metadata.owner_references[0].uid for p in pods} == {app["metadata"]["uid"]}
    service = apps.core.read_namespaced_service("web", apps.namespace)
    assert service.spec.selector == {
        "exposedapp.dev/app": "web",
        "exposedapp.dev/app-uid": app["metadata"]["uid"],
    }
    assert [(p.name, p.port, p.target_port) for p in service.spec.ports] == [("http", 80, "http")]
    assert apps.ready_endpoints("web") == {"http": 3}
    status = app["status"]
    assert status["readyReplicas"] == 3
    assert status["service"]["clusterIP"] == service.spec.cluster_ip
    assert status["service"]["dnsName"] == f"web.{apps.namespace}.svc.cluster.local"
    assert status["service"]["ports"] == [
        {
            "name": "http",
            "protocol": "TCP",
            "port": 80,
            "targetPort": "http",
            "containerPort": 8080,
            "container": "web",
            "readyEndpoints": 3,
        }
    ]
    table = cluster.kubectl("get", "xapp", "web", "-n", apps.namespace).stdout
    assert table.split()[:5] == ["NAME", "READY", "TYPE", "CLUSTER-IP", "PORTS"]
    assert table.splitlines()[1].split()[:5] == [
        "web",
        "3/3",
        "ClusterIP",
        service.spec.cluster_ip,
        "80/TCP",
    ]
    assert_second_reconcile_writes_nothing(apps, "web", operator, audit, cluster)


def test_deleted_pod_is_replaced_and_scale_follows_kubectl_scale(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(app_manifest("heal", replicas=2))
    apps.wait_ready("heal")
    # Pods are told apart by UID: a replacement may take a freed name.
    victim = apps.live_pods("heal")[0].metadata
    apps.core.delete_namespaced_pod(victim.name, apps.namespace)
    wait_for(
        lambda: apps.live_pods("heal"),
        lambda pods: len(pods) == 2 and victim.uid not in {p.metadata.uid for p in pods},
        what="a replacement Pod",
    )
    apps.wait_ready("heal")

    cluster.kubectl("scale", "xapp", "heal", "--replicas=4", "-n", apps.namespace)
    wait_for(
        lambda: apps.get("heal")["status"],
        lambda s: s.get("readyReplicas") == 4,
        what="4 ready replicas",
    )
    cluster.kubectl("scale", "xapp", "heal", "--replicas=1", "-n", apps.namespace)
    wait_for(lambda: apps.live_pods("heal"), lambda pods: len(pods) == 1, what="1 Pod")
    apps.wait_ready("heal")
    # The EndpointSlice controller drops the deleted Pods' endpoints in its own time.
    wait_for(
        lambda: apps.ready_endpoints("heal"),
        lambda endpoints: endpoints == {"http": 1},
        what="one ready endpoint",
    )
    assert_second_reconcile_writes_nothing(apps, "heal", operator, audit, cluster)


def test_hand_edited_service_is_put_back_and_others_fields_survive(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(app_manifest("drift", replicas=1, service={"type": "NodePort"}))
    apps.wait_ready("drift")
    before = apps.core.read_namespaced_service("drift", apps.namespace)
    node_port = before.spec.ports[0].node_port
    cluster.kubectl(
        "annotate",
        "service",
        "drift",
        "-n",
        apps.namespace,
        "cloud.example/owned-by-someone-else=yes",
    )
    cluster.kubectl(
        "patch",
        "service",
        "drift",
        "-n",
        apps.namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"selector": {"exposedapp.dev/app": "oops"}}}),
    )

    after = wait_for(
        lambda: apps.core.read_namespaced_service("drift", apps.namespace),
        lambda s: s.spec.selector.get("exposedapp.dev/app") == "drift",
        what="the selector put back",
    )
    assert after.spec.cluster_ip == before.spec.cluster_ip
    assert after.spec.ports[0].node_port == node_port
    assert after.metadata.annotations["cloud.example/owned-by-someone-else"] == "yes"
    # Events are posted in the background, after the write they tell of.
    wait_for(
        lambda: apps.core.list_namespaced_event(apps.namespace).items,
        lambda events: any(
            e.reason == "AppliedService" and "selector" in (e.message or e.note or "")
            for e in events
        ),
        timeout=10,
        what="an AppliedService event that names the selector",
    )
    apps.wait_ready("drift")
    assert_second_reconcile_writes_nothing(apps, "drift", operator, audit, cluster)


def test_renumbered_port_never_leaves_the_service_without_ready_endpoints(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(app_manifest("renum", replicas=3, port=8080))
    apps.wait_ready("renum")
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(apps.ready_endpoints("renum").get("http", 0))
            stop.wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        apps.patch(
            "renum",
            {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            "ports": [{"name": "http", "containerPort": 9090, "servicePort": 80}],
                        }
                    ]
                }
            },
        )
        app = apps.wait_ready("renum", timeout=90)
    finally:
        stop.set()
        sampler.join()
    assert app["status"]["service"]["ports"][0]["containerPort"] == 9090
    pods = apps.live_pods("renum")
    assert [p.spec.containers[0].ports[0].container_port for p in pods] == [9090] * 3
    assert len(samples) >= 3  # sampled before, during and after the rollout
    assert min(samples) > 0, f"a moment without ready endpoints: {samples}"
    assert_second_reconcile_writes_nothing(apps, "renum", operator, audit, cluster)


def test_a_foreign_service_with_our_name_is_left_untouched_and_reported(
    apps: Apps, operator: OperatorProcess, cluster: ClusterHandle
) -> None:
    foreign = client.V1Service(
        metadata=client.V1ObjectMeta(name="taken", labels={"owner": "someone"}),
        spec=client.V1ServiceSpec(
            selector={"owner": "someone"}, ports=[client.V1ServicePort(port=1234)]
        ),
    )
    apps.core.create_namespaced_service(apps.namespace, foreign)
    apps.create(app_manifest("taken", replicas=1))

    degraded = wait_for(
        lambda: apps.condition("taken", "Degraded"),
        lambda c: c.get("status") == "True",
        what="Degraded",
    )
    assert degraded["reason"] == "ServiceConflict"
    assert "Service taken exists and is controlled by no controller" in degraded["message"]
    service = apps.core.read_namespaced_service("taken", apps.namespace)
    assert service.spec.selector == {"owner": "someone"}
    assert [p.port for p in service.spec.ports] == [1234]
    assert service.metadata.labels == {"owner": "someone"}


def test_foreign_pods_with_the_users_labels_are_never_counted_or_touched(
    apps: Apps, operator: OperatorProcess
) -> None:
    lookalike = client.V1Pod(
        metadata=client.V1ObjectMeta(name="lookalike", labels={"team": "shop"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="x", image="x")]),
    )
    apps.core.create_namespaced_pod(apps.namespace, lookalike)
    apps.create(app_manifest("shop", replicas=2, podLabels={"team": "shop"}))
    app = apps.wait_ready("shop")
    assert app["status"]["replicas"] == 2
    assert len(apps.live_pods("shop")) == 2
    assert (
        apps.core.read_namespaced_pod("lookalike", apps.namespace).metadata.deletion_timestamp
        is None
    )
    assert apps.ready_endpoints("shop") == {"http": 2}


def test_service_type_changes_both_ways_including_headless(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(app_manifest("kind", replicas=1))
    apps.wait_ready("kind")
    for service_type, cluster_ip_none in (
        ("Headless", True),
        ("NodePort", False),
        ("ClusterIP", False),
    ):
        apps.patch("kind", {"spec": {"service": {"type": service_type}}})
        app = apps.wait_ready("kind")
        service = apps.core.read_namespaced_service("kind", apps.namespace)
        assert (service.spec.cluster_ip == "None") is cluster_ip_none
        expected = "ClusterIP" if service_type == "Headless" else service_type
        assert service.spec.type == expected
        assert app["status"]["service"]["type"] == service_type
    # Events are posted in the background: wait for it rather than read once.
    wait_for(
        lambda: [e.reason for e in apps.core.list_namespaced_event(apps.namespace).items],
        lambda reasons: "RecreatedService" in reasons,
        what="a RecreatedService event",
    )
    assert_second_reconcile_writes_nothing(apps, "kind", operator, audit, cluster)


def test_operator_killed_during_creation_leaves_no_duplicates(
    apps: Apps, operator: OperatorProcess
) -> None:
    apps.create(app_manifest("burst", replicas=5))
    wait_for(
        lambda: apps.pods("burst"),
        lambda pods: len(pods) >= 1,
        timeout=30,
        interval=0.01,
        what="the first Pod",
    )
    operator.kill()
    operator.start()
    app = apps.wait_ready("burst")
    pods = apps.pods("burst")
    assert len(pods) == 5, [p.metadata.name for p in pods]
    assert app["status"]["replicas"] == 5


def test_app_deleted_while_the_operator_is_down_is_garbage_collected(
    apps: Apps, operator: OperatorProcess
) -> None:
    apps.create(app_manifest("gone", replicas=2))
    apps.wait_ready("gone")
    operator.stop()
    apps.delete("gone")
    wait_for(
        lambda: (apps.pods("gone"), apps.core.list_namespaced_service(apps.namespace).items),
        lambda seen: seen[0] == [] and seen[1] == [],
        what="Pods and Service garbage-collected with the operator stopped",
    )
    assert not operator.running()


def test_deleted_service_is_put_back_with_an_event(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(app_manifest("svc", replicas=1))
    apps.wait_ready("svc")
    first = apps.core.read_namespaced_service("svc", apps.namespace)
    apps.core.delete_namespaced_service("svc", apps.namespace)
    again = wait_for(
        lambda: apps.core.read_namespaced_service("svc", apps.namespace),
        lambda s: s.metadata.uid != first.metadata.uid,
        what="the Service recreated",
    )
    assert again.spec.selector == first.spec.selector
    apps.wait_ready("svc")
    assert_second_reconcile_writes_nothing(apps, "svc", operator, audit, cluster)


def test_quota_refusal_is_degraded_with_backoff_then_recovers(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    quota = client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="two-pods"),
        spec=client.V1ResourceQuotaSpec(hard={"pods": "2"}),
    )
    apps.core.create_namespaced_resource_quota(apps.namespace, quota)
    wait_for(
        lambda: apps.core.read_namespaced_resource_quota("two-pods", apps.namespace).status.hard,
        what="the quota to be counted",
    )
    start = audit.mark()
    apps.create(app_manifest("quota", replicas=4))
    degraded = wait_for(
        lambda: apps.condition("quota", "Degraded"),
        lambda c: c.get("reason") == "QuotaExceeded",
        what="Degraded QuotaExceeded",
    )
    assert "exceeded quota: two-pods" in degraded["message"]
    wait_for(
        lambda: [e.reason for e in apps.core.list_namespaced_event(apps.namespace).items],
        lambda reasons: "QuotaExceeded" in reasons,
        what="a QuotaExceeded event",
    )
    assert len(apps.live_pods("quota")) == 2
    # Blocked for a while: the retries back off instead of hammering the API.
    wait_for(
        lambda: operator.log().count("Reconciled " + apps.namespace + "/quota"),
        lambda count: count >= 4,
        timeout=60,
        what="a few retries while blocked",
    )
    end = audit.mark()
    assert cluster.operator_user is not None
    creates = [
        r
        for r in audit.writes(start, end, cluster.operator_user)
        if r.verb == "create" and r.resource == "pods" and r.namespace == apps.namespace
    ]
    refused = [r for r in creates if r.code == 403]
    assert len(creates) - len(refused) == 2
    assert 1 <= len(refused) <= 12, "\n".join(map(str, creates))

    apps.core.delete_namespaced_resource_quota("two-pods", apps.namespace)
    app = apps.wait_ready("quota", timeout=90)
    assert app["status"]["readyReplicas"] == 4
    assert apps.condition("quota", "Degraded")["status"] == "False"


def test_recreate_strategy_replaces_all_pods_without_overlap(
    apps: Apps, operator: OperatorProcess
) -> None:
    apps.create(app_manifest("re", replicas=2, updateStrategy={"type": "Recreate"}))
    apps.wait_ready("re")
    old = {p.metadata.name for p in apps.live_pods("re")}
    images_seen_together: list[set[str]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            # Terminating Pods count: Recreate means none of the old may still exist.
            images_seen_together.append({p.spec.containers[0].image for p in apps.pods("re")})
            stop.wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        container = {
            "name": "web",
            "image": "nginx:1.28",
            "ports": [{"name": "http", "containerPort": 8080, "servicePort": 80}],
        }
        apps.patch("re", {"spec": {"containers": [container]}})
        app = apps.wait_ready("re", timeout=90)
    finally:
        stop.set()
        sampler.join()
    new = {p.metadata.name for p in apps.live_pods("re")}
    assert old.isdisjoint(new)
    assert app["status"]["updatedReplicas"] == 2
    assert {"nginx:1.27", "nginx:1.28"} not in images_seen_together
    assert {"nginx:1.27"} in images_seen_together
    assert images_seen_together[-1] == {"nginx:1.28"}
