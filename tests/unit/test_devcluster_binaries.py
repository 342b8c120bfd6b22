"""Binary resolution of the local control plane: overrides, cache, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from devcluster import binaries


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEVCLUSTER_CACHE", str(tmp_path / "cache"))
    for name in ("KUBEBUILDER_ASSETS", "DEVCLUSTER_ASSETS"):
        monkeypatch.delenv(name, raising=False)
    for binary in binaries.BINARIES:
        monkeypatch.delenv("TEST_ASSET_" + binary.upper().replace("-", "_"), raising=False)
    return tmp_path / "cache"


def test_cached_binaries_are_used_without_building(cache: Path) -> None:
    for component in binaries.COMPONENTS:
        for binary in component.binaries:
            executable(cache / f"{component.name}-{component.version}" / binary)
    found = binaries.ensure_binaries(progress=pytest.fail)
    assert found["kube-apiserver"] == cache / "kubernetes-v1.36.3" / "kube-apiserver"
    assert found["etcd"] == cache / "etcd-v3.6.16" / "etcd"


def test_envtest_conventions_and_their_extension_take_precedence(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for component in binaries.COMPONENTS:
        for binary in component.binaries:
            executable(cache / f"{component.name}-{component.version}" / binary)
    assets = tmp_path / "envtest"
    for binary in ("etcd", "kube-apiserver", "kubectl"):
        executable(assets / binary)
    kwok = executable(tmp_path / "elsewhere" / "kwok")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("TEST_ASSET_KWOK", str(kwok))
    found = binaries.ensure_binaries(progress=pytest.fail)
    assert found["etcd"] == assets / "etcd"
    assert found["kube-apiserver"] == assets / "kube-apiserver"
    assert found["kwok"] == kwok
    assert found["kube-scheduler"] == cache / "kubernetes-v1.36.3" / "kube-scheduler"


def test_a_bad_override_is_named(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_ASSET_KUBE_APISERVER", "/nonexistent/kube-apiserver")
    with pytest.raises(binaries.BuildError, match="TEST_ASSET_KUBE_APISERVER=/nonexistent"):
        binaries.ensure_binaries(progress=lambda _: None)


def test_missing_go_says_what_to_do(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(binaries.BuildError) as error:
        binaries.ensure_binaries(progress=lambda _: None)
    message = str(error.value)
    assert "Go is not installed" in message
    assert "KUBEBUILDER_ASSETS" in message
    assert "EXPOSEDAPP_E2E_CLUSTER=existing" in message
