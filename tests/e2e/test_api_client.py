"""The operator's own API client (pykube-ng) against the real apiserver, where its requests
are more than one call: the ghost sweep's paged metadata lists."""

from __future__ import annotations

import pytest
from kubernetes import client

from exposedapp.runtime import client as operator_client
from exposedapp.runtime.client import ApiClient
from exposedapp.runtime.metrics import REGISTRY
from kubetest.cluster import ClusterHandle

pytestmark = pytest.mark.e2e


def test_list_uids_pages_through_one_consistent_list(
    cluster: ClusterHandle,
    core: client.CoreV1Api,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labelled = {f"mine-{i}": {"sweep": "yes"} for i in range(7)}
    for name, labels in {**labelled, "other": {"sweep": "no"}}.items():
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels))
        )
    expected = {
        c.metadata.uid
        for c in core.list_namespaced_config_map(namespace, label_selector="sweep=yes").items
    }
    assert len(expected) == 7

    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.setattr(operator_client, "METADATA_LIST_PAGE_SIZE", 3)
    api = ApiClient.from_env(connections=1)

    def gets() -> float:
        labels = {"verb": "GET", "code": "200"}
        return REGISTRY.get_sample_value("exposedapp_api_requests_total", labels) or 0.0

    before = gets()
    assert api.list_uids("v1", "configmaps", namespace, "sweep=yes") == expected
    assert gets() - before == 3  # 3 + 3 + 1: every page read, none twice
    assert api.list_uids("v1", "configmaps", namespace, "sweep=absent") == set()
