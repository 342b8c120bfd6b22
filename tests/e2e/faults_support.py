"""Support for the fault suite (test_faults.py): the oracle, the figures, and the faults.

- The oracle: what a namespace of ExposedApps must look like once the operator has caught
  up with the specs the test last wrote (`check`), read through the official client, so
  it never shares a bug with the operator's pykube-ng code or its builders.
- A sampler that watches Pod counts while faults happen: more live Pods than the spec
  allows (replicas + maxSurge, over the recent specs) is a duplicate.
- Figures: each scenario appends one JSON line to .run/fault-figures.jsonl; `python
  tests/e2e/faults_support.py` prints them as the Markdown table of docs/faults.md.
- Faults: a TCP relay between the operator and the apiserver that can cut or silently
  stall the operator's connections; control-plane pieces stopped and started; etcd
  compacted through its HTTP/JSON gateway.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import math
import os
import re
import selectors
import socket
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FIGURES_PATH",
    "Figures",
    "PodSampler",
    "Proxy",
    "Verdict",
    "audit_events",
    "check",
    "etcd_compact",
    "expected_service_ports",
    "figures",
    "markdown_table",
]

ROOT = Path(__file__).resolve().parents[2]
FIGURES_PATH = Path(os.environ.get("FAULT_FIGURES", ROOT / ".run" / "fault-figures.jsonl"))
RUN_ID = os.environ.get("FAULT_RUN_ID") or datetime.datetime.now(datetime.UTC).strftime(
    "%Y%m%dT%H%M%SZ"
)
GROUP, VERSION, PLURAL = "exposedapp.dev", "v1alpha1", "exposedapps"
APP_LABEL = "exposedapp.dev/app"
DRAIN_ANNOTATION = "exposedapp.dev/drain"
UID_LABEL = "exposedapp.dev/app-uid"
HASH_LABEL = "exposedapp.dev/template-hash"


# --- figures ------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one scenario measured; written as one JSON line when the scenario ends."""

    scenario: str
    rounds: int = 0
    faults: int = 0
    convergence: list[float] = field(default_factory=list)  # seconds after each fault
    duplicates: int = 0
    lost_updates: int = 0
    orphans: int = 0
    blocked_seconds: float | None = None
    blocked_requests: int | None = None  # the operator's requests while blocked
    seed: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def converged(self, seconds: float) -> None:
        self.convergence.append(round(seconds, 2))

    def record(self, outcome: str) -> dict[str, Any]:
        per_minute = None
        if self.blocked_requests is not None and self.blocked_seconds:
            per_minute = round(self.blocked_requests * 60 / self.blocked_seconds, 1)
        line = {
            "run": RUN_ID,
            "scenario": self.scenario,
            "outcome": outcome,
            "rounds": self.rounds,
            "faults": self.faults,
            "convergence_s": self.convergence,
            "median_s": round(statistics.median(self.convergence), 2) if self.convergence else None,
            "worst_s": max(self.convergence) if self.convergence else None,
            "duplicates": self.duplicates,
            "lost_updates": self.lost_updates,
            "orphans": self.orphans,
            "blocked_seconds": self.blocked_seconds,
            "blocked_requests": self.blocked_requests,
            "blocked_requests_per_minute": per_minute,
            "seed": self.seed,
            "notes": self.notes,
            "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        FIGURES_PATH.parent.mkdir(parents=True, exist_ok=True)
        with FIGURES_PATH.open("a") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")
        print(f"fault figures: {json.dumps(line, sort_keys=True)}")
        return line


@contextlib.contextmanager
def figures(scenario: str, **fields: Any) -> Iterator[Figures]:
    """Figures for one scenario, recorded however it ends (a failure is recorded too)."""
    recorded = Figures(scenario, **fields)
    try:
        yield recorded
    except BaseException as error:
        recorded.record(f"failed: {type(error).__name__}: {str(error)[:300]}")
        raise
    recorded.record("passed")


def markdown_table(lines: list[dict[str, Any]]) -> str:
    """The figures of the latest record of each scenario, as a Markdown table."""
    latest: dict[str, dict[str, Any]] = {}
    for line in lines:
        latest[line["scenario"]] = line

    def show(value: Any) -> str:
        return "" if value is None else str(value)

    rows = [
        "| scenario | outcome | rounds | faults | convergence median / worst (s) | duplicates "
        "| lost updates | orphans | requests while blocked |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for line in latest.values():
        blocked = ""
        if line.get("blocked_requests") is not None:
            blocked = (
                f"{line['blocked_requests']} in {line['blocked_seconds']}s "
                f"({line['blocked_requests_per_minute']}/min)"
            )
        convergence = (
            f"{line['median_s']} / {line['worst_s']}" if line.get("median_s") is not None else ""
        )
        outcome = "passed"
        if line["outcome"] != "passed":
            stuck = (line.get("notes") or {}).get("unconverged")
            outcome = f"FAILED ({len(stuck)} apps never converged)" if stuck else "FAILED"
        rows.append(
            f"| {line['scenario']} | {outcome} | {show(line['rounds'])} | {show(line['faults'])} "
            f"| {convergence} | {show(line['duplicates'])} | {show(line['lost_updates'])} "
            f"| {show(line['orphans'])} | {blocked} |"
        )
    return "\n".join(rows)


# --- the oracle ---------------------------------------------------------------------------


def expected_service_ports(spec: Mapping[str, Any]) -> list[tuple[str, str, int, str]]:
    """(name, protocol, port, targetPort) of every exposed port, read from the spec alone."""
    ports = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("expose", True) is False:
                continue
            ports.append(
                (
                    port["name"],
                    port.get("protocol", "TCP"),
                    int(port.get("servicePort", port["containerPort"])),
                    port["name"],  # the Service targets the container port by name
                )
            )
    return sorted(ports)


def max_surge(spec: Mapping[str, Any], replicas: int) -> int:
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(surge, str):
        return math.ceil(int(surge.rstrip("%")) * replicas / 100)
    return int(surge)


def is_subset(small: Any, big: Any) -> bool:
    """Every field of `small` is in `big` with the same value (the apiserver adds defaults)."""
    if isinstance(small, Mapping):
        return isinstance(big, Mapping) and all(
            key in big and is_subset(value, big[key]) for key, value in small.items()
        )
    if isinstance(small, list):
        return (
            isinstance(big, list)
            and len(small) == len(big)
            and all(is_subset(a, b) for a, b in zip(small, big, strict=True))
        )
    return bool(small == big)


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _app_owner_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "ExposedApp" and ref.get("apiVersion", "").startswith(GROUP):
            return str(ref.get("uid"))
    return None


def _ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _condition(app: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    conditions = (app.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


@dataclass
class Snapshot:
    apps: dict[str, dict[str, Any]]
    pods: list[dict[str, Any]]
    services: list[dict[str, Any]]


def snapshot(api: Any, namespace: str) -> Snapshot:
    """Apps, Pods and Services of the namespace as plain dicts, through the official client."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)

    def items(response: Any) -> list[dict[str, Any]]:
        return list(json.loads(response.data)["items"])

    apps = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    pods = items(core.list_namespaced_pod(namespace, _preload_content=False))
    services = items(core.list_namespaced_service(namespace, _preload_content=False))
    return Snapshot({a["metadata"]["name"]: a for a in apps}, pods, services)


@dataclass
class Verdict:
    problems: list[str]
    orphans: int
    excess_pods: int  # live Pods beyond replicas, over all apps
    lost: set[str]  # apps whose last spec is not what the cluster shows

    def __bool__(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:
        shown = self.problems[:12] + (
            [f"... {len(self.problems) - 12} more"] * (len(self.problems) > 12)
        )
        return "\n  " + "\n  ".join(shown)


def check(
    api: Any,
    namespace: str,
    intended: Mapping[str, Mapping[str, Any] | None],
    *,
    ignore_pods: frozenset[str] = frozenset(),
    degraded: Mapping[str, str] | None = None,
) -> Verdict:
    """Does the namespace show every app as its last spec says, and nothing else of ours?

    intended: app name -> the spec the test last wrote, or None for an app it deleted.
    ignore_pods: Pods the scenario made foreign on purpose (e.g. relabelled by hand).
    degraded: app name -> the Degraded reason the scenario expects instead of Ready.
    """
    seen = snapshot(api, namespace)
    problems: list[str] = []
    lost: set[str] = set()
    excess = 0
    live_uids = {a["metadata"]["uid"] for a in seen.apps.values()}
    degraded = degraded or {}

    orphans = [
        f"{kind} {obj['metadata']['name']}"
        for kind, objects in (("Pod", seen.pods), ("Service", seen.services))
        for obj in objects
        if (uid := _app_owner_uid(obj)) is not None
        and uid not in live_uids
        and not (obj["metadata"].get("deletionTimestamp") and kind == "Pod")
    ]
    problems += [f"orphan {o} (its ExposedApp is gone)" for o in orphans]

    for name, spec in sorted(intended.items()):
        app = seen.apps.get(name)
        if spec is None:
            if app is not None:
                problems.append(f"{name}: deleted, but still there")
            continue
        if app is None:
            problems.append(f"{name}: missing")
            lost.add(name)
            continue
        uid = app["metadata"]["uid"]
        if not is_subset(spec, app.get("spec") or {}):
            problems.append(f"{name}: the stored spec is not the last one written")
            lost.add(name)
        replicas = int(spec.get("replicas", 1))
        ours = [p for p in seen.pods if _controller_uid(p) == uid]
        live = [p for p in ours if not p["metadata"].get("deletionTimestamp")]
        pattern = re.compile(rf"^{re.escape(name)}-[0-9a-f]{{10}}-\d+$")
        named = [
            p
            for p in seen.pods
            if pattern.match(p["metadata"]["name"])
            and p["metadata"]["name"] not in ignore_pods
            and not p["metadata"].get("deletionTimestamp")
        ]
        counted = [p for p in live if p["metadata"]["name"] not in ignore_pods]
        excess += max(0, len(counted) - replicas)
        if len(counted) != replicas:
            problems.append(f"{name}: {len(counted)} live Pods, want {replicas}")
        if len(named) != replicas:
            problems.append(f"{name}: {len(named)} live Pods named like ours, want {replicas}")
        hashes = {(p["metadata"].get("labels") or {}).get(HASH_LABEL) for p in counted}
        if len(hashes) > 1:
            problems.append(f"{name}: Pods of {len(hashes)} templates")
        want_images = {c["name"]: c["image"] for c in spec["containers"]}
        want_ports = {
            c["name"]: sorted(p["containerPort"] for p in c.get("ports") or [])
            for c in spec["containers"]
        }
        for pod in counted:
            containers = pod["spec"]["containers"]
            images = {c["name"]: c["image"] for c in containers}
            ports = {
                c["name"]: sorted(p["containerPort"] for p in c.get("ports") or [])
                for c in containers
            }
            if images != want_images or ports != want_ports:
                problems.append(
                    f"{name}: Pod {pod['metadata']['name']} runs {images} {ports}, "
                    f"want {want_images} {want_ports}"
                )
                lost.add(name)
            labels = pod["metadata"].get("labels") or {}
            if labels.get(APP_LABEL) != name or labels.get(UID_LABEL) != uid:
                problems.append(f"{name}: Pod {pod['metadata']['name']} lacks identity labels")
            if not _ready(pod):
                problems.append(f"{name}: Pod {pod['metadata']['name']} not ready")

        services = [s for s in seen.services if s["metadata"]["name"] == name]
        want_ports_svc = expected_service_ports(spec)
        if want_ports_svc and name not in degraded:
            service = services[0] if services else None
            if service is None or _controller_uid(service) != uid:
                problems.append(f"{name}: no Service of ours")
            else:
                if service["spec"].get("selector") != {APP_LABEL: name, UID_LABEL: uid}:
                    problems.append(f"{name}: Service selector {service['spec'].get('selector')}")
                have = sorted(
                    (p.get("name"), p.get("protocol"), p.get("port"), p.get("targetPort"))
                    for p in service["spec"].get("ports") or []
                )
                if have != want_ports_svc:
                    problems.append(f"{name}: Service ports {have}, want {want_ports_svc}")
                    lost.add(name)

        status = app.get("status") or {}
        generation = app["metadata"].get("generation")
        if status.get("observedGeneration") != generation:
            problems.append(
                f"{name}: observedGeneration {status.get('observedGeneration')} != {generation}"
            )
            lost.add(name)
        if name in degraded:
            condition = _condition(app, "Degraded")
            if condition.get("status") != "True" or condition.get("reason") != degraded[name]:
                problems.append(f"{name}: Degraded is {condition}, want {degraded[name]}")
            continue
        if status.get("replicas") != len(counted) or status.get("readyReplicas", 0) != replicas:
            problems.append(
                f"{name}: status says {status.get('readyReplicas')}/{status.get('replicas')} "
                f"ready, want {replicas}/{len(counted)}"
            )
        ready = _condition(app, "Ready")
        if ready.get("status") != "True":
            problems.append(f"{name}: Ready is {ready.get('status')} ({ready.get('reason')})")
        if _condition(app, "Degraded").get("status") == "True":
            problems.append(f"{name}: Degraded ({_condition(app, 'Degraded').get('reason')})")
    return Verdict(problems, len(orphans), excess, lost)


class PodSampler:
    """Samples the live Pods of each app while a scenario runs: the duplicate detector.

    An app may have at most max(replicas) + maxSurge live Pods over the specs it had in the
    last `window` seconds (the operator may lag behind a spec by that much); anything above
    is a duplicate. Call `wrote(name, spec)` whenever the test writes a spec.
    """

    def __init__(self, api: Any, namespace: str, window: float = 30.0) -> None:
        self.api = api
        self.namespace = namespace
        self.window = window
        self.history: dict[str, list[tuple[float, int, int]]] = {}  # (t, replicas, surge)
        self.excess: dict[str, int] = {}
        self.evidence: dict[str, list[str]] = {}
        self.samples = 0
        self.errors = 0
        self.seen_names: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-sampler", daemon=True)

    def wrote(self, name: str, spec: Mapping[str, Any] | None) -> None:
        replicas = 0 if spec is None else int(spec.get("replicas", 1))
        surge = 0 if spec is None else max_surge(spec, replicas)
        with self._lock:
            self.history.setdefault(name, []).append((time.monotonic(), replicas, surge))

    def allowed(self, name: str, now: float) -> int:
        with self._lock:
            history = self.history.get(name, [])
            recent = [h for h in history if h[0] >= now - self.window]
            older = [h for h in history if h[0] < now - self.window]
            if older:
                recent.append(older[-1])  # the spec in force at the start of the window
        return max((r + s for _, r, s in recent), default=0)

    def _run(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        while not self._stop.wait(0.3):
            try:
                response = core.list_namespaced_pod(
                    self.namespace, label_selector=APP_LABEL, _preload_content=False
                )
                pods = json.loads(response.data)["items"]
            except Exception:  # the apiserver may be down on purpose
                self.errors += 1
                continue
            now = time.monotonic()
            live: dict[str, list[str]] = {}
            for pod in pods:
                self.seen_names.add(pod["metadata"]["name"])
                if pod["metadata"].get("deletionTimestamp"):
                    continue
                if DRAIN_ANNOTATION in (pod["metadata"].get("annotations") or {}):
                    continue  # out of the Service, deleted once drained: as if terminating
                app = pod["metadata"]["labels"][APP_LABEL]
                live.setdefault(app, []).append(pod["metadata"]["name"])
            self.samples += 1
            for app, names in live.items():
                over = len(names) - self.allowed(app, now)
                if over > 0 and app in self.history and over > self.excess.get(app, 0):
                    self.excess[app] = over
                    self.evidence[app] = sorted(names)  # the live Pods when it was worst

    @property
    def duplicates(self) -> int:
        return sum(self.excess.values())

    def __enter__(self) -> PodSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


# --- faults: a relay that can cut or stall the operator's connections ----------------------


class _Link:
    def __init__(self, downstream: socket.socket, upstream: socket.socket) -> None:
        self.sockets = (downstream, upstream)
        self.frozen = False
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


class Proxy:
    """A TCP relay on 127.0.0.1 in front of the apiserver, for one client (the operator).

    TLS passes through untouched (the apiserver's certificate names 127.0.0.1, whatever the
    port), so the client cannot tell the relay is there. Modes:
    - open: bytes flow;
    - cut(): every connection is closed now, and new ones are closed on arrival until
      heal(): the client sees a server that went away;
    - stall(): every open connection stops forwarding, silently and for good, while new
      connections work: a watch that hangs without an error, as behind a dead NAT entry.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = int(self.listener.getsockname()[1])
        self.links: list[_Link] = []
        self.cutting = False
        self.accepted = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="proxy", daemon=True)
        self._thread.start()

    def kubeconfig(self, original: Path, target: Path) -> Path:
        """A copy of `original` that points at the relay."""
        import yaml

        config = yaml.safe_load(original.read_text())
        for entry in config["clusters"]:
            entry["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        target.write_text(yaml.safe_dump(config))
        target.chmod(0o600)
        return target

    def cut(self) -> None:
        with self._lock:
            self.cutting = True
            links, self.links = self.links, []
        for link in links:
            self._forget(link)

    def heal(self) -> None:
        with self._lock:
            self.cutting = False

    def stall(self) -> int:
        """Freeze every open connection; return how many."""
        with self._lock:
            for link in self.links:
                link.frozen = True
                for sock in link.sockets:
                    with contextlib.suppress(KeyError, ValueError):
                        self._selector.unregister(sock)
            frozen = [link for link in self.links if link.frozen]
            return len(frozen)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        with self._lock:
            links, self.links = self.links, []
        for link in links:
            link.close()
        self.listener.close()
        self._selector.close()

    def _forget(self, link: _Link) -> None:
        for sock in link.sockets:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(sock)
        link.close()

    def _accept(self) -> None:
        downstream, _ = self.listener.accept()
        with self._lock:
            cutting = self.cutting
        if cutting:
            self.refused += 1
            downstream.close()
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            self.refused += 1
            downstream.close()
            return
        for sock in (downstream, upstream):
            sock.setblocking(False)
        link = _Link(downstream, upstream)
        with self._lock:
            self.links.append(link)
            self.accepted += 1
        self._selector.register(downstream, selectors.EVENT_READ, (link, upstream))
        self._selector.register(upstream, selectors.EVENT_READ, (link, downstream))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                events = self._selector.select(timeout=0.1)
            except (OSError, ValueError):
                continue
            for key, _ in events:
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._accept()
                    continue
                link, destination = key.data
                if link.frozen or link.closed:
                    continue
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        raise ConnectionResetError
                    destination.settimeout(10)
                    destination.sendall(data)
                    destination.setblocking(False)
                except OSError:
                    with self._lock:
                        if link in self.links:
                            self.links.remove(link)
                    self._forget(link)


# --- faults: the control plane ------------------------------------------------------------


def _etcd_post(port: int, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def etcd_compact(run_dir: Path) -> int:
    """Compact etcd's history up to its current revision (the v3 HTTP/JSON gateway)."""
    from devcluster.cluster import read_state

    state = read_state(run_dir)
    assert state is not None, f"no control plane recorded in {run_dir}"
    port = state.ports["etcd"]
    key = base64.b64encode(b"/registry/").decode()
    header = _etcd_post(port, "/v3/kv/range", {"key": key, "limit": 1, "keys_only": True})
    revision = int(header["header"]["revision"])
    _etcd_post(port, "/v3/kv/compaction", {"revision": revision, "physical": True})
    return revision


def audit_events(path: Path, start: int, end: int, user: str | None = None) -> list[dict[str, Any]]:
    """The raw audit events between two AuditLog marks (with their timestamps)."""
    lines = path.read_text(errors="replace").splitlines()[start:end]
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if user is None or e.get("user", {}).get("username") == user]


def event_time(event: Mapping[str, Any]) -> float:
    stamp = event.get("requestReceivedTimestamp") or event.get("stageTimestamp") or ""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def retrying(call: Callable[[], Any], attempts: int = 20, what: str = "a request") -> Any:
    """For the test's own requests right after a control-plane restart."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception:
            if attempt == attempts - 1:
                raise
            threading.Event().wait(0.5)
    raise AssertionError(f"{what} never succeeded")


# --- the figures table --------------------------------------------------------------------


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else FIGURES_PATH
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    run = os.environ.get("FAULT_RUN_ID") or (lines[-1]["run"] if lines else "")
    print(markdown_table([line for line in lines if line["run"] == run]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
