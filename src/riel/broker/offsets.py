"""ListOffsets (earliest, latest, by timestamp, max timestamp) and DeleteRecords."""

from __future__ import annotations

from riel.broker.access import topic_allowed
from riel.broker.authorizer import Operation
from riel.broker.context import BrokerContext
from riel.errors import ErrorCode, KafkaApiError, StorageError
from riel.protocol.headers import Request
from riel.protocol.schema import Message

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3  # KIP-734


async def handle_list_offsets(ctx: BrokerContext, request: Request) -> Message:
    topics: list[Message] = []
    for topic in request.body["topics"]:
        partitions: list[Message] = []
        may_describe = topic_allowed(ctx, request, Operation.DESCRIBE, topic["name"])
        for part in topic["partitions"]:
            entry: Message = {
                "partition_index": part["partition_index"],
                "error_code": 0,
                "timestamp": -1,
                "offset": -1,
                "leader_epoch": -1,
            }
            partitions.append(entry)
            if not may_describe:
                entry["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                continue
            plog = ctx.log.partition(topic["name"], part["partition_index"])
            if plog is None:
                entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            entry["leader_epoch"] = 0
            wanted = part["timestamp"]
            if wanted == LATEST:
                read_committed = request.body.get("isolation_level", 0) == 1
                entry["offset"] = plog.last_stable_offset if read_committed else plog.high_watermark
            elif wanted == EARLIEST:
                entry["offset"] = plog.log_start_offset
            elif wanted == MAX_TIMESTAMP:
                entry["offset"], entry["timestamp"] = plog.max_timestamp()
            else:
                found = plog.offset_for_timestamp(wanted)
                if found is not None:
                    entry["offset"], entry["timestamp"] = found
        topics.append({"name": topic["name"], "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}


async def handle_delete_records(ctx: BrokerContext, request: Request) -> Message:
    topics: list[Message] = []
    for topic in request.body["topics"]:
        partitions: list[Message] = []
        may_delete = topic_allowed(ctx, request, Operation.DELETE, topic["name"])
        for part in topic["partitions"]:
            entry: Message = {
                "partition_index": part["partition_index"],
                "low_watermark": -1,
                "error_code": 0,
            }
            partitions.append(entry)
            if not may_delete:
                entry["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                continue
            plog = ctx.log.partition(topic["name"], part["partition_index"])
            if plog is None:
                entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            before = part["offset"]
            if before == -1:  # -1 means "up to the high watermark"
                before = plog.high_watermark
            try:
                entry["low_watermark"] = plog.delete_records(before)  # range-checks ``before`` itself
            except (KafkaApiError, StorageError) as exc:
                entry["error_code"] = exc.code
                entry["low_watermark"] = plog.log_start_offset
        topics.append({"name": topic["name"], "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}
