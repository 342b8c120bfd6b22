"""The fault suite: the real operator against the real control plane while the world misbehaves.

Each scenario injects its faults, then waits until the namespace shows every app exactly as
the last spec the test wrote says (faults_support.check): the right number of live Pods
(counted by owner and by name), one template, the images and ports of that spec, a Service
of ours whose selector and ports match, a status with observedGeneration == generation and
the true ready count, and no Pod or Service whose app is gone. A sampler watches the Pod
counts throughout: more live Pods than replicas + maxSurge is a duplicate.

Every scenario appends its figures (faults, convergence times, duplicates, lost updates,
requests while blocked) to .run/fault-figures.jsonl; docs/faults.md has the table.

Knobs (environment): FAULT_SEED replays the random choices of the SIGKILL scenario (the
seed is printed); FAULT_ROUNDS (default 3) and FAULT_APPS (default 20) size it;
FAULT_BLOCKED_ATTEMPTS (default 3) is how many refused attempts the quota and admission
scenarios watch before lifting the block.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from faults_support import (
    Figures,
    PodSampler,
    Proxy,
    Verdict,
    audit_events,
    check,
    etcd_compact,
    event_time,
    figures,
    retrying,
)
from kubernetes import client

from conftest import OperatorProcess
from kubetest import ClusterHandle, WaitTimeout, wait_for
from kubetest.apps import GROUP, PLURAL, VERSION, Apps
from kubetest.audit import AuditLog

ROUNDS = int(os.environ.get("FAULT_ROUNDS", "3"))
APPS = int(os.environ.get("FAULT_APPS", "20"))
BLOCKED_ATTEMPTS = int(os.environ.get("FAULT_BLOCKED_ATTEMPTS", "3"))
CONVERGE_TIMEOUT = float(os.environ.get("FAULT_CONVERGE_TIMEOUT", "150"))
IMAGES = ("nginx:1.27", "nginx:1.28", "nginx:1.29")
PORTS = (8080, 8081, 8082)


def spec(replicas: int = 2, port: int = 8080, image: str = "nginx:1.27", **extra: Any) -> dict:
    return {
        "replicas": replicas,
        "containers": [
            {
                "name": "web",
                "image": image,
                "ports": [{"name": "http", "containerPort": port, "servicePort": 80}],
            }
        ],
        **extra,
    }


class World:
    """The apps of one namespace as the test last wrote them: the oracle's expectations."""

    def __init__(self, api: client.ApiClient, apps: Apps) -> None:
        self.api = api
        self.apps = apps
        self.namespace = apps.namespace
        self.intended: dict[str, dict[str, Any] | None] = {}
        self.sampler: PodSampler | None = None
        self.writes = 0
        self.waited_for: list[tuple[float, list[str]]] = []
        self.last_verdict: Verdict | None = None
        self._lock = threading.Lock()

    def _wrote(self, name: str, body: dict[str, Any] | None) -> None:
        with self._lock:
            self.intended[name] = copy.deepcopy(body)
            self.writes += 1
        if self.sampler is not None:
            self.sampler.wrote(name, body)

    def create(self, name: str, body: dict[str, Any]) -> None:
        self._wrote(name, body)  # first: the sampler must know the app before its Pods
        self.apps.create(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ExposedApp",
                "metadata": {"name": name},
                "spec": body,
            }
        )

    def update(self, name: str, body: dict[str, Any]) -> None:
        # A merge patch of the whole spec: lists (containers) are replaced, so the stored
        # spec is exactly this one plus the API's defaults.
        self._wrote(name, body)
        self.apps.patch(name, {"spec": body})

    def delete(self, name: str) -> None:
        self._wrote(name, None)
        self.apps.delete(name)

    def check(self, **options: Any) -> Verdict:
        with self._lock:
            intended = dict(self.intended)
        return check(self.api, self.namespace, intended, **options)

    def converge(self, timeout: float = CONVERGE_TIMEOUT, **options: Any) -> Verdict:
        started = time.monotonic()
        waited_for: list[tuple[float, list[str]]] = []  # what still differed, and when

        def observe() -> Verdict:
            verdict = self.check(**options)
            self.last_verdict = verdict
            if verdict.problems and (not waited_for or waited_for[-1][1] != verdict.problems):
                waited_for.append((round(time.monotonic() - started, 1), verdict.problems[:3]))
            return verdict

        verdict = wait_for(
            observe,
            bool,
            timeout=timeout,
            interval=0.5,
            what=f"every app in {self.namespace} as last written",
        )
        self.waited_for = waited_for[-3:]
        return verdict


def converge_after(world: World, fig: Figures, since: float, **options: Any) -> Verdict:
    try:
        verdict = world.converge(**options)
    except WaitTimeout:
        last = world.last_verdict
        if last is not None:  # what never converged goes into the figures
            fig.lost_updates += len(last.lost)
            fig.orphans = max(fig.orphans, last.orphans)
            fig.notes["unconverged"] = sorted({p.split(":")[0] for p in last.problems})
            fig.notes["problems"] = last.problems[:6]
        raise
    fig.converged(time.monotonic() - since)
    # The last differences seen before convergence: where the time went.
    fig.notes.setdefault("last_waits", []).append(world.waited_for[-1:])
    return verdict


def operator_writes(
    audit: AuditLog, start: int, end: int, cluster: ClusterHandle, namespace: str
) -> list[Any]:
    assert cluster.operator_user is not None
    return [w for w in audit.writes(start, end, cluster.operator_user) if w.namespace == namespace]


def events_with_reason(apps: Apps, reason: str) -> list[Any]:
    return [e for e in apps.core.list_namespaced_event(apps.namespace).items if e.reason == reason]


@pytest.fixture
def world(api: client.ApiClient, apps: Apps) -> World:
    return World(api, apps)


# --- 1. SIGKILL at random moments -------------------------------------------------------------


def _round_writes(
    rng: random.Random, names: list[str], intended: Mapping[str, Any], round_index: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, app, new spec) for one round: creates first, then scales, ports and images."""
    if round_index == 0:
        return [("create", n, spec(replicas=rng.randint(1, 3))) for n in names]
    writes = []
    current = {n: copy.deepcopy(intended[n]) for n in names}
    for name in rng.choices(names, k=len(names)):  # some apps twice: coalescing
        body = current[name]
        container = body["containers"][0]
        change = rng.choice(("scale", "port", "image", "port+scale", "image+scale"))
        if "scale" in change:
            body["replicas"] = rng.randint(0, 4)
        if "port" in change:
            port = container["ports"][0]
            port["containerPort"] = rng.choice([p for p in PORTS if p != port["containerPort"]])
        if "image" in change:
            container["image"] = rng.choice([i for i in IMAGES if i != container["image"]])
        writes.append(("update", name, copy.deepcopy(body)))
    return writes


class Driver(threading.Thread):
    """Writes one round's specs with small random pauses, in the background."""

    def __init__(self, world: World, writes: list[Any], pauses: list[float]) -> None:
        super().__init__(name="writer", daemon=True)
        self.world = world
        self.writes = writes
        self.pauses = pauses
        self.applied = 0
        self.error: BaseException | None = None
        self.finished = 0.0
        self._pause = threading.Event()  # never set: an interruptible pause

    def run(self) -> None:
        try:
            for (kind, name, body), pause in zip(self.writes, self.pauses, strict=True):
                if kind == "create":
                    self.world.create(name, body)
                else:
                    self.world.update(name, body)
                self.applied += 1
                self._pause.wait(pause)
        except BaseException as error:  # reported by the test, never lost in the thread
            self.error = error
        finally:
            self.finished = time.monotonic()


def test_operator_sigkilled_at_random_moments_loses_nothing(
    api: client.ApiClient, apps: Apps, world: World, operator: OperatorProcess, namespace: str
) -> None:
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"FAULT_SEED={seed} FAULT_ROUNDS={ROUNDS} FAULT_APPS={APPS}")
    rng = random.Random(seed)
    names = [f"app-{i:02d}" for i in range(APPS)]
    with (
        figures("1 SIGKILL of the operator", seed=seed) as fig,
        PodSampler(api, namespace) as sampler,
    ):
        world.sampler = sampler
        for round_index in range(ROUNDS):
            writes = _round_writes(rng, names, world.intended, round_index)
            pauses = [rng.uniform(0.0, 0.15) for _ in writes]
            first_kill = rng.randrange(1, len(writes) + 1)  # after this many writes
            second_kill = rng.randint(1, 8)  # after this many new Pods from the new process
            driver = Driver(world, writes, pauses)
            driver.start()
            wait_for(
                lambda driver=driver: (driver.applied, driver.error),
                lambda seen, first_kill=first_kill: seen[1] is not None or seen[0] >= first_kill,
                timeout=120,
                interval=0.01,
                what=f"write {first_kill} of round {round_index}",
            )
            operator.kill()
            operator.start()
            seen = len(sampler.seen_names) + second_kill
            with contextlib.suppress(WaitTimeout):  # few creates this round: kill anyway
                wait_for(
                    lambda: len(sampler.seen_names),
                    lambda n, seen=seen: n >= seen,
                    timeout=8,
                    interval=0.05,
                )
            operator.kill()
            operator.start()
            restarted = time.monotonic()
            fig.faults += 2
            driver.join()
            assert driver.error is None, driver.error
            verdict = converge_after(world, fig, max(restarted, driver.finished))
            fig.rounds += 1
            fig.lost_updates += len(verdict.lost)
        fig.duplicates = sampler.duplicates
        if sampler.duplicates:
            fig.notes["duplicate_evidence"] = sampler.evidence
        fig.notes.update({"apps": APPS, "writes": world.writes, "pod_samples": sampler.samples})
    assert sampler.duplicates == 0, sampler.excess
    assert sampler.samples > 10


# --- 2. kube-apiserver and etcd stopped and restarted mid-work ---------------------------------


def _restart_mid_work(
    piece: str,
    world: World,
    cluster: ClusterHandle,
    operator: OperatorProcess,
    api: client.ApiClient,
    namespace: str,
    scenario: str,
) -> None:
    from devcluster.cluster import start_piece, stop_piece

    assert cluster.run_dir is not None
    run_dir = cluster.run_dir
    pid = operator.process.pid if operator.process else None
    downtime: list[float] = []
    with figures(scenario) as fig, PodSampler(api, namespace) as sampler:
        world.sampler = sampler
        for round_index in range(2):
            if round_index == 0:
                for i in range(6):
                    world.create(f"r{i}", spec(replicas=2))
            else:
                for i in range(6):
                    world.update(f"r{i}", spec(replicas=3, port=8081, image="nginx:1.28"))
            # Mid-work: as soon as the operator has started acting on the writes.
            before = len(sampler.seen_names)
            wait_for(
                lambda: len(sampler.seen_names),
                lambda n, before=before: n > before,
                timeout=30,
                interval=0.02,
                what="the operator at work",
            )
            faulted = time.monotonic()
            try:
                # The apiserver crashes (SIGKILL): a graceful stop drains for tens of
                # seconds, long enough for the fake nodes to go NotReady, after which kwok
                # never makes their Pods ready again (a test-bed artifact, not a fault).
                # etcd stops gracefully: with --unsafe-no-fsync, a kill is not worth it.
                stop_piece(run_dir, piece, kill=piece == "kube-apiserver")
                fig.faults += 1
            finally:
                start_piece(run_dir, piece)
            wait_for(
                lambda: retrying(lambda: client.VersionApi(api).get_code()),
                what="the apiserver answering",
            )
            downtime.append(round(time.monotonic() - faulted, 1))
            converge_after(world, fig, faulted)  # from the fault, downtime included
            fig.rounds += 1
        fig.duplicates = sampler.duplicates
        if sampler.duplicates:
            fig.notes["duplicate_evidence"] = sampler.evidence
        fig.notes.update(
            {"operator_restarts": 0 if operator.process.pid == pid else 1, "downtime_s": downtime}
        )
    assert sampler.duplicates == 0, sampler.excess
    assert operator.running(), "the operator exited"
    assert operator.process is not None
    assert operator.process.pid == pid, "the operator exited"


def test_kube_apiserver_restarted_mid_work(
    world: World,
    cluster: ClusterHandle,
    operator: OperatorProcess,
    api: client.ApiClient,
    namespace: str,
) -> None:
    _restart_mid_work(
        "kube-apiserver", world, cluster, operator, api, namespace, "2a kube-apiserver restart"
    )


def test_etcd_restarted_mid_work(
    world: World,
    cluster: ClusterHandle,
    operator: OperatorProcess,
    api: client.ApiClient,
    namespace: str,
) -> None:
    _restart_mid_work("etcd", world, cluster, operator, api, namespace, "2b etcd restart")


# --- 3. Watches that expire (410 Gone) or silently stall -----------------------------------------


@pytest.fixture
def proxied_operator(
    operator: OperatorProcess, cluster: ClusterHandle, tmp_path: Any
) -> Iterator[tuple[OperatorProcess, Proxy]]:
    """The operator restarted behind a relay that can cut or stall its connections."""
    from devcluster.cluster import read_state

    assert cluster.run_dir is not None
    assert cluster.operator_kubeconfig is not None
    state = read_state(cluster.run_dir)
    assert state is not None
    proxy = Proxy(state.ports["kube-apiserver"])
    kubeconfig = proxy.kubeconfig(cluster.operator_kubeconfig, tmp_path / "proxied.kubeconfig")
    operator.stop()
    operator.start(env={"KUBECONFIG": str(kubeconfig)})
    try:
        wait_for(lambda: operator.scrape("/readyz")[0], lambda c: c == 200, what="/readyz")
        yield operator, proxy
    finally:
        operator.stop()
        proxy.close()
        operator.start()


def _gap_changes(world: World, apps: Apps) -> dict[str, Any]:
    """What happens while the operator cannot see: deletions, edits, a new app."""
    victim = sorted(p.metadata.name for p in apps.live_pods("a"))[0]
    apps.core.delete_namespaced_pod(victim, apps.namespace, grace_period_seconds=0)
    world.update("b", spec(replicas=3))
    world.delete("c")
    world.update("d", spec(replicas=2, port=9090))
    world.create("e", spec(replicas=2))
    return {"deleted_pod": victim}


def _gap_setup(world: World) -> None:
    world.create("a", spec(replicas=3))
    world.create("b", spec(replicas=2))
    world.create("c", spec(replicas=2))
    world.create("d", spec(replicas=2))
    world.converge()


def test_watch_expired_410_catches_up_with_deletions_in_the_gap(
    world: World,
    apps: Apps,
    cluster: ClusterHandle,
    proxied_operator: tuple[OperatorProcess, Proxy],
) -> None:
    from devcluster.cluster import start_piece, stop_piece

    operator, proxy = proxied_operator
    assert cluster.run_dir is not None
    _gap_setup(world)
    with figures("3a watch expired (410 Gone)") as fig:
        proxy.cut()  # the operator's connections drop; it keeps retrying
        changes = _gap_changes(world, apps)
        # The children of the deleted app go while the operator is away.
        wait_for(
            lambda: [p.metadata.name for p in apps.pods("c")],
            lambda pods: not pods,
            what="app c's Pods garbage-collected",
        )
        revision = etcd_compact(cluster.run_dir)
        # A restarted apiserver's watch cache starts at the current revision, and etcd no
        # longer has the history: every resourceVersion the operator holds is now too old.
        try:
            stop_piece(cluster.run_dir, "kube-apiserver", kill=True)
        finally:
            start_piece(cluster.run_dir, "kube-apiserver")
        healed = time.monotonic()
        proxy.heal()
        fig.faults = 1
        fig.rounds = 1
        verdict = converge_after(world, fig, healed)
        fig.lost_updates = len(verdict.lost)
        restarts = operator.log().count("Restarting the watch-stream")
        fig.notes.update({**changes, "compacted_at": revision, "watch_410_restarts": restarts})
    assert restarts > 0, "the operator never saw 410 Gone: the scenario did not happen"


def test_stalled_watch_is_noticed_and_caught_up(
    world: World,
    apps: Apps,
    proxied_operator: tuple[OperatorProcess, Proxy],
) -> None:
    operator, proxy = proxied_operator
    _gap_setup(world)
    with figures("3b stalled watch") as fig:
        frozen = proxy.stall()  # every open connection hangs, silently, for good
        stalled = time.monotonic()
        changes = _gap_changes(world, apps)
        fig.faults = 1
        fig.rounds = 1
        verdict = converge_after(world, fig, stalled)
        fig.lost_updates = len(verdict.lost)
        log = operator.log()
        fig.notes.update(
            {
                **changes,
                "frozen_connections": frozen,
                "inactive_reconnects": log.count("is inactive, reconnecting"),
                "watch_410_restarts": log.count("Restarting the watch-stream"),
            }
        )


# --- 4. Concurrent writers: 409 conflicts on the Service and on status --------------------------


class Hammer(threading.Thread):
    """A second writer that fights over the Service's selector and labels, and the status."""

    def __init__(self, apps: Apps, name: str) -> None:
        super().__init__(name="hammer", daemon=True)
        self.apps = apps
        self.name_ = name
        self.stop = threading.Event()
        self.writes = 0
        self.conflicts = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        core, custom, ns, name = self.apps.core, self.apps.custom, self.apps.namespace, self.name_
        round_ = 0
        try:
            while not self.stop.wait(0.05):
                round_ += 1
                for attempt in ("selector", "status"):
                    try:
                        if attempt == "selector":
                            # An update with the resourceVersion just read: conflicts with
                            # the operator's own writes of the Service.
                            service = core.read_namespaced_service(name, ns)
                            service.spec.selector = {"exposedapp.dev/app": "hijacked"}
                            service.metadata.labels["hammer.example/round"] = str(round_)
                            core.replace_namespaced_service(name, ns, service)
                        else:
                            app = custom.get_namespaced_custom_object_status(
                                GROUP, VERSION, ns, PLURAL, name
                            )
                            app.setdefault("status", {})["readyReplicas"] = 99
                            custom.replace_namespaced_custom_object_status(
                                GROUP, VERSION, ns, PLURAL, name, app
                            )
                        self.writes += 1
                    except client.ApiException as error:
                        if error.status != 409:
                            raise
                        self.conflicts += 1
        except BaseException as error:
            self.error = error


def test_concurrent_writers_on_the_service_and_status(
    world: World,
    apps: Apps,
    operator: OperatorProcess,
    audit: AuditLog,
    cluster: ClusterHandle,
    api: client.ApiClient,
    namespace: str,
) -> None:
    world.create("contested", spec(replicas=2))
    world.converge()
    with figures("4 concurrent writers (409)") as fig, PodSampler(api, namespace) as sampler:
        world.sampler = sampler
        start = audit.mark()
        reconciles_before = operator.log().count(f"Reconciled {namespace}/contested")
        hammer = Hammer(apps, "contested")
        hammer.start()
        try:
            wait_for(lambda: hammer.writes, lambda n: n >= 20, timeout=60, what="20 hammer writes")
            world.update("contested", spec(replicas=3, port=8081))  # mid-fight: not lost
            wait_for(lambda: hammer.writes, lambda n: n >= 60, timeout=90, what="60 more")
        finally:
            hammer.stop.set()
            hammer.join(30)
        assert hammer.error is None, hammer.error
        stopped = time.monotonic()
        fig.faults = hammer.writes
        fig.rounds = 1
        verdict = converge_after(world, fig, stopped)
        fig.lost_updates = len(verdict.lost)
        end = audit.mark()
        assert cluster.operator_user is not None
        requests = [
            r for r in audit.requests(start, end, cluster.operator_user) if r.namespace == namespace
        ]
        reconciles = operator.log().count(f"Reconciled {namespace}/contested") - reconciles_before
        fig.duplicates = sampler.duplicates
        if sampler.duplicates:
            fig.notes["duplicate_evidence"] = sampler.evidence
        fig.notes.update(
            {
                "hammer_writes": hammer.writes,
                "hammer_409s": hammer.conflicts,
                "operator_409s": sum(r.code == 409 for r in requests),
                "operator_requests": len(requests),
                "operator_reconciles": reconciles,
            }
        )
    service = apps.core.read_namespaced_service("contested", namespace)
    # The other writer's own label survives: the operator owns only what it applies.
    assert "hammer.example/round" in service.metadata.labels
    assert sampler.duplicates == 0
    # The operator answers each change once or so; it does not spin on its own writes.
    assert reconciles <= 6 * hammer.writes + 20, (reconciles, hammer.writes)


# --- 5. 429 throttling: API Priority and Fairness squeezes the operator --------------------------


def _apply(cluster: ClusterHandle, *objects: Mapping[str, Any]) -> None:
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )


def _service_account_kubeconfig(
    core: client.CoreV1Api, cluster: ClusterHandle, namespace: str, name: str, target: Any
) -> str:
    """A kubeconfig for a ServiceAccount token; returns the username the apiserver sees."""
    import yaml

    token = core.create_namespaced_service_account_token(
        name,
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": name, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = name
    target.write_text(yaml.safe_dump(config))
    target.chmod(0o600)
    return f"system:serviceaccount:{namespace}:{name}"


def test_throttled_by_priority_and_fairness_still_converges(
    world: World,
    apps: Apps,
    operator: OperatorProcess,
    audit: AuditLog,
    cluster: ClusterHandle,
    api: client.ApiClient,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Any,
) -> None:
    # The development identity is in system:masters, which the mandatory "exempt"
    # FlowSchema (precedence 1, reserved) always matches: no FlowSchema can throttle it.
    # So the operator runs here as a ServiceAccount (bound to cluster-admin: the point is
    # the throttling, not the RBAC), which an ordinary FlowSchema can squeeze.
    suffix = namespace[-6:]
    account, level, schema = "throttled-operator", f"faults-squeeze-{suffix}", f"faults-{suffix}"
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account))
    )
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"faults-throttled-{suffix}"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }
    squeeze = [
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": level},
            "spec": {
                "type": "Limited",
                "limited": {
                    # 1 share of ~250: a few seats; nothing lent or borrowed; no queue, so a
                    # request beyond the seats is refused with 429 at once.
                    "nominalConcurrencyShares": 1,
                    "lendablePercent": 0,
                    "borrowingLimitPercent": 0,
                    "limitResponse": {"type": "Reject"},
                },
            },
        },
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": schema},
            "spec": {
                "priorityLevelConfiguration": {"name": level},
                "matchingPrecedence": 2,  # before every suggested schema; 1 is "exempt"'s
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [
                    {
                        "subjects": [
                            {
                                "kind": "ServiceAccount",
                                "serviceAccount": {"name": account, "namespace": namespace},
                            }
                        ],
                        "resourceRules": [
                            {
                                "verbs": ["*"],
                                "apiGroups": ["*"],
                                "resources": ["*"],
                                "namespaces": ["*"],
                                "clusterScope": True,
                            }
                        ],
                    }
                ],
            },
        },
    ]
    dump = "/debug/api_priority_and_fairness/dump_priority_levels"
    user = _service_account_kubeconfig(
        core, cluster, namespace, account, tmp_path / "throttled.kubeconfig"
    )
    throttled: list[Any] = []
    with figures("5 throttled (429)") as fig, PodSampler(api, namespace) as sampler:
        world.sampler = sampler
        try:
            _apply(cluster, binding)
            operator.stop()
            operator.start(env={"KUBECONFIG": str(tmp_path / "throttled.kubeconfig")})
            wait_for(lambda: operator.scrape("/readyz")[0], lambda c: c == 200, what="/readyz")
            _apply(cluster, *squeeze)
            wait_for(
                lambda: cluster.kubectl("get", "--raw", dump).stdout,
                lambda text: level in text,
                what="the squeezed priority level in force",
            )
            start = audit.mark()
            for i in range(6):
                world.create(f"t{i}", spec(replicas=4))
            for i in range(6):
                world.update(f"t{i}", spec(replicas=4, image="nginx:1.28"))
            written = time.monotonic()
            fig.faults = 1
            fig.rounds = 1
            verdict = converge_after(world, fig, written)
            fig.lost_updates = len(verdict.lost)
            end = audit.mark()
            level_row = next(
                (
                    r
                    for r in cluster.kubectl("get", "--raw", dump).stdout.splitlines()
                    if level in r
                ),
                "",
            )
            throttled = [r for r in audit.requests(start, end, user) if r.code == 429]
        finally:
            cluster.kubectl("delete", "flowschema", schema, "--ignore-not-found")
            cluster.kubectl("delete", "prioritylevelconfiguration", level, "--ignore-not-found")
            cluster.kubectl(
                "delete", "clusterrolebinding", binding["metadata"]["name"], "--ignore-not-found"
            )
            operator.stop()
            operator.start()
        fig.duplicates = sampler.duplicates
        if sampler.duplicates:
            fig.notes["duplicate_evidence"] = sampler.evidence
        fig.notes.update(
            {
                "operator_429s": len(throttled),
                "throttled_requests": sorted({f"{r.verb} {r.resource}" for r in throttled}),
                "priority_level": level_row,
            }
        )
    assert throttled, "the operator was never throttled: the scenario did not happen"
    assert sampler.duplicates == 0


# --- 6 and 7. Quota and admission refusals: Degraded, backoff, recovery --------------------------


class Blocked:
    """An app whose Pods the API refuses: its refused attempts, read from the audit log."""

    def __init__(self, scenario: str, name: str, refused: Callable[[int], bool]) -> None:
        self.scenario = scenario
        self.name = name
        self.refused = refused
        self.degraded: dict[str, Any] = {}

    def refusals(self, events: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
        return [
            e
            for e in events
            if (e.get("objectRef") or {}).get("namespace") == namespace
            and (e.get("objectRef") or {}).get("resource") == "pods"
            and (e.get("objectRef") or {}).get("name", "").startswith(f"{self.name}-")
            and e.get("verb") == "create"
            and self.refused((e.get("responseStatus") or {}).get("code", 0))
        ]

    @staticmethod
    def attempts(refusals: list[dict[str, Any]]) -> list[float]:
        """Refusals come in bursts (one create per missing Pod): one burst, one reconcile."""
        bursts: list[float] = []
        for t in sorted(event_time(e) for e in refusals):
            if not bursts or t - bursts[-1] > 0.5:
                bursts.append(t)
        return bursts


def test_quota_and_admission_refusals_back_off_then_recover(
    world: World,
    apps: Apps,
    audit: AuditLog,
    cluster: ClusterHandle,
    operator: OperatorProcess,
    namespace: str,
) -> None:
    """6: a ResourceQuota lets 2 of 3 Pods in; 7: an admission policy refuses every Pod.

    Pod Security cannot be the refusal: the operator's Pods meet "restricted" by design,
    which this namespace enforces (they are admitted once the policy is gone). The refusal
    comes from a ValidatingAdmissionPolicy instead, as a platform team would add one.
    Both blocks run at once, to halve the waiting; each gets its own figures.
    """
    assert cluster.operator_user is not None
    assert cluster.audit_log is not None
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    apps.core.create_namespaced_resource_quota(
        namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="two-pods"),
            spec=client.V1ResourceQuotaSpec(hard={"pods": "2"}),
        ),
    )
    wait_for(
        lambda: apps.core.read_namespaced_resource_quota("two-pods", namespace).status.hard,
        what="the quota counted",
    )
    policy = f"faults-refuse-pods-{namespace[-6:]}"
    message = "Pods of this ExposedApp are refused in this namespace (fault test)"
    match = {
        "resourceRules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["pods"],
            }
        ]
    }
    objects = [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": policy},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": match,
                "validations": [
                    {
                        "expression": "!has(object.metadata.labels) || "
                        "!('exposedapp.dev/app' in object.metadata.labels) || "
                        "object.metadata.labels['exposedapp.dev/app'] != 'refused'",
                        "message": message,
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {
                "policyName": policy,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        },
    ]
    probe = {  # meets "restricted", so only the policy can refuse it
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "labels": {"exposedapp.dev/app": "refused"}},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "x",
                    "image": "x",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }

    def refused_probe() -> bool:
        try:
            apps.core.create_namespaced_pod(namespace, probe, dry_run="All")
        except client.ApiException as error:
            return message in (error.body or "")
        return False

    blocks = [
        Blocked("6 ResourceQuota refusal", "quota", lambda code: code == 403),
        Blocked("7 admission refusal", "refused", lambda code: code >= 400),
    ]
    try:
        _apply(cluster, *objects)
        wait_for(refused_probe, what="the admission policy in force")
        start = audit.mark()
        for block in blocks:
            world.create(block.name, spec(replicas=3))
        for block in blocks:
            block.degraded = wait_for(
                lambda block=block: apps.condition(block.name, "Degraded"),
                lambda c: c.get("status") == "True",
                what=f"{block.name} Degraded",
            )
            wait_for(
                lambda block=block: events_with_reason(apps, block.degraded["reason"]),
                what=f"a {block.degraded['reason']} event",
            )

        def observe() -> list[list[float]]:
            events = audit_events(cluster.audit_log, start, audit.mark(), cluster.operator_user)
            return [b.attempts(b.refusals(events, namespace)) for b in blocks]

        wait_for(
            observe,
            lambda seen: all(len(bursts) >= BLOCKED_ATTEMPTS for bursts in seen),
            timeout=30 + 2 ** (BLOCKED_ATTEMPTS + 2),
            interval=1,
            what=f"{BLOCKED_ATTEMPTS} refused attempts each",
        )
        end = audit.mark()
        events = audit_events(cluster.audit_log, start, end, cluster.operator_user)
        lifted = time.monotonic()
        apps.core.delete_namespaced_resource_quota("two-pods", namespace)
        cluster.kubectl("delete", "validatingadmissionpolicybinding", policy)
        world.converge()
        recovered = time.monotonic() - lifted
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding", policy, "--ignore-not-found")
        cluster.kubectl("delete", "validatingadmissionpolicy", policy, "--ignore-not-found")

    all_gaps = []
    for block in blocks:
        bursts = block.attempts(block.refusals(events, namespace))
        own = [
            e
            for e in events
            if (e.get("objectRef") or {}).get("namespace") == namespace
            and (e.get("objectRef") or {}).get("name", "").startswith(block.name)
            and event_time(e) >= bursts[0]
        ]
        gaps = [round(b - a, 1) for a, b in itertools.pairwise(bursts)]
        all_gaps.append(gaps)
        with figures(block.scenario) as fig:
            fig.faults = 1
            fig.rounds = 1
            fig.converged(recovered)  # both lifted together; converged when both were
            fig.blocked_seconds = round(max(event_time(e) for e in own) - bursts[0], 1)
            fig.blocked_requests = len(own)
            fig.notes.update(
                {
                    "reason": block.degraded["reason"],
                    "message": block.degraded["message"][:300],
                    "refused_attempts": len(bursts),
                    "gaps_s": gaps,
                }
            )
        assert apps.condition(block.name, "Degraded")["status"] == "False"
    quota, refused = blocks
    assert quota.degraded["reason"] == "QuotaExceeded"
    assert "exceeded quota: two-pods" in quota.degraded["message"]
    assert message in refused.degraded["message"]
    # No hot loop: attempts (bursts of creates) at least a second apart, and a few a minute
    # at most. (Whether each wait doubles cannot be told here: the 30 s resync of the
    # test's operator also runs a blocked app, on its own clock.)
    for gaps in all_gaps:
        assert len(gaps) >= BLOCKED_ATTEMPTS - 1, gaps
        assert min(gaps) >= 1.0, gaps
        assert len(gaps) * 60 / sum(gaps) <= 12, gaps


# --- 8 and 9. While the operator is down: many edits; deletions ---------------------------------


def test_many_edits_while_the_operator_is_down_last_state_wins(
    world: World,
    apps: Apps,
    operator: OperatorProcess,
    audit: AuditLog,
    cluster: ClusterHandle,
) -> None:
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    world.create("edited", spec(replicas=2))
    world.create("scaled", spec(replicas=1))
    world.converge()
    with figures("8 edits while the operator is down", seed=seed) as fig:
        operator.kill()
        body = spec(replicas=2)
        for _ in range(15):
            body = spec(
                replicas=rng.randint(0, 4),
                port=rng.choice(PORTS),
                image=rng.choice(IMAGES),
                podLabels={"edit": str(rng.randrange(1000))},
            )
            world.update("edited", body)
        for replicas in (3, 0, 5, 2):
            cluster.kubectl(
                "scale", "xapp", "scaled", f"--replicas={replicas}", "-n", apps.namespace
            )
        world.intended["scaled"] = spec(replicas=2)
        start = audit.mark()
        operator.start()
        started = time.monotonic()
        fig.faults = 1
        fig.rounds = 1
        verdict = converge_after(world, fig, started)
        fig.lost_updates = len(verdict.lost)
        end = audit.mark()
        final_hash = {
            p.metadata.labels["exposedapp.dev/template-hash"] for p in apps.live_pods("edited")
        }
        created = [
            w.name
            for w in operator_writes(audit, start, end, cluster, apps.namespace)
            if w.verb == "create" and w.resource == "pods" and w.code == 201
        ]
        stale = [
            n for n in created if n.startswith("edited-") and n.split("-")[1] not in final_hash
        ]
        fig.notes.update({"edits": 15 + 4, "pods_created_for_stale_specs": len(stale)})
    assert not stale, f"the restarted operator acted on an intermediate spec: {stale}"


def test_apps_deleted_while_the_operator_is_down_are_collected(
    world: World, apps: Apps, operator: OperatorProcess
) -> None:
    for name in ("keep", "gone", "reborn"):
        world.create(name, spec(replicas=2))
    world.converge()
    old_uid = apps.get("reborn")["metadata"]["uid"]
    with figures("9 deleted while the operator is down") as fig:
        operator.kill()
        world.delete("gone")
        world.delete("reborn")
        wait_for(
            lambda: [
                a["metadata"]["name"]
                for a in apps.custom.list_namespaced_custom_object(
                    GROUP, VERSION, apps.namespace, PLURAL
                )["items"]
            ],
            lambda names: "reborn" not in names,
            what="reborn deleted",
        )
        world.create("reborn", spec(replicas=1, image="nginx:1.28"))  # same name, new app
        operator.start()
        started = time.monotonic()
        fig.faults = 2
        fig.rounds = 1
        verdict = converge_after(world, fig, started)
        fig.orphans = verdict.orphans
        fig.lost_updates = len(verdict.lost)
    pods = apps.live_pods("reborn")
    assert old_uid not in {p.metadata.labels["exposedapp.dev/app-uid"] for p in pods}
    assert apps.pods("gone") == []


# --- 10. Foreign objects -----------------------------------------------------------------------


def test_foreign_objects_are_never_touched_and_nothing_of_ours_is_lost(
    world: World,
    apps: Apps,
    operator: OperatorProcess,
    audit: AuditLog,
    cluster: ClusterHandle,
    namespace: str,
) -> None:
    from exposedapp.domain.desired import AppRef, build_desired
    from exposedapp.domain.model import parse_spec

    shop = spec(replicas=2, podLabels={"team": "shop"})
    shop_hash = build_desired(AppRef(namespace, "shop", "x"), parse_spec(shop)).template_hash
    squatter = f"shop-{shop_hash}-0"  # the name the operator would give its first Pod

    def foreign_pod(name: str) -> client.V1Pod:
        return client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels={"team": "shop"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="x", image="x")]),
        )

    core = apps.core
    core.create_namespaced_pod(namespace, foreign_pod("lookalike"))
    core.create_namespaced_pod(namespace, foreign_pod(squatter))
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="taken", labels={"owner": "someone"}),
            spec=client.V1ServiceSpec(
                selector={"owner": "someone"}, ports=[client.V1ServicePort(port=1234)]
            ),
        ),
    )
    foreign_versions = {
        "lookalike": core.read_namespaced_pod("lookalike", namespace).metadata.resource_version,
        squatter: core.read_namespaced_pod(squatter, namespace).metadata.resource_version,
        "taken": core.read_namespaced_service("taken", namespace).metadata.resource_version,
    }
    start = audit.mark()
    with figures("10 foreign objects") as fig:
        world.create("shop", shop)
        world.create("taken", spec(replicas=1))
        began = time.monotonic()
        degraded = {"taken": "ServiceConflict"}
        converge_after(world, fig, began, ignore_pods=frozenset({squatter}), degraded=degraded)
        # Events are posted in the background: wait for it rather than read once.
        wait_for(
            lambda: events_with_reason(apps, "PodNameTaken"),
            what="an event about the taken Pod name (PodNameTaken)",
        )

        # Someone removes our identity label from one of our Pods.
        relabelled = sorted(p.metadata.name for p in apps.live_pods("shop"))[0]
        cluster.kubectl("label", "pod", relabelled, "-n", namespace, "exposedapp.dev/app-")
        edited = time.monotonic()
        ignored = frozenset({squatter, relabelled})
        converge_after(world, fig, edited, ignore_pods=ignored, degraded=degraded)

        # The foreign Service goes: ours takes its place (found by the backoff requeue).
        taken = core.read_namespaced_service("taken", namespace)
        assert taken.metadata.resource_version == foreign_versions.pop("taken"), "touched"
        core.delete_namespaced_service("taken", namespace)
        freed = time.monotonic()
        converge_after(world, fig, freed, ignore_pods=ignored)
        fig.faults = 4
        fig.rounds = 1
        end = audit.mark()

    # The scheduler and kwok write the foreign Pods too (binding, status), so their
    # resourceVersions move: the audit log says whether the operator wrote them, and their
    # metadata says nothing of ours was put on them.
    for name in foreign_versions:
        pod = core.read_namespaced_pod(name, namespace)
        assert pod.metadata.labels == {"team": "shop"}, f"{name} relabelled"
        assert not pod.metadata.owner_references, f"{name} adopted"
    touched = [
        str(w)
        for w in operator_writes(audit, start, end, cluster, namespace)
        if w.resource == "pods"
        and 200 <= w.code < 300
        and (w.name in ("lookalike", squatter) or (w.name == relabelled and w.verb != "create"))
    ]
    assert not touched, touched
    # The relabelled Pod: no longer counted or selected, never deleted by the operator, and
    # still owned (ownerReference) by the app, so it goes when the app goes.
    pod = core.read_namespaced_pod(relabelled, namespace)
    assert pod.metadata.deletion_timestamp is None
    assert pod.metadata.owner_references[0].name == "shop"
    assert apps.ready_endpoints("shop") == {"http": 2}
    assert apps.get("shop")["status"]["replicas"] == 2
    world.delete("shop")
    wait_for(
        lambda: [p.metadata.name for p in core.list_namespaced_pod(namespace).items],
        lambda names: relabelled not in names and "lookalike" in names and squatter in names,
        what="the relabelled Pod collected with its app, the foreign ones left",
    )
