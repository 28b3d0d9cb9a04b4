"""Consumer groups inside one process: who reads which partition, and handing partitions over.

With an embedded log every member of a group lives in the process that owns the data directory, so
the group needs no protocol: members join and leave by calling in, and the assignment is computed on
the spot. What a Kafka group coordinator promises still holds here:

- each partition of the subscribed topics is read by at most one member at a time;
- a rebalance is cooperative (KIP-429 style): a member keeps reading the partitions it keeps; a
  partition moves only after its old owner released it (committing first under auto-commit), so two
  members never read it at once;
- a member that stops polling for longer than ``max_poll_interval_ms`` is removed and its partitions
  go to the others (from the committed offsets), like Kafka's max.poll.interval.ms.

The assignment is Kafka's range assignor per topic over members sorted by id. Pure state: the caller
serialises access (the embedded log's lock) and passes the time in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from riel.client.api import TopicPartition

DEFAULT_MAX_POLL_INTERVAL_MS = 300_000  # Kafka's max.poll.interval.ms


@dataclass(eq=False)
class Member:
    """A consumer's membership. ``polls`` is bumped by the consumer on every message it hands out (an
    integer add, cheap enough for the per-message path); the group notices liveness from it changing.
    ``wake`` makes the consumer do its housekeeping on its next poll (partitions to give up)."""

    member_id: str
    topics: frozenset[str]
    last_poll_ms: int
    owned: set[TopicPartition] = field(default_factory=set)
    polls: int = 0
    seen_polls: int = 0
    waiting: bool = False  # blocked inside poll() for messages: alive, as in Kafka
    wake: Callable[[], None] | None = None

    def notify(self) -> None:
        if self.wake is not None:
            self.wake()


def range_assign(members: list[Member], partitions_of: dict[str, int]) -> dict[str, set[TopicPartition]]:
    """Kafka's RangeAssignor: per topic, consecutive partition ranges to members sorted by id, the first
    ``partitions % members`` members taking one extra."""
    result: dict[str, set[TopicPartition]] = {m.member_id: set() for m in members}
    for topic in sorted(partitions_of):
        subscribers = sorted(m.member_id for m in members if topic in m.topics)
        if not subscribers:
            continue
        count = partitions_of[topic]
        per_member, extra = divmod(count, len(subscribers))
        start = 0
        for i, member_id in enumerate(subscribers):
            take = per_member + (1 if i < extra else 0)
            result[member_id].update((topic, p) for p in range(start, start + take))
            start += take
    return result


class EmbeddedGroup:
    """One group's members, target assignment and current partition owners."""

    def __init__(self, name: str, max_poll_interval_ms: int = DEFAULT_MAX_POLL_INTERVAL_MS) -> None:
        self.name = name
        self.max_poll_interval_ms = max_poll_interval_ms
        self.members: dict[str, Member] = {}
        self.generation = 0
        self.target: dict[str, set[TopicPartition]] = {}
        self.owners: dict[TopicPartition, str] = {}
        self._next_member = 0

    def join(
        self,
        topics: Iterable[str],
        now_ms: int,
        partitions_of: dict[str, int],
        wake: Callable[[], None] | None = None,
    ) -> Member:
        self._next_member += 1
        member = Member(f"{self.name}-{self._next_member:06d}", frozenset(topics), now_ms, wake=wake)
        self.members[member.member_id] = member
        self.rebalance(partitions_of)
        return member

    def leave(self, member: Member, partitions_of: dict[str, int]) -> None:
        """Remove the member and free its partitions (the caller committed what it wanted first)."""
        for tp in member.owned:
            if self.owners.get(tp) == member.member_id:
                del self.owners[tp]
        member.owned.clear()
        if self.members.pop(member.member_id, None) is not None:
            member.notify()
            self.rebalance(partitions_of)

    def rebalance(self, partitions_of: dict[str, int]) -> None:
        self.target = range_assign(list(self.members.values()), partitions_of)
        self.generation += 1
        for member in self.members.values():
            if member.owned - self.target.get(member.member_id, set()):
                member.notify()  # it has partitions to give up: no need to wait for its buffer to run dry

    def evict_stale(self, now_ms: int, partitions_of: dict[str, int]) -> list[Member]:
        """Remove members that handed out nothing and did not poll for longer than
        max_poll_interval_ms; returns them."""
        for member in self.members.values():
            if member.polls != member.seen_polls:
                member.seen_polls = member.polls
                member.last_poll_ms = max(member.last_poll_ms, now_ms)
        stale = [
            m
            for m in self.members.values()
            if not m.waiting and now_ms - m.last_poll_ms > self.max_poll_interval_ms
        ]
        for member in stale:
            self.leave(member, partitions_of)
        return stale

    def revoked(self, member: Member) -> set[TopicPartition]:
        """Partitions the member owns but should give up."""
        return member.owned - self.target.get(member.member_id, set())

    def release(self, member: Member, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            member.owned.discard(tp)
            if self.owners.get(tp) == member.member_id:
                del self.owners[tp]

    def claim(self, member: Member) -> set[TopicPartition]:
        """Take the target partitions nobody owns any more; returns the newly owned ones."""
        gained = set()
        for tp in self.target.get(member.member_id, set()) - member.owned:
            if tp not in self.owners:
                self.owners[tp] = member.member_id
                member.owned.add(tp)
                gained.add(tp)
        return gained

    def is_member(self, member: Member) -> bool:
        return self.members.get(member.member_id) is member
