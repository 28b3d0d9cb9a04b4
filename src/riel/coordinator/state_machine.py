"""The classic consumer-group state machine, as one explicit table.

Kafka's group coordinator moves a group between five states (``GroupState``). What moves it is one of
a handful of events (``GroupEvent``); which event a request amounts to is decided by the group logic in
``riel.coordinator.group``, and every state change there goes through ``transition`` below, so this
table is the whole truth about which moves are possible. A pair missing from the table is a bug in the
caller (``IllegalTransition``), never something a client can provoke: requests that make no sense in
the current state are answered with an error code before any event is fired.

::

    Empty --join--> PreparingRebalance --join phase done--> CompletingRebalance --leader sync--> Stable
      ^                 ^   |                                     |                               |
      |                 |   +--join phase done, nobody left--> Empty                              |
      |                 +------------- join / member removed -------------------------------------+
      +-- (Empty only) delete / offsets expired --> Dead

Pure: no I/O, no clock, no asyncio.
"""

from __future__ import annotations

import enum
from typing import Final


class GroupState(enum.Enum):
    """Kafka's names, as ListGroups and DescribeGroups report them."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


class GroupEvent(enum.Enum):
    # A JoinGroup that needs a new generation: a new member, a member whose protocols changed, the
    # leader rejoining, or a static member replaced while the assignment is being computed.
    MEMBER_JOINED = "member joined"
    # A member left (LeaveGroup), its session expired, or it did not rejoin / sync in time.
    MEMBER_REMOVED = "member removed"
    # Every member has rejoined (or the rebalance timeout passed) and members remain: a new
    # generation, a leader and a protocol are chosen, and the join responses go out.
    JOIN_COMPLETED = "join phase completed"
    # The join phase ended with no member left: the generation still advances, the group is empty.
    JOIN_COMPLETED_EMPTY = "join phase completed with no members"
    # The leader's SyncGroup delivered the assignment; every member gets its share.
    ASSIGNMENT_RECEIVED = "assignment received"
    # DeleteGroups, or the last committed offset of an empty group expired.
    GROUP_DELETED = "group deleted"


S = GroupState
E = GroupEvent

# (state, event) -> next state. Absent pairs are illegal.
TRANSITIONS: Final[dict[tuple[GroupState, GroupEvent], GroupState]] = {
    (S.EMPTY, E.MEMBER_JOINED): S.PREPARING_REBALANCE,
    (S.EMPTY, E.GROUP_DELETED): S.DEAD,
    (S.PREPARING_REBALANCE, E.MEMBER_JOINED): S.PREPARING_REBALANCE,
    (S.PREPARING_REBALANCE, E.MEMBER_REMOVED): S.PREPARING_REBALANCE,
    (S.PREPARING_REBALANCE, E.JOIN_COMPLETED): S.COMPLETING_REBALANCE,
    (S.PREPARING_REBALANCE, E.JOIN_COMPLETED_EMPTY): S.EMPTY,
    (S.COMPLETING_REBALANCE, E.MEMBER_JOINED): S.PREPARING_REBALANCE,
    (S.COMPLETING_REBALANCE, E.MEMBER_REMOVED): S.PREPARING_REBALANCE,
    (S.COMPLETING_REBALANCE, E.ASSIGNMENT_RECEIVED): S.STABLE,
    (S.STABLE, E.MEMBER_JOINED): S.PREPARING_REBALANCE,
    (S.STABLE, E.MEMBER_REMOVED): S.PREPARING_REBALANCE,
}


class IllegalTransition(AssertionError):
    """The group logic fired an event its state does not allow: a Riel bug, not a client error."""


def transition(state: GroupState, event: GroupEvent) -> GroupState:
    """The state after ``event``; ``IllegalTransition`` if the table has no such move."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"{event.value!r} is not possible in state {state.value}") from None


def parse_state(name: str) -> GroupState | None:
    """A state from its Kafka name, case-insensitively (ListGroups v4 filters compare that way)."""
    lowered = name.lower()
    for state in GroupState:
        if state.value.lower() == lowered:
            return state
    return None
