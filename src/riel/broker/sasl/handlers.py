"""SaslHandshake, SaslAuthenticate, DescribeUserScramCredentials and AlterUserScramCredentials.

On a SASL listener the server hands the two SASL APIs to the connection's ``SaslSession`` before
authentication; a SASL request that reaches the router comes from a PLAINTEXT/SSL listener or from an
already authenticated connection, and gets ILLEGAL_SASL_STATE, as Kafka answers it.

With the authorizer on, describing users needs DESCRIBE on the cluster and altering them ALTER; with it
off, any client that may talk to the broker may manage users, as with Kafka without an authorizer.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from riel.broker.access import cluster_allowed
from riel.broker.authorizer import Operation
from riel.broker.context import BrokerContext
from riel.broker.sasl.scram import (
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    ScramMechanism,
    credential_from_salted_password,
)
from riel.broker.sasl.session import SUPPORTED_MECHANISMS
from riel.errors import ErrorCode
from riel.protocol.headers import Request
from riel.protocol.schema import Message
from riel.storage.credentials import CredentialsFileError, CredentialStore, StoredCredential


def credential_store(ctx: BrokerContext) -> CredentialStore:
    if ctx.credentials is None:
        ctx.credentials = CredentialStore(ctx.config.data_dir)
    return ctx.credentials


async def handle_sasl_handshake(ctx: BrokerContext, request: Request) -> Message:
    return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": list(SUPPORTED_MECHANISMS)}


async def handle_sasl_authenticate(ctx: BrokerContext, request: Request) -> Message:
    return {
        "error_code": ErrorCode.ILLEGAL_SASL_STATE,
        "error_message": "SaslAuthenticate is only valid once, on a SASL listener, after SaslHandshake",
        "auth_bytes": b"",
    }


async def handle_describe_user_scram_credentials(ctx: BrokerContext, request: Request) -> Message:
    if not cluster_allowed(ctx, request, Operation.DESCRIBE):
        return {
            "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            "error_message": "Cluster authorization failed",
            "results": [],
        }
    try:
        users = credential_store(ctx).users()
    except CredentialsFileError as exc:
        return {"error_code": ErrorCode.UNKNOWN_SERVER_ERROR, "error_message": str(exc), "results": []}
    wanted = request.body["users"]
    names = sorted(users) if not wanted else [entry["name"] for entry in wanted]
    counts = Counter(names)
    results: list[Message] = []
    for name in dict.fromkeys(names):
        if counts[name] > 1:
            code, message = ErrorCode.DUPLICATE_RESOURCE, "Cannot describe the same user more than once"
        elif name not in users:
            code, message = (
                ErrorCode.RESOURCE_NOT_FOUND,
                "Attempt to describe a user credential that does not exist",
            )
        else:
            code, message = ErrorCode.NONE, None
        infos = []
        if code == ErrorCode.NONE:
            for mechanism_name, stored in sorted(users[name].items()):
                mechanism = ScramMechanism.by_name(mechanism_name)
                if mechanism is not None:
                    infos.append({"mechanism": mechanism.kafka_id, "iterations": stored.iterations})
        results.append(
            {"user": name, "error_code": code, "error_message": message, "credential_infos": infos}
        )
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "results": results}


async def handle_alter_user_scram_credentials(ctx: BrokerContext, request: Request) -> Message:
    store = credential_store(ctx)
    deletions = request.body["deletions"]
    upsertions = request.body["upsertions"]
    names = [d["name"] for d in deletions] + [u["name"] for u in upsertions]
    if not cluster_allowed(ctx, request, Operation.ALTER):
        denied = {
            "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            "error_message": "Cluster authorization failed",
        }
        return {"throttle_time_ms": 0, "results": [{"user": n, **denied} for n in dict.fromkeys(names)]}
    # Kafka: "A user credential cannot be altered twice in the same request" (same user, same mechanism).
    pairs = Counter((d["name"], d["mechanism"]) for d in (*deletions, *upsertions))
    errors: dict[str, tuple[ErrorCode, str]] = {}

    def refuse(name: str, code: ErrorCode, message: str) -> None:
        errors.setdefault(name, (code, message))

    try:
        existing = store.users()
    except CredentialsFileError as exc:
        return {
            "throttle_time_ms": 0,
            "results": [
                {"user": n, "error_code": ErrorCode.UNKNOWN_SERVER_ERROR, "error_message": str(exc)}
                for n in dict.fromkeys(names)
            ],
        }
    for (name, _), count in pairs.items():
        if count > 1:
            refuse(
                name,
                ErrorCode.DUPLICATE_RESOURCE,
                "A user credential cannot be altered twice in the same request",
            )
    to_delete: list[tuple[str, str]] = []
    for d in deletions:
        mechanism = ScramMechanism.by_kafka_id(d["mechanism"])
        if not d["name"]:
            refuse(d["name"], ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty")
        elif mechanism is None:
            refuse(d["name"], ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism")
        elif mechanism.mechanism_name not in existing.get(d["name"], {}):
            refuse(
                d["name"],
                ErrorCode.RESOURCE_NOT_FOUND,
                "Attempt to delete a user credential that does not exist",
            )
        else:
            to_delete.append((d["name"], mechanism.mechanism_name))
    to_upsert: list[tuple[str, StoredCredential]] = []
    for u in upsertions:
        mechanism = ScramMechanism.by_kafka_id(u["mechanism"])
        salt, salted = bytes(u["salt"]), bytes(u["salted_password"])
        if not u["name"]:
            refuse(u["name"], ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty")
        elif mechanism is None:
            refuse(u["name"], ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism")
        elif u["iterations"] < MIN_ITERATIONS:
            refuse(
                u["name"], ErrorCode.UNACCEPTABLE_CREDENTIAL, f"Too few iterations (minimum {MIN_ITERATIONS})"
            )
        elif u["iterations"] > MAX_ITERATIONS:
            refuse(
                u["name"],
                ErrorCode.UNACCEPTABLE_CREDENTIAL,
                f"Too many iterations (maximum {MAX_ITERATIONS})",
            )
        elif not salt or not salted:
            refuse(u["name"], ErrorCode.UNACCEPTABLE_CREDENTIAL, "Salt and salted password must not be empty")
        else:
            credential = credential_from_salted_password(mechanism, salted, salt, u["iterations"])
            to_upsert.append(
                (
                    u["name"],
                    StoredCredential(
                        mechanism.mechanism_name,
                        credential.salt,
                        credential.iterations,
                        credential.stored_key,
                        credential.server_key,
                    ),
                )
            )
    # A user with any refused change gets none applied (Kafka validates per user, then writes).
    to_delete = [(n, m) for n, m in to_delete if n not in errors]
    to_upsert = [(n, c) for n, c in to_upsert if n not in errors]
    if to_delete or to_upsert:
        await asyncio.to_thread(store.apply, to_upsert, to_delete)  # fsyncs: off the event loop
    results = []
    for name in dict.fromkeys(names):
        code, message = errors.get(name, (ErrorCode.NONE, None))
        results.append({"user": name, "error_code": code, "error_message": message})
    return {"throttle_time_ms": 0, "results": results}
