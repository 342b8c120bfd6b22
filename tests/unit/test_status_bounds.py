"""Whatever the spec (within the CRD) and the cluster, the status fits the CRD's status schema."""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exposedapp.domain.desired import AppRef, build_desired
from exposedapp.domain.model import check_status, parse_spec
from exposedapp.domain.plan import ObservedPod
from exposedapp.domain.podhealth import PodProblem
from exposedapp.domain.status import (
    MESSAGE_LIMIT,
    Problem,
    bounded_list,
    describe_problems,
    merge_conditions,
    minimal_status,
    summarise,
)

NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)


def test_bounded_list_counts_what_does_not_fit() -> None:
    items = [f"{80 + i}/TCP" for i in range(10)]
    assert bounded_list(items, 1024) == ",".join(items)
    assert bounded_list(items, 30) == "80/TCP,81/TCP,82/TCP,(+7 more)"
    assert len(bounded_list(items, 30)) <= 30


def test_many_problems_of_one_kind_are_told_once_with_their_number() -> None:
    quota = "exceeded quota: team-compute, requested: pods=1, used: pods=60, limited: pods=60"
    problems = [
        Problem("QuotaExceeded", f'creating Pod web-{i}: pods "web-{i}" is forbidden: {quota}')
        for i in range(98)
    ]
    problems.append(Problem("Forbidden", "reading Service web: forbidden"))
    # Reasons in order, and the first of a kind by message: the same problems, however
    # the parallel creates came back, read the same.
    expected = (
        "reading Service web: forbidden; 98 problems QuotaExceeded, the first: "
        f'creating Pod web-0: pods "web-0" is forbidden: {quota}'
    )
    assert describe_problems(problems) == expected
    assert describe_problems(list(reversed(problems))) == expected


def test_a_refused_status_is_replaced_by_a_minimal_truthful_one() -> None:
    wanted = {
        "observedGeneration": 7,
        "replicas": 2,
        "readyReplicas": 1,
        "portsText": "x" * 5000,
        "conditions": [],
    }
    minimal = minimal_status(wanted, "StatusInvalid", "status.portsText: Too long")
    message = "the status could not be written: status.portsText: Too long"
    assert minimal == {
        "observedGeneration": 7,
        "replicas": 2,
        "readyReplicas": 1,
        "conditions": [
            {
                "type": kind,
                "status": status,
                "reason": "StatusInvalid",
                "message": message,
                "observedGeneration": 7,
            }
            for kind, status in (("Ready", "False"), ("Progressing", "False"), ("Degraded", "True"))
        ],
    }


def _spec(
    shape: list[int], name_length: int, image_length: int, service_type: str
) -> dict[str, Any]:
    number = iter(range(1, 65536))
    containers = []
    for index, ports in enumerate(shape):
        containers.append(
            {
                "name": f"c{index}".ljust(name_length, "a")[:63],
                "image": ("registry.example/" + "i" * image_length)[:1024],
                "ports": [
                    {
                        "name": f"p{index}x{port}"[:15],
                        "containerPort": next(number),
                        "protocol": ("TCP", "UDP", "SCTP")[port % 3],
                        "servicePort": 65535 - len(containers) * 40 - port,
                    }
                    for port in range(ports)
                ],
            }
        )
    return {"replicas": 100, "containers": containers, "service": {"type": service_type}}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.lists(st.integers(1, 32), min_size=1, max_size=10),
    name_length=st.integers(1, 63),
    image_length=st.integers(1, 1024),
    service_type=st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "Headless"]),
    problems=st.integers(0, 400),
    message_length=st.integers(1, 40_000),
    ingress=st.integers(0, 40),
)
def test_the_status_fits_the_schema_in_the_worst_cases(
    shape: list[int],
    name_length: int,
    image_length: int,
    service_type: str,
    problems: int,
    message_length: int,
    ingress: int,
) -> None:
    spec = parse_spec(_spec(shape, name_length, image_length, service_type))
    desired = build_desired(AppRef("n" * 63, "a" * 63, "uid"), spec)
    service = {
        "spec": {
            "clusterIP": "10.96.0.10",
            "ports": [{"name": p.name, "nodePort": 30000 + i} for i, p in enumerate(desired.ports)],
        },
        "status": {
            "loadBalancer": {
                "ingress": [
                    {
                        "ip": f"203.0.113.{i % 250}",
                        "hostname": "h" * 253,
                        "ports": [{"port": n, "protocol": "TCP"} for n in range(1, ingress * 5)],
                    }
                    for i in range(ingress)
                ]
            }
        },
    }
    long = "word " * (message_length // 5)
    pod_problem = PodProblem("web-0", "c0", "CrashLoopBackOff", long)
    pods = [
        ObservedPod(
            name=f"web-{i}",
            uid=str(i),
            template_hash=desired.template_hash,
            template_summary={},
            phase="Running",
            scheduled=True,
            ready=False,
            ready_since=None,
            created=NOW,
            deleting=False,
            problems=(pod_problem,),
        )
        for i in range(3)
    ]
    status = summarise(
        generation=2**62,
        desired=desired,
        pods=pods,
        service=service,
        slices=[],
        problems=[Problem(f"Reason{i % 7}", f"problem {i}: {long}") for i in range(problems)],
        now=NOW,
    )
    status["conditions"] = merge_conditions(status["conditions"], [], "2026-12-01T00:00:00Z")
    check_status(status)
    assert all(len(c["message"]) <= MESSAGE_LIMIT for c in status["conditions"])
