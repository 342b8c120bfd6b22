"""What GitOps tools see, judged by the real things on live ExposedApps.

Flux computes health with kstatus (sigs.k8s.io/cli-utils), built here from its Go module
(devcluster's kstatus tool); Argo CD runs the Lua health check this project ships
(deploy/argocd/exposedapp-health.lua), run here by a Lua 5.1 interpreter (gopher-lua,
Argo CD's, implements 5.1). Both must call an app healthy only once it serves its current
generation, and failed while a person must act.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from lupa import lua51

from conftest import OperatorProcess
from devcluster.binaries import ensure_tool
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.audit import AuditLog
from test_reconciler import assert_second_reconcile_writes_nothing

ROOT = Path(__file__).resolve().parents[2]
HEALTH_LUA = (ROOT / "deploy" / "argocd" / "exposedapp-health.lua").read_text()


@pytest.fixture(scope="session")
def kstatus() -> Callable[[dict[str, Any]], str]:
    binary = ensure_tool("kstatus")

    def status_of(app: dict[str, Any]) -> str:
        out = subprocess.run(
            [str(binary)], input=json.dumps(app), capture_output=True, text=True, check=True
        )
        return str(json.loads(out.stdout)["status"])

    return status_of


def argocd_health(app: dict[str, Any]) -> str:
    """The shipped Lua health check's verdict, as Argo CD runs it: `obj` is the object."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = _to_lua(lua, app)
    result = lua.execute(HEALTH_LUA)
    return str(result["status"])


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def _serving(app: dict[str, Any]) -> bool:
    status = app.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
    return (
        ready.get("status") == "True"
        and status.get("observedGeneration") == app["metadata"]["generation"]
    )


def test_lua_check_verdicts_for_fixed_objects() -> None:
    def app(generation: int, observed: int | None, **conditions: tuple[str, str]) -> Any:
        status: dict[str, Any] = {
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": "m"}
                for t, (s, r) in conditions.items()
            ]
        }
        if observed is not None:
            status["observedGeneration"] = observed
        return {"metadata": {"generation": generation}, "status": status}

    assert argocd_health({"metadata": {"generation": 1}}) == "Progressing"
    assert argocd_health(app(2, 1, Ready=("True", "Serving"))) == "Progressing"
    assert argocd_health(app(2, 2, Ready=("True", "Serving"))) == "Healthy"
    assert argocd_health(app(2, 2, Ready=("False", "RollingUpdate"))) == "Progressing"
    assert argocd_health(app(2, 2, Ready=("False", "X"), Degraded=("True", "Quota"))) == "Degraded"
    assert argocd_health(app(2, 2, Stalled=("True", "ProgressDeadlineExceeded"))) == "Degraded"
    assert argocd_health(app(2, 2, Progressing=("False", "Paused"))) == "Suspended"


def test_health_through_a_rollout_a_refusal_and_a_stuck_rollout(
    apps: Apps,
    operator: OperatorProcess,
    core: client.CoreV1Api,
    kstatus: Any,
    audit: AuditLog,
    cluster: ClusterHandle,
) -> None:
    apps.create(app_manifest("health", replicas=2, progressDeadlineSeconds=8))
    app = apps.wait_ready("health")
    assert (kstatus(app), argocd_health(app)) == ("Current", "Healthy")

    # A rollout, sampled while it runs: never healthy before it serves the new generation.
    samples: list[tuple[bool, str, str]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen = apps.get("health")
            if seen.get("status"):
                samples.append((_serving(seen), kstatus(seen), argocd_health(seen)))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        apps.patch("health", {"spec": {"podLabels": {"release": "2"}}})
        apps.wait_ready("health")
    finally:
        stop.set()
        sampler.join()
    rolling = [(k, a) for serving, k, a in samples if not serving]
    assert rolling, "no sample caught the rollout"
    assert set(rolling) == {("InProgress", "Progressing")}, samples
    assert {(k, a) for serving, k, a in samples if serving} <= {("Current", "Healthy")}
    app = apps.get("health")
    assert (kstatus(app), argocd_health(app)) == ("Current", "Healthy")

    # A rollout that cannot progress (its Pods fit no node): past the deadline, Failed.
    apps.patch("health", {"spec": {"nodeSelector": {"example.test/nowhere": "true"}}})
    stuck = wait_for(
        lambda: apps.get("health"),
        lambda a: kstatus(a) == "Failed",
        timeout=60,
        what="kstatus Failed after the progress deadline",
    )
    stalled = next(c for c in stuck["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "ProgressDeadlineExceeded"
    assert argocd_health(stuck) == "Degraded"
    assert apps.condition("health", "Progressing")["reason"] == "ProgressDeadlineExceeded"

    # Unstuck, then refused by a quota: Degraded is Failed too.
    apps.patch("health", {"spec": {"nodeSelector": None}})
    apps.wait_ready("health", timeout=90)
    assert_second_reconcile_writes_nothing(apps, "health", operator, audit, cluster)
    core.create_namespaced_resource_quota(
        apps.namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="pods"),
            spec=client.V1ResourceQuotaSpec(hard={"pods": "2"}),
        ),
    )
    apps.patch("health", {"spec": {"replicas": 3}})
    refused = wait_for(
        lambda: apps.get("health"),
        lambda a: kstatus(a) == "Failed",
        timeout=60,
        what="kstatus Failed while the quota refuses a Pod",
    )
    assert apps.condition("health", "Degraded")["reason"] == "QuotaExceeded"
    assert argocd_health(refused) == "Degraded"


def test_paused_is_suspended_for_argocd(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(app_manifest("held", replicas=1))
    apps.wait_ready("held")
    apps.patch("held", {"spec": {"paused": True, "podLabels": {"release": "2"}}})
    held = wait_for(
        lambda: apps.get("held"),
        lambda a: argocd_health(a) == "Suspended",
        what="Argo CD health Suspended while paused",
    )
    assert apps.condition("held", "Progressing")["reason"] == "Paused"
    assert held["status"]["updatedReplicas"] == 0  # no rollout step while paused
    assert_second_reconcile_writes_nothing(apps, "held", operator, audit, cluster)
    apps.patch("held", {"spec": {"paused": False}})
    assert argocd_health(apps.wait_ready("held")) == "Healthy"


def test_the_chart_ships_the_same_health_check() -> None:
    helm = ensure_tool("helm")
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            "exposedapp",
            str(ROOT / "deploy" / "helm" / "exposedapp"),
            "--set",
            "argocd.healthCheck=true",
            "--show-only",
            "templates/argocd-health.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    config_map = yaml.safe_load(rendered)
    key = "resource.customizations.health.exposedapp.dev_ExposedApp"
    assert config_map["data"][key] == HEALTH_LUA
