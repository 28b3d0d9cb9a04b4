"""``/metrics`` (Prometheus text format) and ``/health``.

Every value is read at scrape time from the running server (``BrokerStats`` counters, the partition
logs, the group coordinator) by a custom collector registered in a registry of this app's own (several
servers can live in one process, e.g. in tests): no background thread, and nothing on the broker's hot
path beyond the counters ``BrokerStats`` keeps anyway. The endpoints are ``async`` so that they run on
the broker's event loop, the only thread that touches that state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from riel.broker.stats import LATENCY_BUCKETS_S, TopicTraffic
from riel.console.lag import group_lags
from riel.server.app import RielServer

_NO_TRAFFIC = TopicTraffic()


def riel_version() -> str:
    try:
        return version("riel")
    except PackageNotFoundError:
        return "unknown"


class BrokerCollector(Collector):
    """Turns the server's state into metric families, afresh at every scrape."""

    def __init__(self, server: RielServer, started: float) -> None:
        self._server = server
        self._started = started  # time.monotonic() when the app was built (the server's start)
        self._version = riel_version()

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily("riel_build", "Riel version.", value={"version": self._version})
        yield GaugeMetricFamily(
            "riel_uptime_seconds", "Seconds since the server started.", value=time.monotonic() - self._started
        )
        yield from self._traffic()
        yield from self._latency()
        yield from self._connections()
        yield from self._partitions()
        yield from self._groups()

    def _traffic(self) -> Iterator[Metric]:
        bytes_in = CounterMetricFamily(
            "riel_topic_bytes_in", "Record batch bytes appended by Produce.", labels=["topic"]
        )
        messages_in = CounterMetricFamily(
            "riel_topic_messages_in", "Records (offsets) appended by Produce.", labels=["topic"]
        )
        bytes_out = CounterMetricFamily(
            "riel_topic_bytes_out", "Record batch bytes served by Fetch.", labels=["topic"]
        )
        messages_out = CounterMetricFamily(
            "riel_topic_messages_out",
            "Offsets served by Fetch from the fetch offset to the end of the batches returned.",
            labels=["topic"],
        )
        traffic = self._server.stats.topics
        # Existing topics only: a deleted topic's counters are not reported (they resume if it is
        # created again, which keeps them monotonic).
        for topic in sorted(self._server.log_manager.topics()):
            counters = traffic.get(topic, _NO_TRAFFIC)
            bytes_in.add_metric([topic], counters.bytes_in)
            messages_in.add_metric([topic], counters.messages_in)
            bytes_out.add_metric([topic], counters.bytes_out)
            messages_out.add_metric([topic], counters.messages_out)
        yield from (bytes_in, messages_in, bytes_out, messages_out)

    def _latency(self) -> Iterator[Metric]:
        histogram = HistogramMetricFamily(
            "riel_request_duration_seconds",
            "Time from a request's dispatch to its response (long-polling fetches included), per API.",
            labels=["api"],
        )
        bounds = [repr(float(b)) for b in LATENCY_BUCKETS_S] + ["+Inf"]
        for api, latency in sorted(self._server.stats.latency.items()):
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip(bounds, latency.counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            histogram.add_metric([api], buckets, latency.total_s)
        yield histogram

    def _connections(self) -> Iterator[Metric]:
        stats = self._server.stats
        yield GaugeMetricFamily(
            "riel_connections", "Open Kafka protocol connections.", value=len(self._server.connections)
        )
        yield CounterMetricFamily(
            "riel_connections_opened", "Kafka protocol connections accepted.", value=stats.connections_opened
        )
        yield CounterMetricFamily(
            "riel_connections_closed", "Kafka protocol connections closed.", value=stats.connections_closed
        )

    def _partitions(self) -> Iterator[Metric]:
        labels = ["topic", "partition"]
        size = GaugeMetricFamily(
            "riel_partition_size_bytes", "Bytes in the partition's segments.", labels=labels
        )
        segments = GaugeMetricFamily("riel_partition_segments", "Segments of the partition.", labels=labels)
        start = GaugeMetricFamily(
            "riel_partition_log_start_offset", "First offset still in the log.", labels=labels
        )
        end = GaugeMetricFamily(
            "riel_partition_log_end_offset", "Offset the next record gets.", labels=labels
        )
        high_watermark = GaugeMetricFamily(
            "riel_partition_high_watermark", "End of what consumers can read.", labels=labels
        )
        offline = GaugeMetricFamily(
            "riel_partition_offline",
            "1 if a write or fsync failed and the log refuses appends.",
            labels=labels,
        )
        log_manager = self._server.log_manager
        topics = log_manager.topics()
        partition_count = 0
        for name in sorted(topics):
            for index in range(topics[name].partitions):
                plog = log_manager.partition(name, index)
                if plog is None:
                    continue
                partition_count += 1
                key = [name, str(index)]
                size.add_metric(key, plog.size_bytes())
                segments.add_metric(key, len(plog.segment_base_offsets()))
                start.add_metric(key, plog.log_start_offset)
                end.add_metric(key, plog.log_end_offset)
                high_watermark.add_metric(key, plog.high_watermark)
                offline.add_metric(key, 1 if plog.offline else 0)
        yield GaugeMetricFamily("riel_topics", "Topics.", value=len(topics))
        yield GaugeMetricFamily("riel_partitions", "Partitions.", value=partition_count)
        yield from (size, segments, start, end, high_watermark, offline)

    def _groups(self) -> Iterator[Metric]:
        labels = ["group", "topic", "partition"]
        committed = GaugeMetricFamily(
            "riel_consumer_group_committed_offset", "The group's committed offset.", labels=labels
        )
        lag = GaugeMetricFamily(
            "riel_consumer_group_lag", "High watermark minus the group's committed offset.", labels=labels
        )
        by_state: dict[str, int] = {}
        for overview in self._server.groups.list_groups():
            state = overview.state.name.lower()
            by_state[state] = by_state.get(state, 0) + 1
        groups = GaugeMetricFamily("riel_consumer_groups", "Consumer groups by state.", labels=["state"])
        for state, count in sorted(by_state.items()):
            groups.add_metric([state], count)
        for row in group_lags(self._server):
            key = [row.group, row.topic, str(row.partition)]
            if row.committed is not None:
                committed.add_metric(key, row.committed)
            if row.lag is not None:
                lag.add_metric(key, row.lag)
        yield from (groups, committed, lag)


def health_report(server: RielServer, uptime_s: float) -> tuple[dict[str, object], bool]:
    """The ``/health`` body and whether the broker is healthy (no partition offline)."""
    log_manager = server.log_manager
    topics = log_manager.topics()
    partitions = 0
    offline: list[str] = []
    for name in sorted(topics):
        for index in range(topics[name].partitions):
            plog = log_manager.partition(name, index)
            if plog is None:
                continue
            partitions += 1
            if plog.offline:
                offline.append(f"{name}-{index}")
    healthy = not offline
    return {
        "status": "ok" if healthy else "degraded",
        "version": riel_version(),
        "uptime_seconds": round(uptime_s, 3),
        "topics": len(topics),
        "partitions": partitions,
        "offline_partitions": offline,
        "connections": len(server.connections),
    }, healthy


def build_registry(server: RielServer, started: float | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerCollector(server, time.monotonic() if started is None else started))
    return registry


def routes(server: RielServer) -> list[BaseRoute]:
    started = time.monotonic()
    registry = build_registry(server, started)

    # async: run on the event loop, which owns the state read here (sync endpoints go to a thread pool).
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def health(request: Request) -> JSONResponse:
        body, healthy = health_report(server, time.monotonic() - started)
        return JSONResponse(body, status_code=200 if healthy else 503)

    return [Route("/metrics", metrics), Route("/health", health)]
