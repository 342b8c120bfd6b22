"""The real node's figures: start-up, Pod start latency, memory and CPU.

    python -m devcluster.nodebench [--pods 20]

Starts a local cluster with the real node (attached: it stops when this ends), then
measures one Pod alone and ``--pods`` Pods at once from create to Ready (netserver with a
readiness probe, period 1 s), and the resident memory and CPU of the node's processes
(kubelet, containerd, its shims, kube-proxy), idle and with the Pods running. Prints a
Markdown table; the README's figures come from it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .cluster import RawApi, down, up
from .images import NETSERVER_IMAGE
from .node import REAL_NODE_NAMESPACE_ANNOTATIONS

NODE_PROCESS_NAMES = ("kubelet", "containerd", "containerd-shim", "kube-proxy")
NAMESPACE = "nodebench"


def _node_processes() -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip().startswith(NODE_PROCESS_NAMES):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            continue
    return total / ticks


def _cost(seconds: float) -> tuple[float, float]:
    """(RSS MiB, percent of one core) of the node's processes over ``seconds``."""
    pids = _node_processes()
    before, started = _cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)  # a measurement window, not a wait for a condition
    pids = _node_processes()
    used = _cpu_seconds(pids) - before
    return _rss_mib(pids), 100 * used / (time.monotonic() - started)


def _pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "web",
                    "image": NETSERVER_IMAGE,
                    "args": ["8080"],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {
                        "httpGet": {"port": "http", "path": "/"},
                        "periodSeconds": 1,
                    },
                }
            ],
        },
    }


def _ready_seconds(api: RawApi, names: list[str], timeout: float = 120) -> list[float]:
    """Create the Pods at once; return each one's seconds from create to Ready."""
    created = {}
    for name in names:
        code, body = api.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", _pod(name))
        if code != 201:
            raise SystemExit(f"creating {name}: HTTP {code}: {body}")
        created[name] = time.monotonic()
    ready: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(ready) < len(names) and time.monotonic() < deadline:
        code, pods = api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods")
        for pod in pods.get("items", []) if code == 200 else []:
            name = pod["metadata"]["name"]
            conditions = pod.get("status", {}).get("conditions") or []
            if (
                name in created
                and name not in ready
                and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            ):
                ready[name] = time.monotonic() - created[name]
        time.sleep(0.1)
    if len(ready) < len(names):
        raise SystemExit(f"only {len(ready)} of {len(names)} Pods Ready after {timeout:.0f}s")
    return [ready[n] for n in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nodebench", description=__doc__)
    parser.add_argument("--pods", type=int, default=20)
    args = parser.parse_args(argv)
    run_dir = Path(tempfile.mkdtemp(prefix="nodebench-"))
    state = up(run_dir, attached=True, nodes=1, real_node=True)
    try:
        pki = run_dir / "pki"
        api = RawApi(
            state.server,
            pki / "ca.crt",
            pki / "client-devcluster-admin.crt",
            pki / "client-devcluster-admin.key",
        )
        namespace = {
            "metadata": {"name": NAMESPACE, "annotations": REAL_NODE_NAMESPACE_ANNOTATIONS}
        }
        api.request("POST", "/api/v1/namespaces", namespace)
        while (
            api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default")[0] != 200
        ):
            time.sleep(0.1)
        idle = _cost(20)
        one = _ready_seconds(api, ["single"])[0]
        many = _ready_seconds(api, [f"pod-{i}" for i in range(args.pods)])
        loaded = _cost(20)
        timings = state.timings
        rows = [
            (
                "node start-up: containerd + images / kubelet to Ready / kube-proxy / CoreDNS",
                f"{timings['node-containerd']:.1f} / {timings['node-kubelet']:.1f} / "
                f"{timings['node-kube-proxy']:.1f} / {timings['node-coredns']:.1f} s "
                f"(real node {timings['real-node']:.1f} s; whole cluster {timings['total']:.1f} s)",
            ),
            ("one Pod, create to Ready", f"{one:.2f} s"),
            (
                f"{args.pods} Pods at once, create to Ready",
                f"median {statistics.median(many):.1f} s, last {max(many):.1f} s",
            ),
            ("node processes idle: RSS, CPU", f"{idle[0]:.0f} MiB, {idle[1]:.1f} % of a core"),
            (
                f"node processes with {args.pods + 1} Pods: RSS, CPU",
                f"{loaded[0]:.0f} MiB, {loaded[1]:.1f} % of a core",
            ),
        ]
        print("| what | measured |\n|---|---|")
        for what, value in rows:
            print(f"| {what} | {value} |")
    finally:
        down(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
