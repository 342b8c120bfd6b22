"""Find or build the local cluster's binaries: etcd, Kubernetes, kwok, and the real node's.

The real node adds kubelet and kube-proxy (same Kubernetes module and version), containerd
2 with its runc shim and ctr, CoreDNS, metrics-server (the resource metrics API the
HorizontalPodAutoscaler reads, scraped from the real node's kubelet) and ``netserver``, the
project's own test server (Go source in ``devcluster/netserver``), each built with the
ordinary Go toolchain.

Order of preference for each binary:
1. ``TEST_ASSET_<NAME>`` (envtest's convention, extended to the binaries envtest lacks:
   ``TEST_ASSET_KUBE_CONTROLLER_MANAGER``, ``TEST_ASSET_KUBE_SCHEDULER``, ``TEST_ASSET_KWOK``);
2. ``$KUBEBUILDER_ASSETS/<name>`` (setup-envtest's layout), then ``$DEVCLUSTER_ASSETS/<name>``
   (the same layout, for the binaries envtest lacks);
3. the cache, keyed by version: ``$DEVCLUSTER_CACHE`` or ``~/.cache/exposedapp-devcluster``;
4. a build from the Go modules with the ordinary Go toolchain, into that cache.

Kubernetes, etcd and kwok are built in separate wrapper modules because their dependency
graphs pin different versions of shared libraries.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BINARIES",
    "CONTAINERD_VERSION",
    "COREDNS_VERSION",
    "ETCD_VERSION",
    "KUBERNETES_VERSION",
    "KWOK_VERSION",
    "METRICS_SERVER_VERSION",
    "BuildError",
    "Component",
    "build_ldflags",
    "cache_root",
    "ensure_binaries",
    "ensure_tool",
    "kwok_stages_dir",
]

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
CONTAINERD_VERSION = "v2.4.2"
COREDNS_VERSION = "v1.15.0"
METRICS_SERVER_VERSION = "v0.8.0"

# The kwok stages the local cluster uses, relative to kwok's module root.
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


class BuildError(RuntimeError):
    """A binary could not be found or built; the message says what to do."""


@dataclass(frozen=True)
class Component:
    """A group of binaries built from one Go module at one version.

    ``packages`` maps each binary to the Go package it is built from; ``tags`` are Go build
    tags; ``version_variables`` are Go string variables stamped with ``version`` at link
    time (``-X``), so the binary reports what it is. A component with ``local_source`` is
    built from a directory of this project (its version is then a hash of that source, so
    an edit rebuilds it).
    """

    name: str
    module: str
    version: str
    packages: tuple[tuple[str, str], ...]
    tags: tuple[str, ...] = ()
    local_source: Path | None = None
    version_variables: tuple[str, ...] = ()

    @property
    def binaries(self) -> tuple[str, ...]:
        return tuple(binary for binary, _ in self.packages)

    def package(self, binary: str) -> str:
        return dict(self.packages)[binary]

    @property
    def cache_dir(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}"


def _kubernetes_command(name: str) -> tuple[str, str]:
    return name, f"k8s.io/kubernetes/cmd/{name}"


KUBERNETES = Component(
    "kubernetes",
    "k8s.io/kubernetes",
    KUBERNETES_VERSION,
    tuple(
        _kubernetes_command(name)
        for name in (
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubectl",
            "kubelet",
            "kube-proxy",
        )
    ),
)
ETCD = Component(
    "etcd", "go.etcd.io/etcd/server/v3", ETCD_VERSION, (("etcd", "go.etcd.io/etcd/server/v3"),)
)
KWOK = Component("kwok", "sigs.k8s.io/kwok", KWOK_VERSION, (("kwok", "sigs.k8s.io/kwok/cmd/kwok"),))
CONTAINERD = Component(
    "containerd",
    "github.com/containerd/containerd/v2",
    CONTAINERD_VERSION,
    tuple(
        (name, f"github.com/containerd/containerd/v2/cmd/{name}")
        for name in ("containerd", "containerd-shim-runc-v2", "ctr")
    ),
    # btrfs needs cgo headers; the real node's snapshotter is overlayfs.
    tags=("no_btrfs",),
)
COREDNS = Component(
    "coredns",
    "github.com/coredns/coredns",
    COREDNS_VERSION,
    (("coredns", "github.com/coredns/coredns"),),
)
METRICS_SERVER = Component(
    "metrics-server",
    "sigs.k8s.io/metrics-server",
    METRICS_SERVER_VERSION,
    (("metrics-server", "sigs.k8s.io/metrics-server/cmd/metrics-server"),),
    # What upstream's Makefile stamps: without it the binary says v0.0.0-master.
    version_variables=("k8s.io/client-go/pkg/version.gitVersion",),
)
NETSERVER_SOURCE = Path(__file__).parent / "netserver"


def _source_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.suffix in (".go", ".mod"):
            digest.update(path.relative_to(directory).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


NETSERVER = Component(
    "netserver",
    "devcluster/netserver",
    _source_hash(NETSERVER_SOURCE) if NETSERVER_SOURCE.is_dir() else "missing",
    (("netserver", "."),),
    local_source=NETSERVER_SOURCE,
)
CONTROL_PLANE = (ETCD, KUBERNETES, KWOK)
NODE = (CONTAINERD, COREDNS, METRICS_SERVER, NETSERVER)
COMPONENTS = (*CONTROL_PLANE, *NODE)
# Not part of the cluster: built on demand for the install tests (`helm template`).
HELM = Component("helm", "helm.sh/helm/v4", "v4.3.1", (("helm", "helm.sh/helm/v4/cmd/helm"),))
# kstatus (sigs.k8s.io/cli-utils), what Flux computes health with, for the GitOps tests.
KSTATUS_SOURCE = Path(__file__).parent / "kstatus"
KSTATUS = Component(
    "kstatus",
    "devcluster/kstatus",
    _source_hash(KSTATUS_SOURCE) if KSTATUS_SOURCE.is_dir() else "missing",
    (("kstatus", "."),),
    local_source=KSTATUS_SOURCE,
)
TOOLS = {"helm": HELM, "kstatus": KSTATUS}
BINARIES = tuple(binary for component in COMPONENTS for binary in component.binaries)

Progress = Callable[[str], None]


def _default_progress(message: str) -> None:
    print(f"[devcluster] {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    configured = os.environ.get("DEVCLUSTER_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "exposedapp-devcluster"


def _override(binary: str) -> Path | None:
    env_name = "TEST_ASSET_" + binary.upper().replace("-", "_")
    explicit = os.environ.get(env_name)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BuildError(f"{env_name}={explicit} is not an executable file")
        return path
    for variable in ("KUBEBUILDER_ASSETS", "DEVCLUSTER_ASSETS"):
        directory = os.environ.get(variable)
        if directory:
            candidate = Path(directory) / binary
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "Go is not installed, and the control plane's binaries are built from Go modules. "
            "Install Go 1.26 or newer (Debian: apt-get install golang-go, or the official "
            "tarball), or point TEST_ASSET_<NAME> / KUBEBUILDER_ASSETS / DEVCLUSTER_ASSETS at "
            "prebuilt binaries, or run the tests against an existing cluster "
            "(EXPOSEDAPP_E2E_CLUSTER=existing with KUBECONFIG)."
        )
    return go


def _run_go(
    args: list[str], cwd: Path, progress: Progress, label: str, env: dict[str, str] | None = None
) -> str:
    """Run a go command, printing a heartbeat with the packages compiled so far."""
    full_env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", **(env or {})}
    process = subprocess.Popen(
        [_go(), *args],
        cwd=cwd,
        env=full_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    lines: list[str] = []
    started = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(15):
            elapsed = int(time.monotonic() - started)
            progress(
                f"  {label}: still working, {elapsed // 60}m{elapsed % 60:02d}s, "
                f"{len(lines)} packages/modules so far"
            )

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
    code = process.wait()
    done.set()
    if code != 0:
        tail = "\n".join(lines[-25:])
        raise BuildError(
            f"`go {' '.join(args)}` failed in {cwd} (exit {code}). Last output:\n{tail}\n"
            "If a module asks for a newer Go, set GOTOOLCHAIN to the version it names; if the "
            "machine runs out of memory, set GOFLAGS=-p=1."
        )
    return "\n".join(lines)


def _write_wrapper(component: Component, source: Path, progress: Progress) -> None:
    """A tiny module of our own that requires the component, so that `go build` can use it."""
    source.mkdir(parents=True, exist_ok=True)
    replaces: list[str] = []
    if component is KUBERNETES:
        # k8s.io/kubernetes maps its staging modules to ./staging with `replace`; a consumer
        # must map each to its published v0.Y.Z twin. Derive the list from the real go.mod.
        progress(f"  reading {component.module}@{component.version}'s go.mod")
        info = json.loads(
            _run_go(
                ["mod", "download", "-json", f"{component.module}@{component.version}"],
                source,
                progress,
                "go mod download",
            )
        )
        staging_version = "v0." + component.version.split(".", 1)[1]
        for line in Path(info["GoMod"]).read_text().splitlines():
            match = re.match(r"\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", line)
            if match:
                replaces.append(f"replace {match[1]} => {match[1]} {staging_version}")
    go_mod = "\n".join(
        [
            f"module devcluster/{component.name}",
            "",
            "go 1.26.0",
            "",
            f"require {component.module} {component.version}",
            "",
            *replaces,
            "",
        ]
    )
    (source / "go.mod").write_text(go_mod)


def build_ldflags(component: Component) -> str:
    """The linker flags: stripped, and the version stamped where the component reads it."""
    flags = ["-s", "-w"]
    if component is KUBERNETES:
        major, minor = component.version.lstrip("v").split(".")[:2]
        for key, value in (
            ("gitVersion", component.version),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
        ):
            flags.append(f"-X k8s.io/component-base/version.{key}={value}")
    flags += [f"-X {variable}={component.version}" for variable in component.version_variables]
    return " ".join(flags)


def _build_component(component: Component, progress: Progress, missing: Iterable[str]) -> None:
    if component.local_source is not None:
        source = component.local_source
    else:
        source = cache_root() / "src" / f"{component.name}-{component.version}"
        _write_wrapper(component, source, progress)
    target = component.cache_dir
    target.mkdir(parents=True, exist_ok=True)
    ldflags = build_ldflags(component)
    for binary in missing:
        package = component.package(binary)
        started = time.monotonic()
        progress(
            f"  building {binary} {component.version} from {package} "
            "(cold: several minutes; cached afterwards)"
        )
        partial = target / f".{binary}.partial"
        tags = ["-tags", ",".join(component.tags)] if component.tags else []
        _run_go(
            ["build", "-v", "-trimpath", *tags, "-ldflags", ldflags, "-o", str(partial), package],
            source,
            progress,
            binary,
        )
        partial.rename(target / binary)
        progress(f"  built {binary} in {time.monotonic() - started:.0f}s")
    if component is KWOK:
        _copy_kwok_stages(source, progress)


def _kwok_module_dir(source: Path, progress: Progress) -> Path:
    info = json.loads(
        _run_go(
            ["mod", "download", "-json", f"{KWOK.module}@{KWOK.version}"],
            source,
            progress,
            "go mod download",
        )
    )
    return Path(info["Dir"])


def _copy_kwok_stages(source: Path, progress: Progress) -> None:
    """kwok's Stage documents ship in its module; keep a copy beside the binary."""
    module_dir = _kwok_module_dir(source, progress)
    stages = KWOK.cache_dir / "stages"
    stages.mkdir(parents=True, exist_ok=True)
    for relative in KWOK_STAGE_FILES:
        shutil.copyfile(module_dir / relative, stages / Path(relative).name)


def kwok_stages_dir(progress: Progress = _default_progress) -> Path:
    """The kwok Stage documents; fetched from kwok's Go module if not cached yet."""
    configured = os.environ.get("DEVCLUSTER_KWOK_STAGES")
    if configured:
        return Path(configured)
    stages = KWOK.cache_dir / "stages"
    if not all((stages / Path(f).name).is_file() for f in KWOK_STAGE_FILES):
        source = cache_root() / "src" / f"{KWOK.name}-{KWOK.version}"
        _write_wrapper(KWOK, source, progress)
        _copy_kwok_stages(source, progress)
    return stages


@contextlib.contextmanager
def _build_lock(progress: Progress) -> Iterator[None]:
    """One build at a time per cache: two would compile the same thing twice, slowly."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".build.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("another build is running in this cache; waiting for it to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _missing(component: Component) -> list[str]:
    return [
        b
        for b in component.binaries
        if _override(b) is None and not (component.cache_dir / b).is_file()
    ]


def ensure_binaries(
    progress: Progress = _default_progress, *, real_node: bool = True
) -> dict[str, Path]:
    """Return a path for every binary, building what is neither provided nor cached.

    Without ``real_node`` only the control plane's binaries (etcd, Kubernetes' control
    plane, kwok) are needed; the real node's are neither looked for nor built.
    """
    components = COMPONENTS if real_node else CONTROL_PLANE
    if any(_missing(c) for c in components):
        with _build_lock(progress):
            _build_missing(components, progress)
    return {
        binary: _override(binary) or component.cache_dir / binary
        for component in components
        for binary in component.binaries
    }


def ensure_tool(name: str, progress: Progress = _default_progress) -> Path:
    """A development tool that is not part of the control plane (e.g. helm)."""
    component = TOOLS[name]
    if _missing(component):
        with _build_lock(progress):
            if _missing(component):
                progress(
                    f"{component.name} {component.version}: building into {component.cache_dir}"
                )
                _build_component(component, progress, _missing(component))
    return _override(name) or component.cache_dir / name


def _build_missing(components: tuple[Component, ...], progress: Progress) -> None:
    steps = [c for c in components if _missing(c)]  # re-read: a waited-for build may have done it
    for index, component in enumerate(steps, start=1):
        missing = _missing(component)
        progress(
            f"[{index}/{len(steps)}] {component.name} {component.version}: "
            f"building {', '.join(missing)} into {component.cache_dir}"
        )
        _build_component(component, progress, missing)
