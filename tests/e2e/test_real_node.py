"""Real containers, real packets: the operator's promises judged by real requests.

Every app here runs on the local cluster's real node (a kubelet, containerd, kube-proxy in
iptables mode, CoreDNS). Requests go from the host (the node itself) to ClusterIPs and
NodePorts, and from a Pod by the Service's DNS name; the test server answers
"<pod> <port>", so each answer proves which container port the Service reached.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from conftest import OperatorProcess, RealNode
from devcluster.images import NETSERVER_ROOT_IMAGE
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.realnode import ClientPod, with_local_images
from kubetest.traffic import http_get, udp_echo

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "deploy" / "samples").glob("*.yaml"))


@pytest.fixture
def namespace(real_namespace: str) -> str:
    """Every test of this module runs its Pods on the real node."""
    return real_namespace


@pytest.fixture
def client_pod(cluster: ClusterHandle, core: client.CoreV1Api, namespace: str) -> ClientPod:
    return ClientPod(cluster, core, namespace)


def local_app(
    name: str, ports: list[dict[str, Any]], replicas: int = 2, **spec: Any
) -> dict[str, Any]:
    """An app whose one container runs netserver on each of ``ports``."""
    body = app_manifest(name, replicas=replicas, **spec)
    container = body["spec"]["containers"][0]
    container["ports"] = ports
    return with_local_images(body)


def service_of(core: client.CoreV1Api, namespace: str, name: str) -> Any:
    return core.read_namespaced_service(name, namespace)


def answers(body: str, port: int) -> bool:
    """The answer came from a netserver on container port ``port``."""
    parts = body.split()
    return len(parts) >= 2 and parts[1] == str(port)


def reaches(request: Callable[[], str], port: int, what: str) -> str:
    """Wait until ``request`` is answered by container port ``port``; return the answer.

    Ready in status means the EndpointSlices list the Pods; kube-proxy then needs a moment
    to program the node: a request may be refused for that long, never longer.
    """
    return wait_for(request, lambda body: answers(body, port), timeout=15, what=what)


def test_pods_reach_the_apiserver_and_kubectl_reaches_the_pods(
    core: client.CoreV1Api, client_pod: ClientPod, real_node: RealNode, cluster: ClusterHandle
) -> None:
    endpoints = client.DiscoveryV1Api(core.api_client).list_namespaced_endpoint_slice(
        "default", label_selector="kubernetes.io/service-name=kubernetes"
    )
    addresses = {a for s in endpoints.items for e in s.endpoints or [] for a in e.addresses}
    assert addresses == {real_node.address}
    # From inside a Pod, by the kubernetes Service's DNS name: a TCP connection opens.
    opened = client_pod.run(
        "sh", "-c", "nc -w 3 kubernetes.default.svc.cluster.local 443 </dev/null && echo open"
    )
    assert opened == "open"
    assert client_pod.run("id", "-u") == "65532"  # kubectl exec, through the kubelet
    logs = cluster.kubectl("logs", "-n", client_pod.namespace, client_pod.name)
    assert logs.returncode == 0  # kubectl logs, through the kubelet (pause prints nothing)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.stem)
def test_every_sample_answers_on_every_declared_port(
    sample: Path,
    operator: OperatorProcess,
    apps: Apps,
    core: client.CoreV1Api,
    client_pod: ClientPod,
    real_node: RealNode,
    cluster: ClusterHandle,
) -> None:
    documents = [with_local_images(d) for d in yaml.safe_load_all(sample.read_text()) if d]
    cluster.kubectl("apply", "-n", apps.namespace, "-f", "-", input=yaml.safe_dump_all(documents))
    app = next(d for d in documents if d["kind"] == "ExposedApp")
    name = app["metadata"]["name"]
    status = apps.wait_ready(name, timeout=120)["status"]
    service = service_of(core, apps.namespace, name)
    pod_ips = sorted(p.status.pod_ip for p in apps.live_pods(name))
    dns_name = status["service"]["dnsName"]
    assert dns_name == f"{name}.{apps.namespace}.svc.cluster.local"

    if app["spec"].get("service", {}).get("type") == "Headless":
        assert service.spec.cluster_ip == "None"
        wait_for(
            lambda: sorted(client_pod.run("/netserver", "lookup", dns_name).split()),
            lambda resolved: resolved == pod_ips,
            timeout=15,
            what=f"{dns_name} resolving to the Pods' addresses {pod_ips}",
        )
    for port in status["service"]["ports"]:
        container_port, service_port = port["containerPort"], port["port"]
        if port["protocol"] == "UDP":
            continue  # the samples are HTTP; UDP is tested below
        if service.spec.cluster_ip != "None":
            cluster_ip = service.spec.cluster_ip
            reaches(
                lambda ip=cluster_ip, p=service_port: http_get(ip, p),
                container_port,
                f"{cluster_ip}:{service_port} from the node",
            )
            url = f"http://{dns_name}:{service_port}/"
        else:
            url = f"http://{dns_name}:{container_port}/"
        reaches(
            lambda url=url: client_pod.run("/netserver", "get", url),
            container_port,
            f"{url} from a Pod",
        )
        if port.get("nodePort"):
            for address in (real_node.address, "127.0.0.1"):
                node_port = port["nodePort"]
                reaches(
                    lambda a=address, p=node_port: http_get(a, p),
                    container_port,
                    f"NodePort {address}:{node_port}",
                )
    first_pod = apps.live_pods(name)[0].metadata.name
    logs = cluster.kubectl(
        "logs", "-n", apps.namespace, first_pod, "-c", app["spec"]["containers"][0]["name"]
    )
    assert "serving" in logs.stdout


def test_tcp_and_udp_through_the_cluster_ip_the_node_port_and_dns(
    operator: OperatorProcess,
    apps: Apps,
    core: client.CoreV1Api,
    client_pod: ClientPod,
    real_node: RealNode,
) -> None:
    ports = [
        {"name": "http", "containerPort": 8080, "servicePort": 80},
        {"name": "echo", "containerPort": 8053, "servicePort": 53, "protocol": "UDP"},
    ]
    apps.create(local_app("both", ports, service={"type": "NodePort"}))
    status = apps.wait_ready("both", timeout=120)["status"]
    by_name = {p["name"]: p for p in status["service"]["ports"]}
    cluster_ip = status["service"]["clusterIP"]
    dns_name = status["service"]["dnsName"]

    reaches(lambda: http_get(cluster_ip, 80), 8080, "the cluster IP, TCP")
    reaches(lambda: udp_echo(cluster_ip, 53, "hello"), 8053, "the cluster IP, UDP")
    assert udp_echo(cluster_ip, 53, "hello").endswith("hello")
    udp_from_pod = ("/netserver", "udp", f"{dns_name}:53", "hi")
    reaches(lambda: client_pod.run(*udp_from_pod), 8053, "the DNS name from a Pod, UDP")
    http_from_pod = ("/netserver", "get", f"http://{dns_name}/")
    reaches(lambda: client_pod.run(*http_from_pod), 8080, "the DNS name from a Pod, TCP")
    tcp_port = by_name["http"]["nodePort"]
    for address in (real_node.address, "127.0.0.1"):
        reaches(
            lambda a=address, p=tcp_port: http_get(a, p), 8080, f"NodePort {address}:{tcp_port}"
        )
    udp_port = by_name["echo"]["nodePort"]
    address = real_node.address
    reaches(lambda: udp_echo(address, udp_port), 8053, f"UDP NodePort {address}:{udp_port}")


def test_a_readiness_probe_on_a_named_port_gates_the_endpoints(
    operator: OperatorProcess, apps: Apps
) -> None:
    ports = [
        {"name": "http", "containerPort": 8080, "servicePort": 80},
        {"name": "health", "containerPort": 8081, "expose": False},
    ]
    body = local_app("gated", ports, replicas=1)
    container = body["spec"]["containers"][0]
    container["args"] = ["8080"]  # nothing answers on the port the probe names
    container["readinessProbe"] = {"httpGet": {"port": "health", "path": "/"}, "periodSeconds": 1}
    apps.create(body)
    ready = wait_for(
        lambda: apps.condition("gated", "Ready"),
        lambda c: c.get("reason") == "ContainerNotReady",
        timeout=90,
        what="Ready False with ContainerNotReady",
    )
    assert "container web" in ready["message"]
    assert "readiness probe" in ready["message"]
    assert apps.ready_endpoints("gated").get("http", 0) == 0
    cluster_ip = apps.get("gated")["status"]["service"]["clusterIP"]
    with pytest.raises(ConnectionRefusedError):
        http_get(cluster_ip, 80, timeout=1)  # no ready endpoint: kube-proxy rejects

    apps.patch("gated", {"spec": {"containers": [{**container, "args": ["8080", "8081"]}]}})
    apps.wait_ready("gated", timeout=90)
    reaches(lambda: http_get(cluster_ip, 80), 8080, "the cluster IP once the probe passes")


WHY = {
    "root": (NETSERVER_ROOT_IMAGE, None, {"CreateContainerConfigError"}, "image will run as root"),
    "exits": (None, ["/bin/sh", "-c", "exit 1"], {"CrashLoopBackOff", "Error"}, ""),
    "missing": ("localhost/exposedapp/absent:1", None, {"ErrImagePull", "ImagePullBackOff"}, ""),
    # A Secret volume that does not exist: the kubelet says why only in events.
    "unmountable": (None, None, {"ContainerCreating"}, "kubectl describe pod"),
}


def test_the_kubelets_reason_reaches_status_and_one_event(
    operator: OperatorProcess, apps: Apps, core: client.CoreV1Api
) -> None:
    for name, (image, command, _, _) in WHY.items():
        body = local_app(name, [{"name": "http", "containerPort": 8080}], replicas=1)
        container = body["spec"]["containers"][0]
        if image:
            container["image"] = image
        if command:
            container["command"] = command
        if name == "unmountable":
            body["spec"]["volumes"] = [{"name": "tls", "secret": {"secretName": "absent"}}]
            container["volumeMounts"] = [{"name": "tls", "mountPath": "/tls"}]
        apps.create(body)
    for name, (_, _, reasons, text) in WHY.items():
        ready = _ready_with_reason(apps, name, reasons)
        pod = apps.live_pods(name)[0].metadata.name
        assert ready["status"] == "False"
        assert ready["message"].startswith(f"Pod {pod} container web: ")
        assert text in ready["message"]
        events = wait_for(
            lambda name=name, reasons=reasons: _warnings(core, apps.namespace, name, reasons),
            what=f"a Warning event for {name}",
        )
        assert f"Pod {pod} container web" in events[0].message
    # One event per cause: the root app's cause does not repeat while nothing changes.
    root_events = _warnings(core, apps.namespace, "root", {"CreateContainerConfigError"})
    assert len(root_events) == 1
    assert (root_events[0].count or 1) == 1


def _ready_with_reason(apps: Apps, name: str, reasons: set[str]) -> dict[str, Any]:
    return wait_for(
        lambda: apps.condition(name, "Ready"),
        lambda condition: condition.get("reason") in reasons,
        timeout=120,
        what=f"{name}: Ready False with one of {reasons}",
    )


def _warnings(core: client.CoreV1Api, namespace: str, name: str, reasons: set[str]) -> list[Any]:
    events = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name},type=Warning"
    ).items
    return [e for e in events if e.reason in reasons]


def test_failed_requests_while_the_app_changes_are_counted(
    operator: OperatorProcess, apps: Apps, cluster: ClusterHandle
) -> None:
    """Measured, written to the run directory (traffic-report.json), including the phases
    the judged test (test_drain_traffic.py: 0 failed requests) leaves out: a port renamed
    and renumbered at once (two rollout steps) and an operator SIGKILL mid-rollout."""
    from kubetest.traffic import LoadGenerator

    ports = [{"name": "http", "containerPort": 8080, "servicePort": 80}]
    body = local_app("steady", ports, replicas=4)
    body["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"port": "http", "path": "/"},
        "periodSeconds": 1,
    }
    body["spec"]["updateStrategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    apps.create(body)
    status = apps.wait_ready("steady", timeout=120)["status"]
    cluster_ip = status["service"]["clusterIP"]
    container = body["spec"]["containers"][0]
    report: dict[str, Any] = {}

    def measure(phase: str, change: Any) -> None:
        """Load through the change, until the app is Ready and no old Pod is left."""
        with LoadGenerator(cluster_ip, 80, rate=50, max_seconds=150) as load:
            change()
            ready = apps.wait_ready("steady", timeout=120)
            wait_for(
                lambda: len(apps.pods("steady")),
                lambda pods: pods == ready["spec"]["replicas"],
                timeout=60,
                what="every old Pod gone",
            )
        assert load.report.requests > 0
        report[phase] = {
            "requests": load.report.requests,
            "failed": load.report.failed,
            "by_kind": dict(load.report.failures),
            "per_10k": round(load.report.per_10k(), 1),
        }

    renumbered = {**container, "ports": [{**ports[0], "containerPort": 8081}], "args": ["8081/tcp"]}
    measure(
        "renumber 8080 -> 8081",
        lambda: apps.patch("steady", {"spec": {"containers": [renumbered]}}),
    )
    renamed = {
        **renumbered,
        "ports": [{**ports[0], "name": "web", "containerPort": 8082}],
        "args": ["8082/tcp"],
        "readinessProbe": {"httpGet": {"port": "web", "path": "/"}, "periodSeconds": 1},
    }
    measure(
        "rename and renumber http:8081 -> web:8082",
        lambda: apps.patch("steady", {"spec": {"containers": [renamed]}}),
    )
    measure("scale 4 -> 1", lambda: apps.patch("steady", {"spec": {"replicas": 1}}))
    apps.patch("steady", {"spec": {"replicas": 4}})
    apps.wait_ready("steady", timeout=120)
    env_change = {**renamed, "env": [{"name": "RELEASE", "value": "2"}]}
    measure("rolling update", lambda: apps.patch("steady", {"spec": {"containers": [env_change]}}))

    def kill_mid_rollout() -> None:
        apps.patch(
            "steady",
            {"spec": {"containers": [{**env_change, "env": [{"name": "RELEASE", "value": "3"}]}]}},
        )
        wait_for(
            lambda: apps.get("steady")["status"].get("updatedReplicas", 0),
            lambda n: n >= 1,
            what="the rollout under way",
        )
        operator.kill()
        operator.start()

    measure("operator SIGKILL mid-rollout", kill_mid_rollout)
    out = (cluster.run_dir or ROOT / ".run") / "traffic-report.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
