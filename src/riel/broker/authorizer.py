"""ACL authorization with Kafka's semantics (``StandardAuthorizer``), pure: no files, no sockets.

A request is allowed when the authorizer is off, when the principal is a super user, or when some ALLOW
ACL matches and no DENY ACL does. An ACL matches a resource when its type is the resource's and its
pattern is LITERAL with the same name or the wildcard ``*``, or PREFIXED with a prefix of the name; it
matches a principal when it names it or ``User:*``, and a host when it names it or ``*``. A DENY
matches only its own operation (or ALL); an ALLOW also grants the operations it implies: DESCRIBE by
READ, WRITE, DELETE and ALTER, DESCRIBE_CONFIGS by ALTER_CONFIGS. No matching ACL means deny.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from riel.storage.acl_store import AclBinding

WILDCARD: Final = "*"
WILDCARD_PRINCIPAL: Final = "User:*"
CLUSTER_NAME: Final = "kafka-cluster"


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Operation(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


class Permission(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


# Resource types ACLs may be created for (Kafka has two more, DELEGATION_TOKEN and USER, unused here).
SUPPORTED_RESOURCES: Final = frozenset(
    {ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER, ResourceType.TRANSACTIONAL_ID}
)

# An ALLOW of the key also allows these (Kafka's AclEntry.supportedOperations / implied operations).
_IMPLIED_BY: Final[dict[Operation, frozenset[Operation]]] = {
    Operation.DESCRIBE: frozenset(
        {Operation.DESCRIBE, Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER}
    ),
    Operation.DESCRIBE_CONFIGS: frozenset({Operation.DESCRIBE_CONFIGS, Operation.ALTER_CONFIGS}),
}


_OPERATION_CODES: Final = frozenset(int(op) for op in Operation)


def _named(enum_type: type[enum.IntEnum], value: int) -> str:
    try:
        return enum_type(value).name
    except ValueError:
        return str(value)


def describe_binding(b: AclBinding) -> str:
    """``ALLOW User:alice@* READ on TOPIC LITERAL orders``, for messages and logs."""
    return (
        f"{_named(Permission, b.permission)} {b.principal}@{b.host} {_named(Operation, b.operation)} on "
        f"{_named(ResourceType, b.resource_type)} {_named(PatternType, b.pattern_type)} {b.resource_name}"
    )


def validate_binding(b: AclBinding) -> str | None:
    """Why CreateAcls must refuse ``b`` (INVALID_REQUEST), or None if it is acceptable."""
    if b.resource_type not in SUPPORTED_RESOURCES:
        return f"unsupported resource type {_named(ResourceType, b.resource_type)}"
    if b.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return "the pattern type must be LITERAL or PREFIXED"
    if not b.resource_name:
        return "the resource name must not be empty"
    if b.resource_type == ResourceType.CLUSTER and (
        b.resource_name != CLUSTER_NAME or b.pattern_type != PatternType.LITERAL
    ):
        return f"the only valid CLUSTER resource is LITERAL {CLUSTER_NAME}"
    if b.operation < Operation.ALL or b.operation not in _OPERATION_CODES:
        return f"invalid operation {_named(Operation, b.operation)}"
    if b.permission not in (Permission.ALLOW, Permission.DENY):
        return "the permission must be ALLOW or DENY"
    kind, colon, name = b.principal.partition(":")
    if not colon or not kind or not name:
        return f"invalid principal {b.principal!r}: expected TYPE:NAME such as User:alice"
    if not b.host:
        return "the host must not be empty (use * for every host)"
    return None


@dataclass(frozen=True, slots=True)
class AclFilter:
    """What DescribeAcls and DeleteAcls select. None matches any name, principal or host."""

    resource_type: int = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: int = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: int = Operation.ANY
    permission: int = Permission.ANY

    def invalid(self) -> str | None:
        """Why this filter cannot be used (Kafka: UNKNOWN anywhere), or None."""
        codes = (self.resource_type, self.pattern_type, self.operation, self.permission)
        enums: tuple[type[enum.IntEnum], ...] = (ResourceType, PatternType, Operation, Permission)
        for value, enum_type in zip(codes, enums, strict=True):
            if value == 0 or value not in {int(m) for m in enum_type}:
                return f"invalid {enum_type.__name__} {value} in filter"
        return None

    def matches(self, b: AclBinding) -> bool:
        return self._matches_pattern(b) and self._matches_entry(b)

    def _matches_pattern(self, b: AclBinding) -> bool:
        # Kafka's ResourcePatternFilter.matches
        if self.resource_type != ResourceType.ANY and self.resource_type != b.resource_type:
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH, b.pattern_type):
            return False
        if self.resource_name is None:
            return True
        if self.pattern_type in (PatternType.ANY, b.pattern_type):
            return self.resource_name == b.resource_name
        if b.pattern_type == PatternType.LITERAL:  # MATCH
            return b.resource_name in (self.resource_name, WILDCARD)
        if b.pattern_type == PatternType.PREFIXED:
            return self.resource_name.startswith(b.resource_name)
        return False

    def _matches_entry(self, b: AclBinding) -> bool:
        return (
            (self.principal is None or self.principal == b.principal)
            and (self.host is None or self.host == b.host)
            and self.operation in (Operation.ANY, b.operation)
            and self.permission in (Permission.ANY, b.permission)
        )


class Authorizer:
    """Answers "may PRINCIPAL from HOST do OPERATION on RESOURCE?" over a set of ACLs."""

    def __init__(
        self, *, enabled: bool, super_users: Iterable[str] = (), acls: Iterable[AclBinding] = ()
    ) -> None:
        self.enabled = enabled
        self.super_users = frozenset(super_users)
        self._by_type: dict[int, list[AclBinding]] = {}
        self.replace_acls(acls)

    def replace_acls(self, acls: Iterable[AclBinding]) -> None:
        by_type: dict[int, list[AclBinding]] = {}
        for b in acls:
            by_type.setdefault(b.resource_type, []).append(b)
        self._by_type = by_type

    def authorize(
        self, principal: str, host: str, operation: Operation, resource_type: ResourceType, name: str
    ) -> bool:
        if not self.enabled or principal in self.super_users:
            return True
        host = host.removeprefix("/")  # the server reports peers as "/1.2.3.4", like Kafka
        allowed_by = _IMPLIED_BY.get(operation, frozenset({operation}))
        allowed = False
        for b in self._by_type.get(resource_type, ()):
            if not _resource_matches(b, name):
                continue
            if b.principal not in (principal, WILDCARD_PRINCIPAL) or b.host not in (host, WILDCARD):
                continue
            if b.permission == Permission.DENY:
                if b.operation in (operation, Operation.ALL):
                    return False  # deny beats allow
            elif b.permission == Permission.ALLOW and (
                b.operation == Operation.ALL or b.operation in allowed_by
            ):
                allowed = True
        return allowed

    def authorize_any_topic(self, principal: str, host: str, operation: Operation) -> bool:
        """True if some topic ACL could allow ``operation`` to ``principal`` (InitProducerId: WRITE on any
        topic). Kafka checks the same: an ALLOW on some topic pattern and no DENY on every topic."""
        if not self.enabled or principal in self.super_users:
            return True
        host = host.removeprefix("/")
        allowed_by = _IMPLIED_BY.get(operation, frozenset({operation}))
        for b in self._by_type.get(ResourceType.TOPIC, ()):
            if b.principal not in (principal, WILDCARD_PRINCIPAL) or b.host not in (host, WILDCARD):
                continue
            if not (
                b.permission == Permission.ALLOW
                and (b.operation == Operation.ALL or b.operation in allowed_by)
            ):
                continue
            if self.authorize(principal, host, operation, ResourceType.TOPIC, b.resource_name):
                return True
        return False


def _resource_matches(b: AclBinding, name: str) -> bool:
    if b.pattern_type == PatternType.LITERAL:
        return b.resource_name in (name, WILDCARD)
    if b.pattern_type == PatternType.PREFIXED:
        return name.startswith(b.resource_name)
    return False
