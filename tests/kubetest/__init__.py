"""Test support shared by the end-to-end suite: waiting, and a handle on the test cluster."""

from .cluster import ClusterHandle
from .waiting import WaitTimeout, wait_for

__all__ = ["ClusterHandle", "WaitTimeout", "wait_for"]
