"""What a real node needs of the machine, what it changes there, and how it is undone.

A kubelet, containerd and kube-proxy change the host: mounts, network interfaces,
iptables chains, cgroups, kernel settings, files under paths they hard-code. ``snapshot``
records every one of those before the node starts; ``restore`` puts the machine back the
way the snapshot saw it; ``differences`` says what is still not as it was. Only one real
node runs on a machine at a time: its snapshot lives in ``MARKER`` (on /run, so a reboot,
which undoes everything anyway, forgets it), and the next start cleans up after a run that
was killed before it could clean up itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "MARKER",
    "HostError",
    "HostSnapshot",
    "differences",
    "ensure_host_packages",
    "node_ip",
    "restore",
    "snapshot",
]

MARKER = Path("/run/exposedapp-devcluster/real-node.json")

# Debian packages the real node takes from the machine, and a file each one provides.
HOST_PACKAGES = {
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "iptables": "/usr/sbin/iptables",
    "conntrack": "/usr/sbin/conntrack",
    "busybox-static": "/bin/busybox",
    "iproute2": "/usr/sbin/ip",
}
CNI_BIN_DIR = Path("/usr/lib/cni")

# Kernel settings the kubelet, the bridge plugin and kube-proxy change.
SYSCTLS = (
    "vm.overcommit_memory",
    "kernel.panic",
    "kernel.panic_on_oops",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
)
# Paths the node's programs use whatever their configuration says.
HARD_CODED_PATHS = (
    "/run/containerd",
    "/var/lib/cni",
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/var/run/netns",
)
# Names of the processes a node runs; a process of these names left over is ours.
NODE_PROCESSES = (
    "kubelet",
    "containerd",
    "containerd-shim",
    "kube-proxy",
    "netserver",
    "coredns",
    "metrics-server",
)
IPTABLES = ("iptables", "ip6tables")
TABLES = ("filter", "nat", "mangle")

Progress = Callable[[str], None]


class HostError(RuntimeError):
    """The machine cannot run a real node; the message names what is missing and why."""


@dataclass
class HostSnapshot:
    """What a real node may change on the machine, as it was before the node started."""

    sysctls: dict[str, str] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    chains: list[str] = field(default_factory=list)  # "<command> <table> <chain>"
    cgroups: list[str] = field(default_factory=list)
    paths: dict[str, list[str] | None] = field(default_factory=dict)  # None: did not exist
    processes: list[str] = field(default_factory=list)  # "<pid> <name>"
    run_dir: str = ""

    def save(self, path: Path = MARKER) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path = MARKER) -> HostSnapshot | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def _run(*argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def _mountpoints() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and the like escaped as octal.
        points.append(line.split()[4].encode().decode("unicode_escape"))
    return points


def _links() -> list[str]:
    return sorted(path.name for path in Path("/sys/class/net").iterdir())


def _chains() -> list[str]:
    found = []
    for command in IPTABLES:
        if shutil.which(command) is None:
            continue
        for table in TABLES:
            listing = _run(command, "-w", "-t", table, "-S")
            for line in listing.stdout.splitlines():
                if line.startswith("-N "):
                    found.append(f"{command} {table} {line.split()[1]}")
    return sorted(found)


def _cgroups() -> list[str]:
    found = []
    root = Path("/sys/fs/cgroup")
    for hierarchy in sorted(root.iterdir()) if root.is_dir() else []:
        if not hierarchy.is_dir():
            continue
        for child in hierarchy.iterdir():
            if child.is_dir() and child.name.startswith("kubepods"):
                found.append(str(child))
    return sorted(found)


def _path_entries() -> dict[str, list[str] | None]:
    entries: dict[str, list[str] | None] = {}
    for name in HARD_CODED_PATHS:
        path = Path(name)
        entries[name] = sorted(p.name for p in path.iterdir()) if path.is_dir() else None
    return entries


def _node_processes() -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            name = (proc / "comm").read_text().strip()
            if name.startswith(NODE_PROCESSES):
                found.append(f"{proc.name} {name}")
    return sorted(found)


def snapshot(run_dir: Path | None = None) -> HostSnapshot:
    """Record everything a real node may change on this machine."""
    sysctls = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            sysctls[name] = _sysctl_path(name).read_text().strip()
    return HostSnapshot(
        sysctls=sysctls,
        links=_links(),
        mounts=_mountpoints(),
        chains=_chains(),
        cgroups=_cgroups(),
        paths=_path_entries(),
        processes=_node_processes(),
        run_dir=str(run_dir or ""),
    )


def differences(before: HostSnapshot, after: HostSnapshot) -> list[str]:
    """What ``after`` has that ``before`` had not (or lost), one line per thing."""
    found = []
    for name, value in before.sysctls.items():
        if after.sysctls.get(name) != value:
            found.append(f"sysctl {name}: {value} -> {after.sysctls.get(name)}")
    for kind, label in (
        ("links", "interface"),
        ("mounts", "mount"),
        ("chains", "chain"),
        ("cgroups", "cgroup"),
        ("processes", "process"),
    ):
        old, new = set(getattr(before, kind)), set(getattr(after, kind))
        if kind == "processes":  # compare names: a pid of a process we did not start may go
            old, new = {p.split(" ", 1)[1] for p in old}, {p.split(" ", 1)[1] for p in new}
        found += [f"{label} left behind: {item}" for item in sorted(new - old)]
    for path, entries in before.paths.items():
        now = after.paths.get(path)
        if entries is None and now is not None:
            found.append(f"path created: {path}")
        elif entries is not None and now is not None:
            found += [f"file left behind: {path}/{e}" for e in sorted(set(now) - set(entries))]
    return found


def _kill_until_gone(find: Callable[[], set[int]], progress: Progress, what: str) -> None:
    """SIGKILL the processes ``find`` names until it names none (5 s at most)."""
    for _ in range(50):
        pids = find()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    progress(f"some {what} would not die")


def _cgroup_pids() -> set[int]:
    """Every process in the kubepods cgroups: the Pods' containers and sandboxes."""
    pids: set[int] = set()
    for group in _cgroups():
        for procs in Path(group).rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in procs.read_text().split())
    return pids


def _new_node_pids(before: HostSnapshot) -> set[int]:
    keep = {int(p.split()[0]) for p in before.processes}
    return {int(p.split()[0]) for p in _node_processes()} - keep


def _unmount_new(before: HostSnapshot) -> None:
    old = set(before.mounts)
    for _ in range(5):
        new = [m for m in _mountpoints() if m not in old]
        if not new:
            return
        # Deepest first; a lazy unmount as the last resort for a busy one.
        for point in sorted(new, key=len, reverse=True):
            if _run("umount", point).returncode != 0:
                _run("umount", "-l", point)


def _remove_rule_references(command: str, table: str, chain: str) -> None:
    listing = _run(command, "-w", "-t", table, "-S").stdout.splitlines()
    for line in listing:
        if line.startswith("-A ") and re.search(rf"(-j|-g) {re.escape(chain)}(\s|$)", line):
            _run(command, "-w", "-t", table, "-D", *shlex.split(line)[1:])


def _remove_new_chains(before: HostSnapshot) -> None:
    old = set(before.chains)
    new = [entry for entry in _chains() if entry not in old]
    for entry in new:
        command, table, chain = entry.split()
        _remove_rule_references(command, table, chain)
    for entry in new:
        command, table, chain = entry.split()
        _run(command, "-w", "-t", table, "-F", chain)
    for entry in new:
        command, table, chain = entry.split()
        _run(command, "-w", "-t", table, "-X", chain)


def _remove_cgroups(before: HostSnapshot) -> None:
    old = set(before.cgroups)
    for group in _cgroups():
        if group in old:
            continue
        directories = sorted(
            (p for p in Path(group).rglob("*") if p.is_dir()),
            key=lambda p: len(p.parts),
            reverse=True,
        )
        for directory in [*directories, Path(group)]:
            for _ in range(20):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _remove_new_paths(before: HostSnapshot) -> None:
    for name, entries in before.paths.items():
        path = Path(name)
        if not path.exists():
            continue
        if entries is None:
            shutil.rmtree(path, ignore_errors=True)
            continue
        for child in path.iterdir():
            if child.name not in entries:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)


def _remove_new_links(before: HostSnapshot) -> None:
    for link in set(_links()) - set(before.links):
        _run("ip", "link", "delete", link)


def _restore_sysctls(before: HostSnapshot) -> None:
    for name, value in before.sysctls.items():
        with contextlib.suppress(OSError):
            path = _sysctl_path(name)
            if path.read_text().strip() != value:
                path.write_text(value)


def restore(before: HostSnapshot, progress: Progress) -> list[str]:
    """Undo what a real node did to the machine; return what still differs (empty: all)."""
    _kill_until_gone(_cgroup_pids, progress, "processes in the kubepods cgroups")
    _kill_until_gone(lambda: _new_node_pids(before), progress, "node processes (shims)")
    _unmount_new(before)
    _remove_new_chains(before)
    _remove_cgroups(before)
    _remove_new_links(before)
    _remove_new_paths(before)
    _restore_sysctls(before)
    return differences(before, snapshot())


def _missing_kernel_features() -> list[str]:
    missing = []
    if "overlay" not in Path("/proc/filesystems").read_text():
        missing.append("overlayfs (the containerd snapshotter)")
    for kind, argv in (
        ("bridge", ("ip", "link", "add", "xappcheck0", "type", "bridge")),
        ("veth", ("ip", "link", "add", "xappcheck0", "type", "veth", "peer", "name", "xappcheck1")),
    ):
        made = _run(*argv)
        if made.returncode != 0:
            missing.append(f"{kind} network interfaces ({made.stderr.strip()})")
        _run("ip", "link", "delete", "xappcheck0")
    listing = _run("iptables", "-w", "-t", "nat", "-S")
    if listing.returncode != 0:
        missing.append(f"netfilter NAT through iptables ({listing.stderr.strip()})")
    if not Path("/sys/fs/cgroup").is_dir():
        missing.append("cgroups under /sys/fs/cgroup")
    return missing


def ensure_host_packages(progress: Progress) -> None:
    """Install the Debian packages the real node needs, and check the kernel supports it.

    Raises HostError naming what is missing: root, a package that could not be installed,
    or a kernel feature (overlayfs, bridge, veth, netfilter NAT, cgroups).
    """
    if os.geteuid() != 0:
        raise HostError(
            "the real node needs root (it runs a kubelet, containerd and kube-proxy, which "
            "mount, create network interfaces and write iptables rules); run as root, or opt "
            "out with DEVCLUSTER_REAL_NODE=0 (refused in CI)"
        )
    missing = [name for name, path in HOST_PACKAGES.items() if not Path(path).exists()]
    if missing:
        progress(f"installing Debian packages for the real node: {', '.join(missing)}")
        apt = shutil.which("apt-get")
        if apt is None:
            raise HostError(f"missing packages {missing} and no apt-get to install them")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", *missing]):
            done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                raise HostError(
                    f"`{' '.join(argv)}` failed ({done.returncode}):\n{done.stderr[-2000:]}"
                )
        still = [name for name, path in HOST_PACKAGES.items() if not Path(path).exists()]
        if still:
            raise HostError(f"packages installed but still missing their files: {still}")
    features = _missing_kernel_features()
    if features:
        raise HostError(
            "this machine's kernel lacks what a real node needs: " + "; ".join(features)
        )


def node_ip() -> str:
    """The machine's own non-loopback IPv4 address (the kubelet refuses 127.x).

    Taken from the interface of the default route, else the first global address.
    Traffic to it never leaves the machine.
    """
    configured = os.environ.get("DEVCLUSTER_NODE_IP")
    if configured:
        return configured
    default = re.search(r"\bdev (\S+)", _run("ip", "-4", "route", "show", "default").stdout)
    if default:
        on_device = _run("ip", "-4", "-o", "addr", "show", "dev", default[1], "scope", "global")
        match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", on_device.stdout)
        if match:
            return match[1]
    addresses = _run("ip", "-4", "-o", "addr", "show", "scope", "global").stdout
    match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", addresses)
    if match:
        return match[1]
    raise HostError(
        "no non-loopback IPv4 address on this machine for the real node "
        "(the kubelet refuses 127.x); set DEVCLUSTER_NODE_IP"
    )
