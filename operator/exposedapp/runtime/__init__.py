"""The controller runtime under the domain: the API client, the plan's executor, the keyed
work queue, the event recorder, the metrics, and the one adapter over kopf's internals."""
