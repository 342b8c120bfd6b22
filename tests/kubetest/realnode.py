"""The real node in tests: namespaces whose Pods run there, a client Pod, local images.

A namespace made by ``create_real_namespace`` sends its Pods to the real node (the
apiserver's PodNodeSelector and PodTolerationRestriction plugins add the node selector and
toleration; the Pods' own spec is untouched). ``ClientPod`` is a Pod there to send
requests from inside the cluster with ``kubectl exec``. ``with_local_images`` turns a
sample into one that runs on the local node: every container runs devcluster's netserver,
serving each port it declares.
"""

from __future__ import annotations

import copy
from typing import Any

from kubernetes import client

from devcluster.images import NETSERVER_IMAGE
from devcluster.node import REAL_NODE_NAMESPACE_ANNOTATIONS

from .cluster import ClusterHandle
from .waiting import wait_for

__all__ = ["ClientPod", "create_real_namespace", "serve_args", "with_local_images"]


def create_real_namespace(core: client.CoreV1Api, name: str) -> None:
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, annotations=REAL_NODE_NAMESPACE_ANNOTATIONS)
        )
    )
    wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        what=f"the default ServiceAccount in {name}",
    )


def serve_args(container: dict[str, Any]) -> list[str]:
    """netserver's arguments for a container: each declared port, "8080/tcp" or "53/udp"."""
    return [
        f"{port['containerPort']}/{port.get('protocol', 'TCP').lower()}"
        for port in container.get("ports") or []
    ]


def with_local_images(document: dict[str, Any]) -> dict[str, Any]:
    """An ExposedApp sample with every container running netserver on its declared ports.

    Everything else (probes, volumes, resources, Service settings) stays as the sample
    has it; other kinds of document are returned unchanged.
    """
    if document.get("kind") != "ExposedApp":
        return document
    local = copy.deepcopy(document)
    for container in local["spec"]["containers"]:
        container["image"] = NETSERVER_IMAGE
        container.pop("command", None)
        container["args"] = serve_args(container)
    return local


class ClientPod:
    """A Pod on the real node to send requests from; ``run`` is ``kubectl exec``."""

    def __init__(self, cluster: ClusterHandle, core: client.CoreV1Api, namespace: str) -> None:
        self.cluster, self.namespace, self.name = cluster, namespace, "client"
        core.create_namespaced_pod(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": self.name},
                "spec": {
                    "containers": [
                        {
                            "name": "client",
                            "image": NETSERVER_IMAGE,
                            "command": ["/netserver", "pause"],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 1,
                },
            },
        )
        wait_for(
            lambda: core.read_namespaced_pod(self.name, namespace).status,
            lambda status: any(
                c.type == "Ready" and c.status == "True" for c in status.conditions or []
            ),
            what="the client Pod Ready",
        )

    def run(self, *argv: str, check: bool = True) -> str:
        result = self.cluster.kubectl(
            "exec", "-n", self.namespace, self.name, "--", *argv, check=check, timeout=30
        )
        return result.stdout.strip()
