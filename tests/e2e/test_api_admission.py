"""The API at admission, on a real apiserver: what kubectl users are told before anything runs.

Every sample is accepted; every manifest of tests/apicases.py (the classic port mistakes
and more) is refused with an error naming the field; unknown fields are refused by
kubectl's strict validation and pruned without it; defaults, the scale subresource, the
type switches and the printer columns behave as the CRD promises. No operator runs here:
this is the apiserver alone.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apicases import INVALID, Invalid, app, container, port

pytestmark = pytest.mark.e2e

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
SAMPLES = sorted((Path(__file__).resolve().parents[2] / "deploy" / "samples").glob("*.yaml"))


@pytest.fixture(scope="module")
def dry_run_namespace(kubectl: Kubectl, crd: str) -> Iterator[str]:
    """One namespace for the dry runs, which store nothing."""
    name = f"t-admission-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def _apply(
    kubectl: Kubectl, namespace: str, manifest: dict[str, Any], *flags: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    # JSON, not YAML: kubectl's YAML 1.1 would read a value like `y` as a boolean.
    return kubectl(
        "apply", "-n", namespace, *flags, "-f", "-", input=json.dumps(manifest), check=check
    )


def _get(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    result = kubectl("get", "xapp", name, "-n", namespace, "-o", "json")
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_sample_is_accepted(kubectl: Kubectl, dry_run_namespace: str, sample: Path) -> None:
    result = kubectl("apply", "-n", dry_run_namespace, "--dry-run=server", "-f", str(sample))
    assert "(server dry run)" in result.stdout


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_manifest_is_refused_naming_the_field(
    kubectl: Kubectl, dry_run_namespace: str, case: Invalid
) -> None:
    result = _apply(kubectl, dry_run_namespace, case.manifest, "--dry-run=server")
    assert result.returncode != 0, f"accepted: {case.id}"
    for expected in case.apiserver:
        assert expected in result.stderr, result.stderr


def test_unknown_fields_are_pruned_without_strict_validation(
    kubectl: Kubectl, crd: str, namespace: str
) -> None:
    manifest = app(
        "pruned",
        hostNetwork=True,
        containers=[
            container(securityContext={"privileged": True}, ports=[port(hostPort=80)]),
        ],
    )
    _apply(kubectl, namespace, manifest, "--validate=false", check=True)
    spec = _get(kubectl, namespace, "pruned")["spec"]
    assert "hostNetwork" not in spec
    assert spec["containers"][0]["securityContext"] == {}  # privileged is not in the API
    assert spec["containers"][0]["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP", "expose": True}
    ]


def test_a_pruned_host_path_leaves_a_volume_the_api_refuses(
    kubectl: Kubectl, dry_run_namespace: str
) -> None:
    manifest = app(volumes=[{"name": "root", "hostPath": {"path": "/"}}])
    result = _apply(kubectl, dry_run_namespace, manifest, "--validate=false", "--dry-run=server")
    assert result.returncode != 0
    assert "spec.volumes[0]" in result.stderr
    assert 'volume "root" must set exactly one of' in result.stderr
    assert "hostPath and other volume types are not supported" in result.stderr


def test_defaults_are_stored(kubectl: Kubectl, crd: str, namespace: str) -> None:
    _apply(kubectl, namespace, app("hello"), check=True)
    spec = _get(kubectl, namespace, "hello")["spec"]
    assert spec == {
        "replicas": 1,
        "minReadySeconds": 0,
        "containers": [
            {
                "name": "app",
                "image": "nginx:1.27",
                "ports": [
                    {"name": "http", "containerPort": 8080, "protocol": "TCP", "expose": True}
                ],
            }
        ],
        "service": {
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "publishNotReadyAddresses": False,
        },
        "updateStrategy": {"type": "RollingUpdate"},
        "drain": {"enabled": True, "delaySeconds": 2, "timeoutSeconds": 60},
        "paused": False,
        "progressDeadlineSeconds": 600,
        "revisionHistoryLimit": 10,
        "rolloutOnConfigChange": False,
    }


def test_kubectl_scale_changes_spec_replicas_within_bounds(
    kubectl: Kubectl, crd: str, namespace: str
) -> None:
    _apply(kubectl, namespace, app("web"), check=True)
    kubectl("scale", "xapp", "web", "-n", namespace, "--replicas=3")
    assert _get(kubectl, namespace, "web")["spec"]["replicas"] == 3
    refused = kubectl("scale", "xapp", "web", "-n", namespace, "--replicas=300", check=False)
    assert refused.returncode != 0
    assert "less than or equal to 100" in refused.stderr
    assert _get(kubectl, namespace, "web")["spec"]["replicas"] == 3


def test_service_type_switches_every_way_including_headless(
    kubectl: Kubectl, crd: str, namespace: str
) -> None:
    # The operator replaces the Service when clusterIP must change; the API allows it.
    for service_type in ("ClusterIP", "NodePort", "LoadBalancer", "Headless", "ClusterIP"):
        _apply(kubectl, namespace, app("web", service={"type": service_type}), check=True)
        assert _get(kubectl, namespace, "web")["spec"]["service"]["type"] == service_type


def test_columns(kubectl: Kubectl, crd: str, namespace: str) -> None:
    _apply(
        kubectl,
        namespace,
        app(
            "web",
            containers=[
                container(ports=[port(servicePort=80)]),
                container("metrics", "exporter:1", [port("metrics", 9090)]),
            ],
        ),
        check=True,
    )
    status = {
        "readyText": "2/3",
        "portsText": "80/TCP,9090/TCP",
        "imagesText": "nginx:1.27,exporter:1",
        "selector": "exposedapp.dev/app=web",
        "relaxedDefaults": "runAsNonRoot=false",
        "drainingReplicas": 1,
        "service": {"name": "web", "type": "ClusterIP", "clusterIP": "10.96.7.7"},
    }
    kubectl(
        "patch",
        "xapp",
        "web",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )

    header, row = kubectl("get", "xapp", "-n", namespace).stdout.splitlines()
    assert header.split() == ["NAME", "READY", "TYPE", "CLUSTER-IP", "PORTS", "AGE"]
    assert row.split()[:5] == ["web", "2/3", "ClusterIP", "10.96.7.7", "80/TCP,9090/TCP"]

    header, row = kubectl("get", "xapp", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert header.split() == [
        "NAME",
        "READY",
        "TYPE",
        "CLUSTER-IP",
        "PORTS",
        "AGE",
        "SELECTOR",
        "IMAGES",
        "RELAXED",
        "DRAINING",
    ]
    assert row.split()[-4:] == [
        "exposedapp.dev/app=web",
        "nginx:1.27,exporter:1",
        "runAsNonRoot=false",
        "1",
    ]


def test_exposedapps_are_in_the_all_category(kubectl: Kubectl, crd: str, namespace: str) -> None:
    _apply(kubectl, namespace, app("web"), check=True)
    assert "exposedapp.exposedapp.dev/web" in kubectl("get", "all", "-n", namespace).stdout
