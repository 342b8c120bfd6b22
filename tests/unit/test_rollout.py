"""Renamed and renumbered ports keep serving while old and new Pods run side by side."""

from __future__ import annotations

from typing import Any

from exposedapp.domain.desired import AppRef, DesiredState, build_desired
from exposedapp.domain.model import parse_spec
from exposedapp.domain.rollout import rollout_target

APP = AppRef("ns", "web", "uid-1")


def desired(name: str, number: int) -> DesiredState:
    return build_desired(
        APP,
        parse_spec(
            {
                "replicas": 4,
                "containers": [
                    {
                        "name": "app",
                        "image": "app:1",
                        "ports": [{"name": name, "containerPort": number, "servicePort": 80}],
                        "readinessProbe": {"httpGet": {"port": name, "path": "/"}},
                    }
                ],
            }
        ),
    )


OLD = desired("http", 8080)


def service_of(state: DesiredState) -> dict[str, Any]:
    assert state.service is not None
    return dict(state.service)


def target_ports(state: DesiredState) -> list[tuple[str, Any]]:
    assert state.service is not None
    return [(p["name"], p["targetPort"]) for p in state.service["spec"]["ports"]]


def pods(*states: DesiredState) -> list[tuple[str, Any]]:
    return [(s.template_hash, s.template_summary["ports"]) for s in states]


def test_no_old_pods_no_change() -> None:
    new = desired("http-web", 8081)
    assert rollout_target(new, pods(new, new), service_of(OLD)) is new


def test_a_renumber_keeps_targeting_the_name() -> None:
    new = desired("http", 8081)
    target = rollout_target(new, pods(OLD, new), service_of(OLD))
    assert target.template_hash == new.template_hash
    assert target_ports(target) == [("http", "http")]


def test_a_rename_targets_the_number_until_no_old_pod_is_left() -> None:
    new = desired("http-web", 8080)
    target = rollout_target(new, pods(OLD, new), service_of(OLD))
    assert target.template_hash == new.template_hash
    assert target_ports(target) == [("http-web", 8080)]
    assert target_ports(rollout_target(new, pods(new, new), service_of(target))) == [
        ("http-web", "http-web")
    ]


def test_rename_and_renumber_go_through_an_intermediate_template() -> None:
    new = desired("http-web", 8081)
    step = rollout_target(new, pods(OLD, OLD), service_of(OLD))
    # Step one: the new number under the old name, which serves old and new Pods alike.
    assert step.template_hash not in (OLD.template_hash, new.template_hash)
    container = step.pod_template["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8081, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    assert step.template_summary["ports"] == {"http": "8081/TCP"}
    assert target_ports(step) == [("http", "http")]
    assert step.pod("x")["metadata"]["labels"]["exposedapp.dev/template-hash"] == step.template_hash
    # Mid-way the target stays the same step (deterministic: no third template).
    assert (
        rollout_target(new, pods(OLD, step), service_of(step)).template_hash == step.template_hash
    )
    # Step two: only step-one Pods are old, a rename on the same number: the number serves.
    final = rollout_target(new, pods(step, step), service_of(step))
    assert final.template_hash == new.template_hash
    assert target_ports(final) == [("http-web", 8081)]


def spec_with(*ports: tuple[str, int, int]) -> DesiredState:
    return build_desired(
        APP,
        parse_spec(
            {
                "replicas": 2,
                "containers": [
                    {
                        "name": "app",
                        "image": "app:1",
                        "ports": [
                            {"name": n, "containerPort": c, "servicePort": s} for n, c, s in ports
                        ],
                    }
                ],
            }
        ),
    )


def test_an_old_name_taken_by_another_port_is_never_staged_twice() -> None:
    old = spec_with(("http", 8080, 80))
    new = spec_with(("web", 8081, 80), ("http", 8443, 443))
    target = rollout_target(new, pods(old, new), service_of(old))
    assert target.template_hash == new.template_hash  # no intermediate with "http" twice
    names = [p["name"] for p in target.pod_template["spec"]["containers"][0]["ports"]]
    assert names == ["web", "http"]


def test_swapped_names_target_the_number_that_serves_each_port() -> None:
    old = spec_with(("a", 8080, 80), ("b", 9090, 90))
    new = spec_with(("b", 8080, 80), ("a", 9090, 90))
    target = rollout_target(new, pods(old, new), service_of(old))
    # By name, port 80 would reach the old Pods' "b" (9090): the other port's backend.
    assert target_ports(target) == [("b", 8080), ("a", 9090)]
