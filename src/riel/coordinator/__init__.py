"""Consumer groups: a pure state machine and group logic (time passed in), the coordinator that holds
every group and its committed offsets, and a thin async driver that owns the timers."""

from riel.coordinator.coordinator import GroupCoordinator, OffsetCommitEntry, PartitionLag
from riel.coordinator.driver import CoordinatorDriver
from riel.coordinator.group import JoinRequest, JoinResult, SyncResult
from riel.coordinator.state_machine import GroupEvent, GroupState

__all__ = [
    "CoordinatorDriver",
    "GroupCoordinator",
    "GroupEvent",
    "GroupState",
    "JoinRequest",
    "JoinResult",
    "OffsetCommitEntry",
    "PartitionLag",
    "SyncResult",
]
