"""`exposedapp render`: offline, from the same builders as the operator."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exposedapp.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "samples"


def test_render_prints_the_pods_and_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(SAMPLES / "multi-container.yaml")]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = [o["kind"] for o in objects]
    documents = yaml.safe_load_all((SAMPLES / "multi-container.yaml").read_text())
    replicas = next(d for d in documents if d["kind"] == "ExposedApp")["spec"]["replicas"]
    assert kinds == ["Pod"] * replicas + ["Service"]
    service = objects[-1]
    container_ports = {
        p["name"]: p["containerPort"]
        for c in objects[0]["spec"]["containers"]
        for p in c.get("ports", [])
    }
    # Every Service port targets a container port by name, and that name exists.
    assert all(p["targetPort"] in container_ports for p in service["spec"]["ports"])


def test_render_names_the_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "exposedapp.dev/v1alpha1",
                "kind": "ExposedApp",
                "metadata": {"name": "web"},
                "spec": {
                    "containers": [
                        {"name": "a", "image": "a", "ports": [{"name": "http", "containerPort": 0}]}
                    ]
                },
            }
        )
    )
    assert main(["render", "-f", str(bad)]) == 2
    assert "spec.containers[0].ports[0].containerPort" in capsys.readouterr().err
