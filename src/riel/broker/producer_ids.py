"""InitProducerId: hands idempotent producers an id (and bumps epochs, KIP-360); transactional
producers are served by the transaction coordinator (``transactions.py``)."""

from __future__ import annotations

from riel.broker.access import any_topic_allowed, cluster_allowed
from riel.broker.authorizer import Operation
from riel.broker.context import BrokerContext
from riel.broker.transactions import init_transactional_producer
from riel.errors import ErrorCode
from riel.protocol.headers import Request
from riel.protocol.schema import Message


async def handle_init_producer_id(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    if body["transactional_id"]:
        return await init_transactional_producer(ctx, request)
    if not (
        cluster_allowed(ctx, request, Operation.IDEMPOTENT_WRITE)
        or any_topic_allowed(ctx, request, Operation.WRITE)
    ):
        return {
            "throttle_time_ms": 0,
            "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            "producer_id": -1,
            "producer_epoch": -1,
        }
    producer_id = body.get("producer_id", -1)
    epoch = body.get("producer_epoch", -1)
    if producer_id >= 0 and 0 <= epoch < 32766:
        # KIP-360: an idempotent producer asks for an epoch bump to reset its sequences.
        return {
            "throttle_time_ms": 0,
            "error_code": 0,
            "producer_id": producer_id,
            "producer_epoch": epoch + 1,
        }
    return {
        "throttle_time_ms": 0,
        "error_code": 0,
        "producer_id": ctx.producer_ids.allocate(),
        "producer_epoch": 0,
    }
