"""Autoscaling end to end: metrics-server, an autoscaling/v2 HPA on CPU, the scale subresource.

Everything is real: netserver Pods on the real node burn CPU for real requests sent
through their ClusterIP, the kubelet accounts for it, metrics-server (a host process
registered through the aggregation layer, see devcluster.metricsserver) serves it as
metrics.k8s.io, kube-controller-manager's HorizontalPodAutoscaler reads it through the
ExposedApp's scale subresource (its status.selector) and writes spec.replicas through the
same subresource, and the operator makes the Pods. The scale subresource is sampled all
the while: its selector must always be the app's identity labels, its replica counts in
bounds.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from conftest import OperatorProcess, RealNode
from kubetest import ClusterHandle, wait_for
from kubetest.apps import GROUP, PLURAL, VERSION, Apps, app_manifest
from kubetest.audit import AuditLog
from kubetest.realnode import with_local_images
from kubetest.traffic import LoadGenerator
from test_reconciler import assert_second_reconcile_writes_nothing

MAX_REPLICAS = 3
CPU_REQUEST = "10m"
TARGET_UTILIZATION = 50  # percent of the request: 5m a Pod, which the load exceeds many times
# Each request spins netserver's CPU this long; at LOAD_RATE a second that is about
# 0.3 of a core, spread over the Pods by kube-proxy: far above the target, well within the
# node's 2 cores.
BURN = "/burn?ms=20"
LOAD_RATE = 15.0
SCALE_DOWN_WINDOW = 15  # seconds: the HPA object's behavior, not a controller-wide flag


@pytest.fixture
def namespace(real_namespace: str) -> str:
    """Every test of this module runs its Pods on the real node."""
    return real_namespace


@pytest.fixture
def metrics_server(cluster: ClusterHandle, real_node: RealNode) -> None:
    """The local cluster runs metrics-server with its real node; its absence is a failure."""
    from devcluster.cluster import read_state

    state = read_state(cluster.run_dir) if cluster.local else None
    if state is not None and "metrics-server" not in state.pids:
        pytest.fail(
            f"the local cluster in {cluster.run_dir} runs a real node but no metrics-server"
        )
    # An existing cluster brings its own (or fails below, waiting for the metrics API).


def hpa_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ExposedApp",
                "name": name,
            },
            "minReplicas": 1,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": TARGET_UTILIZATION},
                    },
                }
            ],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Percent", "value": 200, "periodSeconds": 15}],
                },
                # The default window is 5 minutes (kube-controller-manager's
                # --horizontal-pod-autoscaler-downscale-stabilization); this HPA asks for less.
                "scaleDown": {
                    "stabilizationWindowSeconds": SCALE_DOWN_WINDOW,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                },
            },
        },
    }


@dataclass
class ScaleSample:
    at: float  # time.monotonic()
    spec_replicas: int
    status_replicas: int
    selector: str


@dataclass
class ScaleWatcher:
    """Reads the app's scale subresource every half second, in a thread, until stopped."""

    custom: client.CustomObjectsApi
    namespace: str
    name: str
    samples: list[ScaleSample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def read(self) -> dict[str, Any]:
        return dict(
            self.custom.get_namespaced_custom_object_scale(
                GROUP, VERSION, self.namespace, PLURAL, self.name
            )
        )

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                scale = self.read()
            except client.ApiException as error:
                self.errors.append(f"HTTP {error.status}: {error.reason}")
                continue
            self.samples.append(
                ScaleSample(
                    time.monotonic(),
                    scale["spec"].get("replicas", 0),
                    scale.get("status", {}).get("replicas", 0),
                    scale.get("status", {}).get("selector", ""),
                )
            )

    def first(self, after: float, condition: Any) -> float | None:
        """When a sample taken after ``after`` first met the condition."""
        return next((s.at for s in self.samples if s.at >= after and condition(s)), None)


def raw_scale(cluster: ClusterHandle, namespace: str, name: str) -> dict[str, Any]:
    """The scale subresource as kubectl reads it (`kubectl get --raw`)."""
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/scale"
    answer: dict[str, Any] = json.loads(cluster.kubectl("get", "--raw", path).stdout)
    return answer


def assert_scale_matches_pods(
    cluster: ClusterHandle, apps: Apps, name: str, selector: str, replicas: int
) -> None:
    """At rest: the subresource says what the app and its Pods say."""
    scale = raw_scale(cluster, apps.namespace, name)
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == replicas
    assert scale["status"]["replicas"] == replicas
    assert scale["status"]["selector"] == selector
    selected = [
        p.metadata.name
        for p in apps.core.list_namespaced_pod(apps.namespace, label_selector=selector).items
        if p.metadata.deletion_timestamp is None
    ]
    assert sorted(selected) == sorted(p.metadata.name for p in apps.live_pods(name))
    assert len(selected) == replicas


def pod_metrics(custom: client.CustomObjectsApi, namespace: str) -> dict[str, int]:
    """metrics.k8s.io: each Pod's CPU in millicores, as `kubectl top pod` shows it."""
    answer = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", namespace, "pods")
    return {
        item["metadata"]["name"]: sum(_millicores(c["usage"]["cpu"]) for c in item["containers"])
        for item in answer["items"]
    }


def _millicores(quantity: str) -> int:
    if quantity.endswith("n"):
        return int(quantity[:-1]) // 1_000_000
    if quantity.endswith("u"):
        return int(quantity[:-1]) // 1_000
    if quantity.endswith("m"):
        return int(quantity[:-1])
    return int(float(quantity) * 1000)


def hpa_condition(hpa: Any, kind: str) -> str:
    return next(
        (
            f"{c.status} {c.reason}: {c.message}"
            for c in hpa.status.conditions or []
            if c.type == kind
        ),
        "",
    )


def test_the_hpa_scales_an_app_up_under_real_load_and_back_down(
    operator: OperatorProcess,
    cluster: ClusterHandle,
    api: client.ApiClient,
    apps: Apps,
    namespace: str,
    metrics_server: None,
    audit: AuditLog,
) -> None:
    name = "burner"
    custom = client.CustomObjectsApi(api)
    autoscaling = client.AutoscalingV2Api(api)
    body = with_local_images(app_manifest(name, replicas=1))
    container = body["spec"]["containers"][0]
    container["readinessProbe"] = {"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 1}
    container["resources"] = {"requests": {"cpu": CPU_REQUEST, "memory": "16Mi"}}
    app = apps.create(body)
    selector = f"exposedapp.dev/app={name},exposedapp.dev/app-uid={app['metadata']['uid']}"
    apps.wait_ready(name)
    assert_scale_matches_pods(cluster, apps, name, selector, 1)
    service = apps.core.read_namespaced_service(name, namespace)
    assert ",".join(f"{k}={v}" for k, v in sorted(service.spec.selector.items())) == selector

    # kubectl top's source: the Pod's CPU, once metrics-server has scraped it twice.
    (pod,) = apps.live_pods(name)
    started = time.monotonic()
    wait_for(
        lambda: pod_metrics(custom, namespace),
        lambda usage: pod.metadata.name in usage,
        timeout=90,
        what=f"metrics.k8s.io to report {pod.metadata.name}",
    )
    first_metrics = time.monotonic() - started
    top = cluster.kubectl("top", "pod", "-n", namespace).stdout

    autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, hpa_manifest(name))
    # The HPA reads the scale subresource's selector and the Pods' metrics before any load.
    hpa = wait_for(
        lambda: autoscaling.read_namespaced_horizontal_pod_autoscaler(name, namespace),
        lambda h: (
            hpa_condition(h, "ScalingActive").startswith("True")
            and h.status.current_metrics is not None
        ),
        timeout=90,
        what="the HPA reading the app's CPU (ScalingActive)",
    )
    assert hpa.status.current_replicas == 1

    watcher = ScaleWatcher(custom, namespace, name)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        service_ip = service.spec.cluster_ip
        with LoadGenerator(
            service_ip, 80, workers=2, rate=LOAD_RATE, max_seconds=300, timeout=5, path=BURN
        ) as load:
            load_started = load.report.started
            scaled_app = wait_for(
                lambda: apps.get(name),
                lambda a: a["spec"]["replicas"] > 1,
                timeout=180,
                what="the HPA to raise spec.replicas under load",
            )
            decided_up = time.monotonic() - load_started
            busy = autoscaling.read_namespaced_horizontal_pod_autoscaler(name, namespace)
            # The load is many times the target: the HPA goes to its maximum, and every
            # replica comes up Ready with the load still on.
            wait_for(
                lambda: apps.get(name),
                lambda a: (
                    a["spec"]["replicas"] == MAX_REPLICAS
                    and a.get("status", {}).get("readyReplicas") == MAX_REPLICAS
                    and a["status"].get("replicas") == MAX_REPLICAS
                    and a["status"].get("observedGeneration") == a["metadata"]["generation"]
                ),
                timeout=120,
                what=f"{MAX_REPLICAS} replicas Ready",
            )
            ready_up = time.monotonic() - load_started
            peak = MAX_REPLICAS
            assert_scale_matches_pods(cluster, apps, name, selector, peak)
            # The new Pods take their share of the real requests too.
            replicas = {p.metadata.name for p in apps.live_pods(name)}
            wait_for(
                lambda: {pod for pod, n in load.report.answered_by.items() if n >= 5},
                lambda answered: replicas <= answered,
                timeout=60,
                what=f"each of {sorted(replicas)} answering requests",
            )
        load_report = load.report
        load_stopped = load.report.finished

        wait_for(
            lambda: apps.get(name),
            lambda a: a["spec"]["replicas"] == 1,
            timeout=240,
            what="the HPA to lower spec.replicas once the load stopped",
        )
        decided_down = time.monotonic() - load_stopped
        wait_for(
            lambda: (apps.get(name), apps.pods(name)),
            lambda seen: (
                seen[0].get("status", {}).get("replicas") == 1
                and seen[0]["status"].get("readyReplicas") == 1
                and len(seen[1]) == 1
            ),
            timeout=120,
            what="one Pod left, Ready",
        )
        settled_down = time.monotonic() - load_stopped
        assert_scale_matches_pods(cluster, apps, name, selector, 1)
    finally:
        watcher.stop.set()
        thread.join(5)

    # Throughout, in every state the app went through: the same selector, sane counts.
    assert watcher.samples, "no sample of the scale subresource"
    assert not watcher.errors, watcher.errors
    assert {s.selector for s in watcher.samples} == {selector}
    assert all(1 <= s.spec_replicas <= MAX_REPLICAS for s in watcher.samples)
    assert all(1 <= s.status_replicas <= MAX_REPLICAS for s in watcher.samples)
    assert max(s.spec_replicas for s in watcher.samples) == MAX_REPLICAS
    assert load_report.failed <= load_report.requests // 20, str(load_report)

    report = {
        "first pod metrics after (s)": round(first_metrics, 1),
        "load": str(load_report),
        "answered by": dict(load_report.answered_by),
        "hpa at scale-up": {
            "current metrics": [m.to_dict() for m in busy.status.current_metrics or []],
            "desired replicas": busy.status.desired_replicas,
        },
        "peak replicas": peak,
        "first raised to": scaled_app["spec"]["replicas"],
        "load start -> spec.replicas raised (s)": round(decided_up, 1),
        f"load start -> {MAX_REPLICAS} replicas Ready (s)": round(ready_up, 1),
        "load stop -> spec.replicas back to 1 (s)": round(decided_down, 1),
        "load stop -> one Pod left (s)": round(settled_down, 1),
        "scale samples": len(watcher.samples),
        "kubectl top (before the load)": top.strip(),
    }
    print("autoscaling report:\n" + json.dumps(report, indent=2))
    assert_second_reconcile_writes_nothing(apps, name, operator, audit, cluster)
    if cluster.run_dir is not None:
        (cluster.run_dir / "autoscaling-report.json").write_text(json.dumps(report, indent=2))
