"""kopf's watch log lines become counters: starts, and restarts after 410 Gone."""

from __future__ import annotations

import logging

from exposedapp import metrics


def value(counter_name: str, resource: str, **labels: str) -> float:
    sample = metrics.REGISTRY.get_sample_value(counter_name, {"resource": resource, **labels})
    return sample or 0.0


def log(message: str) -> logging.LogRecord:
    return logging.LogRecord("kopf", logging.DEBUG, __file__, 1, message, None, None)


def test_watch_starts_and_restarts_are_counted_by_resource_and_reason() -> None:
    counter = metrics._WatchStartCounter(verbose=False)

    def counts() -> tuple[float, float, float]:
        return (
            value("exposedapp_watch_starts_total", "pods.v1"),
            value("exposedapp_watch_restarts_total", "pods.v1", reason="expired"),
            value("exposedapp_watch_restarts_total", "pods.v1", reason="inactive"),
        )

    before = counts()
    passed = [
        counter.filter(log("Starting the watch-stream for pods.v1 cluster-wide.")),
        counter.filter(log("Restarting the watch-stream for pods.v1 cluster-wide.")),
        counter.filter(log("Restarting the watch-stream for pods.v1 in 'shop'.")),
        counter.filter(log("Watch-stream for pods.v1 in 'shop' is inactive, reconnecting.")),
        counter.filter(log("Stopping the watch-stream for pods.v1 in 'shop'.")),
    ]
    after = counts()
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (1.0, 2.0, 1.0)
    assert passed == [False] * 5  # debug lines are dropped unless --verbose
