"""Failed requests while apps change, with real traffic on the real node, side by side.

    python -m devcluster.trafficbench [--light] [--rate 150] [--phases scale,image,...]

Starts the local control plane with its real node (attached: everything stops when this
ends), the CRD and the operator (``python -m exposedapp run``, a process of its own), then
for each phase and each system creates a 4-replica app of the local test server (netserver,
readiness probe every second, a NodePort Service), and measures, under a steady load of
HTTP GETs (each on a new connection, a 2 s timeout) sent at the same time through the
ClusterIP and through the NodePort on the node's own address, the failed requests and the
connection resets while the change is made: a few seconds of load, the change, its
convergence (every Pod of the target template Ready, every other Pod gone, the
EndpointSlices listing exactly those Pods, ready; and the owner's status caught up), and
a few more seconds of load.

Systems: an ExposedApp with drain before delete (the default), the same with
``spec.drain.enabled: false``, and the equivalent Deployment + Service (same Pod, same
ports, RollingUpdate 25%/25%) without and with a ``preStop: {sleep: {seconds: 5}}`` hook;
on request (``--systems``), an ExposedApp whose drain has no delay (``delaySeconds: 0``),
which shows what the delay is for. Phases: scale 4 -> 1, an image rollout
(netserver:nonroot -> netserver:nonroot-2, a second local image: same binary, another
image config), a containerPort renumber 8080 -> 8081 under the same port name (the
Service keeps port 80 and its named targetPort), a Recreate rollout (the same image
change) and, for the operator only, a SIGKILL of the operator once the rollout's first
old Pod is leaving, started again at once.

Results: a Markdown table (phase x system: "failed/10k (resets/10k), N requests") and the
details (per path, failure kinds and times, a timeline of Pods and endpoints) in
bench-results/traffic/results.md and results.json. ``--light`` is the quick version for CI.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from prometheus_client.parser import text_string_to_metric_families

from .bench import Operator
from .cluster import ADMIN, ClusterState, RawApi, down, up, wait_established
from .images import NETSERVER_IMAGE, NETSERVER_NEXT_IMAGE
from .node import REAL_NODE_NAMESPACE_ANNOTATIONS
from .traffic import LoadGenerator, LoadReport, http_get

__all__ = [
    "PHASES",
    "REPLICAS",
    "SYSTEMS",
    "Tally",
    "Template",
    "change",
    "deployment",
    "exposed_app",
    "format_cell",
    "kube_proxy_lag",
    "main",
    "native_service",
    "owner_unsettled",
    "render_table",
    "sum_tallies",
    "target",
    "unsettled",
]

ROOT = Path.cwd()
REPLICAS = 4
PRESTOP_SECONDS = 5
SYSTEMS: Mapping[str, str] = {
    "drain": "ExposedApp, drain (default)",
    "nodrain": "ExposedApp, drain off",
    "deployment": "Deployment, no preStop",
    "prestop": f"Deployment, preStop sleep {PRESTOP_SECONDS}s",
    # Not in the default set: what bounds the drain (kube-proxy's lag behind the slices).
    "drain0": "ExposedApp, drain delay 0s",
}
OPERATOR_SYSTEMS = frozenset({"drain", "nodrain", "drain0"})
PHASES: Mapping[str, str] = {
    "scale": f"scale {REPLICAS} -> 1",
    "image": "image rollout",
    "port": "port renumber 8080 -> 8081",
    "recreate": "Recreate rollout",
    "sigkill": "operator SIGKILL mid-rollout",
}
ROLLOUTS = frozenset({"image", "port", "recreate", "sigkill"})
LIGHT = {
    "phases": "scale,image",
    "systems": "drain,deployment",
    "rate": 100.0,
    "before": 2.0,
    "after": 2.0,
}
FULL = {
    "phases": ",".join(PHASES),
    "systems": "drain,nodrain,deployment,prestop",
    "rate": 150.0,
    "before": 3.0,
    "after": 3.0,
}
APP_LABEL = "exposedapp.dev/app"  # the operator's (stable) app label, kept while draining
DRAIN_ANNOTATION = "exposedapp.dev/drain"
MERGE = "application/merge-patch+json"


# --- What runs: pure builders ------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """The part of the Pod template the phases change."""

    image: str = NETSERVER_IMAGE
    port: int = 8080


def container(template: Template, *, pre_stop: bool = False) -> dict[str, Any]:
    """netserver on one named port, with the readiness probe every phase relies on."""
    body: dict[str, Any] = {
        "name": "web",
        "image": template.image,
        "args": [f"{template.port}/tcp"],
        "ports": [{"name": "http", "containerPort": template.port, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 1},
    }
    if pre_stop:
        body["lifecycle"] = {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}}
    return body


def exposed_app(
    name: str,
    template: Template = Template(),
    *,
    drain: bool = True,
    drain_delay: int | None = None,
    recreate: bool = False,
) -> dict[str, Any]:
    app_container = container(template)
    app_container["ports"] = [{**app_container["ports"][0], "servicePort": 80}]
    spec: dict[str, Any] = {
        "replicas": REPLICAS,
        "containers": [app_container],
        "service": {"type": "NodePort"},
    }
    if not drain:
        spec["drain"] = {"enabled": False}
    elif drain_delay is not None:
        spec["drain"] = {"delaySeconds": drain_delay}
    if recreate:
        spec["updateStrategy"] = {"type": "Recreate"}
    return {
        "apiVersion": "exposedapp.dev/v1alpha1",
        "kind": "ExposedApp",
        "metadata": {"name": name},
        "spec": spec,
    }


def deployment(
    name: str, template: Template = Template(), *, pre_stop: bool = False, recreate: bool = False
) -> dict[str, Any]:
    """The Deployment an ExposedApp's Pods are equivalent to: the same Pod spec (the
    operator's restricted security context, no token, no service links), 25%/25%."""
    strategy: dict[str, Any] = (
        {"type": "Recreate"}
        if recreate
        else {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        }
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": pod_spec(template, pre_stop=pre_stop),
            },
        },
    }


def pod_spec(template: Template, *, pre_stop: bool = False) -> dict[str, Any]:
    web = container(template, pre_stop=pre_stop)
    web["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return {
        "containers": [web],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
    }


def native_service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": "NodePort",
            "selector": {"app": name},
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}],
        },
    }


def target(phase: str) -> tuple[Template, int]:
    """The template and the replicas a phase moves the app to."""
    if phase == "scale":
        return Template(), 1
    if phase == "port":
        return Template(port=8081), REPLICAS
    return Template(image=NETSERVER_NEXT_IMAGE), REPLICAS


def change(phase: str, system: str) -> dict[str, Any]:
    """The merge patch that makes the phase's change to the system's owner object."""
    template, replicas = target(phase)
    if phase == "scale":
        return {"spec": {"replicas": replicas}}
    if system in OPERATOR_SYSTEMS:
        return {"spec": {"containers": exposed_app("x", template)["spec"]["containers"]}}
    spec = pod_spec(template, pre_stop=system == "prestop")
    return {"spec": {"template": {"spec": {"containers": spec["containers"]}}}}


# --- When a change has converged: pure checks on plain objects ---------------------------


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def unsettled(
    pods: Sequence[Mapping[str, Any]],
    slices: Sequence[Mapping[str, Any]],
    want: int,
    old_uids: frozenset[str] = frozenset(),
) -> str:
    """Why the app has not converged yet; "" once it has.

    ``pods``: every Pod of the app (a draining one keeps the app's label, so it is here);
    converged means exactly ``want`` of them, none terminating, none of ``old_uids``, all
    Ready, and the EndpointSlices listing exactly their addresses, each ready.
    """
    names = [p["metadata"]["name"] for p in pods]
    leaving = [
        n for p, n in zip(pods, names, strict=True) if p["metadata"].get("deletionTimestamp")
    ]
    if leaving:
        return f"terminating: {', '.join(sorted(leaving))}"
    old = [n for p, n in zip(pods, names, strict=True) if p["metadata"].get("uid") in old_uids]
    if old:
        return f"old Pods left: {', '.join(sorted(old))}"
    if len(pods) != want:
        return f"{len(pods)} Pods, want {want}"
    unready = [n for p, n in zip(pods, names, strict=True) if not _ready(p)]
    if unready:
        return f"not Ready: {', '.join(sorted(unready))}"
    addresses = {str((p.get("status") or {}).get("podIP")) for p in pods}
    listed: dict[str, bool] = {}
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            ready = bool((endpoint.get("conditions") or {}).get("ready"))
            for address in endpoint.get("addresses") or []:
                listed[address] = listed.get(address, True) and ready
    if set(listed) != addresses:
        return f"EndpointSlices list {sorted(listed)}, the Pods are at {sorted(addresses)}"
    not_ready = sorted(a for a, ready in listed.items() if not ready)
    if not_ready:
        return f"endpoints not ready: {', '.join(not_ready)}"
    return ""


def owner_unsettled(owner: Mapping[str, Any], want: int) -> str:
    """Why the ExposedApp's or the Deployment's status has not caught up; "" once it has."""
    status = owner.get("status") or {}
    generation = owner["metadata"].get("generation")
    if status.get("observedGeneration") != generation:
        return f"status at generation {status.get('observedGeneration')}, spec at {generation}"
    if owner.get("kind") == "ExposedApp":
        conditions = status.get("conditions") or []
        ready: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        if ready.get("status") != "True":
            return f"Ready {ready.get('status')}: {ready.get('reason')}"
        return ""
    counts = {k: status.get(k, 0) for k in ("replicas", "updatedReplicas", "availableReplicas")}
    if any(v != want for v in counts.values()):
        return f"status {counts}, want {want}"
    return ""


def describe(pods: Sequence[Mapping[str, Any]], slices: Sequence[Mapping[str, Any]]) -> str:
    """One line for the timeline: each Pod's state, and what the EndpointSlices list.

    Pod flags: R Ready, D draining (left the Service), T terminating. Endpoint flags: r
    ready, s serving, t terminating.
    """
    parts = []
    by_address = {}
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        meta = pod["metadata"]
        flags = "".join(
            flag
            for flag, on in (
                ("R", _ready(pod)),
                ("D", DRAIN_ANNOTATION in (meta.get("annotations") or {})),
                ("T", bool(meta.get("deletionTimestamp"))),
            )
            if on
        )
        parts.append(f"{meta['name']}:{flags or '-'}")
        by_address[(pod.get("status") or {}).get("podIP")] = meta["name"]
    endpoints = []
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            flags = "".join(f[0] for f in ("ready", "serving", "terminating") if conditions.get(f))
            for address in endpoint.get("addresses") or []:
                endpoints.append(f"{by_address.get(address, address)}:{flags or '-'}")
    return f"pods [{' '.join(parts)}] endpoints [{' '.join(sorted(endpoints))}]"


# --- The table: pure rendering of fixed numbers -------------------------------------------


class Tally(NamedTuple):
    """One cell: requests sent, how many failed, how many of those were resets."""

    requests: int
    failed: int
    resets: int
    problem: str = ""  # e.g. "did not converge in 120 s"


def _per_10k(count: int, requests: int) -> str:
    return f"{10_000 * count / requests:.1f}" if requests else "-"


def format_cell(tally: Tally | None) -> str:
    if tally is None:
        return "n/a"
    cell = (
        f"{_per_10k(tally.failed, tally.requests)} ({_per_10k(tally.resets, tally.requests)}), "
        f"{tally.requests} requests"
    )
    return f"{cell}; {tally.problem}" if tally.problem else cell


def render_table(
    phases: Sequence[str], systems: Sequence[str], cells: Mapping[tuple[str, str], Tally | None]
) -> str:
    """Rows: phases; columns: systems; a cell is "failed/10k (resets/10k), N requests",
    "n/a" where the phase does not apply, "not run" where it was not measured."""
    lines = [
        "| phase | " + " | ".join(SYSTEMS[s] for s in systems) + " |",
        "|---|" + "---|" * len(systems),
    ]
    for phase in phases:
        row = [
            format_cell(cells[(phase, system)]) if (phase, system) in cells else "not run"
            for system in systems
        ]
        lines.append(f"| {PHASES[phase]} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


# --- Measuring: the cluster side -----------------------------------------------------------


class Kube:
    """Plain JSON requests with the admin's certificate; raises on an unexpected answer."""

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

    def items(self, path: str, selector: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"{path}?labelSelector={selector}").get("items") or [])


def _wait(observe: Callable[[], str], timeout: float, what: str, interval: float = 0.25) -> float:
    """Poll ``observe`` (why not yet; "" when done) until done; the seconds it took."""
    started = time.monotonic()
    why = "<nothing observed>"
    while True:
        try:
            why = observe()
        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as error:
            why = f"{type(error).__name__}: {error}"
        else:
            if not why:
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not done after {timeout:.0f}s: {why}")
        time.sleep(interval)


@dataclass
class Cell:
    """One phase of one system, as measured."""

    phase: str
    system: str
    paths: dict[str, LoadReport] = field(default_factory=dict)
    change_at: float = 0.0  # time.monotonic() of the change
    converged_seconds: float | None = None
    problem: str = ""
    notes: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)

    @property
    def total(self) -> LoadReport:
        return LoadReport.combined(self.paths.values())

    def tally(self) -> Tally:
        total = self.total
        return Tally(total.requests, total.failed, total.resets, self.problem)

    def as_dict(self) -> dict[str, Any]:
        total = self.total
        return {
            "phase": self.phase,
            "system": self.system,
            "converged_seconds": (
                None if self.converged_seconds is None else round(self.converged_seconds, 2)
            ),
            "problem": self.problem,
            "notes": self.notes,
            "total": total.as_dict(self.change_at),
            "paths": {name: r.as_dict(self.change_at) for name, r in self.paths.items()},
            "timeline": [[round(t - self.change_at, 2), line] for t, line in self.timeline],
        }


class Bench:
    def __init__(
        self, state: ClusterState, kube: Kube, operator: Operator, args: argparse.Namespace
    ) -> None:
        self.state, self.kube, self.operator, self.args = state, kube, operator, args

    def namespace(self, system: str) -> str:
        return f"traffic-{system}"

    def create_namespaces(self, systems: Sequence[str]) -> None:
        for system in systems:
            name = self.namespace(system)
            body = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "annotations": REAL_NODE_NAMESPACE_ANNOTATIONS},
            }
            self.kube.call("POST", "/api/v1/namespaces", body, expect=(201, 409))
            account = f"/api/v1/namespaces/{name}/serviceaccounts/default"

            def has_account(path: str = account) -> str:
                found = self.kube.raw.request("GET", path)[0] == 200
                return "" if found else "no default ServiceAccount yet"

            _wait(has_account, 30, f"namespace {name}")

    def _paths(self, system: str, name: str) -> tuple[str, str]:
        ns = self.namespace(system)
        if system in OPERATOR_SYSTEMS:
            owner = f"/apis/exposedapp.dev/v1alpha1/namespaces/{ns}/exposedapps/{name}"
        else:
            owner = f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"
        return owner, f"app={name}" if system not in OPERATOR_SYSTEMS else f"{APP_LABEL}={name}"

    def observe(
        self, system: str, name: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        ns = self.namespace(system)
        owner_path, selector = self._paths(system, name)
        pods = self.kube.items(f"/api/v1/namespaces/{ns}/pods", selector)
        slices = self.kube.items(
            f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
            f"kubernetes.io/service-name={name}",
        )
        return pods, slices, self.kube.call("GET", owner_path)

    def create(self, phase: str, system: str, name: str) -> None:
        ns = self.namespace(system)
        recreate = phase == "recreate"
        if system in OPERATOR_SYSTEMS:
            body = exposed_app(
                name,
                drain=system != "nodrain",
                drain_delay=0 if system == "drain0" else None,
                recreate=recreate,
            )
            self.kube.call(
                "POST", f"/apis/exposedapp.dev/v1alpha1/namespaces/{ns}/exposedapps", body
            )
            return
        body = deployment(name, pre_stop=system == "prestop", recreate=recreate)
        created = self.kube.call("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body)
        self.kube.call("POST", f"/api/v1/namespaces/{ns}/services", native_service(name))
        if system == "prestop":
            hook = created["spec"]["template"]["spec"]["containers"][0].get("lifecycle") or {}
            if "sleep" not in (hook.get("preStop") or {}):
                raise SystemExit(
                    "the apiserver dropped preStop.sleep from the Deployment: the sleep "
                    "lifecycle action (PodLifecycleSleepAction) is not enabled"
                )

    def wait_converged(
        self, system: str, name: str, want: int, old: frozenset[str], cell: Cell | None
    ) -> float:
        last = [""]

        def check() -> str:
            pods, slices, owner = self.observe(system, name)
            if cell is not None:
                line = describe(pods, slices)
                if line != last[0]:
                    cell.timeline.append((time.monotonic(), line))
                    last[0] = line
            return unsettled(pods, slices, want, old) or owner_unsettled(owner, want)

        return _wait(check, self.args.timeout, f"{system}/{name} converged")

    def addresses(self, system: str, name: str) -> tuple[tuple[str, int], tuple[str, int]]:
        """(ClusterIP, 80) and (the node's address, the NodePort), once both answer."""
        ns = self.namespace(system)
        service = self.kube.call("GET", f"/api/v1/namespaces/{ns}/services/{name}")
        cluster_ip = (service["spec"]["clusterIP"], 80)
        node_port = (self.state.node_ip, int(service["spec"]["ports"][0]["nodePort"]))
        for host, port in (cluster_ip, node_port):

            def answers(host: str = host, port: int = port) -> str:
                return "" if http_get(host, port, timeout=2) else "an empty answer"

            _wait(answers, 30, f"{host}:{port} answering")
        return cluster_ip, node_port

    def uids(self, system: str, name: str) -> frozenset[str]:
        pods, _, _ = self.observe(system, name)
        return frozenset(str(p["metadata"]["uid"]) for p in pods)

    def kill_mid_rollout(self, system: str, name: str, old: frozenset[str], cell: Cell) -> None:
        """SIGKILL the operator once the first old Pod leaves (drained or deleted); start it
        again at once."""

        def leaving() -> str:
            pods, _, _ = self.observe(system, name)
            for pod in pods:
                meta = pod["metadata"]
                if meta["uid"] in old and (
                    meta.get("deletionTimestamp")
                    or DRAIN_ANNOTATION in (meta.get("annotations") or {})
                ):
                    return ""
            return "no old Pod leaving yet"

        _wait(leaving, 30, "the rollout's first old Pod leaving", interval=0.05)
        self.operator.kill()
        killed = time.monotonic()
        self.operator.start()
        cell.notes.append(
            f"operator SIGKILLed {killed - cell.change_at:.2f}s after the change (the first "
            "old Pod was leaving) and started again at once"
        )

    def remove(self, system: str, name: str) -> None:
        ns = self.namespace(system)
        owner_path, selector = self._paths(system, name)
        background = {"propagationPolicy": "Background"}
        self.kube.call("DELETE", owner_path, background, expect=(200, 202, 404))
        if system not in OPERATOR_SYSTEMS:
            self.kube.call("DELETE", f"/api/v1/namespaces/{ns}/services/{name}", expect=(200, 404))

        def gone() -> str:
            if self.kube.raw.request("GET", owner_path)[0] != 404:
                return "owner still there"
            # The next round makes an app of the same name: its Service must not find this one.
            if self.kube.raw.request("GET", f"/api/v1/namespaces/{ns}/services/{name}")[0] != 404:
                return "Service still there"
            if system not in OPERATOR_SYSTEMS and self.kube.items(
                f"/apis/apps/v1/namespaces/{ns}/replicasets", selector
            ):
                return "ReplicaSets still there"
            pods = self.kube.items(f"/api/v1/namespaces/{ns}/pods", selector)
            if pods:
                # Owner gone: hurry its Pods (the preStop sleep would add seconds per cell).
                self.kube.call(
                    "DELETE",
                    f"/api/v1/namespaces/{ns}/pods?labelSelector={selector}",
                    {"gracePeriodSeconds": 1},
                )
                return f"{len(pods)} Pods left"
            return ""

        _wait(gone, 120, f"{system}/{name} removed", interval=0.5)

    def measure(self, phase: str, system: str) -> Cell:
        name = phase
        cell = Cell(phase, system)
        self.create(phase, system, name)
        self.wait_converged(system, name, REPLICAS, frozenset(), None)
        cluster_ip, node_port = self.addresses(system, name)
        _, want = target(phase)
        old = self.uids(system, name) if phase in ROLLOUTS else frozenset()
        args = self.args
        budget = args.before + args.timeout + args.after + 30
        rate = args.rate / 2
        loads = {
            label: LoadGenerator(
                host,
                port,
                workers=args.workers,
                rate=rate,
                max_seconds=budget,
                max_requests=int(rate * budget) + 1,
                timeout=2.0,
            )
            for label, (host, port) in (("ClusterIP", cluster_ip), ("NodePort", node_port))
        }
        try:
            with contextlib.ExitStack() as stack:
                for load in loads.values():
                    stack.enter_context(load)
                time.sleep(args.before)  # a measurement window: load before the change
                cell.change_at = time.monotonic()
                owner_path, _ = self._paths(system, name)
                self.kube.call("PATCH", owner_path, change(phase, system), content_type=MERGE)
                if phase == "sigkill":
                    self.kill_mid_rollout(system, name, old, cell)
                try:
                    self.wait_converged(system, name, want, old, cell)
                    cell.converged_seconds = time.monotonic() - cell.change_at
                except TimeoutError as error:
                    cell.problem = f"did not converge in {args.timeout:.0f}s"
                    cell.notes.append(str(error))
                time.sleep(args.after)  # and after it
        finally:
            cell.paths = {label: load.report for label, load in loads.items()}
            self.remove(system, name)
        return cell


def kube_proxy_lag(metrics: str) -> str:
    """kube-proxy's own account of its lag, from its /metrics text: how long after an
    endpoint change its rules were programmed (network programming), and how long a sync
    of the rules took."""
    parts = []
    for name, what in (
        ("kubeproxy_network_programming_duration_seconds", "endpoint change to rules programmed"),
        ("kubeproxy_sync_proxy_rules_duration_seconds", "one sync of the rules"),
    ):
        buckets: dict[float, float] = {}  # summed over any labels (an IP family)
        count = total = 0.0
        for family in text_string_to_metric_families(metrics):
            for sample in family.samples:
                if sample.name == f"{name}_bucket":
                    le = float(sample.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + sample.value
                elif sample.name == f"{name}_count":
                    count += sample.value
                elif sample.name == f"{name}_sum":
                    total += sample.value
        if not count:
            continue
        shares = []  # the buckets from the median up to the slowest
        for le, n in sorted(buckets.items()):
            if le != float("inf") and n >= count / 2:
                shares.append(f"<={le:g}s {100 * n / count:.0f}%")
            if n >= count:
                break
        parts.append(f"{what}: mean {total / count:.3f}s over {count:.0f} ({', '.join(shares)})")
    return "; ".join(parts) or "kube-proxy reported no timings"


def _scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError as error:
        return f"# {error}"


# --- The report ----------------------------------------------------------------------------


def _details(cells: Sequence[Cell]) -> list[str]:
    lines = [
        "| phase | system | ClusterIP failed (resets) / requests | NodePort failed (resets) "
        "/ requests | achieved rate (req/s) | change to converged (s) | failures by kind |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        paths = [
            f"{r.failed} ({r.resets}) / {r.requests}"
            for r in (cell.paths.get("ClusterIP"), cell.paths.get("NodePort"))
            if r is not None
        ]
        total = cell.total
        kinds = ", ".join(f"{k} {v}" for k, v in total.failures.most_common()) or "none"
        converged = "-" if cell.converged_seconds is None else f"{cell.converged_seconds:.1f}"
        lines.append(
            f"| {PHASES[cell.phase]} | {SYSTEMS[cell.system]} | {' | '.join(paths)} | "
            f"{total.rate:.0f} | {converged} | {kinds} |"
        )
    return lines


def sum_tallies(tallies: Sequence[Tally]) -> Tally:
    problems = "; ".join(sorted({t.problem for t in tallies if t.problem}))
    return Tally(
        sum(t.requests for t in tallies),
        sum(t.failed for t in tallies),
        sum(t.resets for t in tallies),
        problems,
    )


def report(
    cells: Sequence[Cell],
    phases: Sequence[str],
    systems: Sequence[str],
    reproduce: str,
    settings: str,
) -> str:
    tallies: dict[tuple[str, str], Tally | None] = {}
    for phase in phases:
        for system in systems:
            if phase == "sigkill" and system not in OPERATOR_SYSTEMS:
                tallies[(phase, system)] = None
                continue
            mine = [c.tally() for c in cells if (c.phase, c.system) == (phase, system)]
            if mine:
                tallies[(phase, system)] = sum_tallies(mine)
    lines = [
        "# Failed requests while apps change (real node)",
        "",
        "Cells: failed requests per 10,000 (connection resets per 10,000), requests sent.",
        "",
        render_table(phases, systems, tallies),
        settings,
        "",
        "## Details",
        "",
        *_details(cells),
        "",
    ]
    notes = [f"- {PHASES[c.phase]}, {SYSTEMS[c.system]}: {n}" for c in cells for n in c.notes]
    if notes:
        lines += ["## Notes", "", *notes, ""]
    lines += [f"Reproduce: `{reproduce}`", ""]
    return "\n".join(lines)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="trafficbench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--light",
        action="store_true",
        help=f"the quick version for CI: phases {LIGHT['phases']}, systems {LIGHT['systems']}, "
        f"{LIGHT['rate']:g} requests/s, {LIGHT['before']:g}s of load before and after",
    )
    parser.add_argument("--phases", help=f"comma-separated, of {','.join(PHASES)} (default all)")
    parser.add_argument(
        "--systems",
        help=f"comma-separated, of {','.join(SYSTEMS)} (default {FULL['systems']})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help=f"requests per second over both paths (default {FULL['rate']:g})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=3,
        help="threads per path, each sending its share on schedule (default 3)",
    )
    parser.add_argument(
        "--before",
        type=float,
        help=f"seconds of load before the change (default {FULL['before']:g})",
    )
    parser.add_argument(
        "--after",
        type=float,
        help=f"seconds of load after convergence (default {FULL['after']:g})",
    )
    parser.add_argument(
        "--timeout", type=float, default=120, help="the longest a change may take to converge"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds; cells add up (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "traffic")
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run" / "bench-traffic")
    args = parser.parse_args(argv)
    defaults = LIGHT if args.light else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.phases = [p for p in str(args.phases).split(",") if p]
    args.systems = [s for s in str(args.systems).split(",") if s]
    for kind, chosen, known in (("phase", args.phases, PHASES), ("system", args.systems, SYSTEMS)):
        unknown = [c for c in chosen if c not in known]
        if unknown:
            parser.error(f"unknown {kind} {', '.join(unknown)}; known: {', '.join(known)}")
    return args


def _reproduce(args: argparse.Namespace) -> str:
    flags = [
        f"--phases {','.join(args.phases)}",
        f"--systems {','.join(args.systems)}",
        f"--rate {args.rate:g}",
        f"--workers {args.workers}",
        f"--before {args.before:g}",
        f"--after {args.after:g}",
        f"--timeout {args.timeout:g}",
        f"--repeat {args.repeat}",
    ]
    return f"make bench-traffic BENCH_TRAFFIC_ARGS={shlex.quote(' '.join(flags))}"


@contextlib.contextmanager
def _cluster(run_dir: Path) -> Iterator[ClusterState]:
    state = up(run_dir, attached=True, nodes=1, real_node=True)
    try:
        yield state
    finally:
        down(run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    started, cpu_before = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    load_before = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    cells: list[Cell] = []
    with _cluster(args.run_dir.resolve()) as state:
        kubectl = state.binaries["kubectl"]
        subprocess.run(
            [
                kubectl,
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
        wait_established(kubectl, state.kubeconfig, "exposedapps.exposedapp.dev")
        kube = Kube(state)
        version = kube.call("GET", "/version").get("gitVersion", "?")
        operator = Operator(state, Path(state.run_dir), Path(sys.executable))
        bench = Bench(state, kube, operator, args)
        bench.create_namespaces(args.systems)
        operator.start()
        try:
            for round_ in range(args.repeat):
                for phase in args.phases:
                    for system in args.systems:
                        if phase == "sigkill" and system not in OPERATOR_SYSTEMS:
                            continue
                        print(
                            f"[bench-traffic] round {round_ + 1}/{args.repeat}: "
                            f"{PHASES[phase]}, {SYSTEMS[system]}",
                            flush=True,
                        )
                        cell = bench.measure(phase, system)
                        total = cell.total
                        print(
                            f"[bench-traffic]   {total}; converged in "
                            f"{cell.converged_seconds or float('nan'):.1f}s"
                            + (f"; {cell.problem}" if cell.problem else ""),
                            flush=True,
                        )
                        cells.append(cell)
        finally:
            operator.stop()
        logs = [str(Path(state.run_dir) / f"operator-{i + 1}.log") for i in range(operator.runs)]
        lag = kube_proxy_lag(
            _scrape(f"http://127.0.0.1:{state.ports['kube-proxy-metrics']}/metrics")
        )
    seconds = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    machine = (
        f"This process (load generator and watcher) used {100 * cpu / seconds:.0f}% of a core "
        f"on average; the machine's 1-minute load average was {load_before:.2f} at the start "
        f"and {os.getloadavg()[0]:.2f} at the end ({os.cpu_count()} cores)."
    )
    settings = (
        f"Settings: {REPLICAS} replicas of netserver (readiness probe every 1s), a NodePort "
        f"Service; load {args.rate:g} requests/s in all, half through the ClusterIP (port "
        f"80) and half through the NodePort on the node's address ({state.node_ip}), "
        f"{args.workers} threads per path, open-loop (requests leave on schedule whether or "
        f"not earlier ones were answered), each on a new connection with a 2 s timeout; "
        f"{args.before:g}s of load before each change and {args.after:g}s after it "
        f"converged; {args.repeat} round(s); apiserver {version} (the preStop sleep action "
        f"is kept by it); image rollout {NETSERVER_IMAGE} -> {NETSERVER_NEXT_IMAGE} (a second "
        f"local image: the same binary, another image config); Recreate and SIGKILL phases "
        f"use the same image change. Operator logs: {', '.join(logs)}. Run took "
        f"{seconds:.0f}s. {machine} kube-proxy (iptables mode, minSyncPeriod 0s), over the "
        f"whole run: {lag}."
    )
    text = report(cells, args.phases, args.systems, _reproduce(args), settings)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "settings": settings,
                "reproduce": _reproduce(args),
                "seconds": round(seconds, 1),
                "cells": [c.as_dict() for c in cells],
            },
            indent=2,
        )
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
