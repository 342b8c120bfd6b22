"""metrics-server beside the real node: the resource metrics API (metrics.k8s.io).

The HorizontalPodAutoscaler controller (in kube-controller-manager) reads Pods' CPU and
memory from ``metrics.k8s.io``; metrics-server serves that API by scraping each kubelet's
``/metrics/resource``. It runs here as a host process, not a Pod (nothing can be pulled,
and a host process is owned by devcluster's start and stop like the others):

- it talks to the apiserver as its own user (``METRICS_SERVER_USER``, a client
  certificate of the cluster CA) and scrapes only the real node (``--node-selector``: the
  fake nodes' addresses lead nowhere), verifying the kubelet's serving certificate with the
  cluster CA;
- it serves on the node's address, with a certificate for
  ``metrics-server.kube-system.svc`` (the name the aggregator checks);
- the apiserver reaches it through the aggregation layer: an APIService
  ``v1beta1.metrics.k8s.io`` naming a selector-less Service whose EndpointSlice points at
  that address and port (``--enable-aggregator-routing`` dials the endpoint itself), and
  authenticates to it with the front proxy's client certificate (certs.py).
"""

from __future__ import annotations

import base64
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .node import REAL_NODE_LABEL, Api

__all__ = [
    "METRICS_API",
    "METRICS_SERVER_USER",
    "SERVICE_DNS_NAMES",
    "MetricsServerError",
    "MetricsServerSetup",
    "metrics_api_available",
    "metrics_server_args",
    "metrics_server_objects",
    "start_metrics_server",
]

METRICS_SERVER_USER = "devcluster:metrics-server"
METRICS_API = "v1beta1.metrics.k8s.io"
NAMESPACE = "kube-system"
SERVICE = "metrics-server"
SERVICE_DNS_NAMES = (
    f"{SERVICE}.{NAMESPACE}.svc",
    f"{SERVICE}.{NAMESPACE}.svc.cluster.local",
    "localhost",
)
# The shortest resolution metrics-server accepts: the HPA sees a change within ~2 of them
# (a CPU rate needs two samples).
METRIC_RESOLUTION = "10s"
KUBELET_REQUEST_TIMEOUT = "5s"
PORT_NAME = "https"
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "RoleBinding")


class MetricsServerError(RuntimeError):
    """metrics-server could not start or register; the message names the step and its log."""


class Launcher(Protocol):
    """What the control plane's launcher offers (cluster._Launcher)."""

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None: ...

    def wait_ready(self, name: str, ready: Callable[[], bool], timeout: float = 90) -> None: ...


@dataclass(frozen=True)
class MetricsServerSetup:
    """Everything metrics-server is started and registered with."""

    binary: Path
    kubeconfig: Path  # METRICS_SERVER_USER's
    ca_cert: Path  # the cluster CA: kubelets' serving certificates, the APIService's caBundle
    serving: tuple[Path, Path]  # cert and key for SERVICE_DNS_NAMES and the node address
    node_ip: str
    port: int
    cert_dir: Path


def metrics_server_args(setup: MetricsServerSetup) -> list[str]:
    """metrics-server's command line."""
    cert, key = setup.serving
    return [
        str(setup.binary),
        f"--kubeconfig={setup.kubeconfig}",
        f"--authentication-kubeconfig={setup.kubeconfig}",
        f"--authorization-kubeconfig={setup.kubeconfig}",
        f"--bind-address={setup.node_ip}",
        f"--secure-port={setup.port}",
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        f"--cert-dir={setup.cert_dir}",
        # Only the real node has a kubelet; kwok's fake nodes carry made-up addresses.
        "--node-selector=" + "=".join(REAL_NODE_LABEL),
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        f"--kubelet-certificate-authority={setup.ca_cert}",
        f"--metric-resolution={METRIC_RESOLUTION}",
        # Must be shorter than the resolution; the kubelet is on this machine.
        f"--kubelet-request-timeout={KUBELET_REQUEST_TIMEOUT}",
        "--v=1",
    ]


def metrics_server_objects(
    node_ip: str, port: int, ca_bundle: bytes
) -> list[tuple[str, dict[str, Any]]]:
    """RBAC, the selector-less Service, its EndpointSlice and the APIService.

    Returns (collection path, object) pairs in the order they are created: the RBAC
    before metrics-server starts (it reads a ConfigMap at start-up), the rest once it
    answers, the APIService last, once what it names exists.
    """
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    user = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": METRICS_SERVER_USER}
    labels = {"app.kubernetes.io/name": "metrics-server", "app.kubernetes.io/part-of": "devcluster"}

    def meta(name: str, namespace: str | None = None) -> dict[str, Any]:
        return {
            "name": name,
            "labels": dict(labels),
            **({"namespace": namespace} if namespace else {}),
        }

    def cluster_role_binding(name: str, role: str) -> tuple[str, dict[str, Any]]:
        return (
            f"{rbac}/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": meta(name),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [user],
            },
        )

    return [
        (
            f"{rbac}/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                # Who may read the metrics: aggregated into view, edit and admin, as upstream.
                "metadata": {
                    "name": "system:aggregated-metrics-reader",
                    "labels": {
                        **labels,
                        "rbac.authorization.k8s.io/aggregate-to-view": "true",
                        "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                        "rbac.authorization.k8s.io/aggregate-to-admin": "true",
                    },
                },
                "rules": [
                    {
                        "apiGroups": ["metrics.k8s.io"],
                        "resources": ["pods", "nodes"],
                        "verbs": ["get", "list", "watch"],
                    }
                ],
            },
        ),
        (
            f"{rbac}/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": meta("system:metrics-server"),
                "rules": [
                    {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                    {
                        "apiGroups": [""],
                        "resources": ["pods", "nodes"],
                        "verbs": ["get", "list", "watch"],
                    },
                ],
            },
        ),
        cluster_role_binding("system:metrics-server", "system:metrics-server"),
        # Delegated authentication and authorization: TokenReviews, SubjectAccessReviews.
        cluster_role_binding("metrics-server:system:auth-delegator", "system:auth-delegator"),
        (
            f"{rbac}/namespaces/{NAMESPACE}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                # The front proxy's CA and allowed names, published by the apiserver.
                "metadata": meta("metrics-server-auth-reader", NAMESPACE),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "extension-apiserver-authentication-reader",
                },
                "subjects": [user],
            },
        ),
        (
            f"/api/v1/namespaces/{NAMESPACE}/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(SERVICE, NAMESPACE),
                # No selector: the one endpoint is the host process, listed by hand below.
                "spec": {
                    "ports": [
                        {"name": PORT_NAME, "port": 443, "targetPort": port, "protocol": "TCP"}
                    ]
                },
            },
        ),
        (
            f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices",
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": SERVICE,
                    "namespace": NAMESPACE,
                    "labels": {
                        **labels,
                        "kubernetes.io/service-name": SERVICE,
                        # Not the EndpointSlice controller's: it leaves this slice alone.
                        "endpointslice.kubernetes.io/managed-by": "devcluster.exposedapp.dev",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [node_ip], "conditions": {"ready": True}}],
                "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}],
            },
        ),
        (
            "/apis/apiregistration.k8s.io/v1/apiservices",
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": meta(METRICS_API),
                "spec": {
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    "service": {"name": SERVICE, "namespace": NAMESPACE, "port": 443},
                    "caBundle": base64.b64encode(ca_bundle).decode(),
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
        ),
    ]


def metrics_api_available(api: Api) -> bool:
    """Whether the aggregator reaches metrics-server (the APIService's Available condition)."""
    code, body = api.request("GET", f"/apis/apiregistration.k8s.io/v1/apiservices/{METRICS_API}")
    if code != 200:
        return False
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


def _live(setup: MetricsServerSetup) -> bool:
    context = ssl.create_default_context(cafile=str(setup.ca_cert))
    try:
        url = f"https://{setup.node_ip}:{setup.port}/livez"
        with urllib.request.urlopen(url, context=context, timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_metrics_server(
    launcher: Launcher, setup: MetricsServerSetup, api: Api, progress: Callable[[str], None]
) -> float:
    """Start metrics-server, register it, wait until the API is Available; return seconds.

    Metrics for a Pod come later: metrics-server needs two scrapes of the kubelet
    (``METRIC_RESOLUTION`` apart) before it has a CPU rate to serve.
    """
    started = time.monotonic()
    progress(f"starting metrics-server on {setup.node_ip}:{setup.port}")
    setup.cert_dir.mkdir(parents=True, exist_ok=True)
    objects = metrics_server_objects(setup.node_ip, setup.port, setup.ca_cert.read_bytes())
    # Its RBAC first: at start-up it reads the front proxy's CA from a ConfigMap in
    # kube-system, and exits if it may not.
    _create(api, [o for o in objects if o[1]["kind"] in RBAC_KINDS])
    launcher.start("metrics-server", metrics_server_args(setup))
    # Registered only once it answers: every failed availability check lengthens the
    # aggregator's back-off (exponential), and an early one costs seconds.
    launcher.wait_ready("metrics-server", lambda: _live(setup), timeout=60)
    _create(api, [o for o in objects if o[1]["kind"] not in RBAC_KINDS])
    launcher.wait_ready("metrics-server", lambda: metrics_api_available(api), timeout=60)
    return round(time.monotonic() - started, 2)


def _create(api: Api, objects: list[tuple[str, dict[str, Any]]]) -> None:
    for path, body in objects:
        code, answer = api.request("POST", path, body)
        if code == 409:  # left by an earlier start: make it say this port and address
            code, answer = api.request(
                "PATCH",
                f"{path}/{body['metadata']['name']}",
                body,
                content_type="application/merge-patch+json",
            )
        if code not in (200, 201):
            raise MetricsServerError(
                f"could not create {body['kind']} {body['metadata']['name']}: HTTP {code}: {answer}"
            )
