"""The cluster the e2e suite runs against: the local control plane, or an existing one."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devcluster.cluster import wait_established

__all__ = ["ClusterHandle"]


@dataclass(frozen=True)
class ClusterHandle:
    kubeconfig: Path
    kubectl_binary: str
    local: bool
    run_dir: Path | None = None
    audit_log: Path | None = None
    operator_kubeconfig: Path | None = None  # a distinct identity, told apart in the audit log
    operator_user: str | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_binary, *args],
            input=input,
            text=True,
            capture_output=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def wait_established(self, *crds: str) -> None:
        """Wait until each named CRD is Established (polled; see devcluster's helper)."""
        wait_established(self.kubectl_binary, str(self.kubeconfig), *crds)

    @staticmethod
    def find_kubectl(built: Path | None) -> str:
        if built is not None and built.exists():
            return str(built)
        found = shutil.which("kubectl")
        if found is None:
            raise RuntimeError("no kubectl: build one with `devcluster build` or put one on PATH")
        return found
