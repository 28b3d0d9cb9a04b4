"""Fetch: long-poll reads served as file slices, so the server can sendfile them.

Limits follow KIP-74: ``max_bytes`` caps the response and ``partition_max_bytes`` each partition, but the
first batch of the first partition that has data is returned whole even when it is larger, so a
consumer can never get stuck behind a big batch. Riel holds no fetch sessions (KIP-227 lets a broker
decline them by answering session id 0), so every fetch is a full fetch.

From v13 topics are named by topic ID (KIP-516): an ID this broker does not know, including one of a
topic deleted and created again under the same name, gets UNKNOWN_TOPIC_ID for each partition asked,
so a client holding stale metadata refreshes it instead of reading another topic's data.
"""

from __future__ import annotations

import time
import uuid

from riel.broker.access import topic_allowed
from riel.broker.authorizer import Operation
from riel.broker.context import BrokerContext
from riel.errors import ErrorCode, KafkaApiError
from riel.protocol.headers import Request
from riel.protocol.schema import Message
from riel.storage.partition_log import FileSlice

READ_COMMITTED = 1
TOPIC_ID_VERSION = 13  # topics named by ID instead of name


async def handle_fetch(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    max_wait_s = max(0, body["max_wait_ms"]) / 1000
    deadline = time.monotonic() + max_wait_s
    if body["session_epoch"] > 0 and body["session_id"] != 0:
        return {
            "throttle_time_ms": 0,
            "error_code": ErrorCode.FETCH_SESSION_ID_NOT_FOUND,
            "session_id": 0,
            "responses": [],
        }
    if ctx.quotas is not None and (cap := ctx.quotas.max_fetch_bytes(request.client_id)) is not None:
        body["max_bytes"] = min(body["max_bytes"], cap) if body["max_bytes"] > 0 else cap
    while True:
        # Names are looked up again on every pass of the long poll: a topic deleted (and perhaps
        # created again) while this fetch waits must answer UNKNOWN_TOPIC_ID, not serve its successor.
        denied = _resolve_topics(ctx, request, body)
        responses, total_bytes, errored, served = _read_all(ctx, body, denied)
        remaining = deadline - time.monotonic()
        if total_bytes >= body["min_bytes"] or errored or remaining <= 0:
            record_fetched = ctx.stats.record_fetched
            for name, size, messages in served:  # only what is answered, not reads thrown away
                record_fetched(name, size, messages)
            throttle_ms = 0
            if ctx.quotas is not None:  # > 0: the server also stops reading this connection that long
                throttle_ms = ctx.quotas.record_fetch(request.client_id, total_bytes, ctx.clock_ms())
            return {"throttle_time_ms": throttle_ms, "error_code": 0, "session_id": 0, "responses": responses}
        _release(responses)
        await ctx.wait_for_append(remaining)


def _resolve_topics(ctx: BrokerContext, request: Request, body: Message) -> set[str]:
    """Name each topic of a v13+ fetch by its ID (None: unknown ID); the names READ is denied on."""
    if request.api_version >= TOPIC_ID_VERSION:
        for topic in body["topics"]:
            info = ctx.log.topic_by_id(topic["topic_id"])
            topic["topic"] = info.name if info is not None else None
    return {
        t["topic"]
        for t in body["topics"]
        if t["topic"] is not None and not topic_allowed(ctx, request, Operation.READ, t["topic"])
    }


def _read_all(
    ctx: BrokerContext, body: Message, denied: set[str] | None = None
) -> tuple[list[Message], int, bool, list[tuple[str, int, int]]]:
    """The responses, their total bytes, whether a partition errored, and per partition served
    (topic, bytes, messages) for the traffic counters (messages: the offsets the slice covers from the
    fetch offset on, known without reading the records)."""
    read_committed = body["isolation_level"] == READ_COMMITTED
    budget = body["max_bytes"] if body["max_bytes"] > 0 else 2**31 - 1
    total = 0
    errored = False
    responses: list[Message] = []
    served: list[tuple[str, int, int]] = []
    seen: set[tuple[str | uuid.UUID, int]] = set()
    for topic in body["topics"]:
        name: str | None = topic["topic"]  # None: a topic ID this broker does not know (v13+)
        partitions: list[Message] = []
        key = name if name is not None else topic["topic_id"]
        for part in topic["partitions"]:
            if (key, part["partition"]) in seen:
                continue  # asked twice: read (and hold a file descriptor) once
            seen.add((key, part["partition"]))
            entry: Message = {
                "partition_index": part["partition"],
                "error_code": 0,
                "high_watermark": -1,
                "last_stable_offset": -1,
                "log_start_offset": -1,
                "aborted_transactions": [] if read_committed else None,
                "preferred_read_replica": -1,
                "records": b"",
            }
            partitions.append(entry)
            if name is None:
                entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_ID
                errored = True
                continue
            if denied and name in denied:
                entry["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                errored = True
                continue
            plog = ctx.log.partition(name, part["partition"])
            if plog is None:
                entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                errored = True
                continue
            entry["high_watermark"] = plog.high_watermark
            stable = plog.last_stable_offset
            entry["last_stable_offset"] = stable
            entry["log_start_offset"] = plog.log_start_offset
            limit = min(part["partition_max_bytes"], budget - total)
            if limit <= 0 and total > 0:
                continue
            fetch_offset = part["fetch_offset"]
            try:
                found = plog.read_with_next_offset(
                    fetch_offset, max(limit, 0), min_one=total == 0, end=stable if read_committed else None
                )
            except KafkaApiError as exc:
                entry["error_code"] = exc.code
                errored = True
                continue
            if found is not None:
                chunk, next_offset = found
                if read_committed:
                    entry["aborted_transactions"] = [
                        {"producer_id": a.producer_id, "first_offset": a.first_offset}
                        for a in plog.aborted_transactions(fetch_offset, next_offset)
                    ]
                entry["records"] = chunk
                total += chunk.size
                served.append((name, chunk.size, max(0, next_offset - fetch_offset)))
        responses.append({"topic": name, "topic_id": topic.get("topic_id"), "partitions": partitions})
    return responses, total, errored, served


def _release(responses: list[Message]) -> None:
    for topic in responses:
        for part in topic["partitions"]:
            records = part["records"]
            if isinstance(records, FileSlice):
                records.close()
