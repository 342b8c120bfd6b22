"""End-to-end fixtures: one real control plane per test session, a fresh namespace per test.

By default the session starts the local control plane (devcluster) attached to the test
process: however the run ends, even by SIGKILL, its processes die with it. With
EXPOSEDAPP_E2E_CLUSTER=existing the suite uses $KUBECONFIG (kind, k3d, a real cluster).
A control plane that cannot be had is an error, never a skip.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubetest import TestCluster, wait_for

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    mode = os.environ.get("EXPOSEDAPP_E2E_CLUSTER", "local")
    if mode == "existing":
        kubeconfig = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        if not kubeconfig.exists():
            pytest.fail(f"EXPOSEDAPP_E2E_CLUSTER=existing but no kubeconfig at {kubeconfig}")
        yield TestCluster(kubeconfig, TestCluster.find_kubectl(None), local=False)
        return
    if mode != "local":
        pytest.fail(f"EXPOSEDAPP_E2E_CLUSTER must be 'local' or 'existing', not {mode!r}")

    from devcluster.binaries import BuildError
    from devcluster.cluster import ClusterError, down, up

    run_dir = Path(os.environ.get("EXPOSEDAPP_E2E_RUN_DIR", ROOT / ".run" / "e2e"))
    try:
        state = up(run_dir, attached=True)
    except (BuildError, ClusterError) as error:
        pytest.fail(f"the local control plane could not start: {error}", pytrace=False)
    try:
        yield TestCluster(
            Path(state.kubeconfig), TestCluster.find_kubectl(Path(state.binaries["kubectl"])),
            local=True, run_dir=run_dir, audit_log=run_dir / "audit.log",
        )
    finally:
        down(run_dir)


@pytest.fixture(scope="session")
def api(cluster: TestCluster) -> client.ApiClient:
    """The official client: the test oracle, distinct from the operator's pykube-ng."""
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def kubectl(cluster: TestCluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    return cluster.kubectl


@pytest.fixture(scope="session")
def crd(cluster: TestCluster) -> str:
    """Install the ExposedApp CRD from crds/ and wait until it is Established."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/exposedapps.exposedapp.dev")
    return "exposedapps.exposedapp.dev"


@pytest.fixture
def namespace(core: client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[str]:
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"t-{stem}-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        what=f"the default ServiceAccount in {name}",
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def pods_of(core: client.CoreV1Api, namespace: str, selector: str) -> list[Any]:
    return list(core.list_namespaced_pod(namespace, label_selector=selector).items)


