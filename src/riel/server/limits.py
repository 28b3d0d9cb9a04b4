"""Connection limits: how many connections (in all and per client IP), how long one may sit idle, and
how long a frame may take to arrive once it has started (slow-loris).

Kafka's names: ``max.connections``, ``max.connections.per.ip`` (a connection over either is closed as
soon as it is accepted), ``connections.max.idle.ms``. The frame deadline is Riel's own: a peer that sends
the first bytes of a frame and then stalls (or trickles) holds a buffer and a descriptor for nothing.

Each connection has one ``Watchdog``: a single ``loop.call_later`` timer, re-armed when it fires (not on
every frame), that checks both deadlines against timestamps the connection updates as bytes arrive.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import resource
import time
from collections.abc import Callable
from typing import Final

from riel.config import Limits

log = logging.getLogger("riel.server.connection")

# At most this many "closing connection" lines per second; the rest are counted into the next line.
CUT_LOG_PER_SECOND: Final = 20
# A watchdog never sleeps longer than this (so a changed activity time is seen reasonably soon).
MAX_WATCHDOG_SLEEP_S: Final = 60.0
MIN_WATCHDOG_SLEEP_S: Final = 0.01


class CutLog:
    """Logs each connection the broker cuts, once, with the reason; rate-limited so that a flood of
    refused or hostile connections cannot flood the log."""

    def __init__(
        self, per_second: int = CUT_LOG_PER_SECOND, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_second = per_second
        self._clock = clock
        self._second = -1
        self._logged = 0
        self._suppressed = 0
        self.cuts: collections.Counter[str] = collections.Counter()

    def cut(self, peer: str, reason: str, kind: str = "error", level: int = logging.WARNING) -> None:
        self.cuts[kind] += 1
        second = int(self._clock())
        if second != self._second:
            self._second, self._logged = second, 0
        if self._logged >= self._per_second:
            self._suppressed += 1
            return
        self._logged += 1
        if self._suppressed:
            suppressed, self._suppressed = self._suppressed, 0
            log.log(
                level, "closing connection from %s: %s (and %d more not logged)", peer, reason, suppressed
            )
        else:
            log.log(level, "closing connection from %s: %s", peer, reason)


class ConnectionLimits:
    """The broker-wide connection counts against ``max.connections`` and ``max.connections.per.ip``."""

    def __init__(self, limits: Limits) -> None:
        self.config = limits
        self.total = 0
        self._per_ip: dict[str, int] = {}
        self.cut_log = CutLog()

    def admit(self, ip: str) -> str | None:
        """Count a new connection from ``ip``; or the reason it is refused (then nothing is counted)."""
        config = self.config
        if config.max_connections is not None and self.total >= config.max_connections:
            return f"too many connections: the broker's limit is {config.max_connections} (max.connections)"
        held = self._per_ip.get(ip, 0)
        if config.max_connections_per_ip is not None and held >= config.max_connections_per_ip:
            return (
                f"too many connections from {ip}: the limit is {config.max_connections_per_ip} "
                "(max.connections.per.ip)"
            )
        self.total += 1
        self._per_ip[ip] = held + 1
        return None

    def release(self, ip: str) -> None:
        self.total -= 1
        left = self._per_ip.get(ip, 1) - 1
        if left > 0:
            self._per_ip[ip] = left
        else:
            self._per_ip.pop(ip, None)

    def connections_from(self, ip: str) -> int:
        return self._per_ip.get(ip, 0)


class Watchdog:
    """The idle timeout and the frame deadline of one connection, on one timer.

    The connection calls ``received`` as bytes arrive (saying whether a frame is left incomplete and
    whether one completed), ``active`` when it sends, and ``suspend_frame_clock`` when it resumes reading
    (the peer cannot finish a frame we do not read). ``busy()`` true (requests queued or being handled)
    counts as activity: a long-polling client is not idle; ``paused()`` true (we are not reading) stops
    the frame clock.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        idle_ms: int,
        frame_deadline_ms: int,
        expire: Callable[[str, str], None],
        busy: Callable[[], bool],
        paused: Callable[[], bool],
    ) -> None:
        self._loop = loop
        self._idle_s = idle_ms / 1000 if idle_ms > 0 else None
        self._deadline_s = frame_deadline_ms / 1000 if frame_deadline_ms > 0 else None
        self._expire = expire
        self._busy = busy
        self._paused = paused
        self.last_activity = loop.time()
        self.frame_started: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._stopped = False

    def start(self) -> None:
        self._arm(self.last_activity)

    def stop(self) -> None:
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def received(self, partial_frame: bool, completed_frame: bool) -> None:
        now = self._loop.time()
        self.last_activity = now
        if not partial_frame:
            self.frame_started = None
        elif completed_frame or self.frame_started is None:
            self.frame_started = now
            # Re-armed only when the timer would fire after this frame's deadline: at most once per
            # timer period, however many frames arrive.
            handle = self._handle
            if self._deadline_s is not None and handle is not None and handle.when() > now + self._deadline_s:
                handle.cancel()
                self._arm(now)

    def active(self) -> None:
        self.last_activity = self._loop.time()

    def suspend_frame_clock(self) -> None:
        """Reading was paused then resumed: the frame in progress gets its full deadline again."""
        if self.frame_started is not None:
            self.frame_started = self._loop.time()

    def _arm(self, now: float) -> None:
        if self._stopped:
            return
        due = [now + MAX_WATCHDOG_SLEEP_S]
        if self._idle_s is not None:
            due.append(self.last_activity + self._idle_s)
        if self._deadline_s is not None and self.frame_started is not None:
            due.append(self.frame_started + self._deadline_s)
        delay = max(MIN_WATCHDOG_SLEEP_S, min(due) - now)
        self._handle = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if self._stopped:
            return
        now = self._loop.time()
        if self._busy():
            self.last_activity = now
        if self._paused():
            self.suspend_frame_clock()
        elif (
            self._deadline_s is not None
            and self.frame_started is not None
            and now - self.frame_started >= self._deadline_s
        ):
            self._expire(
                "frame-deadline",
                f"a frame still incomplete {self._deadline_s * 1000:.0f} ms after it began (frame deadline)",
            )
            return
        if self._idle_s is not None and now - self.last_activity >= self._idle_s:
            self._expire("idle", f"idle for {self._idle_s * 1000:.0f} ms (connections.max.idle.ms)")
            return
        self._arm(now)


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard limit (every connection holds a descriptor);
    the (soft, hard) limits now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
    return soft, hard
