"""Produce: validate each partition's batches, append them, answer with the assigned base offset."""

from __future__ import annotations

import asyncio
import logging

from riel.broker.access import topic_allowed
from riel.broker.authorizer import Operation
from riel.broker.context import BrokerContext
from riel.broker.transactions import verify_transactional_produce
from riel.errors import ErrorCode, KafkaApiError, StorageError
from riel.protocol.headers import Request
from riel.protocol.schema import Message
from riel.storage.partition_log import PartitionLog

log = logging.getLogger(__name__)

_TXN_REFUSALS = {
    ErrorCode.INVALID_TXN_STATE: "the partition is not part of an ongoing transaction of this producer "
    "(AddPartitionsToTxn first, or the transaction was ended or timed out)",
    ErrorCode.INVALID_PRODUCER_ID_MAPPING: "the producer id does not belong to this transactional id",
    ErrorCode.INVALID_PRODUCER_EPOCH: "a newer instance of this transactional producer fenced this one",
}


async def handle_produce(ctx: BrokerContext, request: Request) -> Message | None:
    body = request.body
    acks = body["acks"]
    now_ms = ctx.clock_ms()
    responses: list[Message] = []
    appended = False
    defer_flush = ctx.config.flush.name == "always"
    to_sync: list[tuple[PartitionLog, int, Message]] = []
    record_produced = ctx.stats.record_produced
    for topic in body["topic_data"]:
        name = topic["name"]
        partitions: list[Message] = []
        may_write = topic_allowed(ctx, request, Operation.WRITE, name)
        for part in topic["partition_data"]:
            entry: Message = {
                "index": part["index"],
                "base_offset": -1,
                "log_append_time_ms": -1,
                "log_start_offset": -1,
            }
            if acks not in (-1, 0, 1):
                entry["error_code"] = ErrorCode.INVALID_REQUIRED_ACKS
                partitions.append(entry)
                continue
            if not may_write:
                entry["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                partitions.append(entry)
                continue
            plog = ctx.log.partition(name, part["index"])
            if plog is None:
                entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                entry["error_message"] = f"topic {name!r} partition {part['index']} does not exist"
                partitions.append(entry)
                continue
            records = part["records"]
            if body["transactional_id"] is not None:
                refusal = verify_transactional_produce(ctx, request, name, part["index"], records)
                if refusal is not ErrorCode.NONE:
                    entry["error_code"] = refusal
                    entry["error_message"] = _TXN_REFUSALS.get(refusal)
                    partitions.append(entry)
                    continue
            try:
                result = plog.append(_writable(records), now_ms, defer_flush=defer_flush)
            except KafkaApiError as exc:
                entry["error_code"] = exc.code
                entry["error_message"] = exc.message or None
                entry["log_start_offset"] = plog.log_start_offset
            except StorageError as exc:
                log.error("append to %s-%d failed: %s", name, part["index"], exc)
                entry["error_code"] = ErrorCode.KAFKA_STORAGE_ERROR
                entry["error_message"] = str(exc)
            else:
                appended = True
                if not result.duplicate:
                    record_produced(
                        name,
                        records.nbytes if records is not None else 0,
                        result.last_offset - result.base_offset + 1,
                    )
                entry["error_code"] = 0
                entry["base_offset"] = result.base_offset
                entry["log_append_time_ms"] = result.log_append_time_ms
                entry["log_start_offset"] = result.log_start_offset
                if defer_flush:
                    to_sync.append((plog, result.last_offset, entry))
            partitions.append(entry)
        responses.append({"name": name, "partition_responses": partitions})
    if to_sync:
        # Under ``always`` consumers only see fsync'ed data, so wake them once it is on disk.
        await asyncio.gather(*(_acknowledge_when_durable(ctx, *item) for item in to_sync))
    if appended:
        ctx.notify_appended()
    throttle_ms = 0
    if ctx.quotas is not None:  # the bytes count whether or not they were appended, as in Kafka
        produced = sum(
            part["records"].nbytes
            for t in body["topic_data"]
            for part in t["partition_data"]
            if part["records"] is not None
        )
        throttle_ms = ctx.quotas.record_produce(request.client_id, produced, now_ms)
    if acks == 0:
        return None  # acks=0: the client expects no response at all.
    # A throttle time > 0 also makes the server stop reading from this connection that long (KIP-219).
    return {"responses": responses, "throttle_time_ms": throttle_ms}


async def _acknowledge_when_durable(
    ctx: BrokerContext, plog: PartitionLog, last_offset: int, entry: Message
) -> None:
    try:
        await ctx.group_commit.wait_durable(plog, last_offset)
    except StorageError as exc:
        log.error("fsync of %s failed: %s", plog.directory, exc)
        entry.update(error_code=ErrorCode.KAFKA_STORAGE_ERROR, error_message=str(exc), base_offset=-1)


def _writable(records: memoryview | None) -> bytearray | memoryview:
    """The server hands us a writable view into the request frame: storage patches offsets in place
    and writes it out with no copy in between. Read-only input (in-process callers) is copied once."""
    if records is None:
        return bytearray()
    return bytearray(records) if records.readonly else records
