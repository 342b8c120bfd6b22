"""The traffic benchmark's pure parts: the table, the convergence checks, the builders, and
the load report's arithmetic and failure kinds."""

from __future__ import annotations

import errno
import http.client
from collections import Counter
from typing import Any

from devcluster.images import NETSERVER_IMAGE, NETSERVER_NEXT_IMAGE
from devcluster.traffic import HTTPStatusError, LoadReport, failure_kind
from devcluster.trafficbench import (
    Tally,
    change,
    deployment,
    exposed_app,
    format_cell,
    kube_proxy_lag,
    owner_unsettled,
    render_table,
    sum_tallies,
    unsettled,
)


def test_the_table_renders_fixed_numbers_exactly() -> None:
    cells: dict[tuple[str, str], Tally | None] = {
        ("scale", "drain"): Tally(requests=2000, failed=0, resets=0),
        ("scale", "deployment"): Tally(requests=1600, failed=24, resets=4),
        ("sigkill", "drain"): Tally(requests=3000, failed=1, resets=0),
        ("sigkill", "deployment"): None,
        ("image", "drain"): Tally(requests=0, failed=0, resets=0, problem="did not converge"),
    }
    table = render_table(["scale", "image", "sigkill"], ["drain", "deployment"], cells)
    assert table == (
        "| phase | ExposedApp, drain (default) | Deployment, no preStop |\n"
        "|---|---|---|\n"
        "| scale 4 -> 1 | 0.0 (0.0), 2000 requests | 150.0 (25.0), 1600 requests |\n"
        "| image rollout | - (-), 0 requests; did not converge | not run |\n"
        "| operator SIGKILL mid-rollout | 3.3 (0.0), 3000 requests | n/a |\n"
    )


def test_a_cell_adds_up_its_rounds() -> None:
    total = sum_tallies([Tally(1000, 2, 1), Tally(3000, 1, 0, "did not converge in 120s")])
    assert total == Tally(4000, 3, 1, "did not converge in 120s")
    assert format_cell(total) == "7.5 (2.5), 4000 requests; did not converge in 120s"
    assert format_cell(None) == "n/a"


def _pod(name: str, ip: str, *, ready: bool = True, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", **meta},
        "status": {
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def _slice(*endpoints: tuple[str, bool]) -> dict[str, Any]:
    return {
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": ready, "serving": True}}
            for ip, ready in endpoints
        ]
    }


def test_converged_means_the_wanted_pods_ready_and_exactly_them_listed() -> None:
    pods = [_pod("a", "10.0.0.1"), _pod("b", "10.0.0.2")]
    listed = _slice(("10.0.0.1", True), ("10.0.0.2", True))
    assert unsettled(pods, [listed], want=2) == ""
    assert unsettled(pods, [listed], want=1) == "2 Pods, want 1"
    assert unsettled(pods, [listed], want=2, old_uids=frozenset({"uid-b"})) == "old Pods left: b"
    terminating = [pods[0], _pod("b", "10.0.0.2", deletionTimestamp="2026-01-01T00:00:00Z")]
    assert unsettled(terminating, [listed], want=2) == "terminating: b"
    unready = [pods[0], _pod("b", "10.0.0.2", ready=False)]
    assert unsettled(unready, [listed], want=2) == "not Ready: b"
    stale = [listed, _slice(("10.0.0.9", False))]
    assert unsettled(pods, stale, want=2) == (
        "EndpointSlices list ['10.0.0.1', '10.0.0.2', '10.0.0.9'], "
        "the Pods are at ['10.0.0.1', '10.0.0.2']"
    )
    lagging = _slice(("10.0.0.1", True), ("10.0.0.2", False))
    assert unsettled(pods, [lagging], want=2) == "endpoints not ready: 10.0.0.2"


def test_the_owners_status_must_catch_up() -> None:
    app = {
        "kind": "ExposedApp",
        "metadata": {"generation": 3},
        "status": {"observedGeneration": 3, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert owner_unsettled(app, 4) == ""
    behind = {**app, "status": {**app["status"], "observedGeneration": 2}}
    assert owner_unsettled(behind, 4) == "status at generation 2, spec at 3"
    rolling = {
        **app,
        "status": {
            "observedGeneration": 3,
            "conditions": [{"type": "Ready", "status": "False", "reason": "RollingUpdate"}],
        },
    }
    assert owner_unsettled(rolling, 4) == "Ready False: RollingUpdate"
    native = {
        "kind": "Deployment",
        "metadata": {"generation": 2},
        "status": {
            "observedGeneration": 2,
            "replicas": 5,
            "updatedReplicas": 4,
            "availableReplicas": 4,
        },
    }
    assert owner_unsettled(native, 4) == (
        "status {'replicas': 5, 'updatedReplicas': 4, 'availableReplicas': 4}, want 4"
    )


def test_the_deployment_runs_the_pod_the_operator_would_run() -> None:
    app = exposed_app("web", drain=False)
    assert app["spec"]["drain"] == {"enabled": False}
    assert "drain" not in exposed_app("web")["spec"]
    native = deployment("web", pre_stop=True)
    pod = native["spec"]["template"]["spec"]
    (web,) = pod["containers"]
    assert web["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert web["image"] == app["spec"]["containers"][0]["image"] == NETSERVER_IMAGE
    assert native["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": "25%",
        "maxUnavailable": "25%",
    }
    assert pod["automountServiceAccountToken"] is False
    assert deployment("web", recreate=True)["spec"]["strategy"] == {"type": "Recreate"}


def test_each_phase_changes_what_it_says() -> None:
    assert change("scale", "drain") == {"spec": {"replicas": 1}}
    (image,) = change("image", "drain")["spec"]["containers"]
    assert image["image"] == NETSERVER_NEXT_IMAGE
    (port,) = change("port", "prestop")["spec"]["template"]["spec"]["containers"]
    assert (port["ports"][0]["name"], port["ports"][0]["containerPort"]) == ("http", 8081)
    assert port["args"] == ["8081/tcp"]
    assert port["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}  # a merge patch keeps it


def test_failures_are_counted_by_kind_resets_apart() -> None:
    assert failure_kind(ConnectionResetError()) == "reset"
    assert failure_kind(BrokenPipeError()) == "reset"
    assert failure_kind(http.client.RemoteDisconnected("closed")) == "closed"
    assert failure_kind(ConnectionRefusedError()) == "refused"
    assert failure_kind(TimeoutError()) == "timeout"
    assert failure_kind(OSError(errno.EHOSTUNREACH, "no route")) == "unreachable"
    assert failure_kind(HTTPStatusError(503, "10.96.0.5", 80)) == "http 503"


def test_reports_of_paths_side_by_side_add_up() -> None:
    first = LoadReport(
        requests=1000,
        failures=Counter({"reset": 2, "refused": 1}),
        started=10.0,
        finished=20.0,
        failure_times=[(12.5, "reset")],
    )
    second = LoadReport(
        requests=1000, failures=Counter({"timeout": 1}), started=10.5, finished=20.0
    )
    total = LoadReport.combined([first, second])
    assert (total.requests, total.failed, total.resets) == (2000, 4, 2)
    assert (total.per_10k(), total.resets_per_10k(), total.rate) == (20.0, 10.0, 200.0)
    assert total.as_dict(origin=12.0)["failure_times"] == [[0.5, "reset"]]


def test_kube_proxys_lag_is_read_from_its_histograms() -> None:
    metrics = (
        "# TYPE kubeproxy_network_programming_duration_seconds histogram\n"
        'kubeproxy_network_programming_duration_seconds_bucket{le="0.25"} 10\n'
        'kubeproxy_network_programming_duration_seconds_bucket{le="0.5"} 99\n'
        'kubeproxy_network_programming_duration_seconds_bucket{le="1"} 100\n'
        'kubeproxy_network_programming_duration_seconds_bucket{le="+Inf"} 100\n'
        "kubeproxy_network_programming_duration_seconds_sum 30\n"
        "kubeproxy_network_programming_duration_seconds_count 100\n"
    )
    assert kube_proxy_lag(metrics) == (
        "endpoint change to rules programmed: mean 0.300s over 100 (<=0.5s 99%, <=1s 100%)"
    )
    assert kube_proxy_lag("") == "kube-proxy reported no timings"
