"""The group state table, pair by pair: every (state, event) is either the documented move or refused."""

from __future__ import annotations

import itertools

import pytest

from riel.coordinator.state_machine import (
    TRANSITIONS,
    GroupEvent,
    GroupState,
    IllegalTransition,
    parse_state,
    transition,
)

S = GroupState
E = GroupEvent

# Written out independently of the module's table: what Kafka's classic coordinator allows.
EXPECTED: dict[tuple[GroupState, GroupEvent], GroupState | None] = {
    (S.EMPTY, E.MEMBER_JOINED): S.PREPARING_REBALANCE,
    (S.EMPTY, E.MEMBER_REMOVED): None,  # an empty group has nobody to remove
    (S.EMPTY, E.JOIN_COMPLETED): None,
    (S.EMPTY, E.JOIN_COMPLETED_EMPTY): None,
    (S.EMPTY, E.ASSIGNMENT_RECEIVED): None,
    (S.EMPTY, E.GROUP_DELETED): S.DEAD,
    (S.PREPARING_REBALANCE, E.MEMBER_JOINED): S.PREPARING_REBALANCE,
    (S.PREPARING_REBALANCE, E.MEMBER_REMOVED): S.PREPARING_REBALANCE,
    (S.PREPARING_REBALANCE, E.JOIN_COMPLETED): S.COMPLETING_REBALANCE,
    (S.PREPARING_REBALANCE, E.JOIN_COMPLETED_EMPTY): S.EMPTY,
    (S.PREPARING_REBALANCE, E.ASSIGNMENT_RECEIVED): None,  # no generation to assign yet
    (S.PREPARING_REBALANCE, E.GROUP_DELETED): None,  # NON_EMPTY_GROUP
    (S.COMPLETING_REBALANCE, E.MEMBER_JOINED): S.PREPARING_REBALANCE,
    (S.COMPLETING_REBALANCE, E.MEMBER_REMOVED): S.PREPARING_REBALANCE,
    (S.COMPLETING_REBALANCE, E.JOIN_COMPLETED): None,
    (S.COMPLETING_REBALANCE, E.JOIN_COMPLETED_EMPTY): None,
    (S.COMPLETING_REBALANCE, E.ASSIGNMENT_RECEIVED): S.STABLE,
    (S.COMPLETING_REBALANCE, E.GROUP_DELETED): None,
    (S.STABLE, E.MEMBER_JOINED): S.PREPARING_REBALANCE,
    (S.STABLE, E.MEMBER_REMOVED): S.PREPARING_REBALANCE,
    (S.STABLE, E.JOIN_COMPLETED): None,
    (S.STABLE, E.JOIN_COMPLETED_EMPTY): None,
    (S.STABLE, E.ASSIGNMENT_RECEIVED): None,  # a stable group answers SyncGroup with what it has
    (S.STABLE, E.GROUP_DELETED): None,
    **{(S.DEAD, event): None for event in GroupEvent},  # dead is final
}


def test_expectations_cover_every_pair() -> None:
    assert set(EXPECTED) == set(itertools.product(GroupState, GroupEvent))


@pytest.mark.parametrize(
    ("state", "event"), list(itertools.product(GroupState, GroupEvent)), ids=lambda v: v.name
)
def test_transition(state: GroupState, event: GroupEvent) -> None:
    expected = EXPECTED[(state, event)]
    if expected is None:
        with pytest.raises(IllegalTransition):
            transition(state, event)
        assert (state, event) not in TRANSITIONS
    else:
        assert transition(state, event) is expected


def test_every_state_but_dead_is_reachable_and_can_reach_dead() -> None:
    reachable = {S.EMPTY}
    frontier = [S.EMPTY]
    while frontier:
        state = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is state and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(GroupState)


def test_state_names_parse_case_insensitively() -> None:
    assert parse_state("stable") is S.STABLE
    assert parse_state("PreparingRebalance") is S.PREPARING_REBALANCE
    assert parse_state("EMPTY") is S.EMPTY
    assert parse_state("Assigning") is None
