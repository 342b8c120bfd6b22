"""ExposedApps through the official client (the test oracle), with waits on their status."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from .cluster import ClusterHandle
from .waiting import wait_for

__all__ = ["Apps", "app_manifest"]

GROUP, VERSION, PLURAL = "exposedapp.dev", "v1alpha1", "exposedapps"


def app_manifest(name: str, replicas: int = 2, port: int = 8080, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ExposedApp",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.27",
                    "ports": [{"name": "http", "containerPort": port, "servicePort": 80}],
                }
            ],
            **spec,
        },
    }


class Apps:
    def __init__(
        self, api: client.ApiClient, core: client.CoreV1Api, namespace: str, cluster: ClusterHandle
    ) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.core = core
        self.namespace = namespace
        self.cluster = cluster

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            )
        )

    def get(self, name: str) -> dict[str, Any]:
        return dict(
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        )

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, patch
            )
        )

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def pods(self, name: str) -> list[Any]:
        return list(
            self.core.list_namespaced_pod(
                self.namespace, label_selector=f"exposedapp.dev/app={name}"
            ).items
        )

    def live_pods(self, name: str) -> list[Any]:
        """The app's Pods as the operator counts them: neither terminating nor draining (a
        draining Pod has left the Service and is deleted once its drain ends)."""
        return [
            p
            for p in self.pods(name)
            if p.metadata.deletion_timestamp is None
            and "exposedapp.dev/drain" not in (p.metadata.annotations or {})
        ]

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        conditions = self.get(name).get("status", {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == kind), {})

    def wait_ready(self, name: str, timeout: float = 60) -> dict[str, Any]:
        def observe() -> dict[str, Any]:
            return self.get(name)

        def ready(app: dict[str, Any]) -> bool:
            status = app.get("status") or {}
            ready_condition = next(
                (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {}
            )
            return (
                ready_condition.get("status") == "True"
                and status.get("observedGeneration") == app["metadata"]["generation"]
            )

        return wait_for(observe, ready, timeout=timeout, what=f"{name} Ready")

    def ready_endpoints(self, service: str) -> dict[str, int]:
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={service}"
        ).items
        counts: dict[str, int] = {}
        for s in slices:
            ready = sum(1 for e in s.endpoints or [] if e.conditions and e.conditions.ready)
            for port in s.ports or []:
                counts[port.name] = counts.get(port.name, 0) + ready
        return counts
