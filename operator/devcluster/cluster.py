"""Start, inspect and stop a real Kubernetes control plane on 127.0.0.1.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes) are
started in that order on free loopback ports, each waited for until ready; with the real
node come its processes (node.py) and metrics-server (metricsserver.py). Everything a
run needs lives in one run directory: certificates, kubeconfigs, logs, the audit log and a
state file that `down` and `status` read.

Processes started "attached" die with the process that started them (Linux parent-death
signal), so an interrupted or killed test run leaves nothing behind; "detached" ones (the
`devcluster up` command) live until `devcluster down`.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .binaries import (
    ETCD_VERSION,
    KUBERNETES_VERSION,
    KWOK_VERSION,
    METRICS_SERVER_VERSION,
    ensure_binaries,
    kwok_stages_dir,
)
from .certs import FRONT_PROXY_CLIENT, ClientIdentity, Pki, ServingIdentity, write_pki
from .host import MARKER, HostError, HostSnapshot, ensure_host_packages, node_ip, restore, snapshot
from .metricsserver import (
    METRICS_SERVER_USER,
    SERVICE_DNS_NAMES,
    MetricsServerError,
    MetricsServerSetup,
    metrics_api_available,
    start_metrics_server,
)
from .node import REAL_NODE_NAME, NodeError, NodeSetup, start_node

__all__ = [
    "ClusterError",
    "ClusterState",
    "RawApi",
    "default_run_dir",
    "down",
    "read_state",
    "real_node_wanted",
    "start_piece",
    "status",
    "stop_piece",
    "up",
]

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
ADMIN = ClientIdentity("devcluster-admin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("system:kube-controller-manager")
SCHEDULER = ClientIdentity("system:kube-scheduler")
KWOK_USER = ClientIdentity("devcluster-kwok", ("system:masters",))
# The operator under development gets its own name, so the audit log tells its requests
# from the tests' (and the benchmark counts them). RBAC-limited identities come from
# ServiceAccount tokens instead.
OPERATOR = ClientIdentity("devcluster-operator", ("system:masters",))
KUBELET = ClientIdentity(f"system:node:{REAL_NODE_NAME}", ("system:nodes",))
KUBE_PROXY = ClientIdentity("system:kube-proxy")
# The apiserver's identity towards kubelets (logs, exec, port-forward), bound to the
# built-in system:kubelet-api-admin role once the apiserver is up.
APISERVER_KUBELET_CLIENT = ClientIdentity("devcluster:apiserver-kubelet-client")
METRICS_SERVER = ClientIdentity(METRICS_SERVER_USER)
# Stopped first, before the machine is restored: the node's processes, and metrics-server,
# which scrapes the node and serves on its address.
NODE_PROCESSES = ("containerd", "kubelet", "kube-proxy", "metrics-server")
PROCESS_ORDER = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "containerd",
    "kubelet",
    "kube-proxy",
    "metrics-server",
)

Progress = Callable[[str], None]

# Children started by this process, kept so they are reaped (never zombies, never
# "still running" warnings) when `down` stops them from the same process.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ClusterError(RuntimeError):
    """The control plane could not start or be reached; the message names the piece."""


@dataclass
class ClusterState:
    run_dir: str
    kubeconfig: str
    server: str
    attached: bool
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    binaries: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    commands: dict[str, list[str]] = field(default_factory=dict)  # to restart a piece
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    real_node: str = ""  # the real node's name, "" without one
    node_ip: str = ""


def _say(message: str) -> None:
    print(f"[devcluster] {message}", file=sys.stderr, flush=True)


def default_run_dir() -> Path:
    return Path(os.environ.get("DEVCLUSTER_RUN_DIR", ".run/devcluster")).resolve()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def die_with_parent() -> None:
    # PR_SET_PDEATHSIG = 1: the kernel sends SIGKILL when the starting thread exits,
    # however it exits (even kill -9), so a test run never leaks a control plane.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def _kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str) -> dict[str, Any]:
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "devcluster",
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
            }
        ],
        "contexts": [
            {
                "name": "devcluster",
                "context": {"cluster": "devcluster", "user": user, "namespace": "default"},
            }
        ],
        "current-context": "devcluster",
    }


class RawApi:
    """Just enough of a client to bootstrap the cluster, with no third-party dependency."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path) -> None:
        self.server = server
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.load_cert_chain(str(cert), str(key))

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
                raw = response.read()
                code = response.status
        except urllib.error.HTTPError as error:
            raw, code = error.read(), error.code
        try:
            return code, json.loads(raw)
        except ValueError:
            return code, raw.decode(errors="replace")

    def stream(self, path: str) -> Iterator[dict[str, Any]]:
        """A watch: one JSON event per line, until the server ends the stream."""
        request = urllib.request.Request(self.server + path)
        with urllib.request.urlopen(request, context=self.context, timeout=330) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=3) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _insecure() -> ssl.SSLContext:
    # Health endpoints of the controller-manager and scheduler use self-signed certificates.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Launcher:
    def __init__(self, run_dir: Path, state: ClusterState, attached: bool) -> None:
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.state = state
        self.attached = attached
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.run_dir,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=die_with_parent if self.attached else None,
        )
        log.close()
        _CHILDREN[process.pid] = process
        self.processes[name] = process
        self.state.pids[name] = process.pid
        self.state.commands[name] = list(argv)
        self.state.environments[name] = dict(env or {})
        _write_state(self.state)

    def wait_ready(self, name: str, ready: Callable[[], bool], timeout: float = 90) -> None:
        started = time.monotonic()
        deadline = started + timeout
        process = self.processes[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ClusterError(self._died_message(name, process.returncode))
            if ready():
                self.state.timings[name] = round(time.monotonic() - started, 2)
                return
            time.sleep(0.2)
        raise ClusterError(
            f"{name} did not become ready within {timeout:.0f}s; its log: "
            f"{self.logs / (name + '.log')}\n{self.log_tail(name)}"
        )

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _died_message(self, name: str, code: int | None) -> str:
        tail = self.log_tail(name)
        hint = ""
        if "address already in use" in tail:
            hint = " A port it needs is taken by another process; run `devcluster down` or retry."
        return (
            f"{name} exited with code {code} during start-up.{hint} "
            f"Log: {self.logs / (name + '.log')}\n{tail}"
        )


def _state_path(run_dir: Path) -> Path:
    return run_dir / "state.json"


def _write_state(state: ClusterState) -> None:
    path = _state_path(Path(state.run_dir))
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(state), indent=2))
    temporary.replace(path)


def read_state(run_dir: Path | None = None) -> ClusterState | None:
    path = _state_path(run_dir or default_run_dir())
    if not path.exists():
        return None
    return ClusterState(**json.loads(path.read_text()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        # Node heartbeats are the fake nodes' noise, not anyone's work.
        {
            "level": "None",
            "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
            "namespaces": ["kube-node-lease"],
        },
        {"level": "Metadata"},
    ],
}


# kwok plays 4 Pod stages at a time by default: with a thousand Pods starting at once it
# becomes the bottleneck (Pods waited tens of seconds to become Ready in the benchmark),
# and the benchmark would time kwok instead of the controllers.
KWOK_CONFIGURATION = {
    "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
    "kind": "KwokConfiguration",
    # A configuration file replaces kwok's defaults instead of merging with them: every
    # option its controllers need is spelled out, at kwok's default but for the first.
    "options": {
        "podPlayStageParallelism": 16,
        "nodePlayStageParallelism": 4,
        "nodeLeaseParallelism": 4,
        "podsOnNodeSyncParallelism": 1,
        "enablePodsOnNodeSyncListPager": True,
        "enablePodsOnNodeSyncStreamWatch": False,
    },
}


def _node(name: str) -> dict[str, Any]:
    capacity = {"cpu": "64", "memory": "512Gi", "pods": "1000"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": capacity, "capacity": capacity},
    }


def real_node_wanted(real_node: bool | None = None) -> bool:
    """Whether to start the real node.

    An explicit ``real_node`` is obeyed (a second, node-less cluster next to the tests' own,
    the benchmark on fake nodes). None reads DEVCLUSTER_REAL_NODE (default on); that
    opt-out is refused in CI, where the real-traffic tests must run.
    """
    if real_node is not None:
        return real_node
    wanted = os.environ.get("DEVCLUSTER_REAL_NODE", "1").lower() not in ("0", "false", "no")
    if not wanted and os.environ.get("CI", "").lower() == "true":
        raise ClusterError(
            "DEVCLUSTER_REAL_NODE=0 is refused in CI: the real-traffic tests must run there"
        )
    return wanted


def _prepare_host(run_dir: Path, progress: Progress) -> str:
    """Check and install what the real node needs; clean up after a killed run; snapshot."""
    ensure_host_packages(progress)
    previous = HostSnapshot.load()
    if previous is not None:
        state = read_state(Path(previous.run_dir)) if previous.run_dir else None
        if state is not None and any(_alive(pid) for pid in state.pids.values()):
            raise ClusterError(
                f"a real node is already running from {previous.run_dir}; one machine runs one "
                "real node: stop it with `devcluster down` (or start with DEVCLUSTER_REAL_NODE=0)"
            )
        progress(f"cleaning up after a real node that was not stopped ({previous.run_dir})")
        left = restore(previous, progress)
        if left:
            raise ClusterError("could not undo a previous real node's changes: " + "; ".join(left))
    snapshot(run_dir).save()
    return node_ip()


def up(
    run_dir: Path | None = None,
    *,
    attached: bool = False,
    nodes: int = 3,
    real_node: bool | None = None,
    progress: Progress = _say,
) -> ClusterState:
    """Start the control plane (and the real node) and return its state once all is ready.

    ``real_node`` None reads DEVCLUSTER_REAL_NODE (default on). Raises ClusterError naming
    the piece that failed, BuildError when a binary cannot be had.
    """
    run_dir = (run_dir or default_run_dir()).resolve()
    existing = read_state(run_dir)
    if existing and any(_alive(pid) for pid in existing.pids.values()):
        raise ClusterError(
            f"a control plane is already running from {run_dir} "
            f"(pids {sorted(existing.pids.values())}); `devcluster down` stops it"
        )
    with_node = real_node_wanted(real_node)
    overall = time.monotonic()
    binaries = ensure_binaries(progress, real_node=with_node)
    stages = kwok_stages_dir(progress)
    for stale in ("etcd-data", "pki", "kwok-home", "node", "metrics-server"):
        if (run_dir / stale).exists():
            subprocess.run(["rm", "-rf", str(run_dir / stale)], check=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        address = _prepare_host(run_dir, progress) if with_node else ""
    except HostError as error:
        raise ClusterError(f"the real node cannot run on this machine: {error}") from error

    ports = {
        name: _free_port()
        for name in (
            "etcd",
            "etcd-peer",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            *(
                (
                    "kubelet",
                    "kubelet-healthz",
                    "kube-proxy-healthz",
                    "kube-proxy-metrics",
                    "metrics-server",
                )
                if with_node
                else ()
            ),
        )
    }
    server = f"https://127.0.0.1:{ports['kube-apiserver']}"
    state = ClusterState(
        run_dir=str(run_dir),
        kubeconfig=str(run_dir / "kubeconfig"),
        server=server,
        attached=attached,
        ports=ports,
        versions={
            "kubernetes": KUBERNETES_VERSION,
            "etcd": ETCD_VERSION,
            "kwok": KWOK_VERSION,
            **({"metrics-server": METRICS_SERVER_VERSION} if with_node else {}),
        },
        binaries={name: str(path) for name, path in binaries.items()},
        real_node=REAL_NODE_NAME if with_node else "",
        node_ip=address,
    )
    identities = [ADMIN, CONTROLLER_MANAGER, SCHEDULER, KWOK_USER, OPERATOR]
    if with_node:
        identities += [KUBELET, KUBE_PROXY, APISERVER_KUBELET_CLIENT, METRICS_SERVER]
    pki = write_pki(
        run_dir / "pki",
        identities,
        SERVICE_IP,
        apiserver_ips=(address,) if with_node else (),
        servers=(
            (
                ServingIdentity(
                    "kubelet-serving", (REAL_NODE_NAME, "localhost"), (address, "127.0.0.1")
                ),
                ServingIdentity(
                    "metrics-server-serving", SERVICE_DNS_NAMES, (address, "127.0.0.1")
                ),
            )
            if with_node
            else ()
        ),
    )
    kubeconfigs = {}
    for identity in identities:
        cert, key = pki.clients[identity.user]
        path = run_dir / (
            "kubeconfig" if identity is ADMIN else f"{identity.user.split(':')[-1]}.kubeconfig"
        )
        path.write_text(yaml.safe_dump(_kubeconfig(server, pki.ca_cert, cert, key, identity.user)))
        path.chmod(0o600)
        kubeconfigs[identity.user] = path
    (run_dir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
    for old_log in run_dir.glob("audit*.log"):  # a new cluster, a new log: marks are offsets
        old_log.unlink()
    stage_config = run_dir / "kwok-stages.yaml"
    documents = [p.read_text() for p in sorted(stages.glob("*.yaml"))]
    stage_config.write_text("\n---\n".join([*documents, yaml.safe_dump(KWOK_CONFIGURATION)]))

    launcher = _Launcher(run_dir, state, attached)
    try:
        _start_all(
            launcher, binaries, ports, pki, kubeconfigs, run_dir, stage_config, address, progress
        )
        admin_cert, admin_key = pki.clients[ADMIN.user]
        api = RawApi(server, pki.ca_cert, admin_cert, admin_key)
        started = time.monotonic()
        for index in range(nodes):
            name = f"kwok-node-{index}"
            code, body = api.request("POST", "/api/v1/nodes", _node(name))
            if code not in (201, 409):
                raise ClusterError(f"could not create fake node {name}: HTTP {code}: {body}")
            state.nodes.append(name)
        progress(f"waiting for {nodes} fake nodes to be Ready and the default ServiceAccount")
        launcher.wait_ready(
            "kwok",
            lambda: _nodes_ready(api, state.nodes) and _default_service_account(api),
            timeout=120,
        )
        state.timings["nodes-ready"] = round(time.monotonic() - started, 2)
        if with_node:
            _bind_apiserver_kubelet_client(api)
            setup = NodeSetup(
                run_dir=run_dir / "node",
                node_ip=address,
                ca_cert=pki.ca_cert,
                kubelet_kubeconfig=kubeconfigs[KUBELET.user],
                kube_proxy_kubeconfig=kubeconfigs[KUBE_PROXY.user],
                kubelet_serving=pki.servers["kubelet-serving"],
                ports=ports,
            )
            started = time.monotonic()
            node_timings = start_node(launcher, setup, binaries, api, progress)
            state.timings.update({f"node-{k}": v for k, v in node_timings.items()})
            state.timings["real-node"] = round(time.monotonic() - started, 2)
            state.nodes.append(REAL_NODE_NAME)
            state.timings["metrics-server"] = start_metrics_server(
                launcher,
                MetricsServerSetup(
                    binary=binaries["metrics-server"],
                    kubeconfig=kubeconfigs[METRICS_SERVER.user],
                    ca_cert=pki.ca_cert,
                    serving=pki.servers["metrics-server-serving"],
                    node_ip=address,
                    port=ports["metrics-server"],
                    cert_dir=run_dir / "metrics-server",
                ),
                api,
                progress,
            )
    except BaseException as error:
        _stop(state, progress)
        if isinstance(error, NodeError | MetricsServerError):
            raise ClusterError(str(error)) from error
        raise
    state.timings["total"] = round(time.monotonic() - overall, 2)
    _write_state(state)
    progress(
        f"cluster ready in {state.timings['total']:.1f}s at {server}"
        + (f" with the real node {REAL_NODE_NAME} ({address})" if with_node else "")
        + f"; export KUBECONFIG={state.kubeconfig}"
    )
    return state


def _bind_apiserver_kubelet_client(api: RawApi) -> None:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "devcluster:apiserver-kubelet-client"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:kubelet-api-admin",
        },
        "subjects": [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "User",
                "name": APISERVER_KUBELET_CLIENT.user,
            }
        ],
    }
    code, body = api.request(
        "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding
    )
    if code not in (201, 409):
        raise ClusterError(f"could not bind the apiserver's kubelet client: HTTP {code}: {body}")


def _start_all(
    launcher: _Launcher,
    binaries: dict[str, Path],
    ports: dict[str, int],
    pki: Any,
    kubeconfigs: dict[str, Path],
    run_dir: Path,
    stage_config: Path,
    address: str,
    progress: Progress,
) -> None:
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    progress(f"starting etcd on {etcd_url}")
    launcher.start(
        "etcd",
        [
            str(binaries["etcd"]),
            "--name=devcluster",
            f"--data-dir={run_dir / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=devcluster={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ],
    )
    launcher.wait_ready("etcd", lambda: _http_ok(etcd_url + "/health"))

    apiserver_port = ports["kube-apiserver"]
    progress(f"starting kube-apiserver on https://127.0.0.1:{apiserver_port}")
    launcher.start(
        "kube-apiserver",
        [
            str(binaries["kube-apiserver"]),
            f"--etcd-servers={etcd_url}",
            *_apiserver_address_flags(address, pki),
            *aggregation_flags(pki),
            f"--secure-port={apiserver_port}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_public}",
            f"--service-account-signing-key-file={pki.sa_private}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # Namespaces can send their Pods to the real node (node.py) by annotation.
            "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction",
            f"--cert-dir={run_dir / 'pki'}",
            f"--audit-policy-file={run_dir / 'audit-policy.yaml'}",
            f"--audit-log-path={run_dir / 'audit.log'}",
            "--audit-log-format=json",
            "--audit-log-mode=batch",
            "--audit-log-batch-max-wait=1s",
            # Never rotated (the default rotates at 100 MB): readers mark positions in it.
            "--audit-log-maxsize=100000",
            "--profiling=false",
            "--v=1",
        ],
    )
    admin_cert, admin_key = pki.clients[ADMIN.user]
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(admin_cert), str(admin_key))
    launcher.wait_ready(
        "kube-apiserver",
        lambda: _http_ok(f"https://127.0.0.1:{apiserver_port}/readyz", context),
        timeout=120,
    )

    for name, identity, extra in (
        (
            "kube-controller-manager",
            CONTROLLER_MANAGER,
            [
                f"--root-ca-file={pki.ca_cert}",
                f"--service-account-private-key-file={pki.sa_private}",
                "--use-service-account-credentials=true",
                "--controllers=*,-bootstrapsigner,-tokencleaner,-cloud-node-lifecycle",
                "--node-monitor-grace-period=40s",
                "--concurrent-service-endpoint-syncs=10",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
        ),
        ("kube-scheduler", SCHEDULER, ["--kube-api-qps=200", "--kube-api-burst=400"]),
    ):
        kubeconfig = kubeconfigs[identity.user]
        progress(f"starting {name}")
        launcher.start(
            name,
            [
                str(binaries[name]),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports[name]}",
                "--leader-elect=false",
                "--v=1",
                *extra,
            ],
        )
        launcher.wait_ready(
            name,
            lambda port=ports[name]: _http_ok(  # type: ignore[misc]
                f"https://127.0.0.1:{port}/healthz", _insecure()
            ),
        )

    progress("starting kwok (fake nodes)")
    kwok_home = run_dir / "kwok-home"
    kwok_home.mkdir(exist_ok=True)
    launcher.start(
        "kwok",
        [
            str(binaries["kwok"]),
            f"--kubeconfig={kubeconfigs[KWOK_USER.user]}",
            f"--config={stage_config}",
            # Only the fake nodes: the real node has a kubelet of its own.
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}",
            "--node-ip=10.0.0.1",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{ports['kwok']}",
        ],
        env={"HOME": str(kwok_home)},
    )


def aggregation_flags(pki: Pki) -> list[str]:
    """The aggregation layer: how the apiserver proxies to an extension API server
    (metrics-server), and how that server knows whom a proxied request is for.

    The front proxy's client certificate comes from a CA of its own, which the extension
    server (told through the kube-system/extension-apiserver-authentication ConfigMap)
    trusts to name the user in X-Remote-* headers. Aggregator routing dials the Service's
    endpoint itself rather than its ClusterIP.
    """
    cert, key = pki.front_proxy_client
    return [
        f"--requestheader-client-ca-file={pki.front_proxy_ca}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={cert}",
        f"--proxy-client-key-file={key}",
        "--enable-aggregator-routing=true",
    ]


def _apiserver_address_flags(address: str, pki: Any) -> list[str]:
    if not address:
        return ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"]
    cert, key = pki.clients[APISERVER_KUBELET_CLIENT.user]
    return [
        # Real Pods reach the apiserver through the `kubernetes` Service, whose endpoint is
        # the advertised address; a loopback one gets no endpoint. Clients on the machine
        # keep using 127.0.0.1.
        "--bind-address=0.0.0.0",
        f"--advertise-address={address}",
        # logs, exec and port-forward: dial the kubelet by address, as a known client.
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-client-certificate={cert}",
        f"--kubelet-client-key={key}",
        f"--kubelet-certificate-authority={pki.ca_cert}",
    ]


def _nodes_ready(api: RawApi, names: list[str]) -> bool:
    code, body = api.request("GET", "/api/v1/nodes")
    if code != 200:
        return False
    ready = set()
    for node in body.get("items", []):
        conditions = node.get("status", {}).get("conditions") or []
        taints = node.get("spec", {}).get("taints") or []
        is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        if is_ready and not any(t["key"].startswith("node.kubernetes.io/") for t in taints):
            ready.add(node["metadata"]["name"])
    return set(names) <= ready


def _default_service_account(api: RawApi) -> bool:
    code, _ = api.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
    return code == 200


def _stop(state: ClusterState, progress: Progress, timeout: float = 15) -> list[str]:
    """Stop every process (reverse start order); return the names that had to be killed.

    The real node goes first, its containers included: a Pod still watching the apiserver
    (CoreDNS) would hold its shutdown for the whole timeout.
    """
    killed = []
    node_first = [n for n in reversed(PROCESS_ORDER) if n in NODE_PROCESSES]
    rest = [n for n in reversed(PROCESS_ORDER) if n not in NODE_PROCESSES]
    for name in node_first:
        if not _stop_process(state, name, timeout):
            killed.append(name)
    if state.real_node:
        _restore_host(state, progress)
    for name in rest:
        if not _stop_process(state, name, timeout):
            killed.append(name)
    return killed


def _stop_process(state: ClusterState, name: str, timeout: float) -> bool:
    """SIGTERM the process group, SIGKILL after timeout; False if it had to be killed."""
    pid = state.pids.get(name)
    if pid is None or not _alive(pid):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    child = _CHILDREN.pop(pid, None)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        if child is not None:
            child.poll()
        time.sleep(0.1)
    graceful = not _alive(pid)
    if not graceful:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    if child is not None:
        child.wait()
    return graceful


def _restore_host(state: ClusterState, progress: Progress) -> None:
    """Undo the real node's changes to the machine; ClusterError names what could not be."""
    before = HostSnapshot.load()
    if before is None or Path(before.run_dir) != Path(state.run_dir):
        return
    left = restore(before, progress)
    if left:
        raise ClusterError(
            "the real node's changes to this machine could not all be undone: " + "; ".join(left)
        )
    MARKER.unlink(missing_ok=True)


def _readiness(state: ClusterState, name: str) -> Callable[[], bool]:
    run_dir = Path(state.run_dir)
    if name == "etcd":
        return lambda: _http_ok(f"http://127.0.0.1:{state.ports['etcd']}/health")
    if name == "kube-apiserver":
        pki = run_dir / "pki"
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(
            str(pki / f"client-{ADMIN.user}.crt"), str(pki / f"client-{ADMIN.user}.key")
        )
        return lambda: _http_ok(state.server + "/readyz", context)
    if name in ("kube-controller-manager", "kube-scheduler"):
        port = state.ports[name]
        return lambda: _http_ok(f"https://127.0.0.1:{port}/healthz", _insecure())
    return lambda: True


def stop_piece(run_dir: Path, name: str, *, kill: bool = False) -> None:
    """Stop one process of the control plane (for fault tests); SIGKILL if kill."""
    state = read_state(run_dir)
    if state is None or name not in state.pids:
        raise ClusterError(f"no {name} recorded in {run_dir}")
    pid = state.pids[name]
    child = _CHILDREN.pop(pid, None)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        if child is not None:
            child.poll()
        time.sleep(0.05)
    if child is not None:
        child.wait()


def start_piece(run_dir: Path, name: str, *, attached: bool = True, timeout: float = 120) -> None:
    """Start a stopped process again with the same command line, and wait until ready."""
    state = read_state(run_dir)
    if state is None or name not in state.commands:
        raise ClusterError(f"no {name} recorded in {run_dir}")
    launcher = _Launcher(Path(state.run_dir), state, attached)
    launcher.start(name, state.commands[name], env=state.environments.get(name) or None)
    launcher.wait_ready(name, _readiness(state, name), timeout=timeout)


def down(run_dir: Path | None = None, progress: Progress = _say) -> bool:
    """Stop the control plane of run_dir; True if one was running."""
    run_dir = (run_dir or default_run_dir()).resolve()
    state = read_state(run_dir)
    if state is None:
        progress(f"no control plane recorded in {run_dir}")
        return False
    killed = _stop(state, progress)
    busy = [f"{name}:{port}" for name, port in state.ports.items() if _port_taken(port)]
    _state_path(run_dir).unlink(missing_ok=True)
    if killed:
        progress(f"had to SIGKILL: {', '.join(killed)}")
    if busy:
        raise ClusterError(f"ports still in use after stopping: {', '.join(busy)}")
    progress(f"stopped; logs kept in {run_dir / 'logs'}")
    return True


def status(run_dir: Path | None = None) -> dict[str, Any]:
    """What is running from run_dir, and whether the apiserver answers."""
    run_dir = (run_dir or default_run_dir()).resolve()
    state = read_state(run_dir)
    if state is None:
        return {"running": False, "run_dir": str(run_dir)}
    processes = {name: {"pid": pid, "alive": _alive(pid)} for name, pid in state.pids.items()}
    ready = False
    metrics_api: bool | None = None  # None: no metrics-server in this cluster
    pki = run_dir / "pki"
    cert = pki / f"client-{ADMIN.user}.crt"
    if cert.exists():
        key = pki / f"client-{ADMIN.user}.key"
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(cert), str(key))
        ready = _http_ok(state.server + "/readyz", context)
        if "metrics-server" in state.pids:
            metrics_api = ready and metrics_api_available(
                RawApi(state.server, pki / "ca.crt", cert, key)
            )
    return {
        "running": all(p["alive"] for p in processes.values()),
        "apiserver_ready": ready,
        "metrics_api_available": metrics_api,
        "run_dir": str(run_dir),
        "server": state.server,
        "kubeconfig": state.kubeconfig,
        "processes": processes,
        "versions": state.versions,
        "timings": state.timings,
    }


def wait_established(kubectl: str, kubeconfig: str, *crds: str, timeout: float = 60) -> None:
    """Wait until each CRD is Established, by polling.

    Not `kubectl wait --for=condition=Established`: it fails outright ("accessor error")
    when it reads a CRD the apiserver has not given any condition yet.
    """
    deadline = time.monotonic() + timeout
    for crd in crds:
        while True:
            answer = subprocess.run(
                [
                    kubectl,
                    "--kubeconfig",
                    kubeconfig,
                    "get",
                    f"crd/{crd}",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type=='Established')].status}",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if answer.stdout.strip() == "True":
                break
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"CRD {crd} not Established after {timeout:.0f}s: "
                    f"{answer.stdout.strip() or answer.stderr.strip()}"
                )
            time.sleep(0.2)
