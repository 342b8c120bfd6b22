"""Real requests: a one-off HTTP GET and a small bounded load generator.

Every answer of the local test server (netserver) is "<pod name> <port>", so a request
tells which Pod and which container port a Service really sent it to. The load generator
only dials the one address it is given (a ClusterIP, a NodePort on the node's own address
or loopback), each request on a new connection, and stops after ``max_requests`` or
``max_seconds``, whichever comes first. Its load is open-loop: requests leave on a fixed
schedule whether or not earlier ones were answered, so a stretch of timeouts (a Pod's
address gone while kube-proxy still sends to it) is counted request by request instead of
silencing the generator while it waits. Failures are counted by kind: a connection reset
(the peer's RST: a listener closed with connections still in its backlog) apart from a
refused connection (nothing listens, or kube-proxy rejects for a Service without
endpoints), a timeout, or a connection closed without an answer.

Used by the traffic benchmark (``devcluster.trafficbench``) and the end-to-end tests
(through ``kubetest.traffic``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LoadGenerator", "LoadReport", "failure_kind", "http_get"]

# At most this many failures keep their time: enough to see when they happened, bounded
# whatever goes wrong.
FAILURE_TIMES_KEPT = 1000


class HTTPStatusError(OSError):
    """An answer that is not 200 OK."""

    def __init__(self, status: int, host: str, port: int) -> None:
        super().__init__(f"HTTP {status} from {host}:{port}")
        self.status = status


def http_get(host: str, port: int, path: str = "/", timeout: float = 3) -> str:
    """The body of GET http://host:port/path on a new connection; raises on any failure."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise HTTPStatusError(response.status, host, port)
        return body.strip()
    finally:
        connection.close()


def failure_kind(error: BaseException) -> str:
    """A failed request's kind, as counted in a LoadReport."""
    if isinstance(error, http.client.RemoteDisconnected):
        return "closed"  # a FIN before any answer: the server dropped the connection
    if isinstance(error, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, HTTPStatusError):
        return f"http {error.status}"
    if isinstance(error, OSError) and error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return type(error).__name__


@dataclass
class LoadReport:
    """What the load generator saw: totals, failures by kind, and the Pods that answered.

    ``started``/``finished`` are time.monotonic() values; ``failure_times`` holds, for the
    first FAILURE_TIMES_KEPT failures, (time.monotonic() when the request began, kind).
    """

    requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    answered_by: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0
    failure_times: list[tuple[float, str]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def resets(self) -> int:
        return self.failures["reset"]

    @property
    def seconds(self) -> float:
        return max(0.0, self.finished - self.started)

    @property
    def rate(self) -> float:
        """Requests per second achieved (the generator's rate is a cap, not a promise)."""
        return self.requests / self.seconds if self.seconds else 0.0

    def per_10k(self) -> float:
        return 10_000 * self.failed / self.requests if self.requests else 0.0

    def resets_per_10k(self) -> float:
        return 10_000 * self.resets / self.requests if self.requests else 0.0

    @classmethod
    def combined(cls, reports: Iterable[LoadReport]) -> LoadReport:
        """One report for several generators that ran side by side."""
        total = cls()
        reports = list(reports)
        for report in reports:
            total.requests += report.requests
            total.failures.update(report.failures)
            total.answered_by.update(report.answered_by)
            total.failure_times.extend(report.failure_times)
        total.failure_times.sort()
        if reports:
            total.started = min(r.started for r in reports)
            total.finished = max(r.finished for r in reports)
        return total

    def as_dict(self, origin: float | None = None) -> dict[str, Any]:
        """JSON-ready; failure times in seconds after ``origin`` (default: the start)."""
        origin = self.started if origin is None else origin
        return {
            "requests": self.requests,
            "failed": self.failed,
            "resets": self.resets,
            "by_kind": dict(self.failures.most_common()),
            "per_10k": round(self.per_10k(), 2),
            "resets_per_10k": round(self.resets_per_10k(), 2),
            "seconds": round(self.seconds, 2),
            "rate": round(self.rate, 1),
            "answered_by": dict(sorted(self.answered_by.items())),
            "failure_times": [[round(t - origin, 3), kind] for t, kind in self.failure_times],
        }

    def __str__(self) -> str:
        kinds = ", ".join(f"{k}: {v}" for k, v in self.failures.most_common()) or "none"
        return (
            f"{self.requests} requests in {self.seconds:.1f}s ({self.rate:.0f}/s), "
            f"{self.failed} failed ({kinds})"
        )


class LoadGenerator:
    """A steady, open-loop stream of HTTP GETs, each on a new connection.

    Use as a context manager around the change to measure; ``report`` is complete once the
    block exits. ``rate`` is the requests per second over all ``workers`` (threads, each
    running an event loop that sends its share on a fixed schedule, staggered against the
    others). A request that hangs never delays the next one: at most ``rate * timeout``
    requests are in flight. A stalled schedule (a starved CPU) is not made up in a burst;
    the achieved rate (``report.rate``) says whether the rate was reached. ``path`` is what
    each request asks for (netserver's ``/burn?ms=N`` makes every request cost CPU).
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
        path: str = "/",
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self.workers, self.interval = workers, workers / rate
        self.max_requests, self.max_seconds, self.timeout = max_requests, max_seconds, timeout
        self.report = LoadReport()
        self._sent = 0
        self._deadline = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    async def _get(self) -> str:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            request = (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(request.encode())
            await writer.drain()
            answer = await reader.read()  # to the end: the server closes (Connection: close)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if not answer:
            raise http.client.RemoteDisconnected("closed without an answer")
        head, _, body = answer.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or not status[0].startswith(b"HTTP/") or not status[1].isdigit():
            raise http.client.BadStatusLine(repr(head[:40]))
        if int(status[1]) != 200:
            raise HTTPStatusError(int(status[1]), self.host, self.port)
        return body.decode(errors="replace").strip()

    async def _one(self) -> None:
        started = time.monotonic()
        try:
            answer = await asyncio.wait_for(self._get(), self.timeout)
            kind, pod = None, answer.split(" ", 1)[0]
        except Exception as error:  # every failure is counted, by kind, never lost
            kind, pod = failure_kind(error), None
        with self._lock:
            self.report.requests += 1
            if kind is not None:
                self.report.failures[kind] += 1
                if len(self.report.failure_times) < FAILURE_TIMES_KEPT:
                    self.report.failure_times.append((started, kind))
            if pod is not None:
                self.report.answered_by[pod] += 1

    async def _send(self, offset: float) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        due = self.report.started + offset
        while not self._stop.is_set():
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            if now >= self._deadline:
                break
            with self._lock:
                if self._sent >= self.max_requests:
                    break
                self._sent += 1
            task = asyncio.create_task(self._one())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            due = max(due + self.interval, now - self.interval)  # never a catch-up burst
        if in_flight:
            await asyncio.wait(in_flight)  # each ends within its timeout

    def __enter__(self) -> LoadGenerator:
        self.report.started = time.monotonic()
        self._deadline = self.report.started + self.max_seconds
        self._threads = [
            threading.Thread(
                target=asyncio.run,
                args=(self._send(index * self.interval / self.workers),),
                daemon=True,
                name=f"load {self.host}:{self.port} #{index}",
            )
            for index in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        stopped = min(time.monotonic(), self._deadline)  # the last request left by then
        for thread in self._threads:
            thread.join(self.timeout + 5)  # the requests in flight end within their timeout
        self.report.finished = stopped
