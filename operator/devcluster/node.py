"""A real node beside the control plane: containerd, kubelet, kube-proxy, CNI and CoreDNS.

The node registers as ``REAL_NODE_NAME`` with the machine's own address, runs real
containers from images built locally (images.py) and carries real packets: the bridge
CNI plugin gives Pods addresses from ``NODE_POD_CIDR``, kube-proxy (iptables mode) turns
ClusterIPs and NodePorts into those addresses, and CoreDNS answers for
``<service>.<namespace>.svc.cluster.local``.

The node is tainted ``REAL_NODE_TAINT`` so that the scale tests and the benchmark keep to
kwok's fake nodes; a namespace created with ``REAL_NODE_NAMESPACE_ANNOTATIONS`` sends its
Pods to the real node (the apiserver's PodNodeSelector and PodTolerationRestriction
admission plugins add the node selector and the toleration), with no change to the Pods'
own spec.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from .host import CNI_BIN_DIR
from .images import (
    COREDNS_IMAGE,
    PAUSE_IMAGE,
    local_images,
    write_image_archive,
)

__all__ = [
    "CLUSTER_DOMAIN",
    "DNS_SERVICE_IP",
    "NODE_POD_CIDR",
    "REAL_NODE_LABEL",
    "REAL_NODE_NAME",
    "REAL_NODE_NAMESPACE_ANNOTATIONS",
    "REAL_NODE_TAINT",
    "NodeError",
    "NodeSetup",
    "dns_objects",
    "start_node",
]

REAL_NODE_NAME = "devcluster-real"
REAL_NODE_LABEL = ("devcluster.exposedapp.dev/node", "real")
REAL_NODE_TAINT = {
    "key": "devcluster.exposedapp.dev/real-node",
    "value": "true",
    "effect": "NoSchedule",
}
NODE_POD_CIDR = "10.245.0.0/24"
BRIDGE = "xapp0"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
DNS_PORT = 1053  # CoreDNS runs as non-root: an unprivileged port behind Service port 53
REAL_NODE_TOLERATION = {
    "key": REAL_NODE_TAINT["key"],
    "operator": "Exists",
    "effect": REAL_NODE_TAINT["effect"],
}
REAL_NODE_NAMESPACE_ANNOTATIONS = {
    "scheduler.alpha.kubernetes.io/node-selector": "=".join(REAL_NODE_LABEL),
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([REAL_NODE_TOLERATION]),
}


class NodeError(RuntimeError):
    """The real node could not start; the message names the piece and its log."""


class Launcher(Protocol):
    """What the control plane's launcher offers the node (cluster._Launcher)."""

    logs: Path

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None: ...

    def wait_ready(self, name: str, ready: Callable[[], bool], timeout: float = 90) -> None: ...


class Api(Protocol):
    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]: ...


@dataclass(frozen=True)
class NodeSetup:
    """Everything the node's processes are started with."""

    run_dir: Path  # <cluster run dir>/node
    node_ip: str
    ca_cert: Path
    kubelet_kubeconfig: Path
    kube_proxy_kubeconfig: Path
    kubelet_serving: tuple[Path, Path]
    ports: dict[str, int]  # kubelet, kubelet-healthz, kube-proxy-healthz, kube-proxy-metrics

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"


def _containerd_config(setup: NodeSetup) -> str:
    root = setup.run_dir / "containerd"
    return f"""version = 3
root = "{root / "root"}"
state = "{root / "state"}"

[grpc]
  address = "{setup.containerd_socket}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{PAUSE_IMAGE}"

[plugins.'io.containerd.cri.v1.runtime']
  # This machine has no CAP_SYS_RESOURCE, even as root: runc cannot lower a sandbox's
  # oom_score_adj below containerd's own.
  restrict_oom_score_adj = true
  # Network namespaces under the run directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{CNI_BIN_DIR}"]
    conf_dir = "{setup.run_dir / "cni"}"
    max_conf_num = 1
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
"""


def _cni_config(setup: NodeSetup) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "devcluster",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": NODE_POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(setup.run_dir / "cni-ipam"),
                },
            }
        ],
    }


def _kubelet_config(setup: NodeSetup) -> dict[str, Any]:
    cert, key = setup.kubelet_serving
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This machine runs cgroup v1 without systemd (kubelet 1.36 warns, KEP-5573).
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{setup.containerd_socket}",
        "address": setup.node_ip,
        "port": setup.ports["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": setup.ports["kubelet-healthz"],
        "tlsCertFile": str(cert),
        "tlsPrivateKeyFile": str(key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(setup.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [DNS_SERVICE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "podLogsDir": str(setup.run_dir / "pod-logs"),
        "registerWithTaints": [REAL_NODE_TAINT],
        # Local images cannot be pulled again: never collect them, never evict for disk.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        "maxPods": 110,
        "resolvConf": "/etc/resolv.conf",
    }


def _kube_proxy_config(setup: NodeSetup) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(setup.kube_proxy_kubeconfig)},
        # nftables mode cannot serve NodePorts on localhost.
        "mode": "iptables",
        "clusterCIDR": NODE_POD_CIDR,
        "hostnameOverride": REAL_NODE_NAME,
        "healthzBindAddress": f"127.0.0.1:{setup.ports['kube-proxy-healthz']}",
        "metricsBindAddress": f"127.0.0.1:{setup.ports['kube-proxy-metrics']}",
        "nodePortAddresses": ["127.0.0.0/8", f"{setup.node_ip}/32"],
        "iptables": {"localhostNodePorts": True, "minSyncPeriod": "0s"},
        # 0: leave the host's conntrack settings alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def _import_images(ctr: Path, setup: NodeSetup, binaries: dict[str, Path]) -> None:
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    archive = setup.run_dir / "images.tar"
    write_image_archive(local_images(busybox, binaries["netserver"], binaries["coredns"]), archive)
    done = subprocess.run(
        [
            str(ctr),
            "--address",
            str(setup.containerd_socket),
            "-n",
            "k8s.io",
            "images",
            "import",
            str(archive),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise NodeError(f"`ctr images import` failed ({done.returncode}): {done.stderr.strip()}")


def _socket_ready(path: Path) -> bool:
    return path.is_socket()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_node(
    launcher: Launcher,
    setup: NodeSetup,
    binaries: dict[str, Path],
    api: Api,
    progress: Callable[[str], None],
) -> dict[str, float]:
    """Start containerd, the kubelet, kube-proxy and CoreDNS; return timings in seconds."""
    timings: dict[str, float] = {}
    setup.run_dir.mkdir(parents=True, exist_ok=True)
    (setup.run_dir / "cni").mkdir(exist_ok=True)
    (setup.run_dir / "cni" / "10-devcluster.conflist").write_text(json.dumps(_cni_config(setup)))
    config = setup.run_dir / "containerd.toml"
    config.write_text(_containerd_config(setup))
    shim_path = str(binaries["containerd-shim-runc-v2"].parent)
    path = f"{shim_path}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    started = time.monotonic()
    progress("starting containerd (real node)")
    launcher.start(
        "containerd", [str(binaries["containerd"]), "--config", str(config)], env={"PATH": path}
    )
    launcher.wait_ready("containerd", lambda: _socket_ready(setup.containerd_socket), timeout=60)
    _import_images(binaries["ctr"], setup, binaries)
    timings["containerd"] = round(time.monotonic() - started, 2)

    kubelet_config = setup.run_dir / "kubelet.yaml"
    kubelet_config.write_text(yaml.safe_dump(_kubelet_config(setup)))
    started = time.monotonic()
    progress(f"starting the kubelet of {REAL_NODE_NAME} on {setup.node_ip}")
    launcher.start(
        "kubelet",
        [
            str(binaries["kubelet"]),
            f"--config={kubelet_config}",
            f"--kubeconfig={setup.kubelet_kubeconfig}",
            f"--hostname-override={REAL_NODE_NAME}",
            f"--node-ip={setup.node_ip}",
            f"--root-dir={setup.run_dir / 'kubelet'}",
            f"--cert-dir={setup.run_dir / 'kubelet-pki'}",
            "--node-labels=" + "=".join(REAL_NODE_LABEL) + ",type=real",
            "--v=1",
        ],
        env={"PATH": path},
    )
    launcher.wait_ready("kubelet", lambda: _node_ready(api), timeout=120)
    timings["kubelet"] = round(time.monotonic() - started, 2)

    proxy_config = setup.run_dir / "kube-proxy.yaml"
    proxy_config.write_text(yaml.safe_dump(_kube_proxy_config(setup)))
    started = time.monotonic()
    progress("starting kube-proxy (iptables mode)")
    launcher.start(
        "kube-proxy",
        [str(binaries["kube-proxy"]), f"--config={proxy_config}", "--v=1"],
        env={"PATH": path},
    )
    healthz = f"http://127.0.0.1:{setup.ports['kube-proxy-healthz']}/healthz"
    launcher.wait_ready("kube-proxy", lambda: _http_ok(healthz), timeout=60)
    timings["kube-proxy"] = round(time.monotonic() - started, 2)

    started = time.monotonic()
    progress("starting CoreDNS on the real node")
    for path_, body in dns_objects():
        code, answer = api.request("POST", path_, body)
        if code not in (201, 409):
            raise NodeError(
                f"could not create {body['kind']} {body['metadata']['name']}: HTTP {code}: {answer}"
            )
    _wait("CoreDNS ready behind the kube-dns Service", lambda: _dns_ready(api), api, 120)
    timings["coredns"] = round(time.monotonic() - started, 2)
    return timings


def _wait(what: str, ready: Callable[[], bool], api: Api, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    code, pods = api.request("GET", "/api/v1/namespaces/kube-system/pods")
    states = [
        (pod["metadata"]["name"], pod.get("status", {}).get("containerStatuses"))
        for pod in (pods.get("items", []) if code == 200 else [])
    ]
    raise NodeError(
        f"timed out after {timeout:.0f}s waiting for {what}; kube-system Pods: {states}"
    )


def _node_ready(api: Api) -> bool:
    code, node = api.request("GET", f"/api/v1/nodes/{REAL_NODE_NAME}")
    if code != 200:
        return False
    conditions = node.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _dns_ready(api: Api) -> bool:
    code, slices = api.request(
        "GET",
        "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices"
        "?labelSelector=kubernetes.io%2Fservice-name%3Dkube-dns",
    )
    if code != 200:
        return False
    return any(
        (endpoint.get("conditions") or {}).get("ready")
        for item in slices.get("items", [])
        for endpoint in item.get("endpoints") or []
    )


COREFILE = f""".:{DNS_PORT} {{
    errors
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""


def dns_objects() -> list[tuple[str, dict[str, Any]]]:
    """The cluster DNS: CoreDNS's RBAC, Corefile, Deployment and the kube-dns Service.

    Returns (collection path, object) pairs in the order they are created.
    """
    labels = {"k8s-app": "kube-dns"}
    meta = {"name": "coredns", "namespace": "kube-system", "labels": labels}
    return [
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "devcluster:coredns"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["services", "pods", "namespaces"],
                        "verbs": ["list", "watch"],
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["list", "watch"],
                    },
                ],
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "devcluster:coredns"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "devcluster:coredns",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}
                ],
            },
        ),
        (
            "/api/v1/namespaces/kube-system/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        ),
        (
            "/api/v1/namespaces/kube-system/configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": meta,
                "data": {"Corefile": COREFILE},
            },
        ),
        (
            "/apis/apps/v1/namespaces/kube-system/deployments",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": meta,
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "serviceAccountName": "coredns",
                            "dnsPolicy": "Default",
                            "nodeSelector": dict([REAL_NODE_LABEL]),
                            "tolerations": [REAL_NODE_TOLERATION],
                            "securityContext": {
                                "runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [
                                {
                                    "name": "coredns",
                                    "image": COREDNS_IMAGE,
                                    "imagePullPolicy": "Never",
                                    "args": ["-conf", "/etc/coredns/Corefile"],
                                    "ports": [
                                        {
                                            "name": "dns",
                                            "containerPort": DNS_PORT,
                                            "protocol": "UDP",
                                        },
                                        {
                                            "name": "dns-tcp",
                                            "containerPort": DNS_PORT,
                                            "protocol": "TCP",
                                        },
                                    ],
                                    "readinessProbe": {
                                        "httpGet": {"path": "/ready", "port": 8181},
                                        "periodSeconds": 1,
                                    },
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]},
                                        "readOnlyRootFilesystem": True,
                                    },
                                    "volumeMounts": [
                                        {"name": "config", "mountPath": "/etc/coredns"}
                                    ],
                                }
                            ],
                            "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                        },
                    },
                },
            },
        ),
        (
            "/api/v1/namespaces/kube-system/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
                "spec": {
                    "selector": labels,
                    "clusterIP": DNS_SERVICE_IP,
                    "ports": [
                        {"name": "dns", "port": 53, "targetPort": DNS_PORT, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "targetPort": DNS_PORT, "protocol": "TCP"},
                    ],
                },
            },
        ),
    ]
