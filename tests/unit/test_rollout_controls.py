"""Rollouts people steer: restart, pause, the progress deadline, and the conditions kstatus
reads (Reconciling, Stalled). Exact expectations on a fixed clock."""

from __future__ import annotations

import datetime
from typing import Any

from exposedapp.domain.plan import describe_template_change, plan
from exposedapp.domain.status import Problem, summarise, track_progress
from test_plan import NOW, desired_for, kinds, running, settled_service

STAMP = "2026-12-01T10:00:00Z"


def test_a_restart_stamp_is_a_new_template_and_says_so() -> None:
    plain = desired_for(replicas=2)
    restarted = desired_for(replicas=2, restartedAt=STAMP)
    again = desired_for(replicas=2, restartedAt="2026-12-01T11:00:00Z")
    assert len({plain.template_hash, restarted.template_hash, again.template_hash}) == 3
    pod = restarted.pod("web-x-0")
    assert pod["metadata"]["annotations"]["exposedapp.dev/restartedAt"] == STAMP
    assert "exposedapp.dev/restartedAt" not in plain.pod("web-x-0")["metadata"]["annotations"]
    assert (
        describe_template_change(restarted.template_summary, again.template_summary)
        == "restarted at 2026-12-01T11:00:00Z"
    )
    # Rolled through the update strategy like any template change.
    pods = [running(plain, f"web-{plain.template_hash}-{i}") for i in range(2)]
    assert kinds(plan(restarted, pods, settled_service(restarted), now=NOW).actions) == [
        ("create_pod", f"web-{restarted.template_hash}-0")
    ]


def test_paused_starts_no_rollout_step_but_replaces_lost_pods_and_scales() -> None:
    old = desired_for(replicas=3, port=8080)
    new = desired_for(replicas=3, port=8081, paused=True)
    pods = [running(old, f"web-{old.template_hash}-{i}") for i in range(3)]
    assert plan(new, pods, settled_service(new), now=NOW).empty
    # One old Pod lost: replaced with the current template, the only one there is.
    result = plan(new, pods[:2], settled_service(new), now=NOW)
    assert kinds(result.actions) == [("create_pod", f"web-{new.template_hash}-0")]
    assert result.actions[0].reason.endswith(
        "2 of 3 replicas exist (paused: replacing lost Pods only)"
    )
    # Scaled down while paused: the least valuable Pods go, drained.
    smaller = desired_for(replicas=1, port=8081, paused=True)
    assert [a.kind for a in plan(smaller, pods, settled_service(smaller), now=NOW).actions] == [
        "drain_pod",
        "drain_pod",
    ]
    # Resumed: the rollout goes on.
    resumed = desired_for(replicas=3, port=8081)
    assert kinds(plan(resumed, pods, settled_service(resumed), now=NOW).actions)[0][0] == (
        "create_pod"
    )


def _status(desired: Any, pods: Any, problems: Any = ()) -> dict[str, Any]:
    return summarise(
        generation=2,
        desired=desired,
        pods=pods,
        service=None,
        slices=[],
        problems=list(problems),
        now=NOW,
    )


def _conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_paused_mid_rollout_says_paused_and_is_not_progressing() -> None:
    old = desired_for(replicas=2, port=8080)
    new = desired_for(replicas=2, port=8081, paused=True)
    pods = [running(old, f"web-{old.template_hash}-0"), running(new, f"web-{new.template_hash}-0")]
    status = _status(new, pods)
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "False",
        "Paused",
        "rollout paused (spec.paused): 1 of 2 replicas updated, 1 old remain",
    )
    assert _conditions(status)["Ready"] == ("False", "Paused")
    assert track_progress(status, {}, NOW, 600) is None  # no deadline while paused
    assert _conditions(status)["Reconciling"] == ("False", "AsExpected")
    assert _conditions(status)["Stalled"] == ("False", "AsExpected")


def _rolling() -> tuple[Any, list[Any]]:
    old = desired_for(replicas=2, port=8080)
    new = desired_for(replicas=2, port=8081, progressDeadlineSeconds=60)
    pods = [
        running(old, f"web-{old.template_hash}-0"),
        running(old, f"web-{old.template_hash}-1"),
        running(new, f"web-{new.template_hash}-0", ready=False),
    ]
    return new, pods


def test_progress_time_moves_with_the_counts_and_the_deadline_counts_from_it() -> None:
    new, pods = _rolling()
    first = _status(new, pods)
    assert track_progress(first, {}, NOW, 60) == 60.0
    assert first["lastProgressTime"] == "2026-11-25T12:00:00Z"
    assert _conditions(first)["Reconciling"] == ("True", "RollingUpdate")
    assert _conditions(first)["Stalled"] == ("False", "AsExpected")
    # 45 s later, nothing moved: the time stays, 15 s of the deadline are left.
    later = NOW + datetime.timedelta(seconds=45)
    same = _status(new, pods)
    assert track_progress(same, first, later, 60) == 15.0
    assert same["lastProgressTime"] == first["lastProgressTime"]
    # A count moved (the new Pod became available): progress, counted from now.
    moved = _status(new, [*pods[:2], running(new, f"web-{new.template_hash}-0")])
    assert track_progress(moved, first, later, 60) == 60.0
    assert moved["lastProgressTime"] == "2026-11-25T12:00:45Z"


def test_past_the_deadline_progressing_is_false_and_stalled_true_but_work_goes_on() -> None:
    new, pods = _rolling()
    first = _status(new, pods)
    track_progress(first, {}, NOW, 60)
    stuck = _status(new, pods)
    assert track_progress(stuck, first, NOW + datetime.timedelta(seconds=60), 60) is None
    progressing = next(c for c in stuck["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert progressing["message"] == (
        "no progress for 60 s (spec.progressDeadlineSeconds): 1 of 2 replicas updated, 2 old remain"
    )
    assert _conditions(stuck)["Stalled"] == ("True", "ProgressDeadlineExceeded")
    assert _conditions(stuck)["Reconciling"] == ("False", "AsExpected")


def test_degraded_is_stalled_for_kstatus_and_complete_is_neither() -> None:
    desired = desired_for(replicas=1)
    pods = [running(desired, f"web-{desired.template_hash}-0")]
    degraded = _status(desired, pods, [Problem("QuotaExceeded", "exceeded quota: pods=1")])
    track_progress(degraded, {}, NOW, 600)
    assert _conditions(degraded)["Stalled"] == ("True", "QuotaExceeded")
    assert _conditions(degraded)["Reconciling"] == ("False", "AsExpected")
    done = _status(desired, pods)
    assert track_progress(done, {}, NOW, 600) is None
    assert "lastProgressTime" not in done
    assert {k: v[0] for k, v in _conditions(done).items() if k != "Ready"} == {
        "Progressing": "False",
        "Degraded": "False",
        "Reconciling": "False",
        "Stalled": "False",
    }
