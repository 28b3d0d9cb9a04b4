"""Consumer-group lag: how far each group's committed offsets are behind the end of the log.

Read at call time from the running server (the group coordinator's committed offsets and the partition
logs' high watermarks); nothing is cached or sampled in the background. Used by ``/metrics``
(``riel_consumer_group_lag``) and by the web console.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from riel.errors import KafkaApiError
from riel.server.app import RielServer


@dataclass(frozen=True, slots=True)
class GroupPartitionLag:
    """One partition of one group.

    ``committed`` is None for a partition a member owns but has not committed yet; ``end_offset`` (the
    high watermark: what consumers can read) is None if the partition no longer exists; ``lag`` is
    ``end_offset - committed`` (never negative) and None if either side is unknown. ``member_id`` and
    ``client_id`` name the member that owns the partition now, if any.
    """

    group: str
    topic: str
    partition: int
    committed: int | None
    end_offset: int | None
    lag: int | None
    member_id: str | None = None
    client_id: str | None = None


def group_lags(server: RielServer, group: str | None = None) -> list[GroupPartitionLag]:
    """Every known group's (or just ``group``'s) partitions, sorted by group, topic, partition.

    Covers each partition a group has committed an offset for or that one of its members owns. An
    unknown ``group`` gives an empty list.
    """
    driver = server.groups
    if group is not None:
        group_ids: Iterable[str] = [group]
    else:
        group_ids = sorted(
            {g.group_id for g in driver.list_groups()} | set(driver.coordinator.offsets.groups())
        )
    rows: list[GroupPartitionLag] = []
    for group_id in group_ids:
        try:
            partitions = driver.group_lag(group_id)
        except KafkaApiError:
            continue  # deleted between the listing and now, or never existed
        rows.extend(
            GroupPartitionLag(
                group_id,
                p.topic,
                p.partition,
                p.committed_offset,
                p.high_watermark,
                p.lag,
                p.member_id,
                p.client_id,
            )
            for p in partitions
        )
    return rows


def total_lag_by_group(rows: Iterable[GroupPartitionLag]) -> dict[str, int]:
    """Sum of the known lags per group (partitions with an unknown lag count as 0)."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.group] = totals.get(row.group, 0) + (row.lag or 0)
    return totals
