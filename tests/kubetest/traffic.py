"""Real requests: one-off HTTP and UDP probes, and a small bounded load generator.

Every answer of the local test server (devcluster's netserver) is "<pod name> <port>", so a
probe tells which Pod and which container port a Service really sent it to. The load
generator only dials the addresses a test gives it (a ClusterIP, a NodePort on the node's
own address or loopback), and stops after ``max_requests`` or ``max_seconds``, whichever
comes first.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["LoadGenerator", "LoadReport", "http_get", "udp_echo"]


def http_get(host: str, port: int, path: str = "/", timeout: float = 3) -> str:
    """The body of GET http://host:port/path on a new connection; raises on any failure."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise OSError(f"HTTP {response.status} from {host}:{port}")
        return body.strip()
    finally:
        connection.close()


def udp_echo(host: str, port: int, message: str = "ping", timeout: float = 2) -> str:
    """Send one datagram and return the reply; raises socket.timeout when none comes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(message.encode(), (host, port))
        reply, _ = sock.recvfrom(65535)
        return reply.decode().strip()


@dataclass
class LoadReport:
    """What the load generator saw: totals, failures by kind, and the Pods that answered."""

    requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    answered_by: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def per_10k(self) -> float:
        return 10_000 * self.failed / self.requests if self.requests else 0.0

    def __str__(self) -> str:
        kinds = ", ".join(f"{k}: {v}" for k, v in self.failures.most_common()) or "none"
        return f"{self.requests} requests, {self.failed} failed ({kinds})"


class LoadGenerator:
    """A steady stream of HTTP GETs, each on a new connection, from ``workers`` threads.

    Use as a context manager around the change to measure; ``report`` is complete once the
    block exits. ``rate`` caps requests per second over all workers.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        workers: int = 4,
        rate: float = 100.0,
        max_requests: int = 60_000,
        max_seconds: float = 180.0,
        timeout: float = 2.0,
    ) -> None:
        self.host, self.port = host, port
        self.workers, self.interval = workers, workers / rate
        self.max_requests, self.max_seconds, self.timeout = max_requests, max_seconds, timeout
        self.report = LoadReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _work(self, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                answer = http_get(self.host, self.port, timeout=self.timeout)
                kind, pod = None, answer.split(" ", 1)[0]
            except ConnectionResetError:
                kind, pod = "reset", None
            except ConnectionRefusedError:
                kind, pod = "refused", None
            except TimeoutError:
                kind, pod = "timeout", None
            except (OSError, http.client.HTTPException) as error:
                kind, pod = type(error).__name__, None
            with self._lock:
                if self.report.requests >= self.max_requests:
                    return
                self.report.requests += 1
                if kind is not None:
                    self.report.failures[kind] += 1
                if pod is not None:
                    self.report.answered_by[pod] += 1
            pause = self.interval - (time.monotonic() - started)
            if pause > 0:
                self._stop.wait(pause)

    def __enter__(self) -> LoadGenerator:
        deadline = time.monotonic() + self.max_seconds
        self._threads = [
            threading.Thread(target=self._work, args=(deadline,), daemon=True)
            for _ in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
