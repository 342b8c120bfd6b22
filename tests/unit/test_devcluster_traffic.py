"""The load generator asks for the path it is given (netserver's /burn costs CPU)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devcluster.traffic import LoadGenerator
from kubetest.waiting import wait_for


class Recorder(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:
        Recorder.paths.append(self.path)
        body = b"pod-a 8080\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    Recorder.paths = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_every_request_asks_for_the_given_path(server: ThreadingHTTPServer) -> None:
    port = server.server_address[1]
    with LoadGenerator(
        "127.0.0.1", port, workers=1, rate=200, max_requests=5, max_seconds=5, path="/burn?ms=1"
    ) as load:
        wait_for(lambda: load.report.requests, lambda n: n >= 5, timeout=5, interval=0.01)
    assert load.report.failed == 0
    assert load.report.answered_by["pod-a"] == load.report.requests == 5
    assert Recorder.paths == ["/burn?ms=1"] * 5


def test_the_default_path_is_the_root(server: ThreadingHTTPServer) -> None:
    assert LoadGenerator("127.0.0.1", server.server_address[1]).path == "/"
