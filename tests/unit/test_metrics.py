"""kopf's watch log lines become counters: starts, and restarts after 410 Gone."""

from __future__ import annotations

import logging

from exposedapp import metrics


def value(counter_name: str, resource: str) -> float:
    sample = metrics.REGISTRY.get_sample_value(counter_name, {"resource": resource})
    return sample or 0.0


def log(message: str) -> logging.LogRecord:
    return logging.LogRecord("kopf", logging.DEBUG, __file__, 1, message, None, None)


def test_watch_starts_and_410_restarts_are_counted_by_resource() -> None:
    counter = metrics._WatchStartCounter(verbose=False)
    before = (
        value("exposedapp_watch_starts_total", "pods.v1"),
        value("exposedapp_watch_restarts_total", "pods.v1"),
    )
    passed = [
        counter.filter(log("Starting the watch-stream for pods.v1 cluster-wide.")),
        counter.filter(log("Restarting the watch-stream for pods.v1 cluster-wide.")),
        counter.filter(log("Restarting the watch-stream for pods.v1 in 'shop'.")),
    ]
    after = (
        value("exposedapp_watch_starts_total", "pods.v1"),
        value("exposedapp_watch_restarts_total", "pods.v1"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (1.0, 2.0)
    assert passed == [False, False, False]  # debug lines are dropped unless --verbose
