"""The control plane is real: scheduling, fake kubelets, endpoints, GC, CEL and RBAC all work."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kubetest import ClusterHandle, wait_for


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def _service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "web", "port": 80, "targetPort": "http"}],
        },
    }


def _ready_endpoints(discovery: client.DiscoveryV1Api, namespace: str, service: str) -> list[Any]:
    slices = discovery.list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    ).items
    return [
        (endpoint, s.ports)
        for s in slices
        for endpoint in (s.endpoints or [])
        if endpoint.conditions and endpoint.conditions.ready
    ]


def test_deployment_pods_get_ips_and_ready_endpoints_on_named_port(
    cluster: ClusterHandle, api: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": [_deployment("web", 3), _service("web")]}
        ),
    )

    pods = wait_for(
        lambda: core.list_namespaced_pod(namespace, label_selector="app=web").items,
        lambda items: (
            len(items) == 3
            and all(
                p.status.phase == "Running" and p.status.pod_ip and p.spec.node_name for p in items
            )
        ),
        what="3 Running pods with IPs on fake nodes",
    )
    discovery = client.DiscoveryV1Api(api)
    endpoints = wait_for(
        lambda: _ready_endpoints(discovery, namespace, "web"),
        lambda found: len(found) == 3,
        what="3 ready endpoints",
    )

    assert sorted(e.addresses[0] for e, _ in endpoints) == sorted(p.status.pod_ip for p in pods)
    # The named targetPort resolved to the container's port number, not the Service port.
    assert {(port.name, port.port) for _, ports in endpoints for port in ports} == {("web", 8080)}


def test_deleting_a_deployment_garbage_collects_its_replicaset_and_pods(
    cluster: ClusterHandle, api: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_deployment("gc", 2)))
    apps = client.AppsV1Api(api)
    wait_for(
        lambda: core.list_namespaced_pod(namespace, label_selector="app=gc").items,
        lambda items: len(items) == 2,
        what="2 pods",
    )

    apps.delete_namespaced_deployment("gc", namespace, propagation_policy="Background")

    wait_for(
        lambda: apps.list_namespaced_replica_set(namespace).items,
        lambda items: items == [],
        what="the ReplicaSet garbage-collected",
    )
    wait_for(
        lambda: core.list_namespaced_pod(namespace, label_selector="app=gc").items,
        lambda items: items == [],
        what="the Pods garbage-collected and finalised by kwok",
    )


@pytest.fixture
def widget_crd(cluster: ClusterHandle) -> Any:
    group = f"smoke{secrets.token_hex(3)}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "min": {"type": "integer"},
                                        "max": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.min <= self.max",
                                            "message": "min must not exceed max",
                                            "fieldPath": ".min",
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(crd))
    cluster.wait_established(f"widgets.{group}")
    yield group
    cluster.kubectl("delete", f"crd/widgets.{group}", "--wait=false")


def test_crd_cel_rule_rejects_a_bad_object_with_its_message(
    cluster: ClusterHandle, widget_crd: str, namespace: str
) -> None:
    def widget(name: str, low: int, high: int) -> str:
        return json.dumps(
            {
                "apiVersion": f"{widget_crd}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"min": low, "max": high},
            }
        )

    good = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=widget("good", 1, 2), check=False
    )
    bad = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=widget("bad", 3, 2), check=False
    )

    assert good.returncode == 0, good.stderr
    assert bad.returncode != 0
    assert "spec.min: Invalid value" in bad.stderr
    assert "min must not exceed max" in bad.stderr


def test_rbac_denies_a_service_account_what_it_was_not_granted(
    cluster: ClusterHandle, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl(
        "create", "role", "pod-reader", "-n", namespace, "--verb=get,list,watch", "--resource=pods"
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "reader",
        "-n",
        namespace,
        "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
    )
    token = cluster.kubectl("create", "token", "reader", "-n", namespace).stdout.strip()
    # A kubeconfig holding only the token, so no admin certificate rides along.
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    admin["users"] = [{"name": "reader", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "reader"
    reader_config = tmp_path / "reader.kubeconfig"
    reader_config.write_text(yaml.safe_dump(admin))
    as_reader = ("--kubeconfig", str(reader_config))

    allowed = cluster.kubectl("get", "pods", "-n", namespace, *as_reader, check=False)
    denied = cluster.kubectl("create", "configmap", "x", "-n", namespace, *as_reader, check=False)
    elsewhere = cluster.kubectl("get", "pods", "-n", "kube-system", *as_reader, check=False)

    assert allowed.returncode == 0, allowed.stderr
    assert denied.returncode != 0
    assert (
        f'User "system:serviceaccount:{namespace}:reader" cannot create resource '
        '"configmaps"' in denied.stderr
    )
    assert "forbidden" in elsewhere.stderr
