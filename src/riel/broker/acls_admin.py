"""DescribeAcls, CreateAcls and DeleteAcls.

The ACLs are stored (``acls.json``) whether or not the authorizer is on, so that they can be prepared
before ``--authorizer`` is turned on; Kafka without an authorizer answers SECURITY_DISABLED instead.
Describing needs DESCRIBE on the cluster; creating and deleting need ALTER.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from riel.broker.access import access_control, cluster_allowed
from riel.broker.authorizer import AclFilter, Operation, validate_binding
from riel.broker.context import BrokerContext
from riel.errors import ErrorCode
from riel.protocol.headers import Request
from riel.protocol.schema import Message
from riel.storage.acl_store import AclBinding, AclFileError

_DENIED = "Cluster authorization failed"


def _filter(entry: Message) -> AclFilter:
    return AclFilter(
        entry["resource_type_filter"],
        entry["resource_name_filter"],
        entry["pattern_type_filter"],
        entry["principal_filter"],
        entry["host_filter"],
        entry["operation"],
        entry["permission_type"],
    )


async def handle_describe_acls(ctx: BrokerContext, request: Request) -> Message:
    response: Message = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None}
    if not cluster_allowed(ctx, request, Operation.DESCRIBE):
        return {**response, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": _DENIED}
    acl_filter = _filter(request.body)
    problem = acl_filter.invalid()
    if problem is not None:
        return {**response, "error_code": ErrorCode.INVALID_REQUEST, "error_message": problem}
    try:
        acls = access_control(ctx).store.acls()
    except AclFileError as exc:
        return {**response, "error_code": ErrorCode.UNKNOWN_SERVER_ERROR, "error_message": str(exc)}
    by_resource: dict[tuple[int, str, int], list[Message]] = defaultdict(list)
    for b in sorted(acls):
        if acl_filter.matches(b):
            by_resource[b.resource_type, b.resource_name, b.pattern_type].append(
                {
                    "principal": b.principal,
                    "host": b.host,
                    "operation": b.operation,
                    "permission_type": b.permission,
                }
            )
    response["resources"] = [
        {"resource_type": rtype, "resource_name": name, "pattern_type": ptype, "acls": entries}
        for (rtype, name, ptype), entries in by_resource.items()
    ]
    return response


async def handle_create_acls(ctx: BrokerContext, request: Request) -> Message:
    creations = request.body["creations"]
    if not cluster_allowed(ctx, request, Operation.ALTER):
        denied = {"error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": _DENIED}
        return {"throttle_time_ms": 0, "results": [dict(denied) for _ in creations]}
    results: list[Message] = []
    valid: list[AclBinding] = []
    for c in creations:
        binding = AclBinding(
            c["resource_type"],
            c["resource_name"],
            c["resource_pattern_type"],
            c["principal"],
            c["host"],
            c["operation"],
            c["permission_type"],
        )
        problem = validate_binding(binding)
        if problem is None:
            valid.append(binding)
            results.append({"error_code": ErrorCode.NONE, "error_message": None})
        else:
            results.append({"error_code": ErrorCode.INVALID_REQUEST, "error_message": problem})
    if valid:
        access = access_control(ctx)
        try:
            await asyncio.to_thread(access.store.add, valid)  # fsyncs: off the event loop
        except (AclFileError, OSError) as exc:
            failed = {"error_code": ErrorCode.UNKNOWN_SERVER_ERROR, "error_message": str(exc)}
            results = [failed if r["error_code"] == ErrorCode.NONE else r for r in results]
        access.reload()
    return {"throttle_time_ms": 0, "results": results}


async def handle_delete_acls(ctx: BrokerContext, request: Request) -> Message:
    filters = request.body["filters"]
    if not cluster_allowed(ctx, request, Operation.ALTER):
        denied: Message = {
            "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            "error_message": _DENIED,
            "matching_acls": [],
        }
        return {"throttle_time_ms": 0, "filter_results": [dict(denied) for _ in filters]}
    access = access_control(ctx)
    try:
        acls = access.store.acls()
    except AclFileError as exc:
        failed = {
            "error_code": ErrorCode.UNKNOWN_SERVER_ERROR,
            "error_message": str(exc),
            "matching_acls": [],
        }
        return {"throttle_time_ms": 0, "filter_results": [dict(failed) for _ in filters]}
    results: list[Message] = []
    doomed: set[AclBinding] = set()
    for entry in filters:
        acl_filter = _filter(entry)
        problem = acl_filter.invalid()
        if problem is not None:
            results.append(
                {"error_code": ErrorCode.INVALID_REQUEST, "error_message": problem, "matching_acls": []}
            )
            continue
        matching = [b for b in sorted(acls) if acl_filter.matches(b)]
        doomed.update(matching)
        results.append(
            {
                "error_code": ErrorCode.NONE,
                "error_message": None,
                "matching_acls": [
                    {
                        "error_code": ErrorCode.NONE,
                        "error_message": None,
                        "resource_type": b.resource_type,
                        "resource_name": b.resource_name,
                        "pattern_type": b.pattern_type,
                        "principal": b.principal,
                        "host": b.host,
                        "operation": b.operation,
                        "permission_type": b.permission,
                    }
                    for b in matching
                ],
            }
        )
    if doomed:
        try:
            await asyncio.to_thread(access.store.remove, doomed)
        except (AclFileError, OSError) as exc:
            return {
                "throttle_time_ms": 0,
                "filter_results": [
                    {
                        "error_code": ErrorCode.UNKNOWN_SERVER_ERROR,
                        "error_message": str(exc),
                        "matching_acls": [],
                    }
                    for _ in filters
                ],
            }
        access.reload()
    return {"throttle_time_ms": 0, "filter_results": results}
