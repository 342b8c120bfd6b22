"""Every field of the ExposedApp API explains itself in `kubectl explain`.

kubectl explain shows, for a field, the `description` of the field's own schema node: the
property of its parent object. So the rule is:

- every property of every object has a non-empty description: spec and status and all
  their descendants, also the properties of objects inside lists (`containers[]`) and
  inside maps (`additionalProperties`);
- the `items` of a list and the values of a map need none of their own: explain shows the
  list's or the map's description for the field (`containers <[]Object>`), then the
  fields of its items, which the first rule covers;
- the root's apiVersion, kind and metadata are exempt: the apiserver publishes them with
  the TypeMeta and ObjectMeta descriptions whatever the CRD says, and it refuses a
  metadata schema that declares more than name and generateName.

The root itself (what `kubectl explain xapp` shows first) needs a description too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from exposedapp.domain import crd

# Properties of the root the apiserver describes itself (see the module docstring).
APISERVER_OWNED = {"apiVersion", "kind", "metadata"}
# One to three sentences: enough for meaning, units, defaults and bounds.
MAX_LENGTH = 300


def _properties(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, schema) of every property below ``node``; [] steps into items, {} into values."""
    for name, child in node.get("properties", {}).items():
        child_path = f"{path}.{name}" if path else name
        yield child_path, child
        yield from _properties(child, child_path)
    if isinstance(node.get("items"), dict):
        yield from _properties(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _properties(node["additionalProperties"], f"{path}{{}}")


def _api_properties() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, child in crd.ROOT_SCHEMA["properties"].items():
        if name not in APISERVER_OWNED:
            yield name, child
            yield from _properties(child, name)


def _description(node: dict[str, Any]) -> str:
    description = node.get("description")
    return description.strip() if isinstance(description, str) else ""


def test_every_property_of_the_api_has_a_description() -> None:
    assert _description(crd.ROOT_SCHEMA), "the root of the schema has no description"
    undescribed = [path for path, node in _api_properties() if not _description(node)]
    assert undescribed == [], "properties without a description:\n" + "\n".join(undescribed)


def test_the_walk_sees_every_level_of_the_api() -> None:
    paths = {path for path, _ in _api_properties()}
    assert {
        "spec",
        "spec.containers[].readinessProbe.httpGet.httpHeaders[].name",
        "spec.volumes[].projected.sources[].downwardAPI.items[].resourceFieldRef.divisor",
        "status.service.loadBalancer.ingress[].ports[].error",
        "status.conditions[].lastTransitionTime",
    } <= paths


def test_descriptions_are_short_and_written_out() -> None:
    too_long = [
        f"{path} ({len(node['description'])} characters)"
        for path, node in _api_properties()
        if len(node.get("description", "")) > MAX_LENGTH
    ]
    assert too_long == []
    untidy = [
        path
        for path, node in _api_properties()
        if "description" in node and node["description"] != node["description"].strip()
    ]
    assert untidy == []
