"""Traffic and latency counters the broker keeps for operators (``/metrics``, the web console).

Plain integers and floats updated on the event loop thread: a dictionary lookup and an addition per
request, nothing more on the hot path. The console layer turns them into Prometheus metrics at scrape
time and samples them for its throughput graph; the broker itself does not depend on any metrics
library.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Final

# Upper bounds (seconds) of the request latency histogram buckets; the last bucket is +Inf.
LATENCY_BUCKETS_S: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@dataclass(slots=True)
class TopicTraffic:
    bytes_in: int = 0
    messages_in: int = 0
    bytes_out: int = 0
    messages_out: int = 0


@dataclass(slots=True)
class ApiLatency:
    """A histogram: ``counts[i]`` requests took at most ``LATENCY_BUCKETS_S[i]`` (not cumulative;
    the last slot counts the slower ones)."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total_s: float = 0.0
    count: int = 0


@dataclass
class BrokerStats:
    topics: dict[str, TopicTraffic] = field(default_factory=dict)
    latency: dict[str, ApiLatency] = field(default_factory=dict)  # by API name, e.g. "Produce"
    connections_opened: int = 0
    connections_closed: int = 0

    def topic(self, name: str) -> TopicTraffic:
        traffic = self.topics.get(name)
        if traffic is None:
            traffic = self.topics[name] = TopicTraffic()
        return traffic

    def record_produced(self, topic: str, size: int, messages: int) -> None:
        traffic = self.topic(topic)
        traffic.bytes_in += size
        traffic.messages_in += messages

    def record_fetched(self, topic: str, size: int, messages: int) -> None:
        traffic = self.topic(topic)
        traffic.bytes_out += size
        traffic.messages_out += messages

    def record_request(self, api: str, seconds: float) -> None:
        histogram = self.latency.get(api)
        if histogram is None:
            histogram = self.latency[api] = ApiLatency()
        histogram.counts[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        histogram.total_s += seconds
        histogram.count += 1

    def forget_topic(self, name: str) -> None:
        self.topics.pop(name, None)
