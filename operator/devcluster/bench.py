"""Side-by-side benchmark: N ExposedApps under the operator vs N Deployment+Service pairs.

    python -m devcluster.bench --sizes 10,100,500 --replicas 2 --ports 2 --repeat 2

Same local control plane, same run. For each N and each round (order randomised), both
systems create N apps with the same Pod template and ports; one watcher on EndpointSlices
timestamps when every Service has R ready endpoints per port (and, for ExposedApps, when
each app is Ready at its current generation). Then every app gets a new port number and a
new label, and the same is timed again. The apiserver's audit log gives the requests per
app by client and verb. The operator's steady-state writes are counted over a quiet
period and over a restart. Results: a Markdown table and a PNG chart under bench-results/.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from .cluster import (
    ADMIN,
    OPERATOR,
    ClusterState,
    RawApi,
    die_with_parent,
    down,
    up,
    wait_established,
)

RESTART_SETTLE_SECONDS = 15  # after the last app's reconcile: late writes, the heap trim
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
ROOT = Path.cwd()


def _clk() -> float:
    return time.monotonic()


class Quiet(NamedTuple):
    writes: int  # during the quiet period
    tail_writes: int  # after the last round converged, before the quiet period
    tail_seconds: float


class Restart(NamedTuple):
    writes: int  # from the start until RESTART_SETTLE_SECONDS after every app reconciled
    seconds: float  # until every app was reconciled


@dataclass
class Round:
    system: str  # "operator" or "native"
    n: int
    create_seconds: float = 0.0
    update_seconds: float = 0.0
    per_app: list[float] = field(default_factory=list)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (client, verb)
    create_requests: Counter[tuple[str, str]] = field(default_factory=Counter)


class Api:
    """The benchmark's driver and watcher: plain JSON over the admin's client certificate.

    The official client would do, but its typed models cost more CPU than the code under
    test on a two-core machine; raw JSON keeps the measuring side light.
    """

    def __init__(self, state: ClusterState) -> None:
        pki = Path(state.run_dir) / "pki"
        self.raw = RawApi(
            state.server,
            pki / "ca.crt",
            pki / f"client-{ADMIN.user}.crt",
            pki / f"client-{ADMIN.user}.key",
        )

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        expect: tuple[int, ...] = (200, 201),
        content_type: str = "application/json",
    ) -> Any:
        code, answer = self.raw.request(method, path, body, content_type=content_type)
        if code not in expect:
            raise RuntimeError(f"{method} {path}: HTTP {code}: {answer}")
        return answer

    def namespace(self, name: str) -> None:
        self.call(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )


def _containers(ports: int, base: int, image: str = "bench:1") -> list[dict[str, Any]]:
    return [
        {
            "name": "app",
            "image": image,
            "ports": [{"name": f"p{i}", "containerPort": base + i} for i in range(ports)],
        }
    ]


def _exposed_app(name: str, replicas: int, ports: int, base: int, label: str) -> dict[str, Any]:
    return {
        "apiVersion": "exposedapp.dev/v1alpha1",
        "kind": "ExposedApp",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "podLabels": {"bench": label},
            "containers": _containers(ports, base),
        },
    }


def _native(name: str, replicas: int, ports: int, base: int, label: str) -> list[dict[str, Any]]:
    selector = {"app": name}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**selector, "bench": label}},
                "spec": {"containers": _containers(ports, base)},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": selector,
            "ports": [
                {"name": f"p{i}", "port": base + i, "targetPort": f"p{i}"} for i in range(ports)
            ],
        },
    }
    return [deployment, service]


def _parallel(work: Iterable[Callable[[], object]], threads: int = 16) -> None:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(job) for job in work]:
            future.result()


class Watcher:
    """One watch stream of a namespaced collection, kept as {name: object} in memory.

    Every event wakes the waiting side, which re-evaluates convergence and timestamps it
    with the event's arrival: no polling, no repeated lists loading the apiserver.
    """

    def __init__(self, api: Api, path: str, changed: threading.Condition) -> None:
        self.api, self.path, self.changed = api, path, changed
        self.objects: dict[str, dict[str, Any]] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"watch {path}")
        self.thread.start()

    def _run(self) -> None:
        version = ""
        while not self.stopped.is_set():
            try:
                version = self._follow(version)
            except (OSError, RuntimeError, ValueError):
                # 429 while a new CRD's storage initialises, a dropped stream, a bad line:
                # list again shortly.
                version = ""
                time.sleep(0.2)

    def _follow(self, version: str) -> str:
        """List if needed, then apply watch events until the stream ends; the last version."""
        if not version:
            listed = self.api.call("GET", self.path)
            with self.changed:
                self.objects = {o["metadata"]["name"]: o for o in listed.get("items") or []}
                self.changed.notify_all()
            version = listed["metadata"]["resourceVersion"]
        query = f"?watch=1&resourceVersion={version}&timeoutSeconds=300"
        for event in self.api.raw.stream(self.path + query):
            if self.stopped.is_set():
                return version
            body = event.get("object") or {}
            if event.get("type") == "ERROR":
                return ""  # expired: list again
            version = body["metadata"]["resourceVersion"]
            with self.changed:
                if event.get("type") == "DELETED":
                    self.objects.pop(body["metadata"]["name"], None)
                elif event.get("type") in ("ADDED", "MODIFIED"):
                    self.objects[body["metadata"]["name"]] = body
                self.changed.notify_all()
        return version

    def stop(self) -> None:
        self.stopped.set()


class Convergence:
    """Watches EndpointSlices (and ExposedApps) of a namespace until every app serves."""

    def __init__(self, api: Api, namespace: str, names: list[str], replicas: int, ports: int):
        self.names, self.replicas, self.ports = names, replicas, ports
        self.changed = threading.Condition()
        self.slices = Watcher(
            api, f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices", self.changed
        )
        self.apps = Watcher(
            api, f"/apis/exposedapp.dev/v1alpha1/namespaces/{namespace}/exposedapps", self.changed
        )
        self.namespace = namespace

    def stop(self) -> None:
        self.slices.stop()
        self.apps.stop()

    def _serving(self, base: int) -> set[str]:
        counts: dict[str, dict[tuple[str, int], int]] = {}
        for s in self.slices.objects.values():
            service = (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name", "")
            ready = sum(
                1 for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
            )
            for port in s.get("ports") or []:
                if ready:
                    key = (str(port.get("name")), int(port.get("port") or 0))
                    per = counts.setdefault(service, {})
                    per[key] = per.get(key, 0) + ready
        wanted = {(f"p{i}", base + i) for i in range(self.ports)}
        return {
            name
            for name, ports in counts.items()
            if set(ports) == wanted and all(v == self.replicas for v in ports.values())
        }

    def _ready_apps(self, base: int) -> set[str]:
        ready = set()
        for app in self.apps.objects.values():
            status = app.get("status") or {}
            condition: dict[str, Any] = next(
                (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {}
            )
            ports = (status.get("service") or {}).get("ports") or []
            if (
                condition.get("status") == "True"
                and status.get("observedGeneration") == app["metadata"]["generation"]
                and ports
                and ports[0].get("containerPort") == base
            ):
                ready.add(app["metadata"]["name"])
        return ready

    def wait(self, started: float, base: int, check_apps: bool, timeout: float) -> list[float]:
        done: dict[str, float] = {}
        deadline = started + timeout
        with self.changed:
            while len(done) < len(self.names):
                now = _clk()
                serving = self._serving(base)
                if check_apps:
                    serving &= self._ready_apps(base)
                for name in serving - set(done):
                    done[name] = now - started
                if len(done) == len(self.names):
                    break
                if now > deadline:
                    raise TimeoutError(
                        f"{self.namespace}: {len(done)} of {len(self.names)} converged "
                        f"in {timeout}s; watched {len(self.slices.objects)} EndpointSlices "
                        f"(serving: {sorted(self._serving(base))[:5]}), "
                        f"{len(self.apps.objects)} ExposedApps "
                        f"(ready: {sorted(self._ready_apps(base))[:5]})"
                    )
                # Evaluate at most ten times a second: a full pass over N Services per
                # event would cost the measuring side O(N) per event (O(N^2) in all).
                self.changed.wait(timeout=1.0)
                self.changed.release()
                try:
                    time.sleep(0.1)
                finally:
                    self.changed.acquire()
        return sorted(done[name] for name in self.names)


def _client_name(user: str) -> str:
    if user == OPERATOR.user:
        return "operator"
    if user.startswith("system:serviceaccount:kube-system:"):
        return user.rsplit(":", 1)[1]
    return user


def _flush_audit(api: Api, path: Path) -> int:
    """A marker request; once it is in the log, everything before it is too."""
    marker = f"bench-marker-{random.randrange(10**9)}"
    api.call("GET", f"/api/v1/namespaces/{marker}", expect=(404,))
    deadline = _clk() + 30
    while _clk() < deadline:
        with path.open() as handle:
            for index, line in enumerate(handle):
                if marker in line:
                    return index + 1
        time.sleep(0.2)
    raise TimeoutError("audit log did not flush")


def runtime_python(venv: Path) -> Path:
    """A Python with the operator's runtime dependencies only, as in its image.

    The development venv also holds the official Kubernetes client, which kopf imports
    whenever it is installed (about 11 MB more): measured from there, the operator's
    memory would not be the memory it has when deployed.
    """
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    lock = ROOT / "requirements.lock"
    if stamp.exists() and stamp.read_text() == lock.read_text():
        return python
    print(f"[bench] building the operator's runtime venv in {venv}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True)
    subprocess.run([*pip, "--no-deps", "--editable", str(ROOT)], check=True)  # the tree as it is
    stamp.write_text(lock.read_text())
    return python


class Operator:
    def __init__(
        self, state: ClusterState, log_dir: Path, python: Path, profile: Path | None = None
    ) -> None:
        self.state, self.log_dir, self.profile = state, log_dir, profile
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.metrics_port = 0

    def start(self) -> None:
        self.runs += 1
        with socket.socket() as probe:  # a free port for /metrics
            probe.bind(("127.0.0.1", 0))
            self.metrics_port = probe.getsockname()[1]
        log = (self.log_dir / f"operator-{self.runs}.log").open("wb")
        kubeconfig = Path(self.state.run_dir) / f"{OPERATOR.user}.kubeconfig"
        command = [
            str(self.python),
            "-m",
            "exposedapp",
            "run",
            "--liveness",
            "http://127.0.0.1:0/healthz",
            "--metrics-port",
            str(self.metrics_port),
        ]
        if self.profile is not None:
            # Sampling profiler (py-spy, installed by hand): collapsed stacks for flame graphs.
            command = [
                "py-spy",
                "record",
                "--format",
                "raw",
                "--rate",
                "50",
                "--subprocesses",
                "-o",
                f"{self.profile}.{self.runs}",
                "--",
                *command,
            ]
        self.process = subprocess.Popen(
            command,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # never outlives the benchmark, even on kill -9
        )
        log.close()

    def stop(self) -> None:
        if self.process is not None:
            # py-spy (when profiling) forwards nothing: signal the whole process group.
            with contextlib.suppress(ProcessLookupError):
                # py-spy writes its profile on SIGINT; kopf stops cleanly on either.
                os.killpg(self.process.pid, signal.SIGINT if self.profile else signal.SIGTERM)
            self.process.wait(30)

    def kill(self) -> None:
        """SIGKILL, as when its node dies: no clean-up (the traffic benchmark's restart)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def _samples(self) -> list[Sample]:
        """The samples of the operator's /metrics; empty while it is not serving."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return []
        return [s for family in text_string_to_metric_families(text) for s in family.samples]

    def apps_reconciled(self) -> int:
        """Apps reconciled at least once by this process (its exposedapp_apps gauge)."""
        return int(
            sum(
                s.value
                for s in self._samples()
                if s.name == "exposedapp_apps" and s.labels.get("condition") == "Ready"
            )
        )

    def writes(self) -> int:
        """Write requests the operator has made (its exposedapp_api_requests counter)."""
        return int(
            sum(
                s.value
                for s in self._samples()
                if s.name == "exposedapp_api_requests_total"
                and s.labels.get("verb") in ("POST", "PATCH", "PUT", "DELETE")
            )
        )

    def settle(self, quiet_for: float = 10, timeout: float = 300) -> tuple[int, float]:
        """Wait until the operator has written nothing for `quiet_for` seconds.

        A round ends when every app converged, but events (posted in the background) and
        the status of Pods still terminating may follow: that tail is reported, and the
        steady state is measured after it. Returns (writes in the tail, its seconds).
        """
        started = _clk()
        first = last = self.writes()
        changed = started
        while _clk() - changed < quiet_for and _clk() - started < timeout:
            time.sleep(0.5)
            now = self.writes()
            if now != last:
                last, changed = now, _clk()
        return last - first, changed - started

    def wait_reconciled(self, apps: int, timeout: float) -> float:
        """Seconds until every one of `apps` has been reconciled by this process."""
        started = _clk()
        while self.apps_reconciled() < apps:
            if _clk() - started > timeout:
                raise RuntimeError(f"the operator reconciled fewer than {apps} apps in {timeout}s")
            time.sleep(0.5)
        return _clk() - started

    def rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return _cpu_seconds(self.process.pid)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_round(
    api: Api,
    audit: Path,
    system: str,
    n: int,
    replicas: int,
    ports: int,
    tag: str,
    timeout: float,
    settle: Callable[[], object] | None = None,
) -> Round:
    """One round of one system. ``settle``: waits, after the update converged, until the
    system's controller has stopped writing (the operator deletes drained Pods after
    convergence, by design): its writes are counted up to then."""
    namespace = f"bench-{system}-{tag}"
    api.namespace(namespace)
    names = [f"app{i:04d}" for i in range(n)]
    result = Round(system, n)
    convergence = Convergence(api, namespace, names, replicas, ports)
    try:
        return _measure(
            api,
            audit,
            system,
            namespace,
            names,
            replicas,
            ports,
            timeout,
            convergence,
            result,
            settle,
        )
    finally:
        convergence.stop()


def _measure(
    api: Api,
    audit: Path,
    system: str,
    namespace: str,
    names: list[str],
    replicas: int,
    ports: int,
    timeout: float,
    convergence: Convergence,
    result: Round,
    settle: Callable[[], object] | None,
) -> Round:
    start_line = _flush_audit(api, audit)

    apps_path = f"/apis/exposedapp.dev/v1alpha1/namespaces/{namespace}/exposedapps"
    deployments_path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    services_path = f"/api/v1/namespaces/{namespace}/services"

    def create(name: str) -> Callable[[], object]:
        if system == "operator":
            body = _exposed_app(name, replicas, ports, 8000, "v1")
            return lambda: api.call("POST", apps_path, body)
        deployment, service = _native(name, replicas, ports, 8000, "v1")
        return lambda: (
            api.call("POST", deployments_path, deployment),
            api.call("POST", services_path, service),
        )

    started = _clk()
    result.per_app = _timed_while(
        lambda: convergence.wait(started, 8000, system == "operator", timeout),
        lambda: _parallel(create(name) for name in names),
    )
    result.create_seconds = result.per_app[-1]
    middle_line = _flush_audit(api, audit)
    result.create_requests = _audit_requests_between(audit, start_line, middle_line, namespace)

    merge = "application/merge-patch+json"

    def update(name: str) -> Callable[[], object]:
        if system == "operator":
            patch = {"spec": _exposed_app(name, replicas, ports, 9000, "v2")["spec"]}
            return lambda: api.call("PATCH", f"{apps_path}/{name}", patch, content_type=merge)
        deployment, service = _native(name, replicas, ports, 9000, "v2")
        return lambda: (
            api.call("PATCH", f"{deployments_path}/{name}", deployment, content_type=merge),
            api.call("PATCH", f"{services_path}/{name}", service, content_type=merge),
        )

    started = _clk()
    updated = _timed_while(
        lambda: convergence.wait(started, 9000, system == "operator", timeout),
        lambda: _parallel(update(name) for name in names),
    )
    result.update_seconds = updated[-1]
    if settle is not None:
        settle()
    end_line = _flush_audit(api, audit)
    result.requests = _audit_requests_between(audit, start_line, end_line, namespace)
    return result


def _timed_while(wait: Callable[[], list[float]], drive: Callable[[], object]) -> list[float]:
    """Run `wait` (the convergence timestamps) while `drive` sends the requests.

    Waiting only once every request was sent timestamped every app that had converged
    meanwhile with the moment the last request went out: with 500 Deployment+Service
    pairs, whose Service creates take the client a minute, every native app got the same
    time, and the per-app percentiles meant nothing.
    """
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="convergence") as pool:
        timestamps = pool.submit(wait)
        drive()
        return timestamps.result()


def _audit_requests_between(
    path: Path, start: int, end: int, namespace: str
) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    with path.open() as handle:
        for index, line in enumerate(handle):
            if index < start or index >= end:
                continue
            event = json.loads(line)
            if (event.get("objectRef") or {}).get("namespace") != namespace:
                continue
            user = _client_name(event.get("user", {}).get("username", ""))
            counts[(user, event.get("verb", ""))] += 1
    return counts


PODS_PER_NODE = 1000  # the fake nodes' capacity (devcluster.cluster._node)


def nodes_for(sizes: list[int], repeat: int, replicas: int) -> int:
    """Enough fake nodes for every Pod the run keeps, surge included, and a margin.

    Every round's apps stay (the quiet period and the restart are measured over all of
    them), so Pods add up across rounds; too few nodes leave the last rounds' Pods
    unschedulable, and the benchmark would time the scheduler's refusal, not a system.
    """
    apps = (sum(sizes) * repeat + 1) * 2  # both systems, the warm-up included
    peak_pods = apps * replicas + max(sizes) * replicas  # a round's rollout surges at most R
    return max(3, -(-peak_pods * 5 // 4 // PODS_PER_NODE))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--sizes", default="10,100,500")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--ports", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quiet-seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record the operator with py-spy into this file (collapsed stacks)",
    )
    args = parser.parse_args(argv)
    random.seed(args.seed)
    sizes = [int(s) for s in args.sizes.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = ROOT / ".run" / "bench"
    # The benchmark times the controllers on kwok's fake nodes: no real node.
    state = up(
        run_dir, attached=True, nodes=nodes_for(sizes, args.repeat, args.replicas), real_node=False
    )
    audit = Path(state.run_dir) / "audit.log"
    api = Api(state)
    subprocess.run(
        [
            state.binaries["kubectl"],
            "--kubeconfig",
            state.kubeconfig,
            "apply",
            "--server-side",
            "-f",
            str(ROOT / "crds"),
        ],
        check=True,
        capture_output=True,
    )
    wait_established(state.binaries["kubectl"], state.kubeconfig, "exposedapps.exposedapp.dev")
    operator = Operator(state, run_dir, runtime_python(run_dir / "runtime-venv"), args.profile)
    operator.start()
    # Warm both systems up (the operator's first lists, the controllers' informers) so the
    # first measured round does not pay for start-up.
    for system in ("operator", "native"):
        run_round(api, audit, system, 1, args.replicas, args.ports, "warmup", timeout=120)
    rounds: list[Round] = []
    resources: dict[int, dict[str, float]] = {}
    pids = dict(state.pids)
    try:
        for n in sizes:
            cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
            op_cpu_before = operator.cpu_seconds()
            for repeat in range(args.repeat):
                order = ["operator", "native"]
                random.shuffle(order)
                for system in order:
                    tag = f"n{n}-r{repeat}"
                    print(f"[bench] N={n} round {repeat + 1}/{args.repeat}: {system}", flush=True)
                    result = run_round(
                        api,
                        audit,
                        system,
                        n,
                        args.replicas,
                        args.ports,
                        tag,
                        timeout=max(120, n * 2.0),
                        settle=(
                            (lambda: operator.settle(quiet_for=5, timeout=120))
                            if system == "operator"
                            else None
                        ),
                    )
                    print(
                        f"[bench]   create {result.create_seconds:.1f}s, "
                        f"update {result.update_seconds:.1f}s",
                        flush=True,
                    )
                    rounds.append(result)
            resources[n] = {
                "operator_rss_mb": operator.rss_mb(),
                "operator_cpu_s": operator.cpu_seconds() - op_cpu_before,
                **{
                    f"{name}_cpu_s": _cpu_seconds(pid) - cpu_before[name]
                    for name, pid in pids.items()
                    if name in ("kube-apiserver", "etcd", "kube-controller-manager")
                },
            }
        total_apps = sum(n * args.repeat for n in sizes)
        tail = operator.settle()
        print(
            f"[bench] quiet period of {args.quiet_seconds:.0f}s over {total_apps} apps "
            f"(after a tail of {tail[0]} writes in {tail[1]:.1f}s)",
            flush=True,
        )
        start = _flush_audit(api, audit)
        time.sleep(args.quiet_seconds)  # the measurement itself is time-based: writes/minute
        end = _flush_audit(api, audit)
        quiet = _count(audit, start, end, "operator", WRITE_VERBS)
        print("[bench] restarting the operator over unchanged apps", flush=True)
        operator.stop()
        start = _flush_audit(api, audit)
        operator.start()
        # Every app held (the warm-up's included) reconciled by the new process, then a
        # settling window for anything those reconciles would still write.
        restart_seconds = operator.wait_reconciled(total_apps + 1, timeout=600)
        time.sleep(RESTART_SETTLE_SECONDS)
        end = _flush_audit(api, audit)
        restart = _count(audit, start, end, "operator", WRITE_VERBS)
        final_rss = operator.rss_mb()
    finally:
        operator.stop()
        down(run_dir)
    report = _report(
        rounds,
        resources,
        args,
        Quiet(quiet, *tail),
        Restart(restart, restart_seconds),
        final_rss,
        total_apps,
    )
    (args.out / "results.md").write_text(report)
    (args.out / "results.json").write_text(
        json.dumps(
            [
                {
                    "system": r.system,
                    "n": r.n,
                    "create_seconds": r.create_seconds,
                    "update_seconds": r.update_seconds,
                    "requests": {f"{c}/{v}": k for (c, v), k in r.requests.items()},
                    "create_requests": {f"{c}/{v}": k for (c, v), k in r.create_requests.items()},
                }
                for r in rounds
            ],
            indent=2,
        )
    )
    _chart(rounds, args.out / "convergence.png")
    print(report)
    return 0


def _count(path: Path, start: int, end: int, client: str, verbs: set[str]) -> int:
    counts: Counter[str] = Counter()
    with path.open() as handle:
        for index, line in enumerate(handle):
            if start <= index < end:
                event = json.loads(line)
                if (
                    _client_name(event.get("user", {}).get("username", "")) == client
                    and event.get("verb") in verbs
                ):
                    counts[event.get("verb")] += 1
    return sum(counts.values())


def _writes(requests: Counter[tuple[str, str]], clients: tuple[str, ...]) -> tuple[int, int]:
    writes = sum(k for (c, v), k in requests.items() if c in clients and v in WRITE_VERBS)
    reads = sum(k for (c, v), k in requests.items() if c in clients and v not in WRITE_VERBS)
    return writes, reads


def _report(
    rounds: list[Round],
    resources: dict[int, dict[str, float]],
    args: argparse.Namespace,
    quiet: Quiet,
    restart: Restart,
    final_rss: float,
    total_apps: int,
) -> str:
    floor = args.replicas + 3
    lines = [
        "| N | system | create p50 (s) | p90 | p99 | create total (s) | update total (s) | "
        "ratio op/native create | ratio update | writes/app create | writes/app create+update "
        "| reads/app |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    clients = {
        "operator": ("operator",),
        "native": ("deployment-controller", "replicaset-controller"),
    }
    for n in sorted({r.n for r in rounds}):
        medians: dict[str, tuple[float, float]] = {}
        for system in ("native", "operator"):
            mine = [r for r in rounds if r.n == n and r.system == system]
            per_app = [v for r in mine for v in r.per_app]
            create = statistics.median(r.create_seconds for r in mine)
            update = statistics.median(r.update_seconds for r in mine)
            medians[system] = (create, update)
            both = [_writes(r.requests, clients[system]) for r in mine]
            first = [_writes(r.create_requests, clients[system])[0] for r in mine]
            apps = n * len(mine)
            ratios = ("", "")
            if system == "operator":
                ratios = (
                    f"{create / medians['native'][0]:.2f}",
                    f"{update / medians['native'][1]:.2f}",
                )
            lines.append(
                f"| {n} | {system} | {_percentile(per_app, 0.5):.2f} | "
                f"{_percentile(per_app, 0.9):.2f} | {_percentile(per_app, 0.99):.2f} | "
                f"{create:.2f} | {update:.2f} | {ratios[0]} | {ratios[1]} | "
                f"{sum(first) / apps:.2f} | {sum(w for w, _ in both) / apps:.2f} | "
                f"{sum(r for _, r in both) / apps:.2f} |"
            )
    lines += [
        "",
        "| N | operator RSS (MB) | operator CPU (s) | apiserver CPU (s) | etcd CPU (s) | "
        "controller-manager CPU (s) |",
        "|---|---|---|---|---|---|",
    ]
    for n, used in sorted(resources.items()):
        lines.append(
            f"| {n} | {used['operator_rss_mb']:.0f} | {used['operator_cpu_s']:.1f} | "
            f"{used.get('kube-apiserver_cpu_s', 0):.1f} | {used.get('etcd_cpu_s', 0):.1f} | "
            f"{used.get('kube-controller-manager_cpu_s', 0):.1f} |"
        )
    lines += [
        "",
        f"- Operator writes during a {args.quiet_seconds:.0f}s quiet period over {total_apps} "
        f"apps: {quiet.writes} ({quiet.writes * 60 / args.quiet_seconds:.1f}/min); it began "
        f"once the operator had written nothing for 10s: the last round's tail was "
        f"{quiet.tail_writes} writes (events, Pods still terminating) over "
        f"{quiet.tail_seconds:.1f}s after it converged.",
        f"- Operator restarted over {total_apps} unchanged apps: every app reconciled "
        f"{restart.seconds:.1f}s after the start; writes until {RESTART_SETTLE_SECONDS}s "
        f"after that: {restart.writes}.",
        f"- Operator RSS at the end ({total_apps} apps, after the restart): {final_rss:.0f} MB.",
        f"- Floor of writes per new app: R Pod creates + 1 Service write + 1 status write + 1 "
        f"ControllerRevision (the rollout history) = {floor}. Each Pod the operator replaces "
        "or removes costs 2 writes, its drain (leaving the Service) and its delete, where a "
        "Deployment's ReplicaSet deletes it at once; the update round's floor is R Pod "
        "creates + 2R + 1 revision + 1 Service write + 1 status write = "
        f"{3 * args.replicas + 3}, and the operator's writes are counted until it has been "
        "quiet for 5 s after the round converged (its drained Pods go after convergence, by "
        "design). Operator writes include its events (one per "
        "reconcile that changed something). Native writes count the deployment and "
        "replicaset controllers only (the test client's own Deployment and Service writes are "
        "not counted on either side).",
        f"- R={args.replicas} replicas, P={args.ports} named ports, repeats={args.repeat}, "
        f"seed={args.seed}; convergence is timestamped by watch streams on EndpointSlices "
        "(and ExposedApps, which must also be Ready at their current generation).",
        "",
        f"Reproduce: `make bench BENCH_ARGS='--sizes {args.sizes} --replicas {args.replicas} "
        f"--ports {args.ports} --repeat {args.repeat} --quiet-seconds {args.quiet_seconds:g} "
        f"--seed {args.seed}'`",
    ]
    return "\n".join(lines) + "\n"


def _chart(rounds: list[Round], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, axis = plt.subplots(figsize=(7, 4))
    for system, marker in (("native", "o"), ("operator", "s")):
        sizes = sorted({r.n for r in rounds if r.system == system})
        medians = [
            statistics.median(r.create_seconds for r in rounds if r.system == system and r.n == n)
            for n in sizes
        ]
        axis.plot(sizes, medians, marker=marker, label=system)
    axis.set_xlabel("apps (N)")
    axis.set_ylabel("seconds until every Service has all ready endpoints")
    axis.set_xscale("log")
    axis.legend()
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
