"""Client byte-rate quotas, computed as Kafka does (KIP-13, KIP-219); pure, with time passed in.

A client id's produced bytes (and fetched bytes) are counted in ``quota.window.num`` samples of
``quota.window.size`` each. The rate is their sum over the time they span, which counts as at least
``window.num - 1`` full samples (so a new client cannot claim a huge rate from one burst in its first
millisecond). Over the quota, the throttle time is the delay that would bring the rate back down to it:
``(rate - quota) / quota * window``, at most the whole window. The broker answers at once with
``throttle_time_ms`` set and then stops reading from that connection for that long (KIP-219).

Kafka answers a throttled fetch with no records and un-counts them; Riel answers with what it read and
counts it. The average rate enforced is the same, and a consumer whose next batch alone exceeds the
window's allowance is slowed down rather than starved.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Final

from riel.config import Limits

# Clients not seen for this many windows are forgotten (Kafka expires idle quota sensors too).
_FORGET_AFTER_WINDOWS: Final = 4
_SWEEP_EVERY: Final = 1024


@dataclass
class SampledRate:
    """Bytes per second over ``samples`` windows of ``window_ms`` (Kafka's ``Rate`` over a
    ``SampledStat``)."""

    window_ms: int
    samples: int
    _windows: collections.deque[list[int]] = field(default_factory=collections.deque)  # [start_ms, bytes]

    def record(self, nbytes: int, now_ms: int) -> None:
        self._purge(now_ms)
        if not self._windows or now_ms - self._windows[-1][0] >= self.window_ms:
            self._windows.append([now_ms, 0])
        self._windows[-1][1] += nbytes

    def _purge(self, now_ms: int) -> None:
        expire_ms = self.samples * self.window_ms
        while self._windows and now_ms - self._windows[0][0] >= expire_ms:
            self._windows.popleft()
        while len(self._windows) > self.samples:
            self._windows.popleft()

    def span_ms(self, now_ms: int) -> int:
        """The time the rate is taken over: the samples' span, counted as at least samples-1 windows."""
        self._purge(now_ms)
        elapsed = now_ms - self._windows[0][0] if self._windows else 0
        full = elapsed // self.window_ms
        if full < self.samples - 1:
            elapsed += (self.samples - 1 - full) * self.window_ms
        return max(elapsed, 1)

    def rate(self, now_ms: int) -> float:
        span = self.span_ms(now_ms)
        return sum(w[1] for w in self._windows) * 1000.0 / span

    def last_ms(self) -> int | None:
        return self._windows[-1][0] if self._windows else None


def throttle_time_ms(rate: SampledRate, quota: int, now_ms: int) -> int:
    """How long the client must wait for its rate to fall back to ``quota`` bytes/s (0 if under)."""
    observed = rate.rate(now_ms)
    if observed <= quota:
        return 0
    span = rate.span_ms(now_ms)
    throttle = round((observed - quota) / quota * span)
    return min(throttle, rate.window_ms * rate.samples)


class ClientQuotas:
    """Per-client-id produce and fetch rates against the configured quotas. Clients without a quota
    cost nothing: they are not tracked."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._rates: dict[tuple[str, str], SampledRate] = {}
        self._records = 0

    @property
    def enabled(self) -> bool:
        limits = self._limits
        return bool(
            limits.client_quotas
            or limits.default_quota.producer_byte_rate
            or limits.default_quota.consumer_byte_rate
        )

    def record_produce(self, client_id: str | None, nbytes: int, now_ms: int) -> int:
        """Count ``nbytes`` produced; the throttle time in ms (0: within the quota)."""
        return self._record(
            "produce", client_id, self._limits.quota_of(client_id).producer_byte_rate, nbytes, now_ms
        )

    def record_fetch(self, client_id: str | None, nbytes: int, now_ms: int) -> int:
        """Count ``nbytes`` fetched; the throttle time in ms (0: within the quota)."""
        return self._record(
            "fetch", client_id, self._limits.quota_of(client_id).consumer_byte_rate, nbytes, now_ms
        )

    def limits_produce(self, client_id: str | None) -> bool:
        """Whether ``client_id`` has a producer quota (its produce requests are then served one at a
        time, as Kafka serves every request, so each throttle takes effect before the next request)."""
        return self._limits.quota_of(client_id).producer_byte_rate is not None

    def max_fetch_bytes(self, client_id: str | None) -> int | None:
        """The most one fetch response should carry (Kafka caps a fetch's max_bytes by the quota too):
        one sample's worth, so a response served whole overshoots the rate by at most that much; None
        without a quota."""
        quota = self._limits.quota_of(client_id).consumer_byte_rate
        if quota is None:
            return None
        return max(1, quota * self._limits.quota_window_size_ms // 1000)

    def _record(self, kind: str, client_id: str | None, quota: int | None, nbytes: int, now_ms: int) -> int:
        if quota is None:
            return 0
        key = (kind, client_id or "")
        rate = self._rates.get(key)
        if rate is None:
            rate = self._rates[key] = SampledRate(
                self._limits.quota_window_size_ms, self._limits.quota_window_num
            )
        rate.record(nbytes, now_ms)
        self._records += 1
        if self._records % _SWEEP_EVERY == 0:
            self._forget_idle(now_ms)
        return throttle_time_ms(rate, quota, now_ms)

    def _forget_idle(self, now_ms: int) -> None:
        horizon = _FORGET_AFTER_WINDOWS * self._limits.quota_window_num * self._limits.quota_window_size_ms
        for key, rate in list(self._rates.items()):
            last = rate.last_ms()
            if last is None or now_ms - last > horizon:
                del self._rates[key]

    def tracked_clients(self) -> int:
        return len(self._rates)
