"""Test support shared by the end-to-end suite: waiting, and a handle on the test cluster."""

from .cluster import TestCluster
from .waiting import WaitTimeout, wait_for

__all__ = ["TestCluster", "WaitTimeout", "wait_for"]
