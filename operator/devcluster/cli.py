"""`devcluster`: a real local Kubernetes control plane for the demo, the tests and the benchmark.

devcluster build     build (or find) the binaries; a second run builds nothing
devcluster up        start etcd, kube-apiserver, controller-manager, scheduler, kwok, and the
                     real node (containerd, kubelet, kube-proxy, CoreDNS) with
                     metrics-server (metrics.k8s.io, for HPAs); needs root
devcluster status    what runs, and whether the apiserver (and the metrics API) answers
devcluster env       print the KUBECONFIG export for a shell: eval "$(devcluster env)"
devcluster down      stop every process and free every port
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .binaries import TOOLS, BuildError, ensure_binaries, ensure_tool, kwok_stages_dir
from .cluster import (
    ClusterError,
    default_run_dir,
    down,
    read_state,
    real_node_wanted,
    status,
    up,
)

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="devcluster", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="where state, certificates and logs live "
        "(default $DEVCLUSTER_RUN_DIR or ./.run/devcluster)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build or find the binaries")
    build.add_argument(
        "--tool",
        action="append",
        default=[],
        choices=sorted(TOOLS),
        help="also build this development tool",
    )
    start = commands.add_parser("up", help="start the control plane (detached)")
    start.add_argument("--nodes", type=int, default=3, help="fake kwok nodes (default 3)")
    start.add_argument(
        "--no-real-node",
        dest="real_node",
        action="store_false",
        default=None,
        help="only fake nodes: no kubelet, no real containers (DEVCLUSTER_REAL_NODE=0 does "
        "the same, except in CI, which refuses it)",
    )
    commands.add_parser("status", help="print the state as JSON")
    commands.add_parser("env", help="print `export KUBECONFIG=...`")
    commands.add_parser("down", help="stop the control plane")
    args = parser.parse_args(argv)
    run_dir = (args.run_dir or default_run_dir()).resolve()
    try:
        if args.command == "build":
            started = time.monotonic()
            binaries = ensure_binaries(real_node=real_node_wanted())
            kwok_stages_dir()
            for tool in args.tool:
                binaries[tool] = ensure_tool(tool)
            for name, path in binaries.items():
                print(f"{name}: {path}")
            print(f"ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
        elif args.command == "up":
            state = up(run_dir, nodes=args.nodes, real_node=args.real_node)
            print(f"export KUBECONFIG={state.kubeconfig}")
        elif args.command == "status":
            report = status(run_dir)
            print(json.dumps(report, indent=2))
            return 0 if report.get("running") and report.get("apiserver_ready") else 1
        elif args.command == "env":
            recorded = read_state(run_dir)
            if recorded is None:
                print(
                    f"no control plane in {run_dir}; start one with `devcluster up`",
                    file=sys.stderr,
                )
                return 1
            print(f"export KUBECONFIG={recorded.kubeconfig}")
        elif args.command == "down":
            down(run_dir)
    except (BuildError, ClusterError) as error:
        print(f"devcluster: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
