"""Drain before delete (#17), judged by real requests on the real node.

A steady load of HTTP GETs, each on a new connection, goes at the same time through the
ClusterIP and through the NodePort on the node's address while the app scales 4 -> 1 and
while it rolls to a new image; the load goes on until the change has converged (every Pod
of the new template Ready, every other Pod gone, the EndpointSlices listing exactly those
Pods) and some more requests were answered. With the operator's default (drain on), not
one request may fail. A Deployment without a preStop hook is measured the same way for
comparison, and not judged: it drops requests when a Pod stops listening before
kube-proxy stops sending it new connections, but it may get lucky.

The full side-by-side measurement is `make bench-traffic` (devcluster.trafficbench), which
shares the apps, the changes and the convergence checks used here.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from conftest import OperatorProcess, RealNode
from devcluster.trafficbench import (
    REPLICAS,
    change,
    deployment,
    exposed_app,
    native_service,
    owner_unsettled,
    target,
    unsettled,
)
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps
from kubetest.traffic import LoadGenerator, LoadReport, http_get

ROOT = Path(__file__).resolve().parents[2]
RATE = 40  # requests per second per path: 80 in all, light on a two-core machine
SETTLE_REQUESTS = 60  # answered per path before the change, and again after convergence


@pytest.fixture
def namespace(real_namespace: str) -> str:
    """Every test of this module runs its Pods on the real node."""
    return real_namespace


class Traffic:
    """One app on the real node, its two paths, and the load through a change."""

    def __init__(
        self,
        core: client.CoreV1Api,
        namespace: str,
        name: str,
        selector: str,
        read_owner: Callable[[], dict[str, Any]],
        node_address: str,
    ) -> None:
        self.core, self.namespace, self.name, self.selector = core, namespace, name, selector
        self.discovery = client.DiscoveryV1Api(core.api_client)
        self.read_owner = read_owner
        self.node_address = node_address
        self.report: dict[str, Any] = {}

    def _plain(self, items: list[Any]) -> list[dict[str, Any]]:
        return [self.core.api_client.sanitize_for_serialization(i) for i in items]

    def pods(self) -> list[dict[str, Any]]:
        listed = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector)
        return self._plain(listed.items)

    def not_converged(self, want: int, old: frozenset[str]) -> str:
        """Why the change has not converged yet; "" once it has (see trafficbench)."""
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={self.name}"
        )
        return unsettled(self.pods(), self._plain(slices.items), want, old) or owner_unsettled(
            self.read_owner(), want
        )

    def wait_converged(self, want: int, old: frozenset[str] = frozenset()) -> None:
        wait_for(
            lambda: self.not_converged(want, old),
            lambda why: why == "",
            timeout=120,
            what=f"{self.name} converged to {want} Pods",
        )

    def paths(self) -> list[tuple[str, int]]:
        """The ClusterIP and the NodePort on the node's address, once both answer."""
        service = self.core.read_namespaced_service(self.name, self.namespace)
        paths = [
            (service.spec.cluster_ip, 80),
            (self.node_address, service.spec.ports[0].node_port),
        ]
        for host, port in paths:
            wait_for(
                lambda h=host, p=port: http_get(h, p, timeout=2),
                timeout=30,
                what=f"{host}:{port} answering",
            )
        return paths

    def measure(self, phase: str, make_change: Callable[[], object]) -> LoadReport:
        """The load through ``phase``'s change until it converged and more requests were
        answered; the reports of both paths, added up."""
        _, want = target(phase)
        # A rollout replaces every Pod; a scale-down keeps one of the Pods it started with.
        old = frozenset(p["metadata"]["uid"] for p in self.pods() if phase != "scale")
        loads = [
            LoadGenerator(host, port, workers=2, rate=RATE, max_seconds=240, timeout=2.0)
            for host, port in self.paths()
        ]
        with contextlib.ExitStack() as stack:
            for load in loads:
                stack.enter_context(load)
            self._wait_answered(loads, SETTLE_REQUESTS)
            make_change()
            self.wait_converged(want, old)
            self._wait_answered(loads, SETTLE_REQUESTS)
        total = LoadReport.combined(load.report for load in loads)
        assert total.requests > 0
        self.report[phase] = {
            "paths": {f"{load.host}:{load.port}": load.report.as_dict() for load in loads},
            "total": total.as_dict(),
        }
        return total

    @staticmethod
    def _wait_answered(loads: list[LoadGenerator], more: int) -> None:
        """Until each path has answered ``more`` more requests (the load runs meanwhile)."""
        goals = [sum(load.report.answered_by.values()) + more for load in loads]
        wait_for(
            lambda: [sum(load.report.answered_by.values()) for load in loads],
            lambda answered: all(a >= g for a, g in zip(answered, goals, strict=True)),
            timeout=60,
            what=f"{more} more answers on each path",
        )


def _write(cluster: ClusterHandle, system: str, report: dict[str, Any]) -> None:
    """The measurements, with every failure's time, beside the run's logs; and a summary."""
    out = (cluster.run_dir or ROOT / ".run") / f"drain-traffic-{system}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for phase, measured in report.items():
        total = measured["total"]
        print(
            f"{system}: {phase}: {total['failed']} of {total['requests']} requests failed "
            f"({total['by_kind'] or 'none'}) at {total['rate']} requests/s"
        )


def test_no_request_fails_while_the_operator_drains_pods(
    operator: OperatorProcess,
    apps: Apps,
    core: client.CoreV1Api,
    real_node: RealNode,
    cluster: ClusterHandle,
) -> None:
    apps.create(exposed_app("steady"))  # drain on: the default
    traffic = Traffic(
        core,
        apps.namespace,
        "steady",
        "exposedapp.dev/app=steady",
        lambda: apps.get("steady"),
        real_node.address,
    )
    traffic.wait_converged(REPLICAS)

    scaled = traffic.measure("scale", lambda: apps.patch("steady", change("scale", "drain")))
    apps.patch("steady", {"spec": {"replicas": REPLICAS}})
    traffic.wait_converged(REPLICAS)
    rolled = traffic.measure("image", lambda: apps.patch("steady", change("image", "drain")))
    _write(cluster, "exposedapp", traffic.report)

    assert (scaled.failed, rolled.failed) == (0, 0), (
        f"scale {REPLICAS} -> 1: {scaled}; rolling update: {rolled}; "
        f"failure times and the Pods that answered: {json.dumps(traffic.report)}"
    )


def test_a_deployment_without_a_prestop_hook_for_comparison(
    core: client.CoreV1Api, namespace: str, real_node: RealNode, cluster: ClusterHandle
) -> None:
    """Measured and printed, not judged: a plain Deployment may get lucky."""
    native = client.AppsV1Api(core.api_client)
    native.create_namespaced_deployment(namespace, deployment("native"))
    core.create_namespaced_service(namespace, native_service("native"))

    def read() -> dict[str, Any]:
        body = native.read_namespaced_deployment("native", namespace)
        return dict(core.api_client.sanitize_for_serialization(body))

    def patch(body: dict[str, Any]) -> Callable[[], object]:
        return lambda: native.patch_namespaced_deployment(
            "native", namespace, body, _content_type="application/merge-patch+json"
        )

    traffic = Traffic(core, namespace, "native", "app=native", read, real_node.address)
    traffic.wait_converged(REPLICAS)
    traffic.measure("scale", patch(change("scale", "deployment")))
    patch({"spec": {"replicas": REPLICAS}})()
    traffic.wait_converged(REPLICAS)
    traffic.measure("image", patch(change("image", "deployment")))
    _write(cluster, "deployment", traffic.report)
