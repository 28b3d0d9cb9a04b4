"""``riel acl add/list/remove``: access control lists, enforced by ``riel serve --authorizer``.

By default the command edits ``acls.json`` in the data directory (``--data-dir`` or ``RIEL_DATA_DIR``),
which is allowed while a server runs: the server re-reads the file within a second. With
``--bootstrap`` it asks a running broker through CreateAcls / DescribeAcls / DeleteAcls
(confluent-kafka's AdminClient), which also works against Apache Kafka; ``--client-config`` passes
librdkafka settings such as ``security.protocol=SASL_PLAINTEXT`` and ``sasl.username=admin``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from riel.broker.authorizer import (
    CLUSTER_NAME,
    AclFilter,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    validate_binding,
)
from riel.cli.output import EXIT_NOT_FOUND, EXIT_USAGE, CliError, console, emit, json_option, table
from riel.config import DEFAULT_DATA_DIR
from riel.storage.acl_store import AclBinding, AclFileError, AclStore

OPERATION_NAMES = [op.name for op in Operation if op >= Operation.ALL]


def _common_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--data-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=DEFAULT_DATA_DIR,
            show_default=True,
            envvar="RIEL_DATA_DIR",
            help="The data directory whose ACLs to manage (a running server picks changes up).",
        ),
        click.option(
            "--bootstrap",
            "-b",
            default=None,
            help="Manage the ACLs of a running broker over the Kafka protocol instead of a data directory.",
        ),
        click.option(
            "--client-config",
            "client_settings",
            multiple=True,
            metavar="KEY=VALUE",
            help="A librdkafka setting for --bootstrap (repeatable), e.g. security.protocol=SASL_PLAINTEXT, "
            "sasl.mechanism=PLAIN, sasl.username=admin, sasl.password=...",
        ),
        click.option(
            "--principal", default=None, help="The principal, e.g. User:alice (User:* for everyone)."
        ),
        click.option("--host", default=None, help="The client host the ACL applies to (* for any)."),
        click.option("--topic", default=None, help="A topic (* for every topic)."),
        click.option("--group", "group_id", default=None, help="A consumer group (* for every group)."),
        click.option("--transactional-id", default=None, help="A transactional id."),
        click.option("--cluster", is_flag=True, help="The cluster itself."),
        click.option(
            "--prefixed",
            is_flag=True,
            help="The name is a prefix: the ACL covers every resource whose name starts with it.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _resource(
    topic: str | None, group_id: str | None, transactional_id: str | None, cluster: bool
) -> tuple[ResourceType, str] | None:
    chosen = [
        (kind, name)
        for kind, name in (
            (ResourceType.TOPIC, topic),
            (ResourceType.GROUP, group_id),
            (ResourceType.TRANSACTIONAL_ID, transactional_id),
            (ResourceType.CLUSTER, CLUSTER_NAME if cluster else None),
        )
        if name is not None
    ]
    if len(chosen) > 1:
        raise CliError("give one of --topic, --group, --transactional-id, --cluster", exit_code=EXIT_USAGE)
    return chosen[0] if chosen else None


def _settings(client_settings: Sequence[str]) -> dict[str, str | int | float | bool]:
    out: dict[str, str | int | float | bool] = {}
    for item in client_settings:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise CliError(f"bad --client-config {item!r}: expected KEY=VALUE", exit_code=EXIT_USAGE)
        out[key.strip()] = value.strip()
    return out


def _row(b: AclBinding) -> dict[str, Any]:
    def name(enum_type: type[Any], value: int) -> str:
        try:
            return str(enum_type(value).name)
        except ValueError:
            return str(value)

    return {
        "principal": b.principal,
        "host": b.host,
        "permission": name(Permission, b.permission),
        "operation": name(Operation, b.operation),
        "resource_type": name(ResourceType, b.resource_type),
        "pattern_type": name(PatternType, b.pattern_type),
        "resource_name": b.resource_name,
    }


def _store(data_dir: Path, must_exist: bool) -> AclStore:
    if must_exist and not data_dir.is_dir():
        raise CliError(f"no data directory at {data_dir}", exit_code=EXIT_USAGE)
    return AclStore(data_dir)


def _kafka_error(exc: BaseException, bootstrap: str) -> CliError:
    from riel.cli.target import kafka_error

    return kafka_error(exc, bootstrap=bootstrap)


# --------------------------------------------------------------------------------------- confluent


def _admin(bootstrap: str, client_settings: Sequence[str]) -> Any:
    from riel.cli.target import admin_client

    return admin_client(bootstrap, **_settings(client_settings))


def _to_confluent(b: AclBinding) -> Any:
    from confluent_kafka.admin import AclBinding as ConfluentBinding  # type: ignore[attr-defined]

    return ConfluentBinding(
        b.resource_type, b.resource_name, b.pattern_type, b.principal, b.host, b.operation, b.permission
    )


def _to_confluent_filter(f: AclFilter) -> Any:
    from confluent_kafka.admin import AclBindingFilter  # type: ignore[attr-defined]

    binding_filter: Any = AclBindingFilter  # its stubs say str where None (any name) is allowed
    return binding_filter(
        f.resource_type, f.resource_name, f.pattern_type, f.principal, f.host, f.operation, f.permission
    )


def _from_confluent(b: Any) -> AclBinding:
    return AclBinding(
        int(b.restype.value),
        b.name,
        int(b.resource_pattern_type.value),
        b.principal,
        b.host,
        int(b.operation.value),
        int(b.permission_type.value),
    )


# ------------------------------------------------------------------------------------------ commands


@click.group()
def acl() -> None:
    """Access control lists (enforced by `riel serve --authorizer`; super users bypass them)."""


@acl.command("add")
@_common_options
@click.option(
    "--operation",
    "operations",
    multiple=True,
    required=True,
    type=click.Choice(OPERATION_NAMES, case_sensitive=False),
    help="An operation to allow or deny (repeatable).",
)
@click.option("--deny", is_flag=True, help="Deny instead of allow (a DENY beats every ALLOW).")
def add(
    data_dir: Path,
    bootstrap: str | None,
    client_settings: tuple[str, ...],
    principal: str | None,
    host: str | None,
    topic: str | None,
    group_id: str | None,
    transactional_id: str | None,
    cluster: bool,
    prefixed: bool,
    operations: tuple[str, ...],
    deny: bool,
) -> None:
    """Allow (or with --deny, deny) PRINCIPAL the OPERATIONs on one resource.

    \b
    riel acl add --principal User:alice --operation WRITE --topic orders
    riel acl add --principal User:bob --operation READ --topic orders- --prefixed
    riel acl add --principal User:bob --operation READ --group billing
    """
    resource = _resource(topic, group_id, transactional_id, cluster)
    if resource is None or principal is None:
        raise CliError(
            "give --principal and a resource",
            hint="e.g. --principal User:alice --operation READ --topic orders",
            exit_code=EXIT_USAGE,
        )
    pattern = PatternType.PREFIXED if prefixed else PatternType.LITERAL
    permission = Permission.DENY if deny else Permission.ALLOW
    bindings = [
        AclBinding(
            resource[0], resource[1], pattern, principal, host or "*", Operation[op.upper()], permission
        )
        for op in dict.fromkeys(operations)
    ]
    for b in bindings:
        problem = validate_binding(b)
        if problem is not None:
            raise CliError(f"invalid ACL: {problem}", exit_code=EXIT_USAGE)
    if bootstrap is not None:
        admin = _admin(bootstrap, client_settings)
        for future in admin.create_acls([_to_confluent(b) for b in bindings]).values():
            try:
                future.result()
            except Exception as exc:  # KafkaException: the broker's refusal, with its message
                raise _kafka_error(exc, bootstrap) from None
    else:
        try:
            _store(data_dir, must_exist=False).add(bindings)
        except AclFileError as exc:
            raise CliError(str(exc)) from None
    for b in bindings:
        row = _row(b)
        console.print(
            f"{row['permission']} {b.principal} {row['operation']} on {row['resource_type'].lower()} "
            f"{b.resource_name}{' (prefix)' if prefixed else ''} from {b.host}"
        )


def _filter(
    principal: str | None,
    host: str | None,
    topic: str | None,
    group_id: str | None,
    transactional_id: str | None,
    cluster: bool,
    prefixed: bool,
    operation: str | None,
) -> AclFilter:
    resource = _resource(topic, group_id, transactional_id, cluster)
    if resource is None:
        pattern = PatternType.PREFIXED if prefixed else PatternType.ANY
        return AclFilter(
            pattern_type=pattern,
            principal=principal,
            host=host,
            operation=Operation[operation.upper()] if operation else Operation.ANY,
        )
    return AclFilter(
        resource[0],
        resource[1],
        PatternType.PREFIXED if prefixed else PatternType.ANY,
        principal,
        host,
        Operation[operation.upper()] if operation else Operation.ANY,
        Permission.ANY,
    )


@acl.command("list")
@_common_options
@click.option(
    "--operation",
    default=None,
    type=click.Choice(OPERATION_NAMES, case_sensitive=False),
    help="Only this one.",
)
@json_option
def list_(
    data_dir: Path,
    bootstrap: str | None,
    client_settings: tuple[str, ...],
    principal: str | None,
    host: str | None,
    topic: str | None,
    group_id: str | None,
    transactional_id: str | None,
    cluster: bool,
    prefixed: bool,
    operation: str | None,
    as_json: bool,
) -> None:
    """List ACLs, all of them or those of one principal / resource (exact name and pattern)."""
    acl_filter = _filter(principal, host, topic, group_id, transactional_id, cluster, prefixed, operation)
    if bootstrap is not None:
        admin = _admin(bootstrap, client_settings)
        try:
            found = [
                _from_confluent(b) for b in admin.describe_acls(_to_confluent_filter(acl_filter)).result()
            ]
        except Exception as exc:  # KafkaException
            raise _kafka_error(exc, bootstrap) from None
    else:
        try:
            found = [b for b in _store(data_dir, must_exist=True).acls() if acl_filter.matches(b)]
        except AclFileError as exc:
            raise CliError(str(exc)) from None
    rows = [_row(b) for b in sorted(found)]

    def render() -> None:
        if not rows:
            console.print("no ACLs")
            return
        columns = [
            "principal",
            "host",
            "permission",
            "operation",
            "resource_type",
            "pattern_type",
            "resource_name",
        ]
        headers = ["principal", "host", "permission", "operation", "resource", "pattern", "name"]
        console.print(table(headers, [[r[c] for c in columns] for r in rows]))

    emit(rows, as_json, render)


@acl.command("remove")
@_common_options
@click.option(
    "--operation",
    default=None,
    type=click.Choice(OPERATION_NAMES, case_sensitive=False),
    help="Only this one.",
)
def remove(
    data_dir: Path,
    bootstrap: str | None,
    client_settings: tuple[str, ...],
    principal: str | None,
    host: str | None,
    topic: str | None,
    group_id: str | None,
    transactional_id: str | None,
    cluster: bool,
    prefixed: bool,
    operation: str | None,
) -> None:
    """Remove the ACLs matching the options (at least --principal or a resource)."""
    if principal is None and _resource(topic, group_id, transactional_id, cluster) is None:
        raise CliError("give --principal and/or a resource to remove ACLs of", exit_code=EXIT_USAGE)
    acl_filter = _filter(principal, host, topic, group_id, transactional_id, cluster, prefixed, operation)
    if bootstrap is not None:
        admin = _admin(bootstrap, client_settings)
        removed: list[AclBinding] = []
        for future in admin.delete_acls([_to_confluent_filter(acl_filter)]).values():
            try:
                removed.extend(_from_confluent(b) for b in future.result())
            except Exception as exc:  # KafkaException
                raise _kafka_error(exc, bootstrap) from None
    else:
        store = _store(data_dir, must_exist=True)
        try:
            removed = [b for b in store.acls() if acl_filter.matches(b)]
            if removed:
                store.remove(removed)
        except AclFileError as exc:
            raise CliError(str(exc)) from None
    if not removed:
        raise CliError("no ACL matched", hint="`riel acl list` shows them", exit_code=EXIT_NOT_FOUND)
    console.print(f"removed {len(removed)} ACL{'s' if len(removed) != 1 else ''}")
