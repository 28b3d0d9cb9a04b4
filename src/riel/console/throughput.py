"""Samples the broker's traffic counters once a second for the overview's throughput graph.

The sampler starts lazily with the first request that asks for it and stops by itself after
``IDLE_STOP_S`` without one, so a broker nobody looks at does no work for the console. It keeps the
last ``HISTORY`` one-second rates (bytes and messages in and out, summed over topics) in memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

from riel.broker.stats import BrokerStats

HISTORY: Final = 300
INTERVAL_S: Final = 1.0
IDLE_STOP_S: Final = 120.0


@dataclass(frozen=True, slots=True)
class Totals:
    bytes_in: int
    messages_in: int
    bytes_out: int
    messages_out: int


@dataclass(frozen=True, slots=True)
class Rate:
    """Per-second rates over the interval that ended at ``time`` (seconds since the epoch)."""

    time: float
    bytes_in: float
    messages_in: float
    bytes_out: float
    messages_out: float

    def as_json(self) -> dict[str, float]:
        return {
            "time": round(self.time, 3),
            "bytes_in": round(self.bytes_in, 1),
            "messages_in": round(self.messages_in, 1),
            "bytes_out": round(self.bytes_out, 1),
            "messages_out": round(self.messages_out, 1),
        }


def totals(stats: BrokerStats) -> Totals:
    bytes_in = messages_in = bytes_out = messages_out = 0
    for traffic in stats.topics.values():
        bytes_in += traffic.bytes_in
        messages_in += traffic.messages_in
        bytes_out += traffic.bytes_out
        messages_out += traffic.messages_out
    return Totals(bytes_in, messages_in, bytes_out, messages_out)


class ThroughputSampler:
    def __init__(self, stats: BrokerStats) -> None:
        self._stats = stats
        self.rates: deque[Rate] = deque(maxlen=HISTORY)
        self._task: asyncio.Task[None] | None = None
        self._last_wanted = 0.0

    def history(self) -> list[Rate]:
        """The rates so far; (re)starts sampling if it is not running."""
        self._last_wanted = time.monotonic()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="console-throughput")
        return list(self.rates)

    async def _run(self) -> None:
        previous = totals(self._stats)
        previous_at = time.monotonic()
        while time.monotonic() - self._last_wanted < IDLE_STOP_S:
            await asyncio.sleep(INTERVAL_S)
            now = time.monotonic()
            current = totals(self._stats)
            elapsed = max(now - previous_at, 1e-3)
            self.rates.append(
                Rate(
                    time.time(),
                    max(0, current.bytes_in - previous.bytes_in) / elapsed,
                    max(0, current.messages_in - previous.messages_in) / elapsed,
                    max(0, current.bytes_out - previous.bytes_out) / elapsed,
                    max(0, current.messages_out - previous.messages_out) / elapsed,
                )
            )
            previous, previous_at = current, now

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
