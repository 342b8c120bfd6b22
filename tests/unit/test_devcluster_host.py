"""What a real node left on the machine, told from two snapshots."""

from __future__ import annotations

from devcluster.host import HostSnapshot, differences


def test_differences_name_each_thing_left_behind_and_each_setting_changed() -> None:
    before = HostSnapshot(
        sysctls={"net.ipv4.ip_forward": "0", "kernel.panic": "1"},
        links=["eth0", "lo"],
        mounts=["/"],
        chains=["iptables filter MINE"],
        cgroups=[],
        paths={"/var/lib/kubelet": None, "/run/containerd": ["old"]},
        processes=["12 containerd"],
    )
    after = HostSnapshot(
        sysctls={"net.ipv4.ip_forward": "1", "kernel.panic": "1"},
        links=["eth0", "lo", "xapp0"],
        mounts=["/", "/run/x"],
        chains=["iptables filter MINE", "iptables nat KUBE-SERVICES"],
        cgroups=["/sys/fs/cgroup/cpu/kubepods"],
        paths={"/var/lib/kubelet": ["device-plugins"], "/run/containerd": ["old", "s"]},
        processes=["99 containerd", "100 kubelet"],  # a pid may change; a name may not appear
    )
    assert differences(before, after) == [
        "sysctl net.ipv4.ip_forward: 0 -> 1",
        "interface left behind: xapp0",
        "mount left behind: /run/x",
        "chain left behind: iptables nat KUBE-SERVICES",
        "cgroup left behind: /sys/fs/cgroup/cpu/kubepods",
        "process left behind: kubelet",
        "path created: /var/lib/kubelet",
        "file left behind: /run/containerd/s",
    ]
    assert differences(before, before) == []
