"""Reading the "consumer" embedded protocol: which topics members subscribe to and what they got.

For the broker, JoinGroup metadata and SyncGroup assignments are opaque bytes; only groups whose
protocol type is ``consumer`` use Kafka's ConsumerProtocolSubscription/Assignment layout inside them.
Riel reads them for three things only: OffsetDelete refuses to delete offsets of subscribed topics,
offsets of topics a stable group no longer subscribes to expire, and ``group_lag`` names the member
that owns each partition. Every field read here exists in all versions (v0-v3); later fields are
ignored, and bytes that do not parse yield None instead of an error, since a client may put anything
there.
"""

from __future__ import annotations

from typing import Final

from riel.errors import ProtocolError
from riel.protocol.primitives import Reader

CONSUMER_PROTOCOL_TYPE: Final = "consumer"


def subscribed_topics(metadata: bytes) -> set[str] | None:
    """The topics of a ConsumerProtocolSubscription, or None if the bytes are not one."""
    try:
        r = Reader(metadata)
        r.int16()  # version
        count = r.array_length() or 0
        topics = {r.string() for _ in range(count)}
    except (ProtocolError, ValueError, IndexError):
        return None
    return {t for t in topics if t is not None}


def assigned_partitions(assignment: bytes) -> list[tuple[str, int]] | None:
    """The partitions of a ConsumerProtocolAssignment, or None if the bytes are not one."""
    if not assignment:
        return []
    try:
        r = Reader(assignment)
        r.int16()  # version
        out: list[tuple[str, int]] = []
        for _ in range(r.array_length() or 0):
            topic = r.string()
            for _ in range(r.array_length() or 0):
                partition = r.int32()
                if topic is not None:
                    out.append((topic, partition))
    except (ProtocolError, ValueError, IndexError):
        return None
    return out
