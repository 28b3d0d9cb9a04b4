"""CreateTopics, DeleteTopics and CreatePartitions."""

from __future__ import annotations

import uuid

from riel.broker.access import cluster_allowed, topic_allowed
from riel.broker.authorizer import Operation
from riel.broker.context import BrokerContext
from riel.broker.topic_configs import CONFIG_TYPES
from riel.clock import wall_clock_ms
from riel.errors import ErrorCode, KafkaApiError, StorageError
from riel.protocol.headers import Request
from riel.protocol.schema import Message
from riel.storage.log_config import validate_topic_configs

_CONFIG_SOURCE_DYNAMIC_TOPIC = 1
_CONFIG_SOURCE_DEFAULT = 5


async def handle_create_topics(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    results: list[Message] = []
    may_create_any = cluster_allowed(ctx, request, Operation.CREATE)
    for topic in body["topics"]:
        name = topic["name"]
        result: Message = {
            "name": name,
            "topic_id": uuid.UUID(int=0),
            "error_code": 0,
            "error_message": None,
            "num_partitions": -1,
            "replication_factor": -1,
            "configs": None,
        }
        results.append(result)
        if not (may_create_any or topic_allowed(ctx, request, Operation.CREATE, name)):
            result.update(
                error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, error_message="Authorization failed."
            )
            continue
        try:
            partitions = topic["num_partitions"]
            if partitions == -1:
                partitions = ctx.config.num_partitions
            if topic["assignments"]:
                if partitions not in (-1, len(topic["assignments"])) and topic["num_partitions"] != -1:
                    raise KafkaApiError(
                        ErrorCode.INVALID_REQUEST, "give either num_partitions or assignments, not both"
                    )
                partitions = len(topic["assignments"])
            if topic["replication_factor"] not in (-1, 1):
                raise KafkaApiError(
                    ErrorCode.INVALID_REPLICATION_FACTOR,
                    f"replication factor {topic['replication_factor']} is larger than the 1 broker available",
                )
            configs = validate_topic_configs({c["name"]: c["value"] for c in topic["configs"]})
            if partitions < 1:
                raise KafkaApiError(ErrorCode.INVALID_PARTITIONS, "number of partitions must be at least 1")
            _check_partition_cap(ctx, partitions)
            if body["validate_only"]:
                if name in ctx.log.topics():
                    raise KafkaApiError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
                result.update(num_partitions=partitions, replication_factor=1)
                continue
            info = ctx.log.create_topic(name, partitions, configs)
        except (KafkaApiError, StorageError) as exc:
            result["error_code"] = exc.code
            result["error_message"] = exc.message or None
            continue
        effective = ctx.log.effective_config(name)
        result.update(
            topic_id=info.topic_id,
            num_partitions=info.partitions,
            replication_factor=1,
            configs=[
                {
                    "name": key,
                    "value": value,
                    "read_only": False,
                    "config_source": _CONFIG_SOURCE_DYNAMIC_TOPIC
                    if key in info.configs
                    else _CONFIG_SOURCE_DEFAULT,
                    "is_sensitive": False,
                }
                for key, value in sorted(effective.items())
                if key in CONFIG_TYPES
            ],
        )
    return {"throttle_time_ms": 0, "topics": results}


async def handle_delete_topics(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    wanted: list[tuple[str | None, uuid.UUID | None]] = []
    if request.api_version >= 6:
        wanted = [(t["name"], t["topic_id"]) for t in body["topics"]]
    else:
        wanted = [(name, None) for name in body["topic_names"]]
    responses: list[Message] = []
    for name, topic_id in wanted:
        entry: Message = {
            "name": name,
            "topic_id": topic_id or uuid.UUID(int=0),
            "error_code": 0,
            "error_message": None,
        }
        responses.append(entry)
        if not name and topic_id is not None:
            info = ctx.log.topic_by_id(topic_id)
            if info is None:
                entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_ID
                continue
            name = entry["name"] = info.name
        if not topic_allowed(ctx, request, Operation.DELETE, name or ""):
            entry["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            entry["error_message"] = "Authorization failed."
            continue
        info = ctx.log.topics().get(name or "")
        if info is None:
            entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            entry["error_message"] = f"topic {name!r} does not exist"
            continue
        entry["topic_id"] = info.topic_id
        try:
            ctx.log.delete_topic(info.name)
            # Committed offsets die with the topic, as in Kafka: a topic re-created under the same
            # name starts from the consumers' reset policy, not from the old topic's positions.
            ctx.groups.coordinator.offsets.delete_topic_offsets(info.name, wall_clock_ms())
            ctx.stats.forget_topic(info.name)  # a re-created topic's traffic counters start at 0
        except (KafkaApiError, StorageError) as exc:
            entry["error_code"] = exc.code
            entry["error_message"] = exc.message or None
    return {"throttle_time_ms": 0, "responses": responses}


async def handle_create_partitions(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    results: list[Message] = []
    for topic in body["topics"]:
        name = topic["name"]
        entry: Message = {"name": name, "error_code": 0, "error_message": None}
        results.append(entry)
        if not topic_allowed(ctx, request, Operation.ALTER, name):
            entry["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            entry["error_message"] = "Authorization failed."
            continue
        info = ctx.log.topics().get(name)
        if info is None:
            entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            entry["error_message"] = f"topic {name!r} does not exist"
            continue
        if topic["count"] <= info.partitions:
            entry["error_code"] = ErrorCode.INVALID_PARTITIONS
            entry["error_message"] = (
                f"topic {name!r} has {info.partitions} partitions; the new count must be larger, "
                f"got {topic['count']}"
            )
            continue
        try:
            _check_partition_cap(ctx, topic["count"])
            if body["validate_only"]:
                continue
            ctx.log.create_partitions(name, topic["count"])
        except (KafkaApiError, StorageError) as exc:
            entry["error_code"] = exc.code
            entry["error_message"] = exc.message or None
    return {"throttle_time_ms": 0, "results": results}


def _check_partition_cap(ctx: BrokerContext, partitions: int) -> None:
    cap = ctx.config.max_partitions_per_topic
    if partitions > cap:
        raise KafkaApiError(
            ErrorCode.INVALID_PARTITIONS,
            f"{partitions} partitions is more than this broker allows per topic ({cap})",
        )
