"""The local control plane's lifecycle: nothing left behind, clear errors at start-up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devcluster.cluster import ClusterError, up
from kubetest import wait_for

STARTER = textwrap.dedent(
    """
    import json, sys, time
    from devcluster.cluster import up
    state = up(__import__("pathlib").Path(sys.argv[1]), attached=True, nodes=1, real_node=False)
    print(json.dumps({"pids": state.pids, "ports": state.ports}), flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_killed_test_run_leaves_no_process_and_no_port(tmp_path: Path) -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path / "run")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert starter.stdout is not None
    started = json.loads(starter.stdout.readline())
    assert all(_alive(pid) for pid in started["pids"].values())

    starter.send_signal(signal.SIGKILL)  # no clean-up code runs at all
    starter.wait()
    starter.stdout.close()

    wait_for(
        lambda: [name for name, pid in started["pids"].items() if _alive(pid)],
        lambda alive: alive == [],
        what="every control plane process gone",
    )
    wait_for(
        lambda: [name for name, port in started["ports"].items() if _listening(port)],
        lambda busy: busy == [],
        what="every port free",
    )


def test_a_process_dying_at_start_up_is_named_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "etcd"
    broken.write_text(
        "#!/bin/sh\necho 'listen tcp 127.0.0.1:2379: bind: address already in use'\nexit 1\n"
    )
    broken.chmod(0o755)
    monkeypatch.setenv("TEST_ASSET_ETCD", str(broken))
    with pytest.raises(ClusterError) as error:
        up(tmp_path / "run", attached=True, nodes=1, real_node=False, progress=lambda _: None)
    message = str(error.value)
    assert "etcd exited with code 1 during start-up" in message
    assert "A port it needs is taken by another process" in message
    assert str(tmp_path / "run" / "logs" / "etcd.log") in message
