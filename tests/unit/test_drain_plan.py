"""The plan of a drain: a Pod leaves the Service, then goes once the slices let it go.

Exact actions with reasons, on a fixed clock: when a Pod is drained rather than deleted,
what the drain patch says, when a draining Pod is deleted (slices clear plus the delay),
the timeout, the switch, and how draining Pods count.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

from exposedapp.domain.objects import summarise_done
from exposedapp.domain.plan import (
    DRAIN_REASON_LIMIT,
    Action,
    Listing,
    ObservedPod,
    observe_pod,
    plan,
)
from exposedapp.domain.status import summarise
from test_plan import NOW, desired_for, kinds, running, settled_service

SECOND = datetime.timedelta(seconds=1)


def draining(pod: ObservedPod, seconds_ago: float, reason: str = "scaling down") -> ObservedPod:
    return dataclasses.replace(pod, draining_since=NOW - seconds_ago * SECOND, drain_reason=reason)


def test_a_ready_pod_is_drained_with_a_patch_that_takes_it_out_of_the_service() -> None:
    desired = desired_for(replicas=1)
    h = desired.template_hash
    pods = [running(desired, f"web-{h}-0", age=900), running(desired, f"web-{h}-1", age=60)]
    result = plan(desired, pods, settled_service(desired), now=NOW)
    assert result.actions == (
        Action(
            "drain_pod",
            f"web-{h}-1",
            f"draining web-{h}-1 (leaving the Service before its deletion): "
            "scaling down to 1 replicas (2 exist)",
            body={
                "metadata": {
                    "uid": f"uid-web-{h}-1",
                    "labels": {"exposedapp.dev/app-uid": None},
                    "annotations": {
                        "exposedapp.dev/drain": json.dumps(
                            {
                                "reason": "scaling down to 1 replicas (2 exist)",
                                "since": "2026-11-25T12:00:00+00:00",
                            },
                            sort_keys=True,
                        )
                    },
                }
            },
            uid=f"uid-web-{h}-1",
        ),
    )
    # The Service selects on the label the patch removes; the app label keeps it in view.
    assert "exposedapp.dev/app-uid" in desired.selector
    assert "exposedapp.dev/app" in desired.selector


def test_the_drain_annotation_is_read_back_and_bounded() -> None:
    desired = desired_for(replicas=1)
    h = desired.template_hash
    patch = (
        plan(
            desired,
            [running(desired, f"web-{h}-0", age=900), running(desired, f"web-{h}-1")],
            settled_service(desired),
            now=NOW,
        )
        .actions[0]
        .body
    )
    assert patch is not None
    body = desired.pod(f"web-{h}-1")
    body["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    del body["metadata"]["labels"]["exposedapp.dev/app-uid"]
    pod = observe_pod(body)
    assert (pod.draining_since, pod.drain_reason) == (NOW, "scaling down to 1 replicas (2 exist)")
    assert pod.draining
    assert not pod.live


def test_a_long_reason_is_cut_in_the_annotation() -> None:
    # What we write is bounded by construction: a rollout renumbering many ports has a
    # long reason, and the annotation keeps its first DRAIN_REASON_LIMIT characters.
    def many_ports(base: int) -> Any:
        ports = [{"name": f"p{i}", "containerPort": base + i} for i in range(32)]
        return desired_for(replicas=1, containers=[{"name": "app", "image": "a:1", "ports": ports}])

    old, new = many_ports(8000), many_ports(9000)
    pods = [running(old, f"web-{old.template_hash}-0")]
    pods.append(running(new, f"web-{new.template_hash}-0"))
    (drain,) = [a for a in plan(new, pods, None, now=NOW).actions if a.kind == "drain_pod"]
    assert len(drain.reason) > 1000
    assert drain.body is not None
    mark = json.loads(drain.body["metadata"]["annotations"]["exposedapp.dev/drain"])
    assert mark["reason"] == drain.reason.partition("deletion): ")[2][:DRAIN_REASON_LIMIT]
    assert len(mark["reason"]) == DRAIN_REASON_LIMIT


def test_an_unreadable_drain_time_counts_as_long_ago_so_nothing_waits_for_ever() -> None:
    desired = desired_for(replicas=1)
    body = desired.pod("web-x-0")
    body["metadata"]["annotations"]["exposedapp.dev/drain"] = '{"since": "yesterday"}'
    pod = observe_pod(body)
    assert pod.draining
    assert pod.draining_since == datetime.datetime.min.replace(tzinfo=datetime.UTC)
    body["metadata"]["annotations"]["exposedapp.dev/drain"] = "not json"
    assert not observe_pod(body).draining  # not our annotation's shape: not a drain


def test_pods_that_never_served_are_deleted_at_once_and_listed_ones_are_drained() -> None:
    # Not ready and not listed: no traffic can reach it. Not ready but listed (a Service
    # with publishNotReadyAddresses sends it traffic): drained.
    desired = desired_for(replicas=1)
    h = desired.template_hash
    keep = running(desired, f"web-{h}-9", age=900)
    quiet = running(desired, f"web-{h}-0", ready=False)
    listed = running(desired, f"web-{h}-1", ready=False)
    result = plan(
        desired,
        [keep, quiet, listed],
        settled_service(desired),
        now=NOW,
        listing=Listing(serving=frozenset({keep.uid, listed.uid})),
    )
    assert kinds(result.actions) == [("delete_pod", quiet.name), ("drain_pod", listed.name)]


def test_with_no_pod_left_to_serve_nothing_is_drained() -> None:
    # Scaled to 0 (as Recreate): draining would only keep the Service without endpoints
    # longer; the Pods go at once, and the reason says why they were not drained.
    desired = desired_for(replicas=0)
    h = desired.template_hash
    pods = [running(desired, f"web-{h}-{i}") for i in range(2)]
    result = plan(desired, pods, settled_service(desired), now=NOW)
    assert [(a.kind, a.reason) for a in result.actions] == [
        (
            "delete_pod",
            f"deleting web-{h}-{i}: scaling down to 0 replicas (2 exist) (not drained: no other "
            "Pod serves meanwhile)",
        )
        for i in (0, 1)
    ]


def test_finished_pods_are_deleted_at_once() -> None:
    desired = desired_for(replicas=1)
    h = desired.template_hash
    pods = [running(desired, f"web-{h}-0"), running(desired, f"web-{h}-1", phase="Failed")]
    result = plan(desired, pods, settled_service(desired), now=NOW)
    assert kinds(result.actions) == [("delete_pod", f"web-{h}-1")]


def test_a_draining_pod_still_listed_waits_until_the_timeout() -> None:
    desired = desired_for(replicas=1)
    h = desired.template_hash
    keep = running(desired, f"web-{h}-0")
    leaving = draining(running(desired, f"web-{h}-1"), seconds_ago=10)
    result = plan(
        desired,
        [keep, leaving],
        settled_service(desired),
        now=NOW,
        listing=Listing(serving=frozenset({keep.uid, leaving.uid})),
    )
    assert result.empty  # the slices' update wakes the app; else the timeout does
    assert result.requeue_after == 50.0  # timeoutSeconds 60 - 10 s so far


def test_a_draining_pod_goes_once_unlisted_for_the_delay() -> None:
    desired = desired_for(replicas=1)
    h = desired.template_hash
    keep = running(desired, f"web-{h}-0")
    leaving = draining(running(desired, f"web-{h}-1"), seconds_ago=3.5, reason="rolling update")

    def at(unlisted_seconds_ago: float) -> Any:
        return plan(
            desired,
            [keep, leaving],
            settled_service(desired),
            now=NOW,
            listing=Listing(
                serving=frozenset({keep.uid}),
                unlisted_since={leaving.uid: NOW - unlisted_seconds_ago * SECOND},
            ),
        )

    early = at(0.5)
    assert early.empty
    assert early.requeue_after == 1.5
    due = at(2.0)
    assert due.actions == (
        Action(
            "delete_pod",
            leaving.name,
            f"deleting {leaving.name}: drained in 3.5 s (rolling update)",
            uid=leaving.uid,
        ),
    )


def test_a_drain_that_cannot_complete_ends_at_the_timeout_with_the_reason() -> None:
    desired = desired_for(replicas=1, drain={"timeoutSeconds": 30})
    h = desired.template_hash
    keep = running(desired, f"web-{h}-0")
    stuck = draining(running(desired, f"web-{h}-1"), seconds_ago=30, reason="scaling down")
    result = plan(
        desired,
        [keep, stuck],
        settled_service(desired),
        now=NOW,
        listing=Listing(serving=frozenset({keep.uid, stuck.uid})),
    )
    assert result.actions == (
        Action(
            "delete_pod",
            stuck.name,
            f"deleting {stuck.name}: drain timed out after 30 s (the EndpointSlices still "
            "list it) (scaling down)",
            uid=stuck.uid,
        ),
    )


def test_drain_off_deletes_at_once_and_ends_drains_under_way() -> None:
    desired = desired_for(replicas=1, drain={"enabled": False})
    h = desired.template_hash
    keep = running(desired, f"web-{h}-0", age=900)
    extra = running(desired, f"web-{h}-1")
    assert kinds(plan(desired, [keep, extra], settled_service(desired), now=NOW).actions) == [
        ("delete_pod", extra.name)
    ]
    under_way = draining(extra, seconds_ago=1)
    result = plan(desired, [keep, under_way], settled_service(desired), now=NOW)
    assert [a.reason for a in result.actions] == [
        f"deleting {extra.name}: drain turned off (spec.drain.enabled: false) (scaling down)"
    ]


def test_draining_pods_are_not_counted_but_keep_their_names() -> None:
    # Scaled down to 1 and back up to 2 while one Pod drains: a new Pod is made (the
    # draining one does not serve) under a name of its own.
    desired = desired_for(replicas=2)
    h = desired.template_hash
    keep = running(desired, f"web-{h}-0")
    leaving = draining(running(desired, f"web-{h}-1"), seconds_ago=1)
    result = plan(desired, [keep, leaving], settled_service(desired), now=NOW)
    assert kinds(result.actions) == [("create_pod", f"web-{h}-2")]


def test_recreate_waits_for_draining_old_pods() -> None:
    old = desired_for(replicas=1, port=8080)
    new = desired_for(replicas=1, port=8081, updateStrategy={"type": "Recreate"})
    leaving = draining(running(old, f"web-{old.template_hash}-0"), seconds_ago=1)
    result = plan(new, [leaving], settled_service(new), now=NOW)
    assert result.empty


def test_status_counts_draining_pods_apart() -> None:
    desired = desired_for(replicas=1)
    h = desired.template_hash
    pods = [running(desired, f"web-{h}-0"), draining(running(desired, f"web-{h}-1"), 1)]
    status = summarise(
        generation=1,
        desired=desired,
        pods=pods,
        service=None,
        slices=[],
        problems=[],
        now=NOW,
    )
    assert (status["replicas"], status["readyReplicas"], status["drainingReplicas"]) == (1, 1, 1)
    assert "drainingReplicas" not in summarise(
        generation=1,
        desired=desired,
        pods=pods[:1],
        service=None,
        slices=[],
        problems=[],
        now=NOW,
    )


def test_one_event_tells_which_pods_drained_and_how_long_each_took() -> None:
    done = [
        Action("delete_pod", "web-a", "deleting web-a: drained in 2.4 s (scaling down)"),
        Action("delete_pod", "web-b", "deleting web-b: drained in 3.1 s (scaling down)"),
    ]
    assert summarise_done(done) == [
        (
            "DeletedPods",
            "Deleted web-a: drained in 2.4 s (scaling down); "
            "Deleted web-b: drained in 3.1 s (scaling down)",
        )
    ]
    drains = [
        Action("drain_pod", "web-a", "draining web-a (leaving the Service): scaling down"),
        Action("drain_pod", "web-b", "draining web-b (leaving the Service): scaling down"),
    ]
    assert summarise_done(drains) == [
        ("DrainingPods", "Draining 2 Pods (web-a, web-b): scaling down")
    ]


def test_a_drain_twice_in_a_row_writes_nothing_the_second_time() -> None:
    # Once the drain landed and was observed, the plan has nothing more to do until the
    # slices change or a delay ends.
    desired = desired_for(replicas=1)
    h = desired.template_hash
    pods = [running(desired, f"web-{h}-0", age=900), running(desired, f"web-{h}-1")]
    first = plan(desired, pods, settled_service(desired), now=NOW)
    assert kinds(first.actions) == [("drain_pod", f"web-{h}-1")]
    after = [pods[0], draining(pods[1], 0)]
    second = plan(
        desired,
        after,
        settled_service(desired),
        now=NOW,
        listing=Listing(serving=frozenset({pods[0].uid, pods[1].uid})),
    )
    assert second.empty
