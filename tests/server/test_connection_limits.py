"""Connection counting and the rate-limited cut log (the socket side is tested in e2e/test_limits.py)."""

from __future__ import annotations

import logging

import pytest

from riel.config import Limits
from riel.server.limits import ConnectionLimits, CutLog


def test_connections_are_counted_in_all_and_per_ip() -> None:
    limits = ConnectionLimits(Limits(max_connections=3, max_connections_per_ip=2))
    assert limits.admit("10.0.0.1") is None
    assert limits.admit("10.0.0.1") is None
    refusal = limits.admit("10.0.0.1")
    assert refusal is not None and "max.connections.per.ip" in refusal
    assert limits.admit("10.0.0.2") is None
    refusal = limits.admit("10.0.0.3")
    assert refusal is not None and "(max.connections)" in refusal
    assert limits.total == 3  # refused connections are not counted
    limits.release("10.0.0.1")
    assert limits.connections_from("10.0.0.1") == 1
    assert limits.admit("10.0.0.3") is None
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        limits.release(ip)
    assert limits.total == 0 and limits.connections_from("10.0.0.1") == 0


def test_no_limits_admit_everyone() -> None:
    limits = ConnectionLimits(Limits())
    assert all(limits.admit("127.0.0.1") is None for _ in range(10_000))


def test_the_cut_log_is_rate_limited_and_counts_what_it_skipped(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    cut_log = CutLog(per_second=3, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="riel.server.connection"):
        for i in range(10):
            cut_log.cut(f"peer{i}", "idle", "idle")
        now[0] += 1
        cut_log.cut("late", "frame deadline", "frame-deadline")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert lines[-1] == "closing connection from late: frame deadline (and 7 more not logged)"
    assert cut_log.cuts == {"idle": 10, "frame-deadline": 1}
