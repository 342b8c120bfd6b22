"""Credentials from a token file are read again when the file changes (rotated tokens)."""

from __future__ import annotations

import os
from pathlib import Path

import pykube
import requests

from exposedapp.runtime.client import TokenFile, token_file_of


def test_a_rotated_token_is_sent_from_the_next_request_on(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    auth = TokenFile(path)
    request = requests.Request("GET", "https://example.invalid/api").prepare()
    assert auth(request).headers["Authorization"] == "Bearer first"
    path.write_text("second-and-longer\n")
    os.utime(path, (1, 1))  # a new modification time, as a rotation gives
    assert auth(request).headers["Authorization"] == "Bearer second-and-longer"


def test_a_kubeconfig_token_file_is_found(tmp_path: Path) -> None:
    config = pykube.KubeConfig(
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
            "users": [{"name": "u", "user": {"tokenFile": str(tmp_path / "token")}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )
    assert token_file_of(config) == tmp_path / "token"
