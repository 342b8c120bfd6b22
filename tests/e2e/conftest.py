"""End-to-end fixtures: one real control plane per test session, a fresh namespace per test.

By default the session starts the local control plane (devcluster) attached to the test
process: however the run ends, even by SIGKILL, its processes die with it. With
EXPOSEDAPP_E2E_CLUSTER=existing the suite uses $KUBECONFIG (kind, k3d, a real cluster).
A control plane that cannot be had is an error, never a skip.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from devcluster.cluster import die_with_parent
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps
from kubetest.audit import AuditLog
from kubetest.realnode import create_real_namespace

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    mode = os.environ.get("EXPOSEDAPP_E2E_CLUSTER", "local")
    if mode == "existing":
        kubeconfig = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        if not kubeconfig.exists():
            pytest.fail(f"EXPOSEDAPP_E2E_CLUSTER=existing but no kubeconfig at {kubeconfig}")
        yield ClusterHandle(kubeconfig, ClusterHandle.find_kubectl(None), local=False)
        return
    if mode != "local":
        pytest.fail(f"EXPOSEDAPP_E2E_CLUSTER must be 'local' or 'existing', not {mode!r}")

    from devcluster.binaries import BuildError
    from devcluster.cluster import ClusterError, down, up

    run_dir = Path(os.environ.get("EXPOSEDAPP_E2E_RUN_DIR", ROOT / ".run" / "e2e"))
    try:
        state = up(run_dir, attached=True)
    except (BuildError, ClusterError) as error:
        pytest.fail(f"the local control plane could not start: {error}", pytrace=False)
    try:
        yield ClusterHandle(
            Path(state.kubeconfig),
            ClusterHandle.find_kubectl(Path(state.binaries["kubectl"])),
            local=True,
            run_dir=run_dir,
            audit_log=run_dir / "audit.log",
            operator_kubeconfig=run_dir / "devcluster-operator.kubeconfig",
            operator_user="devcluster-operator",
        )
    finally:
        down(run_dir)


@pytest.fixture(scope="session")
def api(cluster: ClusterHandle) -> client.ApiClient:
    """The official client: the test oracle, distinct from the operator's pykube-ng."""
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def kubectl(cluster: ClusterHandle) -> Callable[..., subprocess.CompletedProcess[str]]:
    return cluster.kubectl


@pytest.fixture(scope="session")
def crd(cluster: ClusterHandle) -> str:
    """Install the ExposedApp CRD from crds/ and wait until it is Established."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    name = "exposedapps.exposedapp.dev"
    cluster.wait_established(name)
    return name


@pytest.fixture
def namespace(core: client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[str]:
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"t-{stem}-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        what=f"the default ServiceAccount in {name}",
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@dataclass(frozen=True)
class RealNode:
    name: str
    address: str  # the node's InternalIP: NodePorts answer there and on 127.0.0.1


@pytest.fixture
def real_namespace(
    core: client.CoreV1Api, real_node: RealNode, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace whose Pods run on the real node (a module that needs it for all
    its tests overrides ``namespace`` with it)."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:36].strip("-")
    name = f"r-{stem}-{secrets.token_hex(3)}"
    create_real_namespace(core, name)
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="session")
def real_node(cluster: ClusterHandle) -> RealNode:
    """The local cluster's real node (kubelet, containerd, kube-proxy, CoreDNS).

    Outside CI, an explicit opt-out (DEVCLUSTER_REAL_NODE=0) or a cluster that is not the
    local one skips the real-traffic tests; in CI (CI=true) either is a failure, as is
    anything else without a real node.
    """
    from devcluster.cluster import read_state

    in_ci = os.environ.get("CI", "").lower() == "true"
    state = read_state(cluster.run_dir) if cluster.local else None
    if state is None or not state.real_node:
        why = (
            "the real-traffic tests run on the local cluster's real node and images"
            if not cluster.local
            else f"no real node in {cluster.run_dir} (DEVCLUSTER_REAL_NODE=0?)"
        )
        if in_ci or (cluster.local and state is None):
            pytest.fail(f"{why}: in CI the real-traffic tests must run, never skip")
        pytest.skip(why)
    return RealNode(state.real_node, state.node_ip)


def pods_of(core: client.CoreV1Api, namespace: str, selector: str) -> list[Any]:
    return list(core.list_namespaced_pod(namespace, label_selector=selector).items)


class OperatorProcess:
    """The real operator, `exposedapp run`, as a child process with its own log file."""

    def __init__(self, cluster: ClusterHandle, log_dir: Path) -> None:
        self.cluster = cluster
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.metrics_port = 0

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.operator_kubeconfig or self.cluster.kubeconfig

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self, *extra: str, env: dict[str, str] | None = None) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        self.metrics_port = _free_port()
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exposedapp",
                "run",
                "--verbose",
                "--liveness",
                f"http://127.0.0.1:{_free_port()}/healthz",
                "--metrics-port",
                str(self.metrics_port),
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # an interrupted test run leaves no operator behind
            env={
                **self.cluster.env(),
                "KUBECONFIG": str(self.kubeconfig),
                "EXPOSEDAPP_RESYNC_SECONDS": "30",
                **(env or {}),
            },
        )
        log.close()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def scrape(self, path: str = "/metrics") -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5
            ) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def operator_process(
    cluster: ClusterHandle, crd: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log_dir = (
        cluster.run_dir / "operator-logs"
        if cluster.run_dir
        else tmp_path_factory.mktemp("operator-logs")
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    process = OperatorProcess(cluster, log_dir)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def operator(operator_process: OperatorProcess) -> OperatorProcess:
    """The running operator; restarted if a previous test stopped or killed it."""
    if not operator_process.running():
        operator_process.start()
    return operator_process


@pytest.fixture(scope="session")
def audit(cluster: ClusterHandle, core: client.CoreV1Api) -> AuditLog:
    if cluster.audit_log is None:
        pytest.fail("write counting needs the local control plane's audit log")

    def probe(name: str) -> None:
        try:
            core.read_namespace(name)
        except client.ApiException as error:
            if error.status != 404:
                raise

    return AuditLog(cluster.audit_log, probe)


@pytest.fixture
def apps(
    api: client.ApiClient, core: client.CoreV1Api, namespace: str, cluster: ClusterHandle
) -> Apps:
    return Apps(api, core, namespace, cluster)


@pytest.fixture(autouse=True)
def _operator_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failed test that ran the operator shows the tail of its log."""
    yield
    report = getattr(request.node, "rep_call", None)
    process = request.node.funcargs.get("operator")
    if report is not None and report.failed and isinstance(process, OperatorProcess):
        print("---- operator log (tail) ----\n" + "\n".join(process.log().splitlines()[-80:]))
