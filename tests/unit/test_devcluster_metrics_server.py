"""metrics-server beside the real node: its command line, its registration, the front proxy."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from devcluster import binaries
from devcluster.certs import FRONT_PROXY_CLIENT, write_pki
from devcluster.cluster import aggregation_flags
from devcluster.metricsserver import (
    METRICS_API,
    METRICS_SERVER_USER,
    MetricsServerError,
    MetricsServerSetup,
    metrics_server_args,
    metrics_server_objects,
    start_metrics_server,
)


def setup(tmp_path: Path) -> MetricsServerSetup:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n")
    return MetricsServerSetup(
        binary=Path("/cache/metrics-server-v0.8.0/metrics-server"),
        kubeconfig=Path("/run/metrics-server.kubeconfig"),
        ca_cert=ca,
        serving=(Path("/run/pki/ms.crt"), Path("/run/pki/ms.key")),
        node_ip="192.0.2.7",
        port=40123,
        cert_dir=tmp_path / "ms",
    )


def flags(argv: list[str]) -> dict[str, str]:
    return dict(a.removeprefix("--").partition("=")[::2] for a in argv[1:])


def test_metrics_server_scrapes_only_the_real_node_and_serves_on_its_address(
    tmp_path: Path,
) -> None:
    argv = metrics_server_args(setup(tmp_path))
    assert argv[0] == "/cache/metrics-server-v0.8.0/metrics-server"
    given = flags(argv)
    assert given["node-selector"] == "devcluster.exposedapp.dev/node=real"
    assert given["bind-address"] == "192.0.2.7"
    assert given["secure-port"] == "40123"
    assert given["tls-cert-file"] == "/run/pki/ms.crt"
    assert given["tls-private-key-file"] == "/run/pki/ms.key"
    # Its own identity towards the apiserver, for delegated authn/authz too.
    for name in ("kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig"):
        assert given[name] == "/run/metrics-server.kubeconfig"
    # The kubelet's serving certificate is checked against the cluster CA, not skipped.
    assert given["kubelet-certificate-authority"] == str(tmp_path / "ca.crt")
    assert "kubelet-insecure-tls" not in given
    assert given["kubelet-preferred-address-types"] == "InternalIP"
    assert "kubelet-use-node-status-port" in given  # the kubelet runs on a free port
    # metrics-server refuses a request timeout that is not shorter than the resolution.
    assert int(given["kubelet-request-timeout"].rstrip("s")) < int(
        given["metric-resolution"].rstrip("s")
    )


def by_kind(objects: list[tuple[str, dict[str, Any]]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(body["kind"], body["metadata"]["name"]): body for _, body in objects}


def test_the_metrics_api_is_registered_through_a_selectorless_service() -> None:
    objects = metrics_server_objects("192.0.2.7", 40123, b"CA PEM")
    found = by_kind(objects)
    assert objects[-1][1]["kind"] == "APIService"  # last: what it names exists by then
    api_service = found[("APIService", METRICS_API)]["spec"]
    assert api_service["group"] == "metrics.k8s.io"
    assert api_service["version"] == "v1beta1"
    assert base64.b64decode(api_service["caBundle"]) == b"CA PEM"
    reference = api_service["service"]
    service = found[("Service", reference["name"])]
    assert service["metadata"]["namespace"] == reference["namespace"] == "kube-system"
    assert "selector" not in service["spec"]
    (port,) = service["spec"]["ports"]
    assert port["port"] == reference["port"]
    endpoint_slice = found[("EndpointSlice", reference["name"])]
    assert (
        endpoint_slice["metadata"]["labels"]["kubernetes.io/service-name"]
        == service["metadata"]["name"]
    )
    # Aggregator routing picks the slice port by the Service port's name.
    assert endpoint_slice["ports"] == [{"name": port["name"], "port": 40123, "protocol": "TCP"}]
    assert endpoint_slice["endpoints"] == [
        {"addresses": ["192.0.2.7"], "conditions": {"ready": True}}
    ]
    for path, body in objects:
        namespace = body["metadata"].get("namespace")
        assert (f"/namespaces/{namespace}/" in path) == (namespace is not None), path


def test_metrics_server_gets_the_rbac_upstream_gives_it() -> None:
    found = by_kind(metrics_server_objects("192.0.2.7", 40123, b""))
    user = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": METRICS_SERVER_USER}
    bound = {
        body["roleRef"]["name"]: body
        for (kind, _), body in found.items()
        if kind in ("ClusterRoleBinding", "RoleBinding")
    }
    assert set(bound) == {
        "system:metrics-server",
        "system:auth-delegator",
        "extension-apiserver-authentication-reader",
    }
    assert all(body["subjects"] == [user] for body in bound.values())
    assert bound["extension-apiserver-authentication-reader"]["metadata"]["namespace"] == (
        "kube-system"
    )
    rules = found[("ClusterRole", "system:metrics-server")]["rules"]
    assert {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]} in rules
    reader = found[("ClusterRole", "system:aggregated-metrics-reader")]
    assert reader["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"


class FakeLauncher:
    def __init__(self) -> None:
        self.started: list[list[str]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.started.append(argv)

    def wait_ready(self, name: str, ready: object, timeout: float = 90) -> None:
        pass  # readiness is I/O: the e2e tests judge it


class FakeApi:
    def __init__(self, existing: set[str], refuse: str = "") -> None:
        self.existing, self.refuse = existing, refuse
        self.calls: list[tuple[str, str, str]] = []

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        self.calls.append((method, path, content_type))
        name = body["metadata"]["name"] if body else ""
        if name == self.refuse:
            return 422, "refused"
        if method == "POST" and name in self.existing:
            return 409, "exists"
        return (201 if method == "POST" else 200), body


def test_objects_left_by_an_earlier_start_are_brought_up_to_date(tmp_path: Path) -> None:
    launcher, api = FakeLauncher(), FakeApi(existing={"metrics-server"})
    start_metrics_server(launcher, setup(tmp_path), api, lambda _: None)
    assert launcher.started == [metrics_server_args(setup(tmp_path))]
    patched = [(path, kind) for method, path, kind in api.calls if method == "PATCH"]
    assert patched == [
        (
            "/api/v1/namespaces/kube-system/services/metrics-server",
            "application/merge-patch+json",
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/metrics-server",
            "application/merge-patch+json",
        ),
    ]


def test_a_refused_object_is_named(tmp_path: Path) -> None:
    with pytest.raises(MetricsServerError, match=f"APIService {METRICS_API}: HTTP 422"):
        start_metrics_server(
            FakeLauncher(), setup(tmp_path), FakeApi(set(), refuse=METRICS_API), lambda _: None
        )


def test_the_front_proxy_has_a_ca_of_its_own(tmp_path: Path) -> None:
    pki = write_pki(tmp_path, [], "10.96.0.1")
    given = flags(["kube-apiserver", *aggregation_flags(pki)])
    assert given["requestheader-client-ca-file"] == str(pki.front_proxy_ca)
    assert given["requestheader-allowed-names"] == FRONT_PROXY_CLIENT
    assert given["proxy-client-cert-file"] == str(pki.front_proxy_client[0])
    assert given["enable-aggregator-routing"] == "true"
    client = x509.load_pem_x509_certificate(pki.front_proxy_client[0].read_bytes())
    front_ca = x509.load_pem_x509_certificate(pki.front_proxy_ca.read_bytes())
    cluster_ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        FRONT_PROXY_CLIENT
    )
    client.verify_directly_issued_by(front_ca)
    # Not signed by the cluster CA: its clients cannot pose as the front proxy.
    assert front_ca.subject != cluster_ca.subject
    with pytest.raises(ValueError, match="does not match certificate issuer"):
        client.verify_directly_issued_by(cluster_ca)


def test_metrics_server_is_built_with_the_real_node_and_stamped_with_its_version() -> None:
    assert binaries.METRICS_SERVER in binaries.NODE
    assert binaries.METRICS_SERVER not in binaries.CONTROL_PLANE
    assert binaries.METRICS_SERVER.package("metrics-server") == (
        "sigs.k8s.io/metrics-server/cmd/metrics-server"
    )
    assert binaries.build_ldflags(binaries.METRICS_SERVER) == (
        "-s -w -X k8s.io/client-go/pkg/version.gitVersion=v0.8.0"
    )
    kubernetes = binaries.build_ldflags(binaries.KUBERNETES)
    assert "-X k8s.io/component-base/version.gitVersion=v1.36.3" in kubernetes
    assert "-X k8s.io/component-base/version.gitMinor=36" in kubernetes
    assert binaries.build_ldflags(binaries.COREDNS) == "-s -w"


def test_its_rbac_exists_before_it_starts_and_the_api_service_after_it_answers(
    tmp_path: Path,
) -> None:
    events: list[str] = []

    class Launcher(FakeLauncher):
        def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
            events.append("start")

        def wait_ready(self, name: str, ready: object, timeout: float = 90) -> None:
            events.append("ready")

    class Api(FakeApi):
        def request(
            self, method: str, path: str, body: Any = None, content_type: str = "application/json"
        ) -> tuple[int, Any]:
            events.append(body["kind"])
            return super().request(method, path, body, content_type)

    start_metrics_server(Launcher(), setup(tmp_path), Api(set()), lambda _: None)
    started = events.index("start")
    # metrics-server reads kube-system/extension-apiserver-authentication as it starts.
    assert set(events[:started]) == {"ClusterRole", "ClusterRoleBinding", "RoleBinding"}
    assert events[started + 1] == "ready"  # it answers before it is registered
    assert events[started + 2 :] == ["Service", "EndpointSlice", "APIService", "ready"]
