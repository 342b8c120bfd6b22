"""The demo: a local control plane, the CRD, the operator, one app, and drift put back.

    python -m devcluster.demo [--keep]

Everything it starts stops when it ends, unless --keep is given (then `devcluster down`
stops the control plane; the operator's pid is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .cluster import ClusterError, default_run_dir, down, up, wait_established

ROOT = Path.cwd()
SAMPLE = """\
apiVersion: exposedapp.dev/v1alpha1
kind: ExposedApp
metadata:
  name: web
spec:
  replicas: 3
  containers:
    - name: web
      image: nginx:1.27
      ports:
        - name: http
          containerPort: 8080
          servicePort: 80
    - name: metrics
      image: nginx/nginx-prometheus-exporter:1.3
      ports:
        - name: metrics
          containerPort: 9113
"""


def _banner(text: str) -> None:
    print(f"\n\033[1m=== {text}\033[0m", flush=True)


class Demo:
    def __init__(self, kubectl: str, kubeconfig: str) -> None:
        self.kubectl_binary = kubectl
        self.env = {**os.environ, "KUBECONFIG": kubeconfig}

    def kubectl(self, *args: str, show: bool = True, stdin: str | None = None) -> str:
        if show:
            print(f"$ kubectl {' '.join(args)}", flush=True)
        result = subprocess.run(
            [self.kubectl_binary, *args],
            env=self.env,
            input=stdin,
            text=True,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        if show:
            print(result.stdout, end="", flush=True)
        return result.stdout

    def wait_until(self, what: str, check: object, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(check) and check():
                return
            time.sleep(0.25)
        raise SystemExit(f"timed out waiting for {what}")

    def selector(self) -> dict[str, str]:
        out = self.kubectl("get", "service", "web", "-o", "jsonpath={.spec.selector}", show=False)
        return dict(json.loads(out or "{}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devcluster-demo", description=__doc__)
    parser.add_argument(
        "--keep", action="store_true", help="leave the cluster and operator running"
    )
    args = parser.parse_args(argv)
    run_dir = default_run_dir()
    _banner(
        "Starting a real Kubernetes control plane on 127.0.0.1 (etcd, apiserver, "
        "controller-manager, scheduler, kwok fake nodes)"
    )
    try:
        state = up(run_dir, attached=not args.keep)
    except ClusterError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    demo = Demo(state.binaries["kubectl"], state.kubeconfig)
    operator: subprocess.Popen[bytes] | None = None
    try:
        _banner("Installing the ExposedApp CRD")
        demo.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        wait_established(demo.kubectl_binary, state.kubeconfig, "exposedapps.exposedapp.dev")

        _banner("Running the operator: exposedapp run (log: " + str(run_dir / "operator.log") + ")")
        log = (run_dir / "operator.log").open("wb")
        operator = subprocess.Popen(
            [sys.executable, "-m", "exposedapp", "run", "--liveness", "http://127.0.0.1:0/healthz"],
            env=demo.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=args.keep,
        )
        log.close()

        _banner("Applying an ExposedApp: 2 containers sharing the Pod's ports, 3 replicas")
        print(SAMPLE)
        demo.kubectl("apply", "-f", "-", stdin=SAMPLE)
        demo.kubectl("wait", "--for=condition=Ready", "xapp/web", "--timeout=90s")
        demo.kubectl("get", "xapp")
        demo.kubectl("get", "xapp", "-o", "wide")
        demo.kubectl("get", "pods", "-l", "exposedapp.dev/app=web", "-o", "wide")
        demo.kubectl("get", "service", "web")
        demo.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web")
        demo.kubectl("get", "xapp", "web", "-o", "jsonpath={.status.service}")
        print()

        _banner("Scaling: kubectl scale xapp web --replicas=5")
        demo.kubectl("scale", "xapp", "web", "--replicas=5")
        demo.kubectl(
            "wait", "--for=jsonpath={.status.readyReplicas}=5", "xapp/web", "--timeout=60s"
        )
        demo.kubectl("get", "xapp")

        _banner("Drift: a hand-edited Service selector is put back")
        demo.kubectl(
            "patch",
            "service",
            "web",
            "--type=merge",
            "-p",
            '{"spec":{"selector":{"exposedapp.dev/app":"oops"}}}',
        )
        started = time.monotonic()
        demo.wait_until(
            "the selector to be restored",
            lambda: demo.selector().get("exposedapp.dev/app") == "web",
        )
        print(f"selector restored after {time.monotonic() - started:.2f}s: {demo.selector()}")
        demo.kubectl(
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=ExposedApp",
            "--sort-by=.metadata.creationTimestamp",
        )
        _banner("Done")
        if args.keep:
            print(
                f"Left running. export KUBECONFIG={state.kubeconfig}; operator pid "
                f"{operator.pid}; stop with: kill {operator.pid}; devcluster down"
            )
        return 0
    finally:
        if not args.keep:
            if operator is not None:
                operator.terminate()
                operator.wait(20)
            down(run_dir)


if __name__ == "__main__":
    sys.exit(main())
