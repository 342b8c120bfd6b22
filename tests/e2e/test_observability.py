"""The operator's /metrics, /readyz and /healthz, scraped from the real process."""

from __future__ import annotations

import re

from conftest import OperatorProcess
from kubetest import wait_for
from kubetest.apps import Apps, app_manifest


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if match and match[1] == name:
            found = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
            if found == wanted:
                return float(match[3])
    return 0.0


def test_metrics_count_reconciles_requests_and_apps_by_condition(
    apps: Apps, operator: OperatorProcess
) -> None:
    status, _ = wait_for(lambda: operator.scrape("/readyz"), lambda r: r[0] == 200, what="/readyz")
    assert status == 200
    assert operator.scrape("/healthz") == (200, "ok")
    _, before = operator.scrape()
    apps.create(app_manifest("metered", replicas=2))
    apps.wait_ready("metered")

    _, after = wait_for(
        operator.scrape,
        lambda r: metric(r[1], "exposedapp_apps", condition="Ready", status="True") >= 1,
        what="the app counted as Ready",
    )
    created = metric(after, "exposedapp_api_requests_total", verb="POST", code="201")
    assert created - metric(before, "exposedapp_api_requests_total", verb="POST", code="201") >= 2
    assert metric(after, "exposedapp_reconciles_total", result="changed") > metric(
        before, "exposedapp_reconciles_total", result="changed"
    )
    assert metric(after, "exposedapp_reconcile_duration_seconds_count") >= 1
    assert metric(after, "exposedapp_watch_starts_total", resource="pods.v1") >= 1


def test_readyz_turns_ready_once_everything_is_indexed_and_queued(
    apps: Apps, operator: OperatorProcess
) -> None:
    operator.stop()
    for index in range(3):
        apps.create(app_manifest(f"early-{index}", replicas=1))
    operator.start()
    answers: list[tuple[int, str]] = []

    def scrape() -> tuple[int, str]:
        answer = operator.scrape("/readyz")
        answers.append(answer)
        return answer

    _, body = wait_for(scrape, lambda r: r[0] == 200, what="/readyz 200")
    queued = int(body.split(", ")[1].split()[0])
    assert body == f"ok: indexed, {queued} apps queued at start"
    assert queued >= 3  # at least this test's apps (the operator watches every namespace)
    for index in range(3):
        apps.wait_ready(f"early-{index}")
