"""Installing the operator: the renderings, its Pod's security, its RBAC, its failover.

- `kubectl kustomize` of both overlays and `helm template` (cluster-wide, namespaced, HA)
  render and apply cleanly (server-side) to the real control plane;
- the operator's Pod is admitted under Pod Security "restricted" and runs (kwok);
- least privilege, proven: the operator process runs with nothing but a token of the
  ServiceAccount that the rendering binds (TokenRequest API) and the reconciler works;
  the audit log shows every request it made was allowed by the rendered rules, and
  `kubectl auth can-i` shows what it can't do;
- high availability: two peered operators, the active one killed with SIGKILL, the time
  until the standby serves a new app measured and bounded, no double processing.

These tests never use the shared `operator` fixture: they stop it (`operator_process.stop()`)
so that only the operator under test reconciles; the fixture restarts it for later tests.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client

from conftest import OperatorProcess
from devcluster.cluster import die_with_parent
from kubetest import ClusterHandle, wait_for
from kubetest.audit import AuditLog

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "exposedapp"
OVERLAYS = DEPLOY / "kustomize" / "overlays"
GROUP, VERSION, PLURAL = "exposedapp.dev", "v1alpha1", "exposedapps"
FIELD_MANAGER = "exposedapp-install-test"  # not kubectl's: a stale CRD copy would conflict
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
}
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterKopfPeering",
}
PEERING_CRDS = ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")
# kopf's peering lifetime for the HA test (seconds): short, so the failover is quick.
PEERING_LIFETIME = 10
T = TypeVar("T")


# -- rendering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    tool: str  # kustomize | helm
    namespaced: bool = False
    replicas: int = 1


VARIANTS = {
    v.name: v
    for v in (
        Variant("kustomize-cluster-wide", "kustomize"),
        Variant("kustomize-namespaced", "kustomize", namespaced=True),
        Variant("helm-cluster-wide", "helm"),
        Variant("helm-namespaced", "helm", namespaced=True),
        Variant("helm-ha", "helm", replicas=2),
    )
}


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def helm() -> str:
    """helm, built from its Go module on first use (minutes, then cached)."""
    from devcluster.binaries import ensure_tool

    return str(ensure_tool("helm"))


def render(
    variant: Variant, cluster: ClusterHandle, helm: str, system: str, apps: str, workdir: Path
) -> list[dict[str, Any]]:
    """The variant's manifests for operator namespace `system` watching `apps` (if namespaced).

    kustomize's fixed names are moved to the test's own namespaces, and its cluster-scoped
    RBAC names get the same suffix, so tests never share or leak objects.
    """
    if variant.tool == "kustomize":
        overlay = OVERLAYS / ("namespaced" if variant.namespaced else "cluster-wide")
        text = cluster.kubectl("kustomize", str(overlay)).stdout
        text = text.replace("exposedapp-system", system).replace("exposedapp-apps", apps)
        docs = documents(text)
        for doc in docs:
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                doc["metadata"]["name"] += f"-{system}"
            if doc["kind"] == "ClusterRoleBinding":
                doc["roleRef"]["name"] += f"-{system}"
        return docs
    values: dict[str, Any] = {"replicaCount": variant.replicas}
    if variant.namespaced:
        values["watchNamespaces"] = [apps]
    values_file = workdir / f"values-{variant.name}.json"
    values_file.write_text(json.dumps(values))  # JSON is YAML
    result = subprocess.run(
        [
            helm,
            "template",
            "exposedapp",
            str(CHART),
            "--namespace",
            system,
            "--include-crds",
            "--values",
            str(values_file),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return documents(result.stdout)


def of_kind(docs: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in kinds]


def workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = of_kind(docs, "Deployment", "StatefulSet")
    return found


def service_account(docs: list[dict[str, Any]]) -> tuple[str, str]:
    (sa,) = of_kind(docs, "ServiceAccount")
    return sa["metadata"]["namespace"], sa["metadata"]["name"]


Grant = tuple[str, str, str, str]  # (apiGroup, resource, verb, resourceName or "")


def grants(docs: list[dict[str, Any]], kinds: tuple[str, ...]) -> set[Grant]:
    return {
        (group, resource, verb, name)
        for role in of_kind(docs, *kinds)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or [""]
    }


# -- installing ------------------------------------------------------------------------


@dataclass
class Installation:
    """Applies renderings and removes what they created, cluster-scoped objects included."""

    cluster: ClusterHandle
    core: client.CoreV1Api
    namespaces: list[str] = field(default_factory=list)
    cluster_objects: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        self.core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        )
        self.namespaces.append(name)
        return name

    def apply(self, docs: list[dict[str, Any]]) -> str:
        """Apply server-side, CRDs first (a CR of a new CRD can't be mapped before it)."""
        crds = of_kind(docs, "CustomResourceDefinition")
        rest = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
        rest.sort(key=lambda d: d["kind"] != "Namespace")
        for doc in rest:
            if doc["kind"] == "Namespace" and doc["metadata"]["name"] not in self.namespaces:
                self.namespaces.append(doc["metadata"]["name"])
            elif doc["kind"] in CLUSTER_SCOPED:
                self.cluster_objects.append((doc["kind"], doc["metadata"]["name"]))
        warnings = ""
        for batch in (crds, rest):
            if not batch:
                continue
            result = self.cluster.kubectl(
                "apply",
                "--server-side",
                f"--field-manager={FIELD_MANAGER}",
                "-f",
                "-",
                input=yaml.safe_dump_all(batch),
            )
            warnings += result.stderr
            if batch is crds:
                self.cluster.wait_established(*(d["metadata"]["name"] for d in crds))
        return warnings

    def remove(self) -> None:
        for kind, name in reversed(self.cluster_objects):
            self.cluster.kubectl(
                "delete", kind.lower(), name, "--ignore-not-found", "--wait=false", check=False
            )
        for name in self.namespaces:
            self.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def installation(cluster: ClusterHandle, core: client.CoreV1Api) -> Iterator[Installation]:
    done = Installation(cluster, core)
    yield done
    done.remove()


@pytest.fixture(scope="module", autouse=True)
def _peering_crds_removed_afterwards(cluster: ClusterHandle, crd: str) -> Iterator[None]:
    """The chart installs kopf's peering CRDs; remove them if this module brought them."""
    existing = set(
        cluster.kubectl("get", "crd", "-o", "name")
        .stdout.replace("customresourcedefinition.apiextensions.k8s.io/", "")
        .split()
    )
    yield
    for name in PEERING_CRDS:
        if name not in existing:
            cluster.kubectl(
                "delete", "crd", name, "--ignore-not-found", "--wait=false", check=False
            )


def unique(stem: str) -> str:
    return f"{stem}-{secrets.token_hex(3)}"


def install(
    variant: Variant,
    installation: Installation,
    cluster: ClusterHandle,
    helm: str,
    workdir: Path,
) -> tuple[list[dict[str, Any]], str, str, str]:
    """Render and apply a variant; return (docs, operator namespace, apps namespace, warnings)."""
    system, apps = unique("xsys"), unique("xapps")
    docs = render(variant, cluster, helm, system, apps, workdir)
    if variant.tool == "helm":
        # Helm installs into an existing namespace; the docs ask for this label on it.
        installation.namespace(system, RESTRICTED)
    installation.namespace(apps)
    warnings = installation.apply(docs)
    return docs, system, apps, warnings


# -- the operator under test -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalOperator:
    """`python -m exposedapp run` with a kubeconfig that holds only a ServiceAccount token."""

    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        program: str | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.args = args
        self.env = env or {}
        self.program = program
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        entry = ["-c", self.program] if self.program else ["-m", "exposedapp"]
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("EXPOSEDAPP_PEERING") and k != "POD_ID"
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    *entry,
                    "run",
                    "--verbose",
                    "--liveness",
                    f"http://127.0.0.1:{free_port()}/healthz",
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # an interrupted test run leaves no operator behind
                env={
                    **environment,
                    "KUBECONFIG": str(self.kubeconfig),
                    "EXPOSEDAPP_RESYNC_SECONDS": "30",
                    **self.env,
                },
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def local_operators(tmp_path: Path) -> Iterator[list[LocalOperator]]:
    started: list[LocalOperator] = []
    yield started
    for operator in started:
        operator.stop()


def token_kubeconfig(
    cluster: ClusterHandle, namespace: str, account: str, path: Path
) -> tuple[Path, str]:
    """A kubeconfig with the apiserver and its CA, and a fresh token of the account: nothing
    else. Returns the path and the token's ID (its JTI, which the audit log records)."""
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, "--duration=3600s"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    entry = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "cluster", "cluster": entry["cluster"]}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": account, "context": {"cluster": "cluster", "user": account}}],
                "current-context": account,
            }
        )
    )
    path.chmod(0o600)
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return path, str(claims["jti"])


# -- observing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    group: str
    resource: str  # with "/subresource"
    verb: str
    namespace: str
    name: str
    code: int
    credential: str  # the token's JTI

    def __str__(self) -> str:
        return (
            f"{self.verb} {self.group}/{self.resource} {self.namespace}/{self.name} -> {self.code}"
        )


def calls(cluster: ClusterHandle, start: int, end: int, user: str) -> list[Call]:
    """The user's requests between two audit marks (AuditLog.mark positions)."""
    assert cluster.audit_log is not None
    found = []
    for line in cluster.audit_log.read_text(errors="replace").splitlines()[start:end]:
        event = json.loads(line)
        if event.get("user", {}).get("username") != user:
            continue
        ref = event.get("objectRef") or {}
        extra = event["user"].get("extra") or {}
        credential = (extra.get("authentication.kubernetes.io/credential-id") or [""])[0]
        found.append(
            Call(
                group=ref.get("apiGroup", ""),
                resource=ref.get("resource", "")
                + (f"/{ref['subresource']}" if ref.get("subresource") else ""),
                verb=event.get("verb", ""),
                namespace=ref.get("namespace", ""),
                name=ref.get("name", ""),
                code=(event.get("responseStatus") or {}).get("code", 0),
                credential=credential.removeprefix("JTI="),
            )
        )
    return found


WRITES = {"create", "update", "patch", "delete", "deletecollection"}


class Apps:
    """ExposedApps through the official client (the test oracle), in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.namespace = namespace

    def create(self, name: str, replicas: int = 2) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ExposedApp",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 8080, "servicePort": 80}],
                    }
                ],
            },
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        return dict(
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        )

    def live_pods(self, name: str) -> list[Any]:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"{GROUP}/app={name}"
        ).items
        return [p for p in pods if p.metadata.deletion_timestamp is None]

    def ready_endpoints(self, service: str) -> int:
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={service}"
        ).items
        return sum(
            1 for s in slices for e in s.endpoints or [] if e.conditions and e.conditions.ready
        )

    def is_ready(self, name: str) -> bool:
        app = self.get(name)
        status = app.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        return bool(
            ready.get("status") == "True"
            and status.get("observedGeneration") == app["metadata"]["generation"]
        )

    def wait_ready(self, name: str, timeout: float, interval: float = 0.2) -> None:
        wait_for(
            lambda: self.is_ready(name),
            timeout=timeout,
            interval=interval,
            what=f"ExposedApp {self.namespace}/{name} Ready",
        )


def can_i(kubeconfig: Path, cluster: ClusterHandle, *args: str) -> bool:
    result = subprocess.run(
        [cluster.kubectl_binary, "--kubeconfig", str(kubeconfig), "auth", "can-i", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


def with_log(operators: list[LocalOperator], check: Callable[[], T]) -> T:
    """Run the check; on failure, show the operators' logs."""
    try:
        return check()
    except BaseException:
        for operator in operators:
            tail = "\n".join(operator.log().splitlines()[-80:])
            print(f"---- {operator.log_path.name} (tail) ----\n{tail}")
        raise


# -- (a) and (b): render, apply, and the operator's Pod under "restricted" -----------------


def test_helm_and_kustomize_grant_the_same_rules(
    cluster: ClusterHandle, helm: str, tmp_path: Path
) -> None:
    for scope in ("cluster-wide", "namespaced"):
        kustomized = render(VARIANTS[f"kustomize-{scope}"], cluster, helm, "sys", "apps", tmp_path)
        charted = render(VARIANTS[f"helm-{scope}"], cluster, helm, "sys", "apps", tmp_path)
        kinds = ("ClusterRole", "Role")
        assert grants(kustomized, kinds) == grants(charted, kinds), scope
        assert {
            (d["kind"], d["metadata"].get("namespace"))
            for d in of_kind(kustomized, "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
        } == {
            (d["kind"], d["metadata"].get("namespace"))
            for d in of_kind(charted, "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
        }


@pytest.mark.parametrize("name", list(VARIANTS))
def test_rendering_applies_cleanly_and_the_operator_pod_runs_restricted(
    name: str,
    cluster: ClusterHandle,
    core: client.CoreV1Api,
    crd: str,
    helm: str,
    installation: Installation,
    tmp_path: Path,
) -> None:
    variant = VARIANTS[name]
    docs, system, apps, warnings = install(variant, installation, cluster, helm, tmp_path)

    # Nothing to warn about: no PodSecurity "would violate", no deprecated API.
    assert "Warning" not in warnings, warnings
    for rule in (r for role in of_kind(docs, "Role", "ClusterRole") for r in role["rules"]):
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "secrets" not in rule["resources"]
        assert not [r for r in rule["resources"] if r.startswith("pods/")]
    rbac_kinds = {
        d["kind"] for d in of_kind(docs, "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    }
    args = workload(docs)["spec"]["template"]["spec"]["containers"][0].get("args") or []
    if variant.namespaced:
        assert rbac_kinds == {"Role", "RoleBinding"}
        assert {d["metadata"]["namespace"] for d in of_kind(docs, "Role", "RoleBinding")} == {apps}
        assert f"--namespace={apps}" in args
    else:
        assert rbac_kinds == {"ClusterRole", "ClusterRoleBinding"}
        assert not [a for a in args if a.startswith("--namespace")]
    if variant.replicas > 1:
        assert workload(docs)["kind"] == "StatefulSet"
        assert of_kind(docs, "ClusterKopfPeering")

    # The operator's namespace enforces "restricted" (the control: a privileged Pod is refused)...
    labels = core.read_namespace(system).metadata.labels or {}
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"
    refused = cluster.kubectl(
        "run",
        "privileged",
        "-n",
        system,
        "--image=busybox",
        "--dry-run=server",
        "--overrides",
        json.dumps(
            {
                "spec": {
                    "containers": [
                        {
                            "name": "privileged",
                            "image": "busybox",
                            "securityContext": {"privileged": True},
                        }
                    ]
                }
            }
        ),
        check=False,
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr

    # ... and the operator's Pods are admitted and run (kwok makes them Running).
    selector = ",".join(
        f"{k}={v}" for k, v in workload(docs)["spec"]["selector"]["matchLabels"].items()
    )
    pods = wait_for(
        lambda: core.list_namespaced_pod(system, label_selector=selector).items,
        lambda found: (
            len(found) == variant.replicas and all(p.status.phase == "Running" for p in found)
        ),
        timeout=60,
        what=f"{variant.replicas} operator Pod(s) Running in {system}",
    )
    for pod in pods:
        assert pod.spec.service_account_name == service_account(docs)[1]
        assert pod.spec.containers[0].security_context.read_only_root_filesystem is True
    refusals = [
        e.message for e in core.list_namespaced_event(system).items if e.reason in ("FailedCreate",)
    ]
    assert refusals == []


# -- (c) least privilege -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["kustomize-cluster-wide", "kustomize-namespaced", "helm-cluster-wide", "helm-namespaced"],
)
def test_operator_works_with_only_its_service_account(
    name: str,
    cluster: ClusterHandle,
    api: client.ApiClient,
    core: client.CoreV1Api,
    crd: str,
    helm: str,
    audit: AuditLog,
    operator_process: OperatorProcess,
    installation: Installation,
    local_operators: list[LocalOperator],
    tmp_path: Path,
) -> None:
    operator_process.stop()  # one operator at a time: the one under test
    variant = VARIANTS[name]
    docs, system, apps_namespace, _ = install(variant, installation, cluster, helm, tmp_path)
    sa_namespace, sa_name = service_account(docs)
    user = f"system:serviceaccount:{sa_namespace}:{sa_name}"
    kubeconfig, _ = token_kubeconfig(cluster, sa_namespace, sa_name, tmp_path / "sa.kubeconfig")
    operator = LocalOperator(
        kubeconfig,
        tmp_path / "operator.log",
        args=("--namespace", apps_namespace) if variant.namespaced else (),
    )
    local_operators.append(operator)
    apps = Apps(api, apps_namespace)

    start = audit.mark()
    operator.start()

    def scenario() -> None:
        apps.create("web", replicas=2)
        # Namespaced, kopf first retries listing namespaces and CRDs (forbidden) for ~54 s.
        apps.wait_ready("web", timeout=180)
        app = apps.get("web")
        pods = apps.live_pods("web")
        assert len(pods) == 2
        assert all(p.status.phase == "Running" and p.status.pod_ip for p in pods)
        identity = {f"{GROUP}/app": "web", f"{GROUP}/app-uid": app["metadata"]["uid"]}
        assert core.read_namespaced_service("web", apps_namespace).spec.selector == identity
        wait_for(lambda: apps.ready_endpoints("web"), lambda n: n == 2, what="2 ready endpoints")

        # A hand-edited selector is put back.
        core.patch_namespaced_service(
            "web",
            apps_namespace,
            [{"op": "replace", "path": "/spec/selector", "value": {"app": "hijacked"}}],
        )
        wait_for(
            lambda: core.read_namespaced_service("web", apps_namespace).spec.selector,
            lambda selector: selector == identity,
            what="the Service's selector put back",
        )

        # A deleted Pod is replaced.
        # Pods are told apart by UID: a replacement may take a freed name.
        victim = pods[0].metadata
        core.delete_namespaced_pod(victim.name, apps_namespace)
        wait_for(
            lambda: apps.live_pods("web"),
            lambda now: (
                len(now) == 2
                and victim.uid not in {p.metadata.uid for p in now}
                and all(p.status.phase == "Running" for p in now)
            ),
            what="a replacement Pod",
        )
        apps.wait_ready("web", timeout=60)

        # Scaled down: a Pod deleted. Switched to Headless: the Service deleted and created.
        apps.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            apps_namespace,
            PLURAL,
            "web",
            {"spec": {"replicas": 1, "service": {"type": "Headless"}}},
        )
        apps.wait_ready("web", timeout=60)
        wait_for(lambda: apps.live_pods("web"), lambda now: len(now) == 1, what="one Pod left")
        assert core.read_namespaced_service("web", apps_namespace).spec.cluster_ip == "None"

    with_log([operator], scenario)
    end = audit.mark()
    operator.stop()

    # Every request it made was allowed, but for kopf's optional cluster-scoped discovery
    # in the namespaced variant (it logs a warning and carries on).
    mine = {"", system, apps_namespace}
    made = [c for c in calls(cluster, start, end, user) if c.namespace in mine]
    optional = {
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    }
    denied = {(c.group, c.resource, c.verb) for c in made if c.code == 403}
    assert denied <= (optional if variant.namespaced else set()), denied
    granted = grants(docs, ("Role", "ClusterRole"))
    used = {(c.group, c.resource, c.verb) for c in made if c.code != 403 and c.resource}
    ungranted = {u for u in used if (*u, "") not in granted}
    assert ungranted == set(), ungranted
    print(f"{name}: used {sorted(used)}")
    print(f"{name}: granted, not used here: {sorted({g[:3] for g in granted} - used)}")

    # What it must not do.
    def cannot(*args: str) -> None:
        assert not can_i(kubeconfig, cluster, *args), f"{user} can {' '.join(args)}"

    def can(*args: str) -> None:
        assert can_i(kubeconfig, cluster, *args), f"{user} can't {' '.join(args)}"

    ns = ("-n", apps_namespace)
    cannot("get", "secrets", *ns)
    cannot("list", "secrets", *ns)
    cannot("get", "secrets", "-n", system)
    cannot("create", "pods", "--subresource=exec", *ns)
    cannot("create", "pods", "--subresource=attach", *ns)
    cannot("delete", "exposedapps.exposedapp.dev", *ns)
    cannot("update", "exposedapps.exposedapp.dev", *ns)
    cannot("update", "pods", *ns)
    cannot("patch", "pods", "--subresource=status", *ns)
    cannot("list", "nodes")
    cannot("create", "clusterrolebindings")
    cannot("impersonate", "serviceaccounts", *ns)
    can("create", "pods", *ns)
    can("patch", "pods", *ns)  # the drain: metadata only
    can("patch", "services", *ns)
    can("patch", "exposedapps.exposedapp.dev", "--subresource=status", *ns)
    can("create", "events.events.k8s.io", *ns)
    if variant.namespaced:
        cannot("list", "pods", "-n", "default")
        cannot("list", "pods", "--all-namespaces")
        cannot("list", "exposedapps.exposedapp.dev", "--all-namespaces")
        cannot("list", "namespaces")
        cannot("list", "customresourcedefinitions.apiextensions.k8s.io")
        # Nothing cluster-scoped at all: in any other namespace it has only what every
        # authenticated user has (the self-review APIs).
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": "default"},
        }
        listing = subprocess.run(
            [
                cluster.kubectl_binary,
                "--kubeconfig",
                str(kubeconfig),
                "create",
                "--validate=false",  # validation would list CRDs, which it can't
                "-f",
                "-",
                "-o",
                "json",
            ],
            input=json.dumps(review),
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        rules = json.loads(listing.stdout)["status"]["resourceRules"]
        resources = {
            (group, resource)
            for rule in rules
            for group in rule.get("apiGroups") or []
            for resource in rule.get("resources") or []
        }
        assert resources <= {
            ("authentication.k8s.io", "selfsubjectreviews"),
            ("authorization.k8s.io", "selfsubjectaccessreviews"),
            ("authorization.k8s.io", "selfsubjectrulesreviews"),
        }, resources
    else:
        can("list", "pods", "--all-namespaces")


# -- (d) high availability -------------------------------------------------------------------


def test_standby_takes_over_when_the_active_operator_is_killed(
    cluster: ClusterHandle,
    api: client.ApiClient,
    core: client.CoreV1Api,
    crd: str,
    helm: str,
    audit: AuditLog,
    operator_process: OperatorProcess,
    installation: Installation,
    local_operators: list[LocalOperator],
    tmp_path: Path,
) -> None:
    """Two operators peered as the chart's StatefulSet peers them (distinct priorities), each
    with its own token of the chart's ServiceAccount: the audit log tells them apart by the
    token's ID (JTI) while the RBAC under test stays the chart's own."""
    operator_process.stop()
    docs, _system, apps_namespace, _ = install(
        VARIANTS["helm-ha"], installation, cluster, helm, tmp_path
    )
    env = {
        e["name"]: e.get("value")
        for e in workload(docs)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    peering = env["EXPOSEDAPP_PEERING"]
    assert peering
    sa_namespace, sa_name = service_account(docs)
    user = f"system:serviceaccount:{sa_namespace}:{sa_name}"
    custom = client.CustomObjectsApi(api)

    def peers() -> dict[str, Any]:
        found = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)
        return dict(found.get("status") or {})

    operators = {}
    for who, priority in (("active", 100), ("standby", 50)):
        kubeconfig, jti = token_kubeconfig(
            cluster, sa_namespace, sa_name, tmp_path / f"{who}.kubeconfig"
        )
        operator = LocalOperator(
            kubeconfig,
            tmp_path / f"operator-{who}.log",
            env={
                "EXPOSEDAPP_PEERING": peering,
                "EXPOSEDAPP_PEERING_PRIORITY": str(priority),
                "EXPOSEDAPP_PEERING_LIFETIME": str(PEERING_LIFETIME),
                "POD_ID": f"operator-{who}",
            },
        )
        local_operators.append(operator)
        operators[who] = (operator, jti)
    active, _active_jti = operators["active"]
    standby, standby_jti = operators["standby"]
    apps = Apps(api, apps_namespace)

    def both_alive() -> tuple[int, int]:
        active.start()
        wait_for(peers, lambda p: "operator-active" in p, what="the active operator's record")
        apps.create("first", replicas=2)
        apps.wait_ready("first", timeout=60)
        start = audit.mark()
        standby.start()
        wait_for(peers, lambda p: "operator-standby" in p, what="the standby's record")
        wait_for(
            standby.log,
            # Paused on seeing the active peer; or, with mandatory peering, paused from the
            # start until the peers are known (and then it stays paused, silently).
            lambda log: (
                "Pausing operations in favour of" in log
                or f"{PLURAL}.{VERSION}.{GROUP} cluster-wide (paused)" in log
            ),
            what="the standby to pause",
        )
        # While both live, only the active one reconciles: a second app, and a resync.
        apps.create("second", replicas=2)
        apps.wait_ready("second", timeout=60)
        return start, audit.mark()

    start, end = with_log([active, standby], both_alive)
    made = calls(cluster, start, end, user)
    writes = {
        who: [c for c in made if c.credential == jti and c.verb in WRITES and c.group != "kopf.dev"]
        for who, (_, jti) in operators.items()
    }
    assert writes["standby"] == [], "\n".join(map(str, writes["standby"]))
    assert [c for c in writes["active"] if c.resource == "pods" and c.verb == "create"]

    # SIGKILL: no goodbye, so the standby must wait for the active one's record to expire.
    active.kill()
    killed = time.monotonic()
    start = audit.mark()
    apps.create("third", replicas=2)
    with_log([active, standby], lambda: apps.wait_ready("third", timeout=120, interval=0.1))
    failover = time.monotonic() - killed
    end = audit.mark()
    assert "Resuming operations" in standby.log()

    # The bound: the standby resumes at most one lifetime after the active one's last
    # keep-alive (kopf sleeps until that record expires, then re-checks), then restarts its
    # watches, lists, and reconciles; kwok runs the Pods to Ready in about a second. The
    # slack covers that on a loaded 2-core machine.
    bound = PEERING_LIFETIME + 20
    # This test's namespace only: the operators watch the whole cluster, and earlier tests'
    # namespaces may still be terminating with apps in them; the resumed standby reconciles
    # those too, and its creates there fail (404) as the namespace goes. That is right, and
    # not what this test measures.
    creates = [
        c
        for c in calls(cluster, start, end, user)
        if c.verb == "create" and c.resource == "pods" and c.namespace == apps_namespace
    ]
    # Mandatory peering: the standby was paused from the start and takes over with a
    # complete view, so no create is refused as AlreadyExists (a stale index would).
    stale = [c for c in creates if c.code == 409]
    report = (
        f"HA failover: {failover:.1f} s from SIGKILL of the active operator until the "
        f"standby made a new app Ready (peering lifetime {PEERING_LIFETIME} s, bound {bound} s); "
        f"{len(stale)} Pod creates refused as AlreadyExists after the resume (stale index)"
    )
    print(report)
    run_dir = ROOT / ".run"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "ha-failover.txt").write_text(report + "\n")
    assert failover <= bound, report

    # No double processing: exactly the desired Pods, each created once, by the standby.
    for name in ("first", "second", "third"):
        assert len(apps.live_pods(name)) == 2, name
    assert {c.credential for c in creates} == {standby_jti}
    created = sorted(c.name for c in creates if c.code == 201)
    assert created == sorted(p.metadata.name for p in apps.live_pods("third"))
    assert stale == [], "\n".join(map(str, stale))
    assert [c for c in creates if c.code != 201] == []
