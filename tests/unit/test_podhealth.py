"""Why a Pod does not run: the kubelet's reasons, read from literal Pod statuses."""

from __future__ import annotations

import datetime

from exposedapp.domain.desired import AppRef, build_desired
from exposedapp.domain.model import parse_spec
from exposedapp.domain.plan import observe_pod
from exposedapp.domain.podhealth import PodProblem, explain, pod_problems, shorten, trim_pod_status
from exposedapp.domain.status import summarise

NOW = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.UTC)
ROOT_REFUSED = (
    "container has runAsNonRoot and image will run as root (pod: "
    '"web-abc-0_ns(uid)", container: web)'
)


def pod(name: str, *statuses: dict[str, object], **status: object) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "status": {"phase": "Pending", "containerStatuses": list(statuses), **status},
    }


def waiting(container: str, reason: str, message: str = "", **extra: object) -> dict[str, object]:
    state = {"reason": reason, **({"message": message} if message else {})}
    return {"name": container, "ready": False, "state": {"waiting": state}, **extra}


def test_a_root_image_under_run_as_non_root() -> None:
    problems = pod_problems(
        pod("web-0", waiting("web", "CreateContainerConfigError", ROOT_REFUSED))
    )
    assert problems == (PodProblem("web-0", "web", "CreateContainerConfigError", ROOT_REFUSED),)


def test_a_crash_loop_says_how_the_container_last_exited() -> None:
    status = waiting(
        "web",
        "CrashLoopBackOff",
        "back-off 10s restarting failed container=web",
        restartCount=2,
        lastState={"terminated": {"reason": "Error", "exitCode": 1}},
    )
    assert pod_problems(pod("web-0", status)) == (
        PodProblem(
            "web-0",
            "web",
            "CrashLoopBackOff",
            "back-off 10s restarting failed container=web; last exit: Error (exit code 1), "
            "2 restarts",
        ),
    )


def test_an_oom_killed_container_is_named_so_even_while_backing_off() -> None:
    status = waiting(
        "web",
        "CrashLoopBackOff",
        "back-off",
        restartCount=1,
        lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    )
    (problem,) = pod_problems(pod("web-0", status))
    assert (problem.reason, problem.message) == (
        "OOMKilled",
        "back-off; last exit: OOMKilled (exit code 137), 1 restarts",
    )


def test_image_problems_and_the_normal_start_are_told_apart() -> None:
    never = waiting("web", "ErrImageNeverPull", 'image "x" is not present with pull policy Never')
    body = pod("web-0", never, waiting("side", "ContainerCreating"))
    body["metadata"] = {"name": "web-0", "creationTimestamp": "2026-12-01T12:00:00Z"}
    problems = pod_problems(body)
    assert problems[0] == PodProblem(
        "web-0", "web", "ErrImageNeverPull", 'image "x" is not present with pull policy Never'
    )
    creating = [p for p in problems if p.reason == "ContainerCreating"]
    assert explain(creating, NOW + datetime.timedelta(seconds=10)) is None  # a normal start
    assert explain(creating, NOW + datetime.timedelta(seconds=31)) == (
        "ContainerCreating",
        "Pod web-0 container side: ContainerCreating: still being created 30 s after the Pod "
        "was made: a volume that cannot be mounted (a missing Secret or ConfigMap) or a slow "
        "image pull; `kubectl describe pod web-0` shows the kubelet's events",
    )


def test_running_but_not_ready_counts_only_after_the_grace() -> None:
    started = NOW - datetime.timedelta(seconds=4)
    status = {
        "name": "web",
        "ready": False,
        "state": {"running": {"startedAt": started.strftime("%Y-%m-%dT%H:%M:%SZ")}},
    }
    problems = pod_problems(pod("web-0", status))
    assert problems == (
        PodProblem(
            "web-0",
            "web",
            "ContainerNotReady",
            "running but not ready: its readiness probe fails",
            started,
        ),
    )
    assert explain(problems, NOW) is None
    assert explain(problems, NOW + datetime.timedelta(seconds=6)) == (
        "ContainerNotReady",
        "Pod web-0 container web: ContainerNotReady: "
        "running but not ready: its readiness probe fails",
    )


def test_an_unschedulable_pod_and_a_failed_init_container() -> None:
    body = pod(
        "web-0",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes",
            }
        ],
        initContainerStatuses=[
            {
                "name": "migrate",
                "ready": False,
                "state": {"terminated": {"reason": "Error", "exitCode": 3}},
            }
        ],
    )
    assert pod_problems(body) == (
        PodProblem("web-0", "", "Unschedulable", "0/3 nodes"),
        PodProblem("web-0", "migrate", "Error", "exited with code 3"),
    )


def test_explain_names_the_first_pod_and_counts_the_others() -> None:
    problems = [
        PodProblem("web-0", "web", "CreateContainerConfigError", ROOT_REFUSED),
        PodProblem("web-1", "web", "CreateContainerConfigError", ROOT_REFUSED),
        PodProblem("web-2", "web", "CreateContainerConfigError", ROOT_REFUSED),
    ]
    assert explain(problems, NOW) == (
        "CreateContainerConfigError",
        f"Pod web-0 container web: CreateContainerConfigError: {ROOT_REFUSED} (and 2 more Pods)",
    )


def test_shorten_cuts_at_a_word_and_says_how_much_is_left() -> None:
    text = "word " * 100  # 499 characters once normalised; 34 are kept
    short = shorten(text, limit=60)
    assert short == "word word word word word word word [465 more characters]"
    assert len(short) <= 60
    assert shorten("fits as it is") == "fits as it is"


def test_the_trimmed_status_keeps_every_problem_and_drops_ready_containers() -> None:
    status = {
        "phase": "Running",
        "podIP": "10.0.0.1",
        "conditions": [{"type": "Initialized", "status": "True"}],
        "containerStatuses": [
            {"name": "ok", "ready": True, "image": "x", "state": {"running": {"startedAt": "t"}}},
            waiting(
                "web",
                "CrashLoopBackOff",
                "m",
                restartCount=3,
                imageID="sha",
                lastState={"terminated": {"reason": "Error", "exitCode": 2, "finishedAt": "t"}},
            ),
        ],
    }
    trimmed = trim_pod_status(status)
    assert trimmed == {
        "phase": "Running",
        "conditions": [],
        "containerStatuses": [
            {
                "name": "web",
                "ready": False,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "m"}},
                "lastState": {"terminated": {"reason": "Error", "exitCode": 2}},
            }
        ],
    }
    assert pod_problems({"metadata": {"name": "p"}, "status": trimmed}) == pod_problems(
        {"metadata": {"name": "p"}, "status": status}
    )


def test_summarise_puts_the_kubelets_reason_on_ready() -> None:

    spec = parse_spec(
        {
            "replicas": 1,
            "containers": [
                {"name": "web", "image": "i", "ports": [{"name": "http", "containerPort": 8080}]}
            ],
        }
    )
    desired = build_desired(AppRef("ns", "web", "uid-1"), spec)
    body = pod("web-0", waiting("web", "CreateContainerConfigError", ROOT_REFUSED))
    body["metadata"] = {
        **desired.pod("web-0")["metadata"],
        "creationTimestamp": "2026-12-01T11:59:00Z",
    }
    status = summarise(
        generation=1,
        desired=desired,
        pods=[observe_pod(body)],
        service=None,
        slices=[],
        problems=[],
        now=NOW,
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready == {
        "type": "Ready",
        "status": "False",
        "reason": "CreateContainerConfigError",
        "message": f"Pod web-0 container web: CreateContainerConfigError: {ROOT_REFUSED}",
        "observedGeneration": 1,
    }
