"""Real requests: one-off HTTP and UDP probes, and a small bounded load generator.

The HTTP side lives in ``devcluster.traffic`` (the traffic benchmark ships with devcluster
and uses it too) and is re-exported here: every answer of the local test server
(devcluster's netserver) is "<pod name> <port>", so a probe tells which Pod and which
container port a Service really sent it to. The load generator only dials the address a
test gives it and stops after ``max_requests`` or ``max_seconds``, whichever comes first.
"""

from __future__ import annotations

import socket

from devcluster.traffic import LoadGenerator, LoadReport, failure_kind, http_get

__all__ = ["LoadGenerator", "LoadReport", "failure_kind", "http_get", "udp_echo"]


def udp_echo(host: str, port: int, message: str = "ping", timeout: float = 2) -> str:
    """Send one datagram and return the reply; raises socket.timeout when none comes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(message.encode(), (host, port))
        reply, _ = sock.recvfrom(65535)
        return reply.decode().strip()
