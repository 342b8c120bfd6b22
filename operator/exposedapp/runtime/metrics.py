"""Prometheus metrics, and the small HTTP server that serves them with /readyz and /healthz.

The counters live here so that every layer can count without importing the layers above
it; the server runs in a daemon thread, off the operator's event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

__all__ = [
    "API_REQUESTS",
    "RECONCILES",
    "RECONCILE_SECONDS",
    "REGISTRY",
    "WATCH_RESTARTS",
    "WATCH_STARTS",
    "serve",
    "set_condition_source",
]

REGISTRY = CollectorRegistry(auto_describe=True)
RECONCILES = Counter(
    "exposedapp_reconciles",
    "Reconciles by result: synced (nothing to do), changed, problem, invalid, deferred, error.",
    ["result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "exposedapp_reconcile_duration_seconds",
    "Time of one reconcile, from reading the indexes to the last write.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "exposedapp_api_requests",
    "Requests the reconciler made to the Kubernetes API, by verb and HTTP status code "
    "(0: no answer). kopf's own watch and list requests are not included.",
    ["verb", "code"],
    registry=REGISTRY,
)
WATCH_STARTS = Counter(
    "exposedapp_watch_starts",
    "Watch streams started by kopf, by resource; more than one per resource is a restart.",
    ["resource"],
    registry=REGISTRY,
)

WATCH_RESTARTS = Counter(
    "exposedapp_watch_restarts",
    "Watch streams kopf restarted, by resource and reason: expired (410 Gone: a fresh LIST "
    "follows, after which objects deleted meanwhile are swept from the cache) or inactive "
    "(no traffic for the inactivity timeout: resumed from the last resourceVersion).",
    ["resource", "reason"],
    registry=REGISTRY,
)

ConditionSource = Callable[[], Mapping[tuple[str, str], int]]


class _AppsByCondition(Collector):
    """Apps by condition type and status, read from the reconciler when scraped."""

    def __init__(self) -> None:
        self.source: ConditionSource = dict

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "exposedapp_apps",
            "ExposedApps by condition and status.",
            labels=["condition", "status"],
        )
        for (condition, status), count in sorted(self.source().items()):
            family.add_metric([condition, status], count)
        yield family


_APPS = _AppsByCondition()
REGISTRY.register(_APPS)


def set_condition_source(source: ConditionSource) -> None:
    _APPS.source = source


def serve(
    port: int, ready: Callable[[], tuple[bool, str]], host: str = "0.0.0.0"
) -> ThreadingHTTPServer:
    """/metrics, /readyz, /healthz.

    ``ready`` answers (ready, what to say): /readyz is 200 with that text when ready,
    503 with it when not.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, status, kind = generate_latest(REGISTRY), 200, CONTENT_TYPE_LATEST
            elif self.path == "/readyz":
                ok, text = ready()
                body, status, kind = text.encode(), (200 if ok else 503), "text/plain"
            elif self.path == "/healthz":
                body, status, kind = b"ok", 200, "text/plain"
            else:
                body, status, kind = b"not found", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes every few seconds would drown the decision log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
