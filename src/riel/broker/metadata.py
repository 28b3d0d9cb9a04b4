"""Metadata: the broker list and where every partition lives (all of them here: one node)."""

from __future__ import annotations

import uuid

from riel.broker.access import cluster_allowed, topic_allowed
from riel.broker.authorizer import Operation
from riel.broker.context import BrokerContext
from riel.errors import ErrorCode, KafkaApiError
from riel.protocol.headers import Request
from riel.protocol.schema import Message
from riel.storage.log_manager import TopicInfo

# Kafka's sentinel for "authorized operations were not requested".
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)


def _partition_entries(ctx: BrokerContext, topic: TopicInfo) -> list[Message]:
    node = ctx.config.node_id
    return [
        {
            "error_code": 0,
            "partition_index": index,
            "leader_id": node,
            "leader_epoch": 0,
            "replica_nodes": [node],
            "isr_nodes": [node],
            "offline_replicas": [],
        }
        for index in range(topic.partitions)
    ]


def topic_entry(ctx: BrokerContext, topic: TopicInfo) -> Message:
    return {
        "error_code": 0,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": False,
        "partitions": _partition_entries(ctx, topic),
        "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


async def handle_metadata(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    version = request.api_version
    requested = body["topics"]
    # v0 asks for every topic with an empty list; v1+ with null.
    all_topics = requested is None or (version == 0 and not requested)
    # v0-3 have no flag: auto-creation follows the broker setting.
    allow_create = ctx.config.auto_create_topics and (version < 4 or body["allow_auto_topic_creation"])
    topics: list[Message] = []
    if all_topics:
        # every topic the principal may describe; the others are not mentioned at all
        topics = [
            topic_entry(ctx, t)
            for t in ctx.log.topics().values()
            if topic_allowed(ctx, request, Operation.DESCRIBE, t.name)
        ]
    else:
        for wanted in requested:
            topics.append(_lookup_topic(ctx, request, wanted, allow_create))
    advertised = ctx.advertised_address(request.listener)  # the listener this client came in on
    return {
        "throttle_time_ms": 0,
        "brokers": [
            {
                "node_id": ctx.config.node_id,
                "host": advertised[0],
                "port": advertised[1],
                "rack": None,
            }
        ],
        "cluster_id": ctx.config.cluster_id,
        "controller_id": ctx.config.node_id,
        "topics": topics,
        "cluster_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


def _lookup_topic(ctx: BrokerContext, request: Request, wanted: Message, allow_create: bool) -> Message:
    name: str | None = wanted.get("name")
    topic_id: uuid.UUID | None = wanted.get("topic_id")
    if not name and topic_id is not None and topic_id.int != 0:
        by_id = ctx.log.topic_by_id(topic_id)
        if by_id is None:
            return {
                "error_code": ErrorCode.UNKNOWN_TOPIC_ID,
                "name": None,
                "topic_id": topic_id,
                "partitions": [],
                "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
            }
        if not topic_allowed(ctx, request, Operation.DESCRIBE, by_id.name):
            return {**_topic_error(None, ErrorCode.TOPIC_AUTHORIZATION_FAILED), "topic_id": topic_id}
        return topic_entry(ctx, by_id)
    name = name or ""
    if not topic_allowed(ctx, request, Operation.DESCRIBE, name):
        return _topic_error(name, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    topic = ctx.log.topics().get(name)
    if topic is None and allow_create:
        if not (
            cluster_allowed(ctx, request, Operation.CREATE)
            or topic_allowed(ctx, request, Operation.CREATE, name)
        ):
            return _topic_error(name, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        try:
            topic = ctx.log.create_topic(name, ctx.config.num_partitions, {})
        except KafkaApiError as exc:
            return _topic_error(name, exc.code)
    if topic is None:
        return _topic_error(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    return topic_entry(ctx, topic)


def _topic_error(name: str | None, code: ErrorCode) -> Message:
    return {
        "error_code": code,
        "name": name,
        "topic_id": uuid.UUID(int=0),
        "is_internal": False,
        "partitions": [],
        "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }
