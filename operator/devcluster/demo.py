"""The demo: a local cluster, the CRD, the operator, one app serving real requests, drift put back.

The app runs on the real node (real containers from the local netserver image, which
answers "<pod> <port>"), and the demo ends with real HTTP responses through the Service:
to the cluster IP from this machine, and to the Service's DNS name from inside a Pod.

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
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .cluster import ClusterError, default_run_dir, down, up, wait_established
from .images import NETSERVER_IMAGE
from .node import REAL_NODE_NAMESPACE_ANNOTATIONS

ROOT = Path.cwd()
NAMESPACE = "demo"
# On a real cluster the images would be, for instance, nginxinc/nginx-unprivileged:1.27 and
# nginx/nginx-prometheus-exporter:1.3; here nothing can be pulled, so both containers run
# the local test server on the port they declare.
SAMPLE = f"""\
apiVersion: exposedapp.dev/v1alpha1
kind: ExposedApp
metadata:
  name: web
spec:
  replicas: 3
  containers:
    - name: web
      image: {NETSERVER_IMAGE}
      args: ["8080"]
      ports:
        - name: http
          containerPort: 8080
          servicePort: 80
      readinessProbe:
        httpGet: {{port: http, path: /}}
        periodSeconds: 1
    - name: metrics
      image: {NETSERVER_IMAGE}
      args: ["9113"]
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

    def get(self, *args: str) -> str:
        return self.kubectl("-n", NAMESPACE, *args, show=False).strip()

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
        out = self.get("get", "service", "web", "-o", "jsonpath={.spec.selector}")
        return dict(json.loads(out or "{}"))


def _with_namespace(kubeconfig: str, run_dir: Path) -> str:
    """A copy of the kubeconfig whose context defaults to the demo's namespace."""
    import yaml

    config = yaml.safe_load(Path(kubeconfig).read_text())
    for context in config["contexts"]:
        context["context"]["namespace"] = NAMESPACE
    path = run_dir / "demo.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return str(path)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as response:
        return str(response.read().decode().strip())


def _requests(demo: Demo) -> None:
    """GET the cluster IP from this machine and the DNS name from a Pod, and print both.

    kube-proxy programs a new Service a moment after its endpoints are published, so each
    request is retried for a few seconds before the demo gives up.
    """
    cluster_ip = demo.get("get", "xapp", "web", "-o", "jsonpath={.status.service.clusterIP}")
    dns_name = demo.get("get", "xapp", "web", "-o", "jsonpath={.status.service.dnsName}")
    pod = demo.get(
        "get", "pods", "-l", "exposedapp.dev/app=web", "-o", "jsonpath={.items[0].metadata.name}"
    )
    answers: dict[str, str] = {}

    def answered(label: str, request: Callable[[], str]) -> bool:
        try:
            answers[label] = request()
        except (OSError, SystemExit):
            return False
        return True

    from_host = f"http://{cluster_ip}/"
    demo.wait_until(
        f"an answer from {from_host}", lambda: answered(from_host, lambda: _get(from_host)), 15
    )
    print(f"$ curl {from_host}\n{answers[from_host]}")
    command = ("exec", pod, "-c", "web", "--", "/netserver", "get", f"http://{dns_name}/")
    from_pod = f"http://{dns_name}/ from Pod {pod}"
    demo.wait_until(
        f"an answer from {from_pod}", lambda: answered(from_pod, lambda: demo.get(*command)), 15
    )
    print(f"$ kubectl {' '.join(command)}\n{answers[from_pod]}")
    print('(each answer is "<Pod that served it> <container port>": Service port 80 reached 8080)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devcluster-demo", description=__doc__)
    parser.add_argument(
        "--keep", action="store_true", help="leave the cluster and operator running"
    )
    args = parser.parse_args(argv)
    run_dir = default_run_dir()
    _banner(
        "Starting a real Kubernetes control plane on 127.0.0.1 (etcd, apiserver, "
        "controller-manager, scheduler, kwok fake nodes) and a real node (containerd, "
        "kubelet, kube-proxy, CoreDNS)"
    )
    try:
        state = up(run_dir, attached=not args.keep, real_node=True)
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

        _banner(f"Namespace {NAMESPACE}: its Pods run on the real node")
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "annotations": REAL_NODE_NAMESPACE_ANNOTATIONS},
        }
        demo.kubectl("apply", "-f", "-", stdin=json.dumps(namespace))
        demo.env["KUBECONFIG"] = _with_namespace(state.kubeconfig, run_dir)

        _banner("Applying an ExposedApp: 2 containers sharing the Pod's ports, 3 replicas")
        print(SAMPLE)
        demo.kubectl("apply", "-f", "-", stdin=SAMPLE)
        demo.kubectl("wait", "--for=condition=Ready", "xapp/web", "--timeout=120s")
        demo.kubectl("get", "xapp")
        demo.kubectl("get", "xapp", "-o", "wide")
        demo.kubectl("get", "pods", "-l", "exposedapp.dev/app=web", "-o", "wide")
        demo.kubectl("get", "service", "web")
        demo.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web")
        demo.kubectl("get", "xapp", "web", "-o", "jsonpath={.status.service}")
        print()

        _banner("Real requests through the Service")
        _requests(demo)

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
