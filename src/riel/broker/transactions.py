"""Transaction APIs: InitProducerId (with a transactional id), AddPartitionsToTxn 0-3, AddOffsetsToTxn
0-3, EndTxn 0-3, TxnOffsetCommit 0-3, DescribeTransactions 0 and ListTransactions 0-1, plus the check
Produce makes on transactional batches.

Authorization as in Kafka: TRANSACTIONAL_ID WRITE for the producer-side APIs (DESCRIBE for the
operator ones), TOPIC WRITE for the partitions added, GROUP READ (and TOPIC READ) for offsets.
"""

from __future__ import annotations

import logging

from riel.broker.access import allowed, group_allowed, topic_allowed
from riel.broker.authorizer import Operation, ResourceType
from riel.broker.context import BrokerContext
from riel.broker.txn_driver import TransactionDriver
from riel.coordinator.transactions import Completion, TxnMetadata, TxnState
from riel.errors import ErrorCode, StorageError
from riel.protocol.headers import Request
from riel.protocol.schema import Message
from riel.records import BATCH_HEADER_SIZE, read_header
from riel.storage.offsets_store import CommittedOffset, TopicPartition

log = logging.getLogger(__name__)

# Request versions below these predate PRODUCER_FENCED (KIP-588) and get INVALID_PRODUCER_EPOCH.
_FENCED_SINCE = {22: 4, 24: 2, 25: 2, 26: 2, 28: 2}


def _fenced(error: ErrorCode, request: Request) -> ErrorCode:
    if error is ErrorCode.PRODUCER_FENCED and request.api_version < _FENCED_SINCE.get(request.api_key, 0):
        return ErrorCode.INVALID_PRODUCER_EPOCH
    return error


def _txn_allowed(ctx: BrokerContext, request: Request, operation: Operation, transactional_id: str) -> bool:
    return allowed(ctx, request, operation, ResourceType.TRANSACTIONAL_ID, transactional_id)


def _driver(ctx: BrokerContext) -> TransactionDriver:
    assert ctx.transactions is not None, "the transaction coordinator is started with the server"
    return ctx.transactions


async def _durable(driver: TransactionDriver, error: ErrorCode) -> ErrorCode:
    """``error``, once what the coordinator wrote for it is on disk (a success is answered only then)."""
    if error is not ErrorCode.NONE:
        return error
    try:
        await driver.durable()
    except StorageError as exc:
        log.error("persisting transaction state failed: %s", exc)
        return ErrorCode.KAFKA_STORAGE_ERROR
    return error


async def init_transactional_producer(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    transactional_id: str = body["transactional_id"]

    def answer(error: ErrorCode, producer_id: int = -1, epoch: int = -1) -> Message:
        error = _fenced(error, request)
        return {
            "throttle_time_ms": 0,
            "error_code": error,
            "producer_id": producer_id,
            "producer_epoch": epoch,
        }

    if not _txn_allowed(ctx, request, Operation.WRITE, transactional_id):
        return answer(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    driver = _driver(ctx)
    result = driver.coordinator.init_producer_id(
        transactional_id,
        body["transaction_timeout_ms"],
        body.get("producer_id", -1),
        body.get("producer_epoch", -1),
        ctx.clock_ms(),
    )
    if result.abort_first is not None and not await driver.carry_out(result.abort_first):
        return answer(ErrorCode.CONCURRENT_TRANSACTIONS)  # the abort is retried; so will the client
    error = await _durable(driver, result.error)
    if error is not ErrorCode.NONE:
        return answer(error)
    return answer(error, result.producer_id, result.producer_epoch)


async def handle_add_partitions_to_txn(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    transactional_id = body["v3_and_below_transactional_id"]
    topics = body["v3_and_below_topics"]
    errors: dict[TopicPartition, ErrorCode] = {}
    wanted = [(t["name"], p) for t in topics for p in t["partitions"]]
    if not _txn_allowed(ctx, request, Operation.WRITE, transactional_id):
        errors = dict.fromkeys(wanted, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    else:
        for topic, partition in wanted:
            if not topic_allowed(ctx, request, Operation.WRITE, topic):
                errors[(topic, partition)] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif ctx.log.partition(topic, partition) is None:
                errors[(topic, partition)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if errors:  # all or nothing, as in Kafka: the others were not attempted
            errors = {tp: errors.get(tp, ErrorCode.OPERATION_NOT_ATTEMPTED) for tp in wanted}
        else:
            driver = _driver(ctx)
            error = driver.coordinator.add_partitions(
                transactional_id,
                body["v3_and_below_producer_id"],
                body["v3_and_below_producer_epoch"],
                wanted,
                ctx.clock_ms(),
            )
            driver.poke()
            error = await _durable(driver, error)
            errors = dict.fromkeys(wanted, _fenced(error, request))
    return {
        "throttle_time_ms": 0,
        "results_by_topic_v3_and_below": [
            {
                "name": t["name"],
                "results_by_partition": [
                    {"partition_index": p, "partition_error_code": errors[(t["name"], p)]}
                    for p in t["partitions"]
                ],
            }
            for t in topics
        ],
    }


async def handle_add_offsets_to_txn(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    if not _txn_allowed(ctx, request, Operation.WRITE, body["transactional_id"]):
        error = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    elif not group_allowed(ctx, request, Operation.READ, body["group_id"]):
        error = ErrorCode.GROUP_AUTHORIZATION_FAILED
    else:
        driver = _driver(ctx)
        error = driver.coordinator.add_offsets(
            body["transactional_id"],
            body["producer_id"],
            body["producer_epoch"],
            body["group_id"],
            ctx.clock_ms(),
        )
        driver.poke()
        error = await _durable(driver, error)
    return {"throttle_time_ms": 0, "error_code": _fenced(error, request)}


async def handle_end_txn(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    if not _txn_allowed(ctx, request, Operation.WRITE, body["transactional_id"]):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED}
    driver = _driver(ctx)
    outcome = driver.coordinator.end_transaction(
        body["transactional_id"],
        body["producer_id"],
        body["producer_epoch"],
        body["committed"],
        ctx.clock_ms(),
    )
    if isinstance(outcome, Completion):
        # The outcome is durable from here on; a marker write that fails is retried by the driver.
        await driver.carry_out(outcome)
        outcome = ErrorCode.NONE
    return {"throttle_time_ms": 0, "error_code": _fenced(outcome, request)}


async def handle_txn_offset_commit(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    group_id = body["group_id"]
    if not _txn_allowed(ctx, request, Operation.WRITE, body["transactional_id"]):
        error: ErrorCode | None = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    elif not group_allowed(ctx, request, Operation.READ, group_id):
        error = ErrorCode.GROUP_AUTHORIZATION_FAILED
    else:  # KIP-447: a consumer-group member's generation is checked like an OffsetCommit's
        error = ctx.groups.validate_member(
            group_id, body["member_id"], body["group_instance_id"], body["generation_id"]
        )
        error = None if error is ErrorCode.NONE else error
    now = ctx.clock_ms()
    errors: dict[TopicPartition, ErrorCode] = {}
    offsets: dict[TopicPartition, CommittedOffset] = {}
    for topic in body["topics"]:
        readable = topic_allowed(ctx, request, Operation.READ, topic["name"])
        for p in topic["partitions"]:
            tp = (topic["name"], p["partition_index"])
            if error is not None:
                errors[tp] = error
            elif not readable:
                errors[tp] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif ctx.log.partition(*tp) is None:
                errors[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else:
                offsets[tp] = CommittedOffset(
                    p["committed_offset"], p["committed_leader_epoch"], p["committed_metadata"] or "", now
                )
    if offsets:
        driver = _driver(ctx)
        outcome = driver.coordinator.txn_offset_commit(
            body["transactional_id"], body["producer_id"], body["producer_epoch"], group_id, offsets, now
        )
        outcome = await _durable(driver, outcome)
        errors.update(dict.fromkeys(offsets, _fenced(outcome, request)))
    return {
        "throttle_time_ms": 0,
        "topics": [
            {
                "name": t["name"],
                "partitions": [
                    {
                        "partition_index": p["partition_index"],
                        "error_code": errors[(t["name"], p["partition_index"])],
                    }
                    for p in t["partitions"]
                ],
            }
            for t in body["topics"]
        ],
    }


def verify_transactional_produce(
    ctx: BrokerContext, request: Request, topic: str, partition: int, records: memoryview | None
) -> ErrorCode:
    """Produce with a transactional id: may these batches go into this partition now?"""
    if not _txn_allowed(ctx, request, Operation.WRITE, request.body["transactional_id"]):
        return ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    if records is None or len(records) < BATCH_HEADER_SIZE:
        return ErrorCode.NONE  # nothing to write, or malformed: the log's validation answers
    header = read_header(records)
    return _driver(ctx).coordinator.verify_produce(
        request.body["transactional_id"], header.producer_id, header.producer_epoch, (topic, partition)
    )


def _start_time(meta: TxnMetadata) -> int:
    return meta.start_ms if meta.state is not TxnState.EMPTY else -1


async def handle_describe_transactions(ctx: BrokerContext, request: Request) -> Message:
    transactions = _driver(ctx).coordinator.transactions
    states: list[Message] = []
    for transactional_id in request.body["transactional_ids"]:
        entry: Message = {
            "error_code": ErrorCode.NONE,
            "transactional_id": transactional_id,
            "transaction_state": "",
            "transaction_timeout_ms": 0,
            "transaction_start_time_ms": -1,
            "producer_id": -1,
            "producer_epoch": -1,
            "topics": [],
        }
        meta = transactions.get(transactional_id)
        if not _txn_allowed(ctx, request, Operation.DESCRIBE, transactional_id):
            entry["error_code"] = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        elif meta is None:
            entry["error_code"] = ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
        else:
            by_topic: dict[str, list[int]] = {}
            for topic, partition in sorted(meta.partitions):
                by_topic.setdefault(topic, []).append(partition)
            entry.update(
                transaction_state=meta.state.value,
                transaction_timeout_ms=meta.timeout_ms,
                transaction_start_time_ms=_start_time(meta),
                producer_id=meta.producer_id,
                producer_epoch=meta.producer_epoch,
                topics=[{"topic": t, "partitions": ps} for t, ps in by_topic.items()],
            )
        states.append(entry)
    return {"throttle_time_ms": 0, "transaction_states": states}


async def handle_list_transactions(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    known = {state.value for state in TxnState}
    wanted_states = set(body["state_filters"])
    unknown = sorted(wanted_states - known)
    wanted_producers = set(body["producer_id_filters"])
    min_duration = body.get("duration_filter", -1)
    now = ctx.clock_ms()
    listed: list[Message] = []
    for meta in _driver(ctx).coordinator.transactions.values():
        if wanted_states and meta.state.value not in wanted_states:
            continue
        if wanted_producers and meta.producer_id not in wanted_producers:
            continue
        if min_duration >= 0 and (meta.state is not TxnState.ONGOING or now - meta.start_ms < min_duration):
            continue
        if not _txn_allowed(ctx, request, Operation.DESCRIBE, meta.transactional_id):
            continue
        listed.append(
            {
                "transactional_id": meta.transactional_id,
                "producer_id": meta.producer_id,
                "transaction_state": meta.state.value,
            }
        )
    return {
        "throttle_time_ms": 0,
        "error_code": 0,
        "unknown_state_filters": unknown,
        "transaction_states": listed,
    }
