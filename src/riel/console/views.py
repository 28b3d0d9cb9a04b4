"""What the console's pages show, read from the running server at request time.

Everything here runs on the broker's event loop and only reads in-memory state (topic catalogue,
partition offsets and sizes, group coordinator), so a page load costs microseconds per partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from riel.broker.stats import TopicTraffic
from riel.console.integrity import APPEND_ONLY
from riel.console.lag import GroupPartitionLag, group_lags, total_lag_by_group
from riel.coordinator.consumer_protocol import (
    CONSUMER_PROTOCOL_TYPE,
    assigned_partitions,
    subscribed_topics,
)
from riel.server.app import RielServer


@dataclass(frozen=True, slots=True)
class PartitionView:
    partition: int
    log_start_offset: int
    high_watermark: int
    log_end_offset: int
    size_bytes: int
    offline: bool = False

    @property
    def messages(self) -> int:
        """Offsets in the log (compaction and transaction markers make the real count smaller)."""
        return max(0, self.high_watermark - self.log_start_offset)

    def as_json(self) -> dict[str, object]:
        return {
            "partition": self.partition,
            "log_start_offset": self.log_start_offset,
            "high_watermark": self.high_watermark,
            "log_end_offset": self.log_end_offset,
            "size_bytes": self.size_bytes,
            "offline": self.offline,
        }


@dataclass(frozen=True, slots=True)
class TopicView:
    name: str
    partitions: list[PartitionView]
    configs: dict[str, str]  # effective
    explicit: frozenset[str]  # the names set on the topic itself
    traffic: TopicTraffic

    @property
    def append_only(self) -> bool:
        return self.configs.get(APPEND_ONLY) == "true"

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)

    @property
    def size_bytes(self) -> int:
        return sum(p.size_bytes for p in self.partitions)

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "append_only": self.append_only,
            "messages": self.messages,
            "size_bytes": self.size_bytes,
            "partitions": [p.as_json() for p in self.partitions],
            "configs": self.configs,
            "explicit_configs": sorted(self.explicit),
            "bytes_in": self.traffic.bytes_in,
            "messages_in": self.traffic.messages_in,
            "bytes_out": self.traffic.bytes_out,
            "messages_out": self.traffic.messages_out,
        }


def _traffic(server: RielServer, topic: str) -> TopicTraffic:
    try:
        found = server.stats.topics.get(topic)
    except AssertionError:  # not started
        found = None
    return found if found is not None else TopicTraffic()


def topic_view(server: RielServer, name: str) -> TopicView | None:
    manager = server.log_manager
    info = manager.topics().get(name)
    if info is None:
        return None
    partitions = []
    for i in range(info.partitions):
        plog = manager.partition(name, i)
        if plog is None:
            partitions.append(PartitionView(i, 0, 0, 0, 0, offline=True))
            continue
        partitions.append(
            PartitionView(
                i,
                plog.log_start_offset,
                plog.high_watermark,
                plog.log_end_offset,
                plog.size_bytes(),
                offline=plog.offline,
            )
        )
    return TopicView(
        name,
        partitions,
        manager.effective_config(name),
        frozenset(info.configs),
        _traffic(server, name),
    )


def all_topics(server: RielServer) -> list[TopicView]:
    views = (topic_view(server, name) for name in sorted(server.log_manager.topics()))
    return [v for v in views if v is not None]


@dataclass(frozen=True, slots=True)
class ConnectionView:
    peer: str


def connections(server: RielServer) -> list[ConnectionView]:
    return sorted((ConnectionView(conn.peer) for conn in server.connections), key=lambda c: c.peer)


@dataclass(frozen=True, slots=True)
class GroupSummary:
    group: str
    state: str
    protocol_type: str
    members: int
    total_lag: int
    partitions: int


def group_summaries(server: RielServer) -> list[GroupSummary]:
    driver = server.groups
    rows = group_lags(server)
    lags = total_lag_by_group(rows)
    partitions: dict[str, int] = {}
    for row in rows:
        partitions[row.group] = partitions.get(row.group, 0) + 1
    known = {g.group_id: g for g in driver.list_groups()}
    out = []
    for group_id in sorted(set(known) | set(lags)):
        overview = known.get(group_id)
        description = driver.describe_group(group_id)
        out.append(
            GroupSummary(
                group_id,
                overview.state.value if overview is not None else "Empty",
                overview.protocol_type if overview is not None else "",
                len(description.members) if description is not None else 0,
                lags.get(group_id, 0),
                partitions.get(group_id, 0),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class MemberView:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    subscribed: list[str] | None  # None: not the consumer protocol, or not decodable
    assigned: list[tuple[str, int]] | None

    def assignment_text(self) -> str:
        if self.assigned is None:
            return "(not a consumer-protocol assignment)"
        by_topic: dict[str, list[int]] = {}
        for topic, partition in self.assigned:
            by_topic.setdefault(topic, []).append(partition)
        return ", ".join(f"{t} [{', '.join(map(str, sorted(ps)))}]" for t, ps in sorted(by_topic.items()))

    def as_json(self) -> dict[str, object]:
        return {
            "member_id": self.member_id,
            "group_instance_id": self.group_instance_id,
            "client_id": self.client_id,
            "client_host": self.client_host,
            "subscribed": self.subscribed,
            "assigned": [{"topic": t, "partition": p} for t, p in self.assigned or []],
        }


@dataclass(slots=True)
class GroupView:
    group: str
    state: str
    protocol_type: str
    protocol_name: str
    members: list[MemberView] = field(default_factory=list)
    lags: list[GroupPartitionLag] = field(default_factory=list)

    @property
    def total_lag(self) -> int:
        return sum(row.lag or 0 for row in self.lags)

    def as_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "state": self.state,
            "protocol_type": self.protocol_type,
            "protocol_name": self.protocol_name,
            "total_lag": self.total_lag,
            "members": [m.as_json() for m in self.members],
            "partitions": [
                {
                    "topic": r.topic,
                    "partition": r.partition,
                    "committed": r.committed,
                    "end_offset": r.end_offset,
                    "lag": r.lag,
                    "member_id": r.member_id,
                    "client_id": r.client_id,
                }
                for r in self.lags
            ],
        }


def group_view(server: RielServer, group: str) -> GroupView | None:
    description = server.groups.describe_group(group)
    lags = group_lags(server, group)
    if description is None and not lags:
        return None
    if description is None:
        return GroupView(group, "Empty", "", "", [], lags)
    consumer = description.protocol_type == CONSUMER_PROTOCOL_TYPE
    members = []
    for m in description.members:
        subscribed = subscribed_topics(m.metadata) if consumer and m.metadata else None
        assigned = assigned_partitions(m.assignment) if consumer else None
        members.append(
            MemberView(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                sorted(subscribed) if subscribed is not None else None,
                sorted(assigned) if assigned is not None else None,
            )
        )
    return GroupView(
        group,
        description.state.value,
        description.protocol_type,
        description.protocol_name,
        sorted(members, key=lambda m: m.member_id),
        lags,
    )
