"""The benchmark sizes its fake nodes for every Pod the run keeps."""

from __future__ import annotations

from devcluster.bench import PODS_PER_NODE, nodes_for


def test_small_runs_keep_the_default_three_nodes() -> None:
    assert nodes_for([10, 100], repeat=2, replicas=2) == 3


def test_nodes_hold_every_pod_of_every_round_with_a_quarter_to_spare() -> None:
    # 10, 100, 500 twice, both systems, 2 replicas: 4,884 Pods kept, 1,000 more in the
    # last rollout's surge; a quarter more is 7,355 Pods, 8 nodes of 1,000.
    nodes = nodes_for([10, 100, 500], repeat=2, replicas=2)
    assert nodes == 8
    assert nodes * PODS_PER_NODE >= ((10 + 100 + 500) * 2 + 1) * 2 * 2 + 500 * 2
