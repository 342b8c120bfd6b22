"""A long-running operator keeps writing after its token is rotated and the old one revoked.

The operator runs on a kubeconfig whose user reads a token file (as a Pod's projected
ServiceAccount token is read). The token is a TokenRequest bound to a Secret: deleting the
Secret revokes it. The test writes a new token into the file, revokes the old one, and
checks that the operator's writes (Pod and Service creates, status) go on working.
"""

from __future__ import annotations

import base64
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from kubernetes import client

from conftest import OperatorProcess
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest


def bound_token(core: client.CoreV1Api, namespace: str, anchor: str) -> str:
    secret = core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=anchor))
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(
            audiences=[],
            expiration_seconds=3600,
            bound_object_ref=client.V1BoundObjectReference(
                api_version="v1", kind="Secret", name=anchor, uid=secret.metadata.uid
            ),
        )
    )
    answer = core.create_namespaced_service_account_token("operator", namespace, request)
    return str(answer.status.token)


def accepted(server: str, ca: bytes, token: str) -> bool:
    context = ssl.create_default_context(cadata=ca.decode())
    request = urllib.request.Request(server + "/api", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=5):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 401:
            return False
        raise


def test_writes_go_on_after_the_token_is_rotated_and_the_old_one_revoked(
    apps: Apps,
    operator_process: OperatorProcess,
    cluster: ClusterHandle,
    tmp_path: Path,
) -> None:
    core, namespace = apps.core, apps.namespace
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="operator"))
    )
    client.RbacAuthorizationV1Api(core.api_client).create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=f"{namespace}-operator"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="operator", namespace=namespace)
            ],
        )
    )
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]["server"]
    ca = base64.b64decode(admin["clusters"][0]["cluster"]["certificate-authority-data"])
    token_file = tmp_path / "token"
    old_token = bound_token(core, namespace, "anchor-1")
    token_file.write_text(old_token)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": admin["clusters"][0]["cluster"]}],
                "users": [{"name": "operator", "user": {"tokenFile": str(token_file)}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "operator"}}],
                "current-context": "c",
            }
        )
    )
    operator_process.stop()  # this test runs its own operator, on the token file
    rotated = OperatorProcess(cluster, operator_process.log_dir)
    rotated.start("-n", namespace, env={"KUBECONFIG": str(kubeconfig)})
    try:
        apps.create(app_manifest("before", replicas=1))
        apps.wait_ready("before", timeout=60)

        new_token = bound_token(core, namespace, "anchor-2")
        replacement = tmp_path / "token.new"
        replacement.write_text(new_token)
        os.replace(replacement, token_file)  # as the kubelet rotates a projected token
        core.delete_namespaced_secret("anchor-1", namespace)
        wait_for(
            lambda: accepted(server, ca, old_token),
            lambda ok: not ok,
            what="the old token revoked (401)",
        )
        assert accepted(server, ca, new_token)

        apps.create(app_manifest("after", replicas=2))
        apps.wait_ready("after", timeout=60)
        apps.patch("before", {"spec": {"replicas": 2}})
        assert apps.wait_ready("before", timeout=60)["status"]["readyReplicas"] == 2
        assert rotated.running()
    finally:
        rotated.stop()
        client.RbacAuthorizationV1Api(core.api_client).delete_cluster_role_binding(
            f"{namespace}-operator"
        )
