"""`kubectl xapp`: exact output for fixed inputs (the e2e suite runs it on the cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from exposedapp.plugin import (
    PluginError,
    render_history,
    render_ports,
    rollout_progress,
    undo_target,
    undone_spec,
)


def app(
    generation: int = 2,
    observed: int = 2,
    wanted: int = 3,
    conditions: dict[str, tuple[str, str, str]] | None = None,
    **status: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "generation": generation, "uid": "u"},
        "spec": {"replicas": wanted},
        "status": {
            "observedGeneration": observed,
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": m}
                for t, (s, r, m) in (conditions or {}).items()
            ],
            **status,
        },
    }


@pytest.mark.parametrize(
    ("body", "done", "failed", "message"),
    [
        (app(observed=1), False, False, "Waiting for the operator to observe the latest spec..."),
        (
            app(updatedReplicas=1, replicas=3),
            False,
            False,
            "Waiting for rollout to finish: 1 out of 3 new replicas have been updated...",
        ),
        (
            app(updatedReplicas=3, replicas=4, availableReplicas=3),
            False,
            False,
            "Waiting for rollout to finish: 1 old replicas are pending termination...",
        ),
        (
            app(updatedReplicas=3, replicas=3, availableReplicas=2),
            False,
            False,
            "Waiting for rollout to finish: 2 of 3 updated replicas are available...",
        ),
        (
            app(
                updatedReplicas=3,
                replicas=3,
                availableReplicas=3,
                conditions={"Ready": ("True", "Serving", "3 of 3 replicas ready")},
            ),
            True,
            False,
            'exposedapp "web" successfully rolled out',
        ),
        (
            app(conditions={"Progressing": ("False", "Paused", "rollout paused")}),
            False,
            False,
            "Waiting for rollout to finish: paused (resume with `kubectl xapp rollout resume "
            "web`)...",
        ),
        (
            app(conditions={"Stalled": ("True", "ProgressDeadlineExceeded", "no progress")}),
            False,
            True,
            'exposedapp "web" exceeded its progress deadline',
        ),
        (
            app(conditions={"Stalled": ("True", "QuotaExceeded", "exceeded quota: pods")}),
            False,
            True,
            'exposedapp "web" is degraded: exceeded quota: pods',
        ),
    ],
)
def test_rollout_status_speaks_as_kubectl_does(
    body: dict[str, Any], done: bool, failed: bool, message: str
) -> None:
    progress = rollout_progress(body)
    assert (progress.done, progress.failed, progress.message) == (done, failed, message)


def revision(number: int, template: str, image: str, port: int = 8080, **spec: Any) -> Any:
    return {
        "metadata": {
            "name": f"web-{template}",
            "labels": {"exposedapp.dev/template-hash": template},
        },
        "revision": number,
        "data": {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": image,
                        "ports": [{"name": "http", "containerPort": port}],
                    }
                ],
                **spec,
            }
        },
    }


REVISIONS = [
    revision(3, "cccccccccc", "web:3", restartedAt="2026-12-01T10:00:00Z"),
    revision(1, "aaaaaaaaaa", "web:1"),
    revision(2, "bbbbbbbbbb", "web:2", 9090),
]


def test_history_lists_revisions_oldest_first_and_marks_the_current_one() -> None:
    assert render_history("web", REVISIONS, "bbbbbbbbbb") == (
        "exposedapp.exposedapp.dev/web\n"
        "REVISION  TEMPLATE    CHANGE\n"
        "1         aaaaaaaaaa  web=web:1 [http:8080]\n"
        "2         bbbbbbbbbb  web=web:2 [http:9090]  (current)\n"
        "3         cccccccccc  web=web:3 [http:8080] restartedAt=2026-12-01T10:00:00Z\n"
    )


def test_undo_goes_to_the_newest_other_revision_or_the_one_asked_for() -> None:
    assert undo_target(REVISIONS, "cccccccccc", None)["revision"] == 2
    assert undo_target(REVISIONS, "cccccccccc", 1)["revision"] == 1
    with pytest.raises(PluginError, match="unable to find the specified revision 7"):
        undo_target(REVISIONS, "cccccccccc", 7)
    with pytest.raises(PluginError, match="no rollout history found"):
        undo_target(REVISIONS[:1], "cccccccccc", None)


def test_undo_writes_the_recorded_spec_back_with_todays_replicas_and_pause() -> None:
    current = {"replicas": 5, "paused": True, "containers": [{"name": "web", "image": "web:3"}]}
    assert undone_spec(current, REVISIONS[1]) == {
        "containers": [
            {"name": "web", "image": "web:1", "ports": [{"name": "http", "containerPort": 8080}]}
        ],
        "replicas": 5,
        "paused": True,
    }


def _ported_app(ready: int) -> dict[str, Any]:
    body = app(readyReplicas=ready, drainingReplicas=1)
    body["spec"].update(
        replicas=2,
        containers=[
            {
                "name": "web",
                "ports": [
                    {"name": "http", "containerPort": 8080},
                    {"name": "admin", "containerPort": 9901, "expose": False},
                ],
            },
            {"name": "exporter", "ports": [{"name": "metrics", "containerPort": 9090}]},
        ],
        service={"type": "NodePort"},
    )
    body["status"]["service"] = {
        "ports": [
            {
                "name": "http",
                "protocol": "TCP",
                "port": 80,
                "containerPort": 8080,
                "container": "web",
            },
            {
                "name": "metrics",
                "protocol": "TCP",
                "port": 9090,
                "containerPort": 9090,
                "container": "exporter",
                "nodePort": 30090,
            },
        ]
    }
    return body


SERVICE = {
    "spec": {
        "clusterIP": "10.96.0.12",
        "ports": [
            {
                "name": "http",
                "port": 80,
                "protocol": "TCP",
                "targetPort": "http",
                "nodePort": 31080,
            },
            {
                "name": "metrics",
                "port": 9090,
                "protocol": "TCP",
                "targetPort": "metrics",
                "nodePort": 30090,
            },
        ],
    }
}


def _slices(http_ready: int, metrics_ready: int) -> list[dict[str, Any]]:
    def one(name: str, ready: int) -> dict[str, Any]:
        return {
            "ports": [{"name": name}],
            "endpoints": [{"conditions": {"ready": i < ready}} for i in range(2)],
        }

    return [one("http", http_ready), one("metrics", metrics_ready)]


def test_the_port_map_draws_every_hop_and_marks_what_is_missing() -> None:
    assert render_ports(_ported_app(ready=1), SERVICE, _slices(2, 1)) == (
        "ExposedApp shop/web: 2 replicas, 1 ready, 1 draining\n"
        "  Service web: NodePort 10.96.0.12\n"
        "  CLIENTS      SERVICE PORT  NODEPORT  TARGETPORT   CONTAINER     PORT          READY\n"
        "  clients ──▶  80/TCP        31080     ──▶ http     ──▶ web       http:8080     2/2\n"
        "  clients ──▶  9090/TCP      30090     ──▶ metrics  ──▶ exporter  metrics:9090  1/2"
        "  ✗ 1 of 2 endpoints not ready\n"
        "  Pod-only ports (not on the Service): web:9901 (admin)\n"
    )


def test_the_port_map_says_when_the_service_is_missing_and_colors_only_on_request() -> None:
    drawn = render_ports(_ported_app(ready=0), None, [], color=True)
    assert "\033[31m  Service web: missing (no client can reach the Pods)\033[0m" in drawn
    assert "✗ not on the live Service" in drawn
    assert "\033[" not in render_ports(_ported_app(ready=0), None, [])
