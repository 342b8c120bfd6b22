"""Drain before delete on the real node, with the real operator process.

The EndpointSlice controller, the kubelet and kube-proxy are the real ones: a drained Pod
must leave every slice of the Service before the operator deletes it. Order is judged by
resourceVersions, which etcd hands out in one sequence for every object: the slice update
that dropped a Pod has a smaller resourceVersion than the Pod update that marked it for
deletion. Requests through the ClusterIP judge the restart mid-drain; the side-by-side
measurement against Deployments is test_drain_traffic.py and `make bench-traffic`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client, watch

from conftest import OperatorProcess
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.audit import AuditLog
from kubetest.realnode import with_local_images
from kubetest.traffic import LoadGenerator, http_get
from test_reconciler import assert_second_reconcile_writes_nothing

DRAIN_ANNOTATION = "exposedapp.dev/drain"


@pytest.fixture
def namespace(real_namespace: str) -> str:
    """Every test of this module runs its Pods on the real node."""
    return real_namespace


def local_app(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    """An app of netserver Pods on the real node, ready once they listen (probe 1 s)."""
    body = with_local_images(app_manifest(name, replicas=replicas, **spec))
    body["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"port": "http", "path": "/"},
        "periodSeconds": 1,
    }
    return body


@dataclass
class History:
    """Every version of the namespace's Pods and EndpointSlices, in resourceVersion order."""

    # (resourceVersion, UIDs the slice lists as ready or serving, slice name)
    slices: list[tuple[int, frozenset[str], str]] = field(default_factory=list)
    # Pod UID -> the resourceVersion at which it was first seen marked for deletion
    deletion_marked: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def last_listed(self, uid: str) -> int | None:
        """The resourceVersion of the last slice version that listed the Pod."""
        with self.lock:
            latest: dict[str, tuple[int, frozenset[str]]] = {}
            last = None
            for version, listed, name in sorted(self.slices):
                latest[name] = (version, listed)
                if uid in listed:
                    last = version
            return last


def _watch(
    list_function: Any, namespace: str, record: Any, stop: threading.Event
) -> threading.Thread:
    def run() -> None:
        stream = watch.Watch()
        while not stop.is_set():
            for event in stream.stream(list_function, namespace, timeout_seconds=2):
                record(event["type"], event["object"])
                if stop.is_set():
                    break

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def history(core: client.CoreV1Api, api: client.ApiClient, namespace: str) -> Iterator[History]:
    found = History()
    stop = threading.Event()
    discovery = client.DiscoveryV1Api(api)

    def on_slice(kind: str, obj: Any) -> None:
        listed = frozenset(
            e.target_ref.uid
            for e in obj.endpoints or []
            if e.target_ref is not None
            and e.conditions is not None
            and (e.conditions.ready is not False or e.conditions.serving)
        )
        with found.lock:
            found.slices.append(
                (
                    int(obj.metadata.resource_version),
                    listed if kind != "DELETED" else frozenset(),
                    obj.metadata.name,
                )
            )

    def on_pod(kind: str, obj: Any) -> None:
        if obj.metadata.deletion_timestamp is not None or kind == "DELETED":
            with found.lock:
                found.deletion_marked.setdefault(
                    obj.metadata.uid, int(obj.metadata.resource_version)
                )

    threads = [
        _watch(discovery.list_namespaced_endpoint_slice, namespace, on_slice, stop),
        _watch(core.list_namespaced_pod, namespace, on_pod, stop),
    ]
    yield found
    stop.set()
    for thread in threads:
        thread.join(5)


def _events(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    # Through core/v1: the official client's events.k8s.io model refuses the kubelet's
    # events (no eventTime), which the real node makes.
    events = core.list_namespaced_event(namespace).items
    return [f"{e.reason}: {e.message}" for e in events if e.involved_object.name == name]


def test_scale_down_drains_each_pod_out_of_the_slices_before_deleting_it(
    apps: Apps,
    operator: OperatorProcess,
    audit: AuditLog,
    cluster: ClusterHandle,
    core: client.CoreV1Api,
    history: History,
) -> None:
    apps.create(local_app("scaled", 4))
    apps.wait_ready("scaled")
    wait_for(lambda: apps.ready_endpoints("scaled"), lambda c: c.get("http") == 4)
    before = {p.metadata.uid: p.metadata.name for p in apps.live_pods("scaled")}
    mark = audit.mark()
    apps.patch("scaled", {"spec": {"replicas": 1}})
    wait_for(lambda: apps.pods("scaled"), lambda pods: len(pods) == 1, what="3 Pods gone")
    removed = set(before) - {p.metadata.uid for p in apps.pods("scaled")}
    assert len(removed) == 3
    wait_for(lambda: history.deletion_marked, lambda d: removed <= set(d), what="deletions seen")
    for uid in removed:
        last_listed = history.last_listed(uid)
        assert last_listed is not None, f"{before[uid]} was never listed"
        assert last_listed < history.deletion_marked[uid], (
            f"{before[uid]} was deleted (rv {history.deletion_marked[uid]}) while an "
            f"EndpointSlice still listed it (rv {last_listed})"
        )
    # Each removed Pod: one drain patch, then one delete, by the operator.
    assert cluster.operator_user is not None
    writes = [
        (w.verb, w.name)
        for w in audit.writes(mark, audit.mark(), cluster.operator_user)
        if w.resource == "pods" and w.namespace == apps.namespace
    ]
    for name in (before[uid] for uid in removed):
        assert [verb for verb, n in writes if n == name] == ["patch", "delete"], writes
    told = "\n".join(_events(core, apps.namespace, "scaled"))
    assert "DrainingPods: Draining 3 Pods" in told, told
    # One event per reconcile: Pods deleted together for one reason share a sentence.
    deleted = [line for line in told.splitlines() if line.startswith("DeletedPods:")]
    for name in (before[uid] for uid in removed):
        assert any(name in line and "drained in " in line for line in deleted), told
    assert "drainingReplicas" not in apps.wait_ready("scaled")["status"]
    assert_second_reconcile_writes_nothing(apps, "scaled", operator, audit, cluster)


def test_drain_off_deletes_at_once(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(local_app("blunt", 2, drain={"enabled": False}))
    apps.wait_ready("blunt")
    mark = audit.mark()
    apps.patch("blunt", {"spec": {"replicas": 1}})
    wait_for(lambda: apps.pods("blunt"), lambda pods: len(pods) == 1, what="1 Pod gone")
    assert cluster.operator_user is not None
    verbs = [
        w.verb
        for w in audit.writes(mark, audit.mark(), cluster.operator_user)
        if w.resource == "pods" and w.namespace == apps.namespace
    ]
    assert verbs == ["delete"]


def test_a_drain_under_way_is_finished_by_the_next_operator_after_a_kill(
    apps: Apps,
    operator: OperatorProcess,
    audit: AuditLog,
    cluster: ClusterHandle,
    kubectl: Any,
    history: History,
) -> None:
    # A long delay keeps the Pod draining while the operator is killed and started again;
    # a steady load through the ClusterIP meanwhile must see no failure.
    apps.create(local_app("resumed", 2, drain={"delaySeconds": 20}))
    apps.wait_ready("resumed")
    ip = apps.get("resumed")["status"]["service"]["clusterIP"]
    wait_for(lambda: http_get(ip, 80), what="kube-proxy serving the ClusterIP")
    with LoadGenerator(ip, 80, workers=2, rate=40, max_seconds=150) as load:
        _drain_kill_and_finish(apps, operator, kubectl, history)
    assert load.report.requests > 100, load.report
    assert load.report.failed == 0, load.report
    assert_second_reconcile_writes_nothing(apps, "resumed", operator, audit, cluster)


def _drain_kill_and_finish(
    apps: Apps, operator: OperatorProcess, kubectl: Any, history: History
) -> None:
    apps.patch("resumed", {"spec": {"replicas": 1}})
    (leaving,) = wait_for(
        lambda: [
            p for p in apps.pods("resumed") if DRAIN_ANNOTATION in (p.metadata.annotations or {})
        ],
        lambda pods: len(pods) == 1,
        what="a draining Pod",
    )
    status = wait_for(
        lambda: apps.get("resumed").get("status") or {},
        lambda s: s.get("drainingReplicas") == 1,
        what="status.drainingReplicas 1",
    )
    assert status["replicas"] == 1
    wide = kubectl("get", "xapp", "resumed", "-n", apps.namespace, "-o", "wide").stdout
    header, row = wide.splitlines()[:2]
    assert row[header.index("DRAINING") :].split()[0] == "1", wide  # the last column
    operator.kill()
    operator.start()
    wait_for(
        lambda: [p.metadata.uid for p in apps.pods("resumed")],
        lambda uids: leaving.metadata.uid not in uids,
        timeout=90,
        what="the draining Pod deleted by the restarted operator",
    )
    # The restarted operator neither made a replacement nor put the Pod back in service.
    assert len(apps.pods("resumed")) == 1
    last_listed = history.last_listed(leaving.metadata.uid)
    assert last_listed is not None
    assert last_listed < history.deletion_marked[leaving.metadata.uid]
    mark = json.loads(leaving.metadata.annotations[DRAIN_ANNOTATION])
    assert mark["reason"] == "scaling down to 1 replicas (2 exist)"
    assert "drainingReplicas" not in apps.wait_ready("resumed")["status"]


def test_a_drain_the_slices_never_confirm_ends_at_its_timeout(
    apps: Apps,
    operator: OperatorProcess,
    core: client.CoreV1Api,
    api: client.ApiClient,
) -> None:
    # A second EndpointSlice of the Service, managed by someone else (as a mesh or a
    # hand-made slice would be), keeps listing every Pod: no drain can complete.
    apps.create(local_app("stuck", 3, drain={"timeoutSeconds": 5}))
    apps.wait_ready("stuck")
    pods = {p.metadata.uid: p for p in apps.live_pods("stuck")}
    client.DiscoveryV1Api(api).create_namespaced_endpoint_slice(
        apps.namespace,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "stuck-by-hand",
                "labels": {
                    "kubernetes.io/service-name": "stuck",
                    "exposedapp.dev/app": "stuck",
                    "endpointslice.kubernetes.io/managed-by": "test.example",
                },
            },
            "addressType": "IPv4",
            "endpoints": [
                {
                    "addresses": [pod.status.pod_ip],
                    "conditions": {"ready": True},
                    "targetRef": {
                        "kind": "Pod",
                        "name": pod.metadata.name,
                        "namespace": apps.namespace,
                        "uid": uid,
                    },
                }
                for uid, pod in pods.items()
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],  # the targetPort
        },
    )
    apps.patch("stuck", {"spec": {"replicas": 1}})
    wait_for(lambda: apps.pods("stuck"), lambda left: len(left) == 1, timeout=60, what="2 gone")
    removed = sorted(
        p.metadata.name
        for uid, p in pods.items()
        if uid not in {q.metadata.uid for q in apps.pods("stuck")}
    )
    told = wait_for(
        lambda: "\n".join(_events(core, apps.namespace, "stuck")),
        lambda text: all(f"{name}" in text for name in removed) and "timed out" in text,
        what="the events of the deletes",
    )
    deleted = [line for line in told.splitlines() if line.startswith("DeletedPods:")]
    for name in removed:
        assert any(
            name in line and "drain timed out after 5 s (the EndpointSlices still list it)" in line
            for line in deleted
        ), told
