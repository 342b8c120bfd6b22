"""rolloutOnConfigChange: which ConfigMaps and Secrets the Pods reference, and how their
data reaches the template hash. Exact expectations."""

from __future__ import annotations

from typing import Any

from exposedapp.domain.desired import AppRef, build_desired, config_digest, config_references
from exposedapp.domain.model import parse_spec

APP = AppRef("shop", "web", "uid-1")


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "containers": [
            {
                "name": "web",
                "image": "web:1",
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": [
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "a"}}},
                    {
                        "name": "B",
                        "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "b"}},
                    },
                    {"name": "C", "value": "plain"},
                ],
                "envFrom": [
                    {"configMapRef": {"name": "all-cm"}},
                    {"secretRef": {"name": "all-secret"}},
                ],
            }
        ],
        "initContainers": [
            {
                "name": "setup",
                "image": "setup:1",
                "envFrom": [{"configMapRef": {"name": "init-cm"}}],
            }
        ],
        "volumes": [
            {"name": "conf", "configMap": {"name": "vol-cm"}},
            {"name": "certs", "secret": {"secretName": "vol-secret"}},
            {
                "name": "both",
                "projected": {
                    "sources": [
                        {"configMap": {"name": "proj-cm"}},
                        {"secret": {"name": "proj-secret"}},
                    ]
                },
            },
            {"name": "scratch", "emptyDir": {}},
        ],
        **extra,
    }


def test_every_kind_of_reference_is_found_once_and_sorted() -> None:
    assert config_references(spec()) == (
        ("ConfigMap", "all-cm"),
        ("ConfigMap", "env-cm"),
        ("ConfigMap", "init-cm"),
        ("ConfigMap", "proj-cm"),
        ("ConfigMap", "vol-cm"),
        ("Secret", "all-secret"),
        ("Secret", "env-secret"),
        ("Secret", "proj-secret"),
        ("Secret", "vol-secret"),
    )


def test_new_data_is_a_new_template_only_for_an_app_that_opted_in() -> None:
    refs = config_references(spec())
    before = config_digest(refs, lambda ref: "h1")
    after = config_digest(refs, lambda ref: "h2" if ref == ("ConfigMap", "vol-cm") else "h1")
    absent = config_digest(refs, lambda ref: None)
    assert len({before, after, absent}) == 3
    opted = parse_spec(spec(rolloutOnConfigChange=True))
    one, two = build_desired(APP, opted, before), build_desired(APP, opted, after)
    assert one.template_hash != two.template_hash
    assert one.pod("p")["metadata"]["annotations"]["exposedapp.dev/config-hash"] == before
    # Not opted in: the digest is ignored, the template is the one without it.
    plain = parse_spec(spec())
    assert (
        build_desired(APP, plain, before).template_hash == build_desired(APP, plain).template_hash
    )
    assert (
        "exposedapp.dev/config-hash"
        not in build_desired(APP, plain).pod("p")["metadata"]["annotations"]
    )
