"""rolloutOnConfigChange against the real control plane and the real operator: new data in
a referenced ConfigMap (or Secret, when the installation lets the operator read Secrets)
rolls the Pods of the apps that opted in, and only theirs."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from conftest import OperatorProcess
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.audit import AuditLog
from test_reconciler import assert_second_reconcile_writes_nothing


def _hashes(apps: Apps, name: str) -> set[str]:
    return {p.metadata.labels["exposedapp.dev/template-hash"] for p in apps.live_pods(name)}


def _with_config(name: str, opted: bool, **volume: Any) -> dict[str, Any]:
    body = app_manifest(name, replicas=2, rolloutOnConfigChange=opted)
    body["spec"]["volumes"] = [{"name": "conf", **volume}]
    body["spec"]["containers"][0]["volumeMounts"] = [{"name": "conf", "mountPath": "/etc/conf"}]
    return body


def _settled(apps: Apps, name: str, hashes: set[str]) -> bool:
    """Every live Pod of one new template, and Ready at the current generation."""
    now = _hashes(apps, name)
    return len(now) == 1 and now != hashes and _ready(apps, name)


def _ready(apps: Apps, name: str) -> bool:
    app = apps.get(name)
    ready = apps.condition(name, "Ready")
    return bool(
        ready.get("status") == "True"
        and app["status"].get("observedGeneration") == app["metadata"]["generation"]
    )


def test_a_configmap_change_rolls_the_apps_that_opted_in(
    apps: Apps,
    operator: OperatorProcess,
    core: client.CoreV1Api,
    audit: AuditLog,
    cluster: ClusterHandle,
) -> None:
    core.create_namespaced_config_map(
        apps.namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"level": "info"}),
    )
    apps.create(_with_config("follows", True, configMap={"name": "settings"}))
    apps.create(_with_config("ignores", False, configMap={"name": "settings"}))
    apps.wait_ready("follows")
    apps.wait_ready("ignores")
    follows, ignores = _hashes(apps, "follows"), _hashes(apps, "ignores")
    pod = apps.live_pods("follows")[0]
    assert pod.metadata.annotations["exposedapp.dev/config-hash"]

    core.patch_namespaced_config_map("settings", apps.namespace, {"data": {"level": "debug"}})
    wait_for(
        lambda: _settled(apps, "follows", follows),
        what="the opted-in app rolled to a new template",
        timeout=90,
    )
    told = [
        e.message
        for e in core.list_namespaced_event(apps.namespace).items
        if e.involved_object.name == "follows"
    ]
    assert any("referenced ConfigMap or Secret data changed" in note for note in told), told
    assert _hashes(apps, "ignores") == ignores  # not opted in: never rolled
    assert "exposedapp.dev/config-hash" not in (
        apps.live_pods("ignores")[0].metadata.annotations or {}
    )
    assert_second_reconcile_writes_nothing(apps, "follows", operator, audit, cluster)

    # The ConfigMap deleted: a change too (the Pods would not start again without it).
    before = _hashes(apps, "follows")
    core.delete_namespaced_config_map("settings", apps.namespace)
    wait_for(
        lambda: _hashes(apps, "follows"),
        lambda now: now != before,
        what="a rollout toward the missing ConfigMap",
        timeout=60,
    )


def test_secret_changes_roll_only_when_the_installation_watches_secrets(
    apps: Apps, operator: OperatorProcess, core: client.CoreV1Api
) -> None:
    core.create_namespaced_secret(
        apps.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="token"), string_data={"t": "1"}),
    )
    apps.create(_with_config("secretive", True, secret={"secretName": "token"}))
    apps.wait_ready("secretive")
    unwatched = _hashes(apps, "secretive")
    # Not watched (the default installation): a new Secret value rolls nothing. The
    # operator is woken by an edit of the app itself, so a missed event cannot hide a roll.
    core.patch_namespaced_secret("token", apps.namespace, {"stringData": {"t": "2"}})
    apps.patch("secretive", {"metadata": {"annotations": {"test.example/poke": "1"}}})
    wait_for(lambda: _ready(apps, "secretive"), what="the app looked at again")
    assert _hashes(apps, "secretive") == unwatched

    # Watched (EXPOSEDAPP_WATCH_SECRETS, what configRollout.secrets sets): it rolls.
    operator.stop()
    operator.start(env={"EXPOSEDAPP_WATCH_SECRETS": "true"})
    try:
        # On start the operator hashes the Secret's current data: the template changes once.
        wait_for(
            lambda: _settled(apps, "secretive", unwatched),
            what="the app rolled now that the Secret's data is known",
            timeout=90,
        )
        watched = _hashes(apps, "secretive")
        core.patch_namespaced_secret("token", apps.namespace, {"stringData": {"t": "3"}})
        wait_for(
            lambda: _settled(apps, "secretive", watched),
            what="the app rolled on the Secret's new data",
            timeout=90,
        )
    finally:
        operator.stop()
        operator.start()
