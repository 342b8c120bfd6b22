"""Builders: literal spec in, exact Pods and Service out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from exposedapp.domain.desired import AppRef, build_desired
from exposedapp.domain.model import parse_spec

APP = AppRef("shop", "web", "0b3f-uid")
OWNER = {
    "apiVersion": "exposedapp.dev/v1alpha1",
    "kind": "ExposedApp",
    "name": "web",
    "uid": "0b3f-uid",
    "controller": True,
    "blockOwnerDeletion": True,
}
SPEC: dict[str, Any] = {
    "replicas": 2,
    "podLabels": {"team": "shop"},
    "containers": [
        {
            "name": "app",
            "image": "shop:1.0",
            "args": ["--port=8080"],
            "ports": [{"name": "http", "containerPort": 8080, "servicePort": 80}],
        },
        {
            "name": "metrics",
            "image": "exporter:2",
            "ports": [
                {"name": "metrics", "containerPort": 9090},
                {"name": "debug", "containerPort": 6060, "expose": False},
            ],
        },
    ],
    "service": {"type": "NodePort", "annotations": {"team": "shop"}},
}


def test_pod_template_is_exact() -> None:
    desired = build_desired(APP, parse_spec(SPEC))
    pod = desired.pod("web-x-0")
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-x-0",
            "namespace": "shop",
            "labels": {
                "team": "shop",
                "app.kubernetes.io/name": "web",
                "app.kubernetes.io/instance": "web",
                "app.kubernetes.io/managed-by": "exposedapp-operator",
                "exposedapp.dev/app": "web",
                "exposedapp.dev/app-uid": "0b3f-uid",
                "exposedapp.dev/template-hash": desired.template_hash,
            },
            "annotations": {
                "exposedapp.dev/template": json.dumps(
                    {
                        "images": {"app": "shop:1.0", "metrics": "exporter:2"},
                        "ports": {"debug": "6060/TCP", "http": "8080/TCP", "metrics": "9090/TCP"},
                    },
                    sort_keys=True,
                )
            },
            "ownerReferences": [OWNER],
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "shop:1.0",
                    "args": ["--port=8080"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                },
                {
                    "name": "metrics",
                    "image": "exporter:2",
                    "ports": [
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                        {"name": "debug", "containerPort": 6060, "protocol": "TCP"},
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                },
            ],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "restartPolicy": "Always",
        },
    }


def test_service_targets_ports_by_name_and_selects_identity_only() -> None:
    desired = build_desired(APP, parse_spec(SPEC))
    assert desired.service == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {
                "app.kubernetes.io/name": "web",
                "app.kubernetes.io/instance": "web",
                "app.kubernetes.io/managed-by": "exposedapp-operator",
                "exposedapp.dev/app": "web",
            },
            "annotations": {"team": "shop"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "type": "NodePort",
            "selector": {"exposedapp.dev/app": "web", "exposedapp.dev/app-uid": "0b3f-uid"},
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"},
                {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": "metrics"},
            ],
            "sessionAffinity": "None",
            "publishNotReadyAddresses": False,
            "externalTrafficPolicy": "Cluster",
        },
    }


def test_headless_service_has_no_cluster_ip_and_pinned_node_port_is_kept() -> None:
    headless = build_desired(APP, parse_spec({**SPEC, "service": {"type": "Headless"}}))
    assert headless.service is not None
    assert headless.service["spec"]["type"] == "ClusterIP"
    assert headless.service["spec"]["clusterIP"] == "None"
    pinned = {
        **SPEC,
        "containers": [
            {
                "name": "app",
                "image": "a",
                "ports": [{"name": "http", "containerPort": 8080, "nodePort": 30080}],
            }
        ],
    }
    service = build_desired(APP, parse_spec(pinned)).service
    assert service is not None
    assert service["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 8080, "targetPort": "http", "nodePort": 30080}
    ]


@pytest.mark.parametrize(
    ("change", "same_hash"),
    [
        ({"replicas": 5}, True),  # scaling is not a template change
        ({"service": {"type": "ClusterIP"}}, True),  # nor is the Service
        ({"podLabels": {"team": "other"}}, False),
        (
            {"containers": [{**SPEC["containers"][0], "image": "shop:1.1"}, SPEC["containers"][1]]},
            False,
        ),
    ],
)
def test_template_hash_changes_only_with_the_pod_template(
    change: dict[str, Any], same_hash: bool
) -> None:
    before = build_desired(APP, parse_spec(SPEC)).template_hash
    after = build_desired(APP, parse_spec({**SPEC, **change})).template_hash
    assert (before == after) is same_hash


def test_builders_never_mutate_and_return_fresh_copies() -> None:
    desired = build_desired(APP, parse_spec(SPEC))
    first = desired.pod("a")
    first["metadata"]["labels"]["x"] = "y"
    assert "x" not in desired.pod("b")["metadata"]["labels"]
    assert [m.name for m in desired.ports] == ["http", "metrics"]
    assert [(m.port, m.container_port, m.container) for m in desired.ports] == [
        (80, 8080, "app"),
        (9090, 9090, "metrics"),
    ]


# The template hashes of the samples, pinned: a change of the operator that changes the
# Pods it builds from an unchanged spec rolls every app on upgrade. Change these only with
# a change that means to (and say so in the release notes).
SAMPLE_TEMPLATE_HASHES = {
    "headless.yaml": "0efeadf874",
    "loadbalancer.yaml": "b4df4b4896",
    "minimal.yaml": "8fa80ef8f0",
    "multi-container.yaml": "34a6211c9e",
    "nodeport.yaml": "8fa80ef8f0",
}


@pytest.mark.parametrize(("sample", "template_hash"), SAMPLE_TEMPLATE_HASHES.items())
def test_an_unchanged_spec_keeps_its_template_hash_across_operator_versions(
    sample: str, template_hash: str
) -> None:
    path = Path(__file__).resolve().parents[2] / "deploy" / "samples" / sample
    (body,) = [d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "ExposedApp"]
    ref = AppRef("ns", body["metadata"]["name"], "uid")
    assert build_desired(ref, parse_spec(body)).template_hash == template_hash


def test_a_volume_mount_says_read_only_false_or_an_empty_sub_path_as_absent() -> None:
    def template_hash(mount: dict[str, Any]) -> str:
        spec = {
            "containers": [
                {
                    "name": "app",
                    "image": "shop:1.0",
                    "volumeMounts": [mount],
                    "ports": [{"name": "http", "containerPort": 8080}],
                }
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }
        return build_desired(APP, parse_spec(spec)).template_hash

    plain = template_hash({"name": "data", "mountPath": "/data"})
    assert template_hash({"name": "data", "mountPath": "/data", "readOnly": False}) == plain
    assert template_hash({"name": "data", "mountPath": "/data", "subPath": ""}) == plain
    assert template_hash({"name": "data", "mountPath": "/data", "readOnly": True}) != plain
