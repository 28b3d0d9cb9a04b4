"""The request router: one handler per API key. The server calls ``Router.handle`` for every request."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from riel.broker import (
    acls_admin,
    configs_admin,
    fetch,
    group_offsets,
    groups,
    metadata,
    offsets,
    produce,
    producer_ids,
    topics_admin,
    transactions,
)
from riel.broker.context import BrokerContext
from riel.broker.sasl import handlers as sasl
from riel.errors import ErrorCode, ProtocolError
from riel.protocol.apis import APIS
from riel.protocol.headers import Request
from riel.protocol.schema import ApiSchema, Message

log = logging.getLogger(__name__)

Handler = Callable[[BrokerContext, Request], Awaitable[Message | None]]


async def handle_api_versions(ctx: BrokerContext, request: Request) -> Message:
    api_keys = [
        {"api_key": api.key, "min_version": api.min_version, "max_version": api.max_version}
        for api in served_apis()
    ]
    # KIP-511: an unknown ApiVersions version still gets our list, with UNSUPPORTED_VERSION.
    error = ErrorCode.NONE if request.version_supported else ErrorCode.UNSUPPORTED_VERSION
    return {"error_code": error, "api_keys": api_keys, "throttle_time_ms": 0}


HANDLERS: dict[int, Handler] = {
    18: handle_api_versions,
    0: produce.handle_produce,
    1: fetch.handle_fetch,
    2: offsets.handle_list_offsets,
    3: metadata.handle_metadata,
    8: group_offsets.handle_offset_commit,
    9: group_offsets.handle_offset_fetch,
    10: groups.handle_find_coordinator,
    11: groups.handle_join_group,
    12: groups.handle_heartbeat,
    13: groups.handle_leave_group,
    14: groups.handle_sync_group,
    15: groups.handle_describe_groups,
    16: groups.handle_list_groups,
    19: topics_admin.handle_create_topics,
    20: topics_admin.handle_delete_topics,
    21: offsets.handle_delete_records,
    22: producer_ids.handle_init_producer_id,
    24: transactions.handle_add_partitions_to_txn,
    25: transactions.handle_add_offsets_to_txn,
    26: transactions.handle_end_txn,
    28: transactions.handle_txn_offset_commit,
    29: acls_admin.handle_describe_acls,
    30: acls_admin.handle_create_acls,
    31: acls_admin.handle_delete_acls,
    32: configs_admin.handle_describe_configs,
    33: configs_admin.handle_alter_configs,
    37: topics_admin.handle_create_partitions,
    42: groups.handle_delete_groups,
    44: configs_admin.handle_incremental_alter_configs,
    47: group_offsets.handle_offset_delete,
    17: sasl.handle_sasl_handshake,
    36: sasl.handle_sasl_authenticate,
    50: sasl.handle_describe_user_scram_credentials,
    51: sasl.handle_alter_user_scram_credentials,
    65: transactions.handle_describe_transactions,
    66: transactions.handle_list_transactions,
}


def served_apis() -> list[ApiSchema]:
    """The APIs this broker advertises: exactly those with a handler."""
    return [APIS[key] for key in sorted(HANDLERS) if key in APIS]


class Router:
    def __init__(self, ctx: BrokerContext) -> None:
        self.ctx = ctx

    async def handle(self, request: Request) -> Message | None:
        """The response body, or None when the client expects none (Produce with acks=0)."""
        handler = HANDLERS.get(request.api_key)
        if handler is None:
            raise ProtocolError(f"{request.api.name} is not served by this broker")
        started = time.perf_counter()
        try:
            return await handler(self.ctx, request)
        finally:  # long-polling fetches included: their latency is what clients see
            self.ctx.stats.record_request(request.api.name, time.perf_counter() - started)
