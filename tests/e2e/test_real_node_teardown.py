"""Stopping the real node leaves the machine as it found it, also after a killed run.

Runs last (it stops the session's cluster): the snapshot taken before the session's `up`
is compared with the machine after `down`: processes, mounts, interfaces, iptables
chains, cgroups, files under the paths the node's programs hard-code, kernel settings.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import RealNode
from devcluster.cluster import down, read_state, up
from devcluster.host import MARKER, HostSnapshot, differences, snapshot
from kubetest import ClusterHandle, wait_for

STARTER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from devcluster.cluster import up
    state = up(Path(sys.argv[1]), attached=True, nodes=1, real_node=True)
    print(json.dumps(state.pids), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.stops_cluster
def test_down_and_a_killed_run_leave_the_machine_as_it_was(
    cluster: ClusterHandle, real_node: RealNode, tmp_path: Path
) -> None:
    before = HostSnapshot.load()
    assert before is not None
    assert Path(before.run_dir) == cluster.run_dir
    assert read_state(cluster.run_dir) is not None
    down(cluster.run_dir)
    assert differences(before, snapshot()) == []
    assert not MARKER.exists()

    # A run killed outright: no clean-up code runs; the control plane, kubelet and
    # containerd die with it (parent-death signal), containers and their shims do not.
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path / "killed")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert starter.stdout is not None
    pids = json.loads(starter.stdout.readline())
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    starter.stdout.close()
    # Its processes die with it (parent-death signal), a moment later.
    wait_for(
        lambda: [name for name, pid in pids.items() if Path(f"/proc/{pid}").exists()],
        lambda alive: alive == [],
        what="the killed run's processes gone",
    )
    assert MARKER.exists()
    assert differences(before, snapshot()) != []  # something was left: the test can fail

    # The next start cleans up first, then runs; its own stop leaves nothing.
    up(tmp_path / "next", attached=True, nodes=1, real_node=True, progress=lambda _: None)
    down(tmp_path / "next", progress=lambda _: None)
    assert differences(before, snapshot()) == []
