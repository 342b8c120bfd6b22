"""The deploy/ manifests, read as files: copies in sync, RBAC tight, the Pod restricted.

Rendering (kubectl kustomize, helm template) and applying are e2e (tests/e2e/test_install.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kustomize" / "base"
NAMESPACED = ROOT / "deploy" / "kustomize" / "overlays" / "namespaced"


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def test_crd_copies_equal_their_sources() -> None:
    spec = importlib.util.spec_from_file_location("sync_copies", ROOT / "deploy" / "sync_copies.py")
    assert spec is not None
    assert spec.loader is not None
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    assert sync.stale() == [], "run `python deploy/sync_copies.py`"
    assert (BASE / "crd.yaml").read_bytes() == (
        ROOT / "crds" / "exposedapp.dev_exposedapps.yaml"
    ).read_bytes()


def rules_of(path: Path) -> list[dict[str, Any]]:
    return list(load(path)["rules"])


def test_rules_have_no_wildcards_secrets_or_exec() -> None:
    for path in (BASE / "clusterrole.yaml", NAMESPACED / "role.yaml"):
        for rule in rules_of(path):
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], (path.name, rule)
            assert "secrets" not in rule["resources"]
            assert not any(r.startswith("pods/") for r in rule["resources"]), rule
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])


def test_namespaced_role_is_the_cluster_role_less_crd_discovery() -> None:
    cluster = rules_of(BASE / "clusterrole.yaml")
    framework = [r for r in cluster if r["apiGroups"] == ["apiextensions.k8s.io"]]
    assert framework == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        }
    ]
    assert rules_of(NAMESPACED / "role.yaml") == [r for r in cluster if r not in framework]


def test_exact_application_verbs() -> None:
    granted = {
        (group, resource): rule["verbs"]
        for rule in rules_of(NAMESPACED / "role.yaml")
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == {
        ("exposedapp.dev", "exposedapps"): ["list", "watch"],
        ("exposedapp.dev", "exposedapps/status"): ["patch"],
        ("exposedapp.dev", "exposedapps/finalizers"): ["update"],
        ("", "pods"): ["get", "list", "watch", "create", "patch", "delete"],
        ("", "services"): ["get", "list", "watch", "create", "patch", "delete"],
        ("discovery.k8s.io", "endpointslices"): ["list", "watch"],
        ("apps", "controllerrevisions"): ["list", "create", "delete"],
        ("policy", "poddisruptionbudgets"): ["list", "watch", "create", "patch", "delete"],
        ("", "configmaps"): ["list", "watch"],
        ("events.k8s.io", "events"): ["create"],
    }


def test_deployment_pod_is_restricted_and_read_only() -> None:
    deployment = load(BASE / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["emptyDir"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["ports"][0]["containerPort"] == 8080
    assert set(container["resources"]) == {"requests", "limits"}
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_operator_namespace_enforces_restricted() -> None:
    labels = load(BASE / "namespace.yaml")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
