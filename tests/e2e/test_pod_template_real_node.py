"""What real workloads need in the Pod template, judged by the real node's kubelet.

Each test runs apps on the local cluster's real node and reads the effect where it
happens: the process's UID inside the container, the owner of a mounted emptyDir, the
kubelet's container states, a request the preStop hook sends, the token file the kubelet
mounts, the node the scheduler chose, and Pod Security admission in namespaces that
enforce "restricted" or "baseline".
"""

from __future__ import annotations

import http.server
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from conftest import OperatorProcess, RealNode
from devcluster.images import NETSERVER_IMAGE, NETSERVER_ROOT_IMAGE
from devcluster.node import REAL_NODE_LABEL, REAL_NODE_TAINT
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.realnode import create_real_namespace
from kubetest.traffic import http_get

TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def netserver_app(name: str, replicas: int = 1, **spec: Any) -> dict[str, Any]:
    """An app whose container "web" runs netserver on 8080 (HTTP), as UID 65532."""
    body = app_manifest(name, replicas=replicas, **spec)
    container = body["spec"]["containers"][0]
    container.update(
        image=NETSERVER_IMAGE,
        args=["8080/tcp"],
        ports=[{"name": "http", "containerPort": 8080}],
    )
    container.pop("command", None)
    return body


def sidecar(name: str, port: int, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": NETSERVER_IMAGE,
        "args": [f"{port}/tcp"],
        "restartPolicy": "Always",
        "ports": [{"name": name, "containerPort": port}],
        **fields,
    }


@pytest.fixture
def namespace(
    core: client.CoreV1Api, real_node: RealNode, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The test's namespace (``apps``): its Pods run on the real node."""
    name = f"pt-{secrets.token_hex(4)}"
    create_real_namespace(core, name)
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def namespaces(core: client.CoreV1Api, real_node: RealNode) -> Iterator[list[str]]:
    """Namespaces made by the test (``make``), deleted after it."""
    made: list[str] = []
    yield made
    for name in made:
        core.delete_namespace(name, propagation_policy="Background")


def make_namespace(
    core: client.CoreV1Api, made: list[str], *, real: bool = True, enforce: str | None = None
) -> str:
    name = f"pt-{secrets.token_hex(4)}"
    if real:
        create_real_namespace(core, name)
    else:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    made.append(name)
    if enforce:
        label = {"pod-security.kubernetes.io/enforce": enforce}
        core.patch_namespace(name, {"metadata": {"labels": label}})
    return name


def apps_in(
    api: client.ApiClient, core: client.CoreV1Api, cluster: ClusterHandle, namespace: str
) -> Apps:
    return Apps(api, core, namespace, cluster)


def exec_in(
    cluster: ClusterHandle, apps: Apps, app: str, container: str, *command: str
) -> tuple[int, str]:
    pod = apps.live_pods(app)[0].metadata.name
    result = cluster.kubectl(
        "exec", "-n", apps.namespace, pod, "-c", container, "--", *command, check=False
    )
    return result.returncode, result.stdout.strip()


def test_root_only_with_the_explicit_opt_out_and_where_pod_security_allows_it(
    operator: OperatorProcess,
    api: client.ApiClient,
    core: client.CoreV1Api,
    cluster: ClusterHandle,
    namespaces: list[str],
) -> None:
    baseline = apps_in(api, core, cluster, make_namespace(core, namespaces, enforce="baseline"))
    restricted = apps_in(api, core, cluster, make_namespace(core, namespaces, enforce="restricted"))
    as_root = {"securityContext": {"runAsNonRoot": False}}

    # Under the default, an image whose user is root is refused by the kubelet.
    refused = netserver_app("root")
    refused["spec"]["containers"][0]["image"] = NETSERVER_ROOT_IMAGE
    baseline.create(refused)
    # With the opt-out, where the namespace's Pod Security level allows it, it runs.
    allowed = netserver_app("opted-out", **as_root)
    allowed["spec"]["containers"][0]["image"] = NETSERVER_ROOT_IMAGE
    baseline.create(allowed)
    # The default Pod passes "restricted"; the opt-out is refused where it is enforced.
    restricted.create(netserver_app("default"))
    restricted.create(netserver_app("opted-out", **as_root))

    ready = wait_for(
        lambda: baseline.condition("root", "Ready"),
        lambda c: c.get("reason") == "CreateContainerConfigError",
        timeout=120,
        what="the root image refused under runAsNonRoot",
    )
    assert "image will run as root" in ready["message"]
    status = baseline.wait_ready("opted-out", timeout=120)["status"]
    assert status["relaxedDefaults"] == "runAsNonRoot=false"
    assert exec_in(cluster, baseline, "opted-out", "web", "id", "-u") == (0, "0")
    restricted.wait_ready("default", timeout=120)
    assert exec_in(cluster, restricted, "default", "web", "id", "-u") == (0, "65532")
    degraded = wait_for(
        lambda: restricted.condition("opted-out", "Degraded"),
        lambda c: c.get("status") == "True",
        timeout=60,
        what="the opt-out refused by Pod Security restricted",
    )
    assert degraded["reason"] == "PodSecurityRejected"
    assert "runAsNonRoot != true" in degraded["message"]
    events = wait_for(
        lambda: [
            e
            for e in core.list_namespaced_event(
                baseline.namespace, field_selector="involvedObject.name=opted-out"
            ).items
            if e.reason == "DefaultsRelaxed"
        ],
        what="a DefaultsRelaxed event",
    )
    assert "runAsNonRoot=false" in events[0].message


def test_user_groups_and_fs_group_are_what_the_processes_and_volumes_get(
    operator: OperatorProcess, apps: Apps, cluster: ClusterHandle
) -> None:
    body = netserver_app(
        "ids",
        securityContext={
            "runAsUser": 1000,
            "runAsGroup": 3000,
            "fsGroup": 2000,
            "supplementalGroups": [4000],
        },
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    container = body["spec"]["containers"][0]
    container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    container["securityContext"] = {"readOnlyRootFilesystem": True}
    apps.create(body)
    apps.wait_ready("ids", timeout=120)

    assert exec_in(cluster, apps, "ids", "web", "id", "-u") == (0, "1000")
    assert exec_in(cluster, apps, "ids", "web", "id", "-g") == (0, "3000")
    code, groups = exec_in(cluster, apps, "ids", "web", "id", "-G")
    assert code == 0
    assert {"2000", "3000", "4000"} <= set(groups.split())
    assert exec_in(cluster, apps, "ids", "web", "stat", "-c", "%g", "/data") == (0, "2000")
    assert exec_in(cluster, apps, "ids", "web", "touch", "/data/written")[0] == 0
    assert exec_in(cluster, apps, "ids", "web", "touch", "/written")[0] != 0  # read-only root


def test_an_init_container_finishes_before_the_app_and_a_sidecar_serves_on_the_service(
    operator: OperatorProcess, apps: Apps, core: client.CoreV1Api
) -> None:
    migrate = {
        "name": "migrate",
        "image": NETSERVER_IMAGE,
        "command": ["/bin/sh", "-c", "sleep 2"],
    }
    body = netserver_app("layered", initContainers=[migrate, sidecar("proxy", 9090)])
    apps.create(body)
    status = apps.wait_ready("layered", timeout=120)["status"]

    pod = apps.live_pods("layered")[0]
    inits = {s.name: s for s in pod.status.init_container_statuses}
    finished = inits["migrate"].state.terminated
    assert finished is not None
    assert finished.exit_code == 0
    (web,) = pod.status.container_statuses
    assert web.state.running is not None
    assert finished.finished_at <= web.state.running.started_at  # the order, as observed
    assert inits["proxy"].started
    assert inits["proxy"].state.running is not None

    ports = {p["name"]: p for p in status["service"]["ports"]}
    assert ports["proxy"]["container"] == "proxy"
    assert ports["proxy"]["readyEndpoints"] == 1
    cluster_ip = status["service"]["clusterIP"]
    answer = wait_for(
        lambda: http_get(cluster_ip, 9090),
        lambda body: body.split()[1:2] == ["9090"],
        timeout=15,
        what="the sidecar's port through the Service",
    )
    assert answer.split()[0] == pod.metadata.name


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, float]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, time.monotonic()))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return


def test_pre_stop_runs_before_the_container_stops(
    operator: OperatorProcess, apps: Apps, real_node: RealNode
) -> None:
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Recorder)
    _Recorder.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        hook = f"/netserver get http://{real_node.address}:{port}/prestop/$(hostname); sleep 5"
        body = netserver_app("drained", terminationGracePeriodSeconds=20)
        body["spec"]["containers"][0]["lifecycle"] = {
            "preStop": {"exec": {"command": ["/bin/sh", "-c", hook]}}
        }
        apps.create(body)
        apps.wait_ready("drained", timeout=120)
        pod = apps.live_pods("drained")[0].metadata.name
        apps.core.delete_namespaced_pod(pod, apps.namespace)

        wait_for(lambda: _Recorder.seen, what="the preStop hook's request", timeout=30)
        assert _Recorder.seen[0][0] == f"/prestop/{pod}"
        # The hook is still sleeping: the container has not been stopped yet.
        state = apps.core.read_namespaced_pod(pod, apps.namespace).status.container_statuses[0]
        assert state.state.running is not None
    finally:
        server.shutdown()
        server.server_close()


def test_the_service_account_token_is_mounted_only_when_asked(
    operator: OperatorProcess, apps: Apps, cluster: ClusterHandle
) -> None:
    apps.create(netserver_app("tokenless"))
    apps.create(netserver_app("tokened", automountServiceAccountToken=True))
    apps.wait_ready("tokenless", timeout=120)
    status = apps.wait_ready("tokened", timeout=120)["status"]

    assert exec_in(cluster, apps, "tokenless", "web", "test", "-s", TOKEN)[0] != 0
    assert exec_in(cluster, apps, "tokened", "web", "test", "-s", TOKEN)[0] == 0
    assert status["relaxedDefaults"] == "automountServiceAccountToken=true"


def test_node_selector_and_a_toleration_choose_the_real_node_or_the_fake_ones(
    operator: OperatorProcess,
    api: client.ApiClient,
    core: client.CoreV1Api,
    cluster: ClusterHandle,
    real_node: RealNode,
    namespaces: list[str],
) -> None:
    # A namespace without the real node's defaults: Pods go wherever their spec says.
    plain = apps_in(api, core, cluster, make_namespace(core, namespaces, real=False))
    key, value = REAL_NODE_LABEL
    toleration = {"key": REAL_NODE_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}
    plain.create(netserver_app("real", nodeSelector={key: value}, tolerations=[toleration]))
    plain.create(netserver_app("fake", nodeSelector={"type": "kwok"}))
    plain.create(netserver_app("untolerated", nodeSelector={key: value}))

    plain.wait_ready("real", timeout=120)
    plain.wait_ready("fake", timeout=120)
    assert {p.spec.node_name for p in plain.live_pods("real")} == {real_node.name}
    fake_nodes = {p.spec.node_name for p in plain.live_pods("fake")}
    assert fake_nodes
    assert real_node.name not in fake_nodes
    cluster_ip = plain.get("real")["status"]["service"]["clusterIP"]
    wait_for(
        lambda: http_get(cluster_ip, 8080),
        lambda body: body.split()[1:2] == ["8080"],
        timeout=15,
        what="the app on the real node serving",
    )
    # Without the toleration the real node's taint keeps the Pod away: it stays Pending.
    pending = wait_for(
        lambda: plain.live_pods("untolerated"),
        lambda pods: bool(pods) and pods[0].status.phase == "Pending",
        what="the Pod without the toleration created",
    )
    assert pending[0].spec.node_name is None
