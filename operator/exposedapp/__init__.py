"""ExposedApp: a Kubernetes operator that runs a set of containers as N replicas and keeps
one Service in front of them, derived from the ports the containers declare."""

__version__ = "0.1.0"
