"""Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups,
DescribeGroups, DeleteGroups. Each turns a request into a coordinator call and the result into a
response; the rules live in ``riel.coordinator``."""

from __future__ import annotations

from riel.broker.access import allowed, cluster_allowed, group_allowed
from riel.broker.authorizer import Operation, ResourceType
from riel.broker.context import BrokerContext
from riel.coordinator.group import JoinRequest
from riel.coordinator.state_machine import GroupState, parse_state
from riel.errors import ErrorCode
from riel.protocol.headers import Request
from riel.protocol.schema import Message

COORDINATOR_TYPE_GROUP = 0
COORDINATOR_TYPE_TRANSACTION = 1
# Kafka's sentinel for "authorized operations were not requested".
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)
# Without ACLs every client may do everything to a group: READ (3), DELETE (6), DESCRIBE (8).
ALL_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


def _coordinator_for(
    ctx: BrokerContext, request: Request, key_type: int, key: str
) -> tuple[ErrorCode, str | None, int, str, int]:
    """(error, message, node id, host, port) for one FindCoordinator key, as seen from the request's
    listener."""
    if key_type == COORDINATOR_TYPE_GROUP:
        if not group_allowed(ctx, request, Operation.DESCRIBE, key):
            return ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed", -1, "", -1
    elif key_type == COORDINATOR_TYPE_TRANSACTION:
        if not allowed(ctx, request, Operation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, key):
            error = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            return error, "Transactional Id authorization failed", -1, "", -1
    else:
        return ErrorCode.INVALID_REQUEST, f"unknown coordinator key type {key_type}", -1, "", -1
    # This broker coordinates every group and every transaction.
    host, port = ctx.advertised_address(request.listener)
    return ErrorCode.NONE, None, ctx.config.node_id, host, port


async def handle_find_coordinator(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    if request.api_version >= 4:
        coordinators = []
        for key in body["coordinator_keys"]:
            error, message, node, host, port = _coordinator_for(ctx, request, body["key_type"], key)
            coordinators.append(
                {
                    "key": key,
                    "node_id": node,
                    "host": host,
                    "port": port,
                    "error_code": error,
                    "error_message": message,
                }
            )
        return {"throttle_time_ms": 0, "coordinators": coordinators}
    error, message, node, host, port = _coordinator_for(ctx, request, body["key_type"], body["key"])
    return {
        "throttle_time_ms": 0,
        "error_code": error,
        "error_message": message,
        "node_id": node,
        "host": host,
        "port": port,
    }


async def handle_join_group(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    version = request.api_version
    req = JoinRequest(
        member_id=body["member_id"],
        group_instance_id=body["group_instance_id"],
        protocol_type=body["protocol_type"],
        # Copied out of the request frame: the group keeps them past this request.
        protocols=tuple((p["name"], bytes(p["metadata"])) for p in body["protocols"]),
        session_timeout_ms=body["session_timeout_ms"],
        # v0 has no rebalance timeout; Kafka uses the session timeout for it.
        rebalance_timeout_ms=body["rebalance_timeout_ms"] if version >= 1 else body["session_timeout_ms"],
        client_id=request.client_id or "",
        client_host=request.client_host,
        require_known_member_id=version >= 4,
    )
    if not group_allowed(ctx, request, Operation.READ, body["group_id"]):
        return {
            "throttle_time_ms": 0,
            "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED,
            "generation_id": -1,
            "protocol_type": None,
            "protocol_name": None if version >= 7 else "",
            "leader": "",
            "member_id": body["member_id"],
            "members": [],
        }
    result = await ctx.groups.join(body["group_id"], req)
    return {
        "throttle_time_ms": 0,
        "error_code": result.error,
        "generation_id": result.generation_id,
        "protocol_type": result.protocol_type,
        # Nullable only from v7; before that an unset protocol is an empty string.
        "protocol_name": result.protocol_name if version >= 7 else (result.protocol_name or ""),
        "leader": result.leader_id,
        "member_id": result.member_id,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "metadata": m.metadata}
            for m in result.members
        ],
    }


async def handle_sync_group(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    if not group_allowed(ctx, request, Operation.READ, body["group_id"]):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "assignment": b""}
    assignments = {a["member_id"]: bytes(a["assignment"]) for a in body["assignments"]}
    result = await ctx.groups.sync(
        body["group_id"],
        body["member_id"],
        body["group_instance_id"],
        body["generation_id"],
        body["protocol_type"],
        body["protocol_name"],
        assignments,
    )
    return {
        "throttle_time_ms": 0,
        "error_code": result.error,
        "protocol_type": result.protocol_type,
        "protocol_name": result.protocol_name,
        "assignment": result.assignment,
    }


async def handle_heartbeat(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    if not group_allowed(ctx, request, Operation.READ, body["group_id"]):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED}
    error = ctx.groups.heartbeat(
        body["group_id"], body["member_id"], body["group_instance_id"], body["generation_id"]
    )
    return {"throttle_time_ms": 0, "error_code": error}


async def handle_leave_group(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    if request.api_version >= 3:
        leaving = [(m["member_id"], m["group_instance_id"]) for m in body["members"]]
    else:
        leaving = [(body["member_id"], None)]
    if not group_allowed(ctx, request, Operation.READ, body["group_id"]):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "members": []}
    error, member_errors = ctx.groups.leave(body["group_id"], leaving)
    if request.api_version < 3 and error is ErrorCode.NONE and member_errors:
        error = member_errors[0]  # v0-2 carry the one member's error at the top level
    return {
        "throttle_time_ms": 0,
        "error_code": error,
        "members": [
            {"member_id": member_id, "group_instance_id": instance_id, "error_code": member_error}
            for (member_id, instance_id), member_error in zip(leaving, member_errors, strict=True)
        ],
    }


async def handle_list_groups(ctx: BrokerContext, request: Request) -> Message:
    states: list[GroupState] | None = None
    wanted = request.body["states_filter"]
    if wanted:
        # Unknown state names match nothing (Kafka does the same), so they are dropped, not refused.
        states = [s for name in wanted if (s := parse_state(name)) is not None]
    # DESCRIBE on the cluster shows every group; otherwise only the groups one may describe.
    see_all = cluster_allowed(ctx, request, Operation.DESCRIBE)
    groups = [
        {"group_id": g.group_id, "protocol_type": g.protocol_type, "group_state": g.state.value}
        for g in ctx.groups.list_groups(states)
        if see_all or group_allowed(ctx, request, Operation.DESCRIBE, g.group_id)
    ]
    return {"throttle_time_ms": 0, "error_code": 0, "groups": groups}


async def handle_describe_groups(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    operations = (
        ALL_GROUP_OPERATIONS if body["include_authorized_operations"] else AUTHORIZED_OPERATIONS_OMITTED
    )
    groups: list[Message] = []
    for group_id in body["groups"]:
        if not group_id:
            groups.append(
                {
                    "error_code": ErrorCode.INVALID_GROUP_ID,
                    "group_id": group_id,
                    "group_state": "",
                    "protocol_type": "",
                    "protocol_data": "",
                    "members": [],
                    "authorized_operations": operations,
                }
            )
            continue
        if not group_allowed(ctx, request, Operation.DESCRIBE, group_id):
            groups.append(
                {
                    "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED,
                    "group_id": group_id,
                    "group_state": "",
                    "protocol_type": "",
                    "protocol_data": "",
                    "members": [],
                    "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
                }
            )
            continue
        if body["include_authorized_operations"] and ctx.config.authorizer_enabled:
            operations = sum(
                1 << op
                for op in (Operation.READ, Operation.DELETE, Operation.DESCRIBE)
                if group_allowed(ctx, request, op, group_id)
            )
        described = ctx.groups.describe_group(group_id)
        if described is None:
            # Kafka (DescribeGroups v0-5) describes an unknown group as Dead, without an error.
            groups.append(
                {
                    "error_code": 0,
                    "group_id": group_id,
                    "group_state": GroupState.DEAD.value,
                    "protocol_type": "",
                    "protocol_data": "",
                    "members": [],
                    "authorized_operations": operations,
                }
            )
            continue
        groups.append(
            {
                "error_code": 0,
                "group_id": group_id,
                "group_state": described.state.value,
                "protocol_type": described.protocol_type,
                "protocol_data": described.protocol_name,
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "member_metadata": m.metadata,
                        "member_assignment": m.assignment,
                    }
                    for m in described.members
                ],
                "authorized_operations": operations,
            }
        )
    return {"throttle_time_ms": 0, "groups": groups}


async def handle_delete_groups(ctx: BrokerContext, request: Request) -> Message:
    names = request.body["groups_names"]
    may_delete = [group_allowed(ctx, request, Operation.DELETE, n) for n in names]
    deleted = iter(ctx.groups.delete_groups([n for n, ok in zip(names, may_delete, strict=True) if ok]))
    errors = [next(deleted) if ok else ErrorCode.GROUP_AUTHORIZATION_FAILED for ok in may_delete]
    return {
        "throttle_time_ms": 0,
        "results": [
            {"group_id": name, "error_code": error} for name, error in zip(names, errors, strict=True)
        ],
    }
