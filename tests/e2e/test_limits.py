"""Limits on a real ``riel serve``: connection counts (total and per IP), the idle timeout, the frame
deadline (slow-loris), oversized frames, and client byte-rate quotas answered with throttle_time_ms."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import RielServer, ServerFactory
from e2e.helpers import (
    api_versions_v0,
    confluent_consume,
    confluent_produce,
    create_topic,
    make_messages,
    unique_topic,
)


def connect(server: RielServer, source_ip: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source_ip, 0))
    sock.connect((server.host, server.port))
    return sock


def closed_within(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the broker closed ``sock`` (b'' or a reset), or None if it stayed open."""
    started = time.monotonic()
    sock.settimeout(timeout)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return time.monotonic() - started
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - started
    except TimeoutError:
        return None


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def settle(server: RielServer) -> None:
    """Let the broker see the readiness probe's connection close before counting connections."""
    time.sleep(0.3)


def test_connection_limits_refuse_extra_connections_while_existing_ones_work(
    riel_factory: ServerFactory,
) -> None:
    server = riel_factory(extra_args=("--max-connections", "4", "--max-connections-per-ip", "3"))
    settle(server)
    with sockets() as opened:
        for _ in range(3):
            opened.append(connect(server))
            api_versions_v0(opened[-1])
        fourth_from_same_ip = connect(server)
        assert closed_within(fourth_from_same_ip, 5) is not None, "per-IP limit not enforced"
        opened.append(connect(server, "127.0.0.2"))  # another address: the 4th connection in all
        api_versions_v0(opened[-1])
        fifth = connect(server, "127.0.0.3")
        assert closed_within(fifth, 5) is not None, "total limit not enforced"
        for i, sock in enumerate(opened):
            api_versions_v0(sock, correlation_id=10 + i)  # the admitted ones still work
        opened.pop(0).close()
        time.sleep(0.3)
        opened.append(connect(server))  # a freed slot is usable again
        api_versions_v0(opened[-1])
    log = server.log_text()
    assert "max.connections.per.ip" in log and "(max.connections)" in log


def test_idle_connections_are_closed_and_active_ones_are_not(riel_factory: ServerFactory) -> None:
    server = riel_factory(extra_args=("--connections-max-idle-ms", "1000"))
    with sockets() as opened:
        idle, busy = connect(server), connect(server)
        opened += [idle, busy]
        api_versions_v0(idle)
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            api_versions_v0(busy)
            time.sleep(0.2)
        took = closed_within(idle, 3)
        assert took is not None, "idle connection still open"
        api_versions_v0(busy)  # the active one was kept
    assert "connections.max.idle.ms" in server.log_text()


def test_slow_loris_is_cut_while_a_normal_client_keeps_working(riel_factory: ServerFactory) -> None:
    server = riel_factory(extra_args=("--frame-deadline-ms", "1000"), flush="os")
    topic = unique_topic("loris")
    create_topic(server.bootstrap, topic, 1)
    with sockets() as opened:
        stalled, trickle = connect(server), connect(server)
        opened += [stalled, trickle]
        started = time.monotonic()
        stalled.sendall(b"\x00\x00")  # half a size prefix, then nothing
        trickle.sendall(struct.pack(">i", 100))
        stop = threading.Event()

        def drip() -> None:  # a byte every 200 ms: never idle, but the frame never completes in time
            with contextlib.suppress(OSError):
                while not stop.wait(0.2):
                    trickle.send(b"x")

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        try:
            messages = make_messages(200, tag="loris")
            offsets = confluent_produce(server.bootstrap, topic, messages, partition=0)
            got = confluent_consume(server.bootstrap, topic, {0: 0}, {0: offsets[-1][1] + 1})
            assert [r.value for r in got] == [m.value for m in messages]
            assert closed_within(stalled, 5) is not None, "stalled frame not cut"
            assert closed_within(trickle, 5) is not None, "trickled frame not cut"
            assert time.monotonic() - started < 8
        finally:
            stop.set()
            dripper.join(5)
    assert "frame deadline" in server.log_text()


def test_oversized_frame_header_is_cut_at_once(riel_factory: ServerFactory) -> None:
    server = riel_factory(extra_args=("--max-request-bytes", "1048576"))
    with sockets() as opened:
        good, huge = connect(server), connect(server)
        opened += [good, huge]
        huge.sendall(struct.pack(">i", 200 * 1024 * 1024) + b"\x00\x12")
        took = closed_within(huge, 5)
        assert took is not None and took < 2
        api_versions_v0(good)


def _throttled_produce(server: RielServer, topic: str, client_id: str, nbytes: int) -> tuple[float, int]:
    """Produce ``nbytes`` with confluent-kafka as ``client_id``: (seconds taken, max throttle_time_ms
    the broker reported)."""
    throttles: list[int] = []

    def on_throttle(event: Any) -> None:
        throttles.append(int(event.throttle_time * 1000))

    messages = make_messages(nbytes // 1000, value_size=1000, tag=client_id)
    conf = {"client.id": client_id, "throttle_cb": on_throttle, "batch.size": 10_000}
    started = time.monotonic()
    confluent_produce(server.bootstrap, topic, messages, conf=conf, partition=0)
    return time.monotonic() - started, max(throttles, default=0)


def test_produce_and_fetch_quotas_throttle_the_client_to_about_its_rate(riel_factory: ServerFactory) -> None:
    rate = 100_000
    server = riel_factory(
        flush="os",
        extra_args=(
            "--quota", f"slow-writer:producer={rate}",
            "--quota", f"slow-reader:consumer={rate}",
            "--quota-window-size-ms", "100",  # 11 samples of 100 ms: a ~1 s window keeps the test short
        ),
    )  # fmt: skip
    topic = unique_topic("quota")
    create_topic(server.bootstrap, topic, 1)
    total = 400_000
    took, throttle = _throttled_produce(server, topic, "slow-writer", total)
    assert throttle > 0, "no throttle_time_ms reported to the throttled producer"
    # About the quota: the first window's worth goes at once, the rest at the quota.
    assert took >= (total - rate * 1.2) / rate * 0.8, f"{total} B in {took:.2f} s at a {rate} B/s quota"
    assert took < total / rate * 3
    free_took, free_throttle = _throttled_produce(server, topic, "free-writer", total)
    assert free_throttle == 0 and free_took < took

    throttles: list[int] = []
    conf: dict[str, Any] = {
        "client.id": "slow-reader",
        "throttle_cb": lambda e: throttles.append(int(e.throttle_time * 1000)),
    }
    started = time.monotonic()
    got = confluent_consume(server.bootstrap, topic, {0: 0}, {0: 400}, **conf)
    read_took = time.monotonic() - started
    assert len(got) >= 400
    assert max(throttles, default=0) > 0, "no throttle_time_ms reported to the throttled consumer"
    fetched = sum(len(r.value or b"") for r in got)
    assert read_took >= (fetched - rate * 1.2) / rate * 0.7, f"{fetched} B read in {read_took:.2f} s"


@pytest.mark.parametrize("bad", ["nocolon", "x:producer=abc"])
def test_a_bad_quota_flag_is_a_usage_error(bad: str) -> None:
    from click.testing import CliRunner

    from riel.cli.main import serve

    result = CliRunner().invoke(serve, ["--quota", bad, "--no-http"])
    assert result.exit_code == 2
    assert "bad quota" in result.output


def test_limits_from_a_config_file(tmp_path: Path) -> None:
    from riel.cli.main import serve

    config = tmp_path / "riel.toml"
    config.write_text(
        'max_connections = 10\nframe-deadline-ms = 500\nquota = ["app:producer=100", "other:consumer=5"]\n'
    )
    ctx = serve.make_context("serve", ["--config", str(config)])
    assert ctx.params["max_connections"] == 10
    assert ctx.params["frame_deadline_ms"] == 500
    assert ctx.params["quota_specs"] == ("app:producer=100", "other:consumer=5")
