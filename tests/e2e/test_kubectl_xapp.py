"""`kubectl xapp` as a user runs it: the real kubectl finds the plugin on the PATH (installed
with the package) and runs it against the cluster, on the real node, where restarting
and rolling back mean real containers started and stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import OperatorProcess
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.audit import AuditLog
from kubetest.realnode import with_local_images
from test_reconciler import assert_second_reconcile_writes_nothing

BIN = Path(sys.executable).parent  # the venv's bin: where pip put kubectl-xapp


@pytest.fixture
def namespace(real_namespace: str) -> str:
    """Every test of this module runs its Pods on the real node."""
    return real_namespace


@pytest.fixture
def xapp(cluster: ClusterHandle, namespace: str) -> Any:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # kubectl hands a plugin its environment, not its flags: the kubeconfig goes by
        # $KUBECONFIG, as a user's would.
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        result = subprocess.run(
            [cluster.kubectl_binary, "xapp", "-n", namespace, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run


def _said(xapp: Any, *args: str) -> Any:
    """A fresh run of the plugin each time it is called (for wait_for)."""

    def run() -> list[str]:
        return list(xapp(*args).stdout.splitlines())

    return run


def _template_hashes(apps: Apps, name: str) -> set[str]:
    return {p.metadata.labels["exposedapp.dev/template-hash"] for p in apps.live_pods(name)}


def local_app(name: str) -> dict[str, Any]:
    body = with_local_images(app_manifest(name, replicas=2))
    body["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"port": "http", "path": "/"},
        "periodSeconds": 1,
    }
    return body


def test_rollout_status_history_undo_restart_pause_resume(
    apps: Apps, operator: OperatorProcess, xapp: Any, cluster: ClusterHandle, audit: AuditLog
) -> None:
    listed = subprocess.run(
        [cluster.kubectl_binary, "plugin", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        check=False,
    )
    assert str(BIN / "kubectl-xapp") in listed.stdout, listed.stdout + listed.stderr

    apps.create(local_app("web"))
    done = xapp("rollout", "status", "web", "--timeout", "120")
    assert done.stdout.splitlines()[-1] == 'exposedapp "web" successfully rolled out'
    first = _template_hashes(apps, "web")

    # A new release: the history has two revisions, the second current.
    env = [{"name": "RELEASE", "value": "2"}]
    container = {**apps.get("web")["spec"]["containers"][0], "env": env}
    apps.patch("web", {"spec": {"containers": [container]}})
    xapp("rollout", "status", "web", "--timeout", "120")
    second = _template_hashes(apps, "web")
    assert second != first
    history = wait_for(
        _said(xapp, "rollout", "history", "web"),
        lambda lines: len(lines) == 4,
        what="two revisions in the history",
    )
    assert history[:2] == ["exposedapp.exposedapp.dev/web", "REVISION  TEMPLATE    CHANGE"]
    assert history[2].startswith(f"1         {first.pop()}")
    assert history[3].startswith("2")
    assert history[3].endswith("(current)")

    # Undo: the first release's spec is written back; its revision is current again.
    undone = xapp("rollout", "undo", "web")
    assert undone.stdout.strip() == "exposedapp.exposedapp.dev/web rolled back (to revision 1)"
    assert "env" not in apps.get("web")["spec"]["containers"][0]
    xapp("rollout", "status", "web", "--timeout", "120")
    back = _template_hashes(apps, "web")
    assert back != second
    lines = xapp("rollout", "history", "web").stdout.splitlines()
    assert lines[2].startswith("1")
    assert lines[2].endswith("(current)")
    assert len(lines) == 4  # no third revision: the template is the first one

    # Restart: every Pod replaced, the spec otherwise unchanged.
    pods_before = {p.metadata.uid for p in apps.live_pods("web")}
    assert (
        xapp("rollout", "restart", "web").stdout.strip()
        == "exposedapp.exposedapp.dev/web restarted"
    )
    assert apps.get("web")["spec"]["restartedAt"].endswith("Z")
    xapp("rollout", "status", "web", "--timeout", "120")
    assert not pods_before & {p.metadata.uid for p in apps.live_pods("web")}

    # Pause: a new release waits; resume: it rolls.
    assert xapp("rollout", "pause", "web").stdout.strip() == "exposedapp.exposedapp.dev/web paused"
    refused = xapp("rollout", "pause", "web", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: exposedapp.exposedapp.dev/web is already paused"
    held = _template_hashes(apps, "web")
    apps.patch("web", {"spec": {"containers": [container]}})
    status = xapp("rollout", "status", "web", "--watch=false")
    wait_for(
        _said(xapp, "rollout", "status", "web", "--watch=false"),
        lambda said: said[-1].startswith("Waiting for rollout to finish: paused"),
        what="rollout status to say paused",
    )
    assert _template_hashes(apps, "web") == held, status.stdout
    assert (
        xapp("rollout", "resume", "web").stdout.strip() == "exposedapp.exposedapp.dev/web resumed"
    )
    xapp("rollout", "status", "web", "--timeout", "120")
    assert _template_hashes(apps, "web") != held
    assert_second_reconcile_writes_nothing(apps, "web", operator, audit, cluster)


def test_ports_draws_the_live_map(apps: Apps, operator: OperatorProcess, xapp: Any) -> None:
    body = local_app("mapped")
    body["spec"]["containers"][0]["ports"] = [
        {"name": "http", "containerPort": 8080, "servicePort": 80},
        {"name": "admin", "containerPort": 9901, "expose": False},
    ]
    body["spec"]["containers"][0]["args"] = ["8080/tcp", "9901/tcp"]
    apps.create(body)
    status = apps.wait_ready("mapped", timeout=120)["status"]
    drawn = wait_for(
        _said(xapp, "ports", "mapped", "--color", "never"),
        lambda lines: "2/2" in "\n".join(lines),
        what="two ready endpoints in the port map",
    )
    ip = status["service"]["clusterIP"]
    assert drawn == [
        f"ExposedApp {apps.namespace}/mapped: 2 replicas, 2 ready",
        f"  Service mapped: ClusterIP {ip}",
        "  CLIENTS      SERVICE PORT  NODEPORT  TARGETPORT  CONTAINER  PORT       READY",
        "  clients ──▶  80/TCP        -         ──▶ http    ──▶ web    http:8080  2/2",
        "  Pod-only ports (not on the Service): web:9901 (admin)",
    ]
    # A Pod gone: the map shows the missing endpoint until its replacement is ready.
    missing = xapp("ports", "nope", check=False)
    assert missing.returncode == 1
    assert "not found" in missing.stderr
