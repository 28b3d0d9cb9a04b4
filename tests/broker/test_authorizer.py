"""The authorizer's matching rules (Kafka's StandardAuthorizer semantics), the ACL filters of
DescribeAcls/DeleteAcls, CreateAcls validation, and the ACL file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riel.broker.authorizer import (
    AclFilter,
    Authorizer,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    validate_binding,
)
from riel.storage.acl_store import AclBinding, AclFileError, AclStore

TOPIC, GROUP, CLUSTER = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
LITERAL, PREFIXED = PatternType.LITERAL, PatternType.PREFIXED
ALLOW, DENY = Permission.ALLOW, Permission.DENY
ALICE, BOB = "User:alice", "User:bob"


def acl(
    operation: Operation,
    name: str = "orders",
    *,
    resource: ResourceType = TOPIC,
    pattern: PatternType = LITERAL,
    principal: str = ALICE,
    host: str = "*",
    permission: Permission = ALLOW,
) -> AclBinding:
    return AclBinding(resource, name, pattern, principal, host, operation, permission)


def authorizer(*acls: AclBinding, super_users: tuple[str, ...] = ()) -> Authorizer:
    return Authorizer(enabled=True, super_users=super_users, acls=acls)


def may(
    a: Authorizer,
    op: Operation,
    name: str = "orders",
    *,
    principal: str = ALICE,
    host: str = "/10.0.0.1",
    resource: ResourceType = TOPIC,
) -> bool:
    return a.authorize(principal, host, op, resource, name)


def test_off_allows_everything_and_on_with_no_acl_denies() -> None:
    off = Authorizer(enabled=False)
    assert may(off, Operation.WRITE) and may(off, Operation.ALTER, resource=CLUSTER, name="kafka-cluster")
    assert not may(authorizer(), Operation.READ)


def test_allow_grants_only_its_operation_resource_and_principal() -> None:
    a = authorizer(acl(Operation.WRITE))
    assert may(a, Operation.WRITE)
    assert not may(a, Operation.READ)
    assert not may(a, Operation.WRITE, "payments")
    assert not may(a, Operation.WRITE, principal=BOB)
    assert not may(a, Operation.WRITE, resource=GROUP)


def test_deny_beats_allow() -> None:
    a = authorizer(acl(Operation.ALL), acl(Operation.READ, permission=DENY))
    assert may(a, Operation.WRITE)
    assert not may(a, Operation.READ)
    # a DENY on a prefix beats a literal ALLOW, a DENY for everyone beats a personal ALLOW
    b = authorizer(acl(Operation.READ), acl(Operation.READ, "ord", pattern=PREFIXED, permission=DENY))
    assert not may(b, Operation.READ)
    c = authorizer(acl(Operation.READ), acl(Operation.ALL, principal="User:*", permission=DENY))
    assert not may(c, Operation.READ)


def test_all_matches_any_operation_in_allow_and_deny() -> None:
    a = authorizer(acl(Operation.ALL))
    for op in (Operation.READ, Operation.WRITE, Operation.DESCRIBE, Operation.ALTER_CONFIGS):
        assert may(a, op)
    d = authorizer(acl(Operation.READ), acl(Operation.ALL, permission=DENY))
    assert not may(d, Operation.READ)


@pytest.mark.parametrize("implying", [Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER])
def test_describe_is_implied(implying: Operation) -> None:
    assert may(authorizer(acl(implying)), Operation.DESCRIBE)


def test_describe_configs_is_implied_by_alter_configs_only() -> None:
    assert may(authorizer(acl(Operation.ALTER_CONFIGS)), Operation.DESCRIBE_CONFIGS)
    assert not may(authorizer(acl(Operation.READ)), Operation.DESCRIBE_CONFIGS)
    assert not may(authorizer(acl(Operation.DESCRIBE)), Operation.READ)


def test_a_deny_of_the_implying_operation_does_not_deny_describe() -> None:
    a = authorizer(acl(Operation.DESCRIBE), acl(Operation.READ, permission=DENY))
    assert may(a, Operation.DESCRIBE)
    assert not may(a, Operation.READ)


def test_prefixed_covers_matching_names_only() -> None:
    a = authorizer(acl(Operation.READ, "orders-", pattern=PREFIXED))
    assert may(a, Operation.READ, "orders-eu")
    assert may(a, Operation.READ, "orders-")
    assert not may(a, Operation.READ, "orders")
    assert not may(a, Operation.READ, "payments-orders-eu")


def test_wildcards() -> None:
    a = authorizer(acl(Operation.READ, "*"), acl(Operation.WRITE, principal="User:*"))
    assert may(a, Operation.READ, "anything")
    assert may(a, Operation.WRITE, principal=BOB)
    assert not may(a, Operation.WRITE, "other", principal=BOB)
    # a literal "*" ACL is the wildcard; a prefixed "*" is just the prefix "*"
    assert not may(authorizer(acl(Operation.READ, "*", pattern=PREFIXED)), Operation.READ, "orders")


def test_host_must_match_exactly_or_be_the_wildcard() -> None:
    a = authorizer(acl(Operation.READ, host="10.0.0.1"))
    assert may(a, Operation.READ, host="/10.0.0.1")
    assert may(a, Operation.READ, host="10.0.0.1")
    assert not may(a, Operation.READ, host="/10.0.0.2")


def test_super_users_bypass_acls_even_deny() -> None:
    a = authorizer(acl(Operation.ALL, principal="User:admin", permission=DENY), super_users=("User:admin",))
    assert may(a, Operation.DELETE, principal="User:admin")
    assert not may(a, Operation.DELETE, principal=BOB)


def test_groups_and_cluster_are_separate_resources() -> None:
    a = authorizer(
        acl(Operation.READ, "billing", resource=GROUP),
        acl(Operation.CREATE, "kafka-cluster", resource=CLUSTER),
    )
    assert may(a, Operation.READ, "billing", resource=GROUP)
    assert not may(a, Operation.READ, "billing")
    assert may(a, Operation.CREATE, "kafka-cluster", resource=CLUSTER)


def test_write_on_any_topic() -> None:
    assert authorizer(acl(Operation.WRITE, "logs-", pattern=PREFIXED)).authorize_any_topic(
        ALICE, "", Operation.WRITE
    )
    assert not authorizer(acl(Operation.READ)).authorize_any_topic(ALICE, "", Operation.WRITE)
    denied = authorizer(acl(Operation.WRITE), acl(Operation.WRITE, permission=DENY))
    assert not denied.authorize_any_topic(ALICE, "", Operation.WRITE)


def test_replacing_acls_takes_effect() -> None:
    a = authorizer()
    assert not may(a, Operation.READ)
    a.replace_acls([acl(Operation.READ)])
    assert may(a, Operation.READ)


# ------------------------------------------------------------------------------------------- filters

BINDINGS = [
    acl(Operation.READ, "orders"),
    acl(Operation.READ, "*"),
    acl(Operation.WRITE, "ord", pattern=PREFIXED),
    acl(Operation.READ, "orders", resource=GROUP, principal=BOB),
]


def selected(f: AclFilter) -> list[AclBinding]:
    return [b for b in BINDINGS if f.matches(b)]


def test_filter_any_matches_everything() -> None:
    assert selected(AclFilter()) == BINDINGS


def test_filter_by_name_and_pattern_types() -> None:
    assert selected(AclFilter(TOPIC, "orders", PatternType.ANY)) == [BINDINGS[0]]
    assert selected(AclFilter(TOPIC, "orders", LITERAL)) == [BINDINGS[0]]
    assert selected(AclFilter(TOPIC, "ord", PREFIXED)) == [BINDINGS[2]]
    # MATCH: every ACL that applies to the topic "orders": literal, wildcard and prefix
    assert selected(AclFilter(TOPIC, "orders", PatternType.MATCH)) == BINDINGS[:3]
    assert selected(AclFilter(ResourceType.ANY, None, PREFIXED)) == [BINDINGS[2]]


def test_filter_by_entry() -> None:
    assert selected(AclFilter(principal=BOB)) == [BINDINGS[3]]
    assert selected(AclFilter(operation=Operation.WRITE)) == [BINDINGS[2]]
    assert selected(AclFilter(permission=DENY)) == []
    assert selected(AclFilter(host="10.0.0.1")) == []


def test_filter_with_unknown_codes_is_invalid() -> None:
    assert AclFilter().invalid() is None
    assert AclFilter(resource_type=ResourceType.UNKNOWN).invalid() is not None
    assert AclFilter(operation=99).invalid() is not None


def test_validation_of_new_acls() -> None:
    assert validate_binding(acl(Operation.READ)) is None
    assert validate_binding(acl(Operation.ALTER, "kafka-cluster", resource=CLUSTER)) is None
    assert validate_binding(acl(Operation.ALTER, "other", resource=CLUSTER)) is not None
    assert validate_binding(acl(Operation.ANY)) is not None
    assert validate_binding(acl(Operation.READ, pattern=PatternType.MATCH)) is not None
    assert validate_binding(acl(Operation.READ, principal="alice")) is not None
    assert validate_binding(acl(Operation.READ, permission=Permission.ANY)) is not None
    assert validate_binding(acl(Operation.READ, resource=ResourceType.ANY)) is not None
    assert validate_binding(acl(Operation.READ, "")) is not None


# ----------------------------------------------------------------------------------------- the file


def test_store_round_trip_and_change_detection(tmp_path: Path) -> None:
    store = AclStore(tmp_path)
    assert store.acls() == frozenset()
    store.add([acl(Operation.READ), acl(Operation.WRITE)])
    other = AclStore(tmp_path)
    assert other.acls() == {acl(Operation.READ), acl(Operation.WRITE)}
    store.remove([acl(Operation.READ)])
    assert other.refresh()
    assert other.acls() == {acl(Operation.WRITE)}
    assert not other.refresh()
    assert not (tmp_path / "acls.json.tmp").exists()


def test_store_refuses_a_damaged_file(tmp_path: Path) -> None:
    (tmp_path / "acls.json").write_text(json.dumps({"version": 1, "acls": [{"resource_type": "x"}]}))
    with pytest.raises(AclFileError):
        AclStore(tmp_path).acls()
    (tmp_path / "acls.json").write_text("{not json")
    with pytest.raises(AclFileError):
        AclStore(tmp_path).acls()
