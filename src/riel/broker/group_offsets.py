"""Committed offsets: OffsetCommit, OffsetFetch (single group v1-7, batched groups v8), OffsetDelete."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from riel.broker.access import group_allowed, topic_allowed
from riel.broker.authorizer import Operation
from riel.broker.context import BrokerContext
from riel.coordinator.coordinator import OffsetCommitEntry
from riel.errors import ErrorCode
from riel.protocol.headers import Request
from riel.protocol.schema import Message
from riel.storage.offsets_store import CommittedOffset, TopicPartition

NO_OFFSET = -1


async def handle_offset_commit(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    if not group_allowed(ctx, request, Operation.READ, body["group_id"]):
        return _every_partition(body["topics"], ErrorCode.GROUP_AUTHORIZATION_FAILED)
    readable = {t["name"] for t in body["topics"] if topic_allowed(ctx, request, Operation.READ, t["name"])}
    entries = [
        OffsetCommitEntry(
            topic["name"],
            p["partition_index"],
            p["committed_offset"],
            p["committed_leader_epoch"],
            p["committed_metadata"],
        )
        for topic in body["topics"]
        if topic["name"] in readable
        for p in topic["partitions"]
    ]
    # v2-4 may ask for a retention time; -1 (the default, and every later version) means the broker's.
    retention = body["retention_time_ms"] if 2 <= request.api_version <= 4 else -1
    errors = iter(
        ctx.groups.commit_offsets(
            body["group_id"],
            body["member_id"],
            body["group_instance_id"],
            body["generation_id_or_member_epoch"],
            entries,
            retention if retention >= 0 else None,
        )
    )
    topics = [
        {
            "name": topic["name"],
            "partitions": [
                {
                    "partition_index": p["partition_index"],
                    "error_code": next(errors)
                    if topic["name"] in readable
                    else ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                }
                for p in topic["partitions"]
            ],
        }
        for topic in body["topics"]
    ]
    return {"throttle_time_ms": 0, "topics": topics}


def _every_partition(topics: list[Message], error: ErrorCode) -> Message:
    """An OffsetCommit response with ``error`` for every requested partition."""
    return {
        "throttle_time_ms": 0,
        "topics": [
            {
                "name": t["name"],
                "partitions": [
                    {"partition_index": p["partition_index"], "error_code": error} for p in t["partitions"]
                ],
            }
            for t in topics
        ],
    }


def _fetch_group(
    ctx: BrokerContext, request: Request, group_id: str, topics: list[Message] | None
) -> list[Message]:
    """The response topics of one group. ``topics`` None asks for every committed partition (of the
    topics the principal may describe); a named topic it may not describe gets TOPIC_AUTHORIZATION_FAILED."""
    wanted: list[TopicPartition] | None = None
    by_topic: dict[str, list[Message]] = defaultdict(list)
    if topics is not None:
        wanted = []
        for t in topics:
            if topic_allowed(ctx, request, Operation.DESCRIBE, t["name"]):
                wanted.extend((t["name"], p) for p in t["partition_indexes"])
            else:
                by_topic[t["name"]] = [
                    {**_partition_entry(p, None), "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED}
                    for p in t["partition_indexes"]
                ]
    # require_stable (v7+, KIP-447): a partition whose offset a transaction has not decided yet answers
    # UNSTABLE_OFFSET_COMMIT (retriable), so a new owner does not start from a soon-to-change offset.
    unstable: set[TopicPartition] = set()
    if request.body.get("require_stable") and ctx.transactions is not None:
        unstable = ctx.transactions.coordinator.pending_offsets_of(group_id)
    for (topic, partition), committed in ctx.groups.fetch_offsets(group_id, wanted):
        if topics is None and not topic_allowed(ctx, request, Operation.DESCRIBE, topic):
            continue
        entry = _partition_entry(partition, committed)
        if (topic, partition) in unstable:
            entry["error_code"] = ErrorCode.UNSTABLE_OFFSET_COMMIT
        by_topic[topic].append(entry)
    return [{"name": name, "partitions": parts} for name, parts in by_topic.items()]


def _partition_entry(partition: int, committed: CommittedOffset | None) -> dict[str, Any]:
    if committed is None:
        # Nothing committed is not an error: offset -1 tells the consumer to apply auto.offset.reset.
        return {
            "partition_index": partition,
            "committed_offset": NO_OFFSET,
            "committed_leader_epoch": -1,
            "metadata": "",
            "error_code": 0,
        }
    return {
        "partition_index": partition,
        "committed_offset": committed.offset,
        "committed_leader_epoch": committed.leader_epoch,
        "metadata": committed.metadata,
        "error_code": 0,
    }


async def handle_offset_fetch(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    if request.api_version >= 8:
        groups = []
        for g in body["groups"]:
            if group_allowed(ctx, request, Operation.DESCRIBE, g["group_id"]):
                topics = _fetch_group(ctx, request, g["group_id"], g["topics"])
                groups.append({"group_id": g["group_id"], "topics": topics, "error_code": 0})
            else:
                error = ErrorCode.GROUP_AUTHORIZATION_FAILED
                groups.append({"group_id": g["group_id"], "topics": [], "error_code": error})
        return {"throttle_time_ms": 0, "groups": groups}
    if not group_allowed(ctx, request, Operation.DESCRIBE, body["group_id"]):
        return {"throttle_time_ms": 0, "topics": [], "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED}
    return {
        "throttle_time_ms": 0,
        "topics": _fetch_group(ctx, request, body["group_id"], body["topics"]),
        "error_code": 0,
    }


async def handle_offset_delete(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    if not group_allowed(ctx, request, Operation.DELETE, body["group_id"]):
        return {"error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "throttle_time_ms": 0, "topics": []}
    readable = {t["name"] for t in body["topics"] if topic_allowed(ctx, request, Operation.READ, t["name"])}
    wanted = [
        (t["name"], p["partition_index"])
        for t in body["topics"]
        if t["name"] in readable
        for p in t["partitions"]
    ]
    error, partition_errors = ctx.groups.delete_offsets(body["group_id"], wanted)
    if error is not ErrorCode.NONE:
        return {"error_code": error, "throttle_time_ms": 0, "topics": []}
    errors = iter(partition_errors)
    topics = [
        {
            "name": t["name"],
            "partitions": [
                {
                    "partition_index": p["partition_index"],
                    "error_code": next(errors)
                    if t["name"] in readable
                    else ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                }
                for p in t["partitions"]
            ],
        }
        for t in body["topics"]
    ]
    return {"error_code": 0, "throttle_time_ms": 0, "topics": topics}
